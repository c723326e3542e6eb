"""KEDA's external scaler protocol, served by the live service fed by tansu.

The client here follows ``pkg/scalers/external_scaler.go``: ``GetMetricSpec`` once (to build
the HPA), then at each of KEDA's polls ``GetMetrics`` and ``IsActive``; ``external-push``
opens ``StreamIsActive``. An emulated HPA turns each metric into replicas with the HPA's own
arithmetic (``external_average_value_replicas``: ``ceil(metric / target)`` outside the 0.1
tolerance band) and writes them to the workload, as KEDA's HPA would. At every poll of a
rising then falling load, the HPA's count must equal the service's own decision.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
import kubernetes_asyncio.client as k8s
import pytest
from helpers import KAFKA, lag_observation, make_target, step
from servers.kafka_broker import TansuBroker
from servers.kafka_data import KafkaData
from servers.kube_api import KubeApiServer
from servers.process import free_port

from autoscaler.config import parse_config
from autoscaler.config.model import AutoscalerConfig
from autoscaler.decision import DecisionState, Forecast
from autoscaler.decision.hpa import Tolerances, external_average_value_replicas, external_metric_for
from autoscaler.live import service
from autoscaler.live.actuator import ScaleActuator
from autoscaler.live.external_scaler import (
    METRIC_NAME,
    SERVICE,
    ExternalScalerServer,
    TargetAnswer,
    messages,
)

POLL = 0.3
PARTITIONS = 8


def _config(broker: TansuBroker) -> AutoscalerConfig:
    return parse_config(
        {
            "poll_interval_seconds": POLL,
            "dry_run": False,
            "leader_election": {"enabled": False},
            "server": {
                "health_port": free_port(),
                "metrics_port": free_port(),
                "external_scaler": {"enabled": True, "port": free_port()},
            },
            "kafka_clusters": {"main": {"bootstrap_servers": [broker.bootstrap_server]}},
            "targets": [
                {
                    "name": "orders",
                    "namespace": "shop",
                    "scale_target_ref": {"name": "orders-consumer"},
                    "min_replicas": 1,
                    "max_replicas": 8,
                    "predictor": {"model": "none"},
                    "behavior": {"scale_down": {"stabilization_window_seconds": 0}},
                    "triggers": [
                        {
                            "type": "kafka_lag",
                            "cluster": "main",
                            "consumer_group": "orders",
                            "topics": ["orders"],
                            "lag_threshold": 50,
                        }
                    ],
                }
            ],
        }
    )


class KedaClient:
    """KEDA's side of the protocol, on one channel."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        def unary(method: str, response: Any) -> Any:
            return channel.unary_unary(
                f"/{SERVICE}/{method}",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=response.FromString,
            )

        self.get_metric_spec = unary("GetMetricSpec", messages.GetMetricSpecResponse)
        self.get_metrics = unary("GetMetrics", messages.GetMetricsResponse)
        self.is_active = unary("IsActive", messages.IsActiveResponse)
        self.stream_is_active = channel.unary_stream(
            f"/{SERVICE}/StreamIsActive",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=messages.IsActiveResponse.FromString,
        )


def _ref(name: str = "orders-keda", **metadata: str) -> Any:
    """What KEDA sends: the ScaledObject's name and namespace, and the trigger's metadata."""
    return messages.ScaledObjectRef(name=name, namespace="shop", scalerMetadata=metadata)


SO = {"target": "orders", "scalerAddress": "predictive-autoscaler.autoscaler:6000"}


@contextlib.asynccontextmanager
async def _serving(
    config: AutoscalerConfig, api: KubeApiServer
) -> AsyncIterator[tuple[KedaClient, list[service.Service]]]:
    client = k8s.ApiClient(k8s.Configuration(host=api.url))
    actuator = ScaleActuator(client, request_timeout_seconds=5, owns_client=True)
    stop = asyncio.Event()
    built: list[service.Service] = []
    task = asyncio.create_task(service.run(config, stop, actuator=actuator, on_built=built.append))
    port = config.server.external_scaler.port
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            while not built:
                await asyncio.sleep(0.05)
            yield KedaClient(channel), built
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


@pytest.fixture
async def api() -> AsyncIterator[KubeApiServer]:
    async with KubeApiServer() as server:
        server.add_workload("Deployment", "shop", "orders-consumer", replicas=1)
        # the ScaledObject that points KEDA at this service: no conflict, KEDA actuates
        server.scaled_objects.append(
            {
                "metadata": {"name": "orders-keda", "namespace": "shop"},
                "spec": {
                    "scaleTargetRef": {"name": "orders-consumer"},
                    "triggers": [{"type": "external", "metadata": {"scalerAddress": "x:6000"}}],
                },
            }
        )
        yield server


async def test_the_hpa_keda_builds_lands_on_the_services_decision_at_every_poll(
    kafka: KafkaData, broker: TansuBroker, api: KubeApiServer
) -> None:
    await kafka.create_topic("orders", PARTITIONS)
    await kafka.commit("orders", "orders", dict.fromkeys(range(PARTITIONS), 0))
    workload = api.workload("Deployment", "shop", "orders-consumer")
    config = _config(broker)
    # the lag per partition at each step: rising, then consumed away
    lag_steps = [0, 10, 25, 40, 50, 50, 30, 15, 5, 0, 0]
    committed = [0] * PARTITIONS
    produced = [0] * PARTITIONS
    compared = 0
    async with _serving(config, api) as (keda, built):
        spec = await keda.get_metric_spec(_ref(**SO))
        (metric,) = spec.metricSpecs
        assert (metric.metricName, metric.targetSizeFloat) == (METRIC_NAME, 1.0)
        svc = built[0]
        for lag in lag_steps:
            # produce up to the wanted lag over what is committed, or commit it away
            for p in range(PARTITIONS):
                want = committed[p] + lag
                if want > produced[p]:
                    await kafka.produce(
                        "orders", [want - produced[p] if i == p else 0 for i in range(PARTITIONS)]
                    )
                    produced[p] = want
                elif want < produced[p]:
                    committed[p] = produced[p] - lag
            await kafka.commit("orders", "orders", dict(enumerate(committed)))
            for _ in range(3):  # a few of KEDA's polls at this load
                await svc.wait_polled()
                decision = svc.answers()["orders"].decision
                assert decision is not None
                answer = await keda.get_metrics(
                    messages.GetMetricsRequest(scaledObjectRef=_ref(**SO), metricName=METRIC_NAME)
                )
                active = (await keda.is_active(_ref(**SO))).result
                (value,) = answer.metricValues
                hpa, _ = external_average_value_replicas(
                    value.metricValueFloat,
                    metric.targetSizeFloat,
                    workload.replicas,
                    Tolerances(),
                )
                current = svc.answers()["orders"].decision
                assert current is not None
                if current is not decision:
                    continue  # a poll landed in between: compare on the next one
                assert hpa == decision.desired_replicas, (lag, value, workload.replicas)
                assert active == (decision.desired_replicas > 0)
                compared += 1
                workload.replicas = hpa  # KEDA's HPA writes its count
        seen = {r.json()["spec"]["replicas"] for r in api.patches()}
    assert compared >= len(lag_steps) * 2
    assert seen == set(), "the service never patches a workload KEDA actuates"
    assert max(lag_steps) * PARTITIONS // 50 >= 8  # the load reached the top


async def test_unknown_targets_and_a_named_target(
    kafka: KafkaData, broker: TansuBroker, api: KubeApiServer
) -> None:
    await kafka.create_topic("orders", PARTITIONS)
    await kafka.commit("orders", "orders", dict.fromkeys(range(PARTITIONS), 0))
    async with _serving(_config(broker), api) as (keda, built):
        await built[0].wait_polled()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await keda.is_active(_ref("payments-keda"))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert "name the target in the trigger's metadata" in str(caught.value.details())
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await keda.is_active(_ref(target="nope"))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert (await keda.is_active(_ref("anything", target="orders"))).result is True
        assert (await keda.is_active(_ref("orders"))).result is True  # by the target's name
        assert (await keda.is_active(_ref("orders-consumer"))).result is True  # its workload


async def test_the_push_stream_says_activity_at_once_and_at_each_change(
    kafka: KafkaData, broker: TansuBroker, api: KubeApiServer
) -> None:
    document = _config(broker).model_dump(mode="json")
    document["targets"][0]["min_replicas"] = 0
    document["targets"][0]["cooldown_seconds"] = 1
    config = parse_config(document)
    await kafka.create_topic("orders", PARTITIONS)
    await kafka.commit("orders", "orders", dict.fromkeys(range(PARTITIONS), 0))
    async with _serving(config, api) as (keda, built):
        svc = built[0]

        def idle() -> bool:
            decision = svc.answers()["orders"].decision
            return decision is not None and decision.desired_replicas == 0

        async with asyncio.timeout(10):  # no lag past the cooldown: the idle count, zero
            while not idle():
                await svc.wait_polled()
        stream = keda.stream_is_active(_ref(**SO))
        first = await asyncio.wait_for(stream.read(), 10)
        await kafka.produce("orders", [60] * PARTITIONS)  # lag appears: active
        changes = [first.result]
        async with asyncio.timeout(10):
            while changes[-1] is not True:
                changes.append((await stream.read()).result)
        stream.cancel()
    assert changes[0] is False
    assert changes[-1] is True


def test_the_metric_lands_on_the_decision_unless_the_band_swallows_the_move() -> None:
    """Over every pair up to 40 replicas: the HPA reaches ``desired`` except for the moves no
    value can express (inside the 0.1 tolerance band whatever the metric): up by at most
    10%, down by one step that stays within 10% (down by one from 20 or more)."""
    swallowed = []
    for current in range(1, 41):
        for desired in range(1, 41):
            value = external_metric_for(desired, current)
            hpa, _ = external_average_value_replicas(value, 1.0, current, Tolerances())
            if hpa != desired:
                assert hpa == current, (desired, current, hpa)  # held, never elsewhere
                swallowed.append((desired, current))
    for desired, current in swallowed:
        if desired > current:
            assert desired / current <= 1.1
        else:
            assert (desired - 1 + 0.001) / current >= 0.9
    assert (11, 10) in swallowed  # up by one from 10
    assert (10, 9) not in swallowed
    assert (19, 20) in swallowed  # down by one from 20
    assert (18, 19) not in swallowed
    assert all(external_metric_for(0, current) == 0.0 for current in range(5))


class _Context:
    """A stand-in for grpc's servicer context: only ``abort`` is used."""

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise AssertionError(f"aborted: {code} {details}")


async def test_activity_turns_on_with_the_forecast_before_any_lag() -> None:
    """At zero replicas, no lag and nothing arriving yet, a forecast of arrivals one lead
    ahead makes the decision want a replica: IsActive says so before the lag exists (KEDA
    activates the workload ahead of the load). Without the forecast it stays inactive."""
    target = make_target(
        namespace="shop",  # the ScaledObject's (``_ref``)
        min_replicas=0,
        cooldown_seconds=60,
        triggers=[{**KAFKA, "activation_lag_threshold": 10, "per_replica_throughput": 100.0}],
    )
    now = 10_000.0
    quiet = lag_observation(0, rate=0.0, processing=0.0, at=now)
    state = DecisionState(last_active_at=0.0)  # inactive for long past the cooldown
    answers: dict[str, Any] = {}
    server = ExternalScalerServer(lambda: answers, asyncio.sleep)
    ref = _ref(target="orders")

    without, _ = step(target, 0, {"kafka_lag": quiet}, state=state, now=now)
    answers["orders"] = TargetAnswer(target, without)
    assert without.desired_replicas == 0
    assert (await server.is_active(ref, _Context())).result is False  # type: ignore[arg-type]

    coming = Forecast(horizon_seconds=300, point=50.0, upper=80.0)  # 50 msg/s expected
    ahead, _ = step(
        target, 0, {"kafka_lag": quiet}, state=state, now=now, forecasts={"kafka_lag": coming}
    )
    answers["orders"] = TargetAnswer(target, ahead)
    assert quiet.total_lag == 0
    assert ahead.desired_replicas >= 1
    assert (await server.is_active(ref, _Context())).result is True  # type: ignore[arg-type]


def _shop_answers() -> dict[str, Any]:
    target = make_target(namespace="shop", triggers=[{**KAFKA, "per_replica_throughput": 100.0}])
    decision, _ = step(target, 2, {"kafka_lag": lag_observation(500, rate=100.0, at=1000.0)})
    return {"orders": TargetAnswer(target, decision)}


@pytest.mark.parametrize(
    ("namespace", "cross_namespace", "found"),
    [
        pytest.param("shop", False, True, id="own-namespace"),
        pytest.param("other", False, False, id="other-namespace-refused"),
        pytest.param("other", True, True, id="other-namespace-shared-on-purpose"),
    ],
)
def test_a_scaled_object_gets_only_targets_of_its_own_namespace(
    namespace: str, cross_namespace: bool, found: bool
) -> None:
    """One tenant's ScaledObject naming another tenant's target must not read its decision
    (issue #23), unless the operator shares targets across namespaces on purpose."""
    answers = _shop_answers()
    server = ExternalScalerServer(lambda: answers, asyncio.sleep, cross_namespace=cross_namespace)
    ref = messages.ScaledObjectRef(
        name="orders-keda", namespace=namespace, scalerMetadata={"target": "orders"}
    )
    if found:
        assert server.resolve(ref) is answers["orders"]
        return
    with pytest.raises(LookupError) as caught:
        server.resolve(ref)
    message = str(caught.value)
    assert "'shop'" in message
    assert "'other'" in message
    assert "cross_namespace" in message


@pytest.mark.parametrize(
    ("metric_name", "served"),
    [
        pytest.param(METRIC_NAME, True, id="the-spec-s-name"),
        pytest.param("", True, id="unnamed"),
        pytest.param(f"s0-{METRIC_NAME}", True, id="with-keda-s-trigger-index"),
        pytest.param(f"s12-{METRIC_NAME}", True, id="with-a-larger-index"),
        pytest.param("lag", False, id="another-metric"),
        pytest.param(f"x0-{METRIC_NAME}", False, id="not-an-index"),
        pytest.param(f"{METRIC_NAME}-2", False, id="a-suffix"),
    ],
)
async def test_get_metrics_answers_only_the_metric_its_spec_gave(
    metric_name: str, served: bool
) -> None:
    answers = _shop_answers()
    server = ExternalScalerServer(lambda: answers, asyncio.sleep)
    request = messages.GetMetricsRequest(
        scaledObjectRef=messages.ScaledObjectRef(
            name="orders-keda", namespace="shop", scalerMetadata={"target": "orders"}
        ),
        metricName=metric_name,
    )
    if served:
        response = await server.get_metrics(request, _Context())  # type: ignore[arg-type]
        assert response.metricValues[0].metricName == (metric_name or METRIC_NAME)
        return
    with pytest.raises(AssertionError, match=r"NOT_FOUND.*is not served here"):
        await server.get_metrics(request, _Context())  # type: ignore[arg-type]
