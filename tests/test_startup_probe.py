"""The start-up probe: a scale-up timed between polls, finer than the polls."""

from __future__ import annotations

import asyncio
import time

import pytest

from autoscaler.decision.startup import StartupState, StartupTiming, started, timed
from autoscaler.live.startup_probe import StartupProbe

INTERVAL = 0.01


class _Workload:
    """Ready replicas and a group that settles at given moments after the patch."""

    def __init__(self, ready_after: float, settled_after: float) -> None:
        self.patched = time.monotonic()
        self.ready_after = ready_after
        self.settled_after = settled_after
        self.reads = 0

    async def read_ready(self) -> int | None:
        self.reads += 1
        return 4 if time.monotonic() - self.patched >= self.ready_after else 2

    async def group_settled(self, replicas: int) -> bool | None:
        return time.monotonic() - self.patched >= self.settled_after


async def _finished(probe: StartupProbe, seconds: float = 2.0) -> tuple[StartupTiming, ...]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        timings = probe.take()
        if timings:
            return timings
        await asyncio.sleep(INTERVAL)
    raise AssertionError("the probe never finished")


async def test_a_scale_up_is_timed_to_within_the_probes_interval() -> None:
    workload = _Workload(ready_after=0.1, settled_after=0.25)
    probe = StartupProbe(workload.read_ready, [workload], time.monotonic, INTERVAL)
    probe.scaled(2, 4, workload.patched)
    (timing,) = await _finished(probe)
    assert timing.replicas == 4
    assert timing.ready_at - timing.patched_at == pytest.approx(0.1, abs=0.05)
    assert timing.consuming_at - timing.patched_at == pytest.approx(0.25, abs=0.05)
    await probe.aclose()


async def test_a_scale_down_ends_the_timing_and_reads_stop() -> None:
    workload = _Workload(ready_after=10.0, settled_after=10.0)
    probe = StartupProbe(workload.read_ready, [workload], time.monotonic, INTERVAL)
    probe.scaled(2, 4, workload.patched)
    await asyncio.sleep(0.05)
    probe.scaled(4, 3, time.monotonic())
    reads = workload.reads
    await asyncio.sleep(0.05)
    assert workload.reads == reads
    assert probe.take() == ()


async def test_a_failing_read_ends_the_probe_quietly() -> None:
    async def broken() -> int | None:
        raise RuntimeError("the API is down")

    probe = StartupProbe(broken, [], time.monotonic, INTERVAL)
    probe.scaled(1, 2, time.monotonic())
    await asyncio.sleep(0.05)
    assert probe.take() == ()
    await probe.aclose()


def test_a_timing_replaces_the_polls_estimate_of_the_same_scale_up() -> None:
    state = started(StartupState(), 2, 4, 100.0)
    state = timed(state, [StartupTiming(100.0, 4, 103.2, 107.9)])
    assert state.pending is None
    assert state.ready_samples == pytest.approx((3.2,))
    assert state.consuming_samples == pytest.approx((7.9,))
    other = timed(started(StartupState(), 2, 4, 200.0), [StartupTiming(100.0, 4, 103.0, 108.0)])
    assert other.pending is not None  # a timing of an older scale-up leaves this one
