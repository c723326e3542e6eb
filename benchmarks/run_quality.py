"""MASE, cost and CPU time of runs on every shared trace, as ``replay.py`` replays them.

Run from a checkout's root (to compare two commits, run it in each, side by side)::

    python benchmarks/run_quality.py --runs auto --output /tmp/quality.json [--span-days 14]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import replay as bench  # noqa: E402 - after the path set-up above

from autoscaler.replay.engine import prepare, run_one  # noqa: E402

KEYS = ("forecast_mase", "replica_hours", "slo_violation_minutes", "scale_events")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default="auto", help="comma-separated run names")
    parser.add_argument("--span-days", type=float, default=14.0)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    target = bench._target()
    report = {}
    for path in sorted(bench.TRACES.glob("*.csv")):
        trace = bench.load_csv(path, "count")
        settings = replace(bench._settings(target, args.span_days, 250.0), frontier=False)
        job = prepare(target, trace, settings)
        for run in args.runs.split(","):
            started = time.process_time()
            _, summary, _ = run_one(job, run)
            row = {**{k: summary[k] for k in KEYS}, "cpu_seconds": time.process_time() - started}
            report[f"{path.stem}/{run}"] = row
            print(path.stem, run, row, flush=True)
    Path(args.output).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
