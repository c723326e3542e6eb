"""The receding-horizon planner against today's sizing, the oracle and KEDA, on every
shared real trace (issue #20's "default config, no tune" bar).

Run from the repository root::

    python benchmarks/planner.py [--traces a,b] [--days 14] [--models auto] [--jobs 2]

Protocol: the first target of ``config.example.yaml`` as it is (its predictor, budget,
behavior and actuation), at 30 s polls, 60 s start-up and a 120 s SLO, with the 1 % SLO
budget; each trace scaled so that its 99th percentile needs 25 replicas of 250 msg/s; 7 days
of warm-up, then ``--days`` replayed. For each model: the planned run (``planner`` on, the
default) and ``<model>/sized`` (``planner: none``, one number per poll as before), replayed
in the same run, through the same simulator, beside reactive KEDA, the KEDA frontier and
the oracle's integer schedule.

Bars: the planned run costs fewer replica-hours than the sized one at no more SLO-violation
minutes, on every trace; its replica-hours against the oracle's are printed (the issue's
aim: within 1.10x at the budget, out of sample after ``tune``), and its scale events beside
reactive KEDA's. The planner's cost per poll is the planned run's time less the sized run's,
per poll (both include the same forecasting).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoscaler.config import load_config  # noqa: E402 - after the path set-up above
from autoscaler.config.model import TargetConfig  # noqa: E402
from autoscaler.replay.engine import ReplaySettings, replay  # noqa: E402
from autoscaler.traces import load_csv  # noqa: E402

DAY = 86400.0
TRACES = ROOT.parent / "shared" / "traces"
POLL_SECONDS = 30.0
STARTUP_SECONDS = 60.0
SLO_SECONDS = 120.0
BUDGET_PERCENT = 1.0
THROUGHPUT = 250.0


def benchmark_target(event_cost: float | None = None) -> TargetConfig:
    target = load_config(ROOT / "config.example.yaml").targets[0]
    if event_cost is not None:
        planner = target.planner.model_copy(update={"scale_event_cost_seconds": event_cost})
        target = target.model_copy(update={"planner": planner})
    slo = target.slo.model_copy(
        update={"max_lag_seconds": SLO_SECONDS, "budget_percent": BUDGET_PERCENT}
    )
    return target.model_copy(
        update={
            "poll_interval_seconds": POLL_SECONDS,
            "startup_seconds": STARTUP_SECONDS,
            "slo": slo,
        }
    )


def run_trace(
    name: str, days: float, models: list[str], jobs: int, event_cost: float | None = None
) -> dict[str, Any]:
    target = benchmark_target(event_cost)
    settings = ReplaySettings(
        per_replica_throughput=THROUGHPUT,
        startup_seconds=STARTUP_SECONDS,
        poll_interval_seconds=POLL_SECONDS,
        partitions=None,
        peak_replicas=target.max_replicas / 2,
        span_seconds=days * DAY,
    )
    runs = ["reactive", *(r for m in models for r in (m, f"{m}/sized")), "oracle"]
    started = time.perf_counter()
    result = replay(target, load_csv(TRACES / f"{name}.csv"), settings, runs, jobs=jobs)
    elapsed = time.perf_counter() - started
    summary = result.summary()
    by_run = {r["predictor"]: r for r in summary["results"]}
    frontier = summary["keda_frontier"]
    return {
        "trace": name,
        "days": days,
        "steps": summary["steps"],
        "seconds": elapsed,
        "runs": by_run,
        "keda_frontier": frontier,
        "oracle_lower_bound_replica_hours": summary["oracle_lower_bound_replica_hours"],
        "unavoidable_violation_minutes": summary["unavoidable_violation_minutes"],
    }


def _row(name: str, r: dict[str, Any], oracle: dict[str, Any]) -> str:
    ratio = r["replica_hours"] / oracle["replica_hours"]
    return (
        f"  {name:<22}{r['replica_hours']:>10,.1f}{r['slo_violation_minutes']:>9.1f}"
        f"{r['slo_violation_pct']:>7.2f}{r['scale_events']:>8,}{ratio:>8.2f}x"
    )


def render(results: list[dict[str, Any]], models: list[str]) -> str:
    lines: list[str] = []
    met_all = True
    for res in results:
        runs = res["runs"]
        oracle = runs["oracle"]
        lines.append(
            f"{res['trace']}: {res['days']:g} days, {res['steps']} polls of {POLL_SECONDS:g}s, "
            f"start-up {STARTUP_SECONDS:g}s, SLO {SLO_SECONDS:g}s, budget {BUDGET_PERCENT:g}%; "
            f"oracle bound {res['oracle_lower_bound_replica_hours']:,.1f} rep-h, "
            f"{res['unavoidable_violation_minutes']:.1f} unavoidable viol-min"
        )
        lines.append(
            f"  {'run':<22}{'rep-h':>10}{'viol-min':>9}{'viol%':>7}{'events':>8}{'/oracle':>9}"
        )
        for name in ["reactive", *(r for m in models for r in (m, f"{m}/sized")), "oracle"]:
            lines.append(_row(name, runs[name], oracle))
        best_keda = min(
            (k for k in res["keda_frontier"] if k["slo_violation_pct"] <= BUDGET_PERCENT),
            key=lambda k: k["replica_hours"],
            default=None,
        )
        if best_keda is not None:
            lines.append(
                f"  {'keda frontier best':<22}{best_keda['replica_hours']:>10,.1f}"
                f"{best_keda['slo_violation_minutes']:>9.1f}{best_keda['slo_violation_pct']:>7.2f}"
                f"{best_keda['scale_events']:>8,}"
                f"{best_keda['replica_hours'] / oracle['replica_hours']:>8.2f}x"
                f"  (lag_threshold {best_keda['lag_threshold']}, within the budget)"
            )
        for model in models:
            planned, sized = runs[model], runs[f"{model}/sized"]
            cheaper = planned["replica_hours"] < sized["replica_hours"]
            no_worse = planned["slo_violation_minutes"] <= sized["slo_violation_minutes"]
            met = cheaper and no_worse
            met_all &= met
            per_poll = (planned["runtime_seconds"] - sized["runtime_seconds"]) / res["steps"] * 1e3
            lines.append(
                f"  bar {model} planned vs sized {'MET' if met else 'MISSED'}: "
                f"{100 * (planned['replica_hours'] / sized['replica_hours'] - 1):+.1f}% "
                f"replica-hours, {planned['slo_violation_minutes']:.1f} vs "
                f"{sized['slo_violation_minutes']:.1f} violation minutes, "
                f"{planned['scale_events']} vs {sized['scale_events']} scale events "
                f"(reactive {runs['reactive']['scale_events']}); planner {per_poll:.2f} ms "
                "per poll"
            )
        lines.append("")
    lines.append(
        f"default-config bar (planned cheaper at no more violation) on every trace: "
        f"{'MET' if met_all else 'MISSED'}"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traces", help="comma-separated trace names (default: all)")
    parser.add_argument("--days", type=float, default=14.0)
    parser.add_argument("--models", default="auto", help="comma-separated models")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--event-cost", type=float, help="planner.scale_event_cost_seconds (default: the file's)"
    )
    parser.add_argument("--output", help="write the table here and the figures beside (.json)")
    args = parser.parse_args()
    names = args.traces.split(",") if args.traces else sorted(p.stem for p in TRACES.glob("*.csv"))
    models = [m for m in args.models.split(",") if m]
    results = [run_trace(name, args.days, models, args.jobs, args.event_cost) for name in names]
    text = render(results, models)
    print(text)
    if args.output:
        out = Path(args.output)
        out.write_text(text + "\n")
        out.with_suffix(".json").write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
