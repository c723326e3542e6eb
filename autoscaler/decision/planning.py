"""A Kafka trigger's recommendation from the planner: the problem built from one poll.

``plan_kafka_lag`` gathers what the planner (``autoscaler.decision.planner``) needs from the
target, the trigger's observation and forecast path, the replicas and the decision state,
and turns the plan into a ``TriggerRecommendation``. Whatever stops a plan (no path yet, no
throughput, even partition distribution, a problem too big) is a ``PlanError`` with its
reason: the core then sizes the trigger as before, for that poll.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

from autoscaler.config.model import KafkaLagTrigger, TargetConfig
from autoscaler.decision import hpa
from autoscaler.decision.planner import (
    FloatArray,
    PlanError,
    PlanProblem,
    arrivals_in_two_parts,
    plan,
    stabilization_floors,
)
from autoscaler.decision.sizing import kafka_lag_active, partition_cap
from autoscaler.decision.types import (
    DecisionState,
    Forecast,
    ForecastPath,
    KafkaLagObservation,
    Rule,
    TriggerRecommendation,
)
from predictors.base import QUANTILE_LEVELS

__all__ = ["PlanError", "path_at_quantile", "plan_kafka_lag"]


def plan_kafka_lag(
    name: str,
    trigger: KafkaLagTrigger,
    observation: KafkaLagObservation,
    forecast: Forecast | None,
    *,
    target: TargetConfig,
    current: int,
    ready: int,
    state: DecisionState,
    now: float,
    learned_throughput: float | None,
) -> TriggerRecommendation:
    """The planned recommendation of one Kafka trigger (``PlanError``: size it instead)."""
    if forecast is None or forecast.path is None:
        raise PlanError("no_path", "no forecast path yet")
    throughput = trigger.per_replica_throughput or learned_throughput
    if throughput is None:
        raise PlanError("no_throughput", "per-replica throughput unknown")
    if trigger.ensure_even_distribution_of_partitions:
        raise PlanError(
            "even_distribution", "ensure_even_distribution_of_partitions: sized for an even share"
        )
    rate_now = observation.arrival_rate
    if rate_now is None:
        raise PlanError("no_arrival_rate", "arrival rate unknown yet")
    lag = observation.total_lag
    if trigger.exclude_persistent_lag:
        lag = max(0, lag - observation.persistent_lag)
    step = plan_step_seconds(target)
    behavior = target.behavior
    up_window = behavior.scale_up.stabilization_window_seconds
    down_window = behavior.scale_down.stabilization_window_seconds
    horizon = max(1, math.ceil(target.plan_horizon_seconds / step - 1e-9))
    startup_steps = math.ceil((target.startup_seconds + up_window) / step - 1e-9)
    quantile = forecast.quantile if forecast.quantile is not None else target.predictor.quantile
    values = path_at_quantile(forecast.path, quantile, target.predictor.quantile)
    times = forecast.path.times
    # The quantile where this decision commits (until a replica requested at the next
    # decision could consume); the median beyond, which later polls plan again with fresher
    # forecasts (an upper quantile that widens with the horizon would read as a rise).
    arrivals = arrivals_in_two_parts(
        times, values, forecast.path.point, now, step, horizon, startup_steps + 1
    )
    cap = partition_cap(trigger, observation)
    max_allowed = target.max_replicas if cap is None else min(target.max_replicas, cap)
    min_allowed = min(target.active_min_replicas, max_allowed)
    starting = max(0, current - ready)
    starting_steps = startup_steps
    if state.last_scale_at is not None:
        left = state.last_scale_at + target.startup_seconds - now
        starting_steps = max(0, math.ceil(left / step - 1e-9))
    history = state.recommendations or ()
    # The window floors a scale-down only: it never raises the count above the current one.
    floors = np.minimum(
        stabilization_floors(
            [(r.at, r.replicas) for r in history], down_window, now, step, horizon
        ),
        current,
    )
    up = hpa.scale_up_limit(
        current, state.scale_up_events, state.scale_down_events, behavior.scale_up, now
    )
    down = hpa.scale_down_limit(
        current, state.scale_up_events, state.scale_down_events, behavior.scale_down, now
    )
    problem = PlanProblem(
        step_seconds=step,
        arrivals=arrivals,
        rate_now=rate_now,
        backlog=float(lag),
        ready=ready,
        starting=starting,
        starting_steps=starting_steps,
        throughput=throughput * target.slo.target_utilization,
        slo_seconds=target.slo.max_lag_seconds,
        startup_steps=startup_steps,
        current=current,
        min_replicas=min_allowed,
        max_replicas=max_allowed,
        floors=floors,
        first_band=(min(down, current), max(up, current)),
        scale_up=behavior.scale_up,
        scale_down=behavior.scale_down,
        scale_event_cost_seconds=target.planner.scale_event_cost_seconds,
        min_step=target.actuation.min_step,
        drain_steps=startup_steps + 1,
        tolerance_up=behavior.scale_up.tolerance,
    )
    schedule = plan(problem)
    announced = schedule.first
    if target.trigger_combination == "max":  # the plan's first step floors the result then
        window_steps = math.ceil(down_window / step - 1e-9)
        announced = schedule.announced(current, window_steps)
    if current * (1 - behavior.scale_down.tolerance) <= announced < current:
        # A scale-down within the HPA's tolerance is not worth a rebalance: not announced.
        announced = current
    known = "configured" if trigger.per_replica_throughput else "learned"
    detail = (
        f"{schedule.describe()}; {values.max():.4g} msg/s peak ahead at q{quantile:.3g}, "
        f"{lag} backlog, {throughput:.4g} msg/s per replica ({known})"
    )
    if announced != schedule.first:
        detail += f"; announces {announced} to the {down_window}s scale-down window"
    if schedule.unavoidable_steps:
        detail += f"; {schedule.unavoidable_steps} steps over the SLO whatever it does"
    active = kafka_lag_active(trigger, observation, forecast, target.poll_interval_seconds)
    return TriggerRecommendation(
        trigger=name,
        replicas=announced,
        rule=Rule.PLANNED,
        active=active,
        detail=detail,
        usage_ratio=None,
        forecast=forecast,
        plan=schedule,
    )


MAX_PLAN_STEPS = 30
"""Most steps a plan has: the plan's step is the poll interval, or a multiple of it when the
horizon would need more (30 minutes of 15- or 30-second polls are planned in 1-minute
steps). The planner's work grows with the steps; a minute is finer than the models' grid
(``predictors.forecaster.MIN_MODEL_STEP_SECONDS``) anyway."""


def plan_step_seconds(target: TargetConfig) -> float:
    """The plan's step (see ``MAX_PLAN_STEPS``)."""
    poll = target.poll_interval_seconds
    multiple = max(1, math.ceil(target.plan_horizon_seconds / (MAX_PLAN_STEPS * poll) - 1e-9))
    return poll * multiple


def path_at_quantile(path: ForecastPath, quantile: float, configured: float) -> FloatArray:
    """The path's value at ``quantile`` at each time: interpolated in its calibrated ladder;
    for a model with an upper of its own, between the point (the median) and the upper (the
    ``configured`` quantile), and no higher than the upper (as ``budget.quantile_value``)."""
    ladder = path.ladder
    if ladder is not None and ladder.shape[1:] == (len(QUANTILE_LEVELS),):
        levels = QUANTILE_LEVELS
        q = min(max(quantile, levels[0]), levels[-1])
        high = min(bisect.bisect_left(levels, q), len(levels) - 1)
        low = max(high - 1, 0)
        share = (
            0.0 if levels[high] == levels[low] else (q - levels[low]) / (levels[high] - levels[low])
        )
        if levels[high] == q:
            low, share = high, 0.0
        mixed: FloatArray = ladder[:, low] + share * (ladder[:, high] - ladder[:, low])
        return mixed
    upper = np.maximum(path.upper, path.point)
    if quantile >= configured or configured <= 0.5:
        return upper
    share = max(0.0, quantile - 0.5) / (configured - 0.5)
    blended: FloatArray = path.point + share * (upper - path.point)
    return blended
