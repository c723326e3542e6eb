"""Where a fleet's workloads run: in this process, or on ``dask.distributed``.

A fleet is many independent workloads (one replay, or one ``tune``, each); nothing is
shared between them, so fanning out is a map. That map is Dask's, not ours: by default a
``LocalCluster`` of worker processes on this machine (one thread each: a replay is pure
Python and NumPy, and holds the GIL), or, given a scheduler address (``--scheduler`` or
the ``DASK_SCHEDULER_ADDRESS`` convention), the cluster behind it. Each task gets its
workload's *description* (a CSV's path, or the points of one series) and loads it itself,
so a worker holds one workload at a time and its memory does not grow with the fleet; it
sends back a small summary. ``Serial`` runs the same function in this process, in order:
the reference the Dask runs are checked against.

Dask is imported only when a fleet runs (``replay`` of one workload does not need it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["Dask", "Engine", "FleetError", "Serial", "engine_from", "fan_out"]

T = TypeVar("T")
R = TypeVar("R")
Progress = Callable[[int, int], None]
"""Called with (done, total) as workloads finish."""

SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
CONNECT_TIMEOUT_SECONDS = 10.0


class FleetError(Exception):
    """A fleet cannot run (e.g. the scheduler is unreachable): one line for the user."""


@dataclass(frozen=True)
class Serial:
    """In this process, one workload after another."""


@dataclass(frozen=True)
class Dask:
    """On ``dask.distributed``: the scheduler at ``address``, or a ``LocalCluster`` of
    ``workers`` processes when it is None."""

    address: str | None = None
    workers: int = 2


Engine = Serial | Dask


def engine_from(scheduler: str | None, workers: int) -> Engine:
    """The engine the command line asks for: ``--scheduler`` (or ``DASK_SCHEDULER_ADDRESS``)
    for a cluster, else local processes; ``--workers 1`` without a scheduler runs in this
    process."""
    address = scheduler or os.environ.get(SCHEDULER_ENV) or None
    if address is None and workers <= 1:
        return Serial()
    return Dask(address, max(1, workers))


def fan_out(
    function: Callable[[T], R],
    items: Sequence[T],
    engine: Engine,
    progress: Progress | None = None,
) -> list[R]:
    """``[function(item) for item in items]``, in the order of ``items``, on ``engine``.
    An exception in one task is raised here (the first in ``items`` order)."""
    if isinstance(engine, Serial):
        results = []
        for done, item in enumerate(items, start=1):
            results.append(function(item))
            if progress is not None:
                progress(done, len(items))
        return results
    with _DaskClient(engine) as client:
        futures = client.map(function, list(items), pure=False)
        _wait(futures, progress)
        gathered: list[R] = client.gather(futures)
        return gathered


def worker_peak_memory(engine: Engine) -> dict[str, int]:
    """Each worker's peak resident memory so far, in bytes (Linux), by worker address;
    empty for ``Serial``. For the fleet benchmark (flat in the number of workloads): give
    the address of the cluster that ran the fleet; ``Dask(None)`` would start a new one."""
    if isinstance(engine, Serial):
        return {}
    with _DaskClient(engine) as client:
        peaks: dict[str, int] = client.run(_peak_rss)
        return peaks


def _peak_rss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class _DaskClient:
    """A ``distributed.Client`` on the engine's cluster (a ``LocalCluster`` made and torn
    down here when there is no address)."""

    def __init__(self, engine: Dask) -> None:
        self.engine = engine
        self.cluster: Any = None
        self.client: Any = None

    def __enter__(self) -> Any:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise FleetError(
                "a fleet on more than one process needs dask.distributed: "
                "pip install 'predictive-autoscaler[fleet]' (or --workers 1)"
            ) from None

        engine = self.engine
        if engine.address is None:
            self.cluster = LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=engine.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=40,  # logging.ERROR: a user's terminal is not Dask's log
            )
            self.client = Client(self.cluster)  # type: ignore[no-untyped-call]
            return self.client
        try:
            self.client = Client(  # type: ignore[no-untyped-call]
                engine.address, timeout=CONNECT_TIMEOUT_SECONDS
            )
        except (OSError, TimeoutError, ValueError) as error:
            raise FleetError(
                f"cannot reach the Dask scheduler at {engine.address} "
                f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
                f"; check --scheduler / {SCHEDULER_ENV}"
            ) from None
        return self.client

    def __exit__(self, *_: object) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _wait(futures: list[Any], progress: Progress | None) -> None:
    from distributed import as_completed

    for done, _ in enumerate(as_completed(futures), start=1):  # type: ignore[no-untyped-call]
        if progress is not None:
            progress(done, len(futures))
