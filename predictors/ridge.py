"""Seasonal ridge: a scikit-learn linear model over lag and calendar features, direct.

Fitted in log space (``log1p``): traffic is multiplicative (a busy hour is busy by a factor,
and its noise grows with it), and a burst 300 times the median must not dominate a linear
fit. The back-transformed forecast is close to the conditional median, which is what a
mean absolute error rewards; the upper quantile comes from the calibrated errors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from predictors import features
from predictors.base import Predictor
from predictors.history import FloatArray

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
        self.models_: dict[int, Any] = {}
        self._model_for(self._horizon_steps(self.history_.step))

    def _model_for(self, horizon: int) -> Any:
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
        model = make_pipeline(StandardScaler(), Ridge(alpha=self.alpha)).fit(x, y)
        self.models_[horizon] = model
        return model

    def _forecast(self, steps_ahead: np.ndarray) -> FloatArray:
        history = self.history_
        assert history is not None
        logged = np.log1p(history.values)
        origin = np.array([len(logged) - 1])
        out = np.empty(len(steps_ahead), dtype=np.float64)
        for horizon in np.unique(steps_ahead).tolist():
            x = features.design(logged, history.last_time, history.step, horizon, origin)
            value = float(np.expm1(self._model_for(horizon).predict(x)[0]))
            out[steps_ahead == horizon] = value
        return out
