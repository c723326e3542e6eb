"""The pure decision core: observations + state + config -> desired replicas + reasons.

``poll_step`` is the one entry point for a poll (forecast, learn, decide); ``decide`` is
its last stage, usable alone where no forecaster is involved (the HPA vectors, tests).

Imports nothing that does I/O (no asyncio, Kafka, Kubernetes or Prometheus clients), so the
live loop and offline replay run exactly the same code.
"""

from autoscaler.decision.budget import BudgetState
from autoscaler.decision.core import decide, record_scale
from autoscaler.decision.forecasters import (
    Forecaster,
    forecaster_for,
    forecaster_settings,
    forecasters_for,
    load_series,
)
from autoscaler.decision.poll import (
    PollInputs,
    PollResult,
    PollState,
    poll_step,
    refits_due,
    scaled,
)
from autoscaler.decision.throughput import ThroughputEstimate, learn_throughput
from autoscaler.decision.types import (
    Bound,
    Decision,
    DecisionState,
    Forecast,
    KafkaLagObservation,
    MetricObservation,
    Observation,
    Rule,
    TargetInputs,
    TriggerRecommendation,
    Unavailable,
)

__all__ = [
    "Bound",
    "BudgetState",
    "Decision",
    "DecisionState",
    "Forecast",
    "Forecaster",
    "KafkaLagObservation",
    "MetricObservation",
    "Observation",
    "PollInputs",
    "PollResult",
    "PollState",
    "Rule",
    "TargetInputs",
    "ThroughputEstimate",
    "TriggerRecommendation",
    "Unavailable",
    "decide",
    "forecaster_for",
    "forecaster_settings",
    "forecasters_for",
    "learn_throughput",
    "load_series",
    "poll_step",
    "record_scale",
    "refits_due",
    "scaled",
]
