"""Supervised target loops: failures are contained and retried, stops are prompt."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from autoscaler.live.supervisor import TargetTasks, supervise_target

ROOT = Path(__file__).resolve().parents[1]


async def test_a_failing_target_is_retried_and_the_others_go_on() -> None:
    healthy: list[float] = []
    failing: list[float] = []

    async def good(now: float) -> None:
        healthy.append(now)

    async def bad(now: float) -> None:
        failing.append(now)
        raise RuntimeError("boom")

    tasks = TargetTasks(initial_backoff=0.05)
    tasks.start("good", good, 0.02)
    tasks.start("bad", bad, 0.02)
    await asyncio.sleep(0.5)
    await asyncio.wait_for(tasks.stop(), 2)
    assert len(healthy) >= 10  # polled on its interval throughout
    assert 2 <= len(failing) <= 5  # retried with a doubling backoff: 0.05, 0.1, 0.2...
    # A sleep never ends early, but on a loaded machine it may end late by more than the
    # next backoff's growth: each gap is at least its scheduled backoff (no ordering of wall
    # clock gaps is asserted).
    gaps = [b - a for a, b in itertools.pairwise(failing)]
    scheduled = [0.05 * 2**k for k in range(len(gaps))]
    assert all(gap >= wait - 0.005 for gap, wait in zip(gaps, scheduled, strict=True)), gaps


async def test_stop_interrupts_the_wait_between_polls() -> None:
    stop = asyncio.Event()
    polls: list[float] = []

    async def step(now: float) -> None:
        polls.append(now)

    task = asyncio.create_task(supervise_target("t", step, 60.0, stop))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, 1)
    assert time.monotonic() - started < 0.5
    assert len(polls) == 1


async def test_a_poll_in_flight_finishes_and_a_hung_one_is_cancelled() -> None:
    finished: list[str] = []

    async def slow(now: float) -> None:
        await asyncio.sleep(0.2)
        finished.append("slow")

    async def hung(now: float) -> None:
        await asyncio.sleep(3600)

    tasks = TargetTasks(grace_seconds=0.5)
    tasks.start("slow", slow, 10.0)
    tasks.start("hung", hung, 10.0)
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await asyncio.wait_for(tasks.stop(), 3)
    assert finished == ["slow"]
    assert time.monotonic() - started < 1.5


def test_sigterm_stops_the_process_cleanly() -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        from autoscaler.live.supervisor import TargetTasks, install_signal_handlers

        async def main():
            stop = asyncio.Event()
            install_signal_handlers(stop)
            async def step(now):
                pass
            tasks = TargetTasks(grace_seconds=1)
            tasks.start("t", step, 0.05)
            print("ready", flush=True)
            await stop.wait()
            await tasks.stop()
            print("stopped", flush=True)

        asyncio.run(main())
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    started = time.monotonic()
    process.terminate()
    out, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    lines = out.strip().splitlines()
    assert lines[-1] == "stopped"
    assert "SIGTERM" in lines[0]  # the stop is logged, with its cause
    assert time.monotonic() - started < 3


async def test_targets_stop_one_by_one_and_a_name_runs_once() -> None:
    polls: dict[str, int] = {"a": 0, "b": 0}

    def counter(name: str) -> Callable[[float], Awaitable[None]]:
        async def step(now: float) -> None:
            polls[name] += 1

        return step

    tasks = TargetTasks()
    tasks.start("a", counter("a"), 0.02)
    tasks.start("b", counter("b"), 0.02)
    with pytest.raises(ValueError, match="already running"):
        tasks.start("a", counter("a"), 0.02)
    await asyncio.sleep(0.1)
    await tasks.stop(["a"])
    assert "a" not in tasks
    assert "b" in tasks
    stopped_at = polls["a"]
    await asyncio.sleep(0.1)
    assert polls["a"] == stopped_at, "a stopped target polls no more"
    assert polls["b"] > stopped_at, "the others go on"
    await tasks.stop()
    assert "b" not in tasks
