"""``autoscaler tune`` on every shared real trace, and the issue #13 bars it is measured by.

Run from the repository root::

    python benchmarks/tune.py [--traces a,b] [--settings 150] [--budget 1]

Protocol: the replay benchmark's target (the first of ``config.example.yaml``: 250 msg/s
per replica, 60 s start-up and SLO), 60 s polls, each trace scaled so that its 99th
percentile needs 25 replicas, 7 days of warm-up, then 14 days: tuned on the first 2/3
(9.3 days), scored on the last 1/3 (4.7 days). 150 settings of the fixed grid (``tune``'s
default), budget 1 % of the time over the SLO.

Bars (issue #13), on the test part: the recommended setting has SLO-violation minutes
<= 50 % of reactive KEDA's, replica-hours <= 95 % of reactive's and at least 5x fewer
scale events; the oracle is printed beside it (the long-term aim: within 5 % of its
replica-hours). Where the oracle itself (perfect foresight, the cheapest schedule under the
physics alone) violates the SLO for more than 50 % of reactive's minutes on the test part,
no setting can meet the violation bar: the output says so. Speed: one 14-day tune over >= 50
settings in < 10 min.
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
from autoscaler.replay.engine import ReplaySettings  # noqa: E402
from autoscaler.traces import load_csv  # noqa: E402
from autoscaler.tune.report import render  # noqa: E402
from autoscaler.tune.search import tune  # noqa: E402
from autoscaler.tune.space import sample  # noqa: E402

DAY = 86400.0
TRACES = ROOT.parent / "shared" / "traces"


def bars(result: Any) -> dict[str, Any]:
    chosen = result.recommended
    by_name = {b.name: b for b in result.baselines}
    reactive, oracle = by_name["reactive"].test, by_name["oracle"].test
    if chosen is None:
        return {"met": False, "why": "no setting within the budget on the tuning part"}
    test = chosen.test
    # Reactive without a violation: the bar is met only by none either (ratio 0 or 1).
    if reactive["slo_violation_minutes"] > 0:
        minutes = test["slo_violation_minutes"] / reactive["slo_violation_minutes"]
    else:
        minutes = 0.0 if test["slo_violation_minutes"] == 0 else 1.0
    hours = test["replica_hours"] / reactive["replica_hours"]
    events = reactive["scale_events"] / max(test["scale_events"], 1)
    return {
        "setting": chosen.name,
        "violation_minutes_vs_reactive": minutes,
        "violation_minutes": test["slo_violation_minutes"],
        "reactive_violation_minutes": reactive["slo_violation_minutes"],
        "replica_hours_vs_reactive": hours,
        "fewer_scale_events_x": events,
        "replica_hours_vs_oracle": test["replica_hours"] / oracle["replica_hours"],
        "violation_pct": test["slo_violation_pct"],
        "oracle_violation_pct": oracle["slo_violation_pct"],
        "scale_events": test["scale_events"],
        "reactive_scale_events": reactive["scale_events"],
        "oracle_violation_minutes_vs_reactive": oracle["slo_violation_minutes"]
        / reactive["slo_violation_minutes"]
        if reactive["slo_violation_minutes"]
        else 0.0,
        "violations_met": minutes <= 0.5,
        "cost_met": hours <= 0.95,
        "events_met": events >= 5,
        "met": minutes <= 0.5 and hours <= 0.95 and events >= 5,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traces", help="comma-separated trace names (default: all)")
    parser.add_argument("--settings", type=int, default=150)
    parser.add_argument("--budget", type=float, default=1.0)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "tune"))
    parser.add_argument("--poll-interval", type=float, default=60.0)
    parser.add_argument("--slo", type=float, help="slo.max_lag_seconds (default: the file's)")
    parser.add_argument("--tune-share", type=float, default=2 / 3, help="share tuned on")
    parser.add_argument("--days", type=float, default=14.0, help="replayed after the warm-up")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    names = args.traces.split(",") if args.traces else sorted(p.stem for p in TRACES.glob("*.csv"))
    target = load_config(ROOT / "config.example.yaml").targets[0]
    if args.slo is not None:
        slo = target.slo.model_copy(update={"max_lag_seconds": args.slo})
        target = target.model_copy(update={"slo": slo})
    target = target.model_copy(update={"poll_interval_seconds": args.poll_interval})
    settings = ReplaySettings(
        250.0, 60.0, args.poll_interval, 50, 25, 7 * DAY, args.days * DAY, frontier=False
    )
    candidates = sample(args.settings, budget_pct=args.budget)
    report: dict[str, Any] = {}
    for name in names:
        started = time.perf_counter()
        result = tune(
            target,
            load_csv(TRACES / f"{name}.csv", "count"),
            settings,
            candidates,
            args.budget,
            tune_share=args.tune_share,
            jobs=args.jobs,
        )
        elapsed = time.perf_counter() - started
        figures = bars(result)
        report[name] = {"seconds": elapsed, **figures}
        print(f"\n{render(result, len(candidates))}")
        if "setting" in figures:
            out_of_reach = figures["oracle_violation_minutes_vs_reactive"] > 0.5
            print(
                f"  bars: violation minutes {figures['violation_minutes']:.0f} against reactive's "
                f"{figures['reactive_violation_minutes']:.0f} (<= 50%: "
                f"{'MET' if figures['violations_met'] else 'MISSED'}), "
                f"replica-hours {100 * figures['replica_hours_vs_reactive']:.0f}% "
                f"(<= 95%: {'MET' if figures['cost_met'] else 'MISSED'}), "
                f"{figures['fewer_scale_events_x']:.1f}x fewer scale events "
                f"(>= 5x: {'MET' if figures['events_met'] else 'MISSED'}); "
                f"{100 * (figures['replica_hours_vs_oracle'] - 1):+.0f}% replica-hours vs the "
                f"oracle (whose violation minutes are "
                f"{100 * figures['oracle_violation_minutes_vs_reactive']:.0f}% of reactive's"
                f"{': the violation bar is out of reach' if out_of_reach else ''}); "
                f"tune took {elapsed:.0f} s for {len(candidates)} settings "
                f"(< 600 s: {'MET' if elapsed < 600 else 'MISSED'})"
            )
            within = figures["violation_pct"] <= args.budget
            reachable = figures["oracle_violation_pct"] < args.budget
            events_met = figures["scale_events"] <= figures["reactive_scale_events"]
            print(
                f"  planner bars (issue #20): replica-hours "
                f"{figures['replica_hours_vs_oracle']:.2f}x the oracle's (<= 1.10x: "
                f"{'MET' if figures['replica_hours_vs_oracle'] <= 1.10 else 'MISSED'}); "
                f"{figures['violation_pct']:.2f}% of the time over the SLO (budget "
                f"{args.budget:g}%: {'MET' if within else 'MISSED'}"
                f"{'' if reachable else ', the oracle itself is over it'}); "
                f"{figures['scale_events']} scale events vs reactive's "
                f"{figures['reactive_scale_events']} (no more: "
                f"{'MET' if events_met else 'MISSED'})"
            )
        else:
            print(f"  bars MISSED: {figures['why']}")
    met = [t for t, r in report.items() if r.get("met")]
    print(f"\ntune quality bar met on {len(met)} of {len(report)} traces: {', '.join(met)}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.output}.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
