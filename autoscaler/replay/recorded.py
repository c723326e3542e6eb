"""A forecaster's answers over a replay, recorded once and replayed for many settings.

What a forecaster sees in replay (the arrival rate measured from the end offsets) does not
depend on the replicas, so neither do its forecasts: every setting that shares the model,
its quantile, the lead time and the poll interval shares them. ``record`` runs the forecaster
through the poll step's own sequence (due refits, then the poll's value, then the forecast)
at every poll; ``RecordedForecasts`` then answers the poll step with the same values, at a
lookup's cost. Tuning many settings on one history replays each model once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from autoscaler.decision import Forecaster
from autoscaler.decision.budget import quantile_value
from autoscaler.replay.simulator import Consumer, ConsumerGroup, FloatArray
from predictors.forecaster import SeriesForecast


def observed_arrival_rates(
    times: FloatArray, rates: FloatArray, step_seconds: float, consumer: Consumer
) -> list[float | None]:
    """The arrival rate the live source would report at each poll (whole-message end
    offsets), which no scaling decision changes."""
    starts: list[float] = np.asarray(times, dtype=np.float64).tolist()
    group = ConsumerGroup(consumer, step_seconds, starts[0] if starts else 0.0)
    seen: list[float | None] = []
    for start, rate in zip(starts, np.asarray(rates, dtype=np.float64).tolist(), strict=True):
        group.advance(start, rate)
        seen.append(group.observe(start + step_seconds).arrival_rate)
    return seen


@dataclass
class RecordedForecasts:
    """The poll step's ``Forecaster``, answering with what was recorded for each poll."""

    poll_times: FloatArray
    forecasts: list[SeriesForecast | None]
    _index: int = field(default=-1, repr=False)

    def observe(self, timestamp: float, value: float) -> None:
        self._index = int(np.searchsorted(self.poll_times, timestamp - 1e-6))

    def refit_due(self, now: float) -> bool:
        return False

    def refit(self, now: float) -> None:
        """Recorded with its refits: nothing to do."""

    def forecast(self) -> SeriesForecast | None:
        if not 0 <= self._index < len(self.forecasts):
            return None
        return self.forecasts[self._index]


def at_quantile(recorded: RecordedForecasts, quantile: float) -> RecordedForecasts:
    """The same forecasts with each upper at ``quantile``, read off their calibrated ladder:
    one recording serves every quantile. Only for a model whose quantiles are calibrated
    (``predictors.registry.has_calibrated_quantiles``; ``auto`` is not, its choice depends
    on its quantile): at each of ``QUANTILE_LEVELS`` it is exactly what the model built with
    that quantile gives (tested), between them an interpolation. A forecast without a
    ladder is kept as it is."""
    answers = [
        f
        if f is None or f.ladder is None
        else dataclasses.replace(
            f, upper=max(f.point, quantile_value(f.point, f.upper, f.ladder, quantile, quantile))
        )
        for f in recorded.forecasts
    ]
    return RecordedForecasts(recorded.poll_times, answers)


def record(
    forecaster: Forecaster, poll_times: FloatArray, observed: list[float | None]
) -> RecordedForecasts:
    """Run ``forecaster`` over the polls as the poll step does, and keep each answer."""
    answers: list[SeriesForecast | None] = []
    for now, value in zip(np.asarray(poll_times).tolist(), observed, strict=True):
        if forecaster.refit_due(now):
            forecaster.refit(now)
        if value is not None:  # as the poll step: a non-finite value is the model's to skip
            forecaster.observe(now, value)
        answers.append(forecaster.forecast())
    return RecordedForecasts(np.asarray(poll_times, dtype=np.float64), answers)
