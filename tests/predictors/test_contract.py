"""Every registered model honours the shared interface, on good and bad input alike."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from predictors import MODELS, Prediction, make_predictor, model_class, model_parameters

STEP = 900.0  # 15-minute grid: three days are 288 points, enough for every model
DAY_POINTS = round(86400 / STEP)
FAST = {"quantile_gbm": {"max_iter": 20}, "auto": {"candidates": ["naive", "seasonal_naive"]}}


def _make(name: str) -> object:
    params = dict(FAST.get(name, {}))
    if "horizon_seconds" in model_parameters(name):
        params["horizon_seconds"] = STEP
    return make_predictor(name, step_seconds=STEP, **params)


def daily(days: int = 4, noise: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A daily cycle between 20 and 100 msg/s with a little noise."""
    rng = np.random.default_rng(seed)
    t = 1_700_000_000.0 + STEP * np.arange(days * DAY_POINTS)
    y = 60 + 40 * np.sin(2 * np.pi * t / 86400) + rng.normal(0, noise * 60, len(t))
    return t, np.maximum(y, 0)


ALL = [pytest.param(name, id=name) for name in MODELS]


@pytest.mark.parametrize("name", ALL)
def test_sklearn_conventions(name: str) -> None:
    cls = model_class(name)
    model = cls()
    assert set(model.get_params()) == set(model_parameters(name))
    assert not [a for a in vars(model) if a.endswith("_")]  # __init__ learns nothing
    cls(**dict.fromkeys(model_parameters(name), "not validated in __init__"))  # does no work
    cloned = clone(model)
    assert cloned.get_params() == model.get_params()


@pytest.mark.parametrize("name", ALL)
def test_fits_and_forecasts_a_daily_cycle(name: str) -> None:
    t, y = daily()
    model = _make(name).fit(t[:-8], y[:-8])  # type: ignore[attr-defined]
    assert model.ready_, model.note_
    prediction: Prediction = model.predict(t[-8] + STEP * np.arange(0, 3))
    assert prediction.available
    assert prediction.upper is not None
    assert np.all(np.isfinite(prediction.point))
    assert np.all(prediction.point >= 0)
    assert np.all(prediction.upper >= prediction.point)
    # Every model is within the cycle's range; none is absurd.
    assert np.all(prediction.point < 200)


@pytest.mark.parametrize("name", ALL)
def test_update_moves_the_origin_without_refit(name: str) -> None:
    t, y = daily()
    model = _make(name).fit(t[:-8], y[:-8])  # type: ignore[attr-defined]
    for ti, yi in zip(t[-8:-1], y[-8:-1], strict=True):
        model.update(ti, yi)
    assert model.history_.last_time == t[-2]
    assert model.predict([t[-1]]).available


BAD_INPUTS = [
    pytest.param([], [], id="empty"),
    pytest.param([0.0, 900.0, 1800.0], [math.nan] * 3, id="all-nan"),
    pytest.param([0.0], [5.0], id="single-point"),
    pytest.param(STEP * np.arange(400), np.full(400, 7.0), id="constant"),
    pytest.param(STEP * np.arange(400), np.where(np.arange(400) % 97 == 0, 1e9, 3.0), id="spikes"),
    pytest.param(STEP * np.arange(400)[::-1], np.arange(400.0), id="reversed-time"),
    pytest.param(np.repeat(STEP * np.arange(200), 2), np.arange(400.0), id="duplicated-times"),
    pytest.param(
        STEP * np.arange(400), np.where(np.arange(400) % 3 == 0, -5.0, 4.0), id="negatives"
    ),
    pytest.param(STEP * np.arange(400), np.zeros(400), id="all-zero"),
    pytest.param(STEP * np.arange(400) ** 1.01, np.arange(400.0), id="irregular"),
]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(("times", "values"), BAD_INPUTS)
def test_bad_input_never_raises(name: str, times: object, values: object) -> None:
    model = _make(name)
    model.fit(times, values)  # type: ignore[attr-defined]
    prediction = model.predict([1e7])  # type: ignore[attr-defined]
    if prediction.available:
        assert np.all(np.isfinite(prediction.point))
        assert np.all(prediction.point >= 0)
        assert prediction.upper is not None
        assert np.all(np.isfinite(prediction.upper))
    else:
        assert prediction.note  # it says why
    model.update(2e7, math.nan)  # type: ignore[attr-defined]
    model.update(2e7 + STEP, 3.0)  # type: ignore[attr-defined]
    model.predict([2e7 + 2 * STEP])  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ALL)
def test_too_little_history_is_declared(name: str) -> None:
    model = _make(name).fit([0.0, STEP], [1.0, 2.0])  # type: ignore[attr-defined]
    prediction = model.predict([2 * STEP])
    if not prediction.available:
        assert "needs" in (prediction.note or "") or "no usable" in (prediction.note or "")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    name=st.sampled_from(["naive", "seasonal_naive", "moving_average", "seasonal_ridge"]),
    values=st.lists(st.floats(0, 1e6) | st.just(math.nan), min_size=1, max_size=400),
)
def test_forecasts_are_finite_and_non_negative(name: str, values: list[float]) -> None:
    t = STEP * np.arange(len(values))
    model = _make(name).fit(t, values)  # type: ignore[attr-defined]
    prediction = model.predict(t[-1] + STEP * np.arange(1, 4))
    if prediction.available:
        assert np.all(np.isfinite(prediction.point))
        assert np.all(prediction.point >= 0)
        assert prediction.upper is not None
        assert np.all(np.isfinite(prediction.upper))
        assert np.all(prediction.upper >= 0)
