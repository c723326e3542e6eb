"""Forecast error metrics: hand-computed cases, NaN handling, a few properties, and the two
scorers built on them (replay's summary, the live accuracy window) agreeing with them."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.observability.metrics import ForecastAccuracy
from autoscaler.observability.metrics import pinball_loss as live_pinball_loss
from autoscaler.replay.simulator import Timeline
from autoscaler.replay.summary import forecast_errors
from predictors.metrics import (
    coverage,
    mae,
    mase,
    mase_in_sample,
    pinball_loss,
    pinball_losses,
    rmse,
    smape,
)

NAN = float("nan")
INF = float("inf")
Pairwise = Callable[[list[float], list[float]], float]


@pytest.mark.parametrize(
    ("metric", "actual", "forecast", "expected"),
    [
        pytest.param(mae, [1, 2, 3], [1, 2, 3], 0.0, id="mae-perfect"),
        pytest.param(mae, [1, 2, 3], [2, 0, 3], 1.0, id="mae-errors-1-2-0"),
        pytest.param(mae, [1, NAN, 3], [2, 100, NAN], 1.0, id="mae-nan-pairs-ignored"),
        pytest.param(mae, [NAN], [1], NAN, id="mae-nothing-left"),
        pytest.param(mae, [], [], NAN, id="mae-empty"),
        pytest.param(rmse, [0, 0], [3, 4], math.sqrt(12.5), id="rmse-3-4"),
        pytest.param(rmse, [1, 2, NAN], [1, 4, 0], math.sqrt(2.0), id="rmse-nan-ignored"),
        pytest.param(smape, [100], [100], 0.0, id="smape-perfect"),
        pytest.param(smape, [100], [50], 2 * 50 / 150, id="smape-under"),
        pytest.param(smape, [0], [10], 2.0, id="smape-worst"),
        pytest.param(smape, [0], [0], 0.0, id="smape-0-over-0-is-perfect"),
        pytest.param(smape, [0, 100], [0, 300], 0.5, id="smape-mixed"),
        pytest.param(smape, [NAN, 1], [1, 1], 0.0, id="smape-nan-ignored"),
        pytest.param(coverage, [1, 2, 3, 4], [2, 2, 2, 2], 0.5, id="coverage-equal-counts"),
        pytest.param(coverage, [1, 5, NAN], [3, NAN, 0], 1.0, id="coverage-nan-ignored"),
        pytest.param(coverage, [NAN], [NAN], NAN, id="coverage-nothing-left"),
    ],
)
def test_pairwise_metrics(
    metric: Pairwise, actual: list[float], forecast: list[float], expected: float
) -> None:
    assert metric(actual, forecast) == pytest.approx(expected, nan_ok=True)


@pytest.mark.parametrize(
    ("actual", "forecast", "q", "expected"),
    [
        # Under-forecast by 10 at q=0.9: 0.9 * 10.
        pytest.param([20], [10], 0.9, 9.0, id="under-forecast-costs-q"),
        # Over-forecast by 10 at q=0.9: 0.1 * 10.
        pytest.param([10], [20], 0.9, 1.0, id="over-forecast-costs-1-minus-q"),
        pytest.param([10, 20], [10, 20], 0.9, 0.0, id="perfect"),
        pytest.param([20, 10], [10, 20], 0.9, 5.0, id="mean-of-both"),
        pytest.param([0, 4], [2, 2], 0.5, 1.0, id="median-is-half-mae"),
        pytest.param([20, NAN], [10, 0], 0.9, 9.0, id="nan-ignored"),
    ],
)
def test_pinball_loss(
    actual: list[float], forecast: list[float], q: float, expected: float
) -> None:
    assert pinball_loss(actual, forecast, q) == pytest.approx(expected)


@pytest.mark.parametrize("q", [pytest.param(0.0, id="zero"), pytest.param(1.0, id="one")])
def test_pinball_loss_rejects_q_outside_the_open_interval(q: float) -> None:
    with pytest.raises(ValueError, match="q must be in"):
        pinball_loss([1], [1], q)


@pytest.mark.parametrize(
    ("actual", "forecast", "baseline", "expected"),
    [
        pytest.param([10, 20], [11, 19], [12, 22], 0.5, id="beats-baseline"),
        pytest.param([10, 20], [12, 22], [11, 19], 2.0, id="loses-to-baseline"),
        pytest.param([10, 20], [12, 18], [8, 22], 1.0, id="tie"),
        # The second point has no baseline: both MAEs are over the first point only.
        pytest.param([10, 20], [11, 100], [14, NAN], 0.25, id="same-points-only"),
        pytest.param([10, NAN], [11, 1], [14, 1], 0.25, id="missing-actual-ignored"),
        pytest.param([10], [10], [10], 1.0, id="both-perfect-is-a-tie"),
        pytest.param([10], [11], [10], INF, id="perfect-baseline"),
        pytest.param([NAN], [1], [1], NAN, id="nothing-left"),
    ],
)
def test_mase_against_a_baseline(
    actual: list[float], forecast: list[float], baseline: list[float], expected: float
) -> None:
    assert mase(actual, forecast, baseline) == pytest.approx(expected, nan_ok=True)


@pytest.mark.parametrize(
    ("actual", "forecast", "train", "season", "expected"),
    [
        # Seasonal differences of the training series (season 2): |3-1|, |4-2|, |5-3| = 2.
        pytest.param([6], [7], [1, 2, 3, 4, 5], 2, 0.5, id="season-2"),
        # One-step differences: |2-1|, |4-2|, |7-4| -> mean 2; model MAE 3.
        pytest.param([10, 10], [7, 13], [1, 2, 4, 7], 1, 1.5, id="season-1"),
        # NaN in train drops both differences that touch it: only |4-3| = 1 is left.
        pytest.param([0], [2], [1, NAN, 3, 4], 1, 2.0, id="nan-in-train"),
        pytest.param([1], [2], [1, 2], 2, NAN, id="train-shorter-than-season"),
        pytest.param([1], [1], [5, 5, 5], 1, 1.0, id="flat-train-perfect-model"),
        pytest.param([1], [2], [5, 5, 5], 1, INF, id="flat-train-imperfect-model"),
    ],
)
def test_mase_in_sample(
    actual: list[float], forecast: list[float], train: list[float], season: int, expected: float
) -> None:
    assert mase_in_sample(actual, forecast, train, season) == pytest.approx(expected, nan_ok=True)


def test_mase_in_sample_rejects_a_season_below_one() -> None:
    with pytest.raises(ValueError, match="season"):
        mase_in_sample([1], [1], [1, 2], 0)


@pytest.mark.parametrize("metric", [mae, rmse, smape, coverage])
def test_arrays_of_different_lengths_are_refused(metric: Pairwise) -> None:
    with pytest.raises(ValueError, match="same length"):
        metric([1.0, 2.0], [1.0])


def test_infinite_forecast_is_not_missing() -> None:
    assert mae([1.0], [INF]) == INF
    assert coverage([1.0, 2.0], [INF, 0.0]) == 0.5


values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
pairs = st.lists(st.tuples(values, values), min_size=1, max_size=50)


@given(pairs)
def test_errors_are_non_negative_and_rmse_bounds_mae(data: list[tuple[float, float]]) -> None:
    actual, forecast = (list(x) for x in zip(*data, strict=True))
    error = mae(actual, forecast)
    assert error >= 0
    assert rmse(actual, forecast) >= error * (1 - 1e-9) - 1e-9
    assert 0 <= smape(actual, forecast) <= 2


@given(pairs)
def test_pinball_at_the_median_is_half_the_mae(data: list[tuple[float, float]]) -> None:
    actual, forecast = (list(x) for x in zip(*data, strict=True))
    assert pinball_loss(actual, forecast, 0.5) == pytest.approx(
        mae(actual, forecast) / 2, rel=1e-9, abs=1e-9
    )


@given(pairs, st.floats(min_value=0.01, max_value=0.99))
def test_pinball_loss_is_non_negative_and_zero_when_perfect(
    data: list[tuple[float, float]], q: float
) -> None:
    actual, forecast = (list(x) for x in zip(*data, strict=True))
    assert pinball_loss(actual, forecast, q) >= 0
    assert pinball_loss(actual, actual, q) == 0


@given(pairs, st.lists(st.booleans(), min_size=50, max_size=50))
def test_nan_pairs_are_the_same_as_dropping_them(
    data: list[tuple[float, float]], drop: list[bool]
) -> None:
    actual = np.array([a for a, _ in data])
    forecast = np.array([f for _, f in data])
    mask = np.array(drop[: len(data)])
    holed = np.where(mask, np.nan, forecast)
    assert mae(actual, holed) == pytest.approx(mae(actual[~mask], forecast[~mask]), nan_ok=True)
    assert coverage(actual, holed) == pytest.approx(
        coverage(actual[~mask], forecast[~mask]), nan_ok=True
    )


def test_pinball_losses_are_the_points_of_pinball_loss() -> None:
    actual, forecast = [10.0, 5.0, 7.0, NAN], [8.0, 9.0, 7.0, 1.0]
    losses = pinball_losses(actual, forecast, 0.9)
    assert losses[:3].tolist() == pytest.approx([1.8, 0.4, 0.0])
    assert math.isnan(losses[3])
    assert pinball_loss(actual, forecast, 0.9) == float(np.mean(losses[:3]))
    with pytest.raises(ValueError, match="q must be in"):
        pinball_losses(actual, forecast, 1.0)


def test_replay_and_live_scores_agree_with_these() -> None:
    """One input, three scorers: replay's summary (MAE, MASE), the live accuracy window
    (MAE, pinball, coverage) and this module. Three days of minutes, a forecast two polls
    ahead at each poll, none at one poll in ten."""
    step, lead, days = 60.0, 120.0, 3
    n = days * 1440
    rng = np.random.default_rng(7)
    minutes = np.arange(n)
    rates = 100 + 50 * np.sin(2 * np.pi * minutes / 1440) + rng.normal(0, 5, n)
    point = np.roll(rates, -2) * rng.normal(1, 0.1, n)
    point[minutes % 10 == 3] = NAN
    upper = point * 1.15
    ahead = 2  # lead / step
    actual, made, made_upper = rates[ahead:], point[:-ahead], upper[:-ahead]
    baseline = np.concatenate([np.full(1440 - ahead, NAN), rates[: n - 1440]])

    zeros = np.zeros(n, dtype=np.int64)
    timeline = Timeline(
        minutes * step, rates, point, zeros, zeros, zeros, np.zeros(n), np.zeros(n), 0
    )
    replay_mae, replay_mase = forecast_errors(timeline, step, lead)
    assert replay_mae == mae(actual, made)
    assert replay_mase == mase(actual, made, baseline)

    live = ForecastAccuracy(lead, 0.9, window=n, poll_interval_seconds=step)
    for k in range(n):
        live.record_actual(k * step, float(rates[k]))
        live.record_forecast(k * step, float(point[k]), float(upper[k]))
    assert live.count == int(np.count_nonzero(~np.isnan(made)))
    assert live.mae == pytest.approx(mae(actual, made), rel=1e-12)
    assert live.pinball == pytest.approx(pinball_loss(actual, made_upper, 0.9), rel=1e-12)
    assert live.coverage == coverage(actual, made_upper)
    assert live_pinball_loss(12.0, 10.0, 0.9) == float(pinball_losses(12.0, 10.0, 0.9))
