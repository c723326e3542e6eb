"""Moving average and exponentially weighted moving average (EWMA) of the recent past.

Smoothing trades reaction speed for noise: on a noisy, flat series it beats ``naive``; on a
trending or seasonal one it lags. It is here as a candidate for ``auto`` and as a familiar
baseline.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from predictors.base import Predictor
from predictors.history import FloatArray


class MovingAverageForecaster(Predictor):
    """The mean (``method: mean``) or EWMA (``method: ewma``) of the last ``span_seconds``.

    For EWMA the span sets the smoothing factor as pandas does: alpha = 2 / (span + 1), with
    the span in grid points.
    """

    name = "moving_average"

    def __init__(
        self,
        span_seconds: float = 1800.0,
        method: Literal["mean", "ewma"] = "ewma",
        quantile: float = 0.9,
        step_seconds: float | None = None,
        window_seconds: float = 2 * 86400.0,
    ) -> None:
        self.span_seconds = span_seconds
        self.method = method
        self.quantile = quantile
        self.step_seconds = step_seconds
        self.window_seconds = window_seconds

    def _span_points(self) -> int:
        assert self.history_ is not None
        return max(1, round(self.span_seconds / self.history_.step))

    def _fit(self) -> None:
        if self.method not in ("mean", "ewma"):
            raise ValueError(f"method must be 'mean' or 'ewma', not {self.method!r}")
        assert self.history_ is not None
        values = self.history_.values
        alpha = 2.0 / (self._span_points() + 1.0)
        # Start the EWMA on the mean of its first span, then run it over the window.
        span = self._span_points()
        level = float(np.mean(values[:span]))
        for value in values[span:]:
            level += alpha * (float(value) - level)
        self.level_ = level
        self.alpha_ = alpha

    def _absorb(self) -> None:
        assert self.history_ is not None
        self.level_ += self.alpha_ * (self.history_.last_value - self.level_)

    def _forecast(self, steps_ahead: np.ndarray) -> FloatArray:
        assert self.history_ is not None
        if self.method == "mean":
            value = float(np.mean(self.history_.tail(self._span_points())))
        else:
            value = self.level_
        return np.full(len(steps_ahead), value)
