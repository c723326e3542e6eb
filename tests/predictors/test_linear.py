"""LinearForecaster: OLS on the last ``history_points`` grid points (PHPA's Linear model)."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from predictors.linear import LinearForecaster
from predictors.registry import make_predictor

STEP = 60.0
START = 1_700_000_000.0


def grid(n: int, step: float = STEP) -> np.ndarray:
    return START + step * np.arange(n, dtype=np.float64)


def ahead(model: LinearForecaster, steps: list[int]) -> np.ndarray:
    """Timestamps ``steps`` grid steps after the newest point the model has."""
    assert model.history_ is not None
    return model.history_.last_time + model.history_.step * np.asarray(steps, dtype=np.float64)


@pytest.mark.parametrize(
    ("slope", "intercept", "history_points"),
    [
        pytest.param(2.5, 100.0, 6, id="rising-default-history"),
        pytest.param(-0.5, 1000.0, 6, id="falling"),
        pytest.param(0.0, 42.0, 6, id="flat"),
        pytest.param(1.0, 0.0, 2, id="two-points"),
        pytest.param(0.25, 10.0, 30, id="long-history"),
    ],
)
def test_a_straight_line_is_extrapolated_exactly(
    slope: float, intercept: float, history_points: int
) -> None:
    n = 50
    values = intercept + slope * np.arange(n)
    model = LinearForecaster(history_points=history_points).fit(grid(n), values)
    steps = [1, 2, 5, 60]
    prediction = model.predict(ahead(model, steps))
    assert prediction.available, prediction.note
    expected = intercept + slope * (n - 1 + np.asarray(steps, dtype=np.float64))
    np.testing.assert_allclose(prediction.point, expected, rtol=1e-9, atol=1e-9)
    assert prediction.upper is not None
    assert np.all(prediction.upper >= prediction.point)


def test_only_the_last_history_points_count() -> None:
    # Flat for a long time, then a ramp over the last 6 points: the line is the ramp.
    values = np.concatenate([np.full(100, 500.0), 500.0 + 10.0 * np.arange(1, 7)])
    model = LinearForecaster(history_points=6).fit(grid(len(values)), values)
    prediction = model.predict(ahead(model, [1, 10]))
    np.testing.assert_allclose(prediction.point, [570.0, 660.0])


def test_a_falling_line_is_clipped_at_zero() -> None:
    values = 50.0 - 10.0 * np.arange(5)
    model = LinearForecaster().fit(grid(5), values)
    prediction = model.predict(ahead(model, [1, 2, 10]))
    np.testing.assert_allclose(prediction.point, [0.0, 0.0, 0.0])


@pytest.mark.parametrize(
    "new_points",
    [
        pytest.param(1, id="one-point"),
        pytest.param(3, id="fewer-than-history"),
        pytest.param(20, id="more-than-history"),
    ],
)
def test_update_then_predict_equals_a_fit_on_the_same_data(new_points: int) -> None:
    rng = np.random.default_rng(7)
    n = 40 + new_points
    values = 100.0 + 3.0 * np.arange(n) + rng.normal(0.0, 5.0, n)
    times = grid(n)
    online = LinearForecaster().fit(times[:40], values[:40])
    online.extend(times[40:], values[40:])
    batch = LinearForecaster().fit(times, values)
    when = ahead(batch, [1, 4, 15])
    np.testing.assert_allclose(online.predict(when).point, batch.predict(when).point)


def test_update_follows_a_change_of_slope() -> None:
    model = LinearForecaster().fit(grid(30), 200.0 + 2.0 * np.arange(30))
    last = 200.0 + 2.0 * 29
    for k in range(1, 7):  # history_points new points on a steeper line
        model.update(START + STEP * (29 + k), last + 7.0 * k)
    prediction = model.predict(ahead(model, [1, 3]))
    np.testing.assert_allclose(prediction.point, [last + 7.0 * 7, last + 7.0 * 9])


def test_too_short_a_history_is_unavailable_then_becomes_available() -> None:
    model = LinearForecaster(step_seconds=STEP).fit([START], [10.0])
    prediction = model.predict([START + STEP])
    assert prediction.available is False
    assert prediction.note is not None
    assert "needs 2 points" in prediction.note
    assert np.isnan(prediction.point).all()
    model.update(START + STEP, 20.0)
    prediction = model.predict([START + 2 * STEP])
    assert prediction.available, prediction.note
    np.testing.assert_allclose(prediction.point, [30.0])


def test_slots_filled_across_a_gap_do_not_count() -> None:
    # Observed at slots 0, 1, 2 and 5; the history fills 3 and 4 in (10 -> 20), but PHPA would
    # only have the four real points: the line is fitted on those.
    times = START + STEP * np.array([0.0, 1.0, 2.0, 5.0])
    values = np.array([10.0, 0.0, 10.0, 20.0])
    model = LinearForecaster(step_seconds=STEP).fit(times, values)
    slope, intercept = np.polyfit([0.0, 1.0, 2.0, 5.0], values, 1)
    expected = max(0.0, intercept + slope * 7.0)
    np.testing.assert_allclose(model.predict(ahead(model, [2])).point, [expected])
    assert model.points_used_ == 4


SPIKY = np.where(np.arange(60) % 17 == 0, 1e12, 100.0)


@pytest.mark.parametrize(
    ("timestamps", "values", "available"),
    [
        pytest.param([], [], False, id="empty"),
        pytest.param(grid(10), np.full(10, np.nan), False, id="all-nan"),
        pytest.param([START], [5.0], False, id="single-point"),
        pytest.param(grid(10), np.full(10, 7.0), True, id="constant"),
        pytest.param(grid(10), np.zeros(10), True, id="all-zero"),
        pytest.param(grid(60), SPIKY, True, id="huge-spikes"),
        pytest.param(grid(10)[::-1], np.arange(10.0)[::-1], True, id="unsorted"),
        pytest.param(np.repeat(grid(10), 2), np.arange(20.0), True, id="duplicated-times"),
        pytest.param(grid(10), [-5.0, np.inf, 3, 4, 5, 6, 7, 8, 9, 10], True, id="negative-inf"),
        pytest.param(grid(3), [1.0, 2.0], False, id="length-mismatch"),
    ],
)
def test_bad_input_never_raises_and_forecasts_stay_sane(
    timestamps: Any, values: Any, available: bool
) -> None:
    model = LinearForecaster().fit(timestamps, values)
    prediction = model.predict([START + 1e5, START + 2e5])
    assert prediction.available is available, prediction.note
    if available:
        assert np.all(np.isfinite(prediction.point))
        assert np.all(prediction.point >= 0.0)
    else:
        assert prediction.note


def test_constant_series_is_forecast_flat() -> None:
    model = LinearForecaster().fit(grid(20), np.full(20, 7.0))
    np.testing.assert_allclose(model.predict(ahead(model, [1, 100])).point, [7.0, 7.0])


def test_unsorted_and_duplicated_timestamps_read_as_sorted_last_wins() -> None:
    times = grid(8)
    values = 3.0 * np.arange(8.0)
    sorted_model = LinearForecaster().fit(times, values)
    # Shuffled, with a stale duplicate of the last slot written first.
    order = np.array([3, 0, 7, 5, 1, 6, 2, 4])
    shuffled_t = np.concatenate([[times[7]], times[order]])
    shuffled_v = np.concatenate([[999.0], values[order]])
    messy = LinearForecaster().fit(shuffled_t, shuffled_v)
    when = ahead(sorted_model, [1, 5])
    np.testing.assert_allclose(messy.predict(when).point, sorted_model.predict(when).point)


@given(
    st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.floats(min_value=0, max_value=1e6),
        ),
        max_size=40,
    )
)
@settings(max_examples=60, deadline=None)
def test_any_values_never_raise(values: list[float]) -> None:
    model = LinearForecaster().fit(grid(len(values)), values)
    model.update(START + STEP * (len(values) + 1), 10.0)
    prediction = model.predict([START + STEP * (len(values) + 5)])
    if prediction.available:
        assert np.all(np.isfinite(prediction.point))
        assert np.all(prediction.point >= 0.0)


# ----------------------------------------------------------------- scikit-learn conventions


def test_get_params_is_exactly_the_constructor_parameters() -> None:
    signature = inspect.signature(LinearForecaster.__init__)
    expected = {name: p.default for name, p in signature.parameters.items() if name != "self"}
    assert LinearForecaster().get_params() == expected
    assert expected["history_points"] == 6  # PHPA's documented historySize


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param({"history_points": 1}, "history_points", id="history-too-short"),
        pytest.param({"history_points": "six"}, "history_points", id="history-not-int"),
        pytest.param({"history_points": 6.5}, "history_points", id="history-float"),
        pytest.param({"quantile": 1.5}, "quantile", id="quantile-above-1"),
    ],
)
def test_invalid_parameters_are_reported_by_fit_not_init(
    params: dict[str, Any], message: str
) -> None:
    model = LinearForecaster(**params)  # stores, never validates
    assert model.get_params()[next(iter(params))] == next(iter(params.values()))
    prediction = model.fit(grid(20), np.arange(20.0)).predict([START + 1e4])
    assert prediction.available is False
    assert prediction.note is not None
    assert message in prediction.note


def test_clone_gives_an_unfitted_copy_with_the_same_parameters() -> None:
    model = LinearForecaster(history_points=12, quantile=0.8).fit(grid(20), np.arange(20.0))
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "history_")
    assert copy.predict([START]).available is False


def test_the_registry_builds_it() -> None:
    model = make_predictor("linear", history_points=10)
    assert isinstance(model, LinearForecaster)
    assert model.history_points == 10
