"""Builders shared by the decision-core tests (no mocks: real config models and values)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autoscaler.config.model import TargetConfig
from autoscaler.decision import (
    Decision,
    DecisionState,
    Forecast,
    KafkaLagObservation,
    Observation,
    TargetInputs,
    decide,
    record_scale,
)

KAFKA = {"type": "kafka_lag", "cluster": "main", "consumer_group": "orders", "lag_threshold": 100}
PROMETHEUS = {"type": "prometheus", "server": "main", "query": "sum(x)", "target_value": 100}

# Behavior that never bounds a single step: lets a test see the raw sizing.
UNBOUNDED = {
    "scale_up": {"policies": [{"type": "Percent", "value": 1000, "period_seconds": 15}]},
    "scale_down": {
        "stabilization_window_seconds": 0,
        "policies": [{"type": "Percent", "value": 100, "period_seconds": 15}],
    },
}


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def make_target(**overrides: Any) -> TargetConfig:
    """A valid target (one kafka_lag trigger, no predictor) with ``overrides`` merged in."""
    base: dict[str, Any] = {
        "name": "orders",
        "scale_target_ref": {"name": "orders"},
        "predictor": {"model": "none"},
        "triggers": [KAFKA],
    }
    return TargetConfig.model_validate(_merge(base, overrides))


def step(
    target: TargetConfig,
    current: int,
    observations: Mapping[str, Observation],
    state: DecisionState | None = None,
    now: float = 1000.0,
    forecasts: Mapping[str, Forecast] | None = None,
    ready: int | None = None,
    learned: Mapping[str, float] | None = None,
) -> tuple[Decision, DecisionState]:
    """One poll: decide, and record the scale as an actuator that succeeded would."""
    inputs = TargetInputs(
        current_replicas=current,
        observations=observations,
        forecasts=forecasts or {},
        ready_replicas=ready,
        learned_throughput=learned or {},
    )
    decision, new_state = decide(target, inputs, state or DecisionState(), now)
    new_state = record_scale(target, new_state, current, decision.desired_replicas, now)
    return decision, new_state


def lag_observation(
    lag: int,
    rate: float = 400.0,
    processing: float | None = None,
    at: float = 1000.0,
    partitions: int = 20,
) -> KafkaLagObservation:
    """A consumer group's poll: ``lag`` messages behind, ``rate`` msg/s arriving and (by
    default) as many processed, 4 members."""
    return KafkaLagObservation(
        observed_at=at,
        total_lag=lag,
        partition_count=partitions,
        arrival_rate=rate,
        processing_rate=rate if processing is None else processing,
        members=4,
    )
