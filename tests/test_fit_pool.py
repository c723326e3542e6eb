"""Refits in worker processes: the same model as a refit in place, adopted by the poll that
was due, and a pool that cannot fit hands the fit to a thread instead of losing it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import numpy as np
import pytest
from helpers import KAFKA, make_target
from test_controller_fits import _Actuator, _Source

from autoscaler.live.actuator import ScaleActuator
from autoscaler.live.controller import TargetController
from autoscaler.live.fit_pool import FitPool, cpu_limit
from predictors.base import Predictor
from predictors.forecaster import SeriesForecaster

DAY = 86400.0


def _forecaster(model: str = "seasonal_ridge") -> SeriesForecaster:
    forecaster = SeriesForecaster(
        model,
        horizon_seconds=90.0,
        quantile=0.9,
        step_seconds=60.0,
        window_seconds=3 * DAY,
        retrain_interval_seconds=DAY,
        path_seconds=1800.0,
    )
    t = np.arange(0.0, 2 * DAY, 60.0)
    rng = np.random.default_rng(7)
    forecaster.warm_start(t, 100 + 50 * np.sin(2 * np.pi * t / DAY) + rng.normal(0, 3, len(t)))
    # A day of polls after the warm start: the refit learns from them.
    for at in np.arange(2 * DAY, 3 * DAY, 60.0):
        forecaster.observe(float(at), float(180 + 50 * np.sin(2 * np.pi * at / DAY)))
    return forecaster


def test_cpu_limit_reads_the_cgroup_quota_rounded_up(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    assert cpu_limit(cpu_max) == min(2, cpu_limit(tmp_path / "absent"))
    cpu_max.write_text("max 100000\n")
    assert cpu_limit(cpu_max) == cpu_limit(tmp_path / "absent") >= 1
    cpu_max.write_text("10000 100000\n")
    assert cpu_limit(cpu_max) == 1


def test_a_pool_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        FitPool(0)


@pytest.mark.parametrize("model", ["seasonal_ridge", "quantile_gbm"])
async def test_a_refit_in_a_worker_process_forecasts_as_a_refit_in_place(model: str) -> None:
    in_place, elsewhere = _forecaster(model), _forecaster(model)
    before = elsewhere.forecast()
    in_place.refit(3 * DAY)
    pool = FitPool(1)
    try:
        (fitted,) = await pool.refit([elsewhere.refit_inputs()])
    finally:
        pool.shutdown()
    assert fitted is not elsewhere.model, "it came back from another process"
    elsewhere.adopt(fitted, 3 * DAY)
    expected, got = in_place.forecast(), elsewhere.forecast()
    assert expected is not None
    assert got is not None
    assert before is not None
    assert got.point == expected.point
    assert got.upper == expected.upper
    assert got.point != before.point, "the refit learned from the last day"
    assert got.path is not None
    assert expected.path is not None
    np.testing.assert_array_equal(got.path.upper, expected.path.upper)
    assert elsewhere.last_fit_at == 3 * DAY
    assert not elsewhere.refit_due(3 * DAY + 60)


def _controller(forecaster: SeriesForecaster, pool: object) -> TargetController:
    return TargetController(
        make_target(triggers=[KAFKA], predictor={"model": "seasonal_ridge"}),
        {"kafka_lag": _Source()},
        {"kafka_lag": forecaster},
        cast(ScaleActuator, _Actuator()),
        refits=asyncio.Semaphore(1),
        fit_pool=cast(FitPool, pool),
    )


async def test_the_due_poll_refits_in_the_pool_and_says_so() -> None:
    forecaster = _forecaster()
    model_before = forecaster.model
    pool = FitPool(1)
    controller = _controller(forecaster, pool)
    try:
        await controller.step(3 * DAY + DAY)
    finally:
        pool.shutdown()
    assert controller.last_result is not None
    assert controller.last_result.refitted == ("kafka_lag",)
    assert forecaster.last_fit_at == 4 * DAY
    assert forecaster.model is not model_before, "adopted from the worker"
    assert controller.refits is not None
    assert not controller.refits.locked()


class _BrokenPool:
    def __init__(self) -> None:
        self.calls = 0

    async def refit(self, jobs: list[tuple[Predictor, int]]) -> list[Predictor]:
        self.calls += 1
        raise RuntimeError("a worker died")  # what BrokenProcessPool does to a fit


async def test_a_pool_that_cannot_fit_leaves_the_fit_to_a_thread() -> None:
    forecaster, reference = _forecaster(), _forecaster()
    model_before = forecaster.model
    pool = _BrokenPool()
    controller = _controller(forecaster, pool)
    await controller.step(4 * DAY)
    assert pool.calls == 1
    assert controller.last_result is not None
    assert controller.last_result.refitted == ("kafka_lag",), "the fit was not lost"
    assert forecaster.model is model_before, "fitted in place, in a thread"
    assert forecaster.last_fit_at == 4 * DAY
    reference.refit(4 * DAY)
    reference.observe(4 * DAY, 5.0)
    got, expected = forecaster.forecast(), reference.forecast()
    assert got is not None
    assert expected is not None
    assert got.point == expected.point
    assert controller.refits is not None
    assert not controller.refits.locked()


async def test_a_warm_start_in_a_worker_process_is_the_warm_start_in_place() -> None:
    def fresh() -> SeriesForecaster:
        return SeriesForecaster(
            "seasonal_ridge",
            horizon_seconds=90.0,
            quantile=0.9,
            step_seconds=15.0,
            window_seconds=3 * DAY,
            retrain_interval_seconds=DAY,
        )

    t = np.arange(0.0, 2 * DAY, 15.0)
    v = 100 + 50 * np.sin(2 * np.pi * t / DAY)
    in_place, elsewhere = fresh(), fresh()
    in_place.warm_start(t, v)
    pool = FitPool(1)
    try:
        await pool.warm_start(elsewhere, t, v)
    finally:
        pool.shutdown()
    for forecaster in (in_place, elsewhere):
        forecaster.observe(2 * DAY, 120.0)
    expected, got = in_place.forecast(), elsewhere.forecast()
    assert expected is not None
    assert got is not None
    assert got.model == expected.model == "seasonal_ridge"
    assert got.point == expected.point
    assert elsewhere.last_fit_at == in_place.last_fit_at
    with pytest.raises(ValueError, match="another forecaster"):
        elsewhere.take(_forecaster("quantile_gbm"))
