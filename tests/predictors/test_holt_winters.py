"""HoltWintersForecaster: statsmodels' fit, then the Holt-Winters recursions online."""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from statsmodels.tsa.holtwinters import ExponentialSmoothing

from predictors.holt_winters import HoltWintersForecaster
from predictors.registry import make_predictor

STEP = 300.0
M = 12  # season in grid points: one hour of 5-minute steps
SEASON = M * STEP
START = 1_700_000_000.0


def grid(n: int) -> np.ndarray:
    return START + STEP * np.arange(n, dtype=np.float64)


def ahead(model: HoltWintersForecaster, steps: Any) -> np.ndarray:
    assert model.history_ is not None
    return model.history_.last_time + model.history_.step * np.asarray(steps, dtype=np.float64)


def make(**params: Any) -> HoltWintersForecaster:
    return HoltWintersForecaster(season_seconds=SEASON, **params)


def additive(n: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Level 200, trend 0.5 per step, a season of amplitude 50 (plus a harmonic)."""
    t = np.arange(n, dtype=np.float64)
    season = 50.0 * np.sin(2 * np.pi * t / M) + 20.0 * np.cos(4 * np.pi * t / M)
    noise_values = np.random.default_rng(seed).normal(0.0, noise, n) if noise else 0.0
    return 200.0 + 0.5 * t + season + noise_values


def multiplicative(n: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """A season whose amplitude grows with the level (strictly positive)."""
    t = np.arange(n, dtype=np.float64)
    noise_values = np.random.default_rng(seed).normal(0.0, noise, n) if noise else 0.0
    return (100.0 + 1.0 * t) * (1.0 + 0.4 * np.sin(2 * np.pi * t / M)) + noise_values


def geometric(n: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Growth of 0.5% per step times a multiplicative season."""
    t = np.arange(n, dtype=np.float64)
    noise_values = np.random.default_rng(seed).normal(0.0, noise, n) if noise else 0.0
    return 100.0 * 1.005**t * (1.0 + 0.4 * np.sin(2 * np.pi * t / M)) + noise_values


# ----------------------------------------------------------------- known answers


@pytest.mark.parametrize(
    ("series", "params", "tolerance"),
    [
        pytest.param(additive, {}, 1e-6, id="additive-exact"),
        pytest.param(additive, {"damped_trend": True}, 0.02, id="additive-damped"),
        pytest.param(multiplicative, {"seasonal": "mul"}, 0.03, id="multiplicative-season"),
        pytest.param(
            geometric, {"trend": "mul", "seasonal": "mul"}, 0.03, id="multiplicative-both"
        ),
    ],
)
def test_a_seasonal_series_with_a_trend_is_forecast_closely(
    series: Any, params: dict[str, Any], tolerance: float
) -> None:
    """Three seasons ahead, within ``tolerance`` (relative) of the noise-free truth."""
    n = 10 * M
    truth = series(n + 3 * M)
    model = make(**params).fit(grid(n), truth[:n])
    steps = np.arange(1, 3 * M + 1)
    prediction = model.predict(ahead(model, steps))
    assert prediction.available, prediction.note
    np.testing.assert_allclose(prediction.point, truth[n - 1 + steps], rtol=tolerance)
    assert prediction.upper is not None
    assert np.all(prediction.upper >= prediction.point)


def test_a_noisy_additive_series_is_forecast_within_the_noise() -> None:
    n = 14 * M
    noisy = additive(n, noise=5.0)
    model = make().fit(grid(n), noisy)
    steps = np.arange(1, 2 * M + 1)
    truth = additive(n + 2 * M)[n - 1 + steps]
    error = model.predict(ahead(model, steps)).point - truth
    assert np.sqrt(np.mean(error**2)) < 10.0  # noise sd is 5, the season's amplitude ~70


def test_phpa_fixed_smoothing_is_used_as_given() -> None:
    model = make(smoothing_level=0.9, smoothing_trend=0.9, smoothing_seasonal=0.9)
    model.fit(grid(6 * M), additive(6 * M, noise=1.0))
    assert model.params_ == {
        "smoothing_level": 0.9,
        "smoothing_trend": 0.9,
        "smoothing_seasonal": 0.9,
        "damping_trend": 1.0,
    }
    assert model.predict(ahead(model, [1])).available


@pytest.mark.parametrize(
    ("season_points", "seasonal", "needed"),
    [
        pytest.param(2, "add", 12, id="m2-statsmodels-10-plus"),
        pytest.param(4, "add", 14, id="m4"),
        pytest.param(12, "add", 24, id="m12-two-seasons"),
        pytest.param(1440, "mul", 2880, id="day-of-minutes"),
        pytest.param(12, None, 10, id="no-season"),
    ],
)
def test_minimum_history_is_phpas_rule(
    season_points: int, seasonal: str | None, needed: int
) -> None:
    model = HoltWintersForecaster(season_seconds=season_points * 60.0, seasonal=seasonal)
    assert model.min_history_points(60.0) == needed


@pytest.mark.parametrize(
    ("season_points", "initialization"),
    [
        pytest.param(12, "estimated", id="short-season-estimated"),
        pytest.param(900, "heuristic", id="long-season-heuristic"),
    ],
)
def test_auto_estimates_the_initial_states_when_affordable(
    season_points: int, initialization: str
) -> None:
    n = 2 * season_points
    t = np.arange(n, dtype=np.float64)
    values = 100.0 + 10.0 * np.sin(2 * np.pi * t / season_points)
    model = HoltWintersForecaster(season_seconds=season_points * 60.0).fit(60.0 * t, values)
    assert model.initialization_ == initialization
    assert model.get_fitted_summary()["initialization"] == initialization


def test_too_short_a_history_is_unavailable_until_two_seasons() -> None:
    values = additive(2 * M)
    model = make().fit(grid(2 * M - 1), values[:-1])
    prediction = model.predict(ahead(model, [1]))
    assert prediction.available is False
    assert prediction.note == f"needs {2 * M} points of history, has {2 * M - 1}"
    model.update(START + STEP * (2 * M - 1), float(values[-1]))  # the 24th point: fits
    assert model.predict(ahead(model, [1, 5])).available


# ----------------------------------------------------------------- online update vs statsmodels


def statsmodels_reference(model: HoltWintersForecaster) -> Any:
    """statsmodels on the model's whole grid, from the same initial states and parameters."""
    assert model.history_ is not None
    trend, seasonal = model.components_
    initial = model.initial_state_
    params = model.params_
    reference = ExponentialSmoothing(
        np.array(model.history_.values),
        trend=trend,
        seasonal=seasonal,
        damped_trend=bool(model.damped_trend),
        seasonal_periods=model.season_points_ or None,
        initialization_method="known",
        initial_level=initial["level"],
        initial_trend=initial["trend"],
        initial_seasonal=initial["seasonal"],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return reference.fit(
            smoothing_level=params["smoothing_level"],
            smoothing_trend=params["smoothing_trend"] if trend else None,
            smoothing_seasonal=params["smoothing_seasonal"] if seasonal else None,
            damping_trend=params["damping_trend"] if model.damped_trend else None,
            optimized=False,
        )


CONFIGS = [
    pytest.param({}, additive, id="add-add"),
    pytest.param({"damped_trend": True}, additive, id="add-add-damped"),
    pytest.param({"seasonal": "mul"}, multiplicative, id="add-mul"),
    pytest.param({"trend": "mul", "seasonal": "mul"}, geometric, id="mul-mul"),
    pytest.param(
        {"trend": "mul", "seasonal": "add", "damped_trend": True}, geometric, id="mul-add-damped"
    ),
    pytest.param({"trend": None}, additive, id="none-add"),
    pytest.param({"seasonal": None}, additive, id="add-none"),
    pytest.param(
        {"smoothing_level": 0.5, "smoothing_trend": 0.2, "smoothing_seasonal": 0.3},
        additive,
        id="fixed-smoothing",
    ),
]


@pytest.mark.parametrize(("params", "series"), CONFIGS)
@pytest.mark.parametrize("absorbed", [0, 1, 5, 2 * M + 7])
@pytest.mark.parametrize("initialization", ["estimated", "heuristic"])
def test_absorbing_points_matches_statsmodels_on_the_same_data(
    params: dict[str, Any], series: Any, absorbed: int, initialization: str
) -> None:
    n = 6 * M
    values = series(n + absorbed, noise=3.0, seed=absorbed)
    model = make(initialization_method=initialization, **params).fit(grid(n), values[:n])
    assert model.initialization_ == initialization
    assert model.ready_, model.note_
    model.extend(grid(n + absorbed)[n:], values[n:])
    reference = statsmodels_reference(model)

    # Same states: level, trend, and the seasonal state of each of the next M slots.
    np.testing.assert_allclose(model.level_, reference.level[-1], rtol=1e-9)
    if model.components_[0] is not None:
        np.testing.assert_allclose(model.slope_, reference.trend[-1], rtol=1e-9, atol=1e-12)
    if model.components_[1] is not None:
        ring = np.roll(model.season_, -model.phase_)
        np.testing.assert_allclose(ring, np.asarray(reference.season)[-M:], rtol=1e-9)

    # Same forecasts within a season (statsmodels' own forecast differs exactly k seasons
    # ahead, and for a damped multiplicative trend: see the module docstring).
    if not (model.components_[0] == "mul" and model.damped_trend):
        steps = np.arange(1, M)
        expected = np.asarray(reference.forecast(M - 1))
        np.testing.assert_allclose(model.predict(ahead(model, steps)).point, expected, rtol=1e-9)


def test_a_forecast_a_whole_season_ahead_uses_the_newest_seasonal_state() -> None:
    model = make(smoothing_level=0.3, smoothing_trend=0.1, smoothing_seasonal=0.4)
    model.fit(grid(6 * M), additive(6 * M, noise=3.0))
    steps = np.array([M, 2 * M])
    point = model.predict(ahead(model, steps)).point
    newest = model.season_[(model.phase_ + M - 1) % M]  # updated from the newest point
    expected = model.level_ + steps * model.slope_ + newest
    np.testing.assert_allclose(point, expected, rtol=1e-12)


def test_a_newer_value_for_the_newest_slot_replaces_the_older_one() -> None:
    n = 6 * M
    values = additive(n + 3, noise=2.0)
    times = grid(n + 3)
    rewritten = make().fit(times[:n], values[:n])
    rewritten.extend(times[n:], values[n:])
    rewritten.update(float(times[-1]), 999.0)  # same slot, newer value: it wins
    direct = make().fit(times[:n], values[:n])
    direct.extend(times[n:-1], values[n:-1])
    direct.update(float(times[-1]), 999.0)
    when = ahead(direct, np.arange(1, 2 * M))
    np.testing.assert_allclose(rewritten.predict(when).point, direct.predict(when).point)


def test_a_newer_value_right_after_fit_redoes_the_last_fitted_step() -> None:
    n = 6 * M
    values = additive(n, noise=2.0)
    fixed = {
        "smoothing_level": 0.4,
        "smoothing_trend": 0.1,
        "smoothing_seasonal": 0.3,
        "initialization_method": "heuristic",  # from the first seasons only
    }
    model = make(**fixed).fit(grid(n), values)
    model.update(float(grid(n)[-1]), 123.0)
    fresh = make(**fixed).fit(grid(n), np.append(values[:-1], 123.0))
    # Same parameters, same initial states (the first seasons are unchanged): same forecast.
    when = ahead(fresh, np.arange(1, M))
    np.testing.assert_allclose(model.predict(when).point, fresh.predict(when).point)


def test_a_skipped_slot_is_absorbed_as_the_history_fills_it() -> None:
    n = 6 * M
    values = additive(n + 4, noise=2.0)
    model = make().fit(grid(n), values[:n])
    model.update(float(grid(n + 4)[-1]), float(values[-1]))  # 3 slots missing in between
    reference = statsmodels_reference(model)  # on the filled-in grid
    np.testing.assert_allclose(model.level_, reference.level[-1], rtol=1e-9)


def test_a_gap_longer_than_the_window_makes_it_unavailable_then_it_recovers() -> None:
    n = 3 * M
    model = make(window_seconds=3 * SEASON).fit(grid(n), additive(n))
    later = START + STEP * (n + 10 * M)
    model.update(later, 200.0)
    prediction = model.predict([later + STEP])
    assert prediction.available is False
    assert prediction.note is not None
    assert "restarted" in prediction.note
    model.extend(later + STEP * np.arange(1, 2 * M), additive(2 * M)[1:])
    assert model.predict([later + 2 * M * STEP]).available


# ----------------------------------------------------------------- bad input


WITH_ZEROS = np.where(np.arange(6 * M) % M < 3, 0.0, multiplicative(6 * M))


@pytest.mark.parametrize(
    ("timestamps", "values", "params", "available"),
    [
        pytest.param([], [], {}, False, id="empty"),
        pytest.param(grid(6 * M), np.full(6 * M, np.nan), {}, False, id="all-nan"),
        pytest.param([START], [5.0], {}, False, id="single-point"),
        pytest.param(grid(6 * M), np.full(6 * M, 7.0), {}, True, id="constant"),
        pytest.param(grid(6 * M), np.zeros(6 * M), {}, True, id="all-zero"),
        pytest.param(
            grid(6 * M),
            np.where(np.arange(6 * M) % 17 == 0, 1e12, additive(6 * M)),
            {},
            True,
            id="huge-spikes",
        ),
        pytest.param(grid(6 * M)[::-1], additive(6 * M)[::-1], {}, True, id="unsorted"),
        pytest.param(
            np.repeat(grid(6 * M), 2), np.repeat(additive(6 * M), 2), {}, True, id="duplicated"
        ),
        pytest.param(
            grid(6 * M), WITH_ZEROS, {"seasonal": "mul"}, True, id="zeros-multiplicative-season"
        ),
        pytest.param(
            grid(6 * M),
            WITH_ZEROS,
            {"trend": "mul", "seasonal": "mul"},
            True,
            id="zeros-multiplicative-both",
        ),
        pytest.param(
            grid(6 * M),
            np.full(6 * M, 7.0),
            {"trend": "mul", "seasonal": "mul"},
            True,
            id="mul-flat",
        ),
    ],
)
def test_bad_input_never_raises_and_forecasts_stay_sane(
    timestamps: Any, values: Any, params: dict[str, Any], available: bool
) -> None:
    model = make(**params).fit(timestamps, values)
    prediction = model.predict([START + 1e6, START + 2e6])
    assert prediction.available is available, prediction.note
    if available:
        assert np.all(np.isfinite(prediction.point))
        assert np.all(prediction.point >= 0.0)
    else:
        assert prediction.note


def test_zeros_with_a_multiplicative_season_fall_back_to_additive_and_say_so() -> None:
    model = make(trend="mul", seasonal="mul", window_seconds=6 * SEASON)
    model.fit(grid(6 * M), WITH_ZEROS)
    assert model.components_ == ("add", "add")
    prediction = model.predict(ahead(model, [1, 2]))
    assert prediction.available
    assert prediction.note is not None
    assert "multiplicative" in prediction.note
    # Back to positive data: once the zeros left the window, a refit is multiplicative again.
    model.extend(grid(12 * M)[6 * M :], geometric(6 * M))
    model.refit()
    assert model.components_ == ("mul", "mul")
    assert model.predict(ahead(model, [1])).note is None


def test_a_zero_after_a_multiplicative_fit_is_absorbed() -> None:
    model = make(seasonal="mul").fit(grid(6 * M), multiplicative(6 * M))
    model.extend(grid(6 * M + 3)[6 * M :], [0.0, 0.0, 0.0])
    prediction = model.predict(ahead(model, [1, M]))
    assert prediction.available, prediction.note
    assert np.all(np.isfinite(prediction.point))


@given(
    st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.floats(min_value=0, max_value=1e6),
            st.just(0.0),
        ),
        max_size=40,
    ),
    st.sampled_from(["add", "mul"]),
)
@settings(max_examples=40, deadline=None)
def test_any_values_never_raise(values: list[float], seasonal: str) -> None:
    model = HoltWintersForecaster(season_seconds=4 * STEP, seasonal=seasonal, trend=seasonal)
    model.fit(grid(len(values)), values)
    model.update(START + STEP * (len(values) + 1), 10.0)
    prediction = model.predict([START + STEP * (len(values) + 5)])
    if prediction.available:
        assert np.all(np.isfinite(prediction.point))
        assert np.all(prediction.point >= 0.0)


# ----------------------------------------------------------------- scikit-learn conventions


def test_get_params_is_exactly_the_constructor_parameters() -> None:
    signature = inspect.signature(HoltWintersForecaster.__init__)
    expected = {name: p.default for name, p in signature.parameters.items() if name != "self"}
    assert HoltWintersForecaster().get_params() == expected
    assert expected["season_seconds"] == 86400.0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param({"season_seconds": -1.0}, "season_seconds", id="negative-season"),
        pytest.param({"season_seconds": STEP}, "season_seconds", id="season-of-one-step"),
        pytest.param({"season_seconds": "daily"}, "season_seconds", id="season-not-number"),
        pytest.param({"trend": "cubic"}, "trend", id="unknown-trend"),
        pytest.param({"seasonal": ["add"]}, "seasonal", id="seasonal-not-a-name"),
        pytest.param({"trend": None, "damped_trend": True}, "damped_trend", id="damped-no-trend"),
        pytest.param({"damped_trend": "yes"}, "damped_trend", id="damped-not-bool"),
        pytest.param({"smoothing_level": 2.0}, "smoothing_level", id="alpha-above-1"),
        pytest.param({"smoothing_seasonal": -0.1}, "smoothing_seasonal", id="gamma-negative"),
        pytest.param({"quantile": 7}, "quantile", id="quantile-above-1"),
        pytest.param({"initialization_method": "known"}, "initialization", id="known-init"),
    ],
)
def test_invalid_parameters_are_reported_by_fit_not_init(
    params: dict[str, Any], message: str
) -> None:
    model = make(**params) if "season_seconds" not in params else HoltWintersForecaster(**params)
    assert model.get_params()[next(iter(params))] == next(iter(params.values()))
    prediction = model.fit(grid(6 * M), additive(6 * M)).predict([START + 1e6])
    assert prediction.available is False
    assert prediction.note is not None
    assert message in prediction.note


def test_clone_gives_an_unfitted_copy_with_the_same_parameters() -> None:
    model = make(seasonal="mul", damped_trend=True).fit(grid(6 * M), multiplicative(6 * M))
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "history_")
    assert copy.predict([START]).available is False


def test_the_registry_builds_it_and_the_summary_reports_the_fit() -> None:
    model = make_predictor("holt_winters", season_seconds=SEASON, trend="additive")
    assert isinstance(model, HoltWintersForecaster)
    model.fit(grid(6 * M), additive(6 * M))
    summary = model.get_fitted_summary()
    assert summary["ready"] is True
    assert summary["trend"] == "add"
    assert summary["season_points"] == M
    assert 0.0 <= summary["smoothing_level"] <= 1.0
