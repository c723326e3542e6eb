"""Properties of the decision core over random configurations, observations and histories.

* the result is always within [min, max] (or the idle count, or 0 when scaling is disabled);
* the rate policies are never exceeded within any period;
* missing data never scales down.
"""

from __future__ import annotations

import math
from typing import Any

from helpers import KAFKA, PROMETHEUS, make_target, step
from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.config.model import TargetConfig
from autoscaler.decision import (
    DecisionState,
    Forecast,
    KafkaLagObservation,
    MetricObservation,
    Observation,
    Unavailable,
)

POLL = 15.0

policies = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["Pods", "Percent"]),
            "value": st.integers(1, 200),
            "period_seconds": st.integers(1, 600),
        }
    ),
    min_size=1,
    max_size=3,
)
rules = st.fixed_dictionaries(
    {
        "stabilization_window_seconds": st.integers(0, 600),
        "select_policy": st.sampled_from(["Max", "Min", "Disabled"]),
        "policies": policies,
        "tolerance": st.sampled_from([0.0, 0.05, 0.1, 0.5]),
    }
)


@st.composite
def targets(draw: st.DrawFn, idle: bool = True) -> TargetConfig:
    min_replicas = draw(st.integers(0 if idle else 1, 20))
    max_replicas = draw(st.integers(max(1, min_replicas), 60))
    kafka = {
        **KAFKA,
        "lag_threshold": draw(st.integers(1, 500)),
        "activation_lag_threshold": draw(st.integers(0, 50)),
        "allow_idle_consumers": draw(st.booleans()),
        "exclude_persistent_lag": draw(st.booleans()),
        "per_replica_throughput": draw(st.none() | st.floats(0.5, 1000)),
        "topics": ["orders"],
        "ensure_even_distribution_of_partitions": draw(st.booleans()),
    }
    return make_target(
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        cooldown_seconds=draw(st.sampled_from([0, 60, 300])),
        triggers=[kafka, PROMETHEUS],
        trigger_combination=draw(st.sampled_from(["max", "min"])),
        behavior={"scale_up": draw(rules), "scale_down": draw(rules)},
        actuation={
            "min_dwell_seconds": draw(st.sampled_from([0, 30, 120])),
            "min_step": draw(st.integers(1, 4)),
        },
        fallback={
            "failure_threshold": draw(st.integers(1, 5)),
            "behavior": draw(st.sampled_from(["current_replicas", "current_replicas_if_higher"])),
            "replicas": draw(st.integers(0, max_replicas)),
        },
    )


def kafka_observations(at: float) -> st.SearchStrategy[Observation]:
    return st.one_of(
        st.just(Unavailable(at, "down")),
        st.builds(
            KafkaLagObservation,
            observed_at=st.just(at),
            total_lag=st.integers(0, 10**7),
            partition_count=st.integers(0, 100),
            partitions_with_lag=st.none() | st.integers(0, 100),
            persistent_lag=st.integers(0, 1000),
            arrival_rate=st.none() | st.floats(0, 10**5) | st.just(math.nan),
            processing_rate=st.none() | st.floats(0, 10**5),
            members=st.none() | st.integers(0, 100),
        ),
    )


def metric_observations(at: float) -> st.SearchStrategy[Observation]:
    return st.one_of(
        st.just(Unavailable(at, "timeout")),
        st.builds(
            MetricObservation,
            observed_at=st.sampled_from([at, at - 1000]),  # sometimes stale
            value=st.floats(-10, 10**6) | st.sampled_from([math.nan, math.inf]),
        ),
    )


forecasts = st.none() | st.builds(
    Forecast,
    horizon_seconds=st.just(90.0),
    point=st.floats(-10, 10**5) | st.just(math.nan),
    upper=st.none() | st.floats(0, 10**5) | st.just(math.inf),
)


@st.composite
def poll_inputs(draw: st.DrawFn, at: float) -> dict[str, Any]:
    kafka_forecast = draw(forecasts)
    learned = draw(st.none() | st.floats(-1, 1000) | st.just(math.nan))
    return {
        "learned": {} if learned is None else {"kafka_lag": learned},
        "observations": {
            "kafka_lag": draw(kafka_observations(at)),
            "prometheus": draw(metric_observations(at)),
        },
        "forecasts": {} if kafka_forecast is None else {"kafka_lag": kafka_forecast},
    }


@settings(max_examples=150, deadline=None)
@given(target=targets(), current=st.integers(0, 80), data=st.data())
def test_result_always_within_limits(
    target: TargetConfig, current: int, data: st.DataObject
) -> None:
    state = DecisionState()
    for poll in range(12):
        now = 1000.0 + POLL * poll
        inputs = data.draw(poll_inputs(now))
        decision, state = step(
            target,
            current,
            inputs["observations"],
            state,
            now,
            inputs["forecasts"],
            learned=inputs["learned"],
        )
        desired = decision.desired_replicas
        idle = target.idle_replica_count
        if current == 0 and idle is None:
            assert desired == 0  # the HPA: scaling disabled at zero replicas
        elif idle is not None and desired == idle:
            pass
        else:
            assert desired <= target.max_replicas, decision.bounds
            # The partition cap may sit below min_replicas; never below one replica.
            assert desired >= min(target.active_min_replicas, 1) or desired == 0
            if not any(b.rule == "PartitionCap" for b in decision.bounds) and not any(
                t.rule == "PartitionCap" for t in decision.triggers
            ):
                assert desired >= target.active_min_replicas, decision.bounds
        current = desired


@settings(max_examples=150, deadline=None)
@given(
    up=st.fixed_dictionaries(
        {"value": st.integers(1, 10), "period_seconds": st.sampled_from([15, 45, 60, 120])}
    ),
    down=st.fixed_dictionaries(
        {"value": st.integers(1, 10), "period_seconds": st.sampled_from([15, 45, 60, 120])}
    ),
    dwell=st.sampled_from([0, 30]),
    data=st.data(),
)
def test_rate_policies_never_exceeded_within_any_period(
    up: dict[str, int], down: dict[str, int], dwell: int, data: st.DataObject
) -> None:
    """With one Pods policy per direction, the net change over any window of the policy's
    period never exceeds its value (as the HPA counts it: a scale-down inside the period
    gives back room to scale up). Checked on the history, independently of the code."""
    target = make_target(
        min_replicas=1,
        max_replicas=200,
        triggers=[{**PROMETHEUS, "target_value": 10}],
        behavior={
            "scale_up": {"policies": [{"type": "Pods", **up}]},
            "scale_down": {
                "stabilization_window_seconds": 0,
                "policies": [{"type": "Pods", **down}],
            },
        },
        actuation={"min_dwell_seconds": dwell},
    )
    current, state = data.draw(st.integers(1, 200)), DecisionState()
    changes: list[tuple[float, int]] = []
    for poll in range(30):
        now = 1000.0 + POLL * poll
        value = data.draw(st.floats(0, 3000))
        decision, state = step(
            target, current, {"prometheus": MetricObservation(now, value)}, state, now
        )
        if decision.desired_replicas != current:
            changes.append((now, decision.desired_replicas - current))
        current = decision.desired_replicas
    for at, change in changes:
        window = up["period_seconds"] if change > 0 else down["period_seconds"]
        net = sum(c for t, c in changes if at - window < t <= at)
        if change > 0:
            assert net <= up["value"], changes
        else:
            assert -net <= down["value"], changes


@settings(max_examples=200, deadline=None)
@given(target=targets(idle=True), data=st.data())
def test_missing_data_never_scales_down(target: TargetConfig, data: st.DataObject) -> None:
    """Whatever happened before, a poll with any trigger missing never lowers replicas
    (with the default fallback and the 'if higher' one). The one exception is a partition
    cap read from a *known* partition count, which is not missing data."""
    current = data.draw(st.integers(0, target.max_replicas))
    state = DecisionState()
    for poll in range(10):
        now = 1000.0 + POLL * poll
        inputs = data.draw(poll_inputs(now))
        observations = dict(inputs["observations"])
        missing = data.draw(st.sampled_from(["kafka_lag", "prometheus", "both"]))
        if missing in ("kafka_lag", "both"):
            observations["kafka_lag"] = Unavailable(now, "down")
        if missing in ("prometheus", "both"):
            observations["prometheus"] = data.draw(
                st.sampled_from([Unavailable(now, "down"), MetricObservation(now - 10**4, 1.0)])
            )
        decision, state = step(
            target,
            current,
            observations,
            state,
            now,
            inputs["forecasts"],
            learned=inputs["learned"],
        )
        capped = any(b.rule == "PartitionCap" for b in decision.bounds)
        assert decision.desired_replicas >= current or capped, decision
        current = decision.desired_replicas
