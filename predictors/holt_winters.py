"""Holt-Winters exponential smoothing (statsmodels), updated online: PHPA's ``HoltWinters``.

The Predictive Horizontal Pod Autoscaler (jthomperoo/predictive-horizontal-pod-autoscaler,
``algorithms/holt_winters/holt_winters.py``, ``internal/prediction/holtwinters/holtwinters.go``,
``api/v1alpha1/predictivehorizontalpodautoscaler_types.go``, ``docs/user-guide/models.md``)
hands its stored replica counts to statsmodels' ``ExponentialSmoothing`` with fixed
``alpha``/``beta``/``gamma`` at every sync period, and forecasts one step. It refuses to
forecast with fewer than ``max(2 * seasonalPeriods, 10 + 2 * (seasonalPeriods // 2))``
points: statsmodels cannot initialise the seasonal states from less than two full seasons
(PHPA#74 was the crash before that guard).

Here statsmodels fits once (at ``fit``/``refit``), and between refits each new point advances
the level, trend and seasonal states with the Holt-Winters recursions, using the parameters
statsmodels fitted: microseconds per point instead of a refit per poll.

Initial states. statsmodels' default (and PHPA's ``initializationMethod`` default) is
``estimated``: the initial level, trend and the whole first season are optimised with the
smoothing parameters. That costs one more parameter per season slot: 0.4 s for a 96-point
season over 14 days, about 1 s for 288 points (5-minute steps, a daily season), minutes for
1,440. The alternative, statsmodels' ``heuristic`` initialisation (a classical decomposition of
the first seasons; only the smoothing parameters are fitted), is 10 times cheaper and as good
on level-and-season traffic, but on steadily growing test series its least-squares fit
preferred a fast-moving trend and forecast a season ahead several times worse. So by default
(``auto``) the initial states are estimated while points x (season + 5) stays under
``ESTIMATE_BUDGET``, and heuristic beyond.

Speed, measured on 14 days of 1-minute history (20,160 points, a 1,440-point season, so the
heuristic start):

* statsmodels' brute-force grid for the starting smoothing parameters costs seconds at this
  length (thousands of passes over the series); instead L-BFGS-B starts from two points,
  statsmodels' own default and a more reactive one, and the better fit is kept. On 20 test
  series (level, season, random walk, drift, bursts, noise; 24- and 1,440-point seasons) it
  found the same least-squares fit as the grid, at a tenth of the cost.
* Every pass of the optimiser ends in a length-20,160 dot product; multi-threaded BLAS made
  that 100 times slower on a busy 2-core machine, so the fit runs with one BLAS thread.

The whole window is fitted, at the grid's resolution: nothing is aggregated or dropped.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import numpy as np
from statsmodels.tsa.holtwinters import ExponentialSmoothing
from threadpoolctl import threadpool_limits

from predictors.base import Predictor
from predictors.history import FloatArray

Component = Literal["add", "mul"] | None

COMPONENTS: dict[str | None, Component] = {
    "add": "add",
    "additive": "add",
    "mul": "mul",
    "multiplicative": "mul",
    None: None,
}
"""Accepted spellings (statsmodels' and PHPA's) of a trend or seasonal component."""

INITIALIZATIONS = ("auto", "estimated", "heuristic")
ESTIMATE_BUDGET = 1_500_000
"""``auto`` estimates the initial states while points x (season + 5) stays under this."""

REACTIVE_START = (0.1, 0.01, 0.3)
"""Second starting point of the optimiser: alpha, beta, gamma (the first is statsmodels')."""
DAMPING_START = 0.98


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


class HoltWintersForecaster(Predictor):
    """Level + trend + season, each smoothed exponentially (triple exponential smoothing).

    Parameters (PHPA name in brackets; PHPA counts in sync periods, we in seconds):

    * ``season_seconds`` (``seasonalPeriods`` x ``syncPeriod``): the season's length; 86400
      (a day) by default, 604800 for a week. Rounded to whole grid steps.
    * ``trend`` (``trend``): ``"add"``, ``"mul"`` or None (``additive``/``multiplicative``
      accepted). PHPA requires it; default ``"add"``.
    * ``seasonal`` (``seasonal``): ``"add"``, ``"mul"`` or None (then plain Holt).
      Default ``"add"``.
    * ``damped_trend`` (``dampedTrend``): damp the trend towards flat; its damping factor is
      then estimated. Default False, as PHPA's.
    * ``smoothing_level``, ``smoothing_trend``, ``smoothing_seasonal`` (``alpha``, ``beta``,
      ``gamma``): None (default) lets statsmodels estimate each by least squares. PHPA has no
      default: they must be given (or fetched by its tuning hook), and every example of its
      uses 0.9, 0.9, 0.9. Setting all three reproduces PHPA's fixed smoothing.
    * ``initialization_method`` (``initializationMethod``): ``"estimated"`` (PHPA's and
      statsmodels' default), ``"heuristic"``, or ``"auto"`` (default): estimated when it is
      affordable, see the module docstring. PHPA's ``known`` (with ``initialLevel``...) is
      not offered: initial values typed into a config go stale with the traffic.
    * ``window_seconds`` (``storedSeasons`` x the season): the history kept and fitted;
      14 days by default (PHPA's examples keep 4 seasons). Fit time grows with it.
    * ``quantile``, ``step_seconds``: shared by every model (``predictors.base``).

    Needs ``max(2 * season, 10 + 2 * (season // 2))`` grid points, as PHPA (10 without a
    season: statsmodels' heuristic initialisation needs 10 points).

    Multiplicative components need strictly positive values (statsmodels refuses zeros, and
    PHPA then fails): a window holding a zero or less is fitted with additive components
    instead, and ``note_`` (and each prediction's note) says so until a refit sees positive
    data again.

    Differences from statsmodels' own ``forecast`` (the states are the same): a forecast
    exactly k seasons ahead uses the newest seasonal state, as the textbook formula does
    (statsmodels uses the one a season older there); a damped multiplicative trend is
    forecast from the states the fit computed (statsmodels restarts from a reported initial
    trend that is off for that case).
    """

    name = "holt_winters"

    def __init__(
        self,
        season_seconds: float = 86400.0,
        trend: str | None = "add",
        seasonal: str | None = "add",
        damped_trend: bool = False,
        smoothing_level: float | None = None,
        smoothing_trend: float | None = None,
        smoothing_seasonal: float | None = None,
        initialization_method: str = "auto",
        quantile: float = 0.9,
        step_seconds: float | None = None,
        window_seconds: float = 14 * 86400.0,
    ) -> None:
        self.season_seconds = season_seconds
        self.trend = trend
        self.seasonal = seasonal
        self.damped_trend = damped_trend
        self.smoothing_level = smoothing_level
        self.smoothing_trend = smoothing_trend
        self.smoothing_seasonal = smoothing_seasonal
        self.initialization_method = initialization_method
        self.quantile = quantile
        self.step_seconds = step_seconds
        self.window_seconds = window_seconds

    # ----------------------------------------------------------------- sizes

    def season_points(self, step: float) -> int:
        """The season in grid points (at least 2; an invalid season is reported by fit)."""
        if not _is_number(self.season_seconds) or not math.isfinite(float(self.season_seconds)):
            return 2
        return max(2, round(float(self.season_seconds) / step))

    def min_history_points(self, step: float) -> int:
        if self.seasonal is None:
            return 10
        m = self.season_points(step)
        return max(2 * m, 10 + 2 * (m // 2))

    # ----------------------------------------------------------------- fitting

    def _check_params(self, step: float) -> tuple[Component, Component]:
        """The trend and seasonal components asked for; ValueError naming a bad parameter."""
        try:
            trend = COMPONENTS[self.trend]
            seasonal = COMPONENTS[self.seasonal]
        except (KeyError, TypeError):
            raise ValueError(
                "trend and seasonal must each be 'add', 'mul' or None, "
                f"not {self.trend!r} and {self.seasonal!r}"
            ) from None
        if seasonal is not None:
            season = self.season_seconds
            if not (_is_number(season) and math.isfinite(season) and season / step >= 1.5):
                raise ValueError(
                    f"season_seconds must span at least 2 grid steps of {step:g} s, not {season!r}"
                )
        if not isinstance(self.damped_trend, bool | np.bool_):
            raise ValueError(f"damped_trend must be true or false, not {self.damped_trend!r}")
        if self.damped_trend and trend is None:
            raise ValueError("damped_trend needs a trend")
        for name in ("smoothing_level", "smoothing_trend", "smoothing_seasonal"):
            value = getattr(self, name)
            if value is not None and not (_is_number(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be None or between 0 and 1, not {value!r}")
        if self.initialization_method not in INITIALIZATIONS:
            raise ValueError(
                f"initialization_method must be one of {', '.join(INITIALIZATIONS)}, "
                f"not {self.initialization_method!r}"
            )
        if not (_is_number(self.quantile) and 0.0 <= self.quantile <= 1.0):
            raise ValueError(f"quantile must be between 0 and 1, not {self.quantile!r}")
        return trend, seasonal

    def _fit(self) -> str | None:
        history = self.history_
        assert history is not None
        trend, seasonal = self._check_params(history.step)
        values = np.array(history.values, dtype=np.float64)
        m = self.season_points(history.step) if seasonal is not None else 0
        self.fit_note_: str | None = None
        if "mul" in (trend, seasonal) and float(values.min()) <= 0.0:
            trend = "add" if trend == "mul" else trend
            seasonal = "add" if seasonal == "mul" else seasonal
            self.fit_note_ = (
                "multiplicative components need positive values and the history has zeros: "
                f"fitted trend={trend}, seasonal={seasonal} instead"
            )
        damped = bool(self.damped_trend)
        initialization = self.initialization_method
        if initialization == "auto":
            affordable = len(values) * (m + 5) <= ESTIMATE_BUDGET
            initialization = "estimated" if affordable else "heuristic"
        with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
            warnings.simplefilter("ignore")  # convergence chatter; the fit is checked below
            model = ExponentialSmoothing(
                values,
                trend=trend,
                seasonal=seasonal,
                damped_trend=damped,
                seasonal_periods=m or None,
                initialization_method=initialization,
            )
            if initialization == "estimated":
                result = model.fit(use_brute=False, **self._fixed(trend, seasonal))
            else:
                result = self._best_fit(model, trend, seasonal, damped)
        params = result.params
        self.components_: tuple[Component, Component] = (trend, seasonal)
        self.season_points_ = m
        self.initialization_ = initialization
        self.params_ = {
            "smoothing_level": float(params["smoothing_level"]),
            "smoothing_trend": float(params["smoothing_trend"]) if trend else 0.0,
            "smoothing_seasonal": float(params["smoothing_seasonal"]) if seasonal else 0.0,
            "damping_trend": float(params["damping_trend"]) if damped else 1.0,
        }
        phi = self.params_["damping_trend"]
        initial_trend = float(params["initial_trend"]) if trend else None
        if trend == "mul" and damped and initial_trend is not None:
            # statsmodels reports b0 ** phi / phi there (it divides a damped power by phi).
            initial_trend = (initial_trend * phi) ** (1.0 / phi)
        self.initial_state_ = {
            "level": float(params["initial_level"]),
            "trend": initial_trend,
            "seasonal": np.array(params["initial_seasons"], dtype=np.float64) if seasonal else None,
        }  # where the fitted recursions started, for inspection

        # The states after the last point, and the ones before it (to redo that step when
        # a newer value for the same slot arrives).
        level, slope = np.asarray(result.level), np.asarray(result.trend)
        self.level_ = float(level[-1])
        self.slope_ = float(slope[-1]) if trend else 0.0
        if seasonal:
            season = np.asarray(result.season, dtype=np.float64)
            self.season_ = season[-m:].copy()
            before = (float(level[-2]), float(slope[-2]) if trend else 0.0, float(season[-m - 1]))
        else:
            self.season_ = np.zeros(1)
            before = (float(level[-2]), float(slope[-2]) if trend else 0.0, 0.0)
        self.phase_ = 0  # index in ``season_`` of the seasonal state for the next slot
        self._before_last = (*before, len(self.season_) - 1)
        self.state_time_ = history.last_time
        self.sse_ = float(result.sse)
        self._check_state()
        return getattr(self, "fit_note_", None)

    def _fixed(self, trend: Component, seasonal: Component) -> dict[str, float | None]:
        """The smoothing parameters given (None: estimated), for the components fitted."""
        return {
            "smoothing_level": self.smoothing_level,
            "smoothing_trend": self.smoothing_trend if trend else None,
            "smoothing_seasonal": self.smoothing_seasonal if seasonal else None,
        }

    def _best_fit(
        self, model: ExponentialSmoothing, trend: Component, seasonal: Component, damped: bool
    ) -> Any:
        """statsmodels' fit with the given parameters; the free ones from two starts."""
        fixed = self._fixed(trend, seasonal)
        free = [value is None for value in fixed.values()]
        free[1] = free[1] and trend is not None
        free[2] = free[2] and seasonal is not None
        if not any(free) and not damped:
            return model.fit(optimized=False, **fixed)
        reactive = [start for start, f in zip(REACTIVE_START, free, strict=True) if f]
        if damped:
            reactive.append(DAMPING_START)
        best: Any = None
        for start in (None, reactive):
            result = model.fit(start_params=start, use_brute=False, **fixed)
            if np.isfinite(result.sse) and (best is None or result.sse < best.sse):
                best = result
        if best is None:
            raise ValueError("statsmodels found no finite fit")
        return best

    # ----------------------------------------------------------------- online update

    def _absorb(self) -> None:
        history = self.history_
        assert history is not None
        new = round((history.last_time - self.state_time_) / history.step)
        if new > len(history):
            raise ValueError("the history restarted after a gap longer than the window")
        if new == 0:  # a newer value for the newest slot: redo the last step with it
            level, slope, seasonal, phase = self._before_last
            self.level_, self.slope_, self.phase_ = level, slope, phase
            self.season_[phase] = seasonal
            self._step(history.last_value)
        else:
            for value in history.tail(new).tolist():
                self._step(value)
        self.state_time_ = history.last_time
        self._check_state()

    def _step(self, y: float) -> None:
        """One Holt-Winters recursion, as statsmodels writes it (``_predict``)."""
        trend, seasonal = self.components_
        alpha = self.params_["smoothing_level"]
        beta = self.params_["smoothing_trend"]
        gamma = self.params_["smoothing_seasonal"]
        phi = self.params_["damping_trend"]
        level, slope, phase = self.level_, self.slope_, self.phase_
        old = float(self.season_[phase])
        self._before_last = (level, slope, old, phase)
        if trend == "add":
            damped = phi * slope
            base = level + damped
        elif trend == "mul":
            damped = slope**phi
            base = level * damped
        else:
            damped, base = 0.0, level
        try:
            if seasonal == "add":
                new_level = alpha * (y - old) + (1.0 - alpha) * base
                self.season_[phase] = gamma * (y - base) + (1.0 - gamma) * old
            elif seasonal == "mul":
                new_level = alpha * y / old + (1.0 - alpha) * base
                self.season_[phase] = gamma * y / base + (1.0 - gamma) * old
            else:
                new_level = alpha * y + (1.0 - alpha) * base
            if trend == "add":
                self.slope_ = beta * (new_level - level) + (1.0 - beta) * damped
            elif trend == "mul":
                self.slope_ = beta * (new_level / level) + (1.0 - beta) * damped
        except ZeroDivisionError:
            raise ValueError("a multiplicative state reached zero; refit needed") from None
        self.level_ = new_level
        if seasonal is not None:
            self.phase_ = (phase + 1) % len(self.season_)

    def _check_state(self) -> None:
        if not (math.isfinite(self.level_) and math.isfinite(self.slope_)):
            raise ValueError("the smoothed state is no longer finite")

    # ----------------------------------------------------------------- forecasting

    def _forecast(self, steps_ahead: np.ndarray) -> FloatArray:
        trend, seasonal = self.components_
        h = np.asarray(steps_ahead, dtype=np.int64)
        phi = self.params_["damping_trend"]
        # Sum of phi^1..phi^h: how many steps of trend h steps ahead contain.
        if phi == 1.0:
            reach = h.astype(np.float64)
        else:
            reach = phi * (1.0 - phi ** h.astype(np.float64)) / (1.0 - phi)
        if trend == "add":
            base = self.level_ + reach * self.slope_
        elif trend == "mul":
            with np.errstate(over="ignore"):
                base = self.level_ * self.slope_**reach
        else:
            base = np.full(len(h), self.level_)
        if seasonal is None:
            return np.asarray(base, dtype=np.float64)
        season = self.season_[(self.phase_ + h - 1) % len(self.season_)]
        forecast: FloatArray = base + season if seasonal == "add" else base * season
        return forecast

    def get_fitted_summary(self) -> dict[str, Any]:
        summary = super().get_fitted_summary()
        if summary["ready"]:
            trend, seasonal = self.components_
            summary.update(
                trend=trend,
                seasonal=seasonal,
                season_points=self.season_points_,
                initialization=self.initialization_,
                **self.params_,
            )
        return summary
