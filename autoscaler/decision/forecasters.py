"""Forecasters built from a target, in one place: the live service and replay call this.

Each trigger with a predictor gets a ``SeriesForecaster`` of the target's model, forecasting
one lead time (``startup_seconds + lead_margin_seconds``) ahead. Its *phase* (which poll
of a model step completes a model point) comes from the target and trigger names, so that
targets started together spread their forecasting work over the polls, a restart keeps
each series' phase, and replay phases a series exactly as the live service does.
"""

from __future__ import annotations

import zlib
from typing import Protocol

from autoscaler.config.model import TargetConfig
from autoscaler.decision.types import KafkaLagObservation, MetricObservation, Observation
from predictors.forecaster import SeriesForecast, SeriesForecaster

__all__ = [
    "Forecaster",
    "forecaster_for",
    "forecaster_settings",
    "forecasters_for",
    "load_series",
]


class Forecaster(Protocol):
    """What the poll step needs of a series' forecaster (``SeriesForecaster``, or replay's
    perfect-foresight reference)."""

    def observe(self, timestamp: float, value: float) -> None: ...

    def refit_due(self, now: float) -> bool: ...

    def refit(self, now: float) -> None: ...

    def forecast(self) -> SeriesForecast | None: ...


def forecaster_for(target: TargetConfig, trigger: str) -> SeriesForecaster | None:
    """The forecaster of one trigger of ``target`` (None when the predictor is ``none``)."""
    predictor = target.predictor
    if predictor.model == "none":
        return None
    phase = zlib.crc32(f"{target.name}/{trigger}".encode()) / 2**32
    return SeriesForecaster(
        predictor.model,
        dict(predictor.params),
        horizon_seconds=target.lead_time_seconds,
        quantile=predictor.quantile,
        step_seconds=target.poll_interval_seconds,
        window_seconds=predictor.history_window_seconds,
        retrain_interval_seconds=predictor.retrain_interval_seconds,
        phase=phase,
        path_seconds=target.plan_horizon_seconds if target.planning else 0.0,
    )


def forecasters_for(target: TargetConfig) -> dict[str, SeriesForecaster]:
    """A forecaster per trigger of ``target``, by trigger name (empty without a predictor)."""
    built = {name: forecaster_for(target, name) for name in target.trigger_names}
    return {name: forecaster for name, forecaster in built.items() if forecaster is not None}


def forecaster_settings(target: TargetConfig) -> tuple[object, ...]:
    """What a forecaster is built from: equal settings mean it can be kept over a reload."""
    return (
        target.predictor,
        target.lead_time_seconds,
        target.poll_interval_seconds,
        target.plan_horizon_seconds if target.planning else 0.0,
    )


def load_series(observation: Observation | None) -> float | None:
    """The value a trigger's forecaster learns from: the arrival rate of a consumer group,
    or the metric itself."""
    if isinstance(observation, KafkaLagObservation):
        return observation.arrival_rate
    if isinstance(observation, MetricObservation):
        return observation.value
    return None
