"""Leader election through kubernetes-asyncio against the fake API server's Lease endpoints.

Short timings (lease 1 s, renew deadline 0.6 s, retry 0.2 s) keep the file fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException
from servers.kube_api import KubeApiServer
from structlog.testing import capture_logs

from autoscaler.config.model import LeaderElectionConfig
from autoscaler.live.leader import LeaderElector, default_identity, lease_namespace

NS = "ops"
NAME = "autoscaler-lock"
LEASE_PATH = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/{NAME}"
MICRO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
CONFIG = LeaderElectionConfig.model_validate(
    {
        "lease_name": NAME,
        "lease_namespace": NS,
        "lease_duration_seconds": 1.0,
        "renew_deadline_seconds": 0.6,
        "retry_period_seconds": 0.2,
    }
)


@pytest.fixture
async def api() -> AsyncIterator[KubeApiServer]:
    async with KubeApiServer() as server:
        yield server


class Candidates:
    """Electors, each with its own client and stop event, running as tasks."""

    def __init__(self, api: KubeApiServer) -> None:
        self.api = api
        self.electors: list[LeaderElector] = []
        self.stops: dict[str, asyncio.Event] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.clients: list[k8s.ApiClient] = []

    def start(self, identity: str) -> LeaderElector:
        client = k8s.ApiClient(k8s.Configuration(host=self.api.url))
        client.user_agent = identity  # the fake records it: who sent which request
        self.clients.append(client)
        elector = LeaderElector(client, CONFIG, identity=identity, request_timeout_seconds=2)
        stop = asyncio.Event()
        self.electors.append(elector)
        self.stops[identity] = stop
        self.tasks[identity] = asyncio.create_task(elector.run(stop), name=f"elector-{identity}")
        return elector

    async def stop(self, elector: LeaderElector) -> None:
        self.stops[elector.identity].set()
        await asyncio.wait_for(self.tasks[elector.identity], 3)

    def leaders(self) -> list[str]:
        return [e.identity for e in self.electors if e.is_leader]

    async def close(self) -> None:
        for stop in self.stops.values():
            stop.set()
        for task in self.tasks.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 3)
        for client in self.clients:
            await client.close()


@pytest.fixture
async def candidates(api: KubeApiServer) -> AsyncIterator[Candidates]:
    group = Candidates(api)
    yield group
    await group.close()


async def _eventually(check: Callable[[], bool], timeout: float, step: float = 0.02) -> float:
    """Wait until ``check()``; return the seconds it took. Fails after ``timeout``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not check():
        if loop.time() - start > timeout:
            pytest.fail(f"condition not met within {timeout}s")
        await asyncio.sleep(step)
    return loop.time() - start


async def _watch_at_most_one(group: Candidates, seconds: float) -> None:
    """Sample often for ``seconds``: never two leaders at once."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        assert len(group.leaders()) <= 1, group.leaders()
        await asyncio.sleep(0.01)


def _spec(api: KubeApiServer) -> dict[str, Any]:
    lease = api.lease(NS, NAME)
    assert lease is not None
    spec: dict[str, Any] = lease["spec"]
    return spec


# --------------------------------------------------------------------------- one elector


async def test_single_elector_acquires_renews_and_releases(
    api: KubeApiServer, candidates: Candidates
) -> None:
    elector = candidates.start("pod-a_1")
    await asyncio.wait_for(elector.wait_for(leader=True), 2)
    assert elector.leading.is_set()
    spec = _spec(api)
    assert spec["holderIdentity"] == "pod-a_1"
    assert spec["leaseDurationSeconds"] == 1
    assert spec["leaseTransitions"] == 0
    assert MICRO_TIME.match(spec["renewTime"])
    assert MICRO_TIME.match(spec["acquireTime"])
    first_renew, acquired = spec["renewTime"], spec["acquireTime"]
    version = api.lease(NS, NAME)["metadata"]["resourceVersion"]  # type: ignore[index]

    await asyncio.sleep(0.5)  # two renewals or so
    spec = _spec(api)
    assert spec["renewTime"] > first_renew
    assert spec["acquireTime"] == acquired
    assert api.lease(NS, NAME)["metadata"]["resourceVersion"] != version  # type: ignore[index]
    puts = [r for r in api.requests if r.method == "PUT" and r.path == LEASE_PATH]
    assert puts
    assert all(r.json()["metadata"]["resourceVersion"] for r in puts)

    await candidates.stop(elector)
    assert not elector.is_leader
    assert not elector.leading.is_set()
    spec = _spec(api)
    assert spec["holderIdentity"] == ""
    assert spec["leaseTransitions"] == 0


async def test_wait_changed_reports_each_change(candidates: Candidates) -> None:
    elector = candidates.start("pod-a_1")
    assert await asyncio.wait_for(elector.wait_changed(), 2) is True
    waiter = asyncio.create_task(elector.wait_changed())
    await candidates.stop(elector)
    assert await asyncio.wait_for(waiter, 1) is False


# --------------------------------------------------------------------------- two electors


async def test_two_electors_one_leader_and_handover_on_release(
    api: KubeApiServer, candidates: Candidates
) -> None:
    a = candidates.start("pod-a_1")
    b = candidates.start("pod-b_2")
    await _eventually(lambda: len(candidates.leaders()) == 1, 2)
    await _watch_at_most_one(candidates, 1.2)
    assert len(candidates.leaders()) == 1
    leader, follower = (a, b) if a.is_leader else (b, a)
    assert _spec(api)["holderIdentity"] == leader.identity

    await candidates.stop(leader)
    # released: no need to wait for the lease to expire (1 s)
    took = await _eventually(lambda: follower.is_leader, 0.9, step=0.01)
    assert took < 0.9
    spec = _spec(api)
    assert spec["holderIdentity"] == follower.identity
    assert spec["leaseTransitions"] == 1


async def test_leader_that_loses_the_api_steps_down_then_takes_its_own_lease_back(
    api: KubeApiServer, candidates: Candidates
) -> None:
    a = candidates.start("pod-a_1")
    await asyncio.wait_for(a.wait_for(leader=True), 2)
    b = candidates.start("pod-b_2")
    await asyncio.sleep(0.4)  # b has seen a's lease being renewed
    assert candidates.leaders() == ["pod-a_1"]

    loop = asyncio.get_running_loop()
    api.fail("*", "/leases", 500, anywhere=True)
    outage = loop.time()
    await asyncio.wait_for(a.wait_for(leader=False), 1.0)
    assert loop.time() - outage <= CONFIG.renew_deadline_seconds + 0.05
    assert not b.is_leader

    await asyncio.sleep(0.1)  # the API is back before the lease has expired
    api.clear_failures()
    back = loop.time()
    assert _spec(api)["holderIdentity"] == "pod-a_1"  # a's record, no longer renewed
    await asyncio.wait_for(a.wait_for(leader=True), 1.0)
    # a took it back at its next attempt, not a lease duration later: the Lease was still
    # the record a last wrote, so nobody can have held it in between
    assert loop.time() - back <= CONFIG.retry_period_seconds * 1.2 + 0.1
    await _watch_at_most_one(candidates, 0.6)
    assert candidates.leaders() == ["pod-a_1"]
    spec = _spec(api)
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("pod-a_1", 0)


async def test_a_leader_whose_lease_was_taken_during_its_outage_waits_as_a_follower(
    api: KubeApiServer, candidates: Candidates
) -> None:
    """The reclaim is for a Lease nobody else wrote: once another holder has written it,
    the old leader is an ordinary candidate again."""
    a = candidates.start("pod-a_1")
    await asyncio.wait_for(a.wait_for(leader=True), 2)
    api.fail("*", "/leases", 500, anywhere=True)
    await asyncio.wait_for(a.wait_for(leader=False), 1.0)
    api.clear_failures()
    api.leases[("ops", "autoscaler-lock")]["spec"]["holderIdentity"] = "pod-c_3"
    api.touch_lease("ops", "autoscaler-lock")  # another candidate took it meanwhile
    await asyncio.sleep(CONFIG.lease_duration_seconds * 0.6)
    assert not a.is_leader
    assert _spec(api)["holderIdentity"] == "pod-c_3"


async def test_conflict_on_renew_is_retried(api: KubeApiServer, candidates: Candidates) -> None:
    elector = candidates.start("pod-a_1")
    await asyncio.wait_for(elector.wait_for(leader=True), 2)
    changes: list[bool] = []

    async def record_changes() -> None:
        while True:
            changes.append(await elector.wait_changed())

    recorder = asyncio.create_task(record_changes())
    try:
        with capture_logs() as logs:
            api.touch_lease(NS, NAME)  # another writer: a renewal in flight carries a stale
            api.fail("PUT", LEASE_PATH, 409, times=1)  # version; and an injected 409
            await asyncio.sleep(1.0)
    finally:
        recorder.cancel()
    conflicts = [e for e in logs if e["event"] == "lease_api_error" and e["status"] == 409]
    assert conflicts
    assert elector.is_leader
    assert changes == []
    spec = _spec(api)
    assert spec["holderIdentity"] == "pod-a_1"
    assert spec["leaseTransitions"] == 0


async def test_two_electors_race_for_a_missing_lease(
    api: KubeApiServer, candidates: Candidates
) -> None:
    electors = [candidates.start(f"pod-{i}_x") for i in range(3)]
    await _eventually(lambda: len(candidates.leaders()) == 1, 2)
    await _watch_at_most_one(candidates, 0.6)
    creates = [r for r in api.requests if r.method == "POST"]
    assert len(creates) >= 1
    assert _spec(api)["holderIdentity"] in {e.identity for e in electors}


async def test_api_errors_never_end_the_loop(api: KubeApiServer, candidates: Candidates) -> None:
    api.fail("*", "/leases", 500, anywhere=True)
    elector = candidates.start("pod-a_1")
    await asyncio.sleep(0.5)
    assert not candidates.tasks["pod-a_1"].done()
    api.clear_failures()
    with capture_logs() as logs:
        api.fail("POST", "/leases", 403, anywhere=True, times=1)
        await asyncio.wait_for(elector.wait_for(leader=True), 2)
    # A 403 names what was refused, as the scale errors do.
    (forbidden,) = [e for e in logs if e["event"] == "lease_api_error" and e["status"] == 403]
    assert forbidden["request"] == f"create leases.coordination.k8s.io/{NAME} in namespace {NS}"
    assert forbidden["error"].startswith(f"forbidden: create leases.coordination.k8s.io/{NAME}")


# --------------------------------------------------------------------------- fake + helpers


async def test_fake_lease_api_is_strict(api: KubeApiServer) -> None:
    async with k8s.ApiClient(k8s.Configuration(host=api.url)) as client:
        leases = k8s.CoordinationV1Api(client)
        with pytest.raises(ApiException) as missing:
            await leases.read_namespaced_lease(NAME, NS)
        assert missing.value.status == 404
        body = {"metadata": {"name": NAME}, "spec": {"holderIdentity": "x"}}
        created = await leases.create_namespaced_lease(NS, body)
        with pytest.raises(ApiException) as exists:
            await leases.create_namespaced_lease(NS, body)
        assert exists.value.status == 409
        version = created.metadata.resource_version
        stale = {"metadata": {"name": NAME, "resourceVersion": "1"}, "spec": {}}
        with pytest.raises(ApiException) as conflict:
            await leases.replace_namespaced_lease(NAME, NS, stale)
        assert conflict.value.status == 409
        bad = {"metadata": {"name": NAME}, "spec": {"leaseDurationSeconds": 1.5}}
        with pytest.raises(ApiException) as invalid:
            await leases.replace_namespaced_lease(NAME, NS, bad)
        assert invalid.value.status == 422
        patched = await leases.patch_namespaced_lease(
            NAME, NS, {"metadata": {"resourceVersion": version}, "spec": {"holderIdentity": "y"}}
        )
        assert patched.spec.holder_identity == "y"
        listed = await leases.list_namespaced_lease(NS)
        assert [item.metadata.name for item in listed.items] == [NAME]


@pytest.mark.parametrize(
    ("configured", "file_text", "expected"),
    [
        pytest.param("team", "pods-ns\n", "team", id="configured"),
        pytest.param(None, "pods-ns\n", "pods-ns", id="service-account"),
        pytest.param(None, None, "default", id="default"),
    ],
)
def test_lease_namespace(
    tmp_path: Path, configured: str | None, file_text: str | None, expected: str
) -> None:
    path = tmp_path / "namespace"
    if file_text is not None:
        path.write_text(file_text)
    with capture_logs() as logs:
        assert lease_namespace(configured, path) == expected
    # Falling back to "default" outside a pod is said, once per call; the others are quiet.
    defaulted = [e for e in logs if e["event"] == "lease_namespace_defaulted"]
    assert len(defaulted) == (1 if expected == "default" else 0)


def test_default_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTNAME", "autoscaler-7d9f")
    first, second = default_identity(), default_identity()
    assert first.startswith("autoscaler-7d9f_")
    assert second.startswith("autoscaler-7d9f_")
    assert first != second


async def test_an_unreachable_api_server_is_logged_when_it_starts_and_ends() -> None:
    """Every retry period during an outage (a line every 2 s before): the start, a summary
    every 5 minutes, and the end."""
    import aiohttp

    class _Down:
        up = False

        async def read_namespaced_lease(self, *args: object, **kwargs: object) -> object:
            if not self.up:
                raise aiohttp.ClientConnectionError("connection refused")
            raise ApiException(status=404)

        async def create_namespaced_lease(self, *args: object, **kwargs: object) -> object:
            raise ApiException(status=409)

    elector = LeaderElector(object(), CONFIG, identity="pod-a_1", namespace=NS)
    down = _Down()
    elector._api = down  # type: ignore[assignment]
    with capture_logs() as logs:
        for k in range(3001):  # 10 minutes of attempts 0.2 s apart
            await elector._attempt(1000.0 + 0.2 * k)
        down.up = True
        await elector._attempt(1600.2)
    unavailable = [e for e in logs if e["event"] == "lease_api_unavailable"]
    assert len(unavailable) == 3  # the start, then after 5 and 10 minutes
    assert unavailable[1]["still_failing_for_seconds"] == 300
    (back,) = [e for e in logs if e["event"] == "lease_api_available_again"]
    assert back["attempts_failed"] == 3001
