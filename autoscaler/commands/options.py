"""The options ``replay`` and ``tune`` share (and a fleet of either), their checks, and
the progress bar they draw: below the three commands, so that none imports another for
them.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from autoscaler.config import ConfigError, load_config
from autoscaler.output import refuse_format_as_path
from autoscaler.traces import Trace, TraceError, load_csv

if TYPE_CHECKING:
    from autoscaler.config.model import TargetConfig
    from autoscaler.replay.engine import ReplaySettings

DATA = Path(__file__).resolve().parent.parent / "data"
EMBEDDED_TRACE = DATA / "nab_twitter_amzn.csv"
DAY = 86400.0
DEMO_SPAN_DAYS = 3.0
"""Days replayed of the embedded demo trace when no --span-days says (replay's quick
demo, and tune's: the shortest history tune splits into a day's test after two of tuning);
the whole trace is 48 days after the warm-up."""
PEAK_HELP = (
    "(default: half of max_replicas for the embedded demo trace, whose values are tweet "
    "counts; your own history replays as it is, unless given; 0: as it is)"
)


def example_config() -> Path:
    """config.example.yaml: in the working directory, else beside the package's checkout."""
    here = Path("config.example.yaml")
    if here.is_file():
        return here
    return Path(__file__).resolve().parents[2] / "config.example.yaml"


def add_simulation_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
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
        "--rebalance-seconds",
        type=float,
        default=0.0,
        metavar="S",
        help="how long the whole group stops processing at each membership change (a "
        "replica ready, one removed: Kafka's eager rebalance; default 0)",
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
        metavar="N",
        help=f"scale the history so that its 99th percentile needs N replicas {PEAK_HELP}",
    )
    target.add_argument(
        "--warmup-days", type=float, default=7.0, help="days used only to warm up (default 7)"
    )
    target.add_argument(
        "--span-days",
        type=float,
        help="use at most this many days after the warm-up (default: all of it; "
        f"{DEMO_SPAN_DAYS:g} of the embedded demo trace in tune, and in replay's default run)",
    )
    return target


def uses_embedded_trace(args: argparse.Namespace) -> bool:
    """No history named (a CSV, a Prometheus query, a fleet): the embedded demo trace."""
    named = ("history", "prometheus_url", "query", "fleet", "fleet_label")
    return not any(getattr(args, name, None) for name in named)


def peak_replicas(args: argparse.Namespace, target: TargetConfig) -> float | None:
    """What ``--peak-replicas`` scales the history for, the same in ``replay`` and ``tune``:
    as given (0: the values as they are), else half of ``max_replicas`` on the embedded
    demo trace (its values are tweets per 5 minutes: as messages/s they would never need a
    second replica), else None (a user's own history, or fleet, replays as recorded)."""
    if args.peak_replicas is not None:
        return float(args.peak_replicas)
    return target.max_replicas / 2 if uses_embedded_trace(args) else None


def demo_span_days(args: argparse.Namespace) -> float | None:
    """``--span-days`` as given; else ``DEMO_SPAN_DAYS`` on the embedded demo trace (tune
    over its whole 48 days would take hours on two cores); else None (all of it)."""
    if args.span_days is not None:
        return float(args.span_days)
    return DEMO_SPAN_DAYS if uses_embedded_trace(args) else None


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
        rebalance_seconds=getattr(args, "rebalance_seconds", 0.0),
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
    rebalance = getattr(args, "rebalance_seconds", 0.0)
    if not (math.isfinite(rebalance) and rebalance >= 0):
        raise TraceError(f"--rebalance-seconds must be a number >= 0, not {rebalance:g}")
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
