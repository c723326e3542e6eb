"""The SLO budget: which forecast quantile to size for, learned online from the violations.

A fixed quantile (0.9 by default) is a guess: too high for a smooth workload, which pays
for headroom it never uses, too low for a bursty one. With ``slo.budget_percent`` set, the
target states what it wants instead ("the lag may exceed ``slo.max_lag_seconds`` at most
this share of the time") and the quantile in force is adapted at every poll, the way
adaptive conformal inference adapts its level (Gibbs and Candès, 2021):

    q <- q + step * (violated - budget),    step = ADAPTATION * poll / (budget * DAY)

A poll over the SLO raises the quantile, a poll within it lowers it a little: a day's
worth of violating polls raises it by ``ADAPTATION`` (less the budget's share), a day
without violation lowers it by as much, and a day at the budget leaves it where it is. Over
time the violations settle at the budget, and the quantile as low as that allows: the least
headroom that meets the SLO. The quantile stays within ``QUANTILE_RANGE``; the forecast
errors the model has calibrated give the value at each quantile (``Forecast.ladder``), so
moving the quantile needs no refit. A model whose upper is its own (``quantile_gbm``, or
``auto`` when it chose it) knows nothing above its configured quantile: the quantile then
stays at or below it (``ceiling``), instead of winding up where it changes nothing.

Whether the lag is over the SLO is judged from what the live source reports: the committed
lag divided by what the consuming replicas (at most one per partition) process per second
(the throughput configured, else learned, else the measured processing rate). Replay scores
the real backlog at the true throughput, which differs from it by the half commit interval
of in-flight messages. A poll where that cannot be judged (no Kafka trigger observed,
nothing known of the throughput) leaves the quantile as it is.

The quantile moves only while the replicas running follow the decisions: in forecast-only
mode (``dry_run``), while the workload is paused, or while another instance leads, the
violations are counted and shown but the quantile stays.

Sizing's guarantees are untouched: capacity never goes below what arrives now, and
missing data never scales down; the budget only chooses how much headroom a forecast adds.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

from autoscaler.config.model import KafkaLagTrigger, TargetConfig
from autoscaler.decision.types import Forecast, KafkaLagObservation, Observation
from predictors.base import QUANTILE_LEVELS

__all__ = [
    "ADAPTATION",
    "QUANTILE_RANGE",
    "BudgetState",
    "at_quantile",
    "budget_report",
    "lag_over_slo",
    "quantile_value",
    "track_budget",
    "with_quantile",
]

QUANTILE_RANGE = (0.5, 0.99)
"""The quantile in force stays within: the median (no headroom), and the 99th."""
ADAPTATION = 0.25
"""How far a day's worth of budget (spent, or saved) moves the quantile."""
DAY_SECONDS = 86400.0
"""The budget is a share of time; the realized share is an average over about a day."""


@dataclass(frozen=True, slots=True)
class BudgetState:
    """Where the budget stands for one target."""

    quantile: float | None = None
    """The quantile in force; None until the first poll (it starts at the configured
    ``predictor.quantile``)."""
    judged_polls: int = 0
    """Polls whose lag could be judged against the SLO."""
    violations: int = 0
    """Of those, polls over the SLO."""
    recent_violation_ratio: float = 0.0
    """The share of recent polls over the SLO (an average over about a day)."""
    ceiling: float = QUANTILE_RANGE[1]
    """The highest quantile that changes anything at the last poll: the top of the range,
    or the configured quantile for a forecast without a calibrated ladder."""


def lag_over_slo(
    target: TargetConfig,
    observations: Mapping[str, Observation],
    ready_replicas: int,
    learned_throughput: Mapping[str, float],
) -> bool | None:
    """Whether any Kafka trigger's backlog takes longer than the SLO to process at the
    replicas consuming now; None when no trigger can say."""
    judged: bool | None = None
    limit = target.slo.max_lag_seconds
    for name, trigger in zip(target.trigger_names, target.triggers, strict=True):
        observation = observations.get(name)
        if not isinstance(trigger, KafkaLagTrigger) or not isinstance(
            observation, KafkaLagObservation
        ):
            continue
        if observation.total_lag <= 0:
            judged = judged or False
            continue
        # A replica beyond the partition count has no partition to consume, whatever
        # allow_idle_consumers lets the target scale to.
        consuming = min(ready_replicas, observation.partition_count)
        per_replica = trigger.per_replica_throughput or learned_throughput.get(name)
        if per_replica is not None and per_replica > 0:
            rate = consuming * per_replica
        elif observation.processing_rate is not None and observation.processing_rate > 0:
            rate = observation.processing_rate
        elif consuming == 0:
            rate = 0.0  # a backlog and nobody consuming: over any SLO
        else:
            continue  # nothing known of how fast it drains
        seconds = math.inf if rate <= 0 else observation.total_lag / rate
        judged = judged or seconds > limit
    return judged


def track_budget(
    state: BudgetState,
    violated: bool | None,
    target: TargetConfig,
    *,
    acting: bool = True,
    ceiling: float = QUANTILE_RANGE[1],
) -> BudgetState:
    """The budget's state after one poll (``violated`` None: the poll could not be judged).
    ``acting``: the replicas running follow the decisions (false: the violations are
    counted, the quantile stays). ``ceiling``: the highest quantile that changes the
    forecast. Without a budget configured the state is returned as it is."""
    budget_percent = target.slo.budget_percent
    if budget_percent is None:
        return state
    low, high = QUANTILE_RANGE[0], max(QUANTILE_RANGE[0], min(QUANTILE_RANGE[1], ceiling))
    quantile = target.predictor.quantile if state.quantile is None else state.quantile
    quantile = min(high, max(low, quantile))
    if violated is None:
        return dataclasses.replace(state, quantile=quantile, ceiling=high)
    hit = 1.0 if violated else 0.0
    if acting and not target.dry_run:
        budget = budget_percent / 100.0
        step = ADAPTATION * target.poll_interval_seconds / (budget * DAY_SECONDS)
        quantile = min(high, max(low, quantile + step * (hit - budget)))
    weight = min(1.0, target.poll_interval_seconds / DAY_SECONDS)
    recent = state.recent_violation_ratio + weight * (hit - state.recent_violation_ratio)
    return BudgetState(
        quantile=quantile,
        judged_polls=state.judged_polls + 1,
        violations=state.violations + int(violated),
        recent_violation_ratio=recent,
        ceiling=high,
    )


def at_quantile(forecast: Forecast, quantile: float, configured: float) -> float:
    """The forecast's value at ``quantile`` (``quantile_value``)."""
    return quantile_value(forecast.point, forecast.upper, forecast.ladder, quantile, configured)


def quantile_value(
    point: float,
    upper: float | None,
    ladder: tuple[float, ...] | None,
    quantile: float,
    configured: float,
) -> float:
    """A forecast's value at ``quantile``: interpolated in its calibrated ladder; for a
    model with an upper of its own, between the point (the median) and the upper (the
    ``configured`` quantile), and no higher than the upper (nothing is known beyond it)."""
    if ladder is not None and len(ladder) == len(QUANTILE_LEVELS):
        return _interpolated(ladder, quantile)
    if upper is None:
        return point
    if quantile >= configured or configured <= 0.5:
        return max(point, upper)
    share = max(0.0, quantile - 0.5) / (configured - 0.5)
    return point + share * (max(upper, point) - point)


def with_quantile(forecast: Forecast, quantile: float, configured: float) -> Forecast:
    """The forecast with its upper at ``quantile`` (what sizing takes)."""
    upper = at_quantile(forecast, quantile, configured)
    # Built directly: ``dataclasses.replace`` costs more than the rest of this, every poll.
    return Forecast(
        horizon_seconds=forecast.horizon_seconds,
        point=forecast.point,
        upper=max(upper, forecast.point),
        model=forecast.model,
        note=forecast.note,
        ladder=forecast.ladder,
        path=forecast.path,
        quantile=quantile,
    )


def _interpolated(ladder: tuple[float, ...], quantile: float) -> float:
    levels = QUANTILE_LEVELS
    if quantile <= levels[0]:
        return ladder[0]
    if quantile >= levels[-1]:
        return ladder[-1]
    high = bisect.bisect_left(levels, quantile)
    if levels[high] == quantile:
        return ladder[high]
    low = high - 1
    share = (quantile - levels[low]) / (levels[high] - levels[low])
    return ladder[low] + share * (ladder[high] - ladder[low])


def budget_report(target: TargetConfig, state: BudgetState) -> dict[str, float | int | bool]:
    """What ``/status``, the metrics and the decision log say of the budget (empty without
    one). ``adapting``: false in forecast-only mode (the quantile stays). ``at_limit``: the
    quantile is pinned at its ceiling and the recent violations still exceed the budget, so
    headroom from the forecast alone cannot meet it (more spare capacity,
    ``slo.target_utilization``, or a faster start-up can)."""
    budget_percent = target.slo.budget_percent
    if budget_percent is None:
        return {}
    quantile = target.predictor.quantile if state.quantile is None else state.quantile
    recent_percent = 100.0 * state.recent_violation_ratio
    total_percent = 100.0 * state.violations / state.judged_polls if state.judged_polls else 0.0
    return {
        "budget_percent": budget_percent,
        "quantile": round(quantile, 4),
        "recent_violation_percent": round(recent_percent, 4),
        "violation_percent": round(total_percent, 4),
        "judged_polls": state.judged_polls,
        "ceiling": state.ceiling,
        "at_limit": quantile >= state.ceiling and recent_percent > budget_percent,
        "adapting": not target.dry_run,
    }
