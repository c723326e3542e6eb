"""The one small interface every forecasting model shares, scikit-learn in spirit.

* ``__init__`` only stores parameters (plain attributes, listed in its signature, so that
  ``get_params``/``set_params``/``clone`` work); validation and work happen in ``fit``.
* ``fit(timestamps, values)`` learns from a history and returns ``self``; learned state ends
  in ``_``.
* ``update(timestamp, value)`` / ``extend(...)`` absorb new observations cheaply between
  refits (one point per poll live, tens of thousands in replay).
* ``predict(timestamps)`` forecasts the given future times: a point value and, for the
  configured ``quantile``, an upper value (headroom for bursts).

No exception escapes: a model that cannot forecast (too little history, nothing usable)
says so in ``Prediction.available`` / ``note`` and the caller falls back.

The upper quantile is calibrated the same way for every model that has no quantile of its
own: the empirical quantile of the model's recent errors at that horizon (split-conformal,
online). Until enough errors have been seen, the quantile of the series' own changes over
that horizon stands in (what a naive forecast would have got wrong): wide but honest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator

from predictors.history import (
    FloatArray,
    HistoryError,
    SeriesBuffer,
    clean,
    infer_step,
    to_grid,
)

MIN_RESIDUALS = 30
"""Errors needed at a horizon before they calibrate the upper quantile."""
REQUANTILE_EVERY = 16
"""New errors between two computations of the calibrated quantile."""
RESIDUAL_WINDOW = 2016
"""Recent errors kept per horizon (a week of 5-minute steps)."""
QUANTILE_LEVELS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.975, 0.99)
"""The quantiles a calibrated prediction also gives (``Prediction.ladder``), so that a
caller can size for another quantile than the configured one without refitting: the
decision core's SLO budget moves the quantile in force online."""
PATH_STEPS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384)
"""Horizons (in grid steps) a forecast path is given at (``predict_path``); a caller
interpolates between them. Forecasts and their errors change smoothly with the horizon, a
direct model fits one regressor per horizon, and a calibrated model keeps an error window
per horizon: a 30-step path costs 10 of each, not 30."""


class ErrorWindow:
    """The last ``size`` errors at one horizon, in a float64 array.

    A service holds one per target and horizon: an array costs 8 bytes an error, where a
    deque of Python floats costs 32. It starts small and doubles up to ``size`` (a horizon
    seen only a few times, e.g. during an outage, costs half a kilobyte, not 16), then
    overwrites its oldest error. Order does not matter to a quantile.
    """

    __slots__ = ("_next", "_values", "recorded", "size")

    INITIAL = 64

    def __init__(self, size: int = RESIDUAL_WINDOW) -> None:
        self.size = size
        self._values = np.empty(min(self.INITIAL, size))
        self._next = 0
        self.recorded = 0
        """Errors recorded so far (the window forgets, this count does not)."""

    def append(self, error: float) -> None:
        if self.recorded < self.size:  # still filling: in order, growing as needed
            if self.recorded == len(self._values):
                grown = np.empty(min(self.size, 2 * len(self._values)))
                grown[: self.recorded] = self._values
                self._values = grown
            self._values[self.recorded] = error
        else:  # full: the oldest goes (index 0 first, as the window was filled in order)
            self._values[self._next] = error
            self._next = (self._next + 1) % self.size
        self.recorded += 1

    def __len__(self) -> int:
        return min(self.recorded, self.size)

    @property
    def values(self) -> FloatArray:
        """The errors in the window, in no particular order (a view: do not modify)."""
        return self._values[: len(self)]


@dataclass(frozen=True)
class Prediction:
    """Forecasts for the requested timestamps, or why there are none."""

    point: FloatArray
    upper: FloatArray | None
    model: str
    available: bool = True
    note: str | None = None
    ladder: FloatArray | None = None
    """Per timestamp, the forecast at each of ``QUANTILE_LEVELS`` (shape: timestamps x
    levels), non-decreasing; None for a model whose upper is its own (not calibrated)."""
    steps: np.ndarray | None = None
    """For a path (``predict_path``): the grid steps after the newest point that each value
    is for; None for ``predict``'s timestamps."""
    end_time: float | None = None
    """For a path: the newest point's time (step k is at ``end_time + k * step``)."""

    @classmethod
    def unavailable(cls, model: str, size: int, note: str) -> Prediction:
        nan = np.full(size, np.nan)
        return cls(point=nan, upper=None, model=model, available=False, note=note)


@dataclass
class _Calibration:
    """Recent forecast errors per horizon (in steps), for the upper quantile."""

    errors: dict[int, ErrorWindow] = field(default_factory=dict)
    pending: dict[int, list[tuple[int, float]]] = field(default_factory=dict)
    """Forecast slot -> [(horizon in steps, point forecast)] awaiting the actual value."""
    prior: dict[int, FloatArray] = field(default_factory=dict)
    """Per horizon: the quantiles of the series' own changes (as ``quantiles``)."""
    quantiles: dict[int, tuple[int, FloatArray]] = field(default_factory=dict)
    """Per horizon: (errors recorded when computed, the error quantiles: the configured one,
    then each of ``QUANTILE_LEVELS``)."""


class Predictor(BaseEstimator):  # type: ignore[misc]  # sklearn ships no type information
    """Base class: subclasses define parameters in ``__init__`` and implement ``_fit`` and
    ``_forecast``; they may override ``_absorb`` (cheap update) and ``_upper``."""

    name: str = "base"

    # Parameters shared by every model (each subclass lists them in its own __init__).
    quantile: float
    step_seconds: float | None
    window_seconds: float

    # ----------------------------------------------------------------- what subclasses give

    def min_history_points(self, step: float) -> int:
        """Grid points (of ``step`` seconds) needed before this model can forecast."""
        return 1

    def _fit(self) -> str | None:
        """Learn from ``self.history_`` (override). May return a note on a degraded but
        working fit (e.g. a fallback to a simpler form), shown with every prediction."""
        return None

    def _absorb(self) -> None:
        """The history just grew by at least one point (override for cheap online state)."""

    def _forecast(self, steps_ahead: np.ndarray) -> FloatArray:
        """Point forecasts ``steps_ahead`` grid steps after the last point (override)."""
        raise NotImplementedError

    def _upper(self, steps_ahead: np.ndarray, point: FloatArray) -> FloatArray | None:
        """The model's own upper quantile, if it has one (override); None: calibrated."""
        return None

    def _own_ladder(self) -> FloatArray | None:
        """With an upper of its own: the forecast at ``QUANTILE_LEVELS`` too, if the model
        has them (override; ``auto`` passes on its chosen model's)."""
        return None

    def prepare_path(self, max_steps: int) -> None:
        """Fit what a path to ``max_steps`` needs (override): called after every fit, where
        fits belong (the live loop's worker thread), so that ``predict_path`` never fits
        inside a poll. A model that cannot prepare gives its path at the steps it has."""

    def _path_steps(self, max_steps: int) -> np.ndarray:
        """The grid steps a path is forecast at (override): ``PATH_STEPS`` up to
        ``max_steps``, and ``max_steps``."""
        return np.asarray(
            sorted({k for k in PATH_STEPS if k < max_steps} | {max_steps}), dtype=np.int64
        )

    def backtest(
        self, values: FloatArray, end_time: float, origins: np.ndarray, horizon: int
    ) -> tuple[FloatArray, FloatArray] | None:
        """(point, upper) forecasts ``horizon`` steps after each of ``origins`` (indexes in
        ``values``, a grid ending at ``end_time`` that extends this model's history), all
        at once, as walking forward point by point would give them; None when the model
        cannot (its state changes as it absorbs points, or its upper is calibrated online).
        Used by ``auto`` to judge candidates quickly."""
        return None

    # ----------------------------------------------------------------- the interface

    def fit(self, timestamps: ArrayLike, values: ArrayLike) -> Predictor:
        """Learn from a history; never raises on bad data (see ``ready_``)."""
        self.ready_ = False
        self.note_: str | None = None
        self.calibration_ = _Calibration()
        try:
            self._check_shared_params()
            t, v = clean(timestamps, values)
            step = float(self.step_seconds) if self.step_seconds else infer_step(t)
            grid = to_grid(t, v, step)
        except (HistoryError, TypeError, ValueError) as error:
            self.history_: SeriesBuffer | None = None
            self.note_ = f"cannot fit: {error}"
            return self
        capacity = max(int(self.window_seconds // step), self.min_history_points(step), 2)
        self.history_ = SeriesBuffer.from_grid(grid, capacity)
        self._refit()
        return self

    def _check_shared_params(self) -> None:
        """The parameters every model shares; checked in ``fit`` (never in ``__init__``)."""
        if not isinstance(self.quantile, int | float) or not 0 < self.quantile < 1:
            raise ValueError(f"quantile must be between 0 and 1, not {self.quantile!r}")
        if self.step_seconds is not None and (
            not isinstance(self.step_seconds, int | float) or not self.step_seconds > 0
        ):
            raise ValueError(f"step_seconds must be > 0, not {self.step_seconds!r}")
        if not isinstance(self.window_seconds, int | float) or not self.window_seconds > 0:
            raise ValueError(f"window_seconds must be > 0, not {self.window_seconds!r}")

    def update(self, timestamp: float, value: float, *, allow_fit: bool = True) -> None:
        """Absorb one new observation (cheap: no refit).

        A model still waiting for enough history fits here once it has it, unless
        ``allow_fit`` is False: a live loop then sees ``fit_pending`` and runs the fit
        where a full fit belongs (off its event loop, with other fits rationed).
        """
        if getattr(self, "history_", None) is None:
            self.fit([timestamp], [value])
            return
        history = self.history_
        assert history is not None
        before = history.last_time
        if not history.append(float(timestamp), float(value)):
            return
        self._record_errors(before)
        if not self.ready_:
            if allow_fit and len(history) >= self._retry_at_length():
                self._refit()
        else:
            try:
                self._absorb()
            except Exception as error:  # no exception escapes a predictor
                self.ready_, self.note_ = False, f"update failed: {error}"

    def extend(self, timestamps: ArrayLike, values: ArrayLike) -> None:
        """Absorb many observations, in order."""
        for t, v in zip(np.asarray(timestamps, float), np.asarray(values, float), strict=True):
            self.update(float(t), float(v))

    @property
    def fit_pending(self) -> bool:
        """Not ready, and history enough to try a fit (see ``update(allow_fit=False)``)."""
        history = getattr(self, "history_", None)
        if history is None or getattr(self, "ready_", False):
            return False
        return len(history) >= self._retry_at_length()

    def refit(self) -> Predictor:
        """Learn again from the current window (the caller's retrain schedule)."""
        if getattr(self, "history_", None) is not None:
            self._refit()
        return self

    def predict(self, timestamps: ArrayLike) -> Prediction:
        """Point and upper-quantile forecasts for future ``timestamps``."""
        ts = np.atleast_1d(np.asarray(timestamps, dtype=np.float64))
        history = getattr(self, "history_", None)
        if history is None or not getattr(self, "ready_", False):
            note = getattr(self, "note_", None) or "not fitted"
            return Prediction.unavailable(self.name, len(ts), note)
        steps = np.maximum(1, np.rint((ts - history.last_time) / history.step)).astype(np.int64)
        return self._at_steps(steps, len(ts), self._own_ladder)

    def predict_path(self, max_steps: int) -> Prediction:
        """The forecast along a path of grid steps up to ``max_steps`` after the newest point.

        The steps are ``_path_steps``: ``PATH_STEPS`` and the last one by default (a caller
        interpolates between them: a direct model fits a regressor per horizon, and errors
        and forecasts change smoothly with the horizon). A calibrated model's quantiles come
        from its errors at each of those steps, learned as for ``predict``. ``steps`` says
        which steps the values are for.
        """
        history = getattr(self, "history_", None)
        max_steps = max(1, int(max_steps))
        if history is None or not getattr(self, "ready_", False):
            note = getattr(self, "note_", None) or "not fitted"
            return Prediction.unavailable(self.name, 0, note)
        steps = np.asarray(self._path_steps(max_steps), dtype=np.int64)
        path = self._at_steps(steps, 0, lambda: self._path_own_ladder(len(steps)))
        if not path.available:
            return path
        return dataclasses.replace(path, steps=steps, end_time=float(history.last_time))

    def _at_steps(
        self, steps: np.ndarray, size: int, own_ladder: Callable[[], FloatArray | None]
    ) -> Prediction:
        """The forecast ``steps`` grid steps after the newest point (``predict`` and
        ``predict_path`` alike): the model's point, its own upper and ``own_ladder``, or
        the upper and ladder calibrated from its errors at each step (then remembered, to
        learn their errors). Unavailable (of ``size`` values) when the model fails."""
        try:
            point = np.maximum(np.asarray(self._forecast(steps), dtype=np.float64), 0.0)
            upper = self._upper(steps, point)
            calibrated = upper is None
            ladder = None if upper is None else own_ladder()
            if upper is None:
                offsets = self._error_quantiles(steps)
                upper = point + offsets[:, 0]
                ladder = point[:, None] + offsets[:, 1:]
        except Exception as error:  # no exception escapes a predictor
            return Prediction.unavailable(self.name, size, f"forecast failed: {error}")
        if not np.all(np.isfinite(point)):
            return Prediction.unavailable(self.name, size, "forecast is not finite")
        upper = np.maximum(np.where(np.isfinite(upper), upper, point), point)
        if ladder is not None:
            ladder = np.maximum(np.where(np.isfinite(ladder), ladder, point[:, None]), 0.0)
        if calibrated:  # a model with an upper of its own needs no record of its errors
            self._remember(steps, point)
        return Prediction(point=point, upper=upper, model=self.name, note=self.note_, ladder=ladder)

    def _path_own_ladder(self, size: int) -> FloatArray | None:
        """A model with its own upper: its ladder along a path, when it has one of that
        length (``auto`` passes its chosen model's on)."""
        ladder = self._own_ladder()
        if ladder is None or np.ndim(ladder) != 2 or len(ladder) != size:
            return None
        return ladder

    # ----------------------------------------------------------------- internals

    def _refit(self) -> None:
        history = self.history_
        assert history is not None
        needed = self.min_history_points(history.step)
        self.failed_at_length_: int | None = None
        if len(history) < needed:
            self.ready_ = False
            self.note_ = f"needs {needed} points of history, has {len(history)}"
            return
        try:
            note = self._fit()
        except Exception as error:  # no exception escapes a predictor
            self.ready_, self.note_ = False, f"fit failed: {error}"
            self.failed_at_length_ = len(history)
            return
        self.ready_, self.note_ = True, note
        self.calibration_.prior.clear()

    def _retry_at_length(self) -> int:
        """History length at which a model that is not ready tries to fit again: as soon as
        it has enough, but after a failed fit only once the history grew by a tenth (a fit
        that fails on this data must not cost a full fit on every poll)."""
        history = self.history_
        assert history is not None
        needed = self.min_history_points(history.step)
        failed: int | None = getattr(self, "failed_at_length_", None)
        if failed is None:
            return needed
        return max(needed, failed + max(1, failed // 10))

    def _error_quantiles(self, steps: np.ndarray) -> FloatArray:
        """Per horizon: the quantiles of recent errors (or of the series' own changes), the
        configured one first, then ``QUANTILE_LEVELS``; never negative.

        Recomputed after every ``REQUANTILE_EVERY`` new errors, not at every call: one error
        hardly moves a quantile of hundreds, and the live loop asks at every poll."""
        out = np.empty((len(steps), 1 + len(QUANTILE_LEVELS)), dtype=np.float64)
        calibration = self.calibration_
        for i, k in enumerate(steps.tolist()):
            errors = calibration.errors.get(k)
            if errors is None or len(errors) < MIN_RESIDUALS:
                out[i] = self._prior_quantiles(k)
                continue
            seen = errors.recorded
            cached = calibration.quantiles.get(k)
            if cached is None or seen - cached[0] >= REQUANTILE_EVERY:
                cached = (seen, self._quantiles_of(errors.values))
                calibration.quantiles[k] = cached
            out[i] = cached[1]
        return out

    def _quantiles_of(self, values: FloatArray) -> FloatArray:
        levels = (float(self.quantile), *QUANTILE_LEVELS)
        quantiles: FloatArray = np.maximum(np.quantile(values, levels), 0.0)
        return quantiles

    def _prior_quantiles(self, k: int) -> FloatArray:
        prior = self.calibration_.prior.get(k)
        if prior is None:
            history = self.history_
            assert history is not None
            values = history.values
            changes = values[k:] - values[:-k] if len(values) > k else np.zeros(1)
            prior = self._quantiles_of(changes)
            self.calibration_.prior[k] = prior
        return prior

    def _remember(self, steps: np.ndarray, point: FloatArray) -> None:
        """Keep each forecast until its actual value arrives, to learn its error."""
        pending = self.calibration_.pending
        for k, p in zip(steps.tolist(), point.tolist(), strict=True):
            waiting = pending.setdefault(self._slot_of(k), [])
            if any(seen == k for seen, _ in waiting):
                continue  # asked again for the same slot and horizon (a path and the lead)
            waiting.append((k, p))
        if len(pending) > 4 * RESIDUAL_WINDOW:  # forecasts for times that never came
            for slot in sorted(pending)[: len(pending) - 2 * RESIDUAL_WINDOW]:
                del pending[slot]

    def _slot_of(self, steps_ahead: int) -> int:
        history = self.history_
        assert history is not None
        return round(history.last_time / history.step) + steps_ahead

    def _record_errors(self, previous_last_time: float) -> None:
        """Match newly arrived actual values with the forecasts made for them."""
        history = self.history_
        assert history is not None
        pending = self.calibration_.pending
        if not pending:
            return
        newest = round(history.last_time / history.step)
        oldest = (
            round(previous_last_time / history.step) + 1
            if np.isfinite(previous_last_time)
            else newest
        )
        first = max(oldest, newest - len(history) + 1)
        values = history.tail(newest - first + 1)  # only the slots that just arrived
        observed = history.observed[len(history) - len(values) :]
        for slot in range(first, newest + 1):
            forecasts = pending.pop(slot, None)
            if not forecasts:
                continue
            index = len(values) - 1 - (newest - slot)
            if not observed[index]:
                continue
            actual = float(values[index])
            windows = self.calibration_.errors
            for k, point in forecasts:
                window = windows.get(k)
                if window is None:
                    window = windows[k] = ErrorWindow()
                window.append(actual - point)

    def get_fitted_summary(self) -> dict[str, Any]:
        """What the model learned, for status pages and the auto model's report."""
        return {
            "model": self.name,
            "ready": getattr(self, "ready_", False),
            "note": getattr(self, "note_", None),
        }
