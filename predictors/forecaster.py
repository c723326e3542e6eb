"""What a caller (the live loop, replay) holds per forecast series: the configured model, a
naive fallback, and the retrain schedule.

The model may not be able to forecast yet (too little history) or at all (it failed): the
naive forecast stands in and the note says why, so the decision's reason shows it. Refits
are the caller's to run (``refit_due`` / ``refit``), so that the live loop can run them off
the event loop and replay inline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from predictors.naive import NaiveForecaster
from predictors.registry import make_predictor, model_parameters

RESERVED_PARAMETERS = ("horizon_seconds", "quantile", "step_seconds", "window_seconds")
"""Set from the target's configuration (lead time, quantile, poll interval, history window),
never from ``predictor.params``."""


@dataclass(frozen=True)
class SeriesForecast:
    """A forecast ``horizon_seconds`` after the newest point, and which model made it."""

    point: float
    upper: float
    horizon_seconds: float
    model: str
    note: str | None = None


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
    ) -> None:
        accepted = model_parameters(model)
        settings = {
            "horizon_seconds": horizon_seconds,
            "quantile": quantile,
            "step_seconds": step_seconds,
            "window_seconds": window_seconds,
        }
        self.model_name = model
        self.model = make_predictor(
            model, **(params or {}), **{k: v for k, v in settings.items() if k in accepted}
        )
        self.fallback = NaiveForecaster(
            quantile=quantile, step_seconds=step_seconds, window_seconds=window_seconds
        )
        self.horizon_seconds = horizon_seconds
        self.retrain_interval_seconds = retrain_interval_seconds
        self.last_fit_at: float | None = None

    def warm_start(self, timestamps: ArrayLike, values: ArrayLike) -> None:
        """Fit on a history (e.g. from Prometheus at start-up) instead of waiting for one."""
        t = np.asarray(timestamps, dtype=np.float64)
        self.model.fit(t, values)
        self.fallback.fit(t, values)
        self.last_fit_at = float(t[-1]) if len(t) else None

    def observe(self, timestamp: float, value: float) -> None:
        """Absorb one new point. Always cheap: a model that now has history enough for its
        first fit waits for ``refit`` (``refit_due`` says so)."""
        if self.last_fit_at is None:
            self.warm_start([timestamp], [value])  # one point: no model fits on it
            return
        self.model.update(timestamp, value, allow_fit=False)
        self.fallback.update(timestamp, value)

    def refit_due(self, now: float) -> bool:
        """The retrain schedule is up, or the model waits for its first (or a retried) fit."""
        return (
            self.last_fit_at is None
            or now - self.last_fit_at >= self.retrain_interval_seconds
            or self.model.fit_pending
        )

    def refit(self, now: float) -> None:
        """Learn again from the window (heavy: the live loop runs it in a thread)."""
        self.model.refit()
        self.last_fit_at = now

    def forecast(self) -> SeriesForecast | None:
        """The model's forecast, the naive one when the model cannot, or None (no data)."""
        history = self.fallback.history_ if hasattr(self.fallback, "history_") else None
        if history is None or len(history) == 0:
            return None
        at = history.last_time + self.horizon_seconds
        prediction = self.model.predict([at])
        if prediction.available and prediction.upper is not None:
            return SeriesForecast(
                point=float(prediction.point[0]),
                upper=float(prediction.upper[0]),
                horizon_seconds=self.horizon_seconds,
                model=prediction.model,
                note=prediction.note,
            )
        naive = self.fallback.predict([at])
        if not naive.available or naive.upper is None:
            return None
        return SeriesForecast(
            point=float(naive.point[0]),
            upper=float(naive.upper[0]),
            horizon_seconds=self.horizon_seconds,
            model="naive",
            note=f"{self.model_name} cannot forecast ({prediction.note}): naive fallback",
        )
