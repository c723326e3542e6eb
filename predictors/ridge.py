"""Seasonal ridge: a scikit-learn linear model over lag and calendar features, direct.

Fitted in log space (``log1p``): traffic is multiplicative (a busy hour is busy by a factor,
and its noise grows with it), and a burst 300 times the median must not dominate a linear
fit. The back-transformed forecast is close to the conditional median, which is what a
mean absolute error rewards; the upper quantile comes from the calibrated errors.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from predictors import features
from predictors.base import Predictor
from predictors.history import FloatArray
from predictors.threads import single_threaded

MIN_TRAINING_ROWS = 48


class SeasonalRidgeForecaster(Predictor):
    """Ridge regression of the value ``horizon_seconds`` ahead on lags and calendar terms.

    One model per lead time (the direct strategy): the configured ``horizon_seconds`` is
    fitted with ``fit``; another lead time asked of ``predict`` is fitted on first use.
    """

    name = "seasonal_ridge"

    def __init__(
        self,
        horizon_seconds: float = 300.0,
        alpha: float = 1.0,
        quantile: float = 0.9,
        step_seconds: float | None = None,
        window_seconds: float = 14 * 86400.0,
    ) -> None:
        self.horizon_seconds = horizon_seconds
        self.alpha = alpha
        self.quantile = quantile
        self.step_seconds = step_seconds
        self.window_seconds = window_seconds

    def _horizon_steps(self, step: float) -> int:
        return max(1, round(self.horizon_seconds / step))

    def min_history_points(self, step: float) -> int:
        horizon = self._horizon_steps(step)
        return features.min_origin(step, horizon) + horizon + MIN_TRAINING_ROWS

    def _fit(self) -> None:
        assert self.history_ is not None
        self.models_: dict[int, tuple[FloatArray, float]] = {}
        self._model_for(self._horizon_steps(self.history_.step))

    def prepare_path(self, max_steps: int) -> None:
        # One regression per horizon: the path's horizons are fitted with the lead's, at
        # refit time, never inside a poll (``_path_steps`` gives only those fitted).
        if not getattr(self, "ready_", False):
            return
        for horizon in super()._path_steps(max_steps).tolist():
            try:
                self._model_for(int(horizon))
            except ValueError:  # too little history for that horizon: the path stops short
                break

    def _path_steps(self, max_steps: int) -> np.ndarray:
        fitted = sorted(k for k in getattr(self, "models_", {}) if k <= max_steps)
        return np.asarray(fitted, dtype=np.int64)

    def _model_for(self, horizon: int) -> tuple[FloatArray, float]:
        """(weights, intercept) of the ``horizon``-step model on raw (log) features."""
        model = self.models_.get(horizon)
        if model is not None:
            return model
        history = self.history_
        assert history is not None
        origins = features.training_origins(history.observed, history.step, horizon)
        if len(origins) < MIN_TRAINING_ROWS:
            raise ValueError(f"too little history for a {horizon}-step model")
        logged = np.log1p(history.values)
        x = features.design(logged, history.last_time, history.step, horizon, origins)
        y = logged[origins + horizon]
        with single_threaded():
            pipeline = make_pipeline(StandardScaler(), Ridge(alpha=self.alpha)).fit(x, y)
        # Fold the scaling into the weights: a prediction is then one dot product, without
        # scikit-learn's per-call input checks (which cost more than the model itself).
        scaler, ridge = pipeline[0], pipeline[1]
        weights = np.asarray(ridge.coef_, dtype=np.float64) / scaler.scale_
        intercept = float(ridge.intercept_) - float(np.dot(weights, scaler.mean_))
        self.models_[horizon] = (weights, intercept)
        return weights, intercept

    def _forecast(self, steps_ahead: np.ndarray) -> FloatArray:
        history = self.history_
        assert history is not None
        out = np.empty(len(steps_ahead), dtype=np.float64)
        for horizon in np.unique(steps_ahead).tolist():
            weights, intercept = self._model_for(horizon)
            tail = history.tail(features.tail_length(history.step))
            x = features.design_newest(np.log1p(tail), history.last_time, history.step, horizon)
            out[steps_ahead == horizon] = float(np.expm1(x[0] @ weights + intercept))
        return out
