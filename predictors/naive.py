"""The honest baselines: the last value, and the value one season ago.

A model earns its place only by beating these: ``naive`` is hard to beat a few minutes ahead
on bursty traffic, ``seasonal_naive`` on strongly daily or weekly traffic.
"""

from __future__ import annotations

import numpy as np

from predictors.base import Predictor
from predictors.history import FloatArray


class NaiveForecaster(Predictor):
    """Tomorrow looks like right now: the last value, at every horizon."""

    name = "naive"

    def __init__(
        self,
        quantile: float = 0.9,
        step_seconds: float | None = None,
        window_seconds: float = 7 * 86400.0,
    ) -> None:
        self.quantile = quantile
        self.step_seconds = step_seconds
        self.window_seconds = window_seconds

    def _forecast(self, steps_ahead: np.ndarray) -> FloatArray:
        assert self.history_ is not None
        return np.full(len(steps_ahead), self.history_.last_value)


class SeasonalNaiveForecaster(Predictor):
    """The same time one season ago (a day by default; a week with 604800)."""

    name = "seasonal_naive"

    def __init__(
        self,
        season_seconds: float = 86400.0,
        quantile: float = 0.9,
        step_seconds: float | None = None,
        window_seconds: float = 14 * 86400.0,
    ) -> None:
        self.season_seconds = season_seconds
        self.quantile = quantile
        self.step_seconds = step_seconds
        self.window_seconds = window_seconds

    def season_points(self, step: float) -> int:
        return max(1, round(self.season_seconds / step))

    def min_history_points(self, step: float) -> int:
        return self.season_points(step)

    def _forecast(self, steps_ahead: np.ndarray) -> FloatArray:
        history = self.history_
        assert history is not None
        season = self.season_points(history.step)
        values = history.tail(season)
        # k steps ahead is k - season steps from now (k - 2*season... for long horizons).
        back = season - ((steps_ahead - 1) % season) - 1
        forecast: FloatArray = values[len(values) - 1 - back].astype(np.float64)
        return forecast
