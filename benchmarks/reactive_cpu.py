"""The CPU time of the speed bar's reactive run alone, best of a few (process time).

Run from the repository root::

    python benchmarks/reactive_cpu.py [--repeat 5]

The run is the speed bar's (``benchmarks/replay.py --speed-only``): the NASA trace, 30 days
at 60 s polls (43,200 steps), the example's first target without its SLO budget, as the
``reactive`` run. ``replay.py`` reports the wall time of the best of three; on a machine
shared with other work the CPU time of this process (``time.process_time``) moves far
less, so old and new code are compared on it, run alternately in the same session.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import replay as bench  # noqa: E402 - after the path set-up above

from autoscaler.replay.engine import prepare, run_one  # noqa: E402
from autoscaler.traces import load_csv  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    target = bench._target()
    throughput = target.triggers[0].per_replica_throughput or 250.0  # type: ignore[union-attr]
    trace = load_csv(bench.TRACES / "nasa_http_5min.csv", "count")
    settings = replace(bench._settings(target, 30.0, throughput), frontier=False)
    job = prepare(target, trace, settings)
    steps = len(job.times)
    seconds = []
    for _ in range(args.repeat):
        started = time.process_time()
        run_one(job, "reactive")
        seconds.append(time.process_time() - started)
    best = min(seconds)
    print(
        f"reactive: {steps} steps, CPU best {best:.3f} s of "
        f"{', '.join(f'{s:.3f}' for s in seconds)}: {steps / best:,.0f} steps/s "
        f"({1e6 * best / steps:.1f} us a step)"
    )


if __name__ == "__main__":
    main()
