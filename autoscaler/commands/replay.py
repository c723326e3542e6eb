"""``autoscaler replay``: compare predictors and settings on metric history, offline.

With no argument it replays the embedded trace (``autoscaler/data``) through the first
target of ``config.example.yaml`` and prints the comparison table: the project's main job
on a machine without a cluster.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from autoscaler.commands.options import (
    DAY,
    DEMO_SPAN_DAYS,
    add_history_arguments,
    add_simulation_arguments,
    check_format_and_output,
    check_positive,
    check_simulation_numbers,
    draw_progress,
    load_target,
    load_trace,
    peak_replicas,
    simulation_settings,
)
from autoscaler.output import add_format_argument, write_structured
from autoscaler.traces import Trace, TraceError

if TYPE_CHECKING:
    from autoscaler.replay.engine import ReplaySettings

ALL_PREDICTORS = ("linear", "holt_winters", "seasonal_ridge", "quantile_gbm", "auto", "auto/sized")
# What runs with no argument: one PHPA-parity model, ours, and auto (the config's default
# model), planned, and auto sized per poll (planner: none, to see what the planner buys), on
# three days after a week of warm-up: a newcomer's first run in about a minute on two
# cores (55 s measured on a lightly loaded machine).
QUICK_PREDICTORS = ("none", "linear", "seasonal_ridge", "auto", "auto/sized")

EXIT_OK, EXIT_FAILURE, EXIT_INPUT = 0, 1, 2


def add_parser(commands: Any) -> None:
    """Register ``replay`` under the ``autoscaler`` command."""
    parser = commands.add_parser(
        "replay",
        help="replay metric history through the decision code and compare predictors",
        description="Simulate a Kafka consumer group over a recorded arrival rate, scaled by "
        "the live decision code, once per predictor (plus the reactive baseline and a "
        "perfect-foresight oracle), and compare SLO violations and replica-hours. With no "
        "argument: the embedded trace and the first target of config.example.yaml.",
    )
    add_history_arguments(parser)

    target = add_simulation_arguments(parser)
    target.add_argument(
        "--predictors",
        help=f"comma-separated runs besides reactive and oracle (default: "
        f"{','.join(QUICK_PREDICTORS)} on the embedded demo, {','.join(ALL_PREDICTORS)} on "
        "your own history; 'none' is our decision without a forecast)",
    )
    target.add_argument(
        "--assume-throughput",
        metavar="MSG_S|learn",
        help="what the autoscaler is told instead of the target's per_replica_throughput: "
        "a number (e.g. a wrong one, to see what the mistake costs) or 'learn' (learn it "
        "from the processing rate, as live)",
    )
    parser.add_argument("--output", metavar="DIR", help="write summary.json, CSVs, report.html")
    add_format_argument(
        parser,
        what="the comparison table's rows (one per run; for a fleet, the ranking's)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        metavar="N",
        help="runs replayed at once, one process each (default: 2, or 1 on one core)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    from autoscaler.commands.fleet import add_fleet_arguments

    add_fleet_arguments(parser)
    parser.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace, stdout: TextIO | None = None) -> int:
    """The ``replay`` sub-command; returns the exit code."""
    # Imported here, not at the top: building the parser, version and validate load no
    # scikit-learn, SciPy or Dask (test_the_light_commands_load_no_heavy_library).
    from autoscaler.commands.fleet import fleet_requested, replay_fleet
    from autoscaler.replay.engine import default_runs, replay
    from autoscaler.replay.runs import kafka_trigger, with_trigger

    out = stdout or sys.stdout
    fleet = fleet_requested(args)
    default_run = not (
        args.history or args.prometheus_url or args.predictors or args.span_days or fleet
    )
    chosen = load_target(args, "replay")
    if chosen is None:
        return EXIT_INPUT
    _, target = chosen
    _, _, trigger = kafka_trigger(target)
    try:
        check_simulation_numbers(args)
        check_format_and_output(args)
        throughput = args.per_replica_throughput or trigger.per_replica_throughput
        if throughput is None:
            raise TraceError(
                f"target {target.name} has no per_replica_throughput: pass "
                "--per-replica-throughput (messages/s the simulated replicas really process; "
                "the target still learns it, as live)"
            )
        if args.assume_throughput is not None:
            assumed = _assumed(args.assume_throughput)
            target = with_trigger(
                target, per_replica_throughput=assumed, learn_throughput=assumed is None
            )
        if fleet:
            # Reactive, and the target's own model unless --predictors says which.
            model = target.predictor.model
            chosen_runs = _predictors(args.predictors, False) if args.predictors else [model]
            runs = ["reactive", *(r for r in chosen_runs if r != "reactive")]
            if len(runs) < 2:
                raise TraceError(
                    "a fleet ranks one run against reactive: --predictors must name a run "
                    "besides reactive (e.g. auto)"
                )
            # A fleet is the user's own history: replayed as it is unless --peak-replicas.
            settings = simulation_settings(
                args,
                target,
                throughput,
                peak=peak_replicas(args, target),
                span_days=args.span_days,
                frontier=False,
            )
            return replay_fleet(args, target, settings, runs, runs[1], out)
        predictors = _predictors(args.predictors, default_run)
        trace = load_trace(args)
        for warning in trace.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        # The embedded demo trace is scaled to the target (its counts are tweets); a user's
        # own history replays as it is (messages/s, or per row) unless --peak-replicas asks.
        peak = peak_replicas(args, target)
        span_days = (
            args.span_days
            if args.span_days is not None
            else (DEMO_SPAN_DAYS if default_run else None)
        )
        settings = simulation_settings(args, target, throughput, peak=peak, span_days=span_days)
        progress = None if args.no_progress or not sys.stderr.isatty() else _progress_bar
        result = replay(target, trace, settings, default_runs(predictors), progress, args.jobs)
    except TraceError as error:
        print(f"replay: {error}", file=sys.stderr)
        return EXIT_INPUT
    if progress is not None:
        print(file=sys.stderr)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    from autoscaler.report.files import write_report
    from autoscaler.report.tables import (
        LEGEND,
        NEXT_STEPS,
        comparison_table,
        knowledge_line,
        table_rows,
        verdict,
    )

    summary = result.summary()
    if args.format is not None:
        # The table's rows as data on stdout, nothing else there: the headline, the
        # verdict and the legend are for people, and summary.json (--output) has it all.
        write_structured(table_rows(summary), args.format, out)
        if args.output:
            written = write_report(result, Path(args.output))
            print(f"wrote {len(written)} files to {args.output}", file=sys.stderr)
        return EXIT_OK
    print(_headline(summary, trace, result.scale, settings), file=out)
    print(knowledge_line(summary), file=out)
    print(comparison_table(summary), file=out)
    print("", file=out)
    for line in (verdict(summary), LEGEND):
        if line:
            print(line, file=out)
    if args.output:
        written = write_report(result, Path(args.output))
        print(f"wrote {len(written)} files to {args.output}", file=out)
    else:
        print(NEXT_STEPS, file=out)
    return EXIT_OK


def _assumed(text: str) -> float | None:
    """``--assume-throughput``: a positive number, or ``learn`` (None: learned as live)."""
    if text.strip().lower() == "learn":
        return None
    try:
        value = float(text)
    except ValueError:
        raise TraceError(
            f"--assume-throughput must be a number of messages/s or 'learn', not {text!r}"
        ) from None
    check_positive("--assume-throughput", value)
    return value


def _predictors(text: str | None, default_run: bool) -> list[str]:
    if text is None:
        return list(QUICK_PREDICTORS if default_run else ALL_PREDICTORS)
    from predictors import MODELS

    names = [name.strip() for name in text.split(",") if name.strip()]
    known = {*MODELS, "none", "reactive", "oracle", "oracle-behavior"}
    if not names:
        raise TraceError(f"--predictors {text!r} names no run (known: {', '.join(sorted(known))})")
    unknown = [
        name
        for name in names
        if name not in known and not (name.endswith("/sized") and name[: -len("/sized")] in MODELS)
    ]
    if unknown:
        raise TraceError(
            f"unknown predictor {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    return names


def _headline(summary: dict[str, Any], trace: Trace, scale: float, settings: ReplaySettings) -> str:
    from autoscaler.report.tables import scaling_text

    scaled = scaling_text(scale, settings.peak_replicas)
    return (
        f"{summary['trace']}: {summary['duration_hours'] / 24:.1f} days replayed "
        f"({summary['steps']} polls of {summary['step_seconds']:g}s) after "
        f"{settings.warmup_seconds / DAY:g} days of warm-up; {scaled}; "
        f"{summary['per_replica_throughput']:g} msg/s per replica, start-up "
        f"{summary['startup_seconds']:g}s, SLO {summary['slo_max_lag_seconds']:g}s to drain"
    )


def _progress_bar(run: str, index: int, total: int) -> None:
    draw_progress(index, total, f"runs: {run:<16}")
