"""The calibrated upper quantile: learned from the model's own recent errors, forgetting
old ones, in a window whose memory is paid once."""

from __future__ import annotations

import numpy as np

from predictors.base import RESIDUAL_WINDOW, ErrorWindow
from predictors.naive import NaiveForecaster


def test_error_window_keeps_the_latest_errors_and_counts_all() -> None:
    window = ErrorWindow(4)
    assert len(window) == 0
    assert len(window.values) == 0
    for error in range(1, 7):
        window.append(float(error))
    assert window.recorded == 6
    assert len(window) == 4
    assert sorted(window.values.tolist()) == [3.0, 4.0, 5.0, 6.0]


def test_error_window_grows_to_its_size_then_keeps_the_latest() -> None:
    from collections import deque

    window = ErrorWindow(200)
    reference: deque[float] = deque(maxlen=200)
    rng = np.random.default_rng(2)
    for step in range(1000):
        error = float(rng.normal())
        window.append(error)
        reference.append(error)
        if step in (0, 63, 64, 127, 199, 200, 201, 999):
            assert sorted(window.values.tolist()) == sorted(reference)
    assert len(window._values) == 200  # grew by doubling, capped at its size
    small = ErrorWindow(200)
    small.append(1.0)
    assert len(small._values) == ErrorWindow.INITIAL  # a horizon seen once costs little


def _margins(noise: list[tuple[float, int]], seed: int = 0) -> list[float]:
    """Upper minus point of a naive forecast one step ahead, after each stretch of noise."""
    rng = np.random.default_rng(seed)
    model = NaiveForecaster(quantile=0.9, step_seconds=60.0, window_seconds=86400.0 * 30)
    t = np.arange(100) * 60.0
    model.fit(t, 1000 + rng.normal(size=100))
    now = float(t[-1])
    margins = []
    for sigma, steps in noise:
        for _ in range(steps):
            prediction = model.predict([now + 60.0])
            assert prediction.upper is not None
            now += 60.0
            model.update(now, 1000.0 + sigma * rng.normal())
        margins.append(float(prediction.upper[0] - prediction.point[0]))
    return margins


def test_upper_is_the_error_quantile_and_old_errors_are_forgotten() -> None:
    # A naive forecast of i.i.d. noise errs by the difference of two draws: N(0, 2 sigma^2),
    # whose 0.9 quantile is 1.2816 * sqrt(2) * sigma = 1.81 sigma.
    quiet, loud = _margins([(1.0, 1000), (10.0, RESIDUAL_WINDOW + 300)])
    assert 1.5 < quiet < 2.2
    # Only errors of the loud stretch are left in the window (mixed with the quiet ones,
    # the quantile would be about 15).
    assert 16.5 < loud < 20.0


def test_only_calibrated_models_keep_forecasts_waiting_for_their_errors() -> None:
    # auto takes its winner's upper and quantile_gbm learns its own: neither uses errors of
    # its own, so neither may pile up forecasts waiting for actuals (auto's update goes to
    # its winner, so its own would never be matched: thousands per series, live).
    from predictors.auto import AutoForecaster
    from predictors.gbm import QuantileGBMForecaster

    rng = np.random.default_rng(5)
    t = np.arange(3 * 1440) * 60.0
    v = 1000 * (1 + 0.5 * np.sin(2 * np.pi * t / 86400)) + 20 * rng.normal(size=len(t))
    auto = AutoForecaster(candidates=["naive", "moving_average"], horizon_seconds=120.0)
    gbm = QuantileGBMForecaster(horizon_seconds=120.0, max_iter=10)
    for model in (auto, gbm):
        model.fit(t[:-300], v[:-300])
        assert model.ready_
        for i in range(len(t) - 300, len(t)):
            prediction = model.predict([t[i - 1] + 120.0])
            assert prediction.available
            model.update(float(t[i]), float(v[i]))
        assert model.calibration_.pending == {}
        assert model.calibration_.errors == {}
    winner = auto.model_.calibration_  # the winner's upper is calibrated: it learns
    assert len(winner.errors[2]) >= 290
    assert sum(len(p) for p in winner.pending.values()) <= 2
