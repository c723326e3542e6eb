"""Ordinary least squares on the last few points, extrapolated: PHPA's ``Linear`` model.

The Predictive Horizontal Pod Autoscaler (jthomperoo/predictive-horizontal-pod-autoscaler,
``algorithms/linear_regression/linear_regression.py``, ``internal/prediction/linear/linear.go``,
``api/v1alpha1/predictivehorizontalpodautoscaler_types.go``) keeps the last ``historySize``
evaluations, fits value = a + b * time by OLS (statsmodels) and reads the line ``lookAhead``
milliseconds after now. It reacts to a ramp within a few polls and is blind to anything else:
a baseline for steady ramps, and a candidate for ``auto``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from predictors.base import Predictor
from predictors.history import FloatArray


class LinearForecaster(Predictor):
    """A straight line through the last ``history_points`` grid points, extended ahead.

    Parameters (PHPA name in brackets):

    * ``history_points`` (``linear.historySize``): grid points the line is fitted on. PHPA
      has no coded default; its documentation and every example use 6, and so do we.
    * PHPA's ``linear.lookAhead`` (milliseconds, a known source of confusion: PHPA PR #45) is
      not a parameter here: the horizon is whatever ``predict`` is asked, in seconds (the
      decision core's lead time).
    * ``quantile``, ``step_seconds``, ``window_seconds``: shared by every model
      (``predictors.base``); the window only feeds the upper-quantile calibration, the line
      itself never looks further back than ``history_points``.

    Differences from PHPA, on purpose:

    * Only observed points count (PHPA only ever stores real evaluations); slots the history
      filled in across a gap are used only when fewer than two observed points remain.
    * At least two points are needed (a line); PHPA returns its single stored value when it
      has one. Here the caller falls back instead (``naive`` is exactly that behaviour).
    * PHPA forecasts a replica count and rounds it up; this forecasts the metric itself (an
      arrival rate), unrounded. Negative extrapolations are clipped at 0 by the base class.
    """

    name = "linear"

    def __init__(
        self,
        history_points: int = 6,
        quantile: float = 0.9,
        step_seconds: float | None = None,
        window_seconds: float = 86400.0,
    ) -> None:
        self.history_points = history_points
        self.quantile = quantile
        self.step_seconds = step_seconds
        self.window_seconds = window_seconds

    def min_history_points(self, step: float) -> int:
        return 2

    def _fit(self) -> None:
        points = self.history_points
        if isinstance(points, bool) or not isinstance(points, int | np.integer) or points < 2:
            raise ValueError(f"history_points must be an integer >= 2, not {points!r}")
        quantile = self.quantile
        if isinstance(quantile, bool) or not isinstance(quantile, int | float):
            raise ValueError(f"quantile must be a number between 0 and 1, not {quantile!r}")
        if not 0.0 <= quantile <= 1.0:
            raise ValueError(f"quantile must be between 0 and 1, not {quantile!r}")
        self._solve()

    def _absorb(self) -> None:
        # O(history_points): the fit is a handful of sums over at most that many points.
        self._solve()

    def _solve(self) -> None:
        """OLS of value on grid position (0 = the newest slot) over the recent slots."""
        history = self.history_
        assert history is not None
        n = min(int(self.history_points), len(history))
        values = history.tail(n)
        observed = history.observed[-n:]
        x = np.arange(1 - n, 1, dtype=np.float64)
        if np.count_nonzero(observed) >= 2:
            x, values = x[observed], values[observed]
        x_mean, y_mean = float(x.mean()), float(values.mean())
        dx = x - x_mean
        spread = float(dx @ dx)
        slope = float(dx @ (values - y_mean)) / spread if spread > 0 else 0.0
        self.slope_ = slope  # change per grid step
        self.intercept_ = y_mean - slope * x_mean  # the line's value at the newest slot
        self.points_used_ = len(x)

    def _forecast(self, steps_ahead: np.ndarray) -> FloatArray:
        steps = np.asarray(steps_ahead, dtype=np.float64)
        forecast: FloatArray = self.intercept_ + self.slope_ * steps
        return forecast

    def get_fitted_summary(self) -> dict[str, Any]:
        summary = super().get_fitted_summary()
        history = getattr(self, "history_", None)
        if summary["ready"] and history is not None:
            summary.update(
                slope_per_second=self.slope_ / history.step,
                level=self.intercept_,
                points_used=self.points_used_,
            )
        return summary
