"""Forecasts as paths: every registered model gives its forecast (and, where calibrated, its
quantile ladder) along a path of horizons, as ``predict`` would give each horizon alone;
``SeriesForecaster`` carries the path over the planner's horizon with each forecast."""

from __future__ import annotations

import numpy as np
import pytest
from test_contract import ALL, STEP, _make, daily

from predictors import Prediction
from predictors.base import PATH_STEPS, QUANTILE_LEVELS
from predictors.forecaster import SeriesForecaster


@pytest.mark.parametrize("name", ALL)
def test_every_model_gives_a_path(name: str) -> None:
    t, y = daily()
    model = _make(name)
    before: Prediction = model.predict_path(12)  # type: ignore[attr-defined]
    assert not before.available
    model.fit(t[:-8], y[:-8])  # type: ignore[attr-defined]
    model.prepare_path(12)  # type: ignore[attr-defined]  # after every fit, as the caller does
    path: Prediction = model.predict_path(12)  # type: ignore[attr-defined]
    assert path.available, path.note
    assert path.steps is not None
    assert path.end_time == t[-9]
    steps = path.steps.tolist()
    assert steps == sorted(set(steps))
    # Every model reaches the end of the path, but quantile_gbm, whose regressors are
    # per horizon: it gives the horizons it fitted and the caller holds the last flat.
    assert steps[-1] == 12 or (name == "quantile_gbm" and steps[-1] < 12)
    assert steps[0] >= 1
    assert path.upper is not None
    assert path.point.shape == path.upper.shape == (len(steps),)
    assert np.all(path.upper >= path.point)
    assert np.all(path.point >= 0)
    if path.ladder is not None:
        assert path.ladder.shape == (len(steps), len(QUANTILE_LEVELS))
        assert np.all(np.diff(path.ladder, axis=1) >= -1e-9)  # non-decreasing in the level
    # Each step's point is the model's forecast for that time, as predict gives it.
    alone = model.predict(path.end_time + STEP * path.steps)  # type: ignore[attr-defined]
    np.testing.assert_allclose(path.point, alone.point, rtol=1e-9)


def test_a_calibrated_path_widens_with_the_horizon_as_its_errors_do() -> None:
    t, y = daily(days=6, noise=0.2)
    model = _make("linear")
    model.fit(t[:400], y[:400])  # type: ignore[attr-defined]
    for k in range(400, len(t)):  # walk forward: every path step learns its errors
        model.predict_path(24)  # type: ignore[attr-defined]
        model.update(float(t[k]), float(y[k]))  # type: ignore[attr-defined]
    path = model.predict_path(24)  # type: ignore[attr-defined]
    assert path.steps.tolist() == [k for k in PATH_STEPS if k < 24] + [24]
    assert path.ladder is not None
    spread = path.ladder[:, -1] - path.ladder[:, 0]  # q0.99 - q0.5 at each horizon
    assert spread[-1] > spread[0]


def test_the_series_forecaster_carries_a_path_to_its_horizon() -> None:
    t, y = daily(days=3)
    forecaster = SeriesForecaster(
        "linear",
        horizon_seconds=90.0,
        quantile=0.9,
        step_seconds=30.0,
        window_seconds=7 * 86400.0,
        retrain_interval_seconds=86400.0,
        path_seconds=1800.0,
    )
    polls = np.arange(t[0], t[-1], 30.0)
    values = np.interp(polls, t, y)
    forecaster.warm_start(polls[:-1], values[:-1])
    forecaster.observe(float(polls[-1]), float(values[-1]))
    forecast = forecaster.forecast()
    assert forecast is not None
    assert forecast.path is not None
    path = forecast.path
    assert path.times[0] > polls[-1] - 60.0
    assert path.times[-1] >= polls[-1] + 1800.0  # reaches the horizon from the newest poll
    assert np.all(np.diff(path.times) > 0)
    no_path = SeriesForecaster(
        "linear",
        horizon_seconds=90.0,
        quantile=0.9,
        step_seconds=30.0,
        window_seconds=7 * 86400.0,
        retrain_interval_seconds=86400.0,
    )
    no_path.warm_start(polls[:-1], values[:-1])
    no_path.observe(float(polls[-1]), float(values[-1]))
    plain = no_path.forecast()
    assert plain is not None
    assert plain.path is None
    assert plain.point == forecast.point  # the path changes nothing of the forecast


def test_the_naive_fallback_gives_a_path_too() -> None:
    forecaster = SeriesForecaster(
        "seasonal_ridge",  # needs days of history: the naive fallback stands in
        horizon_seconds=90.0,
        quantile=0.9,
        step_seconds=30.0,
        window_seconds=7 * 86400.0,
        retrain_interval_seconds=86400.0,
        path_seconds=600.0,
    )
    polls = 1_700_000_000.0 + 30.0 * np.arange(60)
    forecaster.warm_start(polls, np.full(60, 50.0))
    forecast = forecaster.forecast()
    assert forecast is not None
    assert forecast.model == "naive"
    assert forecast.path is not None
    np.testing.assert_allclose(forecast.path.point, 50.0)


@pytest.mark.parametrize("name", ["quantile_gbm", "seasonal_ridge"])
def test_a_path_never_fits_a_model_inside_a_poll(name: str) -> None:
    """Direct models fit a regressor per horizon: a path uses those the fit (and
    ``prepare_path``, at fit time) made, and fits none while the poll waits."""
    t, y = daily()
    model = _make(name)
    model.fit(t[:-8], y[:-8])  # type: ignore[attr-defined]
    model.prepare_path(48)  # type: ignore[attr-defined]
    fitted = set(model.models_)  # type: ignore[attr-defined]
    for max_steps in (48, 24, 60):
        path = model.predict_path(max_steps)  # type: ignore[attr-defined]
        assert path.available
        assert set(path.steps.tolist()) <= fitted
    assert set(model.models_) == fitted  # type: ignore[attr-defined]
