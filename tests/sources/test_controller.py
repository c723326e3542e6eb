"""One target's poll end to end: a real Kafka-protocol broker (tansu), the live decision
core, and a strict Kubernetes API fake reached through kubernetes-asyncio."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import kubernetes_asyncio.client as k8s
import pytest
import structlog
from helpers import KAFKA, make_target
from servers.kafka_data import KafkaData
from servers.kube_api import KubeApiServer

from autoscaler.decision import KafkaLagObservation
from autoscaler.live.actuator import ScaleActuator
from autoscaler.live.conflicts import ConflictChecker
from autoscaler.live.controller import TargetController
from autoscaler.sources.kafka import ConsumerGroupLag, KafkaCluster
from predictors.forecaster import SeriesForecaster

TOPIC = "orders"


@pytest.fixture
async def api() -> AsyncIterator[KubeApiServer]:
    async with KubeApiServer() as server:
        server.add_workload("Deployment", "default", "orders", replicas=1)
        yield server


@pytest.fixture
async def actuator(api: KubeApiServer) -> AsyncIterator[ScaleActuator]:
    client = k8s.ApiClient(k8s.Configuration(host=api.url))
    async with ScaleActuator(client, request_timeout_seconds=5, owns_client=True) as actuator:
        yield actuator


@pytest.fixture
async def lagging(kafka: KafkaData) -> KafkaData:
    """400 messages on 4 partitions, nothing consumed yet: lag 400."""
    await kafka.create_topic(TOPIC, 4)
    await kafka.produce(TOPIC, [100, 100, 100, 100])
    await kafka.commit("orders", TOPIC, dict.fromkeys(range(4), 0))
    return kafka


def _controller(
    cluster: KafkaCluster, actuator: ScaleActuator, leader: bool = True, **target: Any
) -> TargetController:
    settings: dict[str, Any] = {"max_replicas": 10, "dry_run": False, **target}
    config = make_target(triggers=[{**KAFKA, "topics": [TOPIC]}], **settings)
    source = ConsumerGroupLag(cluster, config.triggers[0])  # type: ignore[arg-type]
    return TargetController(config, {"kafka_lag": source}, {}, actuator, lambda: leader)


async def test_lag_scales_the_deployment_and_explains_why(
    lagging: KafkaData, cluster: KafkaCluster, actuator: ScaleActuator, api: KubeApiServer
) -> None:
    controller = _controller(cluster, actuator)
    outcome = await controller.step(1000.0)
    assert outcome.patched
    # ceil(400 / 100) = 4, within the HPA's default +4 pods per 15 s, at the 4-partition cap
    assert api.workload("Deployment", "default", "orders").replicas == 4
    (patch,) = api.patches()
    # the replicas, with the version read as a precondition (a write in between is a 409)
    assert patch.json() == {"spec": {"replicas": 4}, "metadata": {"resourceVersion": "1001"}}
    (event,) = api.events
    assert "1 -> 4 replicas" in event["message"]
    assert controller.state.decision.scale_up_events  # recorded only after the patch succeeded


@pytest.mark.parametrize(
    ("target", "leader", "annotations", "held"),
    [
        pytest.param({"dry_run": True}, True, {}, "dry-run", id="dry-run-never-patches"),
        pytest.param({}, False, {}, "not the leader", id="follower-never-patches"),
        pytest.param({}, True, {"autoscaler.io/paused": "true"}, "paused", id="paused"),
    ],
)
async def test_held_decisions_never_patch(
    lagging: KafkaData,
    cluster: KafkaCluster,
    actuator: ScaleActuator,
    api: KubeApiServer,
    target: dict[str, Any],
    leader: bool,
    annotations: dict[str, str],
    held: str,
) -> None:
    api.workload("Deployment", "default", "orders").annotations.update(annotations)
    controller = _controller(cluster, actuator, leader=leader, **target)
    outcome = await controller.step(1000.0)
    assert outcome.decision is not None
    assert outcome.decision.desired_replicas == 4
    assert (outcome.patched, outcome.held_because) == (False, held)
    assert api.patches() == []
    assert api.workload("Deployment", "default", "orders").replicas == 1


async def test_paused_replicas_pin_the_count(
    lagging: KafkaData, cluster: KafkaCluster, actuator: ScaleActuator, api: KubeApiServer
) -> None:
    api.workload("Deployment", "default", "orders").annotations.update(
        {"autoscaler.io/paused-replicas": "2"}
    )
    outcome = await _controller(cluster, actuator).step(1000.0)
    assert outcome.patched
    assert api.workload("Deployment", "default", "orders").replicas == 2


async def test_api_failure_is_reported_and_not_recorded(
    lagging: KafkaData, cluster: KafkaCluster, actuator: ScaleActuator, api: KubeApiServer
) -> None:
    api.fail("PATCH", "/scale", 500)
    controller = _controller(cluster, actuator)
    outcome = await controller.step(1000.0)
    assert not outcome.patched
    assert outcome.held_because is not None
    assert controller.state.decision.scale_up_events == ()


async def test_missing_target_is_reported_without_a_decision(
    cluster: KafkaCluster, actuator: ScaleActuator, api: KubeApiServer
) -> None:
    api.remove("Deployment", "default", "orders")
    outcome = await _controller(cluster, actuator).step(1000.0)
    assert outcome.decision is None
    assert outcome.held_because is not None
    assert "orders" in outcome.held_because


async def test_broker_down_never_scales_down(
    cluster: KafkaCluster, actuator: ScaleActuator, api: KubeApiServer, broker: Any
) -> None:
    api.set_replicas("Deployment", "default", "orders", 6)
    broker.stop()
    outcome = await _controller(cluster, actuator).step(1000.0)
    assert outcome.decision is not None
    assert outcome.decision.desired_replicas == 6
    assert api.patches() == []


class _SteadyRate:
    """A source with no lag and a steady arrival rate (the poll itself is not under test)."""

    async def poll(self, now: float) -> KafkaLagObservation:
        return KafkaLagObservation(
            observed_at=now, total_lag=0, partition_count=4, arrival_rate=10.0
        )


async def test_a_fit_waits_for_a_free_slot_without_holding_up_the_poll(
    actuator: ScaleActuator,
) -> None:
    config = make_target(triggers=[{**KAFKA, "topics": [TOPIC]}], max_replicas=10)
    forecaster = SeriesForecaster(
        "naive",
        horizon_seconds=30.0,
        quantile=0.9,
        step_seconds=10.0,
        window_seconds=86400.0,
        retrain_interval_seconds=5.0,
    )
    slots = asyncio.Semaphore(1)
    controller = TargetController(
        config, {"kafka_lag": _SteadyRate()}, {"kafka_lag": forecaster}, actuator, refits=slots
    )
    await controller.step(1000.0)
    assert forecaster.last_fit_at == 1000.0  # the first point
    async with slots:  # another target's fit holds the only slot
        outcome = await controller.step(1010.0)
    assert outcome.decision is not None, "the poll went on"
    assert "kafka_lag" in outcome.forecasts, "with the model it had"
    assert forecaster.last_fit_at == 1000.0, "the due refit waited"
    await controller.step(1020.0)
    assert forecaster.last_fit_at == 1020.0, "and ran at the next poll with a free slot"


def _checked(controller: TargetController, actuator: ScaleActuator) -> TargetController:
    """The controller with a conflict check that lists afresh at every poll."""
    controller.conflicts = ConflictChecker(actuator.api_client, refresh_seconds=0)
    return controller


async def test_an_hpa_on_the_workload_holds_every_patch_with_one_warning_event(
    lagging: KafkaData, cluster: KafkaCluster, actuator: ScaleActuator, api: KubeApiServer
) -> None:
    api.add_hpa("default", "orders-cpu", "orders")
    controller = _checked(_controller(cluster, actuator), actuator)
    with structlog.testing.capture_logs() as logs:
        outcomes = [await controller.step(1000.0 + 15 * i) for i in range(3)]
    for outcome in outcomes:
        assert not outcome.patched
        assert outcome.conflict == "HorizontalPodAutoscaler default/orders-cpu"
        assert outcome.held_because is not None
        assert outcome.held_because.startswith("conflict: HorizontalPodAutoscaler")
    assert api.patches() == []
    (event,) = api.events  # said once, not every poll
    assert (event["reason"], event["type"]) == ("Conflict", "Warning")
    assert [e["event"] for e in logs].count("scale_conflict") == 1
    decisions = [e for e in logs if e["event"] == "scaling_decision"]
    assert all(e["conflict"] == "HorizontalPodAutoscaler default/orders-cpu" for e in decisions)

    api.hpas.clear()  # the HPA is deleted: the next poll scales
    with structlog.testing.capture_logs() as logs:
        outcome = await controller.step(1100.0)
    assert outcome.patched
    assert outcome.conflict is None
    assert [e["event"] for e in logs].count("scale_conflict_resolved") == 1


async def test_a_scaled_object_on_the_workload_is_a_conflict_too(
    lagging: KafkaData, cluster: KafkaCluster, actuator: ScaleActuator, api: KubeApiServer
) -> None:
    api.add_scaled_object("default", "orders-keda", "orders")
    controller = _checked(_controller(cluster, actuator), actuator)
    outcome = await controller.step(1000.0)
    assert (outcome.patched, outcome.conflict) == (False, "ScaledObject default/orders-keda")


async def test_a_failing_conflict_check_holds_the_patch(
    lagging: KafkaData, cluster: KafkaCluster, actuator: ScaleActuator, api: KubeApiServer
) -> None:
    """Unable to know whether another autoscaler owns the workload, it does not patch."""
    api.fail("GET", "/horizontalpodautoscalers", 500)
    controller = _checked(_controller(cluster, actuator), actuator)
    outcome = await controller.step(1000.0)
    assert not outcome.patched
    assert outcome.held_because is not None
    assert outcome.held_because.startswith("conflict check failed: list horizontalpodautoscalers")
    assert outcome.api_error == "unavailable"
    assert api.patches() == []
    api.clear_failures()
    assert (await controller.step(1015.0)).patched


async def test_targets_of_a_namespace_asking_at_once_share_one_pair_of_lists(
    actuator: ScaleActuator, api: KubeApiServer
) -> None:
    """Hundreds of targets in one namespace poll at the same moment (at the start, after
    each refresh): one HPA list and one ScaledObject list answer them all, not one pair each."""
    api.add_hpa("default", "orders-cpu", "orders")
    api.delay("GET", "/horizontalpodautoscalers", 0.2)  # slow lists: every poll overlaps
    checker = ConflictChecker(actuator.api_client, refresh_seconds=30)
    names = ["orders", *(f"worker-{n}" for n in range(49))]
    targets = [make_target(name=n, scale_target_ref={"name": n}) for n in names]
    before = len(api.requests)
    found = await asyncio.gather(*(checker.find(target, 1000.0) for target in targets))
    lists = [r for r in api.requests[before:] if r.method == "GET"]
    assert len(lists) == 2, [r.path for r in lists]
    assert str(found[0]) == "HorizontalPodAutoscaler default/orders-cpu"
    assert found[1:] == [None] * 49
    # Within the refresh, from the cache; after it, one pair again.
    await asyncio.gather(*(checker.find(target, 1010.0) for target in targets))
    await asyncio.gather(*(checker.find(target, 1031.0) for target in targets))
    assert len([r for r in api.requests[before:] if r.method == "GET"]) == 4
