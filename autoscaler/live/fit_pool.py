"""Model refits on a bounded pool of worker processes.

A refit is the one heavy part of a poll (a gradient-boosting or ``auto`` fit on a 14-day
window: about a second of CPU). In threads of the service's process they share one
interpreter lock with every target's polls, so 1,000 targets due together (they were
started together) took 1,000 poll cycles to refit (benchmarks/results/service.txt). In
worker processes they run truly side by side, as many as the pod has CPUs, and the event
loop only pickles the model out (its float32 window: tens of KB) and the fitted one back.

The model in the service's process is not touched meanwhile: the target's poll awaits the
fit, and a poll cancelled under it (a reload, a stop) only drops the answer. A worker that
dies (OOM-killed) breaks the pool: the fit fails, the caller fits in a thread instead, and
the next fit starts a fresh pool.

Workers start by ``forkserver``: a fork of the service itself would copy its heap and the
threads of its event loop and clients, which ``fork`` does not make safe.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import structlog
from numpy.typing import ArrayLike

from predictors.base import Predictor
from predictors.forecaster import SeriesForecaster, fitted_all, warm_started

__all__ = ["FitPool", "cpu_limit"]

_log = structlog.get_logger(__name__)

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def cpu_limit(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The CPUs this process may use: the container's CPU limit (cgroup v2 ``cpu.max``,
    rounded up) where one is set, else the CPUs it may run on; at least 1."""
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        available = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            available = min(available, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, available)


class FitPool:
    """``workers`` processes that refit models; started at the first fit."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"a fit pool needs at least one worker, not {workers}")
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            context = multiprocessing.get_context("forkserver")
            # The fork server imports the models' libraries once; each worker forked from
            # it shares those pages (copy-on-write) instead of importing its own.
            context.set_forkserver_preload(["predictors.forecaster"])
            self._executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=context)
        return self._executor

    async def refit(self, jobs: list[tuple[Predictor, int]]) -> list[Predictor]:
        """``predictors.forecaster.fitted`` of each (model, path steps), in a worker."""
        fitted: list[Predictor] = await self._run(fitted_all, jobs)
        return fitted

    async def warm_start(
        self, forecaster: SeriesForecaster, timestamps: ArrayLike, values: ArrayLike
    ) -> None:
        """``forecaster`` warm-started on a history (its first fit), in a worker."""
        forecaster.take(await self._run(warm_started, forecaster, timestamps, values))

    async def _run(self, work: Callable[..., Any], *arguments: Any) -> Any:
        executor = self._pool()
        try:
            # Submitted from a thread: a submit may start a worker (a fork server's first
            # start imports the models' libraries, seconds), which would block the loop.
            future = await asyncio.to_thread(executor.submit, work, *arguments)
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:
            _log.warning("fit_pool_broken", workers=self.workers)
            if self._executor is executor:
                self._executor = None
            executor.shutdown(wait=False, cancel_futures=True)
            raise

    def shutdown(self) -> None:
        """Stop the workers (a fit in progress is dropped: the process is going away)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
