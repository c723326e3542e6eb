"""The one pure decision function shared by the live loop and by replay.

``decide(target, inputs, state, now)`` turns what was observed at one poll into the desired
replica count and the reasons for it; ``record_scale`` updates the state after the caller
actually changed the replica count (the HPA's ``storeScaleEvent`` happens after a successful
rescale too, so a failed patch does not eat into the rate policies).

No I/O, no clock reads, no globals: ``now`` is passed in, and the state is a value.

The pipeline, in order:

1. Each trigger's observation is checked (missing, stale, absurd -> unavailable) and sized
   (``sizing``); a trigger unavailable for ``fallback.failure_threshold`` polls in a row
   gets its fallback recommendation (KEDA).
2. The recommendations are combined (max by default). If any trigger is missing, the result
   never goes below the current count (the HPA's rule: missing data never scales down).
3. Idle handling (KEDA): from the idle count, any active trigger activates the target
   straight to its recommendation; with every trigger known and inactive for
   ``cooldown_seconds``, the target goes to the idle count.
4. The HPA's normalization: replicas outside [min, max] are brought inside at once;
   otherwise stabilization windows, then the rate policies and the limits (the partition cap
   lowers the max).
5. Rebalance-aware actuation: no change within ``min_dwell_seconds`` of the previous one,
   and no change smaller than ``min_step`` unless it reaches a limit.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from autoscaler.config.model import FallbackConfig, KafkaLagTrigger, TargetConfig
from autoscaler.decision import hpa
from autoscaler.decision.planner import PlanError
from autoscaler.decision.planning import plan_kafka_lag
from autoscaler.decision.sizing import partition_cap, size_kafka_lag, size_prometheus
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


def decide(
    target: TargetConfig, inputs: TargetInputs, state: DecisionState, now: float
) -> tuple[Decision, DecisionState]:
    """Decide the replica count of ``target`` at time ``now`` (seconds, caller's clock)."""
    current = max(0, inputs.current_replicas)
    ready = current if inputs.ready_replicas is None else max(0, inputs.ready_replicas)
    tolerances = hpa.Tolerances(
        scale_down=target.behavior.scale_down.tolerance,
        scale_up=target.behavior.scale_up.tolerance,
    )

    failures = dict(state.failures)
    recommendations: list[TriggerRecommendation] = []
    caps: list[int | None] = []
    for name, trigger in zip(target.trigger_names, target.triggers, strict=True):
        observation = _checked(inputs.observations.get(name), now, target.stale_after)
        if isinstance(observation, Unavailable):
            failures[name] = failures.get(name, 0) + 1
            recommendations.append(
                _missing(name, observation, failures[name], target.fallback, current)
            )
            if isinstance(trigger, KafkaLagTrigger):
                caps.append(None)
            continue
        failures[name] = 0
        forecast = _checked_forecast(inputs.forecasts.get(name))
        if isinstance(trigger, KafkaLagTrigger):
            if not isinstance(observation, KafkaLagObservation):
                raise TypeError(f"trigger {name} is kafka_lag but got {type(observation)}")
            learned = _positive(inputs.learned_throughput.get(name))
            rec = _planned_or_sized(
                name, trigger, observation, forecast, target, current, ready, state, now, learned
            )
            caps.append(partition_cap(trigger, observation) if rec.replicas is not None else None)
        else:
            if not isinstance(observation, MetricObservation):
                raise TypeError(f"trigger {name} is prometheus but got {type(observation)}")
            rec = size_prometheus(name, trigger, observation, forecast, current, ready, tolerances)
        if forecast is None and target.predictor.model != "none":
            rec = dataclasses.replace(rec, detail=rec.detail + "; no forecast: reactive")
        recommendations.append(rec)

    bounds: list[Bound] = []
    raw = _combine(recommendations, target.trigger_combination, current, bounds)
    plan_floor = _plan_floor(recommendations, target.trigger_combination)
    cap = _overall_cap(caps)
    max_allowed = target.max_replicas if cap is None else min(target.max_replicas, cap)
    min_allowed = min(target.active_min_replicas, max_allowed)

    activity = [r.active for r in recommendations]
    any_active = any(a is True for a in activity)
    all_inactive = all(a is False for a in activity)
    last_active_at = now if any_active or state.last_active_at is None else state.last_active_at

    idle = target.idle_replica_count
    history = state.recommendations
    if current == 0 and idle is None:
        desired = 0
        bounds.append(
            Bound(Rule.SCALING_DISABLED, raw, 0, "replicas are 0 and scale-to-zero is off")
        )
    elif idle is not None and current <= idle:
        if any_active:
            desired = min(max(raw, min_allowed), max_allowed)
            bounds.append(Bound(Rule.ACTIVATION, current, desired, "a trigger is active"))
        elif all_inactive:
            # Idle is the idle count, also from below it (someone scaled the workload to 0
            # while idle_replicas is 1): KEDA sets idleReplicaCount while inactive.
            desired = idle
            bounds.append(Bound(Rule.IDLE, raw, idle, "every trigger inactive"))
        else:
            desired = current
            bounds.append(Bound(Rule.IDLE, raw, current, "trigger activity unknown"))
    elif idle is not None and all_inactive and now - last_active_at >= target.cooldown_seconds:
        desired = idle
        detail = f"every trigger inactive for {now - last_active_at:.0f}s"
        bounds.append(Bound(Rule.SCALE_TO_IDLE, current, idle, detail))
    elif current > max_allowed:
        desired = max_allowed
        rule = Rule.PARTITION_CAP if max_allowed < target.max_replicas else Rule.TOO_MANY_REPLICAS
        bounds.append(Bound(rule, current, desired, f"above the maximum of {max_allowed}"))
    elif current < min_allowed:
        desired = min_allowed
        detail = f"below the minimum of {min_allowed}"
        bounds.append(Bound(Rule.TOO_FEW_REPLICAS, current, desired, detail))
    else:
        if history is None:  # the HPA's recordInitialRecommendation
            history = (hpa.TimedRecommendation(at=now, replicas=current),)
        desired, history = _normalize(
            target, current, raw, history, state, min_allowed, max_allowed, now, bounds, plan_floor
        )

    idle_decided = bool(bounds) and bounds[-1].rule in (
        Rule.IDLE,
        Rule.SCALE_TO_IDLE,
        Rule.SCALING_DISABLED,
    )
    if (
        not idle_decided
        and min_allowed < target.active_min_replicas
        and min_allowed <= desired < target.active_min_replicas
    ):
        detail = f"min_replicas {target.min_replicas} is above the partition cap {cap}"
        bounds.append(Bound(Rule.PARTITION_CAP, target.active_min_replicas, desired, detail))

    decision = Decision(
        at=now,
        current_replicas=current,
        desired_replicas=desired,
        raw_recommendation=raw,
        triggers=tuple(recommendations),
        bounds=tuple(bounds),
    )
    new_state = DecisionState(
        recommendations=history,
        scale_up_events=state.scale_up_events,
        scale_down_events=state.scale_down_events,
        last_scale_at=state.last_scale_at,
        last_active_at=last_active_at,
        failures=failures,
    )
    return decision, new_state


def record_scale(
    target: TargetConfig, state: DecisionState, old_replicas: int, new_replicas: int, now: float
) -> DecisionState:
    """The state after the replica count really changed from ``old`` to ``new`` at ``now``."""
    change = new_replicas - old_replicas
    if change == 0:
        return state
    behavior = target.behavior
    if change > 0:
        longest = max(p.period_seconds for p in behavior.scale_up.policies)
        up = hpa.store_scale_event(state.scale_up_events, change, longest, now)
        return dataclasses.replace(state, scale_up_events=up, last_scale_at=now)
    longest = max(p.period_seconds for p in behavior.scale_down.policies)
    down = hpa.store_scale_event(state.scale_down_events, change, longest, now)
    return dataclasses.replace(state, scale_down_events=down, last_scale_at=now)


# --------------------------------------------------------------------------- steps


def _checked(observation: Observation | None, now: float, stale_after: float) -> Observation:
    """The observation if it is usable now, else ``Unavailable`` saying why."""
    if observation is None:
        return Unavailable(observed_at=now, reason="no observation")
    if isinstance(observation, Unavailable):
        return observation
    age = now - observation.observed_at
    if not math.isfinite(age) or age > stale_after:
        return Unavailable(observation.observed_at, f"stale: observed {age:.0f}s ago")
    if isinstance(observation, MetricObservation):
        if not math.isfinite(observation.value):
            return Unavailable(observation.observed_at, f"value is {observation.value}")
        return observation
    if observation.total_lag < 0 or observation.partition_count < 0:
        return Unavailable(observation.observed_at, "negative lag or partition count")
    arrival = _finite_non_negative(observation.arrival_rate)
    processing = _finite_non_negative(observation.processing_rate)
    if arrival == observation.arrival_rate and processing == observation.processing_rate:
        return observation  # the common case: nothing to repair, nothing to copy
    return dataclasses.replace(observation, arrival_rate=arrival, processing_rate=processing)


def _checked_forecast(forecast: Forecast | None) -> Forecast | None:
    """Drop a forecast that is not a finite number; clamp a negative one to zero."""
    if forecast is None or not math.isfinite(forecast.point):
        return None
    upper = forecast.upper
    if upper is not None and not math.isfinite(upper):
        upper = None
    if forecast.point >= 0 and (upper is None or upper >= 0):
        return forecast
    return dataclasses.replace(
        forecast, point=max(0.0, forecast.point), upper=None if upper is None else max(0.0, upper)
    )


def _finite_non_negative(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return max(0.0, value)


def _positive(value: float | None) -> float | None:
    if value is None or not math.isfinite(value) or value <= 0:
        return None
    return value


def _missing(
    name: str, observation: Unavailable, failures: int, fallback: FallbackConfig, current: int
) -> TriggerRecommendation:
    """A missing trigger: no recommendation, or the fallback after too many failures."""
    if failures < fallback.failure_threshold:
        detail = f"{observation.reason} ({failures} of {fallback.failure_threshold} failures)"
        return TriggerRecommendation(name, None, Rule.MISSING_DATA, None, detail)
    replicas = current
    if fallback.replicas is not None:
        if fallback.behavior == "static":
            replicas = fallback.replicas
        elif fallback.behavior == "current_replicas_if_higher":
            replicas = max(current, fallback.replicas)
        elif fallback.behavior == "current_replicas_if_lower":
            replicas = min(current, fallback.replicas)
    detail = f"{observation.reason}; {failures} failures: fallback {fallback.behavior}"
    return TriggerRecommendation(name, replicas, Rule.FALLBACK, None, detail)


def _combine(
    recommendations: Sequence[TriggerRecommendation],
    combination: str,
    current: int,
    bounds: list[Bound],
) -> int:
    """Combine the triggers; with any trigger missing, never below the current count.

    Triggers in fallback stand for their fallback count whatever the combination (KEDA
    feeds the fallback to the HPA, which takes the max): under ``min`` a trigger held at
    ``current_replicas`` must still hold, not be outvoted by a healthy trigger.
    """
    live = [
        r.replicas for r in recommendations if r.replicas is not None and r.rule != Rule.FALLBACK
    ]
    fallbacks = [
        r.replicas for r in recommendations if r.replicas is not None and r.rule == Rule.FALLBACK
    ]
    missing = [r.trigger for r in recommendations if r.replicas is None]
    if not live and not fallbacks:
        bounds.append(Bound(Rule.MISSING_DATA, current, current, "no trigger has data: hold"))
        return current
    combined = (max(live) if combination == "max" else min(live)) if live else max(fallbacks)
    combined = max(combined, *fallbacks) if fallbacks else combined
    if missing and combined < current:
        detail = f"no scale-down while {', '.join(missing)} has no data"
        bounds.append(Bound(Rule.MISSING_DATA, combined, current, detail))
        return current
    return combined


def _planned_or_sized(
    name: str,
    trigger: KafkaLagTrigger,
    observation: KafkaLagObservation,
    forecast: Forecast | None,
    target: TargetConfig,
    current: int,
    ready: int,
    state: DecisionState,
    now: float,
    learned: float | None,
) -> TriggerRecommendation:
    """The planner's recommendation when the target plans and a plan can be made; else
    today's sizing, saying why the plan could not be made (``plan_fallback``)."""
    fallback: str | None = None
    if target.planning:
        try:
            return plan_kafka_lag(
                name,
                trigger,
                observation,
                forecast,
                target=target,
                current=current,
                ready=ready,
                state=state,
                now=now,
                learned_throughput=learned,
            )
        except PlanError as failure:
            fallback = str(failure)
    tolerances = hpa.Tolerances(
        scale_down=target.behavior.scale_down.tolerance,
        scale_up=target.behavior.scale_up.tolerance,
    )
    rec = size_kafka_lag(
        name, trigger, observation, forecast, current, ready, target, tolerances, learned
    )
    if fallback is None:
        return rec
    return dataclasses.replace(
        rec, plan_fallback=fallback, detail=f"{rec.detail}; not planned: {fallback}"
    )


def _plan_floor(recommendations: Sequence[TriggerRecommendation], combination: str) -> int | None:
    """The most replicas a planned trigger sets now (under ``max``): the result never goes
    below it, whatever earlier plans announced to the stabilization window."""
    if combination != "max":
        return None
    firsts = [r.plan.first for r in recommendations if r.plan is not None]
    return max(firsts) if firsts else None


def _overall_cap(caps: Sequence[int | None]) -> int | None:
    """The partition cap of the target: the largest Kafka trigger's, only when every Kafka
    trigger is known and capped (an unknown partition count never lowers replicas)."""
    if not caps or any(c is None for c in caps):
        return None
    return max(c for c in caps if c is not None)


def _normalize(
    target: TargetConfig,
    current: int,
    raw: int,
    history: tuple[hpa.TimedRecommendation, ...],
    state: DecisionState,
    min_allowed: int,
    max_allowed: int,
    now: float,
    bounds: list[Bound],
    plan_floor: int | None = None,
) -> tuple[int, tuple[hpa.TimedRecommendation, ...]]:
    """Stabilization, rate policies and limits (the HPA), then rebalance-aware actuation."""
    behavior = target.behavior
    stabilized, stabilize_reason, history = hpa.stabilize_recommendation(
        current,
        raw,
        history,
        behavior.scale_up.stabilization_window_seconds,
        behavior.scale_down.stabilization_window_seconds,
        now,
    )
    if stabilized != raw:
        bounds.append(Bound(Rule(str(stabilize_reason)), raw, stabilized))
    if plan_floor is not None and stabilized < min(plan_floor, current):
        # A scale-down announced by earlier plans that this one wants smaller: the plan's
        # first step is what the SLO needs now.
        floored = min(plan_floor, current)
        detail = f"the plan sets {plan_floor} now"
        bounds.append(Bound(Rule.PLAN_FLOOR, stabilized, floored, detail))
        stabilized = floored
    desired, limit_reason = hpa.limit_by_behavior_rate(
        current,
        stabilized,
        min_allowed,
        max_allowed,
        behavior.scale_up,
        behavior.scale_down,
        state.scale_up_events,
        state.scale_down_events,
        now,
    )
    if desired != stabilized:
        rule = Rule(str(limit_reason))
        if rule is Rule.TOO_MANY_REPLICAS and max_allowed < target.max_replicas:
            rule = Rule.PARTITION_CAP
        bounds.append(Bound(rule, stabilized, desired))
    if desired == current:
        return desired, history
    actuation = target.actuation
    if state.last_scale_at is not None and now - state.last_scale_at < actuation.min_dwell_seconds:
        detail = f"last change {now - state.last_scale_at:.0f}s ago"
        bounds.append(Bound(Rule.MIN_DWELL, desired, current, detail))
        return current, history
    # A change the rate policies cut short is as big as it may be now: min_step must not
    # hold it (with a 4-pod scale-up policy and min_step 5, nothing would ever scale up).
    rate_limited = desired != stabilized
    if (
        abs(desired - current) < actuation.min_step
        and desired not in (min_allowed, max_allowed)
        and not rate_limited
    ):
        detail = f"change of {desired - current} is below min_step {actuation.min_step}"
        bounds.append(Bound(Rule.MIN_STEP, desired, current, detail))
        return current, history
    return desired, history
