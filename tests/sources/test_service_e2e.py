"""``autoscaler run`` end to end under the conditions it exists for (issue #6): the load
going away, paused targets, a misbehaving API server, a broker outage, a leader fail-over.

Each test runs the real service in-process against a real tansu broker and the strict
Kubernetes API fake, and asserts on what the fake saw: the PATCH bodies (the replica
sequence), their arrival times and the Lease. Intervals are short (polls of 0.25 s,
windows of 2 s, leases of 1 s) so that the whole file runs in well under a minute.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import io
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import kubernetes_asyncio.client as k8s
import pytest
import structlog
from servers.kafka_broker import TansuBroker
from servers.kafka_data import KafkaData
from servers.kube_api import FAST_LEASE, KubeApiServer

from autoscaler.config import parse_config
from autoscaler.config.model import AutoscalerConfig
from autoscaler.live import leader, service
from autoscaler.live.actuator import ScaleActuator
from autoscaler.logs import configure_logging

POLL = 0.25
PARTITIONS = 4


# --------------------------------------------------------------------------- helpers


def _target(
    name: str,
    *,
    lag_threshold: int = 50,
    min_replicas: int = 1,
    behavior: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A target named like its Deployment, topic and consumer group."""
    target: dict[str, Any] = {
        "name": name,
        "namespace": "shop",
        "scale_target_ref": {"name": name},
        "min_replicas": min_replicas,
        "max_replicas": 10,
        "predictor": {"model": "none"},
        "triggers": [
            {
                "type": "kafka_lag",
                "cluster": "main",
                "consumer_group": name,
                "topics": [name],
                "lag_threshold": lag_threshold,
            }
        ],
    }
    if behavior is not None:
        target["behavior"] = behavior
    return target


def _config(
    broker: TansuBroker, *targets: dict[str, Any], election: bool = False
) -> AutoscalerConfig:
    leader_election: dict[str, Any] = {"enabled": election}
    if election:
        leader_election |= FAST_LEASE
    return parse_config(
        {
            "poll_interval_seconds": POLL,
            "dry_run": False,
            "leader_election": leader_election,
            "kubernetes": {"request_timeout_seconds": 0.5},
            "kafka_clusters": {
                "main": {
                    "bootstrap_servers": [broker.bootstrap_server],
                    "request_timeout_seconds": 1.0,
                }
            },
            "targets": list(targets),
        }
    )


@dataclass
class Instance:
    """One ``autoscaler run`` in a task, with its own stop event."""

    task: asyncio.Task[None]
    stop: asyncio.Event

    def assert_alive(self) -> None:
        if self.task.done():
            error = None if self.task.cancelled() else self.task.exception()
            raise AssertionError(f"the service ended: {error!r}")


@contextlib.asynccontextmanager
async def _running(
    config: AutoscalerConfig, api: KubeApiServer, *, request_timeout: float = 0.5
) -> AsyncIterator[Instance]:
    client = k8s.ApiClient(k8s.Configuration(host=api.url))
    actuator = ScaleActuator(client, request_timeout_seconds=request_timeout, owns_client=True)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(config, stop, actuator=actuator, serve_http=False))
    instance = Instance(task, stop)
    try:
        yield instance
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)  # a crash surfaces here


async def _eventually(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def _patches(api: KubeApiServer, name: str) -> list[tuple[float, int]]:
    """(arrival time, requested replicas) of every scale PATCH of Deployment ``name``,
    answered or refused."""
    return [
        (request.at, request.json()["spec"]["replicas"])
        for request in api.patches()
        if request.path.endswith(f"/deployments/{name}/scale")
    ]


def _assert_never_lowered(api: KubeApiServer, name: str, start: int) -> None:
    requested = [replicas for _, replicas in _patches(api, name)]
    floor = start
    for replicas in requested:
        assert replicas >= floor, f"{name}: a PATCH lowered replicas: {start} then {requested}"
        floor = replicas


def _scale_reads(api: KubeApiServer, name: str) -> int:
    return sum(
        1
        for r in api.requests
        if r.method == "GET" and r.path.endswith(f"/deployments/{name}/scale")
    )


async def _load(kafka: KafkaData, name: str, per_partition: int) -> None:
    """A topic ``name`` whose group ``name`` has lag ``per_partition`` on every partition."""
    await kafka.create_topic(name, PARTITIONS)
    await kafka.commit(name, name, dict.fromkeys(range(PARTITIONS), 0))
    await kafka.produce(name, [per_partition] * PARTITIONS)


@pytest.fixture
async def api() -> AsyncIterator[KubeApiServer]:
    async with KubeApiServer() as server:
        yield server


# --------------------------------------------------------------------------- scale-down


async def test_the_load_consumed_scales_down_after_the_window_within_the_policy(
    kafka: KafkaData, broker: TansuBroker, api: KubeApiServer
) -> None:
    window, period = 2, 1  # stabilization window; Pods 1 per period
    behavior = {
        "scale_down": {
            "stabilization_window_seconds": window,
            "policies": [{"type": "Pods", "value": 1, "period_seconds": period}],
        }
    }
    workload = api.add_workload("Deployment", "shop", "orders", replicas=2)
    await _load(kafka, "orders", 50)  # lag 200 / 50 = 4
    config = _config(broker, _target("orders", min_replicas=2, behavior=behavior))
    async with _running(config, api) as instance:
        assert await _eventually(lambda: workload.replicas == 4, 3.0), _patches(api, "orders")
        await asyncio.sleep(2 * POLL)  # a few more polls recommend 4
        consumed_from = time.monotonic()
        await kafka.commit("orders", "orders", dict.fromkeys(range(PARTITIONS), 50))  # lag 0
        consumed = time.monotonic()
        assert await _eventually(lambda: workload.replicas == 2, window + 2 * period + 2.0)
        await asyncio.sleep(3 * POLL)  # and it stays at min_replicas
        instance.assert_alive()

    replicas = [r for _, r in _patches(api, "orders")]
    assert replicas == [4, 3, 2], "up at once, then down one Pod per period"
    (_, _), (down_1, _), (down_2, _) = _patches(api, "orders")
    # The last recommendation of 4 came from a poll started at most one poll (plus its
    # duration) before the commit began: no scale-down before the window has passed since.
    assert down_1 - consumed_from >= window - POLL - 0.15, "scaled down inside the window"
    assert down_1 - consumed <= window + 2 * POLL + 0.5, "scaled down late"
    # Pods 1 per period: the second step waits until the first has left the period.
    # (Arrival times: each PATCH lands some ms after its poll began; a breach would land a
    # poll, 0.25 s, after the first.)
    assert down_2 - down_1 >= period - POLL / 2, "two Pods removed within one period"
    assert down_2 - down_1 <= period + 2 * POLL + 0.5
    assert workload.replicas == 2


# --------------------------------------------------------------------------- paused


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        pytest.param({"autoscaler.io/paused": "true"}, [], id="paused"),
        pytest.param({"autoscaler.io/paused-replicas": "2"}, [2], id="paused-replicas-pins"),
        pytest.param(
            {"autoscaler.io/paused": "true", "autoscaler.io/paused-replicas": "2"},
            [2],
            id="paused-and-pinned",
        ),
    ],
)
async def test_a_paused_target_is_not_scaled_by_a_burst(
    kafka: KafkaData,
    broker: TansuBroker,
    api: KubeApiServer,
    annotations: dict[str, str],
    expected: list[int],
) -> None:
    paused = api.add_workload("Deployment", "shop", "orders", replicas=1, annotations=annotations)
    other = api.add_workload("Deployment", "shop", "payments", replicas=1)
    await _load(kafka, "orders", 50)  # would be 4
    await _load(kafka, "payments", 50)
    config = _config(broker, _target("orders"), _target("payments"))
    async with _running(config, api) as instance:
        # The unpaused target in the same service shows the burst was seen and acted on.
        assert await _eventually(lambda: other.replicas == 4, 3.0)
        await asyncio.sleep(4 * POLL)  # several more polls of the paused one
        instance.assert_alive()
    assert [r for _, r in _patches(api, "orders")] == expected
    assert paused.replicas == (expected[-1] if expected else 1)
    assert _scale_reads(api, "orders") >= 4, "the paused target was still polled"


# --------------------------------------------------------------------------- API faults


def _conflicts(api: KubeApiServer) -> None:
    # Several polls' worth (each poll tries 1 + 3 times): another writer keeps winning.
    api.conflict_next(times=6)


def _forbidden_patch(api: KubeApiServer) -> None:
    api.fail("PATCH", "/deployments/orders/scale", 403)


def _read_error(api: KubeApiServer) -> None:
    api.fail("GET", "/deployments/orders/scale", 500)


def _read_timeout(api: KubeApiServer) -> None:
    api.delay("GET", "/deployments/orders/scale", 1.0)  # the actuator gives up after 0.5 s


def _patch_timeout(api: KubeApiServer) -> None:
    api.delay("PATCH", "/deployments/orders/scale", 1.0)


def _forbidden_events(api: KubeApiServer) -> None:
    api.fail("POST", "/events", 403)  # the scale is still made, only not explained


def _missing(api: KubeApiServer) -> None:
    api.remove("Deployment", "shop", "orders")


_SCALE = "/deployments/orders/scale"


@pytest.mark.parametrize(
    ("inject", "hit", "blocks"),
    [
        pytest.param(_conflicts, ("PATCH", _SCALE), False, id="409-conflict"),
        pytest.param(_forbidden_patch, ("PATCH", _SCALE), True, id="403-on-patch"),
        pytest.param(_read_error, ("GET", _SCALE), True, id="500-on-get-scale"),
        pytest.param(_read_timeout, ("GET", _SCALE), True, id="timeout-on-get-scale"),
        pytest.param(_patch_timeout, ("PATCH", _SCALE), False, id="timeout-on-patch"),
        pytest.param(_forbidden_events, ("POST", "/events"), False, id="403-on-events"),
        pytest.param(_missing, ("GET", _SCALE), True, id="404-workload-removed"),
    ],
)
async def test_api_faults_never_crash_nor_scale_down(
    kafka: KafkaData,
    broker: TansuBroker,
    api: KubeApiServer,
    inject: Callable[[KubeApiServer], None],
    hit: tuple[str, str],
    blocks: bool,
) -> None:
    """``hit``: the requests the fault answers; ``blocks``: whether it prevents the scale
    (a timed-out PATCH may still land, as on a real API server)."""
    orders = api.add_workload("Deployment", "shop", "orders", replicas=2)
    payments = api.add_workload("Deployment", "shop", "payments", replicas=1)
    await _load(kafka, "orders", 25)  # lag 100 / 50: the 2 it has
    await kafka.create_topic("payments", PARTITIONS)
    await kafka.commit("payments", "payments", dict.fromkeys(range(PARTITIONS), 0))
    config = _config(broker, _target("orders"), _target("payments"))
    async with _running(config, api) as instance:
        await asyncio.sleep(2 * POLL)
        assert _patches(api, "orders") == [], "steady at first"

        inject(api)
        mark = len(api.requests)
        await kafka.produce("orders", [25] * PARTITIONS)  # lag 200: now 4 are needed
        await kafka.produce("payments", [50] * PARTITIONS)
        # The other target is scaled meanwhile, whatever happens to this one.
        assert await _eventually(lambda: payments.replicas == 4, 3.0)
        await asyncio.sleep(3 * POLL)
        instance.assert_alive()
        method, suffix = hit
        tried = [r for r in api.requests[mark:] if r.method == method and r.path.endswith(suffix)]
        assert tried, f"no {method} ...{suffix} during the fault"
        if blocks:
            assert orders.replicas == 2, "scaled through the fault"

        api.clear_failures()
        if inject is _missing:
            orders = api.add_workload("Deployment", "shop", "orders", replicas=2)
        assert await _eventually(lambda: orders.replicas == 4, 4.0), _patches(api, "orders")
        await asyncio.sleep(POLL)
        instance.assert_alive()
    _assert_never_lowered(api, "orders", 2)
    _assert_never_lowered(api, "payments", 1)


# --------------------------------------------------------------------------- broker outage


@pytest.mark.parametrize(
    ("crash", "outage_seconds"),
    [
        pytest.param(True, 6 * POLL, id="crashed-and-restarted"),
        # Hung requests time out after 1 s each: fewer, longer polls.
        pytest.param(False, 3.5, id="frozen-and-thawed"),
    ],
)
async def test_a_broker_outage_holds_the_replicas_and_recovers(
    api: KubeApiServer, crash: bool, outage_seconds: float
) -> None:
    # Scale-down reacts at once: only the missing-data rule can hold the replicas.
    behavior = {"scale_down": {"stabilization_window_seconds": 0}}
    workload = api.add_workload("Deployment", "shop", "orders", replicas=1)
    # Our own broker, killed soon after SIGTERM (tansu drains connections for ~5 s).
    with TansuBroker(stop_timeout=0.3) as broker:
        kafka = KafkaData(broker.bootstrap_server)
        await _load(kafka, "orders", 25)  # lag 100 / 50 = 2
        await kafka.close()
        config = _config(broker, _target("orders", behavior=behavior))
        async with _running(config, api) as instance:
            assert await _eventually(lambda: workload.replicas == 2, 3.0)

            await asyncio.to_thread(broker.stop if crash else broker.freeze)
            reads = _scale_reads(api, "orders")
            await asyncio.sleep(outage_seconds)  # past fallback.failure_threshold (3 polls)
            instance.assert_alive()
            assert _scale_reads(api, "orders") - reads >= 3, "polls went on through the outage"
            assert workload.replicas == 2

            kafka = KafkaData(broker.bootstrap_server)
            try:
                if crash:
                    await asyncio.to_thread(broker.start)  # same port; tansu kept nothing
                    await _load(kafka, "orders", 50)  # lag 200 / 50 = 4
                else:
                    broker.thaw()
                    await kafka.produce("orders", [25] * PARTITIONS)  # lag 200 / 50 = 4
            finally:
                await kafka.close()
            # The cluster reconnects after its backoff (1 s, then 2 s, then 4 s).
            assert await _eventually(lambda: workload.replicas == 4, 5.0), _patches(api, "orders")
            instance.assert_alive()
    _assert_never_lowered(api, "orders", 1)
    requested = [r for _, r in _patches(api, "orders")]
    # (the service may see the new records half produced: 2, 3, 4)
    assert (requested[0], requested[-1]) == (2, 4), requested


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    """The service's log lines (ours and the libraries'), as it writes them in a pod: JSON
    at info. Logging is process-global: what the test changed is put back after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    libraries = {name: logging.getLogger(name).level for name in ("aiokafka", "kafka")}
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    yield stream
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    for name, library_level in libraries.items():
        logging.getLogger(name).setLevel(library_level)
    logging.captureWarnings(False)


async def test_a_broker_outage_is_logged_when_it_starts_and_when_it_ends(
    api: KubeApiServer, logged: io.StringIO
) -> None:
    """A broker down for 20 polls: the warnings and errors about it are one line per state
    (the cluster's, the target's source, its first decision without data, and the first of
    each of aiokafka's messages), none repeated poll after poll or reconnect attempt after
    attempt; its end is said once by the cluster and once by the source. (aiokafka logged
    each failed connection at ERROR, its clients retrying every 100 ms, and each decision
    without data was a warning.)"""

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in logged.getvalue().splitlines()]

    workload = api.add_workload("Deployment", "shop", "orders", replicas=1)
    with TansuBroker(stop_timeout=0.3) as broker:
        kafka = KafkaData(broker.bootstrap_server)
        await _load(kafka, "orders", 25)  # lag 100 / 50 = 2
        await kafka.close()
        async with _running(_config(broker, _target("orders")), api) as instance:
            assert await _eventually(lambda: workload.replicas == 2, 3.0)
            started = len(lines())
            await asyncio.to_thread(broker.stop)
            # Reconnect attempts 1 s, then 2 s after the first failure; the next one at 7 s.
            await asyncio.sleep(20 * POLL)
            instance.assert_alive()
            ended = len(lines())
            await asyncio.to_thread(broker.start)
            kafka = KafkaData(broker.bootstrap_server)
            try:
                await _load(kafka, "orders", 50)  # lag 200 / 50 = 4, before the next attempt
            finally:
                await kafka.close()
            assert await _eventually(lambda: workload.replicas == 4, 6.0), _patches(api, "orders")
    down, up = lines()[started:ended], lines()[ended:]

    loud = [(line["logger"], line["event"]) for line in down if line["level"] != "info"]
    repeated = {line: count for line, count in collections.Counter(loud).items() if count > 1}
    assert not repeated, loud
    ours = [event for logger, event in loud if logger.startswith("autoscaler")]
    assert sorted(ours) == [
        "kafka_cluster_connection_failed",
        "kafka_lag_unavailable",
        "scaling_decision",  # the first decision without data; the ones after at info
    ], loud
    libraries = [event for logger, event in loud if not logger.startswith("autoscaler")]
    assert len(libraries) <= 4, loud  # the first of each of aiokafka's messages
    polls = sum(1 for line in down if line["event"] == "scaling_decision")
    assert polls >= 10, "the target went on polling through the outage"

    said = [line["event"] for line in up]
    assert said.count("kafka_cluster_reconnected") == 1, said
    assert said.count("kafka_lag_recovered") == 1, said
    assert not [line for line in up if line["level"] in ("error", "critical")], up


# --------------------------------------------------------------------------- fail-over
# --------------------------------------------------------------------------- fail-over


@pytest.fixture
def electors(monkeypatch: pytest.MonkeyPatch) -> list[leader.LeaderElector]:
    """Every LeaderElector built during the test, in order (one per service instance)."""
    built: list[leader.LeaderElector] = []
    init = leader.LeaderElector.__init__

    def recorded(self: leader.LeaderElector, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        built.append(self)

    monkeypatch.setattr(leader.LeaderElector, "__init__", recorded)
    return built


@pytest.mark.parametrize("released", [True, False], ids=["stopped", "killed"])
async def test_the_follower_takes_over_when_the_leader_goes(
    kafka: KafkaData,
    broker: TansuBroker,
    api: KubeApiServer,
    electors: list[leader.LeaderElector],
    released: bool,
) -> None:
    lease_seconds, retry = 1.0, 0.2
    workload = api.add_workload("Deployment", "shop", "orders", replicas=1)
    await _load(kafka, "orders", 25)  # lag 100 / 50 = 2
    config = _config(broker, _target("orders"), election=True)
    async with contextlib.AsyncExitStack() as stack:
        instances = []
        for _ in range(2):  # one after the other: electors[i] is instances[i]'s
            instances.append(await stack.enter_async_context(_running(config, api)))
            assert await _eventually(lambda: len(electors) == len(instances), 2.0)
        assert await _eventually(lambda: workload.replicas == 2, 3.0)
        lease = api.lease("shop", "predictive-autoscaler")
        assert lease is not None
        holder = lease["spec"]["holderIdentity"]
        (leading,) = [i for i, e in enumerate(electors) if e.identity == holder]
        following = 1 - leading
        assert electors[leading].is_leader
        assert not electors[following].is_leader

        gone_at = time.monotonic()
        if released:
            instances[leading].stop.set()
            await asyncio.wait_for(instances[leading].task, 10)
        else:  # killed: its Lease is never released, the follower must wait for expiry
            electors[leading]._release = _never  # type: ignore[method-assign]
            instances[leading].task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(instances[leading].task, 10)
        lease = api.lease("shop", "predictive-autoscaler")
        assert lease is not None
        if released:  # released on the way out, or already taken by the follower
            assert lease["spec"]["holderIdentity"] in ("", electors[following].identity)
        else:
            assert lease["spec"]["holderIdentity"] == holder
        await kafka.produce("orders", [25] * PARTITIONS)  # lag 200: 4
        assert await _eventually(lambda: workload.replicas == 4, lease_seconds + 3.0)
        instances[following].assert_alive()

    took_over = _patches(api, "orders")[-1][0] - gone_at
    jitter = retry * 2.2  # the candidates' retry period, with client-go's jitter
    if released:  # at the follower's next attempt
        assert took_over <= jitter + 2 * POLL + 0.5
    else:  # once the lease has expired
        assert took_over <= lease_seconds + jitter + 2 * POLL + 0.5
        # Not before the dead leader's last renewal (at most a retry period before it went)
        # has expired: two leaders must never overlap.
        assert took_over >= lease_seconds - retry - 0.1
    lease = api.lease("shop", "predictive-autoscaler")
    assert lease is not None
    assert lease["spec"]["holderIdentity"] in ("", electors[following].identity)
    assert lease["spec"]["leaseTransitions"] >= 1
    _assert_never_lowered(api, "orders", 1)
    requested = [r for _, r in _patches(api, "orders")]
    assert requested.count(2) == 1, f"both instances patched: {requested}"
    assert requested[-1] == 4


@pytest.mark.parametrize("hung", [False, True], ids=["lease-api-500", "lease-api-hung"])
async def test_without_the_lease_api_nobody_patches(
    kafka: KafkaData,
    broker: TansuBroker,
    api: KubeApiServer,
    electors: list[leader.LeaderElector],
    hung: bool,
) -> None:
    """A leader that cannot renew steps down within the renew deadline, before its Lease
    could expire and another take over: it must stop patching then, not when it learns of a
    new holder."""
    renew_deadline, lease_seconds = 0.6, 1.0
    workload = api.add_workload("Deployment", "shop", "orders", replicas=1)
    await _load(kafka, "orders", 25)  # lag 100 / 50 = 2
    config = _config(broker, _target("orders"), election=True)
    async with _running(config, api) as first, _running(config, api) as second:
        assert await _eventually(lambda: workload.replicas == 2, 3.0)
        assert any(e.is_leader for e in electors)

        if hung:  # answered after 2 s, long after every client gave up
            api.delay("*", "/leases", 2.0, anywhere=True)
        else:
            api.fail("*", "/leases", 500, anywhere=True)
        down_at = time.monotonic()
        assert await _eventually(lambda: not any(e.is_leader for e in electors), 2.0)
        assert time.monotonic() - down_at <= renew_deadline + 0.3, "stepped down late"
        await kafka.produce("orders", [25] * PARTITIONS)  # lag 200: 4 wanted
        await asyncio.sleep(lease_seconds + 4 * POLL)
        assert workload.replicas == 2, "patched without holding the Lease"

        api.clear_failures()
        assert await _eventually(lambda: workload.replicas == 4, lease_seconds + 3.0)
        first.assert_alive()
        second.assert_alive()
    assert [r for _, r in _patches(api, "orders")] == [2, 4]


async def _never() -> None:
    """A lease release that never happens (the process was killed)."""
