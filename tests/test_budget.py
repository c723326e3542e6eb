"""The SLO budget: the quantile in force adapts to the violations, within its range, and
sizing keeps its guarantees."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml
from helpers import KAFKA, UNBOUNDED, lag_observation, make_target

from autoscaler.config import ConfigError, parse_config
from autoscaler.decision import (
    BudgetState,
    Forecast,
    KafkaLagObservation,
    PollInputs,
    PollState,
    poll_step,
)
from autoscaler.decision.budget import (
    QUANTILE_RANGE,
    at_quantile,
    budget_report,
    lag_over_slo,
    track_budget,
)
from predictors.base import QUANTILE_LEVELS
from predictors.forecaster import SeriesForecast

THROUGHPUT = {**KAFKA, "per_replica_throughput": 100.0}


def _target(budget: float | None = 1.0, **overrides: Any) -> Any:
    settings: dict[str, Any] = {
        "triggers": [THROUGHPUT],
        "predictor": {"model": "linear", "quantile": 0.9},
        "slo": {"max_lag_seconds": 60, "budget_percent": budget},
        "behavior": UNBOUNDED,
        "poll_interval_seconds": 60,
        "dry_run": False,
    }
    return make_target(**{**settings, **overrides})


def _lag(lag: int, rate: float = 400.0, at: float = 1000.0) -> KafkaLagObservation:
    return lag_observation(lag, rate, at=at, partitions=50)


LADDER = tuple(1000.0 + 100.0 * i for i in range(len(QUANTILE_LEVELS)))


class Fixed:
    """A forecaster with a calibrated ladder: 1000 msg/s at the median, 1800 at the 99th."""

    def observe(self, timestamp: float, value: float) -> None:
        pass

    def refit_due(self, now: float) -> bool:
        return False

    def refit(self, now: float) -> None:
        pass

    def forecast(self) -> SeriesForecast:
        return SeriesForecast(1000.0, LADDER[5], 90.0, "fixed", ladder=LADDER)


def test_lag_over_the_slo_is_judged_at_the_consuming_replicas_throughput() -> None:
    target = _target()
    # 4 replicas x 100 msg/s = 400 msg/s: 24,000 messages take exactly the 60 s SLO.
    assert lag_over_slo(target, {"kafka_lag": _lag(24_000)}, 4, {}) is False
    assert lag_over_slo(target, {"kafka_lag": _lag(24_001)}, 4, {}) is True
    assert lag_over_slo(target, {"kafka_lag": _lag(24_001)}, 5, {}) is False
    assert lag_over_slo(target, {"kafka_lag": _lag(1)}, 0, {}) is True  # nobody consuming
    assert lag_over_slo(target, {}, 4, {}) is None  # nothing observed: not judged


def test_without_a_configured_throughput_the_learned_one_or_the_processing_rate_judges() -> None:
    target = _target(triggers=[KAFKA])
    assert lag_over_slo(target, {"kafka_lag": _lag(30_000)}, 4, {"kafka_lag": 200.0}) is False
    # processing 400 msg/s measured: 30,000 messages take 75 s
    assert lag_over_slo(target, {"kafka_lag": _lag(30_000)}, 4, {}) is True
    unknown = dataclasses.replace(_lag(30_000), processing_rate=None)
    assert lag_over_slo(target, {"kafka_lag": unknown}, 4, {}) is None


def test_violations_raise_the_quantile_and_clean_polls_lower_it_a_day_at_a_time() -> None:
    target = _target(budget=1.0)
    state = track_budget(BudgetState(), True, target)
    assert state.quantile is not None
    assert state.quantile > 0.9
    # One day of clean 60 s polls lowers it by ADAPTATION (0.25) at most.
    clean = BudgetState(quantile=0.9)
    for _ in range(1440):
        clean = track_budget(clean, False, target)
    assert clean.quantile == pytest.approx(0.9 - 0.25, abs=1e-6)
    for _ in range(3 * 1440):
        clean = track_budget(clean, False, target)
    assert clean.quantile == QUANTILE_RANGE[0]
    for _ in range(1000):
        state = track_budget(state, True, target)
    assert state.quantile == QUANTILE_RANGE[1]
    assert state.violations == 1001
    assert state.judged_polls == 1001


def test_replicas_beyond_the_partitions_consume_nothing_even_when_allowed() -> None:
    """allow_idle_consumers lets the target scale past the partition count; those replicas
    still have no partition: 30 ready on 20 partitions drain at 20 x 100 msg/s."""
    target = _target(triggers=[{**THROUGHPUT, "allow_idle_consumers": True}])
    backlog = lag_observation(130_000, partitions=20)  # 65 s at 2,000 msg/s, 43 s at 3,000
    assert lag_over_slo(target, {"kafka_lag": backlog}, 30, {}) is True


def test_a_paused_or_led_elsewhere_target_counts_but_does_not_learn() -> None:
    target = _target()
    state = PollState(budget=BudgetState(quantile=0.7))
    inputs = PollInputs(1000.0, {"kafka_lag": _lag(50_000)}, 4, 4, acting=False)
    result = poll_step(target, inputs, {"kafka_lag": Fixed()}, state)
    assert result.lag_over_slo is True
    assert result.state.budget.quantile == 0.7
    assert result.state.budget.violations == 1
    acting = poll_step(
        target, dataclasses.replace(inputs, acting=True), {"kafka_lag": Fixed()}, state
    )
    assert acting.state.budget.quantile is not None
    assert acting.state.budget.quantile > 0.7


class OwnUpper(Fixed):
    """A model with an upper of its own (no calibrated ladder), as quantile_gbm."""

    def forecast(self) -> SeriesForecast:
        return SeriesForecast(1000.0, 1500.0, 90.0, "own")


def test_a_model_without_a_ladder_never_winds_the_quantile_above_its_own() -> None:
    """Above its configured quantile such a model has nothing more to give: the quantile
    stops there (and the budget says it is at its limit), instead of climbing to 0.99 and
    taking days to come back."""
    target = _target()
    state = PollState()
    inputs = PollInputs(1000.0, {"kafka_lag": _lag(50_000)}, 4, 4)
    for _ in range(500):
        result = poll_step(target, inputs, {"kafka_lag": OwnUpper()}, state)
        state = result.state
    assert state.budget.quantile == 0.9
    assert result.forecasts["kafka_lag"].upper == 1500.0
    report = budget_report(target, state.budget)
    assert report["ceiling"] == 0.9
    assert report["at_limit"] is True


def test_forecast_only_counts_the_violations_but_leaves_the_quantile() -> None:
    """In dry_run the replicas running are someone else's: their violations are shown, and
    say nothing of the quantile."""
    target = _target(dry_run=True)
    state = BudgetState()
    for _ in range(100):
        state = track_budget(state, True, target)
    assert state.quantile == 0.9
    assert state.violations == 100
    report = budget_report(target, state)
    assert report["adapting"] is False
    assert report["violation_percent"] == 100.0


def test_a_poll_that_cannot_be_judged_leaves_the_quantile() -> None:
    target = _target()
    state = track_budget(BudgetState(quantile=0.7), None, target)
    assert state == BudgetState(quantile=0.7)


def test_the_violations_settle_at_the_budget() -> None:
    """A toy plant: the lag is over the SLO whenever the quantile is below the 'true' one
    the load needs, with noise; the realized share converges to the budget."""
    import random

    target = _target(budget=2.0)
    rng = random.Random(3)
    state = BudgetState()
    for _ in range(30 * 1440):
        assert state.quantile is None or 0.5 <= state.quantile <= 0.99
        needed = rng.betavariate(8, 2)  # the quantile this poll's burst needs
        violated = state.quantile is not None and state.quantile < needed
        state = track_budget(state, violated, target)
    assert state.violations / state.judged_polls == pytest.approx(0.02, abs=0.004)


def test_the_quantile_in_force_is_read_off_the_calibrated_ladder() -> None:
    forecast = Forecast(90.0, 1000.0, LADDER[5], ladder=LADDER)
    assert at_quantile(forecast, 0.5, 0.9) == LADDER[0]
    assert at_quantile(forecast, 0.99, 0.9) == LADDER[-1]
    assert at_quantile(forecast, 0.75, 0.9) == pytest.approx((LADDER[2] + LADDER[3]) / 2)
    # A model with an upper of its own: the median is the point, the configured quantile
    # the upper, and nothing above it is invented.
    own = Forecast(90.0, 1000.0, 1400.0)
    assert at_quantile(own, 0.7, 0.9) == pytest.approx(1200.0)
    assert at_quantile(own, 0.99, 0.9) == 1400.0


def test_the_poll_step_sizes_on_the_quantile_in_force() -> None:
    target = _target()
    state = PollState(budget=BudgetState(quantile=0.5))
    inputs = PollInputs(1000.0, {"kafka_lag": _lag(0, rate=400.0)}, 4, 4)
    result = poll_step(target, inputs, {"kafka_lag": Fixed()}, state)
    # Within the SLO: the quantile moves down from 0.5 (already at the floor): size for
    # the median, 1000 msg/s / 100 = 10 replicas.
    assert result.forecasts["kafka_lag"].upper == LADDER[0]
    assert result.decision is not None
    assert result.decision.desired_replicas == 10
    assert result.lag_over_slo is False
    high = PollState(budget=BudgetState(quantile=0.99))
    result = poll_step(target, inputs, {"kafka_lag": Fixed()}, high)
    assert result.decision is not None
    assert result.decision.desired_replicas == 18


def test_without_a_budget_the_configured_quantile_sizes_and_nothing_is_tracked() -> None:
    target = _target(budget=None)
    inputs = PollInputs(1000.0, {"kafka_lag": _lag(50_000)}, 4, 4)
    result = poll_step(target, inputs, {"kafka_lag": Fixed()}, PollState())
    assert result.forecasts["kafka_lag"].upper == LADDER[5]
    assert result.state.budget == BudgetState()
    assert result.lag_over_slo is None
    assert budget_report(target, result.state.budget) == {}


def test_a_low_quantile_never_sizes_below_what_arrives_now() -> None:
    target = _target()
    state = PollState(budget=BudgetState(quantile=0.5))
    inputs = PollInputs(1000.0, {"kafka_lag": _lag(0, rate=2500.0)}, 25, 25)
    result = poll_step(target, inputs, {"kafka_lag": Fixed()}, state)
    assert result.decision is not None
    assert result.decision.desired_replicas == 25


def test_missing_data_with_a_budget_still_never_scales_down() -> None:
    target = _target()
    state = PollState(budget=BudgetState(quantile=0.5))
    inputs = PollInputs(1000.0, {}, 30, 30)
    result = poll_step(target, inputs, {"kafka_lag": Fixed()}, state)
    assert result.decision is not None
    assert result.decision.desired_replicas == 30
    assert result.state.budget.quantile == 0.5


def test_the_report_says_when_the_budget_cannot_be_met_by_the_quantile() -> None:
    target = _target(budget=1.0)
    pinned = BudgetState(
        quantile=0.99, judged_polls=100, violations=10, recent_violation_ratio=0.05
    )
    report = budget_report(target, pinned)
    assert report["at_limit"] is True
    assert report["quantile"] == 0.99
    assert report["violation_percent"] == 10.0
    relaxed = dataclasses.replace(pinned, quantile=0.8)
    assert budget_report(target, relaxed)["at_limit"] is False


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        (0, "budget_percent: must be > 0"),
        (100, "budget_percent: must be < 100"),
        (-1, "budget_percent: must be > 0"),
    ],
)
def test_a_budget_outside_0_to_100_percent_is_refused_with_its_path(
    budget: float, message: str
) -> None:
    text = _config_text(f"budget_percent: {budget}")
    with pytest.raises(ConfigError) as error:
        parse_config(yaml.safe_load(text))
    assert f"targets[0].slo.{message}" in str(error.value)


def test_a_budget_needs_a_predictor_and_a_kafka_trigger() -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(yaml.safe_load(_config_text("budget_percent: 1", model="none")))
    assert "targets[0].slo: budget_percent adapts the forecast quantile" in str(error.value)
    document = yaml.safe_load(_config_text("budget_percent: 1"))
    document["prometheus_servers"] = {"main": {"url": "http://prometheus:9090"}}
    document["targets"][0]["triggers"] = [
        {"type": "prometheus", "server": "main", "query": "sum(x)", "target_value": 10}
    ]
    with pytest.raises(ConfigError) as error:
        parse_config(document)
    assert "targets[0].slo: budget_percent is a budget for consumer lag" in str(error.value)


def _config_text(slo_line: str, model: str = "linear") -> str:
    return f"""
kafka_clusters:
  main: {{bootstrap_servers: ["localhost:9092"]}}
targets:
  - name: orders
    scale_target_ref: {{name: orders}}
    predictor: {{model: {model}}}
    slo:
      {slo_line}
    triggers:
      - {{type: kafka_lag, cluster: main, consumer_group: orders}}
"""


def test_a_reload_keeps_the_quantile_only_while_the_budget_settings_stay() -> None:
    from typing import cast

    from autoscaler.live.actuator import ScaleActuator
    from autoscaler.live.controller import TargetController
    from autoscaler.live.service import _carried_state

    target = _target()
    controller = TargetController(target, {}, {}, cast(ScaleActuator, None))
    controller.state = PollState(budget=BudgetState(quantile=0.7, judged_polls=10))
    same = target.model_copy(update={"max_replicas": 50})  # not a budget setting
    assert _carried_state(controller, same).budget.quantile == 0.7
    for changed in (
        target.model_copy(
            update={"predictor": target.predictor.model_copy(update={"quantile": 0.8})}
        ),
        target.model_copy(update={"slo": target.slo.model_copy(update={"budget_percent": 2.0})}),
    ):
        assert _carried_state(controller, changed).budget == BudgetState()
