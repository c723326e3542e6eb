"""Table-driven tests of the pure decision core, one named case per row."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from helpers import KAFKA, PROMETHEUS, UNBOUNDED, make_target, step
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.decision import (
    DecisionState,
    Forecast,
    KafkaLagObservation,
    MetricObservation,
    Rule,
    Unavailable,
)
from autoscaler.decision.sizing import even_share

NOW = 1000.0


def lag(total: int, partitions: int = 50, **extra: Any) -> KafkaLagObservation:
    return KafkaLagObservation(
        observed_at=NOW, total_lag=total, partition_count=partitions, **extra
    )


def metric(value: float, at: float = NOW) -> MetricObservation:
    return MetricObservation(observed_at=at, value=value)


# --------------------------------------------------------------------------- sizing


@pytest.mark.parametrize(
    ("trigger", "current", "observation", "forecast", "ready", "expected", "rule"),
    [
        pytest.param({}, 2, lag(1000), None, None, 10, Rule.KAFKA_LAG, id="keda-lag-per-replica"),
        pytest.param(
            {}, 2, lag(205), None, None, 2, Rule.WITHIN_TOLERANCE, id="keda-within-tolerance"
        ),
        pytest.param({}, 2, lag(230), None, None, 3, Rule.KAFKA_LAG, id="keda-outside-tolerance"),
        pytest.param({}, 3, lag(0), None, None, 0, Rule.KAFKA_LAG, id="keda-no-lag"),
        pytest.param(
            {}, 2, lag(10_000, partitions=8), None, None, 8, Rule.PARTITION_CAP, id="partition-cap"
        ),
        pytest.param(
            {},
            19,
            lag(100_000, partitions=20),
            None,
            None,
            20,
            Rule.PARTITION_CAP,
            id="keda-2908-last-replica-below-cap-is-added",
        ),
        pytest.param(
            {"allow_idle_consumers": True},
            2,
            lag(10_000, partitions=8),
            None,
            None,
            100,
            Rule.KAFKA_LAG,
            id="allow-idle-consumers-uncapped",
        ),
        pytest.param(
            {"limit_to_partitions_with_lag": True},
            2,
            lag(10_000, partitions=8, partitions_with_lag=3),
            None,
            None,
            3,
            Rule.PARTITION_CAP,
            id="limit-to-partitions-with-lag",
        ),
        pytest.param(
            {"exclude_persistent_lag": True},
            1,
            lag(1000, persistent_lag=800),
            None,
            None,
            2,
            Rule.KAFKA_LAG,
            id="exclude-persistent-lag",
        ),
        pytest.param(
            {"per_replica_throughput": 100.0},
            4,
            lag(0, arrival_rate=450.0),
            None,
            None,
            # backlog at ready = (450 - 400) * 60 s = 3000; (450 + 3000/60) / 100 = 5
            5,
            Rule.CAPACITY,
            id="capacity-arrival-rate-and-backlog-at-ready",
        ),
        pytest.param(
            {"per_replica_throughput": 100.0},
            4,
            lag(0, arrival_rate=450.0),
            Forecast(horizon_seconds=90, point=600.0, upper=800.0),
            None,
            # (800 ahead + 3000/60) / 100 = 8.5
            9,
            Rule.CAPACITY,
            id="capacity-sized-on-forecast-upper-quantile",
        ),
        pytest.param(
            {"per_replica_throughput": 100.0},
            4,
            lag(0, arrival_rate=400.0),
            None,
            None,
            4,
            Rule.WITHIN_TOLERANCE,
            id="capacity-within-tolerance",
        ),
        pytest.param(
            {"per_replica_throughput": 100.0},
            10,
            lag(60_000, arrival_rate=500.0),
            None,
            None,
            # backlog at ready = 60000 - 500*60 = 30000 -> (500 + 500) / 100 = 10
            10,
            Rule.WITHIN_TOLERANCE,
            id="capacity-drains-backlog-within-slo",
        ),
        pytest.param(
            {"per_replica_throughput": 100.0},
            10,
            lag(0, arrival_rate=500.0),
            None,
            6,
            # only 6 ready: backlog at ready = (500 - 600) * 60 < 0 -> 0; 500/100 = 5
            5,
            Rule.CAPACITY,
            id="capacity-uses-ready-replicas",
        ),
        pytest.param(
            {"per_replica_throughput": 100.0},
            4,
            lag(1000),
            None,
            None,
            10,
            Rule.KAFKA_LAG,
            id="capacity-needs-an-arrival-rate-else-keda-rule",
        ),
    ],
)
def test_kafka_sizing(
    trigger: dict[str, Any],
    current: int,
    observation: KafkaLagObservation,
    forecast: Forecast | None,
    ready: int | None,
    expected: int,
    rule: Rule,
) -> None:
    target = make_target(
        triggers=[{**KAFKA, **trigger}], behavior=UNBOUNDED, min_replicas=0, idle_replicas=None
    )
    forecasts = {} if forecast is None else {"kafka_lag": forecast}
    decision, _ = step(
        target, current, {"kafka_lag": observation}, forecasts=forecasts, ready=ready
    )
    (rec,) = decision.triggers
    assert (rec.replicas, rec.rule) == (expected, rule), rec.detail


@pytest.mark.parametrize(
    ("trigger", "learned", "expected", "rule"),
    [
        pytest.param({}, 100.0, 5, Rule.CAPACITY, id="learned-throughput-sizes-for-capacity"),
        pytest.param(
            {"per_replica_throughput": 50.0}, 100.0, 14, Rule.CAPACITY, id="configured-wins"
        ),
        pytest.param({}, None, 0, Rule.KAFKA_LAG, id="nothing-learned-keda-rule"),
        pytest.param({}, -1.0, 0, Rule.KAFKA_LAG, id="nonsense-learned-value-ignored"),
    ],
)
def test_kafka_sizing_with_learned_throughput(
    trigger: dict[str, Any], learned: float | None, expected: int, rule: Rule
) -> None:
    target = make_target(
        triggers=[{**KAFKA, **trigger}], behavior=UNBOUNDED, min_replicas=0, idle_replicas=None
    )
    observation = lag(0, arrival_rate=450.0)
    decision, _ = step(
        target,
        4,
        {"kafka_lag": observation},
        learned={} if learned is None else {"kafka_lag": learned},
    )
    (rec,) = decision.triggers
    assert (rec.replicas, rec.rule) == (expected, rule), rec.detail
    if rule is Rule.CAPACITY:
        assert ("configured" if trigger else "learned") in rec.detail


@pytest.mark.parametrize(
    ("trigger", "current", "value", "forecast", "expected", "rule"),
    [
        pytest.param({}, 3, 950.0, None, 10, Rule.METRIC_VALUE, id="average-value"),
        pytest.param({}, 3, 310.0, None, 3, Rule.WITHIN_TOLERANCE, id="average-value-tolerance"),
        pytest.param(
            {"metric_type": "Value"}, 2, 300.0, None, 6, Rule.METRIC_VALUE, id="value-x-ready"
        ),
        pytest.param(
            {},
            3,
            950.0,
            Forecast(horizon_seconds=90, point=1200.0, upper=1500.0),
            15,
            Rule.METRIC_VALUE,
            id="forecast-upper-quantile",
        ),
        pytest.param(
            {},
            10,
            950.0,
            Forecast(horizon_seconds=90, point=100.0, upper=200.0),
            10,
            Rule.WITHIN_TOLERANCE,
            id="forecast-below-now-never-shrinks-below-observed",
        ),
    ],
)
def test_prometheus_sizing(
    trigger: dict[str, Any],
    current: int,
    value: float,
    forecast: Forecast | None,
    expected: int,
    rule: Rule,
) -> None:
    target = make_target(triggers=[{**PROMETHEUS, **trigger}], behavior=UNBOUNDED)
    forecasts = {} if forecast is None else {"prometheus": forecast}
    decision, _ = step(target, current, {"prometheus": metric(value)}, forecasts=forecasts)
    (rec,) = decision.triggers
    assert (rec.replicas, rec.rule) == (expected, rule), rec.detail


@pytest.mark.parametrize(
    ("combination", "expected"),
    [pytest.param("max", 10, id="max"), pytest.param("min", 4, id="min")],
)
def test_trigger_combination(combination: str, expected: int) -> None:
    target = make_target(
        triggers=[KAFKA, PROMETHEUS], trigger_combination=combination, behavior=UNBOUNDED
    )
    decision, _ = step(target, 5, {"kafka_lag": lag(1000), "prometheus": metric(400.0)})
    assert decision.raw_recommendation == expected
    assert decision.desired_replicas == expected


# ----------------------------------------------------------------- HPA behavior, end to end


def test_docs_scale_down_example_percent_and_pods_policies() -> None:
    """kubernetes.io HPA docs: 80 replicas scaled to 10 with Pods 4/60s and Percent 10/60s
    (select Max): 8 removed first, then 10% of 72 rounds up to 8, ... Pods 4 below 40."""
    target = make_target(
        triggers=[PROMETHEUS],
        max_replicas=100,
        behavior={
            "scale_down": {
                "stabilization_window_seconds": 0,
                "policies": [
                    {"type": "Pods", "value": 4, "period_seconds": 60},
                    {"type": "Percent", "value": 10, "period_seconds": 60},
                ],
            }
        },
    )
    current, state, seen = 80, DecisionState(), [80]
    for poll in range(20):
        decision, state = step(
            target,
            current,
            {"prometheus": metric(1000.0, NOW + 60 * poll)},
            state,
            now=NOW + 60 * poll,
        )
        current = decision.desired_replicas
        seen.append(current)
    assert seen[:8] == [80, 72, 64, 57, 51, 45, 40, 36]
    assert seen[8:14] == [32, 28, 24, 20, 16, 12]
    assert seen[14:] == [10] * 7


def test_docs_default_scale_up_doubles_or_adds_four() -> None:
    """HPA defaults: per 15 s, +4 pods or +100%, whichever is more."""
    target = make_target(triggers=[PROMETHEUS], max_replicas=100)
    current, state, seen = 1, DecisionState(), [1]
    for poll in range(6):
        now = NOW + 15 * poll
        decision, state = step(target, current, {"prometheus": metric(10_000.0, now)}, state, now)
        current = decision.desired_replicas
        seen.append(current)
    assert seen == [1, 5, 10, 20, 40, 80, 100]


def test_default_scale_down_waits_for_the_stabilization_window() -> None:
    """Scale-down uses the highest recommendation of the last 300 s (HPA default)."""
    target = make_target(triggers=[PROMETHEUS])
    state = DecisionState()
    decision, state = step(target, 10, {"prometheus": metric(1000.0)}, state, NOW)
    assert decision.desired_replicas == 10
    for seconds in (15, 150, 285):
        now = NOW + seconds
        decision, state = step(target, 10, {"prometheus": metric(200.0, now)}, state, now)
        assert decision.desired_replicas == 10
        assert decision.reason is Rule.SCALE_DOWN_STABILIZED
    now = NOW + 300
    decision, state = step(target, 10, {"prometheus": metric(200.0, now)}, state, now)
    assert decision.desired_replicas == 2


def test_first_decision_is_stabilized_against_the_current_count() -> None:
    """recordInitialRecommendation: a restarted autoscaler does not scale down at once."""
    target = make_target(triggers=[PROMETHEUS])
    decision, state = step(target, 10, {"prometheus": metric(100.0)})
    assert decision.desired_replicas == 10
    assert decision.reason is Rule.SCALE_DOWN_STABILIZED
    assert state.recommendations is not None
    assert [r.replicas for r in state.recommendations] == [10, 1]


def test_select_policy_disabled_never_scales_down() -> None:
    target = make_target(
        triggers=[PROMETHEUS],
        behavior={"scale_down": {"stabilization_window_seconds": 0, "select_policy": "Disabled"}},
    )
    decision, _ = step(target, 10, {"prometheus": metric(100.0)})
    assert decision.desired_replicas == 10
    assert decision.reason is Rule.SCALE_DOWN_LIMIT


@pytest.mark.parametrize(
    ("current", "min_replicas", "max_replicas", "expected", "rule"),
    [
        pytest.param(120, 1, 100, 100, Rule.TOO_MANY_REPLICAS, id="above-max-at-once"),
        pytest.param(1, 3, 100, 3, Rule.TOO_FEW_REPLICAS, id="below-min-at-once"),
    ],
)
def test_outside_limits_is_corrected_without_behavior(
    current: int, min_replicas: int, max_replicas: int, expected: int, rule: Rule
) -> None:
    target = make_target(
        triggers=[PROMETHEUS], min_replicas=min_replicas, max_replicas=max_replicas
    )
    decision, _ = step(target, current, {"prometheus": metric(float(current) * 100)})
    assert (decision.desired_replicas, decision.reason) == (expected, rule)


# ------------------------------------------------- ensure_even_distribution_of_partitions

EVEN = {**KAFKA, "topics": ["orders"], "ensure_even_distribution_of_partitions": True}


@pytest.mark.parametrize(
    ("trigger", "current", "observation", "expected", "rule"),
    [
        pytest.param({}, 2, lag(500, partitions=12), 6, Rule.EVEN_DISTRIBUTION, id="next-divisor"),
        pytest.param({}, 2, lag(400, partitions=12), 4, Rule.KAFKA_LAG, id="already-a-divisor"),
        pytest.param({}, 1, lag(200, partitions=7), 7, Rule.EVEN_DISTRIBUTION, id="prime-count"),
        pytest.param({}, 3, lag(0, partitions=12), 0, Rule.KAFKA_LAG, id="no-lag-stays-zero"),
        # KEDA's TestGetNextFactor: lag 101, threshold 10, 100 partitions -> 20.
        pytest.param(
            {"lag_threshold": 10},
            2,
            lag(101, partitions=100),
            20,
            Rule.EVEN_DISTRIBUTION,
            id="keda-next-factor",
        ),
        # The tolerance first, then the rounding: 11.5 of 12 is within tolerance of 11, and
        # still goes to 12. (KEDA rounds the lag to 12 x threshold first; the HPA's tolerance
        # then keeps 11 consumers on 12 partitions.)
        pytest.param(
            {},
            11,
            lag(1150, partitions=12),
            12,
            Rule.EVEN_DISTRIBUTION,
            id="rounded-after-the-tolerance",
        ),
        pytest.param(
            {}, 2, lag(10_000, partitions=12), 12, Rule.PARTITION_CAP, id="above-the-partitions"
        ),
        # KEDA caps an even share at the partitions even with allowIdleConsumers.
        pytest.param(
            {"allow_idle_consumers": True},
            2,
            lag(10_000, partitions=12),
            12,
            Rule.PARTITION_CAP,
            id="allow-idle-consumers-still-at-most-the-partitions",
        ),
        # KEDA rounds the lag after excludePersistentLag: (1000 - 800) / 100 = 2 -> 3 of 9.
        pytest.param(
            {"exclude_persistent_lag": True},
            1,
            lag(1000, partitions=9, persistent_lag=800),
            3,
            Rule.EVEN_DISTRIBUTION,
            id="after-excluding-persistent-lag",
        ),
        # Capacity sizing, (450 + 3000 / 60) / 100 = 5, is rounded the same way.
        pytest.param(
            {"per_replica_throughput": 100.0},
            4,
            lag(0, partitions=12, arrival_rate=450.0),
            6,
            Rule.EVEN_DISTRIBUTION,
            id="capacity-sizing",
        ),
        # partition_count is what the source counted: partition_limitation's partitions.
        pytest.param(
            {"partition_limitation": "0-5"},
            2,
            lag(500, partitions=6),
            6,
            Rule.EVEN_DISTRIBUTION,
            id="of-the-limited-partitions",
        ),
    ],
)
def test_even_distribution_of_partitions(
    trigger: dict[str, Any],
    current: int,
    observation: KafkaLagObservation,
    expected: int,
    rule: Rule,
) -> None:
    target = make_target(
        triggers=[{**EVEN, **trigger}], behavior=UNBOUNDED, min_replicas=0, idle_replicas=None
    )
    decision, _ = step(target, current, {"kafka_lag": observation})
    (rec,) = decision.triggers
    assert (rec.replicas, rec.rule) == (expected, rule), rec.detail


def test_even_distribution_explains_itself() -> None:
    target = make_target(triggers=[EVEN], behavior=UNBOUNDED)
    decision, _ = step(target, 2, {"kafka_lag": lag(500, partitions=12)})
    assert (decision.desired_replicas, decision.reason) == (6, Rule.EVEN_DISTRIBUTION)
    (rec,) = decision.triggers
    assert rec.detail.endswith("; raised to 6 for an even share of 12 partitions (was 5)")


@pytest.mark.parametrize(("allow_idle", "expected"), [(False, 12), (True, 20)])
def test_even_distribution_caps_the_trigger_not_the_target_with_idle_consumers(
    allow_idle: bool, expected: int
) -> None:
    """allow_idle_consumers still lifts the target's partition cap for the other triggers
    (KEDA caps only the Kafka metric; the HPA takes the largest)."""
    target = make_target(
        triggers=[{**EVEN, "allow_idle_consumers": allow_idle}, PROMETHEUS], behavior=UNBOUNDED
    )
    decision, _ = step(
        target, 4, {"kafka_lag": lag(100_000, partitions=12), "prometheus": metric(2000.0)}
    )
    assert decision.triggers[0].replicas == 12
    assert decision.desired_replicas == expected


@given(partitions=st.integers(1, 5000), data=st.data())
def test_even_share_is_the_next_divisor(partitions: int, data: st.DataObject) -> None:
    replicas = data.draw(st.integers(1, partitions))
    shared = even_share(replicas, partitions)
    assert partitions % shared == 0
    assert shared >= replicas
    assert all(partitions % d for d in range(replicas, shared))
    assert even_share(partitions + data.draw(st.integers(0, 100)), partitions) == partitions


def test_partition_cap_lowers_replicas_above_it_at_once() -> None:
    target = make_target()
    decision, _ = step(target, 12, {"kafka_lag": lag(5000, partitions=10)})
    assert (decision.desired_replicas, decision.reason) == (10, Rule.PARTITION_CAP)


def test_partition_cap_bounds_other_triggers_too() -> None:
    target = make_target(triggers=[KAFKA, PROMETHEUS], behavior=UNBOUNDED)
    decision, _ = step(
        target, 4, {"kafka_lag": lag(100, partitions=6), "prometheus": metric(5000.0)}
    )
    assert (decision.desired_replicas, decision.reason) == (6, Rule.PARTITION_CAP)


# --------------------------------------------------------------------------- missing data


@pytest.mark.parametrize(
    "observation",
    [
        pytest.param(Unavailable(NOW, "broker down"), id="unavailable"),
        pytest.param(metric(1.0, at=NOW - 46), id="stale"),
        pytest.param(metric(math.nan), id="nan"),
        pytest.param(metric(math.inf), id="inf"),
        pytest.param(None, id="absent"),
    ],
)
def test_missing_data_holds(observation: MetricObservation | Unavailable | None) -> None:
    target = make_target(triggers=[PROMETHEUS], behavior=UNBOUNDED)
    observations = {} if observation is None else {"prometheus": observation}
    decision, state = step(target, 7, observations)
    assert decision.desired_replicas == 7
    assert decision.reason is Rule.MISSING_DATA
    assert decision.triggers[0].replicas is None
    assert state.failures == {"prometheus": 1}


@pytest.mark.parametrize(
    ("other_value", "expected", "rule"),
    [
        pytest.param(100.0, 7, Rule.MISSING_DATA, id="other-says-down-hold"),
        pytest.param(2000.0, 20, Rule.METRIC_VALUE, id="other-says-up-scale-up"),
    ],
)
def test_one_trigger_missing(other_value: float, expected: int, rule: Rule) -> None:
    """The HPA's rule: with a metric missing, scale up on the others but never down."""
    target = make_target(triggers=[KAFKA, PROMETHEUS], behavior=UNBOUNDED)
    observations = {"kafka_lag": Unavailable(NOW, "timeout"), "prometheus": metric(other_value)}
    decision, _ = step(target, 7, observations)
    assert (decision.desired_replicas, decision.reason) == (expected, rule)


@pytest.mark.parametrize(
    ("behavior", "replicas", "current", "expected"),
    [
        pytest.param("current_replicas", None, 6, 6, id="current-replicas"),
        pytest.param("static", 3, 6, 3, id="static"),
        pytest.param("current_replicas_if_higher", 3, 6, 6, id="if-higher-keeps-current"),
        pytest.param("current_replicas_if_higher", 9, 6, 9, id="if-higher-goes-up"),
        pytest.param("current_replicas_if_lower", 3, 6, 3, id="if-lower-goes-down"),
        pytest.param("current_replicas_if_lower", 9, 6, 6, id="if-lower-keeps-current"),
    ],
)
def test_fallback_after_consecutive_failures(
    behavior: str, replicas: int | None, current: int, expected: int
) -> None:
    target = make_target(
        triggers=[PROMETHEUS],
        behavior=UNBOUNDED,
        fallback={"failure_threshold": 3, "behavior": behavior, "replicas": replicas},
    )
    state = DecisionState()
    down = {"prometheus": Unavailable(NOW, "connection refused")}
    for poll in range(2):
        decision, state = step(target, current, down, state, NOW + poll)
        assert decision.desired_replicas == current
        assert decision.reason is Rule.MISSING_DATA
    decision, state = step(target, current, down, state, NOW + 2)
    assert decision.triggers[0].rule is Rule.FALLBACK
    assert decision.desired_replicas == expected
    assert state.failures == {"prometheus": 3}
    _, state = step(target, expected, {"prometheus": metric(500.0, NOW + 3)}, state, NOW + 3)
    assert state.failures == {"prometheus": 0}


def test_unknown_partition_count_never_lowers_replicas() -> None:
    target = make_target(triggers=[KAFKA, PROMETHEUS], behavior=UNBOUNDED)
    observations = {"kafka_lag": Unavailable(NOW, "timeout"), "prometheus": metric(1500.0)}
    decision, _ = step(target, 12, observations)
    assert decision.desired_replicas == 15  # no cap from a partition count it cannot see


# --------------------------------------------------------------------------- idle and activation


IDLE = {"min_replicas": 0, "cooldown_seconds": 300, "behavior": UNBOUNDED}


def test_activation_from_zero_goes_straight_to_the_needed_replicas() -> None:
    target = make_target(**IDLE)
    decision, _ = step(target, 0, {"kafka_lag": lag(1200)})
    assert (decision.desired_replicas, decision.reason) == (12, Rule.ACTIVATION)


def test_activation_threshold_keeps_target_idle() -> None:
    target = make_target(**IDLE, triggers=[{**KAFKA, "activation_lag_threshold": 50}])
    decision, _ = step(target, 0, {"kafka_lag": lag(50)})
    assert (decision.desired_replicas, decision.reason) == (0, Rule.IDLE)
    decision, _ = step(target, 0, {"kafka_lag": lag(51)})
    assert (decision.desired_replicas, decision.reason) == (1, Rule.ACTIVATION)


def test_idle_target_with_missing_data_stays_idle() -> None:
    target = make_target(**IDLE)
    decision, _ = step(target, 0, {"kafka_lag": Unavailable(NOW, "down")})
    assert (decision.desired_replicas, decision.reason) == (0, Rule.IDLE)


def test_scale_to_idle_only_after_cooldown_since_last_activity() -> None:
    target = make_target(**IDLE)

    def quiet(at: float) -> dict[str, KafkaLagObservation]:
        return {"kafka_lag": KafkaLagObservation(observed_at=at, total_lag=0, partition_count=5)}

    _, state = step(target, 3, {"kafka_lag": lag(300)}, DecisionState(), NOW)  # active at NOW
    decision, state = step(target, 3, quiet(NOW + 200), state, NOW + 200)
    assert decision.desired_replicas == 1  # inactive, in cooldown: the floor is one replica
    decision, state = step(target, 1, quiet(NOW + 299), state, NOW + 299)
    assert decision.desired_replicas == 1
    decision, _ = step(target, 1, quiet(NOW + 300), state, NOW + 300)
    assert (decision.desired_replicas, decision.reason) == (0, Rule.SCALE_TO_IDLE)


def test_cooldown_starts_at_the_first_decision() -> None:
    """A restarted autoscaler does not zero an inactive target at once."""
    target = make_target(**IDLE)
    decision, state = step(target, 2, {"kafka_lag": lag(0)})
    assert decision.desired_replicas == 1
    assert state.last_active_at == NOW


def test_missing_data_never_scales_to_idle() -> None:
    target = make_target(**IDLE, triggers=[KAFKA, PROMETHEUS])
    state = DecisionState(last_active_at=0.0)
    observations = {"kafka_lag": lag(0), "prometheus": Unavailable(NOW, "timeout")}
    decision, _ = step(target, 2, observations, state)
    assert decision.desired_replicas == 2


def test_messages_still_arriving_keep_the_target_active() -> None:
    """Unlike KEDA, a consumer keeping up (lag 0) with traffic flowing is not zeroed."""
    target = make_target(**IDLE)
    state = DecisionState(last_active_at=0.0)
    decision, _ = step(target, 1, {"kafka_lag": lag(0, arrival_rate=5.0)}, state)
    assert decision.desired_replicas == 1
    assert decision.triggers[0].active is True


def test_forecast_wakes_an_idle_target_before_the_load() -> None:
    target = make_target(**IDLE, predictor={"model": "linear"})
    forecast = {"kafka_lag": Forecast(horizon_seconds=90, point=2.0, upper=3.0, model="linear")}
    decision, _ = step(target, 0, {"kafka_lag": lag(0)}, forecasts=forecast)
    assert (decision.desired_replicas, decision.reason) == (1, Rule.ACTIVATION)


def test_zero_replicas_without_scale_to_zero_disables_scaling_as_the_hpa() -> None:
    target = make_target(min_replicas=1)
    decision, _ = step(target, 0, {"kafka_lag": lag(5000)})
    assert (decision.desired_replicas, decision.reason) == (0, Rule.SCALING_DISABLED)


# --------------------------------------------------------------------------- actuation


def test_min_dwell_holds_changes_after_a_scale() -> None:
    target = make_target(behavior=UNBOUNDED, actuation={"min_dwell_seconds": 60})
    state = DecisionState()
    decision, state = step(target, 2, {"kafka_lag": lag(500)}, state, NOW)
    assert decision.desired_replicas == 5
    later = {"kafka_lag": KafkaLagObservation(NOW + 30, 900, 50)}
    decision, state = step(target, 5, later, state, NOW + 30)
    assert (decision.desired_replicas, decision.reason) == (5, Rule.MIN_DWELL)
    later = {"kafka_lag": KafkaLagObservation(NOW + 60, 900, 50)}
    decision, _ = step(target, 5, later, state, NOW + 60)
    assert decision.desired_replicas == 9


@pytest.mark.parametrize(
    ("total_lag", "max_replicas", "expected", "rule"),
    [
        pytest.param(700, 100, 5, Rule.MIN_STEP, id="small-step-held"),
        pytest.param(800, 100, 8, Rule.KAFKA_LAG, id="big-step-taken"),
        pytest.param(700, 7, 7, Rule.KAFKA_LAG, id="small-step-to-the-max-taken"),
    ],
)
def test_min_step(total_lag: int, max_replicas: int, expected: int, rule: Rule) -> None:
    target = make_target(behavior=UNBOUNDED, actuation={"min_step": 3}, max_replicas=max_replicas)
    decision, _ = step(target, 5, {"kafka_lag": lag(total_lag)})
    assert (decision.desired_replicas, decision.reason) == (expected, rule)


def test_min_step_never_holds_a_change_the_rate_policy_cut_short() -> None:
    """The HPA's default scale-up allows +4 pods from 1 replica: with min_step 5 a held
    change would hold forever (found by tune: 97% of the time over the SLO, one scale
    event in 14 days). The largest change allowed is taken."""
    target = make_target(actuation={"min_step": 5}, max_replicas=50)
    decision, _ = step(target, 1, {"kafka_lag": lag(5000)})
    assert decision.desired_replicas == 5  # max(4 pods, 100%) from 1: +4, under min_step
    assert decision.reason == Rule.SCALE_UP_LIMIT


def test_rate_policies_count_recorded_scale_events() -> None:
    target = make_target(
        behavior={"scale_up": {"policies": [{"type": "Pods", "value": 2, "period_seconds": 60}]}}
    )
    state = DecisionState()
    decision, state = step(target, 2, {"kafka_lag": lag(1000)}, state, NOW)
    assert decision.desired_replicas == 4
    obs = {"kafka_lag": KafkaLagObservation(NOW + 30, 1000, 50)}
    decision, state = step(target, 4, obs, state, NOW + 30)
    assert (decision.desired_replicas, decision.reason) == (4, Rule.SCALE_UP_LIMIT)
    obs = {"kafka_lag": KafkaLagObservation(NOW + 60, 1000, 50)}
    decision, _ = step(target, 4, obs, state, NOW + 60)
    assert decision.desired_replicas == 6


def test_decision_log_fields_are_json_and_explain_the_result() -> None:
    target = make_target(predictor={"model": "auto"})
    decision, _ = step(target, 2, {"kafka_lag": lag(10_000, partitions=8)})
    fields = json.loads(json.dumps(decision.log_fields()))
    assert fields["desired_replicas"] == 6
    assert fields["reason"] == "ScaleUpLimit"
    assert fields["bounds"][0]["rule"] == "ScaleUpLimit"
    trigger = fields["triggers"][0]
    assert trigger["rule"] == "PartitionCap"
    assert "capped at 8 partitions" in trigger["detail"]
    assert "no forecast" in trigger["detail"]


def test_decide_does_not_mutate_its_inputs() -> None:
    target = make_target(behavior=UNBOUNDED)
    state = DecisionState(failures={"kafka_lag": 2})
    before = (state.failures.copy(), state.recommendations)
    step(target, 3, {"kafka_lag": lag(900)}, state)
    assert (state.failures, state.recommendations) == before


@pytest.mark.parametrize(
    ("utilization", "expected"),
    [
        pytest.param(1.0, 4, id="sized-for-the-forecast-alone"),
        pytest.param(0.5, 8, id="half-utilization-doubles-the-capacity-for-the-rate"),
        pytest.param(0.7, 6, id="flink-style-headroom"),
    ],
)
def test_target_utilization_leaves_spare_capacity(utilization: float, expected: int) -> None:
    """(400 msg/s / u + no backlog) / 100 msg/s per replica; the backlog is drained at full
    speed whatever the utilization (it is already there)."""
    target = make_target(
        triggers=[{**KAFKA, "per_replica_throughput": 100.0}],
        behavior=UNBOUNDED,
        slo={"max_lag_seconds": 60, "target_utilization": utilization},
    )
    decision, _ = step(target, 2, {"kafka_lag": lag(0, arrival_rate=400.0)}, ready=4)
    (rec,) = decision.triggers
    assert rec.replicas == expected, rec.detail
    assert (f"/ {utilization:g} utilization" in rec.detail) is (utilization != 1.0)


def test_below_the_idle_count_and_inactive_goes_to_the_idle_count() -> None:
    """Someone scaled the workload to 0 while idle_replicas is 1: inactive, it goes to the
    idle count (KEDA sets idleReplicaCount while inactive), not held at 0."""
    target = make_target(min_replicas=3, idle_replicas=1)
    decision, _ = step(target, 0, {"kafka_lag": lag(0)})
    assert (decision.desired_replicas, decision.reason) == (1, Rule.IDLE)
    unknown, _ = step(target, 0, {})  # activity unknown (no data): held
    assert unknown.desired_replicas == 0


def test_scale_to_idle_is_reported_as_such_under_a_partition_cap() -> None:
    """min_replicas 3 above a 2-partition cap, idle count 2: going idle is ScaleToIdle,
    not PartitionCap (the cap's explanation was appended after it)."""
    target = make_target(min_replicas=3, idle_replicas=2, cooldown_seconds=0)
    decision, _ = step(target, 3, {"kafka_lag": lag(0, partitions=2)})
    assert (decision.desired_replicas, decision.reason) == (2, Rule.SCALE_TO_IDLE)
