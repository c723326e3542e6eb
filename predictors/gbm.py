"""Quantile gradient boosting: scikit-learn ``HistGradientBoostingRegressor`` with quantile
loss, over the same lag and calendar features as the seasonal ridge, direct.

Two models per lead time: the median (the point forecast; it minimises absolute error)
and the configured upper quantile (headroom for bursts, learned rather than calibrated),
trained on at most ``max_training_rows`` of the most recent origins (trees need no weeks of
rows, and this bounds the fit time). Once fitted, each model is kept in its compact
prediction-only form (``predictors.trees``): a fifth of the memory, same predictions.
Trees cannot extrapolate beyond the levels they were trained on, so each row is scaled by
the recent level at its origin: the model learns *relative* changes, which carry across
days of different volume, and the forecast is scaled back.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from predictors import features
from predictors.base import Predictor
from predictors.history import FloatArray
from predictors.ridge import MIN_TRAINING_ROWS
from predictors.threads import single_threaded
from predictors.trees import CompactTrees

_VALUE_COLUMNS = slice(0, len(features.RECENT_LAGS) + 1 + 4)
_RECENT_MEAN = len(features.RECENT_LAGS)


class QuantileGBMForecaster(Predictor):
    """Median and upper-quantile gradient-boosted trees, ``horizon_seconds`` ahead."""

    name = "quantile_gbm"

    def __init__(
        self,
        horizon_seconds: float = 300.0,
        max_iter: int = 60,
        learning_rate: float = 0.15,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 40,
        max_training_rows: int = 6000,
        quantile: float = 0.9,
        step_seconds: float | None = None,
        window_seconds: float = 14 * 86400.0,
        random_state: int = 0,
    ) -> None:
        self.horizon_seconds = horizon_seconds
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.max_training_rows = max_training_rows
        self.quantile = quantile
        self.step_seconds = step_seconds
        self.window_seconds = window_seconds
        self.random_state = random_state

    def _horizon_steps(self, step: float) -> int:
        return max(1, round(self.horizon_seconds / step))

    def _path_steps(self, max_steps: int) -> np.ndarray:
        # One pair of trees per horizon: a path is given at the horizons fitted (the lead
        # time) and held flat beyond. Fitting a pair per path step inside a poll cost a
        # 2-minute cycle at 1,000 targets; at refit time it would multiply the fit's time
        # and the trees' memory by the path's horizons.
        fitted = sorted(k for k in getattr(self, "models_", {}) if k <= max_steps)
        if not fitted:
            history = self.history_
            assert history is not None
            fitted = [min(self._horizon_steps(history.step), max_steps)]
        return np.asarray(fitted, dtype=np.int64)

    def min_history_points(self, step: float) -> int:
        horizon = self._horizon_steps(step)
        return features.min_origin(step, horizon) + horizon + MIN_TRAINING_ROWS

    def _regressor(self, quantile: float) -> HistGradientBoostingRegressor:
        return HistGradientBoostingRegressor(
            loss="quantile",
            quantile=quantile,
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            early_stopping=False,
            random_state=self.random_state,
        )

    def _scaled(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        scale = x[:, _RECENT_MEAN] + self.scale_floor_
        scaled = x.copy()
        scaled[:, _VALUE_COLUMNS] /= scale[:, None]
        return scaled, scale

    def _fit(self) -> None:
        history = self.history_
        assert history is not None
        # A floor keeps the scale positive on idle stretches without distorting busy ones.
        self.scale_floor_ = 0.01 * float(np.mean(history.values)) + 1e-9
        self.models_: dict[int, tuple[CompactTrees, CompactTrees]] = {}
        self._models_for(self._horizon_steps(history.step))

    def _models_for(self, horizon: int) -> tuple[CompactTrees, CompactTrees]:
        models = self.models_.get(horizon)
        if models is not None:
            return models
        history = self.history_
        assert history is not None
        origins = features.training_origins(history.observed, history.step, horizon)
        if len(origins) < MIN_TRAINING_ROWS:
            raise ValueError(f"too little history for a {horizon}-step model")
        origins = origins[-self.max_training_rows :]  # the most recent rows: bounded fit time
        values = history.values  # a float64 copy of the window: read it once
        x = features.design(values, history.last_time, history.step, horizon, origins)
        x, scale = self._scaled(x)
        y = values[origins + horizon] / scale
        with single_threaded():
            median = CompactTrees.from_sklearn(self._regressor(0.5).fit(x, y))
            upper = CompactTrees.from_sklearn(self._regressor(self.quantile).fit(x, y))
        self.models_[horizon] = (median, upper)
        return median, upper

    def _rows(self, horizon: int) -> tuple[FloatArray, FloatArray]:
        history = self.history_
        assert history is not None
        tail = history.tail(features.tail_length(history.step))
        x = features.design_newest(tail, history.last_time, history.step, horizon)
        return self._scaled(x)

    def _forecast(self, steps_ahead: np.ndarray) -> FloatArray:
        point = np.empty(len(steps_ahead), dtype=np.float64)
        upper = np.empty(len(steps_ahead), dtype=np.float64)
        for horizon in np.unique(steps_ahead).tolist():
            x, scale = self._rows(horizon)  # one feature row serves both models
            median, high = self._models_for(horizon)
            point[steps_ahead == horizon] = median.predict_one(x[0]) * float(scale[0])
            upper[steps_ahead == horizon] = high.predict_one(x[0]) * float(scale[0])
        self._last_upper = upper
        return point

    def _upper(self, steps_ahead: np.ndarray, point: FloatArray) -> FloatArray | None:
        return np.maximum(self._last_upper, point)

    def backtest(
        self, values: FloatArray, end_time: float, origins: np.ndarray, horizon: int
    ) -> tuple[FloatArray, FloatArray] | None:
        # Between refits the trees do not change and every feature of an origin reads only
        # values up to it: one batch gives what the walk would.
        if not getattr(self, "ready_", False):
            return None
        history = self.history_
        assert history is not None
        median, high = self._models_for(horizon)
        x = features.design(values, end_time, history.step, horizon, origins)
        x, scale = self._scaled(x)
        point = np.maximum(median.predict(x) * scale, 0.0)
        upper = np.maximum(high.predict(x) * scale, point)
        return point.astype(np.float64), upper.astype(np.float64)
