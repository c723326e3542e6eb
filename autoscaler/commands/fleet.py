"""``replay`` and ``tune`` over a fleet: ``--fleet DIR`` (one CSV per workload) or
``--fleet-label LABEL`` (a PromQL query returning one series per consumer group), fanned
out on ``dask.distributed`` (``--workers`` local processes, or ``--scheduler ADDRESS``).

The options are added to every ``autoscaler`` parser build (``version`` too): what a fleet
runs (the replay engine, scikit-learn through the predictors, ``tune``) is imported when a
fleet runs, not here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from autoscaler.commands.options import check_query, draw_progress
from autoscaler.fleet.engine import SCHEDULER_ENV, FleetError, engine_from, fan_out
from autoscaler.fleet.summary import rank_replays, rank_tunes, render_ranking
from autoscaler.output import write_structured
from autoscaler.traces import TraceError

if TYPE_CHECKING:
    from autoscaler.config.model import TargetConfig
    from autoscaler.fleet.workloads import Workload
    from autoscaler.replay.engine import ReplaySettings
    from autoscaler.tune.space import Setting

__all__ = ["add_fleet_arguments", "fleet_requested", "load_workloads", "replay_fleet", "tune_fleet"]


def add_fleet_arguments(parser: argparse.ArgumentParser) -> None:
    """Where a fleet runs (``replay`` and ``tune`` take the same)."""
    fleet = parser.add_argument_group(
        "a fleet: many workloads at once, on dask.distributed "
        "(with --fleet DIR, or --query and --fleet-label)"
    )
    fleet.add_argument(
        "--fleet",
        metavar="DIR",
        help="a folder of CSVs, one workload each (named by the file), replayed with the "
        "same target settings",
    )
    fleet.add_argument(
        "--fleet-label",
        metavar="LABEL",
        help="with --prometheus-url and --query: one workload per series of the query, "
        "named by this label (e.g. consumergroup for sum by (consumergroup) (...))",
    )
    fleet.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help=f"a Dask scheduler (e.g. tcp://scheduler:8786; default: ${SCHEDULER_ENV}, else "
        "local worker processes)",
    )
    fleet.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        metavar="N",
        help="local worker processes without a scheduler (default: 2, or 1 on one core; 1 "
        "runs the fleet in this process)",
    )


def fleet_requested(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "fleet", None) or getattr(args, "fleet_label", None))


def load_workloads(args: argparse.Namespace) -> list[Workload]:
    """The fleet's workloads from ``--fleet`` or ``--fleet-label``; a ``TraceError`` for a
    wrong combination of options."""
    from autoscaler.fleet.workloads import Workload, workloads_in

    if args.fleet and args.fleet_label:
        raise TraceError("--fleet (a folder) and --fleet-label (a query) are two fleets: one")
    if args.workers < 1:
        raise TraceError(f"--workers must be >= 1, not {args.workers}")
    if args.history:
        raise TraceError("--history is one workload; a fleet is --fleet DIR or --fleet-label")
    if args.fleet:
        if args.prometheus_url or args.query:
            raise TraceError(
                "--fleet reads a folder; --prometheus-url/--query go with --fleet-label"
            )
        return workloads_in(args.fleet, args.value_kind)
    if not (args.prometheus_url and args.query):
        raise TraceError("--fleet-label needs --prometheus-url and --query")
    check_query(args.query)
    from autoscaler.sources import prometheus_history as prometheus

    now = prometheus.parse_time("now")
    traces = prometheus.fetch_fleet(
        args.prometheus_url,
        args.query,
        prometheus.parse_time(args.start or "now-30d", now=now),
        prometheus.parse_time(args.end or "now", now=now),
        prometheus.parse_duration(args.step),
        args.fleet_label,
        value_kind=args.value_kind,
    )
    return [
        Workload(name, error=str(trace))
        if isinstance(trace, TraceError)
        else Workload(name, trace=trace)
        for name, trace in traces
    ]


def replay_fleet(
    args: argparse.Namespace,
    target: TargetConfig,
    settings: ReplaySettings,
    runs: list[str],
    run: str,
    out: TextIO,
) -> int:
    """Replay every workload; print the ranking, write ``fleet.json`` with ``--output``."""
    from autoscaler.fleet.workloads import ReplayTask, replay_workload

    workloads = load_workloads(args)
    tasks = [ReplayTask(w, target, settings, tuple(runs)) for w in workloads]
    outcomes = _fan_out(replay_workload, tasks, args)
    rows = rank_replays(outcomes, run, target.slo.budget_percent)
    title = (
        f"fleet of {len(workloads)} workloads, target {target.name} settings: "
        f"{run} against reactive KEDA, most replica-hours saved first"
    )
    _print_ranking(args, rows, title, out)
    _write(args, {"kind": "replay", "run": run, "ranking": rows, "workloads": outcomes}, out)
    return _exit_code(rows)


def tune_fleet(
    args: argparse.Namespace,
    target: TargetConfig,
    settings: ReplaySettings,
    candidates: list[Setting],
    out: TextIO,
) -> int:
    """Tune every workload; print the ranking, write ``fleet.json`` with ``--output``."""
    from autoscaler.tune.workload import TuneTask, tune_workload

    workloads = load_workloads(args)
    tasks = [
        TuneTask(w, target, settings, tuple(candidates), args.budget, args.tune_share)
        for w in workloads
    ]
    outcomes = _fan_out(tune_workload, tasks, args)
    rows = rank_tunes(outcomes)
    title = (
        f"fleet of {len(workloads)} workloads, {len(candidates)} settings each, budget "
        f"{args.budget:g}%: each workload's recommendation against reactive KEDA on its "
        "test part, most replica-hours saved first"
    )
    print(render_ranking(rows, title), file=out)
    _write(args, {"kind": "tune", "ranking": rows, "workloads": outcomes}, out)
    return _exit_code(rows)


def _exit_code(rows: list[dict[str, Any]]) -> int:
    """0 when any workload was replayed (the failures are listed); 2 when none could be:
    the input is wrong, not the fleet."""
    if rows and all(row["error"] is not None for row in rows):
        print("fleet: no workload could be replayed (see above)", file=sys.stderr)
        return 2
    return 0


def _fan_out(function: Any, tasks: list[Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    engine = engine_from(args.scheduler, args.workers)
    progress = None if args.no_progress or not sys.stderr.isatty() else _progress_bar
    try:
        results: list[dict[str, Any]] = fan_out(function, tasks, engine, progress)
    except FleetError as error:
        raise TraceError(str(error)) from None
    if progress is not None:
        print(file=sys.stderr)
    return results


def _print_ranking(
    args: argparse.Namespace, rows: list[dict[str, Any]], title: str, out: TextIO
) -> None:
    """The ranking as a table, or its rows as data with ``-o json|yaml`` (replay)."""
    form = getattr(args, "format", None)
    if form is not None:
        write_structured(rows, form, out)
    else:
        print(render_ranking(rows, title), file=out)


def _write(args: argparse.Namespace, document: dict[str, Any], out: TextIO) -> None:
    if not args.output:
        return
    directory = Path(args.output)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "fleet.json").write_text(json.dumps(document, indent=2) + "\n")
    # With -o, stdout holds the data alone.
    said = sys.stderr if getattr(args, "format", None) is not None else out
    print(f"wrote fleet.json to {directory}", file=said)


def _progress_bar(done: int, total: int) -> None:
    draw_progress(done, total, "workloads")
