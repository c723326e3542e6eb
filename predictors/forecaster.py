"""What a caller (the live loop, replay) holds per forecast series: the configured model, a
naive fallback, and the retrain schedule.

The model may not be able to forecast yet (too little history) or at all (it failed): the
naive forecast stands in and the note says why, so the decision's reason shows it. Refits
are the caller's to run (``refit_due`` / ``refit``), so that the live loop can run them off
the event loop and replay inline.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from predictors.base import Prediction, Predictor
from predictors.history import FloatArray
from predictors.naive import NaiveForecaster
from predictors.registry import make_predictor, model_parameters

RESERVED_PARAMETERS = ("horizon_seconds", "quantile", "step_seconds", "window_seconds")
"""Set from the target's configuration (lead time, quantile, poll interval, history window),
never from ``predictor.params``."""

MIN_MODEL_STEP_SECONDS = 60.0
"""The model's grid is never finer than a minute: polls closer together are averaged into
one point. Fourteen days of 15-second points would cost 80,640 slots per series (GBs for
hundreds of targets) and a 15-second rate is mostly noise at forecast horizons of minutes."""
FALLBACK_WINDOW_SECONDS = 6 * 3600.0
"""The naive fallback needs only recent history: its last value and its recent errors at
the lead time (hundreds of them in six hours of polls)."""


FORECAST_DIGITS = 7
"""Significant digits a forecast is given with: the models read history stored in float32
(``predictors.history``), which holds about seven."""


def _ladder(prediction: Prediction) -> tuple[float, ...] | None:
    """The first timestamp's forecasts at ``QUANTILE_LEVELS``, at stored precision."""
    if prediction.ladder is None:
        return None
    return tuple([float(f"{v:.{FORECAST_DIGITS}g}") for v in prediction.ladder[0].tolist()])


def _at_stored_precision(value: float) -> float:
    """``value`` to ``FORECAST_DIGITS`` significant digits.

    Digits past the seventh are float32 representation, not data: a steady 0.3 reads back
    as 0.30000001192, and a forecast of it would size 0.3 / 0.1 as 3.0000001 replicas, a
    fourth one at the ceiling. Rounded, a model that repeats what it saw forecasts exactly
    the value observed (0.3), as with float64 history.
    """
    return float(f"{value:.{FORECAST_DIGITS}g}")


def _array_at_stored_precision(values: FloatArray) -> FloatArray:
    """``_at_stored_precision`` of every value at once (a path has a couple of hundred: a
    format per value costs 70 us a poll, this 16). Rounding the scaled value to an integer
    and dividing by an exact power of ten gives the float nearest the rounded decimal, as
    ``float(f"{v:.7g}")`` does; zeros, non-finite values and magnitudes below 1e-290 (that
    no power of ten scales) are kept."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = FORECAST_DIGITS - 1 - np.floor(np.log10(np.abs(v)))
    usable = np.isfinite(shift) & (shift < 300)
    shift = np.where(usable, shift, 0.0)
    scale = 10.0 ** np.abs(shift)
    rounded = np.where(shift >= 0, np.round(v * scale) / scale, np.round(v / scale) * scale)
    out: FloatArray = np.where(usable, rounded, v)
    return out


def model_step_seconds(poll_interval_seconds: float) -> float:
    """The model's grid step: the poll interval, or the smallest multiple of it that is at
    least ``MIN_MODEL_STEP_SECONDS``."""
    if poll_interval_seconds >= MIN_MODEL_STEP_SECONDS:
        return poll_interval_seconds
    return poll_interval_seconds * math.ceil(MIN_MODEL_STEP_SECONDS / poll_interval_seconds - 1e-9)


@dataclass(frozen=True)
class SeriesPath:
    """A forecast path: the load at each of ``times`` (absolute, after the newest point)."""

    times: FloatArray
    point: FloatArray
    upper: FloatArray
    """At the configured quantile."""
    ladder: FloatArray | None = None
    """Per time, the forecast at each of ``QUANTILE_LEVELS`` (calibrated models only)."""


@dataclass(frozen=True)
class SeriesForecast:
    """A forecast ``horizon_seconds`` after the newest point, and which model made it."""

    point: float
    upper: float
    horizon_seconds: float
    model: str
    note: str | None = None
    ladder: tuple[float, ...] | None = None
    """The forecast at each of ``QUANTILE_LEVELS``, when the model's quantiles are
    calibrated (see ``Prediction.ladder``)."""
    path: SeriesPath | None = None
    """The forecast over the path horizon (``path_seconds``), by the same model; None when
    no path was asked for or the model cannot give one."""


def _path(prediction: Prediction, step: float) -> SeriesPath | None:
    if not prediction.available or prediction.steps is None or prediction.end_time is None:
        return None
    if prediction.upper is None or not len(prediction.point):
        return None
    # At stored precision, as the forecast's point and upper: the planner ceils what it
    # reads, and 0.3 read back as 0.30000001 would plan a fourth replica of 0.1 msg/s.
    columns = [prediction.point[:, None], prediction.upper[:, None]]
    if prediction.ladder is not None:
        columns.append(prediction.ladder)
    values = _array_at_stored_precision(np.hstack(columns))
    return SeriesPath(
        times=prediction.end_time + prediction.steps.astype(np.float64) * step,
        point=values[:, 0],
        upper=values[:, 1],
        ladder=values[:, 2:] if prediction.ladder is not None else None,
    )


def fitted(model: Predictor, path_steps: int) -> Predictor:
    """``model`` refitted on its window, with what a path of ``path_steps`` needs: a
    refit's whole work, as a function of its inputs, so that a worker process can run it on
    a pickled copy (``SeriesForecaster.refit_inputs`` / ``adopt``)."""
    model.refit()
    _prepare_path(model, path_steps)
    return model


def _prepare_path(model: Predictor, path_steps: int) -> None:
    """After a fit: what the model's path needs (a direct model's horizons), where fits
    run and not inside a poll's forecast."""
    if path_steps > 0:
        # No exception escapes a predictor: a path it cannot prepare stops short.
        with contextlib.suppress(Exception):
            model.prepare_path(path_steps)


def fitted_all(jobs: list[tuple[Predictor, int]]) -> list[Predictor]:
    """``fitted`` of each job, in order (a target's due models, in one trip to a worker)."""
    return [fitted(model, path_steps) for model, path_steps in jobs]


def warm_started(
    forecaster: SeriesForecaster, timestamps: ArrayLike, values: ArrayLike
) -> SeriesForecaster:
    """``forecaster`` warm-started on a history: a warm start's whole work (its first fit)
    as a function of its inputs, for a worker process (``SeriesForecaster.take``)."""
    forecaster.warm_start(timestamps, values)
    return forecaster


class SeriesForecaster:
    """One series' model, its naive fallback, and when to refit it."""

    def __init__(
        self,
        model: str,
        params: dict[str, Any] | None = None,
        *,
        horizon_seconds: float,
        quantile: float,
        step_seconds: float,
        window_seconds: float,
        retrain_interval_seconds: float,
        phase: float = 0.0,
        path_seconds: float = 0.0,
    ) -> None:
        accepted = model_parameters(model)
        self.step_seconds = step_seconds
        self.model_step_seconds = model_step_seconds(step_seconds)
        self.polls_per_point = round(self.model_step_seconds / step_seconds)
        self.phase_polls = int(phase * self.polls_per_point) % self.polls_per_point
        """Which poll of a model step completes it. Targets started together would all
        complete their model points (and pay for a fresh forecast) in the same poll; a
        phase per series (the service derives it from the names) spreads that work."""
        settings = {
            "horizon_seconds": horizon_seconds,
            "quantile": quantile,
            "step_seconds": self.model_step_seconds,
            "window_seconds": window_seconds,
        }
        self.model_name = model
        self.model = make_predictor(
            model, **(params or {}), **{k: v for k, v in settings.items() if k in accepted}
        )
        self.fallback = NaiveForecaster(
            quantile=quantile,
            step_seconds=step_seconds,
            window_seconds=min(window_seconds, FALLBACK_WINDOW_SECONDS),
        )
        self.horizon_seconds = horizon_seconds
        self.path_seconds = path_seconds
        """How far ahead each forecast's path reaches (0: no path; the planner's horizon)."""
        self.retrain_interval_seconds = retrain_interval_seconds
        self.last_fit_at: float | None = None
        # Polls are numbered from ``_anchor``; poll k belongs to model point k // n, which
        # is complete at poll n*b + n - 1 (n = polls_per_point). Polls of the point not yet
        # complete are summed here.
        self._anchor: float | None = None
        self._pending_sum = 0.0
        self._pending_count = 0
        self._emitted: int | None = None
        """The last model point given to the model."""
        # The model's forecast changes only when the model does: cached until then.
        self._model_version = 0
        self._cached: tuple[tuple[int, int], SeriesForecast] | None = None

    def warm_start(self, timestamps: ArrayLike, values: ArrayLike) -> None:
        """Fit on a history (e.g. from Prometheus at start-up) instead of waiting for one."""
        t = np.asarray(timestamps, dtype=np.float64)
        v = np.asarray(values, dtype=np.float64)
        self._pending_sum, self._pending_count, self._emitted = 0.0, 0, None
        self._model_version += 1
        if not len(t):
            return
        n = self.polls_per_point
        self._anchor = float(t[-1]) - self.phase_polls * self.step_seconds
        point = np.floor_divide(np.rint((t - self._anchor) / self.step_seconds), n)
        # The newest model point is complete only if the last poll completes it.
        complete = point < 0 if self.phase_polls < n - 1 else point <= 0
        usable = np.isfinite(v)
        pending = ~complete & usable
        self._pending_sum = float(v[pending].sum())
        self._pending_count = int(pending.sum())
        points, slot = np.unique(point[complete & usable], return_inverse=True)
        means = np.bincount(slot, weights=v[complete & usable]) / np.bincount(slot)
        if len(points):
            self.model.fit(self._point_time(points), means)
            self._prepare_path()
            self._emitted = int(points[-1])
        recent = t >= t[-1] - FALLBACK_WINDOW_SECONDS
        self.fallback.fit(t[recent], v[recent])
        self.last_fit_at = float(t[-1])

    def take(self, warmed: SeriesForecaster) -> None:
        """Become ``warmed`` (``warm_started`` of a copy of this forecaster, perhaps in
        another process): its model, fallback and grid. Nothing may have fed this one in
        between."""
        if warmed.model_name != self.model_name or warmed.step_seconds != self.step_seconds:
            raise ValueError("a warm start of another forecaster")
        self.__dict__.update(warmed.__dict__)

    def _point_time(self, point: Any) -> Any:
        """When model point ``point`` is complete: its last poll, on the poll grid."""
        assert self._anchor is not None
        n = self.polls_per_point
        return self._anchor + (np.asarray(point) * n + n - 1) * self.step_seconds

    def observe(self, timestamp: float, value: float) -> None:
        """Absorb one new poll. Always cheap: a model that now has history enough for its
        first fit waits for ``refit`` (``refit_due`` says so)."""
        if self.last_fit_at is None or self._anchor is None:
            self.warm_start([timestamp], [value])  # one point: no model fits on it
            return
        self.fallback.update(timestamp, value)
        n = self.polls_per_point
        k = round((timestamp - self._anchor) / self.step_seconds)
        point = k // n
        completes = k % n == n - 1
        if self._emitted is not None and point <= self._emitted:
            # A poll early enough to round into a point already given (jitter, or two polls
            # close together): it counts towards the next point, which it cannot complete.
            point, completes = self._emitted + 1, False
        elif self._pending_count and point > self._pending_point():
            self._emit(self._pending_point())  # its completing poll never came (a gap)
        if math.isfinite(value):
            self._pending_sum += value
            self._pending_count += 1
        if completes:
            self._emit(point)

    def _pending_point(self) -> int:
        return 0 if self._emitted is None else self._emitted + 1

    def _emit(self, point: int) -> None:
        if self._pending_count:
            mean = self._pending_sum / self._pending_count
            self.model.update(float(self._point_time(point)), mean, allow_fit=False)
            self._model_version += 1
        self._pending_sum, self._pending_count, self._emitted = 0.0, 0, point

    def refit_due(self, now: float) -> bool:
        """The retrain schedule is up, or the model waits for its first (or a retried) fit.
        Never before the first value: there is nothing to fit yet (``observe`` starts the
        history)."""
        if self.last_fit_at is None:
            return False
        return now - self.last_fit_at >= self.retrain_interval_seconds or self.model.fit_pending

    def refit(self, now: float) -> None:
        """Learn again from the window (heavy: the live loop runs it off its event loop)."""
        self.adopt(fitted(*self.refit_inputs()), now)

    def refit_inputs(self) -> tuple[Predictor, int]:
        """What ``fitted`` needs to refit this series' model: the model (with its window)
        and the path's length in model steps (0: no path)."""
        return self.model, self._path_steps()

    def adopt(self, model: Predictor, now: float) -> None:
        """Take ``model`` (``fitted`` of ``refit_inputs``, perhaps in another process) as
        the one refitted at ``now``. Nothing may have fed this forecaster in between."""
        self.model = model
        self.last_fit_at = now
        self._model_version += 1

    def _path_steps(self) -> int:
        if self.path_seconds <= 0:
            return 0
        return math.ceil(self.path_seconds / self.model_step_seconds - 1e-9) + 2

    def _prepare_path(self) -> None:
        _prepare_path(self.model, self._path_steps())

    def forecast(self) -> SeriesForecast | None:
        """The model's forecast, the naive one when the model cannot, or None (no data)."""
        history = self.fallback.history_ if hasattr(self.fallback, "history_") else None
        if history is None or len(history) == 0:
            return None
        at = history.last_time + self.horizon_seconds
        model_history = getattr(self.model, "history_", None)
        steps = 0
        if model_history is not None and len(model_history):
            steps = round((at - model_history.last_time) / self.model_step_seconds)
        key = (self._model_version, steps)
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        forecast = self._forecast(at)
        if forecast is not None and forecast.model != "naive":
            self._cached = (key, forecast)  # the naive fallback moves every poll: not cached
        return forecast

    def _path_of(self, model: Any, step: float, newest: float) -> SeriesPath | None:
        """``model``'s path to ``path_seconds`` after the newest poll (``newest``)."""
        if self.path_seconds <= 0:
            return None
        last = float(model.history_.last_time)
        # One step more: a path cached from the previous poll still reaches the horizon.
        steps = max(1, math.ceil((newest + self.path_seconds - last) / step - 1e-9) + 1)
        return _path(model.predict_path(steps), step)

    def _forecast(self, at: float) -> SeriesForecast | None:
        newest = at - self.horizon_seconds
        prediction = self.model.predict([at])
        if prediction.available and prediction.upper is not None:
            return SeriesForecast(
                point=_at_stored_precision(float(prediction.point[0])),
                upper=_at_stored_precision(float(prediction.upper[0])),
                horizon_seconds=self.horizon_seconds,
                model=prediction.model,
                note=prediction.note,
                ladder=_ladder(prediction),
                path=self._path_of(self.model, self.model_step_seconds, newest),
            )
        naive = self.fallback.predict([at])
        if not naive.available or naive.upper is None:
            return None
        return SeriesForecast(
            point=_at_stored_precision(float(naive.point[0])),
            upper=_at_stored_precision(float(naive.upper[0])),
            horizon_seconds=self.horizon_seconds,
            model="naive",
            note=f"{self.model_name} cannot forecast ({prediction.note}): naive fallback",
            ladder=_ladder(naive),
            path=self._path_of(self.fallback, self.step_seconds, newest),
        )
