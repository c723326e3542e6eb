"""A fit runs in a worker thread that cannot be cancelled: the controller keeps its slot and
its forecasters until it ends, so a reload never shares them with a running fit."""

from __future__ import annotations

import asyncio
import threading
from typing import cast

from helpers import KAFKA, make_target

from autoscaler.config.model import TargetConfig
from autoscaler.decision import KafkaLagObservation
from autoscaler.live.actuator import ScaleActuator, ScaleResult, ScaleState
from autoscaler.live.controller import TargetController
from predictors.forecaster import SeriesForecast


class _Source:
    async def poll(self, now: float) -> KafkaLagObservation:
        return KafkaLagObservation(
            observed_at=now, total_lag=0, partition_count=4, arrival_rate=5.0
        )


class _Actuator:
    async def read(self, target: TargetConfig) -> ScaleState:
        return ScaleState(2, 2, "1", ready_replicas=2)

    async def scale(
        self, target: TargetConfig, replicas: int, *, expected_current: int | None = None
    ) -> ScaleResult:
        return ScaleResult("scaled", replicas, 2, "2", attempts=1)

    async def event(
        self, target: TargetConfig, reason: str, message: str, type: str = "Normal"
    ) -> None:
        return None


class _SlowFit:
    """A forecaster whose refit blocks until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.fits = 0

    def observe(self, timestamp: float, value: float) -> None:
        return None

    def refit_due(self, now: float) -> bool:
        return self.fits == 0

    def refit(self, now: float) -> None:
        self.started.set()
        self.release.wait(5)
        self.fits += 1

    def forecast(self) -> SeriesForecast | None:
        return None


async def test_a_cancelled_poll_leaves_its_fit_running_with_its_slot_until_it_ends() -> None:
    slots = asyncio.Semaphore(1)
    fit = _SlowFit()
    controller = TargetController(
        make_target(triggers=[KAFKA]),
        {"kafka_lag": _Source()},
        {"kafka_lag": fit},
        cast(ScaleActuator, _Actuator()),
        refits=slots,
    )
    poll = asyncio.ensure_future(controller.step(1000.0))
    await asyncio.to_thread(fit.started.wait, 5)
    poll.cancel()  # a reload or a stop
    await asyncio.sleep(0.05)
    assert poll.cancelled()
    assert slots.locked(), "the fit still runs: its slot stays taken"
    settled = asyncio.ensure_future(controller.settle())
    await asyncio.sleep(0.05)
    assert not settled.done(), "settle waits for the fit"
    fit.release.set()
    await asyncio.wait_for(settled, 5)
    assert fit.fits == 1
    assert not slots.locked(), "and the slot is free once it ended"
