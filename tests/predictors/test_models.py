"""Behaviour of the smoothing, direct regression and auto models, and the forecaster."""

from __future__ import annotations

import numpy as np
import pytest

from predictors import make_predictor
from predictors.forecaster import SeriesForecaster, model_step_seconds

STEP = 900.0
DAY = round(86400 / STEP)


def _cycle(days: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = 1_700_000_000.0 + STEP * np.arange(days * DAY)
    y = 60 + 40 * np.sin(2 * np.pi * t / 86400) + rng.normal(0, 2, len(t))
    return t, np.maximum(y, 0)


@pytest.mark.parametrize(
    ("method", "expected"),
    [pytest.param("mean", 4.0, id="mean-of-span"), pytest.param("ewma", 4.5, id="ewma")],
)
def test_moving_average(method: str, expected: float) -> None:
    t = STEP * np.arange(8)
    y = np.array([0, 0, 0, 0, 0, 2, 4, 6], dtype=float)
    model = make_predictor("moving_average", span_seconds=3 * STEP, method=method).fit(t, y)
    value = model.predict([t[-1] + STEP]).point[0]
    if method == "mean":
        assert value == pytest.approx(expected)
    else:  # alpha = 2 / (3 + 1): the EWMA follows the ramp but lags it
        assert 2.0 < value < 6.0
        model.update(t[-1] + STEP, 6.0)
        assert model.predict([t[-1] + 2 * STEP]).point[0] > value


@pytest.mark.parametrize("name", ["seasonal_ridge", "quantile_gbm"])
def test_direct_models_learn_the_daily_cycle(name: str) -> None:
    """On a clean daily cycle the seasonal models beat the last value an hour ahead."""
    t, y = _cycle(days=6)
    horizon = 4 * STEP
    train = len(t) - DAY
    model = make_predictor(name, horizon_seconds=horizon).fit(t[:train], y[:train])
    errors, naive_errors = [], []
    for i in range(train, len(t) - 4):
        forecast = model.predict([t[i - 1] + horizon]).point[0]
        errors.append(abs(forecast - y[i + 3]))
        naive_errors.append(abs(y[i - 1] - y[i + 3]))
        model.update(t[i], y[i])
    assert np.mean(errors) < 0.6 * np.mean(naive_errors)


def test_gbm_upper_is_its_own_quantile() -> None:
    t, y = _cycle(days=5)
    model = make_predictor("quantile_gbm", horizon_seconds=STEP, quantile=0.9).fit(t, y)
    prediction = model.predict([t[-1] + STEP])
    assert prediction.upper is not None
    assert prediction.upper[0] > prediction.point[0]


def test_direct_model_fits_another_lead_time_on_demand() -> None:
    t, y = _cycle(days=5)
    model = make_predictor("seasonal_ridge", horizon_seconds=STEP).fit(t, y)
    assert set(model.models_) == {1}
    model.predict([t[-1] + 3 * STEP])
    assert set(model.models_) == {1, 3}


def test_auto_picks_the_seasonal_model_on_seasonal_data_and_shows_scores() -> None:
    t, y = _cycle(days=6)
    model = make_predictor(
        "auto",
        candidates=["naive", "seasonal_naive", "seasonal_ridge"],
        horizon_seconds=4 * STEP,
    ).fit(t, y)
    assert model.ready_
    assert model.chosen_ in ("seasonal_naive", "seasonal_ridge")
    assert set(model.scores_) == {"naive", "seasonal_naive", "seasonal_ridge"}
    chosen = model.scores_[model.chosen_]
    assert chosen["pinball"] == min(s["pinball"] for s in model.scores_.values() if s["ready"])
    summary = model.get_fitted_summary()
    assert summary["chosen"] == model.chosen_
    assert summary["scores"] == model.scores_


def test_auto_skips_candidates_that_cannot_forecast() -> None:
    t, y = _cycle(days=1)  # less than the seasonal models need
    model = make_predictor(
        "auto", candidates=["naive", "seasonal_ridge"], horizon_seconds=STEP
    ).fit(t, y)
    assert model.chosen_ == "naive"
    assert model.scores_["seasonal_ridge"]["ready"] is False


def test_forecaster_falls_back_to_naive_and_says_why() -> None:
    forecaster = SeriesForecaster(
        "seasonal_ridge",
        horizon_seconds=STEP,
        quantile=0.9,
        step_seconds=STEP,
        window_seconds=14 * 86400,
        retrain_interval_seconds=86400,
    )
    assert forecaster.forecast() is None  # no data at all
    forecaster.warm_start(STEP * np.arange(10), np.arange(10.0))
    forecast = forecaster.forecast()
    assert forecast is not None
    assert forecast.model == "naive"
    assert forecast.point == 9.0
    assert forecast.note is not None
    assert "seasonal_ridge cannot forecast" in forecast.note
    assert "needs" in forecast.note


def test_forecaster_uses_the_model_once_it_can_and_refits_on_schedule() -> None:
    t, y = _cycle(days=5)
    forecaster = SeriesForecaster(
        "seasonal_ridge",
        {"alpha": 2.0},
        horizon_seconds=STEP,
        quantile=0.9,
        step_seconds=STEP,
        window_seconds=14 * 86400,
        retrain_interval_seconds=86400,
    )
    forecaster.warm_start(t[:-10], y[:-10])
    assert forecaster.model.alpha == 2.0
    forecast = forecaster.forecast()
    assert forecast is not None
    assert forecast.model == "seasonal_ridge"
    assert forecast.note is None
    forecaster.observe(t[-10], y[-10])
    assert not forecaster.refit_due(t[-10])
    assert forecaster.refit_due(t[-10] + 86400)
    forecaster.refit(t[-10] + 86400)
    assert not forecaster.refit_due(t[-10] + 86400)


def test_forecaster_rejects_unknown_parameters() -> None:
    with pytest.raises(TypeError, match="has no parameter 'alpah'"):
        SeriesForecaster(
            "seasonal_ridge",
            {"alpah": 1.0},
            horizon_seconds=STEP,
            quantile=0.9,
            step_seconds=STEP,
            window_seconds=86400,
            retrain_interval_seconds=3600,
        )


def test_auto_reruns_the_contest_only_every_reselect_period() -> None:
    t, y = _cycle(days=6)
    split = len(t) - DAY
    model = make_predictor(
        "auto",
        candidates=["naive", "seasonal_naive"],
        horizon_seconds=STEP,
        reselect_seconds=2 * 86400.0,
    ).fit(t[:split], y[:split])
    first_scores = model.scores_
    model.extend(t[split : split + DAY // 2], y[split : split + DAY // 2])
    model.refit()  # half a day of data later: only the winner is refitted
    assert model.scores_ is first_scores
    model.extend(t[split + DAY // 2 :], y[split + DAY // 2 :])
    model.update(t[-1] + 86400.0, y[-1])  # more than the reselect period of data later
    model.refit()
    assert model.scores_ is not first_scores


def test_live_observations_never_run_a_fit_and_say_when_one_is_due() -> None:
    """A Kafka target starts with no history: its first fit must wait for the live loop's
    ``refit`` (off the event loop), never run inside ``observe``."""
    t, y = _cycle(days=3)
    forecaster = SeriesForecaster(
        "seasonal_ridge",
        horizon_seconds=STEP,
        quantile=0.9,
        step_seconds=STEP,
        window_seconds=14 * 86400,
        retrain_interval_seconds=86400,
    )
    needed = forecaster.model.min_history_points(STEP)
    for at, value in zip(t[: needed + 5], y[: needed + 5], strict=True):
        forecaster.observe(float(at), float(value))
    now = float(t[needed + 4])
    assert not forecaster.model.ready_, "observe fitted the model"
    assert forecaster.model.fit_pending
    assert forecaster.refit_due(now), "a pending first fit is due at once, not in a day"
    forecast = forecaster.forecast()
    assert forecast is not None
    assert forecast.model == "naive"  # meanwhile
    forecaster.refit(now)
    assert forecaster.model.ready_
    assert not forecaster.model.fit_pending
    assert not forecaster.refit_due(now)
    forecast = forecaster.forecast()
    assert forecast is not None
    assert forecast.model == "seasonal_ridge"


def test_update_fits_by_default_once_history_suffices() -> None:
    t, y = _cycle(days=3)
    model = make_predictor("seasonal_ridge", horizon_seconds=STEP, step_seconds=STEP)
    model.fit(t[:1], y[:1])
    needed = model.min_history_points(STEP)
    for at, value in zip(t[1 : needed + 5], y[1 : needed + 5], strict=True):
        model.update(float(at), float(value))
    assert model.ready_  # replay and offline use keep fitting as soon as they can


@pytest.mark.parametrize(
    ("poll", "step"), [(15, 60), (20, 60), (25, 75), (45, 90), (60, 60), (300, 300)]
)
def test_model_step_is_a_multiple_of_the_poll_of_at_least_a_minute(
    poll: float, step: float
) -> None:
    assert model_step_seconds(poll) == step


def _fast_polls(phase: float, step: float = 15.0) -> SeriesForecaster:
    return SeriesForecaster(
        "seasonal_ridge",
        horizon_seconds=90,
        quantile=0.9,
        step_seconds=step,
        window_seconds=14 * 86400,
        retrain_interval_seconds=86400,
        phase=phase,
    )


@pytest.mark.parametrize(
    ("phase", "times", "values"),
    [
        # the first poll opens a model point; every 4th poll completes one
        pytest.param(0.0, [45.0, 105.0], [26.5, 9.0], id="phase-0"),
        # the first poll completes a point (alone); the next points are 4 polls each
        pytest.param(0.75, [0.0, 60.0, 120.0], [100.0, 3.0, 10.0], id="phase-3-of-4"),
    ],
)
def test_polls_faster_than_the_model_step_are_averaged_into_one_point(
    phase: float, times: list[float], values: list[float]
) -> None:
    forecaster = _fast_polls(phase)
    assert forecaster.model.step_seconds == 60
    assert forecaster.fallback.window_seconds == 6 * 3600, "the fallback keeps six hours"
    forecaster.observe(0.0, 100.0)
    for k, value in enumerate([1.0, 2.0, 3.0, 6.0, 10.0, 10.0, 10.0, 10.0], start=1):
        forecaster.observe(15.0 * k, value)
    history = forecaster.model.history_
    assert history is not None
    assert list(history.values) == values
    assert list(history.timestamps) == times
    assert forecaster.fallback.history_ is not None
    assert forecaster.fallback.history_.last_time == 120.0
    assert len(forecaster.fallback.history_) == 9, "the fallback sees every poll"


def test_a_warm_start_buckets_history_as_the_live_polls_will() -> None:
    t = 15.0 * np.arange(16)
    values = np.arange(16.0)
    forecaster = _fast_polls(0.5)  # the last history poll is the 3rd (index 2) of its point
    forecaster.warm_start(t, values)
    history = forecaster.model.history_
    assert history is not None
    # complete points of 4 polls: ..., [5..8], [9..12]; polls 13, 14, 15 are pending
    assert list(history.values)[-2:] == [6.5, 10.5]
    assert history.last_time == 180.0
    forecaster.observe(240.0, 16.0)  # completes the point of polls 13..16
    assert history.values[-1] == 14.5
    assert history.last_time == 240.0


def test_series_with_different_phases_complete_their_points_in_different_polls() -> None:
    completed: dict[float, list[int]] = {}
    for phase in (0.0, 0.25, 0.5, 0.75):
        forecaster = _fast_polls(phase)
        forecaster.warm_start(15.0 * np.arange(40), np.ones(40))
        polls = []
        for k in range(40, 48):
            before = forecaster.model.history_.last_time
            forecaster.observe(15.0 * k, 1.0)
            if forecaster.model.history_.last_time != before:
                polls.append(k % 4)
        completed[phase] = polls
    assert sorted(completed[p][0] for p in completed) == [0, 1, 2, 3]
    assert all(len(set(polls)) == 1 for polls in completed.values())


def test_jittered_polls_never_drift_the_model_grid() -> None:
    forecaster = _fast_polls(0.0, step=60.0)  # one poll per model point
    forecaster.warm_start(60.0 * np.arange(5), np.ones(5))
    for at in (300.0, 310.0, 360.0, 420.0):  # 310: a second poll within a step
        forecaster.observe(at, 2.0)
    history = forecaster.model.history_
    assert history is not None
    assert history.last_time == 420.0
    assert list(history.timestamps[-3:]) == [300.0, 360.0, 420.0]


def test_auto_keeps_one_history_buffer_shared_with_its_winner() -> None:
    t, y = _cycle(days=3)
    model = make_predictor(
        "auto", candidates=["naive", "seasonal_ridge"], horizon_seconds=STEP, step_seconds=STEP
    ).fit(t[:-20], y[:-20])
    assert model.history_ is model.model_.history_
    for at, value in zip(t[-20:], y[-20:], strict=True):
        model.update(float(at), float(value))
    assert model.history_ is model.model_.history_
    assert model.history_.last_time == t[-1]
    assert len(model.history_) == len(t)  # each point appended once, not twice


def test_the_newest_row_is_the_batch_row_to_the_bit() -> None:
    """``design_newest`` (what every poll's forecast uses) against ``design`` (what the fits
    and backtests use), over steps, horizons and lengths short enough to clip."""
    from predictors import features

    rng = np.random.default_rng(1)
    for _ in range(400):
        step = float(rng.choice([60, 120, 300, 900]))
        n = int(rng.integers(3, 12000))
        values = rng.gamma(2, 100, n)
        end = float(rng.uniform(1.6e9, 1.8e9))
        horizon = int(rng.integers(1, 30))
        batch = features.design(values, end, step, horizon, np.array([n - 1]))
        assert np.array_equal(features.design_newest(values, end, step, horizon), batch)
