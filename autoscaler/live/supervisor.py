"""One supervised task per target, and an orderly stop (kopf's way, small).

* Each target polls on its own schedule in its own named task. A poll that raises is
  logged and the target is retried after a backoff (doubling up to ``max_backoff``); the
  other targets never notice. A poll that overruns its interval starts the next one at once.
* Sleeps are waits on the stop event: a stop interrupts them immediately.
* ``TargetTasks`` runs one such loop per target; stopping lets in-flight polls finish (a
  patch in flight completes) for up to ``grace_seconds``, then cancels what is left, so
  the process exits within a few seconds. ``install_signal_handlers`` turns SIGTERM and
  SIGINT into the service's stop event.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable, Iterable

import structlog

_log = structlog.get_logger("autoscaler.live.supervisor")

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


class TargetTasks:
    """One supervised loop per target, started and stopped one by one (a config reload
    adds, changes and removes targets while the others keep polling)."""

    def __init__(self, *, grace_seconds: float = 5.0, initial_backoff: float = 1.0) -> None:
        self.grace_seconds = grace_seconds
        self.initial_backoff = initial_backoff
        self._running: dict[str, tuple[asyncio.Event, asyncio.Task[None]]] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._running

    def start(self, name: str, step: Step, interval: float) -> None:
        """Poll ``step`` every ``interval`` seconds in a task of its own."""
        if name in self._running:
            raise ValueError(f"target {name!r} is already running")
        stop = asyncio.Event()
        loop = supervise_target(name, step, interval, stop, initial_backoff=self.initial_backoff)
        self._running[name] = (stop, asyncio.create_task(loop, name=f"target:{name}"))

    async def stop(self, names: Iterable[str] | None = None) -> None:
        """Stop the named targets (all by default): in-flight polls (and patches) finish
        for up to ``grace_seconds``; what is left is cancelled."""
        chosen = list(self._running) if names is None else [n for n in names if n in self]
        running = [self._running.pop(name) for name in chosen]
        for stop, _ in running:
            stop.set()
        tasks = [task for _, task in running]
        if not tasks:
            return
        done, pending = await asyncio.wait(tasks, timeout=self.grace_seconds)
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
