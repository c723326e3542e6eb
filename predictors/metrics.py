"""Forecast error metrics: pure numpy, one float per call (``pinball_losses``: one per point).
The project's one scorer: the benchmarks, replay's summary (``autoscaler.replay.summary``)
and the live accuracy window (``autoscaler.observability.metrics``) all score with these.

Every function takes the actual values first, then the forecast(s), as array-likes of the same
length, and compares them pair by pair (index ``i`` of each is one evaluation point).

Missing values: a point where any of the compared arrays is NaN is **ignored** (dropped from
both the numerator and the count), never read as zero. A forecast is NaN when the model could
not forecast, an actual is NaN when no data arrived (an outage is not zero traffic). With no
point left, every metric returns NaN. Infinite values are not missing: they make the metric
infinite, which is what a forecast of ``inf`` deserves.

Two flavours of MASE:

* ``mase`` (used by the benchmarks): the model's MAE divided by the MAE of a baseline forecast
  (the seasonal-naive one) on the **same evaluation points at the same horizon**. Below 1 the
  model beats the baseline where it matters, out of sample; 1 means a tie.
* ``mase_in_sample``: Hyndman and Koehler's classic definition, the model's MAE divided by the
  in-sample MAE of the one-season-ago forecast on the training series. Cheaper to get (no
  baseline run) but it scales by how predictable the *training* data was, one step ahead.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

__all__ = [
    "coverage",
    "mae",
    "mase",
    "mase_in_sample",
    "pinball_loss",
    "pinball_losses",
    "rmse",
    "smape",
]


def _valid(*arrays: ArrayLike) -> tuple[FloatArray, ...]:
    """The arrays as 1-d float64, restricted to the points where none of them is NaN."""
    converted = [np.asarray(a, dtype=np.float64).ravel() for a in arrays]
    size = len(converted[0])
    if any(len(a) != size for a in converted):
        lengths = ", ".join(str(len(a)) for a in converted)
        raise ValueError(f"arrays must have the same length, not {lengths}")
    keep = np.ones(size, dtype=np.bool_)
    for a in converted:
        keep &= ~np.isnan(a)
    return tuple(a[keep] for a in converted)


def mae(actual: ArrayLike, forecast: ArrayLike) -> float:
    """Mean absolute error; NaN pairs ignored (NaN when none is left)."""
    y, f = _valid(actual, forecast)
    if len(y) == 0:
        return float("nan")
    return float(np.mean(np.abs(y - f)))


def rmse(actual: ArrayLike, forecast: ArrayLike) -> float:
    """Root mean squared error; NaN pairs ignored (NaN when none is left)."""
    y, f = _valid(actual, forecast)
    if len(y) == 0:
        return float("nan")
    return float(np.sqrt(np.mean((y - f) ** 2)))


def smape(actual: ArrayLike, forecast: ArrayLike) -> float:
    """Symmetric mean absolute percentage error, as a fraction in ``[0, 2]``.

    ``mean(2 |f - y| / (|y| + |f|))`` (multiply by 100 for percent). A point where both the
    actual and the forecast are 0 scores 0: the forecast was exactly right (rather than 0/0,
    which would make an idle topic correctly forecast as idle undefined). NaN pairs ignored.
    """
    y, f = _valid(actual, forecast)
    if len(y) == 0:
        return float("nan")
    denominator = np.abs(y) + np.abs(f)
    both_zero = denominator == 0
    ratio = np.where(both_zero, 0.0, 2.0 * np.abs(f - y) / np.where(both_zero, 1.0, denominator))
    return float(np.mean(ratio))


def _ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator`` for two non-negative errors: 0/0 is a tie (1), x/0 is inf."""
    if np.isnan(numerator) or np.isnan(denominator):
        return float("nan")
    if denominator == 0:
        return 1.0 if numerator == 0 else float("inf")
    return numerator / denominator


def mase(actual: ArrayLike, forecast: ArrayLike, baseline: ArrayLike) -> float:
    """MAE of ``forecast`` over MAE of ``baseline`` on the same points (the benchmarks' MASE).

    ``baseline`` is the reference forecast for the same target times at the same horizon
    (seasonal naive: the value one season before each target time). A point is used only when
    the actual and both forecasts are there, so both MAEs are over exactly the same points.
    Below 1: the model beats the baseline. When the baseline is perfect (MAE 0) the ratio is 1
    if the model is perfect too, infinite otherwise. NaN when no point is left.
    """
    y, f, b = _valid(actual, forecast, baseline)
    if len(y) == 0:
        return float("nan")
    return _ratio(float(np.mean(np.abs(y - f))), float(np.mean(np.abs(y - b))))


def mase_in_sample(actual: ArrayLike, forecast: ArrayLike, train: ArrayLike, season: int) -> float:
    """Classic MASE (Hyndman and Koehler, 2006): out-of-sample MAE over the in-sample MAE of
    the seasonal-naive forecast ``train[t - season]`` on the training series.

    NaN in ``train`` drops the differences that involve it. Same zero conventions as ``mase``;
    NaN when there is no evaluation point or no training difference.
    """
    if season < 1:
        raise ValueError(f"season must be >= 1, not {season}")
    history = np.asarray(train, dtype=np.float64).ravel()
    if len(history) <= season:
        return float("nan")
    differences = np.abs(history[season:] - history[:-season])
    differences = differences[~np.isnan(differences)]
    if len(differences) == 0:
        return float("nan")
    return _ratio(mae(actual, forecast), float(np.mean(differences)))


def pinball_losses(actual: ArrayLike, forecast: ArrayLike, q: float) -> FloatArray:
    """The pinball loss of each point (``pinball_loss`` before the mean), for a caller that
    keeps its own running mean (the live accuracy window). NaN where either value is NaN.
    """
    _check_quantile(q)
    error = np.asarray(actual, dtype=np.float64) - np.asarray(forecast, dtype=np.float64)
    return np.maximum(q * error, (q - 1) * error)


def pinball_loss(actual: ArrayLike, forecast: ArrayLike, q: float) -> float:
    """Mean pinball (quantile) loss of ``forecast`` as the ``q`` quantile, ``0 < q < 1``.

    Per point ``q (y - f)`` when the actual is above the forecast, ``(1 - q)(f - y)`` when
    below: at q = 0.9 an under-forecast costs 9 times an over-forecast of the same size. At
    q = 0.5 it is half the MAE. NaN pairs ignored.
    """
    _check_quantile(q)
    y, f = _valid(actual, forecast)
    if len(y) == 0:
        return float("nan")
    return float(np.mean(pinball_losses(y, f, q)))


def _check_quantile(q: float) -> None:
    if not 0 < q < 1:
        raise ValueError(f"q must be in (0, 1), not {q}")


def coverage(actual: ArrayLike, upper: ArrayLike) -> float:
    """Share of the actual values at or below the ``upper`` forecast, in ``[0, 1]``.

    For a calibrated q-quantile forecast it should be close to q. NaN pairs ignored.
    """
    y, u = _valid(actual, upper)
    if len(y) == 0:
        return float("nan")
    return float(np.mean(y <= u))
