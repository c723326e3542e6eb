"""A fleet's workloads and the replay of each (``autoscaler.tune.workload`` tunes one).

A ``Workload`` is a name and how to get its history: a CSV's path (read by the worker that
replays it, so the scheduler never holds the fleet's data) or a trace already fetched (one
series of a Prometheus query). ``replay_workload`` is a task a fleet fans out: a plain
function of a picklable task, returning a JSON-ready summary (so is ``tune_workload``, in
``tune``, which builds on this package and not the other way round). A
workload whose history cannot be read fails alone: its summary carries the error and the
others go on (so does one that meets an unexpected error: it is reported as such).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from autoscaler.config.model import TargetConfig
from autoscaler.replay.engine import ReplaySettings
from autoscaler.traces import Trace, TraceError, load_csv

__all__ = [
    "ReplayTask",
    "Workload",
    "replay_workload",
    "workloads_in",
]


@dataclass(frozen=True)
class Workload:
    """One workload of a fleet: its name and its history (a CSV path, or a trace)."""

    name: str
    path: str | None = None
    value_kind: Literal["count", "rate"] = "count"
    trace: Trace | None = field(default=None, repr=False)
    error: str | None = None
    """Why its history could not be had (e.g. a series of only NaN): it fails alone."""

    def load(self) -> Trace:
        if self.error is not None:
            raise TraceError(self.error)
        if self.trace is not None:
            return self.trace
        assert self.path is not None
        return load_csv(self.path, self.value_kind)


def workloads_in(folder: str, value_kind: Literal["count", "rate"]) -> list[Workload]:
    """One workload per ``*.csv`` in ``folder`` (named by the file's stem), sorted."""
    directory = Path(folder)
    if not directory.is_dir():
        raise TraceError(f"--fleet {folder}: not a folder")
    files = sorted(p for p in directory.glob("*.csv") if p.is_file())
    if not files:
        raise TraceError(f"--fleet {folder}: no *.csv file in it (one CSV per workload)")
    # Absolute paths: a worker of a remote cluster (sharing the filesystem) has another
    # working directory.
    return [Workload(p.stem, str(p.resolve()), value_kind) for p in files]


@dataclass(frozen=True)
class ReplayTask:
    workload: Workload
    target: TargetConfig
    settings: ReplaySettings
    runs: tuple[str, ...]


def replay_workload(task: ReplayTask) -> dict[str, Any]:
    """Replay one workload (every run, one after another: the fleet is the parallelism);
    its ``summary.json`` without the per-run wall times (they differ from run to run)."""
    from autoscaler.replay.engine import replay

    try:
        trace = task.workload.load()
        result = replay(task.target, trace, task.settings, list(task.runs), jobs=1)
    except TraceError as error:
        return {"workload": task.workload.name, "error": str(error)}
    except Exception as error:  # a bug met by one workload must not lose the fleet's others
        return {"workload": task.workload.name, "error": f"internal error: {error!r}"}
    summary = result.summary()
    for run in summary["results"] + summary["keda_frontier"]:
        run.pop("runtime_seconds", None)
    return {
        "workload": task.workload.name,
        "error": None,
        "warnings": list(result.warnings),
        "summary": summary,
    }
