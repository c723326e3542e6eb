"""The Kubernetes HPA's replica arithmetic, reproduced exactly, with the clock passed in.

Where our decision overlaps the HPA, a user moving from it must get the HPA's answer in the
same situation, down to the float rounding. This module mirrors, function by function,
``pkg/controller/podautoscaler/horizontal.go`` and ``replica_calculator.go``:

* the tolerance band (``Tolerances.isWithin``) and the usage-ratio replica count;
* stabilization windows (``stabilizeRecommendationWithBehaviors``);
* rate policies (``calculateScaleUpLimitWithScalingRules``,
  ``calculateScaleDownLimitWithBehaviors``, ``convertDesiredReplicasWithBehaviorRate``);
* scale-event bookkeeping (``storeScaleEvent``);
* the legacy path used when an HPA has no ``behavior`` (kept for parity tests).

Time conventions: every timestamp is in seconds on one clock that the caller owns. Upstream
compares ``time.Time`` values with strict ``Before``/``After`` and always evaluates strictly
after an item was recorded, so an item *age* seconds old is inside a window or period of
``w`` seconds iff ``age < w``, and outdated iff ``age >= w``.

Everything here is pure: no I/O, no clock reads, no mutation of arguments.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol

INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)


class LimitReason(StrEnum):
    """Why the rate/limit step returned what it did (HPA ``ScalingLimited`` reasons)."""

    DESIRED_WITHIN_RANGE = "DesiredWithinRange"
    SCALE_UP_LIMIT = "ScaleUpLimit"
    SCALE_DOWN_LIMIT = "ScaleDownLimit"
    TOO_MANY_REPLICAS = "TooManyReplicas"
    TOO_FEW_REPLICAS = "TooFewReplicas"


class StabilizeReason(StrEnum):
    """Which stabilization window applied (HPA ``AbleToScale`` reasons)."""

    SCALE_UP_STABILIZED = "ScaleUpStabilized"
    SCALE_DOWN_STABILIZED = "ScaleDownStabilized"


class PolicyLike(Protocol):
    """A scaling policy: ``Pods`` or ``Percent`` per ``period_seconds``."""

    @property
    def type(self) -> Literal["Pods", "Percent"]: ...
    @property
    def value(self) -> int: ...
    @property
    def period_seconds(self) -> int: ...


class RulesLike(Protocol):
    """One direction of HPA ``behavior`` (only the fields the rate limits read)."""

    @property
    def select_policy(self) -> Literal["Max", "Min", "Disabled"]: ...
    @property
    def policies(self) -> Sequence[PolicyLike]: ...


@dataclass(frozen=True, slots=True)
class Tolerances:
    """The dead band around a usage ratio of 1 inside which the HPA does not scale."""

    scale_down: float = 0.1
    scale_up: float = 0.1

    def is_within(self, usage_ratio: float) -> bool:
        """Inclusive at both ends, as upstream: ``0.9 <= ratio <= 1.1`` keeps the count."""
        return (1.0 - self.scale_down) <= usage_ratio <= (1.0 + self.scale_up)


@dataclass(frozen=True, slots=True)
class ScaleEvent:
    """A past rescale in one direction: its magnitude and when it happened."""

    at: float
    change: int
    outdated: bool = False


@dataclass(frozen=True, slots=True)
class TimedRecommendation:
    """A raw (pre-stabilization) recommendation and when it was made."""

    at: float
    replicas: int


def _int32(value: float) -> int:
    """Go's ``int32(x)`` for the finite, in-range values the HPA produces: truncate."""
    return max(INT32_MIN, min(INT32_MAX, int(value)))


def _ceil_int32(value: float) -> int:
    """Go's ``int32(math.Ceil(x))``, saturating instead of wrapping on overflow."""
    if math.isnan(value):
        return 0
    if value >= INT32_MAX:
        return INT32_MAX
    if value <= INT32_MIN:
        return INT32_MIN
    return math.ceil(value)


# --------------------------------------------------------------------------- tolerance


def replicas_for_usage_ratio(
    current_replicas: int, usage_ratio: float, ready_replicas: int, tolerances: Tolerances
) -> int:
    """``getUsageRatioReplicaCount``: keep the count inside the band, else scale the ready
    replicas by the ratio. From zero replicas the tolerance does not apply."""
    if current_replicas != 0:
        if tolerances.is_within(usage_ratio):
            return current_replicas
        return _ceil_int32(usage_ratio * ready_replicas)
    return _ceil_int32(usage_ratio)


def external_average_value_replicas(
    metric_total: float, target_per_replica: float, status_replicas: int, tolerances: Tolerances
) -> tuple[int, float]:
    """``GetExternalPerPodMetricReplicas``: ``ceil(total / target)`` outside the band.

    Returns (replicas, usage_ratio). With zero replicas the ratio is +Inf (or NaN for a zero
    total), which is never within the band, so the result is ``ceil(total / target)``.
    """
    denominator = target_per_replica * status_replicas
    if denominator == 0:
        usage_ratio = math.nan if metric_total == 0 else math.inf
    else:
        usage_ratio = metric_total / denominator
    if tolerances.is_within(usage_ratio):
        return status_replicas, usage_ratio
    return _ceil_int32(metric_total / target_per_replica), usage_ratio


# --------------------------------------------------------------------------- stabilization


def stabilize_recommendation(
    current_replicas: int,
    desired_replicas: int,
    recommendations: Sequence[TimedRecommendation],
    scale_up_window: float,
    scale_down_window: float,
    now: float,
) -> tuple[int, StabilizeReason, tuple[TimedRecommendation, ...]]:
    """``stabilizeRecommendationWithBehaviors``.

    Scale-up takes the *lowest* recommendation of its window, scale-down the *highest* of
    its window, each including the new one. The new raw recommendation replaces the last
    entry that is outside both windows, or is appended.

    Returns (stabilized replicas, reason, recommendations after recording this one).
    """
    up = desired_replicas
    down = desired_replicas
    old_index = -1
    for index, rec in enumerate(recommendations):
        age = now - rec.at
        replicas = rec.replicas
        if age < scale_up_window and replicas < up:  # up = min(up, replicas)
            up = replicas
        if age < scale_down_window and replicas > down:  # down = max(down, replicas)
            down = replicas
        if age >= scale_up_window and age >= scale_down_window:
            old_index = index
    stabilized = min(max(current_replicas, up), down)
    entry = TimedRecommendation(now, desired_replicas)
    if old_index >= 0:
        history = list(recommendations)
        history[old_index] = entry
        after = tuple(history)
    else:
        after = (*recommendations, entry)
    reason = (
        StabilizeReason.SCALE_UP_STABILIZED
        if desired_replicas >= current_replicas
        else StabilizeReason.SCALE_DOWN_STABILIZED
    )
    return stabilized, reason, after


# --------------------------------------------------------------------------- rate policies


def replicas_changed_in_period(
    period_seconds: float, events: Sequence[ScaleEvent], now: float
) -> int:
    """``getReplicasChangePerPeriod``: the sum of changes younger than the period."""
    changed = 0
    for event in events:
        if now - event.at < period_seconds:
            changed += event.change
    return changed


def scale_up_limit(
    current_replicas: int,
    scale_up_events: Sequence[ScaleEvent],
    scale_down_events: Sequence[ScaleEvent],
    rules: RulesLike,
    now: float,
) -> int:
    """``calculateScaleUpLimitWithScalingRules``: the most replicas the policies allow now.

    Each policy counts from the replica count at the start of its period (scale-ups in the
    period subtracted, scale-downs added back). ``Percent`` rounds the *result* up, so any
    positive percent allows at least one more replica.
    """
    if rules.select_policy == "Disabled":
        return current_replicas
    select_max = rules.select_policy == "Max"
    result = INT32_MIN if select_max else INT32_MAX
    for policy in rules.policies:
        added = replicas_changed_in_period(policy.period_seconds, scale_up_events, now)
        removed = replicas_changed_in_period(policy.period_seconds, scale_down_events, now)
        period_start = current_replicas - added + removed
        if policy.type == "Pods":
            proposed = period_start + policy.value
        else:
            proposed = _ceil_int32(period_start * (1 + policy.value / 100))
        result = max(result, proposed) if select_max else min(result, proposed)
    return result


def scale_down_limit(
    current_replicas: int,
    scale_up_events: Sequence[ScaleEvent],
    scale_down_events: Sequence[ScaleEvent],
    rules: RulesLike,
    now: float,
) -> int:
    """``calculateScaleDownLimitWithBehaviors``: the fewest replicas the policies allow now.

    ``Percent`` truncates the *remaining* count, so the number removed rounds up (10 % of 72
    leaves int(64.8) = 64). ``Max`` selects the biggest change, i.e. the lowest limit.
    """
    if rules.select_policy == "Disabled":
        return current_replicas
    select_max = rules.select_policy == "Max"
    result = INT32_MAX if select_max else INT32_MIN
    for policy in rules.policies:
        added = replicas_changed_in_period(policy.period_seconds, scale_up_events, now)
        removed = replicas_changed_in_period(policy.period_seconds, scale_down_events, now)
        period_start = current_replicas - added + removed
        if policy.type == "Pods":
            proposed = period_start - policy.value
        else:
            proposed = _int32(period_start * (1 - policy.value / 100))
        result = min(result, proposed) if select_max else max(result, proposed)
    return result


def limit_by_behavior_rate(
    current_replicas: int,
    desired_replicas: int,
    min_replicas: int,
    max_replicas: int,
    scale_up_rules: RulesLike,
    scale_down_rules: RulesLike,
    scale_up_events: Sequence[ScaleEvent],
    scale_down_events: Sequence[ScaleEvent],
    now: float,
) -> tuple[int, LimitReason]:
    """``convertDesiredReplicasWithBehaviorRate``: the rate policies, then min/max.

    Only the direction of the change is checked: scaling up is capped by the scale-up limit
    and ``max_replicas``; scaling down is floored by the scale-down limit and ``min_replicas``.
    """
    if desired_replicas > current_replicas:
        limit = scale_up_limit(
            current_replicas, scale_up_events, scale_down_events, scale_up_rules, now
        )
        limit = max(limit, current_replicas)  # never shrink while scaling up
        if max_replicas > limit:
            allowed, reason = limit, LimitReason.SCALE_UP_LIMIT
        else:
            allowed, reason = max_replicas, LimitReason.TOO_MANY_REPLICAS
        if desired_replicas > allowed:
            return allowed, reason
        return desired_replicas, LimitReason.DESIRED_WITHIN_RANGE
    if desired_replicas < current_replicas:
        limit = scale_down_limit(
            current_replicas, scale_up_events, scale_down_events, scale_down_rules, now
        )
        limit = min(limit, current_replicas)  # never grow while scaling down
        if min_replicas < limit:
            allowed, reason = limit, LimitReason.SCALE_DOWN_LIMIT
        else:
            allowed, reason = min_replicas, LimitReason.TOO_FEW_REPLICAS
        if desired_replicas < allowed:
            return allowed, reason
        return desired_replicas, LimitReason.DESIRED_WITHIN_RANGE
    return desired_replicas, LimitReason.DESIRED_WITHIN_RANGE


def store_scale_event(
    events: Sequence[ScaleEvent],
    change: int,
    longest_policy_period: float,
    now: float,
) -> tuple[ScaleEvent, ...]:
    """``storeScaleEvent`` for one direction: mark events older than the longest policy
    period outdated, reuse the slot of the last outdated one, else append.

    The ``outdated`` flag does not affect the limits (they count by age); reusing slots
    keeps the list bounded by the number of scale events in the longest period.
    """
    marked = [
        ScaleEvent(e.at, e.change, True)
        if not e.outdated and now - e.at >= longest_policy_period
        else e  # an event already marked is kept as it is (the same value)
        for e in events
    ]
    entry = ScaleEvent(at=now, change=abs(change), outdated=False)
    for index in range(len(marked) - 1, -1, -1):
        if marked[index].outdated:
            marked[index] = entry
            return tuple(marked)
    return (*marked, entry)


# --------------------------------------------------------------------------- legacy (no behavior)

LEGACY_SCALE_UP_LIMIT_FACTOR = 2.0
LEGACY_SCALE_UP_LIMIT_MINIMUM = 4.0


def stabilize_recommendation_legacy(
    desired_replicas: int,
    recommendations: Sequence[TimedRecommendation],
    downscale_window: float,
    now: float,
) -> tuple[int, tuple[TimedRecommendation, ...]]:
    """``stabilizeRecommendation``: the highest recommendation of the downscale window."""
    stabilized = desired_replicas
    old_index = -1
    for index, rec in enumerate(recommendations):
        if now - rec.at < downscale_window:
            stabilized = max(stabilized, rec.replicas)
        else:
            old_index = index
    entry = TimedRecommendation(at=now, replicas=desired_replicas)
    if old_index >= 0:
        history = list(recommendations)
        history[old_index] = entry
        return stabilized, tuple(history)
    return stabilized, (*recommendations, entry)


def limit_by_rules_legacy(
    current_replicas: int,
    desired_replicas: int,
    min_replicas: int,
    max_replicas: int,
    scale_up_limit_factor: float = LEGACY_SCALE_UP_LIMIT_FACTOR,
    scale_up_limit_minimum: float = LEGACY_SCALE_UP_LIMIT_MINIMUM,
) -> tuple[int, LimitReason]:
    """``convertDesiredReplicasWithRules``: at most double (or 4) per step, then min/max."""
    up_limit = _int32(max(scale_up_limit_factor * current_replicas, scale_up_limit_minimum))
    if max_replicas > up_limit:
        allowed, reason = up_limit, LimitReason.SCALE_UP_LIMIT
    else:
        allowed, reason = max_replicas, LimitReason.TOO_MANY_REPLICAS
    if desired_replicas < min_replicas:
        return min_replicas, LimitReason.TOO_FEW_REPLICAS
    if desired_replicas > allowed:
        return allowed, reason
    return desired_replicas, LimitReason.DESIRED_WITHIN_RANGE


# --------------------------------------------------------------------------- KEDA external


def external_metric_for(desired: int, current: int) -> float:
    """The metric to hand KEDA (per-replica target 1, ``AverageValue``) so that the HPA's
    ``ceil(metric / target)`` lands on ``desired`` from ``current``.

    Any value in ``(desired - 1, desired]`` has that ceiling; the one farthest from the
    HPA's tolerance band around ``current`` is taken: ``desired`` itself when scaling up
    or holding, just above ``desired - 1`` when scaling down. A move the band swallows
    whatever the value (up by one from 10 or more replicas, down by one from 20 or more)
    is held by the HPA; ``external_average_value_replicas`` says which.
    """
    if desired <= 0:
        return 0.0
    if desired >= current:
        return float(desired)
    return desired - 1 + 0.001  # KEDA passes milli-units: 0.001 survives the conversion
