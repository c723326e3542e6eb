"""``autoscaler tune``: the cheapest settings that meet an SLO budget, found on history.

Takes the same history as ``replay`` (a CSV or a Prometheus range query) and the same
target, searches the settings grid (``autoscaler.tune.space``) on the earlier part of the
history, and prints: the split, the frontier of SLO-violation minutes against replica-hours
(tuning part, with each point's test-part figures), reactive KEDA, the KEDA frontier and the
oracle on the test part, and the recommended setting as a config fragment. ``--output DIR``
writes ``tune.json`` and ``config.yaml`` (the config with the recommendation applied, which
``autoscaler validate`` accepts) and ``report.html``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import yaml

from autoscaler.commands.options import (
    add_history_arguments,
    add_simulation_arguments,
    check_format_and_output,
    check_simulation_numbers,
    demo_span_days,
    draw_progress,
    load_target,
    load_trace,
    peak_replicas,
    simulation_settings,
)
from autoscaler.traces import TraceError

EXIT_OK, EXIT_INPUT = 0, 2


def add_parser(commands: Any) -> None:
    """Register ``tune`` under the ``autoscaler`` command."""
    parser = commands.add_parser(
        "tune",
        help="find the cheapest settings that meet an SLO budget, on history",
        description="Replay a target's history over a grid of settings (predictor and "
        "quantile, spare capacity, dwell time, scale-down window), choose on the earlier "
        "part of the history the cheapest setting whose SLO violations stay within the "
        "budget, and score it on the later part beside reactive KEDA, the KEDA frontier "
        "and the oracle.",
    )
    add_history_arguments(parser)
    add_simulation_arguments(parser)
    parser.add_argument(
        "--budget",
        type=float,
        default=1.0,
        metavar="PCT",
        help="share of the time the lag may exceed slo.max_lag_seconds, in %% (default 1)",
    )
    parser.add_argument(
        "--settings", type=int, default=150, metavar="N", help="settings to try (default 150)"
    )
    parser.add_argument(
        "--models",
        default="none,linear,seasonal_ridge,holt_winters",
        help="predictors to search (default: none,linear,seasonal_ridge,holt_winters)",
    )
    parser.add_argument(
        "--tune-share",
        type=float,
        default=2 / 3,
        metavar="F",
        help="share of the replayed span tuned on; the rest is the test (default 0.67)",
    )
    parser.add_argument(
        "--output",
        metavar="DIR",
        help="write tune.json (every setting's figures), report.html (their cost against "
        "their violations, beside KEDA and the oracle) and config.yaml (your config with the "
        "recommendation applied)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        metavar="N",
        help="groups of settings replayed at once, one process each (default: 2, or 1 on one core)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    from autoscaler.commands.fleet import add_fleet_arguments

    add_fleet_arguments(parser)
    parser.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace, stdout: TextIO | None = None) -> int:
    from autoscaler.replay.runs import kafka_trigger
    from autoscaler.tune.search import tune
    from autoscaler.tune.space import MODELS, sample

    out = stdout or sys.stdout
    chosen_target = load_target(args, "tune")
    if chosen_target is None:
        return EXIT_INPUT
    config_path, target = chosen_target
    _, _, trigger = kafka_trigger(target)
    try:
        if not (math.isfinite(args.budget) and 0 < args.budget < 100):
            raise TraceError(f"--budget must be a percentage in (0, 100), not {args.budget:g}")
        if not 0 < args.tune_share < 1:
            raise TraceError(f"--tune-share must be in (0, 1), not {args.tune_share:g}")
        if args.settings < 1:
            raise TraceError(f"--settings must be >= 1, not {args.settings}")
        models = tuple(m.strip() for m in args.models.split(",") if m.strip())
        unknown = [m for m in models if m not in MODELS]
        if not models or unknown:
            raise TraceError(
                f"--models: unknown {', '.join(unknown) or '(none given)'} "
                f"(known: {', '.join(MODELS)})"
            )
        check_simulation_numbers(args)
        check_format_and_output(args)
        throughput = args.per_replica_throughput or trigger.per_replica_throughput
        if throughput is None or not (math.isfinite(throughput) and throughput > 0):
            raise TraceError(
                f"target {target.name} has no per_replica_throughput: pass "
                "--per-replica-throughput (messages/s one replica processes)"
            )
        from autoscaler.commands.fleet import fleet_requested, tune_fleet

        settings = simulation_settings(
            args,
            target,
            throughput,
            peak=peak_replicas(args, target),
            span_days=demo_span_days(args),
            frontier=False,
        )
        candidates = sample(args.settings, models, budget_pct=args.budget)
        if fleet_requested(args):
            return tune_fleet(args, target, settings, candidates, out)
        trace = load_trace(args)
        progress = None if args.no_progress or not sys.stderr.isatty() else _progress_bar
        result = tune(
            target,
            trace,
            settings,
            candidates,
            args.budget,
            tune_share=args.tune_share,
            jobs=args.jobs,  # checked >= 1 up front
            progress=progress,
        )
    except TraceError as error:
        print(f"tune: {error}", file=sys.stderr)
        return EXIT_INPUT
    if progress is not None:
        print(file=sys.stderr)
    from autoscaler.tune.report import fragment_yaml, render, summary

    print(render(result, len(candidates)), file=out)
    chosen = result.recommended
    if chosen is not None and chosen.setting is not None:
        print(f"\nconfig fragment for target {target.name}:\n", file=out)
        print(fragment_yaml(chosen.setting, target.predictor.model), file=out)
    if args.output:
        directory = Path(args.output)
        directory.mkdir(parents=True, exist_ok=True)
        from autoscaler.tune.page import render_page

        (directory / "tune.json").write_text(json.dumps(summary(result), indent=2) + "\n")
        (directory / "report.html").write_text(render_page(result, len(candidates)))
        written = ["tune.json", "report.html"]
        if chosen is not None and chosen.setting is not None:
            fragment = chosen.setting.fragment(target.predictor.model)
            _write_config(Path(config_path), target.name, fragment, directory)
            written.append("config.yaml")
        print(f"wrote {', '.join(written)} to {directory}", file=out)
    return EXIT_OK


def _write_config(
    source: Path, target_name: str, fragment: dict[str, Any], directory: Path
) -> None:
    """The config with the recommendation merged into the target (comments are not kept:
    paste the fragment into your own file to keep them)."""
    document = yaml.safe_load(source.read_text(encoding="utf-8"))
    document["targets"] = [
        _merged(entry, fragment) if entry.get("name") == target_name else entry
        for entry in document.get("targets", [])
    ]
    (directory / "config.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def _merged(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``update`` merged in, as new mappings: a section the YAML shares
    between targets through an anchor is never changed in place. An empty mapping in
    ``update`` replaces (a new model's ``params: {}``)."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and value and isinstance(base.get(key), dict):
            merged[key] = _merged(base[key], value)
        else:
            merged[key] = value
    return merged


def _progress_bar(done: int, total: int) -> None:
    draw_progress(done, total, "groups of settings")
