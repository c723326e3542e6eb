"""One supervised task per target, and an orderly stop (kopf's way, small).

* Each target polls on its own schedule in its own named task. A poll that raises is
  logged and the target is retried after a backoff (doubling up to ``max_backoff``); the
  other targets never notice. A poll that overruns its interval starts the next one at once.
* Sleeps are waits on the stop event: a stop interrupts them immediately.
* ``run_until_stopped`` turns SIGTERM/SIGINT into that stop event, lets in-flight polls
  finish (a patch in flight completes) for up to ``grace_seconds``, then cancels what is
  left, so the process exits within a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable, Mapping

import structlog

_log = structlog.get_logger("autoscaler.supervisor")

Step = Callable[[float], Awaitable[object]]
"""One poll of one target, given the time (Unix seconds: forecasts need the time of day;
the loop's own clock only schedules the polls)."""


async def supervise_target(
    name: str,
    step: Step,
    interval: float,
    stop: asyncio.Event,
    *,
    initial_backoff: float = 1.0,
    max_backoff: float = 300.0,
    clock: Callable[[], float] = time.time,
) -> None:
    """Poll ``step`` every ``interval`` seconds until ``stop`` is set; never raises (but for
    cancellation)."""
    loop = asyncio.get_running_loop()
    backoff = initial_backoff
    with structlog.contextvars.bound_contextvars(target=name):
        while not stop.is_set():
            started = loop.time()
            try:
                await step(clock())
            except asyncio.CancelledError:
                raise
            except Exception as error:
                _log.error("target_poll_failed", error=repr(error), retry_in=backoff)
                wait = backoff
                backoff = min(backoff * 2, max_backoff)
            else:
                backoff = initial_backoff
                wait = max(0.0, interval - (loop.time() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)


async def run_targets(
    steps: Mapping[str, tuple[Step, float]],
    stop: asyncio.Event,
    *,
    grace_seconds: float = 5.0,
    initial_backoff: float = 1.0,
) -> None:
    """Run every target's loop until ``stop``; then wait ``grace_seconds`` for in-flight
    polls and cancel the rest."""
    tasks = [
        asyncio.create_task(
            supervise_target(name, step, interval, stop, initial_backoff=initial_backoff),
            name=f"target:{name}",
        )
        for name, (step, interval) in steps.items()
    ]
    await stop.wait()
    await drain(tasks, grace_seconds)


async def drain(tasks: list[asyncio.Task[None]], grace_seconds: float) -> None:
    """Wait up to ``grace_seconds`` for ``tasks`` (already told to stop) to finish their
    in-flight poll, then cancel what is left."""
    if not tasks:
        return
    done, pending = await asyncio.wait(tasks, timeout=grace_seconds)
    for task in pending:
        _log.warning("target_cancelled_at_stop", task=task.get_name())
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            _log.error("target_task_failed", task=task.get_name(), error=repr(task.exception()))


def install_signal_handlers(stop: asyncio.Event) -> None:
    """SIGTERM (Kubernetes stopping the pod) and SIGINT (Ctrl-C) set ``stop``."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _on_signal, stop, signum)


def _on_signal(stop: asyncio.Event, signum: int) -> None:
    _log.info("stopping", signal=signal.Signals(signum).name)
    stop.set()
