"""``tune`` of one workload of a fleet: the task ``autoscaler.commands.fleet`` fans out.

Like ``autoscaler.fleet.workloads.replay_workload``: a plain function of a picklable task,
returning a JSON-ready summary (``tune.json``'s content). A workload whose history cannot
be read, or that meets an unexpected error, fails alone: its summary carries the error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from autoscaler.config.model import TargetConfig
from autoscaler.fleet.workloads import Workload
from autoscaler.replay.engine import ReplaySettings
from autoscaler.traces import TraceError
from autoscaler.tune.report import summary
from autoscaler.tune.search import tune
from autoscaler.tune.space import Setting

__all__ = ["TuneTask", "tune_workload"]


@dataclass(frozen=True)
class TuneTask:
    workload: Workload
    target: TargetConfig
    settings: ReplaySettings
    candidates: tuple[Setting, ...]
    budget_pct: float
    tune_share: float


def tune_workload(task: TuneTask) -> dict[str, Any]:
    """Tune one workload (its settings one after another); ``tune.json``'s content."""
    try:
        trace = task.workload.load()
        result = tune(
            task.target,
            trace,
            task.settings,
            list(task.candidates),
            task.budget_pct,
            tune_share=task.tune_share,
            jobs=1,
        )
    except TraceError as error:
        return {"workload": task.workload.name, "error": str(error)}
    except Exception as error:  # a bug met by one workload must not lose the fleet's others
        return {"workload": task.workload.name, "error": f"internal error: {error!r}"}
    return {"workload": task.workload.name, "error": None, "tune": summary(result)}
