"""``autoscaler replay``: compare predictors and settings on metric history, offline.

With no argument it replays the embedded trace (``autoscaler/data``) through the first
target of ``config.example.yaml`` and prints the comparison table: the project's main job
on a machine without a cluster.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from autoscaler.config import ConfigError, load_config
from autoscaler.output import add_format_argument, refuse_format_as_path, write_structured
from autoscaler.traces import Trace, TraceError, load_csv

if TYPE_CHECKING:
    from autoscaler.config.model import TargetConfig
    from autoscaler.replay.engine import ReplaySettings

DATA = Path(__file__).resolve().parent.parent / "data"
EMBEDDED_TRACE = DATA / "nab_twitter_amzn.csv"
DAY = 86400.0
ALL_PREDICTORS = ("linear", "holt_winters", "seasonal_ridge", "quantile_gbm", "auto")
# What runs with no argument: one PHPA-parity model, ours, and auto (the config's default
# model), on three days after a week of warm-up: a newcomer's first run in well under a
# minute on two cores.
QUICK_PREDICTORS = ("none", "linear", "seasonal_ridge", "auto")
QUICK_SPAN_DAYS = 3.0

EXIT_OK, EXIT_FAILURE, EXIT_INPUT = 0, 1, 2


def example_config() -> Path:
    """config.example.yaml: in the working directory, else beside the package's checkout."""
    here = Path("config.example.yaml")
    if here.is_file():
        return here
    return Path(__file__).resolve().parents[2] / "config.example.yaml"


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

    target = add_simulation_arguments(
        parser,
        peak_default=None,
        peak_help="(default: half of max_replicas for the embedded demo trace; your own history "
        "replays as it is, unless given; 0: as it is)",
    )
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
    from autoscaler.fleet.command import add_fleet_arguments

    add_fleet_arguments(parser)
    parser.set_defaults(handler=run_command)


def add_simulation_arguments(
    parser: argparse.ArgumentParser, *, peak_default: float | None, peak_help: str
) -> argparse._ArgumentGroup:
    """The target and what is simulated (``replay`` and ``tune`` take the same)."""
    target = parser.add_argument_group("what is simulated (default: the target's config)")
    target.add_argument("--config", metavar="FILE", help="config file (default: the example)")
    target.add_argument("--target", metavar="NAME", help="target name (default: the first)")
    target.add_argument(
        "--per-replica-throughput",
        type=float,
        metavar="MSG_S",
        help="the simulated consumers' true capacity (default: the target's "
        "per_replica_throughput)",
    )
    target.add_argument(
        "--startup-seconds",
        type=float,
        metavar="S",
        help="how long a new replica takes to consume (default: the target's startup_seconds)",
    )
    target.add_argument(
        "--partitions",
        type=int,
        metavar="N",
        help="partitions of the simulated topic, the most replicas that consume "
        "(default: max_replicas)",
    )
    target.add_argument(
        "--poll-interval",
        type=float,
        metavar="S",
        help="seconds between polls (default: the target's poll_interval_seconds)",
    )
    target.add_argument(
        "--peak-replicas",
        type=float,
        default=peak_default,
        metavar="N",
        help=f"scale the history so that its 99th percentile needs N replicas {peak_help}",
    )
    target.add_argument(
        "--warmup-days", type=float, default=7.0, help="history used only to warm up (7)"
    )
    target.add_argument("--span-days", type=float, help="use at most this many days")
    return target


def load_target(args: argparse.Namespace, command: str) -> tuple[str, TargetConfig] | None:
    """The config file's path and the target to simulate (``--config``, ``--target``);
    None once every problem is printed (the caller exits 2)."""
    from autoscaler.replay.runs import kafka_trigger

    config_path = args.config or str(example_config())
    try:
        config = load_config(config_path)
    except ConfigError as error:
        print(error.summary(), file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return None
    try:
        target = config.target(args.target) if args.target else config.targets[0]
        kafka_trigger(target)
    except (KeyError, ValueError) as error:
        print(f"{command}: {str(error).strip(chr(39))}", file=sys.stderr)
        return None
    return config_path, target


def simulation_settings(
    args: argparse.Namespace,
    target: TargetConfig,
    throughput: float,
    *,
    peak: float | None,
    span_days: float | None,
    frontier: bool = True,
) -> ReplaySettings:
    """What is simulated: the options given, else the target's configuration."""
    from autoscaler.replay.engine import ReplaySettings

    return ReplaySettings(
        per_replica_throughput=throughput,
        startup_seconds=args.startup_seconds
        if args.startup_seconds is not None
        else target.startup_seconds,
        poll_interval_seconds=args.poll_interval or target.poll_interval_seconds,
        partitions=args.partitions or target.max_replicas,
        peak_replicas=peak or None,
        warmup_seconds=args.warmup_days * DAY,
        span_seconds=None if span_days is None else span_days * DAY,
        frontier=frontier,
    )


def add_history_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the history comes from (``replay`` and ``tune`` take the same)."""
    source = parser.add_argument_group("history (default: the embedded NAB AMZN trace)")
    source.add_argument("--history", metavar="FILE", help="CSV with columns timestamp,value")
    source.add_argument(
        "--value-kind",
        choices=("count", "rate"),
        default="count",
        help="count: events per row interval (default); rate: events per second",
    )
    source.add_argument("--prometheus-url", metavar="URL", help="fetch the history from here")
    source.add_argument("--query", help="PromQL giving one series (the arrival rate)")
    source.add_argument("--start", help="ISO-8601, Unix seconds, or now-30d (default now-30d)")
    source.add_argument("--end", help="ISO-8601, Unix seconds, or now (default now)")
    source.add_argument("--step", default="1m", help="query resolution (default 1m)")


def load_trace(args: argparse.Namespace) -> Trace:
    if args.prometheus_url or args.query:
        if not (args.prometheus_url and args.query):
            raise TraceError("--prometheus-url and --query go together")
        check_query(args.query)
        from autoscaler.sources import prometheus_history as prometheus

        now = prometheus.parse_time("now")
        return prometheus.fetch_range(
            args.prometheus_url,
            args.query,
            prometheus.parse_time(args.start or "now-30d", now=now),
            prometheus.parse_time(args.end or "now", now=now),
            prometheus.parse_duration(args.step),
            value_kind=args.value_kind,
        )
    if args.history:
        return load_csv(args.history, args.value_kind)
    return load_csv(EMBEDDED_TRACE, "count")


def check_query(query: str) -> None:
    """``--query``: valid PromQL, or one line saying why, before any request is made."""
    from autoscaler.config.promql import promql_problem

    problem = promql_problem(query)
    if problem is not None:
        raise TraceError(f"--query is not valid PromQL: {problem}")


def check_positive(name: str, value: float | None) -> None:
    """A ``TraceError`` naming the option unless ``value`` is unset or a finite number > 0."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise TraceError(f"{name} must be a number > 0, not {value:g}")


def check_simulation_numbers(args: argparse.Namespace) -> None:
    """Every number of what is simulated, up front, before any history is read (``replay``
    and ``tune`` take the same options and the same rules)."""
    check_positive("--per-replica-throughput", args.per_replica_throughput)
    check_positive("--poll-interval", args.poll_interval)
    startup = args.startup_seconds
    if startup is not None and not (math.isfinite(startup) and startup >= 0):
        raise TraceError(f"--startup-seconds must be a number >= 0, not {startup:g}")
    if args.partitions is not None and args.partitions < 1:
        raise TraceError(f"--partitions must be >= 1, not {args.partitions}")
    for name, value in (
        ("--peak-replicas", args.peak_replicas),
        ("--warmup-days", args.warmup_days),
    ):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise TraceError(f"{name} must be a number >= 0, not {value:g}")
    if args.span_days is not None and not (math.isfinite(args.span_days) and args.span_days > 0):
        raise TraceError(f"--span-days must be a number > 0, not {args.span_days:g}")
    jobs = getattr(args, "jobs", 1)
    if jobs < 1:
        raise TraceError(f"--jobs must be >= 1, not {jobs}")


def check_format_and_output(args: argparse.Namespace) -> None:
    """``--output DIR`` usable, and not a format (``--output json`` means ``-o json``)."""
    mistaken = refuse_format_as_path("--output", args.output)
    if mistaken is not None:
        raise TraceError(mistaken)
    check_output(args.output)


def check_output(output: str | None) -> None:
    """``--output``: a folder that exists or can be made, and can be written, checked before
    a long run rather than after it."""
    if not output:
        return
    path = Path(output)
    if path.exists() and not path.is_dir():
        raise TraceError(f"--output {output} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TraceError(f"--output {output}: cannot make it ({error.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise TraceError(f"--output {output}: cannot write in it (permission denied)")


def run_command(args: argparse.Namespace, stdout: TextIO | None = None) -> int:
    """The ``replay`` sub-command; returns the exit code."""
    # Imported here, not at the top: the other sub-commands need not load scikit-learn.
    from autoscaler.fleet.command import fleet_requested, replay_fleet
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
                peak=args.peak_replicas,
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
        embedded = not (args.history or args.prometheus_url)
        default_peak = target.max_replicas / 2 if embedded else None
        peak = args.peak_replicas if args.peak_replicas is not None else default_peak
        span_days = (
            args.span_days
            if args.span_days is not None
            else (QUICK_SPAN_DAYS if default_run else None)
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
    unknown = [name for name in names if name not in known]
    if unknown:
        raise TraceError(
            f"unknown predictor {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    return names


def _headline(summary: dict[str, Any], trace: Trace, scale: float, settings: ReplaySettings) -> str:
    factor = f"{scale:,.0f}" if scale >= 100 else f"{scale:.4g}"
    scaled = (
        "arrival rate as recorded"
        if scale == 1 or settings.peak_replicas is None
        else f"arrival rate scaled x{factor} so that its 99th percentile needs "
        f"{settings.peak_replicas:g} replicas (--peak-replicas)"
    )
    return (
        f"{summary['trace']}: {summary['duration_hours'] / 24:.1f} days replayed "
        f"({summary['steps']} polls of {summary['step_seconds']:g}s) after "
        f"{settings.warmup_seconds / DAY:g} days of warm-up; {scaled}; "
        f"{summary['per_replica_throughput']:g} msg/s per replica, start-up "
        f"{summary['startup_seconds']:g}s, SLO {summary['slo_max_lag_seconds']:g}s to drain"
    )


def _progress_bar(run: str, index: int, total: int) -> None:
    draw_progress(index, total, f"runs: {run:<16}")


def draw_progress(done: int, total: int, what: str) -> None:
    """A one-line progress bar on stderr, redrawn in place (``replay``, ``tune``, fleets)."""
    width = 30
    filled = round(width * done / total) if total else width
    print(
        f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {what}",
        end="",
        file=sys.stderr,
        flush=True,
    )
