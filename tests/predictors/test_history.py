"""Shared history handling: cleaning, the grid, and the online buffer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from predictors.history import HistoryError, SeriesBuffer, clean, infer_step, to_grid


@pytest.mark.parametrize(
    ("times", "values", "kind", "expected_t", "expected_v"),
    [
        pytest.param([2, 1, 3], [20, 10, 30], "rate", [1, 2, 3], [10, 20, 30], id="sorted"),
        pytest.param(
            [1, 2, 2, 3], [1, 5, 7, 3], "rate", [1, 2, 3], [1, 7, 3], id="last-duplicate-wins"
        ),
        pytest.param(
            [1, 2, 3], [1, -4, 3], "rate", [1, 2, 3], [1, math.nan, 3], id="negative-is-a-gap"
        ),
        pytest.param(
            [1, 2, 3], [1, 1e20, 3], "rate", [1, 2, 3], [1, math.nan, 3], id="absurd-is-a-gap"
        ),
        pytest.param([1, math.nan, 3], [1, 2, 3], "rate", [1, 3], [1, 3], id="nan-time-dropped"),
        pytest.param(
            [0, 10, 20, 30],
            [100, 150, 30, 60],
            "counter",
            [10, 20, 30],
            [5, 3, 3],
            id="counter-rate-with-reset",
        ),
    ],
)
def test_clean(
    times: list[float],
    values: list[float],
    kind: str,
    expected_t: list[float],
    expected_v: list[float],
) -> None:
    t, v = clean(times, values, kind=kind)  # type: ignore[arg-type]
    np.testing.assert_array_equal(t, expected_t)
    np.testing.assert_array_equal(v, expected_v)


@pytest.mark.parametrize(
    ("times", "values"),
    [
        pytest.param([], [], id="empty"),
        pytest.param([1, 2], [math.nan, -1], id="nothing-usable"),
        pytest.param([1, 2], [1], id="length-mismatch"),
        pytest.param([5], [1], id="counter-single-point"),
    ],
)
def test_clean_rejects_unusable_history(times: list[float], values: list[float]) -> None:
    kind = "counter" if len(times) == 1 else "rate"
    with pytest.raises(HistoryError):
        clean(times, values, kind=kind)  # type: ignore[arg-type]


def test_grid_averages_jitter_and_fills_gaps() -> None:
    t = np.array([0.0, 61.0, 119.0, 121.0, 300.0])  # 119 and 121 share the 120 slot
    v = np.array([1.0, 2.0, 3.0, 5.0, 8.0])
    grid = to_grid(t, v, 60.0)
    np.testing.assert_allclose(grid.timestamps, [0, 60, 120, 180, 240, 300])
    np.testing.assert_allclose(grid.values, [1, 2, 4, 5.333333, 6.666667, 8], rtol=1e-6)
    assert grid.observed.tolist() == [True, True, True, False, False, True]


def test_infer_step_is_the_median_spacing() -> None:
    assert infer_step(np.array([0.0, 60, 120, 300, 360])) == 60.0


def test_buffer_appends_fills_gaps_and_slides() -> None:
    buffer = SeriesBuffer(step=10.0, capacity=4)
    assert buffer.append(0.0, 1.0)
    assert buffer.append(10.0, 2.0)
    assert buffer.append(40.0, 5.0)  # two missing slots, interpolated
    assert buffer.values.tolist() == [2.0, 3.0, 4.0, 5.0]  # capacity 4: the oldest slid out
    assert buffer.observed.tolist() == [True, False, False, True]
    assert not buffer.append(20.0, 9.0)  # older than the window's end: ignored
    assert buffer.append(41.0, 6.0)  # same slot: the newest wins
    assert buffer.values[-1] == 6.0
    assert buffer.append(50.0, math.nan)  # unusable: the slot repeats the last value
    assert buffer.values[-1] == 6.0
    assert not buffer.observed[-1]
    np.testing.assert_allclose(buffer.timestamps, [20, 30, 40, 50])


def test_buffer_restarts_after_a_gap_longer_than_its_window() -> None:
    buffer = SeriesBuffer(step=1.0, capacity=5)
    for i in range(5):
        buffer.append(float(i), float(i))
    buffer.append(1000.0, 7.0)
    assert buffer.values.tolist() == [7.0]
    assert buffer.last_time == 1000.0


def test_buffer_keeps_growing_in_amortized_constant_time() -> None:
    buffer = SeriesBuffer(step=1.0, capacity=100)
    for i in range(10_000):
        buffer.append(float(i), float(i))
    assert len(buffer) == 100
    assert buffer.values[0] == 9_900
    assert buffer.values[-1] == 9_999
