"""Refits due together: worker processes (``server.refit_workers``) against a thread each.

Run from the repository root::

    python benchmarks/refit_pool.py [--targets 40] [--model auto] [--workers N]

Targets started together are due for their daily refit together. This builds ``--targets``
forecasters of the config's default model (``auto``) on 14 days of 15 s polls from the
shared traces (a few fitted shapes, copied), marks them all due, and refits them as the
live controller does: once with fits in threads of this process (``refit_workers: 0``: at
most CPUs - 1 at once, the interpreter lock shared with the event loop), once in a
``FitPool`` (as many workers as the CPU limit). It prints the wall time, refits per minute
and the time 1,000 would take, how late a 50 ms ticker on the event loop ran meanwhile
(what every other target's poll would wait), and the workers' memory (proportional set
size: shared pages split between them).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoscaler.live.fit_pool import FitPool, cpu_limit  # noqa: E402
from autoscaler.live.service import REFIT_CONCURRENCY  # noqa: E402
from autoscaler.traces import load_csv  # noqa: E402
from predictors.forecaster import SeriesForecaster  # noqa: E402

TRACES = ROOT.parent / "shared" / "traces"
POLL = 15.0
WINDOW = 14 * 86400.0


def _shapes(model: str) -> list[SeriesForecaster]:
    """One fitted forecaster per shared trace: 14 days of polls, its rate scaled to ~1k/s."""
    shapes = []
    for path in sorted(TRACES.glob("*.csv")):
        trace = load_csv(path, "count")
        values = np.asarray(trace.rates, dtype=float)
        times = trace.start + trace.step * np.arange(len(values))
        polls = np.arange(times[0], times[0] + WINDOW, POLL)
        rate = np.interp(polls, times, values)
        rate = 1000.0 * rate / max(float(np.nanmean(rate)), 1e-9)
        forecaster = SeriesForecaster(
            model,
            horizon_seconds=90.0,
            quantile=0.9,
            step_seconds=POLL,
            window_seconds=WINDOW,
            retrain_interval_seconds=86400.0,
            path_seconds=1800.0,
        )
        forecaster.warm_start(polls, rate)
        shapes.append(forecaster)
    return shapes


async def _ticker(lateness: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.05)
        lateness.append(time.perf_counter() - started - 0.05)


async def _run(forecasters: list[SeriesForecaster], pool: FitPool | None) -> dict[str, float]:
    slots = asyncio.Semaphore(pool.workers if pool else REFIT_CONCURRENCY)
    now = 15 * 86400.0

    async def refit(forecaster: SeriesForecaster) -> None:
        async with slots:
            if pool is None:
                await asyncio.to_thread(forecaster.refit, now)
            else:
                (model,) = await pool.refit([forecaster.refit_inputs()])
                forecaster.adopt(model, now)

    lateness: list[float] = []
    stop = asyncio.Event()
    ticker = asyncio.ensure_future(_ticker(lateness, stop))
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(refit(f) for f in forecasters))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stop.set()
    await ticker
    workers_mb = 0.0
    if pool is not None:
        children = psutil.Process().children(recursive=True)
        # Proportional set size: a page shared by n processes counts 1/n in each.
        workers_mb = sum(c.memory_full_info().pss for c in children) / 2**20
    return {
        "wall": wall,
        "cpu": cpu,
        "late_p50": statistics.median(lateness) * 1000,
        "late_max": max(lateness) * 1000,
        "workers_mb": workers_mb,
        "workers": float(len(psutil.Process().children(recursive=True))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=int, default=40)
    parser.add_argument("--model", default="auto")
    parser.add_argument("--workers", type=int, default=cpu_limit())
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, CPU limit {cpu_limit()}; load {os.getloadavg()}")
    shapes = _shapes(args.model)
    print(f"{len(shapes)} shapes of {args.model}, 14 d at {POLL:.0f} s; {args.targets} targets")
    rows = {}
    for label, workers in (("threads", 0), ("pool", args.workers)):
        forecasters = [copy.deepcopy(shapes[i % len(shapes)]) for i in range(args.targets)]
        pool = FitPool(workers) if workers else None
        try:
            rows[label] = asyncio.run(_run(forecasters, pool))
        finally:
            if pool is not None:
                pool.shutdown()
        assert all(f.last_fit_at == 15 * 86400.0 for f in forecasters)
    for label, row in rows.items():
        per_minute = args.targets / row["wall"] * 60
        concurrency = REFIT_CONCURRENCY if label == "threads" else args.workers
        memory = f"; {row['workers']:.0f} processes {row['workers_mb']:.0f} MB (PSS)"
        print(
            f"{label:8s} {concurrency} at once: {row['wall']:6.1f} s wall for {args.targets} "
            f"({per_minute:5.1f} refits/min: 1,000 in {1000 / per_minute:5.1f} min); "
            f"this process {row['cpu']:6.1f} s CPU; event loop late p50 "
            f"{row['late_p50']:6.1f} ms max {row['late_max']:7.1f} ms"
            + (memory if label == "pool" else "")
        )
    ratio = rows["threads"]["wall"] / rows["pool"]["wall"]
    print(f"pool / threads: {ratio:.2f}x the refits per minute, same run")
    print(f"load at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
