"""Timing a scale-up between polls: when its replicas got ready, and when the group
consumed with them.

The poll step measures start-up from what each poll sees (``decision.startup``), which
only says that a replica got ready somewhere between two polls: at 15 s polls and a 10 s
start-up every measurement reads "half a poll". After a scale-up it patched, the
controller therefore starts a probe: a small task that, every ``interval`` seconds, reads
the workload's ready replicas and, once they are ready, each Kafka trigger's group
(DescribeGroups: members and state) until the group has the members to use them and is
not rebalancing. What it found (``StartupTiming``, to within half an interval) goes into
the next poll's inputs, and the poll step takes it over its own estimate. The probe reads
at most one scale and one group description per trigger per interval, only while a
scale-up is starting; a newer scale-up or a scale-down replaces it; it gives up after
``GIVE_UP_SECONDS``. Any error ends it quietly: the poll step's own estimate remains.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, runtime_checkable

import structlog

from autoscaler.decision.startup import GIVE_UP_SECONDS, StartupTiming

_log = structlog.get_logger(__name__)


@runtime_checkable
class GroupProbe(Protocol):
    """A source that can say, between polls, whether its group consumes with N members."""

    async def group_settled(self, replicas: int) -> bool | None: ...


ReadReady = Callable[[], Awaitable[int | None]]
"""The workload's ready replicas now (None: unknown)."""


class StartupProbe:
    """At most one probe at a time per target, its finished timings kept until taken."""

    def __init__(
        self,
        read_ready: ReadReady,
        groups: Sequence[GroupProbe],
        clock: Callable[[], float],
        interval: float,
    ) -> None:
        self._read_ready = read_ready
        self._groups = list(groups)
        self._clock = clock
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._finished: list[StartupTiming] = []

    def scaled(self, old_replicas: int, new_replicas: int, patched_at: float) -> None:
        """A patch changed the count: a scale-up is timed from ``patched_at``; a scale-down
        ends the timing in progress."""
        self.cancel()
        if new_replicas > old_replicas:
            self._task = asyncio.create_task(
                self._time(new_replicas, patched_at), name="startup-probe"
            )

    def take(self) -> tuple[StartupTiming, ...]:
        """The timings finished since the last call."""
        finished, self._finished = tuple(self._finished), []
        return finished

    def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _time(self, replicas: int, patched_at: float) -> None:
        ready_at: float | None = None
        previous = patched_at
        try:
            while True:
                await asyncio.sleep(self.interval)
                now = self._clock()
                if now - patched_at > GIVE_UP_SECONDS:
                    return
                if ready_at is None:
                    ready = await self._read_ready()
                    if ready is not None and ready >= replicas:
                        ready_at = (previous + now) / 2
                if ready_at is not None and await self._settled(replicas):
                    consuming_at = max(ready_at, (previous + now) / 2)
                    self._finished.append(
                        StartupTiming(patched_at, replicas, ready_at, consuming_at)
                    )
                    return
                previous = now
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the poll step's own estimate remains
            _log.debug("startup_probe_failed", error=repr(error))

    async def _settled(self, replicas: int) -> bool:
        answers = await asyncio.gather(*(g.group_settled(replicas) for g in self._groups))
        return all(answer is not False for answer in answers)
