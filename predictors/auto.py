"""``auto``: picks, per target, the candidate that forecast its own recent history best.

No model wins everywhere: ``naive`` is hard to beat a few minutes ahead on bursty traffic,
seasonal models win on strongly daily traffic, and a model needs history before it is any
good. So each candidate is judged the way it would be used: fitted on the history before a
validation window, then walked forward through that window as the live loop would (predict
the lead time ahead, absorb the next point), and scored by the pinball loss of its upper
forecast at the configured quantile (what capacity is sized on), mean absolute error as a
tie-break. The winner is used as scored; the contest runs again every ``reselect_seconds``
of data (a week by default).

Between contests the caller's retrain schedule asks for refits. A winner that can score
itself in one batch (``Predictor.backtest``: ``quantile_gbm``, the costly one to fit) is
first scored on the most recent validation window as it stands; it is refitted only when
that score drifted: its pinball loss or mean absolute error, each relative to the mean
level of the window, more than ``drift_tolerance`` above what it scored in the contest.
Otherwise the refit is skipped (``refits_skipped_`` counts them): a refit that would not
change the forecasts is the replay's and the live service's largest single cost. Other
winners refit on schedule, as before.

The choice and every candidate's scores are in ``chosen_`` and ``scores_``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from predictors.base import Prediction, Predictor
from predictors.history import FloatArray
from predictors.registry import make_predictor, model_parameters

DEFAULT_CANDIDATES = (
    "naive",
    "seasonal_naive",
    "moving_average",
    "linear",
    "holt_winters",
    "seasonal_ridge",
    "quantile_gbm",
)


class AutoForecaster(Predictor):
    """Chooses among ``candidates`` by a rolling-origin backtest on recent history."""

    name = "auto"
    refits_skipped_: int
    """Scheduled refits skipped since the last contest (the winner had not drifted)."""

    def __init__(
        self,
        candidates: Sequence[str] = DEFAULT_CANDIDATES,
        horizon_seconds: float = 300.0,
        validation_seconds: float = 86400.0,
        max_validation_points: int = 576,
        reselect_seconds: float = 7 * 86400.0,
        quantile: float = 0.9,
        step_seconds: float | None = None,
        window_seconds: float = 14 * 86400.0,
        drift_tolerance: float | None = 0.1,
    ) -> None:
        self.candidates = candidates
        self.horizon_seconds = horizon_seconds
        self.validation_seconds = validation_seconds
        self.max_validation_points = max_validation_points
        self.reselect_seconds = reselect_seconds
        self.quantile = quantile
        self.step_seconds = step_seconds
        self.window_seconds = window_seconds
        self.drift_tolerance = drift_tolerance

    def min_history_points(self, step: float) -> int:
        return 12

    def _candidate(self, name: str, step: float) -> Predictor:
        accepted = model_parameters(name)
        shared = {
            "horizon_seconds": self.horizon_seconds,
            "quantile": self.quantile,
            "step_seconds": step,
            "window_seconds": self.window_seconds,
        }
        return make_predictor(name, **{k: v for k, v in shared.items() if k in accepted})

    def _fit(self) -> str | None:
        history = self.history_
        assert history is not None
        chosen_at = getattr(self, "chosen_at_", None)
        if chosen_at is not None and history.last_time - chosen_at < self.reselect_seconds:
            # Between contests a refit only refreshes the winner, and only once its recent
            # errors drifted where it can tell; the contest runs every ``reselect_seconds``.
            if self._drifted():
                self.model_.refit()
            else:
                self.refits_skipped_ += 1
            if self.model_.ready_:
                return self._note()
        self._contest(history.step)
        self.chosen_at_ = history.last_time
        self.refits_skipped_ = 0
        self.reference_ = self._recent_errors()
        return self._note()

    def _recent_errors(self) -> tuple[float, float] | None:
        """The winner's (pinball loss, mean absolute error) over the most recent validation
        window, each relative to the window's mean level, scored in one batch as it stands
        (no refit); None where it cannot be (no ``backtest``, nothing to score)."""
        history = self.history_
        assert history is not None
        step = history.step
        horizon = max(1, round(self.horizon_seconds / step))
        values, observed = history.values, history.observed
        n = len(values)
        window = min(max(1, round(self.validation_seconds / step)), self.max_validation_points)
        origins = np.arange(max(0, n - horizon - window), n - horizon)
        if not len(origins):
            return None
        batch = self.model_.backtest(values, history.last_time, origins, horizon)
        if batch is None:
            return None
        targets = origins + horizon
        scored = observed[targets]
        actual = values[targets][scored]
        level = float(np.mean(actual)) if len(actual) else 0.0
        if not level > 0:
            return None
        diff = actual - batch[1][scored]
        pinball = np.maximum(self.quantile * diff, (self.quantile - 1) * diff)
        mae = np.abs(actual - batch[0][scored])
        return float(np.mean(pinball)) / level, float(np.mean(mae)) / level

    def _drifted(self) -> bool:
        """Whether the winner needs the refit the schedule asks for (see the module
        docstring): always, unless it can score itself and neither error grew by more than
        ``drift_tolerance`` since the contest."""
        reference: tuple[float, float] | None = getattr(self, "reference_", None)
        if self.drift_tolerance is None or reference is None:
            return True
        recent = self._recent_errors()
        if recent is None:
            return True
        limit = 1.0 + self.drift_tolerance
        return any(now > then * limit for now, then in zip(recent, reference, strict=True))

    def _note(self) -> str:
        return f"chose {self.chosen_}" + (f" ({self.model_.note_})" if self.model_.note_ else "")

    def _contest(self, step: float) -> None:
        history = self.history_
        assert history is not None
        times, values, observed = history.timestamps, history.values, history.observed
        horizon = max(1, round(self.horizon_seconds / step))
        n = len(values)
        window = min(
            max(1, round(self.validation_seconds / step)), self.max_validation_points, n // 3
        )
        split = n - window
        self.scores_: dict[str, dict[str, Any]] = {}
        best: tuple[float, float, str, Predictor] | None = None
        for name in self.candidates:
            score, model = self._backtest(name, times, values, observed, split, horizon, step)
            self.scores_[name] = score
            if model is not None:
                key = (score["pinball"], score["mae"], name)
                if best is None or key < best[:3]:
                    best = (*key, model)
        if best is None:
            raise ValueError("no candidate could forecast this history")
        # The winner is kept as scored: fitted before the validation window, and up to date
        # since, having absorbed it point by point. The next refit runs the contest again.
        self.chosen_, self.model_ = best[2], best[3]
        self._last: Prediction | None = None
        # The winner's history is this window, point for point: keep one buffer, not two
        # (the live service holds one per target; see ``update``).
        self.history_ = self.model_.history_

    def update(self, timestamp: float, value: float, *, allow_fit: bool = True) -> None:
        """While the winner shares this model's buffer, the winner absorbs the point (its
        buffer, errors and online state); otherwise as any model."""
        model: Predictor | None = getattr(self, "model_", None)
        history = getattr(self, "history_", None)
        if model is None or not self.ready_ or history is None or history is not model.history_:
            super().update(timestamp, value, allow_fit=allow_fit)
            return
        model.update(timestamp, value, allow_fit=allow_fit)
        if not model.ready_:
            self.ready_, self.note_ = False, f"{self.chosen_}: {model.note_}"

    def _backtest(
        self,
        name: str,
        times: FloatArray,
        values: FloatArray,
        observed: np.ndarray,
        split: int,
        horizon: int,
        step: float,
    ) -> tuple[dict[str, Any], Predictor | None]:
        """Fit on ``[:split]``, then walk forward to the end as the live loop would."""
        try:
            model = self._candidate(name, step)
        except (KeyError, TypeError, ImportError) as error:
            return {"ready": False, "note": str(error)}, None
        model.fit(times[:split], values[:split])
        losses: list[float] = []
        errors: list[float] = []
        covered = 0
        origins = np.arange(split - 1, len(values) - horizon)
        targets = origins + horizon
        batch = model.backtest(values, float(times[-1]), origins, horizon) if len(origins) else None
        if batch is not None:
            scored = observed[targets]
            actual = values[targets][scored]
            point, upper = batch[0][scored], batch[1][scored]
            diff = actual - upper
            losses = np.maximum(self.quantile * diff, (self.quantile - 1) * diff).tolist()
            errors = np.abs(actual - point).tolist()
            covered = int(np.count_nonzero(actual <= upper))
        for origin in range(split - 1, len(values) - 1):
            target = origin + horizon
            if batch is None and target < len(values) and observed[target]:
                prediction = model.predict([times[origin] + horizon * step])
                if prediction.available and prediction.upper is not None:
                    actual_value = float(values[target])
                    up, mid = float(prediction.upper[0]), float(prediction.point[0])
                    gap = actual_value - up
                    losses.append(max(self.quantile * gap, (self.quantile - 1) * gap))
                    errors.append(abs(actual_value - mid))
                    covered += actual_value <= up
            model.update(float(times[origin + 1]), float(values[origin + 1]))
        if not losses or not model.ready_:
            note = model.note_ or "no forecast in the validation window"
            return {"ready": False, "note": note}, None
        score = {
            "ready": True,
            "pinball": float(np.mean(losses)),
            "mae": float(np.mean(errors)),
            "coverage": covered / len(losses),
            "points": len(losses),
        }
        return score, model

    def _absorb(self) -> None:
        history = self.history_
        assert history is not None
        self.model_.update(history.last_time, history.last_value)

    def _forecast(self, steps_ahead: np.ndarray) -> FloatArray:
        history = self.history_
        assert history is not None
        prediction = self.model_.predict(history.last_time + steps_ahead * history.step)
        if not prediction.available:
            raise ValueError(f"{self.chosen_}: {prediction.note}")
        self._last = prediction
        return prediction.point

    def _upper(self, steps_ahead: np.ndarray, point: FloatArray) -> FloatArray | None:
        return None if self._last is None else self._last.upper

    def _own_ladder(self) -> FloatArray | None:
        return None if self._last is None else self._last.ladder

    def prepare_path(self, max_steps: int) -> None:
        model = getattr(self, "model_", None)
        if model is not None and getattr(self, "ready_", False):
            model.prepare_path(max_steps)

    def predict_path(self, max_steps: int) -> Prediction:
        """The chosen model's path, as it would give it alone (its own steps, its own
        calibration), under this model's name."""
        model = getattr(self, "model_", None)
        if model is None or not getattr(self, "ready_", False):
            return super().predict_path(max_steps)  # says why it cannot
        path: Prediction = model.predict_path(max_steps)
        return dataclasses.replace(path, model=self.name)

    def get_fitted_summary(self) -> dict[str, Any]:
        summary = super().get_fitted_summary()
        summary["chosen"] = getattr(self, "chosen_", None)
        summary["refits_skipped"] = getattr(self, "refits_skipped_", 0)
        summary["scores"] = {
            name: {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in s.items()}
            for name, s in getattr(self, "scores_", {}).items()
        }
        return summary
