"""The runs a replay compares, each through the same simulator and poll step.

* ``reactive``: what users run today: KEDA's Kafka formula (``ceil(lag / lag_threshold)``)
  with the target's own ``lag_threshold``, no forecast, the HPA's default behavior.
* ``keda@<threshold>``: the same at other lag thresholds: the *KEDA frontier*, so that a
  run can be compared with the best KEDA at equal replica-hours.
* ``none``: our poll step without a forecast (capacity sizing from the measured rate):
  separates what the forecast adds from what capacity sizing adds.
* one run per predictor: the target's own settings, sized on that model's forecast.
* ``oracle``: the cheapest schedule that meets the SLO with perfect foresight under the
  physics alone (``oracle``): a floor for every other run's cost.
* ``oracle-behavior``: our poll step with a perfect forecast (the true highest arrival rate
  over the lead time) and the true throughput, under the target's behavior, dwell time and
  minimum step: what perfect forecasting would buy with these settings.

Physics and knowledge are separate. The simulated consumers process the replay's true
throughput; what each run *knows* is what the target's config says: a configured
``per_replica_throughput`` is used as configured (right or wrong), and a target without one
learns it as the live service does. Only the two oracles know the truth.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from autoscaler.config.model import (
    ActuationConfig,
    BehaviorConfig,
    KafkaLagTrigger,
    PredictorConfig,
    ScaleDownRules,
    ScaleUpRules,
    ScalingPolicy,
    TargetConfig,
)
from autoscaler.decision import Forecaster, forecasters_for
from autoscaler.replay.recorded import RecordedForecasts
from autoscaler.replay.simulator import FloatArray
from predictors.forecaster import SeriesForecast

REACTIVE = "reactive"
NO_FORECAST = "none"
ORACLE = "oracle"
ORACLE_BEHAVIOR = "oracle-behavior"
KEDA_PREFIX = "keda@"
SIZED_SUFFIX = "/sized"
"""``<model>/sized``: the model's run with ``planner: none`` (one number per poll, as
before the planner), to compare with the planned run."""
REFERENCE_RUNS = frozenset({ORACLE, ORACLE_BEHAVIOR})
"""Runs that know the future: shown, never ranked."""
FRONTIER_MULTIPLES = tuple(2 ** (k / 2) for k in range(-4, 5))
"""The KEDA frontier's lag thresholds, as multiples of the in-flight lag of one saturated
replica: 0.25x to 4x in steps of sqrt(2)."""
DEFAULT_SLO_BUDGET_PERCENT = 1.0
"""The share of time (percent) the lag may exceed the SLO when the target sets no
``slo.budget_percent``: what meeting the SLO means in replay's report and ``tune``'s
default ``--budget``."""


def kafka_trigger(target: TargetConfig) -> tuple[int, str, KafkaLagTrigger]:
    """The target's first kafka_lag trigger: replay simulates one consumer group."""
    for index, (name, trigger) in enumerate(
        zip(target.trigger_names, target.triggers, strict=True)
    ):
        if isinstance(trigger, KafkaLagTrigger):
            return index, name, trigger
    raise ValueError(
        f"target {target.name} has no kafka_lag trigger: replay simulates a Kafka consumer"
    )


def with_trigger(target: TargetConfig, **update: object) -> TargetConfig:
    """``target`` with its simulated trigger's settings updated."""
    index, _, trigger = kafka_trigger(target)
    triggers = list(target.triggers)
    triggers[index] = trigger.model_copy(update=update)
    return target.model_copy(update={"triggers": tuple(triggers)})


def keda_run(threshold: int) -> str:
    return f"{KEDA_PREFIX}{threshold}"


def keda_threshold(run: str) -> int | None:
    """The lag threshold of a frontier run, None for any other run."""
    return int(run[len(KEDA_PREFIX) :]) if run.startswith(KEDA_PREFIX) else None


def frontier_thresholds(true_throughput: float, commit_interval_seconds: float) -> list[int]:
    """The frontier's lag thresholds around one saturated replica's in-flight lag (the
    messages it processes in half a commit interval). Thresholds are whole messages: where
    that lag is a few messages or less, the frontier is 1 to 9 messages instead."""
    base = true_throughput * commit_interval_seconds / 2
    thresholds = {max(1, round(base * multiple)) for multiple in FRONTIER_MULTIPLES}
    if len(thresholds) < 5:
        thresholds = set(range(1, len(FRONTIER_MULTIPLES) + 1))
    return sorted(thresholds)


def sized_run(run: str) -> str:
    return f"{run}{SIZED_SUFFIX}"


def unplanned(run: str) -> str | None:
    """The model of a ``<model>/sized`` run, None for any other run."""
    return run[: -len(SIZED_SUFFIX)] if run.endswith(SIZED_SUFFIX) else None


def run_target(target: TargetConfig, run: str, true_throughput: float) -> TargetConfig:
    """The target as configured for ``run``: only what the run is about differs."""
    model = unplanned(run)
    if model is not None:
        planner = target.planner.model_copy(update={"enabled": False})
        return run_target(target, model, true_throughput).model_copy(update={"planner": planner})
    threshold = keda_threshold(run)
    if run == REACTIVE or threshold is not None:
        update: dict[str, object] = {"per_replica_throughput": None, "learn_throughput": False}
        if threshold is not None:
            update["lag_threshold"] = threshold
        return with_trigger(target, **update).model_copy(
            update={
                "predictor": PredictorConfig(model="none"),
                "behavior": BehaviorConfig(),
                "actuation": ActuationConfig(),
            }
        )
    if run == ORACLE_BEHAVIOR:
        target = with_trigger(target, per_replica_throughput=true_throughput)
    return with_model(target, run if run not in (NO_FORECAST, ORACLE, ORACLE_BEHAVIOR) else "none")


def with_model(target: TargetConfig, model: str) -> TargetConfig:
    """``target`` forecasting with ``model``; another model starts from its own defaults
    (the configured ``params`` belong to the configured model)."""
    predictor = target.predictor.model_copy(update={"model": model})
    if model != target.predictor.model:
        predictor = predictor.model_copy(update={"params": {}})
    return target.model_copy(update={"predictor": predictor})


def run_forecasters(
    config: TargetConfig,
    run: str,
    *,
    trigger_name: str,
    times: FloatArray,
    rates: FloatArray,
    step_seconds: float,
    warmup_times: FloatArray,
    warmup_rates: FloatArray,
) -> dict[str, Forecaster]:
    """The forecasters of a run: the target's own (built as the live service builds them,
    warmed up on the history before the replayed span), or perfect foresight."""
    if unplanned(run) is not None:
        run = unplanned(run) or run
    if run == ORACLE_BEHAVIOR:
        return {
            trigger_name: perfect_foresight(
                times + step_seconds, rates, step_seconds, config.lead_time_seconds
            )
        }
    forecasters = forecasters_for(config)
    forecaster = forecasters.get(trigger_name)
    if forecaster is not None and len(warmup_times):
        forecaster.warm_start(warmup_times, warmup_rates)
    return dict(forecasters)


def future_peaks(rates: FloatArray, step_seconds: float, lead_seconds: float) -> FloatArray:
    """At each poll, the highest arrival rate of the steps within the lead time after it."""
    lead_steps = max(1, math.ceil(lead_seconds / step_seconds))
    n = len(rates)
    padded = np.concatenate([rates, np.full(lead_steps, rates[-1] if n else 0.0)])
    windows = np.lib.stride_tricks.sliding_window_view(padded[1:], lead_steps)[:n]
    peaks: FloatArray = windows.max(axis=1).astype(np.float64)
    return peaks


def perfect_foresight(
    poll_times: FloatArray, rates: FloatArray, step_seconds: float, lead_seconds: float
) -> RecordedForecasts:
    """The true highest arrival rate over the lead time, as a forecaster of the poll step
    (it knows the future: a reference, never a run to rank)."""
    peaks = future_peaks(rates, step_seconds, lead_seconds).tolist()
    answers: list[SeriesForecast | None] = [
        SeriesForecast(value, value, lead_seconds, ORACLE_BEHAVIOR) for value in peaks
    ]
    return RecordedForecasts(np.asarray(poll_times, dtype=np.float64), answers)


def run_settings(config: TargetConfig, run: str) -> dict[str, Any]:
    """What a run decided with (``config`` as ``run_target`` made it), for the report's
    settings table. The oracle decides with none of it: only the replica bounds hold."""
    _, _, trigger = kafka_trigger(config)
    forecasting = config.predictor.model != "none" or run == ORACLE_BEHAVIOR
    if run == ORACLE:
        model = "perfect foresight (schedule)"
    elif run == ORACLE_BEHAVIOR:
        model = "perfect foresight"
    elif keda_threshold(run) is not None or run == REACTIVE:
        model = "KEDA formula"
    elif config.predictor.model == "none":
        model = "no forecast (capacity sizing)"
    else:
        model = config.predictor.model
    decides = run != ORACLE
    if trigger.per_replica_throughput is not None:
        throughput = f"{trigger.per_replica_throughput:g} msg/s"
    else:
        throughput = "learned" if trigger.learn_throughput else "not used"
    return {
        "model": model,
        "lag_threshold": trigger.lag_threshold if decides else None,
        "quantile": config.predictor.quantile if decides and forecasting else None,
        "budget_percent": config.slo.budget_percent if decides and forecasting else None,
        "target_utilization": config.slo.target_utilization if decides else None,
        "scale_up": behavior_text(config.behavior.scale_up, up=True) if decides else None,
        "scale_down": behavior_text(config.behavior.scale_down, up=False) if decides else None,
        "min_dwell_seconds": config.actuation.min_dwell_seconds if decides else None,
        "min_step": config.actuation.min_step if decides else None,
        "min_replicas": config.min_replicas,
        "max_replicas": config.max_replicas,
        "throughput": throughput if decides else "true",
    }


def behavior_text(rules: ScaleUpRules | ScaleDownRules, *, up: bool) -> str:
    """An HPA behavior direction in a few words: ``window 300 s; -100%/15s`` (the
    tolerance only where it is not the HPA's 10%)."""
    if rules.select_policy == "Disabled":
        return "disabled"
    sign = "+" if up else "-"
    policies = ", ".join(_policy_text(p, sign) for p in rules.policies)
    if len(rules.policies) > 1:
        policies = f"{rules.select_policy.lower()} of {policies}"
    text = f"window {rules.stabilization_window_seconds} s; {policies}"
    if rules.tolerance != 0.1:
        text += f"; tolerance {100 * rules.tolerance:g}%"
    return text


def _policy_text(policy: ScalingPolicy, sign: str) -> str:
    amount = f"{policy.value} pods" if policy.type == "Pods" else f"{policy.value}%"
    return f"{sign}{amount}/{policy.period_seconds}s"
