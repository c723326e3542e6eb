"""History is stored in float32: a forecast must not carry its representation noise into a
ceiling (0.3 / 0.1 replicas must stay 3, not become 3.0000001 and cost a fourth)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from predictors.forecaster import (
    SeriesForecaster,
    _array_at_stored_precision,
    _at_stored_precision,
)
from predictors.history import SeriesBuffer


@pytest.mark.parametrize("model", ["naive", "seasonal_naive", "moving_average"])
@pytest.mark.parametrize(("level", "per_replica", "replicas"), [(0.3, 0.1, 3), (2.2, 1.1, 2)])
def test_a_steady_series_forecasts_exactly_what_was_observed(
    model: str, level: float, per_replica: float, replicas: int
) -> None:
    assert float(np.float32(level)) != level  # the case that matters: not exact in float32
    forecaster = SeriesForecaster(
        model,
        horizon_seconds=120.0,
        quantile=0.9,
        step_seconds=60.0,
        window_seconds=3 * 86400.0,
        retrain_interval_seconds=86400.0,
        path_seconds=1800.0,
    )
    t = np.arange(2 * 1440) * 60.0
    forecaster.warm_start(t, np.full(len(t), level))
    now = float(t[-1])
    for _ in range(40):  # live polls: errors are learned and matched
        now += 60.0
        forecaster.observe(now, level)
        forecast = forecaster.forecast()
        assert forecast is not None
        assert forecast.model == model
        assert forecast.point == level
        assert forecast.upper == level
        # The planner reads the path (and ceils what it reads): the same precision holds.
        path = forecast.path
        assert path is not None
        assert path.ladder is not None
        for values in (path.point, path.upper, path.ladder):
            assert np.all(values == level), values
    assert math.ceil(forecast.upper / per_replica - 1e-9) == replicas
    assert math.ceil(float(path.upper.max()) / per_replica - 1e-9) == replicas


def test_stored_values_read_back_within_float32_precision() -> None:
    buffer = SeriesBuffer(60.0, 10)
    for i, value in enumerate([0.3, 1234.5678, 1e-4, 7e12]):
        buffer.append(60.0 * i, value)
        assert buffer.last_value == pytest.approx(value, rel=1e-7)
        assert buffer.values.dtype == np.float64


def test_a_path_is_rounded_as_a_single_forecast_is() -> None:
    rng = np.random.default_rng(7)
    values = rng.random(20_000) * 10.0 ** rng.integers(-8, 13, 20_000)
    values = np.concatenate([values, np.float32(values).astype(np.float64)])
    edges = np.array([0.0, 9.9999999, 99999995.0, 0.30000001192092896, 1e-310, np.inf, np.nan])

    rounded = _array_at_stored_precision(np.concatenate([values, edges]))

    assert rounded[: len(values)].tolist() == [_at_stored_precision(v) for v in values]
    assert rounded[len(values) :].tolist()[:5] == [0.0, 10.0, 100000000.0, 0.3, 1e-310]
    assert np.isposinf(rounded[-2])
    assert np.isnan(rounded[-1])
