"""What ``replay --output DIR`` leaves behind.

* ``summary.json``: ``ReplayResult.summary()`` as is (``allow_nan=False``: the summary
  already writes None for a non-finite number, and a NaN would make the file invalid JSON).
* ``timeseries-<run>.csv``, one per run, so that every number of the summary can be
  recomputed from files alone: ``timestamp`` is ISO-8601 UTC (``2015-02-26T21:42:53Z``;
  fractional seconds only when the time has them), the end of the step, as the simulator
  reports it; ``forecast`` is empty where the run made none; ``lag_seconds`` is ``inf``
  where lag had no ready replica to drain it; ``replicas`` (last) is what replica-hours
  bill. Floats are written with ``repr``, which reads back to the same float.
* ``report.html`` (``page``): one file that opens offline: inline CSS and SVG, no script,
  no URL.

Scale events: the simulator counts the polls whose decision changed the replica count,
so a run's count is the number of rows where ``desired_replicas != replicas``.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

from autoscaler.replay.engine import ReplayResult
from autoscaler.replay.simulator import Timeline
from autoscaler.report.page import render_html
from autoscaler.report.tables import iso_utc

CSV_COLUMNS = (
    "timestamp",
    "arrival_rate",
    "forecast",
    "desired_replicas",
    "ready_replicas",
    "lag_messages",
    "lag_seconds",
    "replicas",
)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def write_report(result: ReplayResult, output_dir: Path) -> list[Path]:
    """Write ``summary.json``, one CSV per run and ``report.html``; return their paths."""
    for name in result.timelines:
        if not _SAFE_NAME.match(name):
            raise ValueError(f"run name {name!r} cannot be part of a file name")
    output_dir.mkdir(parents=True, exist_ok=True)
    summary = result.summary()
    written = [output_dir / "summary.json"]
    with written[0].open("w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2, allow_nan=False)
        handle.write("\n")
    for name, timeline in result.timelines.items():
        path = output_dir / f"timeseries-{name}.csv"
        write_timeseries(timeline, path)
        written.append(path)

    html_path = output_dir / "report.html"
    html_path.write_text(render_html(result, summary), encoding="utf-8")
    written.append(html_path)
    return written


def write_timeseries(timeline: Timeline, path: Path) -> None:
    columns: list[list[str]] = [
        [iso_utc(t) for t in timeline.timestamps.tolist()],
        [repr(v) for v in timeline.arrival_rate.tolist()],
        ["" if math.isnan(v) else repr(v) for v in timeline.forecast.tolist()],
        [str(v) for v in timeline.desired_replicas.tolist()],
        [str(v) for v in timeline.ready_replicas.tolist()],
        [repr(v) for v in timeline.lag_messages.tolist()],
        [repr(v) for v in timeline.lag_seconds.tolist()],
        [str(v) for v in timeline.replicas.tolist()],
    ]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows(zip(*columns, strict=True))
