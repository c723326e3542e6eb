"""``decide``: what one poll observed -> the desired replica count and the reasons for it.

``decide(target, inputs, state, now)`` is the last stage of ``poll_step`` (``poll.py``), the
one path from a poll to a decision for the live controller and for replay; alone, it serves
where no forecaster is involved (the HPA vectors, tests). ``record_scale`` updates the state
after the caller actually changed the replica count (the HPA's ``storeScaleEvent`` happens
after a successful rescale too, so a failed patch does not eat into the rate policies).

No I/O, no clock reads, no globals: ``now`` is passed in, and the state is a value.

Each trigger's observation is checked (missing, stale, absurd -> unavailable) and sized
(``sizing``); a trigger unavailable for ``fallback.failure_threshold`` polls in a row gets
its fallback recommendation (KEDA). A Kafka trigger is planned over its forecast path when
the target plans (``planning``), and sized as before when no plan can be made (the
recommendation says why). ``decide`` then folds the small pure stages of
``stages`` over the recommendations, in order: combine, idle/activation, limits,
stabilize, plan floor, rate, scale-up hold, dwell/min_step (each documented there), and
reads the decision off the steps they took.
"""

from __future__ import annotations

import dataclasses
import math

from autoscaler.config.model import FallbackConfig, KafkaLagTrigger, TargetConfig
from autoscaler.decision import hpa, stages
from autoscaler.decision.compiled import compiled
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
    recommendations, caps, failures = _recommend(
        target, inputs, state, now, current=current, ready=ready
    )
    ctx = stages.DecisionContext.of(
        target,
        state,
        now,
        current=current,
        ready=ready,
        recommendations=recommendations,
        caps=caps,
        scale_up_hold=inputs.scale_up_hold,
    )
    steps = stages.run_stages(ctx)
    history, bounds = _read_steps(steps)
    decision = Decision(
        at=now,
        current_replicas=current,
        desired_replicas=steps[-1].replicas,
        raw_recommendation=steps[0].replicas,
        triggers=ctx.recommendations,
        bounds=bounds,
    )
    new_state = DecisionState(
        recommendations=state.recommendations if history is None else history,
        scale_up_events=state.scale_up_events,
        scale_down_events=state.scale_down_events,
        last_scale_at=state.last_scale_at,
        last_active_at=ctx.last_active_at,
        failures=failures,
    )
    return decision, new_state


def _read_steps(
    steps: tuple[stages.Step, ...],
) -> tuple[tuple[hpa.TimedRecommendation, ...] | None, tuple[Bound, ...]]:
    """The stabilization history the last stage to touch it left (None: none did), and
    every step's bounds, in order."""
    history = None
    bounds: list[Bound] = []
    for step in steps:
        if step.history is not None:
            history = step.history
        if step.bounds:
            bounds.extend(step.bounds)
    return history, tuple(bounds)


def record_scale(
    target: TargetConfig, state: DecisionState, old_replicas: int, new_replicas: int, now: float
) -> DecisionState:
    """The state after the replica count really changed from ``old`` to ``new`` at ``now``."""
    change = new_replicas - old_replicas
    if change == 0:
        return state
    facts = compiled(target)
    up, down = state.scale_up_events, state.scale_down_events
    if change > 0:
        up = hpa.store_scale_event(up, change, facts.longest_scale_up_period, now)
    else:
        down = hpa.store_scale_event(down, change, facts.longest_scale_down_period, now)
    # Spelled out rather than ``dataclasses.replace``, which costs twice as much.
    return DecisionState(
        recommendations=state.recommendations,
        scale_up_events=up,
        scale_down_events=down,
        last_scale_at=now,
        last_active_at=state.last_active_at,
        failures=state.failures,
    )


# --------------------------------------------------------------------------- steps


def _recommend(
    target: TargetConfig,
    inputs: TargetInputs,
    state: DecisionState,
    now: float,
    *,
    current: int,
    ready: int,
) -> tuple[list[TriggerRecommendation], list[int | None], dict[str, int]]:
    """Each trigger's recommendation, each Kafka trigger's partition cap (None when unknown
    or not sized), and the consecutive failures per trigger after this poll."""
    facts = compiled(target)
    tolerances = facts.tolerances
    failures = dict(state.failures)
    recommendations: list[TriggerRecommendation] = []
    caps: list[int | None] = []
    for name, trigger in facts.triggers:
        observation = _checked(inputs.observations.get(name), now, facts.stale_after)
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
            # Planned when the target plans and a plan can be made; else sized as before,
            # saying why no plan was made (``plan_fallback``).
            planned, fallback = None, None
            if facts.planning:
                try:
                    planned = plan_kafka_lag(
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
                    fallback = f"{failure.kind}: {failure}"
            rec = planned or size_kafka_lag(
                name, trigger, observation, forecast, current, ready, target, tolerances, learned
            )
            if fallback is not None:
                detail = f"{rec.detail}; not planned: {fallback}"
                rec = dataclasses.replace(rec, plan_fallback=fallback, detail=detail)
            caps.append(partition_cap(trigger, observation) if rec.replicas is not None else None)
        else:
            if not isinstance(observation, MetricObservation):
                raise TypeError(f"trigger {name} is prometheus but got {type(observation)}")
            rec = size_prometheus(name, trigger, observation, forecast, current, ready, tolerances)
        if forecast is None and facts.forecasting:
            rec = dataclasses.replace(rec, detail=rec.detail + "; no forecast: reactive")
        recommendations.append(rec)
    return recommendations, caps, failures


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
    if _usable_rate(observation.arrival_rate) and _usable_rate(observation.processing_rate):
        return observation  # the common case: nothing to repair, nothing to copy
    arrival = _finite_non_negative(observation.arrival_rate)
    processing = _finite_non_negative(observation.processing_rate)
    return dataclasses.replace(observation, arrival_rate=arrival, processing_rate=processing)


def _usable_rate(value: float | None) -> bool:
    """A rate ``_finite_non_negative`` leaves as it is (unknown, or finite and not
    negative)."""
    return value is None or (math.isfinite(value) and value >= 0)


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
