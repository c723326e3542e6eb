"""The planner inside ``decide``: a Kafka trigger planned over its forecast path, the
fallbacks to per-poll sizing (each saying why), the safety rules that hold whatever the plan
says, and the planner's state logged once by the live controller."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pytest
from helpers import KAFKA, lag_observation, make_target, step
from structlog.testing import capture_logs

from autoscaler.config.model import TargetConfig
from autoscaler.decision import DecisionState, Forecast, KafkaLagObservation, Rule, Unavailable
from autoscaler.decision.budget import quantile_value
from autoscaler.decision.planning import path_at_quantile
from autoscaler.decision.types import ForecastPath
from autoscaler.live.actuator import ScaleActuator, ScaleResult, ScaleState
from autoscaler.live.controller import TargetController
from autoscaler.observability.metrics import ServiceMetrics
from predictors.base import QUANTILE_LEVELS

NOW = 1000.0
MU = 100.0


def planning_target(**overrides: Any) -> TargetConfig:
    base: dict[str, Any] = {
        "triggers": [{**KAFKA, "per_replica_throughput": MU}],
        "predictor": {"model": "linear"},
        "poll_interval_seconds": 30,
        "startup_seconds": 60,
        "max_replicas": 50,
        "slo": {"max_lag_seconds": 60},
    }
    base.update(overrides)
    return make_target(**base)


def flat_path(rate: float, now: float = NOW, seconds: float = 3600.0) -> ForecastPath:
    times = now + np.arange(60.0, seconds + 60.0, 60.0)
    values = np.full(len(times), rate)
    return ForecastPath(times=times, point=values, upper=values * 1.1, ladder=None)


def forecast(path: ForecastPath | None, point: float = 400.0) -> dict[str, Forecast]:
    return {
        "kafka_lag": Forecast(
            horizon_seconds=90.0, point=point, upper=point * 1.1, model="linear", path=path
        )
    }


def test_a_kafka_trigger_with_a_path_is_planned() -> None:
    target = planning_target()
    decision, _ = step(
        target,
        4,
        {"kafka_lag": lag_observation(0, rate=400.0)},
        forecasts=forecast(flat_path(1000.0)),
    )
    (rec,) = decision.triggers
    assert rec.rule is Rule.PLANNED
    assert rec.plan is not None
    assert rec.plan_fallback is None
    # 1,000 msg/s at the configured quantile (upper = 1.1x) need 11 replicas of 100 msg/s
    # from the first step a new replica can consume; the rate policies allow 4 -> 8 now.
    assert decision.desired_replicas == 8
    assert "plan over" in rec.detail
    fields = decision.log_fields()["triggers"][0]
    schedule = fields["plan"]["schedule"]
    assert schedule[0][0] == rec.plan.first
    assert sum(steps for _, steps in schedule) == len(rec.plan.replicas)
    expanded = [count for count, steps in schedule for _ in range(steps)]
    assert expanded == list(rec.plan.replicas)


@pytest.mark.parametrize(
    ("target", "forecasts", "kind"),
    [
        pytest.param(planning_target(), forecast(None), "no_path", id="no-path-yet"),
        pytest.param(
            planning_target(triggers=[{**KAFKA, "lag_threshold": 100}]),
            forecast(flat_path(1000.0)),
            "no_throughput",
            id="throughput-unknown",
        ),
        pytest.param(
            planning_target(
                triggers=[
                    {
                        **KAFKA,
                        "per_replica_throughput": MU,
                        "topics": ["orders"],
                        "ensure_even_distribution_of_partitions": True,
                    }
                ]
            ),
            forecast(flat_path(1000.0)),
            "even_distribution",
            id="even-distribution",
        ),
    ],
)
def test_without_what_a_plan_needs_the_trigger_is_sized_and_says_why(
    target: TargetConfig, forecasts: dict[str, Forecast], kind: str
) -> None:
    decision, _ = step(
        target, 4, {"kafka_lag": lag_observation(0, rate=400.0)}, forecasts=forecasts
    )
    (rec,) = decision.triggers
    assert rec.rule is not Rule.PLANNED
    assert rec.plan is None
    assert rec.plan_fallback is not None
    assert rec.plan_fallback.startswith(f"{kind}: ")
    assert "not planned" in rec.detail


def test_planner_none_sizes_whatever_the_path() -> None:
    target = planning_target(planner="none")
    assert not target.planning
    decision, _ = step(
        target,
        4,
        {"kafka_lag": lag_observation(0, rate=400.0)},
        forecasts=forecast(flat_path(1000.0)),
    )
    (rec,) = decision.triggers
    assert rec.rule in (Rule.CAPACITY, Rule.WITHIN_TOLERANCE)
    assert rec.plan is None
    assert rec.plan_fallback is None


@pytest.mark.parametrize(
    "observation",
    [
        pytest.param(Unavailable(NOW, "broker down"), id="missing"),
        pytest.param(lag_observation(0, rate=0.0, at=NOW - 3600), id="stale"),
    ],
)
def test_missing_or_stale_data_never_scales_down_even_when_the_plan_would(
    observation: KafkaLagObservation | Unavailable,
) -> None:
    target = planning_target()
    decision, _ = step(target, 10, {"kafka_lag": observation}, forecasts=forecast(flat_path(0.0)))
    assert decision.desired_replicas == 10
    assert decision.triggers[0].plan is None


def test_no_plan_sizes_below_what_arrives_now() -> None:
    # The path says the load vanishes; 900 msg/s arrive now: at least 9 replicas stay.
    target = planning_target(behavior={"scale_down": {"stabilization_window_seconds": 0}})
    decision, _ = step(
        target,
        12,
        {"kafka_lag": lag_observation(0, rate=900.0)},
        forecasts=forecast(flat_path(0.0), point=0.0),
    )
    assert decision.triggers[0].rule is Rule.PLANNED
    assert decision.desired_replicas == 9


def test_a_planned_scale_down_is_announced_and_happens_when_the_window_allows() -> None:
    """With the HPA's 300 s scale-down window, a plan that wants fewer replicas records the
    lower count at once (the window keeps the count), and after the window has passed with
    every plan agreeing, the count goes down; never below what the plan sets now."""
    target = planning_target()
    state = DecisionState()
    counts = []
    current = 10
    for k in range(14):
        now = NOW + 30 * k
        decision, state = step(
            target,
            current,
            {"kafka_lag": lag_observation(0, rate=300.0, at=now)},
            state=state,
            now=now,
            forecasts=forecast(flat_path(300.0, now=now), point=300.0),
        )
        counts.append(decision.desired_replicas)
        rec = decision.triggers[0]
        assert rec.plan is not None
        assert decision.desired_replicas >= min(rec.plan.first, current)
        current = decision.desired_replicas
    # The window (300 s = 10 polls, the first poll recording the current count) holds 10.
    assert counts[:10] == [10] * 10
    # 330 msg/s ahead (the upper) at 100 msg/s per replica, the backlog drained where this
    # decision commits: 4.
    assert counts[-1] == 4


def test_path_values_at_a_quantile_agree_with_the_point_forecasts() -> None:
    """Along a path, a quantile is read as the budget reads one forecast (``quantile_value``):
    interpolated in the ladder, or between the point and an upper of the model's own."""
    rng = np.random.default_rng(3)
    ladder = np.sort(rng.uniform(0, 100, (7, len(QUANTILE_LEVELS))), axis=1)
    calibrated = ForecastPath(np.arange(7.0), ladder[:, 0], ladder[:, 5], ladder)
    own = ForecastPath(np.arange(7.0), ladder[:, 0], ladder[:, 5], None)
    for q in (0.3, 0.5, 0.55, 0.8, 0.85, 0.9, 0.93, 0.99, 0.995):
        for path, rows in ((calibrated, ladder), (own, None)):
            expected = [
                quantile_value(
                    float(ladder[i, 0]),
                    float(ladder[i, 5]),
                    None if rows is None else tuple(rows[i].tolist()),
                    q,
                    0.9,
                )
                for i in range(7)
            ]
            np.testing.assert_allclose(path_at_quantile(path, q, 0.9), expected)


class _Source:
    def __init__(self) -> None:
        self.rate = 400.0

    async def poll(self, now: float) -> KafkaLagObservation:
        return lag_observation(0, rate=self.rate, at=now)


class _Api:
    async def read(self, target: TargetConfig) -> ScaleState:
        return ScaleState(4, 4, "1", ready_replicas=4)

    async def scale(
        self, target: TargetConfig, replicas: int, *, expected_current: int | None = None
    ) -> ScaleResult:
        return ScaleResult("scaled", replicas, 4, "1", attempts=1)

    async def event(
        self, target: TargetConfig, reason: str, message: str, type: str = "Normal"
    ) -> None:
        return None


class _PathOnAndOff:
    """A forecaster whose path comes and goes (``on``), as a model's would while it has
    no fit yet, or after it failed."""

    def __init__(self) -> None:
        self.on = False
        self.now = NOW

    def observe(self, timestamp: float, value: float) -> None:
        self.now = timestamp

    def refit_due(self, now: float) -> bool:
        return False

    def refit(self, now: float) -> None:
        return None

    def forecast(self) -> Any:
        from predictors.forecaster import SeriesForecast, SeriesPath

        path = None
        if self.on:
            p = flat_path(500.0, now=self.now)
            path = SeriesPath(p.times, p.point, p.upper, None)
        return SeriesForecast(500.0, 550.0, 90.0, "linear", path=path)


async def test_the_controller_logs_the_planner_state_when_it_changes_not_every_poll() -> None:
    target = planning_target(dry_run=True)
    forecaster = _PathOnAndOff()
    controller = TargetController(
        target, {"kafka_lag": _Source()}, {"kafka_lag": forecaster}, cast(ScaleActuator, _Api())
    )
    metrics = ServiceMetrics()
    with capture_logs() as logs:
        for k in range(12):
            forecaster.on = 4 <= k < 8
            outcome = await controller.step(NOW + 30 * k)
            assert outcome.decision is not None
            metrics.observe_decision(target.name, outcome.decision)
    fallbacks = [e for e in logs if e["event"] == "planner_fallback"]
    resumed = [e for e in logs if e["event"] == "planner_resumed"]
    assert len(fallbacks) == 2  # at the start, and when the path went away at poll 8
    assert fallbacks[0]["reason"].startswith("no_path: ")
    assert fallbacks[0]["log_level"] == "warning"
    assert len(resumed) == 1
    text = metrics.render().decode()
    assert 'autoscaler_planned{target="orders",trigger="kafka_lag"} 0.0' in text
    fallbacks_total = 'reason="no_path",target="orders",trigger="kafka_lag"} 8.0'
    assert f"autoscaler_planner_fallbacks_total{{{fallbacks_total}" in text
