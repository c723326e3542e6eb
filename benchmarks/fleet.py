"""A fleet of 20 workloads replayed on a 2-worker LocalCluster: the same results as in this
process, and each worker's peak memory flat in the number of workloads.

Run from the repository root::

    python benchmarks/fleet.py [--workloads 20] [--span-days 7]

Protocol
--------
* Workloads: the shared traces, each cut into windows of ``--span-days`` plus 3 days of
  warm-up, offset by a day from one another, until there are ``--workloads``; written as a
  folder of CSVs (``--fleet DIR``, as a user would).
* Each workload: the first target of ``config.example.yaml`` at 60 s polls, runs
  ``reactive`` and ``auto`` (its model), replayed through ``autoscaler replay --fleet``.
* Bar (issue #13): the fleet finishes on a 2-worker LocalCluster, and its fleet.json is
  identical to the in-process run's (``--workers 1``).
* Memory bar: each worker's peak RSS after a fleet of 5 and after a fleet of 20 (fresh
  clusters): flat (the 20-workload peak within 1.25x of the 5-workload one).
* Wall times are quoted as a ratio: the LocalCluster against the in-process run, measured
  in the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoscaler.cli import main as cli  # noqa: E402 - after the path set-up above
from autoscaler.fleet.engine import Dask, fan_out, worker_peak_memory  # noqa: E402

TRACES = ROOT.parent / "shared" / "traces"
DAY = 86400.0


def make_fleet(folder: Path, count: int, span_days: float) -> list[Path]:
    """``count`` CSVs cut from the shared traces (rows as they are, header kept)."""
    written: list[Path] = []
    sources = sorted(TRACES.glob("*.csv"))
    offset_days = 0
    while len(written) < count:
        for source in sources:
            if len(written) == count:
                break
            header, *rows = source.read_text().splitlines()
            per_day = _rows_per_day(rows)
            start = int(offset_days * per_day)
            stop = start + int((span_days + 3) * per_day)
            if stop > len(rows):
                continue
            path = folder / f"{source.stem}-day{offset_days}.csv"
            path.write_text("\n".join([header, *rows[start:stop]]) + "\n")
            written.append(path)
        offset_days += 1
    return written


def _rows_per_day(rows: list[str]) -> float:
    from autoscaler.traces import parse_timestamp

    first = parse_timestamp(rows[0].split(",")[0])
    second = parse_timestamp(rows[1].split(",")[0])
    return DAY / (second - first)


def replay_fleet(folder: Path, out: Path, workers: int, span_days: float) -> float:
    started = time.perf_counter()
    code = cli(
        ["replay", "--fleet", str(folder), "--poll-interval", "60", "--warmup-days", "3",
         "--peak-replicas", "25",
         "--span-days", str(span_days), "--no-progress", "--workers", str(workers),
         "--output", str(out)]
    )  # fmt: skip
    if code != 0:
        raise SystemExit(f"fleet replay failed with exit code {code}")
    return time.perf_counter() - started


def _peak_after(folder: Path, span_days: float) -> list[int]:
    """Each worker's peak RSS after replaying ``folder`` on a fresh 2-worker cluster."""
    from distributed import LocalCluster

    from autoscaler.commands.options import example_config
    from autoscaler.config import load_config
    from autoscaler.fleet.workloads import ReplayTask, replay_workload, workloads_in
    from autoscaler.replay.engine import ReplaySettings

    target = load_config(example_config()).targets[0]

    settings = ReplaySettings(250.0, target.startup_seconds, 60.0, target.max_replicas,
                              target.max_replicas / 2, 3 * DAY, span_days * DAY,
                              frontier=False)  # fmt: skip
    workloads = workloads_in(str(folder), "count")
    tasks = [ReplayTask(w, target, settings, ("reactive", "auto")) for w in workloads]
    with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=40,
    ) as cluster:
        engine = Dask(cluster.scheduler_address)
        fan_out(replay_workload, tasks, engine)
        peaks = worker_peak_memory(engine)
    return sorted(peaks.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", type=int, default=20)
    parser.add_argument("--span-days", type=float, default=7.0)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "fleet"))
    args = parser.parse_args()
    report: dict[str, Any] = {"workloads": args.workloads, "span_days": args.span_days}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        fleet = root / "fleet"
        fleet.mkdir()
        make_fleet(fleet, args.workloads, args.span_days)
        serial_seconds = replay_fleet(fleet, root / "serial", 1, args.span_days)
        dask_seconds = replay_fleet(fleet, root / "dask", 2, args.span_days)
        serial = json.loads((root / "serial" / "fleet.json").read_text())
        on_dask = json.loads((root / "dask" / "fleet.json").read_text())
        identical = serial == on_dask
        small = root / "small"
        small.mkdir()
        for path in sorted(fleet.glob("*.csv"))[:5]:
            (small / path.name).write_text(path.read_text())
        peaks_5 = _peak_after(small, args.span_days)
        peaks_n = _peak_after(fleet, args.span_days)
    flat = max(peaks_n) <= 1.25 * max(peaks_5)
    report.update(
        {
            "identical_to_in_process": identical,
            "in_process_seconds": serial_seconds,
            "local_cluster_seconds": dask_seconds,
            "speedup": serial_seconds / dask_seconds,
            "worker_peak_rss_mb_5": [p / 2**20 for p in peaks_5],
            f"worker_peak_rss_mb_{args.workloads}": [p / 2**20 for p in peaks_n],
            "memory_flat": flat,
            "ranking": serial["ranking"],
        }
    )
    print(f"fleet of {args.workloads} workloads ({args.span_days:g} days each, reactive + auto):")
    print(
        f"  in this process {serial_seconds:.0f} s; 2-worker LocalCluster {dask_seconds:.0f} s "
        f"({serial_seconds / dask_seconds:.2f}x)"
    )
    print(f"  bar identical results on the LocalCluster {'MET' if identical else 'MISSED'}")
    print(
        f"  bar memory flat {'MET' if flat else 'MISSED'}: worker peak RSS "
        f"{max(peaks_5) / 2**20:.0f} MB after 5 workloads, "
        f"{max(peaks_n) / 2**20:.0f} MB after {args.workloads}"
    )
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.output}.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
