"""The pure decision core: observations + state + config -> desired replicas + reasons.

Imports nothing that does I/O (no asyncio, Kafka, Kubernetes or Prometheus clients), so the
live loop and offline replay run exactly the same code.
"""

from autoscaler.decision.core import decide, record_scale
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
    "Decision",
    "DecisionState",
    "Forecast",
    "KafkaLagObservation",
    "MetricObservation",
    "Observation",
    "Rule",
    "TargetInputs",
    "TriggerRecommendation",
    "Unavailable",
    "decide",
    "record_scale",
]
