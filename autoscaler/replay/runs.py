"""The runs a replay compares, each through the same simulator and decision core.

* ``reactive``: what users run today: KEDA's Kafka formula (``ceil(lag / lag_threshold)``),
  no forecast, the HPA's default behavior.
* ``none``: our decision core without a forecast (capacity sizing from the measured rate):
  separates what the forecast adds from what capacity sizing adds.
* one run per predictor: the target's own settings, sized on that model's forecast.
* ``oracle``: sized on the true future arrival rate over the lead time: what perfect
  foresight would cost, as a reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from autoscaler.config.model import (
    ActuationConfig,
    BehaviorConfig,
    KafkaLagTrigger,
    PredictorConfig,
    TargetConfig,
)
from autoscaler.decision import Forecast
from autoscaler.replay.simulator import FloatArray
from predictors.forecaster import SeriesForecaster

REACTIVE = "reactive"
NO_FORECAST = "none"
ORACLE = "oracle"


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


def run_target(target: TargetConfig, run: str, throughput: float) -> TargetConfig:
    """The target as configured for ``run``: only what the run is about differs."""
    index, _, trigger = kafka_trigger(target)
    triggers = list(target.triggers)
    if run == REACTIVE:
        triggers[index] = trigger.model_copy(update={"per_replica_throughput": None})
        return target.model_copy(
            update={
                "triggers": tuple(triggers),
                "predictor": PredictorConfig(model="none"),
                "behavior": BehaviorConfig(),
                "actuation": ActuationConfig(),
            }
        )
    triggers[index] = trigger.model_copy(update={"per_replica_throughput": throughput})
    model = run if run not in (NO_FORECAST, ORACLE) else "none"
    predictor = target.predictor.model_copy(update={"model": model})
    if model != target.predictor.model:
        predictor = predictor.model_copy(update={"params": {}})
    return target.model_copy(update={"triggers": tuple(triggers), "predictor": predictor})


@dataclass
class PredictorSource:
    """Feeds each measured arrival rate to a model (the past only) and asks for a forecast
    a lead time ahead; refits on the target's retrain schedule, inline."""

    forecaster: SeriesForecaster
    lead_seconds: float
    quantile: float

    @classmethod
    def build(
        cls,
        target: TargetConfig,
        model: str,
        params: dict[str, Any],
        step_seconds: float,
        warmup_times: FloatArray,
        warmup_rates: FloatArray,
    ) -> PredictorSource:
        predictor = target.predictor
        forecaster = SeriesForecaster(
            model,
            params,
            horizon_seconds=target.lead_time_seconds,
            quantile=predictor.quantile,
            step_seconds=step_seconds,
            window_seconds=predictor.history_window_seconds,
            retrain_interval_seconds=predictor.retrain_interval_seconds,
        )
        if len(warmup_times):
            forecaster.warm_start(warmup_times, warmup_rates)
        return cls(forecaster, target.lead_time_seconds, predictor.quantile)

    def __call__(self, step: int, now: float, arrival_rate: float) -> Forecast | None:
        forecaster = self.forecaster
        forecaster.observe(now, arrival_rate)
        if forecaster.refit_due(now):
            forecaster.refit(now)
        forecast = forecaster.forecast()
        if forecast is None:
            return None
        return Forecast(
            horizon_seconds=forecast.horizon_seconds,
            point=forecast.point,
            upper=forecast.upper,
            model=forecast.model,
            note=forecast.note,
        )


@dataclass
class OracleSource:
    """The true highest arrival rate over the lead time: perfect foresight."""

    future_max: FloatArray
    lead_seconds: float

    @classmethod
    def build(cls, rates: FloatArray, step_seconds: float, lead_seconds: float) -> OracleSource:
        lead_steps = max(1, math.ceil(lead_seconds / step_seconds))
        n = len(rates)
        padded = np.concatenate([rates, np.full(lead_steps, rates[-1] if n else 0.0)])
        windows = np.lib.stride_tricks.sliding_window_view(padded[1:], lead_steps)[:n]
        return cls(windows.max(axis=1).astype(np.float64), lead_seconds)

    def __call__(self, step: int, now: float, arrival_rate: float) -> Forecast | None:
        value = float(self.future_max[step])
        return Forecast(self.lead_seconds, point=value, upper=value, model=ORACLE)
