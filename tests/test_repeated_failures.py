"""An outage is logged when it starts, changes or ends, and every few minutes while it
lasts: not at every poll of every target."""

from __future__ import annotations

from typing import cast

from helpers import KAFKA, make_target
from structlog.testing import capture_logs

from autoscaler.config.model import TargetConfig
from autoscaler.decision import KafkaLagObservation
from autoscaler.live.actuator import ApiUnavailable, ScaleActuator, ScaleState
from autoscaler.live.controller import TargetController
from autoscaler.observability.repeats import RepeatedFailure


def test_a_failure_is_news_when_it_starts_or_changes_then_a_summary_then_its_end() -> None:
    state = RepeatedFailure(summary_seconds=300)
    assert state.failed("503", 0.0) == "new"
    assert [state.failed("503", t) for t in (15.0, 30.0, 299.0)] == [None, None, None]
    assert state.failed("503", 300.0) == "summary"
    assert state.failed("timeout", 315.0) == "new"  # another error: said at once
    assert state.recovered(330.0) == ("timeout", 1, 15.0)
    assert state.recovered(345.0) is None  # already working


class _Source:
    async def poll(self, now: float) -> KafkaLagObservation:
        return KafkaLagObservation(observed_at=now, total_lag=0, partition_count=4)


class _FlakyApi:
    """Refuses to read the scale until ``up`` is set."""

    up = False

    async def read(self, target: TargetConfig) -> ScaleState:
        if not self.up:
            raise ApiUnavailable("GET deployments/orders/scale: 503 Service Unavailable")
        return ScaleState(2, 2, "1", ready_replicas=2)


async def test_a_twenty_minute_scale_outage_is_five_lines_not_eighty() -> None:
    target = make_target(triggers=[KAFKA], poll_interval_seconds=15)
    api = _FlakyApi()
    controller = TargetController(target, {"kafka_lag": _Source()}, {}, cast(ScaleActuator, api))
    with capture_logs() as logs:
        for k in range(80):  # 20 minutes of 15 s polls without the API server
            await controller.step(1000.0 + 15 * k)
        api.up = True
        await controller.step(1000.0 + 15 * 80)
    unreadable = [e for e in logs if e["event"] == "scale_unreadable"]
    assert len(unreadable) == 4  # the start, then a summary every 5 minutes (20 min)
    assert "occurrences" not in unreadable[0]
    assert unreadable[-1]["occurrences"] >= 60
    (back,) = [e for e in logs if e["event"] == "scale_readable_again"]
    assert back["occurrences"] == 80
    assert back["after_seconds"] == 1200


class _Forbidden:
    """Reads are forbidden (RBAC) or the API server is down, as ``error`` says."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def read(self, target: TargetConfig) -> ScaleState:
        raise self.error


async def test_readiness_covers_a_forbidden_scale_but_not_an_api_outage() -> None:
    """A service whose every poll is refused by RBAC is not ready (it cannot do its job,
    and a rollout should stop); one whose API server is down stays ready: it is temporary,
    and an unready pod under the PodDisruptionBudget would block node drains."""
    from pathlib import Path

    from autoscaler.config import load_config
    from autoscaler.live.actuator import PermissionDenied
    from autoscaler.live.service import Service

    config = load_config(Path(__file__).resolve().parents[1] / "config.example.yaml")
    target = make_target(triggers=[KAFKA], fallback={"failure_threshold": 3})
    for error, ready in (
        (PermissionDenied("get", "deployments/scale", "default"), False),
        (ApiUnavailable("GET deployments/orders/scale: 503"), True),
    ):
        service = Service(config, cast(ScaleActuator, None))
        controller = TargetController(
            target, {"kafka_lag": _Source()}, {}, cast(ScaleActuator, _Forbidden(error))
        )
        service.controllers, service.built = {"orders": controller}, True
        for k in range(3):
            assert service.ready()[0] is True  # within the budget of 3 failed polls
            await controller.step(1000.0 + 15 * k)
        is_ready, detail = service.ready()
        assert is_ready is ready, detail
        if not ready:
            assert "orders: the scale read failed 3 polls in a row: forbidden: need 'get'" in detail
