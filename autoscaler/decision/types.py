"""Values that flow into and out of the pure decision core.

Sources turn a server's answer into an observation (or an ``Unavailable`` with its reason:
an outage is a value, not an exception); predictors produce a ``Forecast``; the core returns
a ``Decision`` that explains itself, and a new ``DecisionState`` that the caller keeps for
the next poll. All are immutable, so the live loop and replay can share them freely.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from autoscaler.decision.hpa import ScaleEvent, TimedRecommendation

if TYPE_CHECKING:
    from autoscaler.decision.planner import Plan


class Rule(StrEnum):
    """Machine-readable names of every rule that can size or bound a decision.

    HPA names are kept where the rule is the HPA's, so users read what they know.
    """

    # How a trigger sized the target.
    KAFKA_LAG = "KafkaLagPerReplica"
    CAPACITY = "CapacityForArrivalRate"
    PLANNED = "PlannedSchedule"
    METRIC_VALUE = "MetricValue"
    WITHIN_TOLERANCE = "WithinTolerance"
    PARTITION_CAP = "PartitionCap"
    EVEN_DISTRIBUTION = "EvenPartitionDistribution"
    # Missing data and its handling.
    MISSING_DATA = "MissingData"
    FALLBACK = "Fallback"
    # Idle (scale to zero) and activation, as KEDA.
    ACTIVATION = "Activation"
    SCALE_TO_IDLE = "ScaleToIdle"
    IDLE = "Idle"
    SCALING_DISABLED = "ScalingDisabled"
    # The HPA's normalization.
    SCALE_UP_STABILIZED = "ScaleUpStabilized"
    SCALE_DOWN_STABILIZED = "ScaleDownStabilized"
    SCALE_UP_LIMIT = "ScaleUpLimit"
    SCALE_DOWN_LIMIT = "ScaleDownLimit"
    TOO_MANY_REPLICAS = "TooManyReplicas"
    TOO_FEW_REPLICAS = "TooFewReplicas"
    DESIRED_WITHIN_RANGE = "DesiredWithinRange"
    PLAN_FLOOR = "PlanFloor"
    """The plan's first step holds more than the stabilized count (a scale-down announced
    earlier that the newer plan no longer wants)."""
    # Rebalance-aware actuation.
    MIN_DWELL = "MinDwell"
    MIN_STEP = "MinStep"
    # Scaling effectiveness (Flink's IneffectiveScaling).
    SCALING_INEFFECTIVE = "ScalingIneffective"


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class KafkaLagObservation:
    """One poll of a consumer group, as measured by the Kafka source.

    ``total_lag`` already follows the trigger's offset-reset rules for partitions without a
    committed offset; the core applies the rules that are about *scaling* (persistent lag
    exclusion, partition cap, activation).
    """

    observed_at: float
    total_lag: int
    partition_count: int
    partitions_with_lag: int | None = None
    persistent_lag: int = 0
    """Lag sitting on partitions whose committed offset has not moved (stuck consumers)."""
    arrival_rate: float | None = None
    """Messages/s produced to the topics since the previous poll (end-offset growth)."""
    processing_rate: float | None = None
    """Messages/s consumed by the group since the previous poll (committed-offset growth)."""
    members: int | None = None
    """Consumers in the group now (None: the source cannot tell; the ready replicas stand
    in). The throughput estimator divides the processing rate among them."""
    rebalancing: bool | None = None
    """The group is between a member joining or leaving and its new assignment (Kafka's
    ``PreparingRebalance`` / ``CompletingRebalance``): its members do not consume yet.
    None: the source cannot tell."""


@dataclass(frozen=True, slots=True)
class MetricObservation:
    """One value of a Prometheus query."""

    observed_at: float
    value: float


@dataclass(frozen=True, slots=True)
class Unavailable:
    """A poll that produced no usable value, and why. Never lowers the replica count."""

    observed_at: float
    reason: str


Observation = KafkaLagObservation | MetricObservation | Unavailable


@dataclass(frozen=True, slots=True)
class ForecastPath:
    """A forecast over the planner's horizon: the load at each of ``times`` (absolute)."""

    times: NDArray[np.float64]
    point: NDArray[np.float64]
    upper: NDArray[np.float64]
    """At the configured ``predictor.quantile``."""
    ladder: NDArray[np.float64] | None = None
    """Per time, the forecast at each of ``predictors.base.QUANTILE_LEVELS`` (calibrated
    models only)."""


@dataclass(frozen=True, slots=True)
class Forecast:
    """A trigger's load (Kafka arrival rate in messages/s, or the metric) ``horizon`` ahead."""

    horizon_seconds: float
    point: float
    upper: float | None = None
    """The upper quantile sizing takes, when the model gives one (headroom for bursts): the
    configured ``predictor.quantile``, or under an SLO budget the quantile in force."""
    model: str = ""
    note: str | None = None
    """Why the forecast is degraded (e.g. a fallback to the naive model on short history)."""
    ladder: tuple[float, ...] | None = None
    """The forecast at each of ``predictors.base.QUANTILE_LEVELS``, when the model's
    quantiles are calibrated: the SLO budget picks the quantile in force from it."""
    path: ForecastPath | None = None
    """The forecast over the planner's horizon (None: no planner, or none to give)."""
    quantile: float | None = None
    """The quantile ``upper`` is at (the SLO budget's in force, else the configured one)."""

    @property
    def for_sizing(self) -> float:
        """The value capacity is sized for: the upper quantile when there is one."""
        return self.point if self.upper is None else max(self.point, self.upper)


@dataclass(frozen=True, slots=True)
class TargetInputs:
    """Everything the live loop (or replay) observed for one target at one poll."""

    current_replicas: int
    """``spec.replicas`` of the scale subresource."""
    observations: Mapping[str, Observation]
    """By trigger name; a trigger without an entry counts as unavailable."""
    forecasts: Mapping[str, Forecast] = field(default_factory=dict)
    """By trigger name; absent when the target has no predictor or it cannot forecast yet."""
    ready_replicas: int | None = None
    """Replicas consuming now (capacity); defaults to ``current_replicas``."""
    learned_throughput: Mapping[str, float] = field(default_factory=dict)
    """Per-replica throughput learned so far, by Kafka trigger name (``throughput``); used
    where the trigger configures none."""
    scale_up_hold: str | None = None
    """Why no scale-up may happen now (``effectiveness``: scale-ups did not raise the
    processing rate), or None."""


# --------------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class DecisionState:
    """What the core remembers between polls of one target. The caller stores it.

    ``recommendations`` is None until the first decision, which records the current replica
    count (the HPA's ``recordInitialRecommendation``): a restarted autoscaler then cannot
    scale down before a full stabilization window has passed.
    """

    recommendations: tuple[TimedRecommendation, ...] | None = None
    scale_up_events: tuple[ScaleEvent, ...] = ()
    scale_down_events: tuple[ScaleEvent, ...] = ()
    last_scale_at: float | None = None
    last_active_at: float | None = None
    failures: Mapping[str, int] = field(default_factory=dict)
    """Consecutive unavailable polls per trigger (for ``fallback``)."""


# --------------------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True)
class Bound:
    """One rule that set or changed the replica count on the way to the decision."""

    rule: Rule
    before: int
    after: int
    detail: str = ""


@dataclass(frozen=True, slots=True)
class TriggerRecommendation:
    """What one trigger asked for, and how it got there."""

    trigger: str
    replicas: int | None
    """None when the trigger's data is missing or stale (and not yet in fallback)."""
    rule: Rule
    active: bool | None
    """Above its activation threshold; None when unknown."""
    detail: str
    usage_ratio: float | None = None
    forecast: Forecast | None = None
    plan: Plan | None = None
    """The schedule the planner chose (rule ``PLANNED``): ``replicas`` above is what it
    announces to the stabilization window, ``plan.first`` what it sets now."""
    plan_fallback: str | None = None
    """Why this trigger was sized, not planned, although the planner is on:
    ``<kind>: <why>``, the kind a short fixed code (``no_path``, ``no_throughput``,
    ``no_arrival_rate``, ``even_distribution``, ``too_big``, ``infeasible``)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The core's answer for one target at one poll, with everything needed to explain it."""

    at: float
    current_replicas: int
    desired_replicas: int
    raw_recommendation: int | None
    """The combined trigger recommendation before stabilization and rate limits."""
    triggers: tuple[TriggerRecommendation, ...]
    bounds: tuple[Bound, ...]
    """Every rule that bounded the result, in the order applied."""

    @property
    def changed(self) -> bool:
        return self.desired_replicas != self.current_replicas

    @property
    def reason(self) -> Rule:
        """The one rule that best explains the result: the last that bounded it, else the
        sizing rule of the trigger that won."""
        if self.bounds:
            return self.bounds[-1].rule
        known = [t for t in self.triggers if t.replicas is not None]
        if known:
            return max(known, key=lambda t: t.replicas or 0).rule
        return Rule.MISSING_DATA

    def log_fields(self) -> dict[str, Any]:
        """One flat-ish dict for the single ``scaling_decision`` log line."""
        return {
            "current_replicas": self.current_replicas,
            "desired_replicas": self.desired_replicas,
            "raw_recommendation": self.raw_recommendation,
            "reason": str(self.reason),
            "bounds": [
                {"rule": str(b.rule), "before": b.before, "after": b.after, "detail": b.detail}
                for b in self.bounds
            ],
            "triggers": [
                {
                    "trigger": t.trigger,
                    "replicas": t.replicas,
                    "rule": str(t.rule),
                    "active": t.active,
                    "usage_ratio": t.usage_ratio,
                    "detail": t.detail,
                    **(
                        {}
                        if t.plan is None
                        else {
                            "plan": {
                                "step_seconds": t.plan.step_seconds,
                                "schedule": t.plan.runs(),
                                "unavoidable_steps": t.plan.unavoidable_steps,
                            }
                        }
                    ),
                    **({} if t.plan_fallback is None else {"plan_fallback": t.plan_fallback}),
                    "forecast": None
                    if t.forecast is None
                    else {
                        "model": t.forecast.model,
                        "horizon_seconds": t.forecast.horizon_seconds,
                        "point": t.forecast.point,
                        "upper": t.forecast.upper,
                        "note": t.forecast.note,
                    },
                }
                for t in self.triggers
            ],
        }
