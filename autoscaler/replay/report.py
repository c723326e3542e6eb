"""What ``replay --output DIR`` leaves behind, and the table it prints.

* ``summary.json``: ``ReplayResult.summary()`` as is (``allow_nan=False``: the summary
  already writes None for a non-finite number, and a NaN would make the file invalid JSON).
* ``timeseries-<run>.csv``, one per run, so that every number of the summary can be
  recomputed from files alone: ``timestamp`` is ISO-8601 UTC (``2015-02-26T21:42:53Z``;
  fractional seconds only when the time has them), the end of the step, as the simulator
  reports it; ``forecast`` is empty where the run made none; ``lag_seconds`` is ``inf``
  where lag had no ready replica to drain it; ``replicas`` (last) is what replica-hours
  bill. Floats are written with ``repr``, which reads back to the same float.
* ``report.html``: one file that opens offline: inline CSS and SVG, no script, no URL.

Scale events: the simulator counts the polls whose decision changed the replica count,
so a run's count is the number of rows where ``desired_replicas != replicas``.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any, Literal

import numpy as np

from autoscaler.replay.engine import ReplayResult
from autoscaler.replay.runs import ORACLE, ORACLE_BEHAVIOR, REACTIVE, REFERENCE_RUNS
from autoscaler.replay.simulator import Timeline
from autoscaler.replay.svg import (
    Chart,
    HLine,
    Series,
    downsample_mean,
    downsample_minmax,
    nice_ceiling,
    render,
)

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
LAG_CLIP_SLO_MULTIPLE = 10.0
"""The lag plots stop at this many times the SLO: beyond it, the SLO line would be lost."""

_PALETTE = ("#4e79a7", "#e15759", "#59a14f", "#b07aa1", "#f28e2b", "#76b7b2", "#9c755f")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class _Column:
    key: str
    header: str
    short: str
    spec: str
    better: Literal["min", "max"] | None
    none_is_infinite: bool = False
    """The summary writes None for a non-finite number: for lag, that is an infinite one."""


COLUMNS = (
    _Column("predictor", "predictor", "predictor", "", None),
    _Column("replica_hours", "replica-hours (vs reactive)", "rep-h", ",.1f", "min"),
    _Column("efficiency", "efficiency", "eff", ".3f", "max"),
    _Column(
        "slo_violation_minutes", "SLO-violation minutes (vs reactive)", "SLO min", ",.1f", "min"
    ),
    _Column("slo_violation_pct", "SLO violation %", "SLO %", ".2f", "min"),
    _Column("lag_seconds_p50", "lag p50 (s)", "p50 s", ",.1f", "min", True),
    _Column("lag_seconds_p99", "lag p99 (s)", "p99 s", ",.1f", "min", True),
    _Column("lag_seconds_max", "lag max (s)", "max s", ",.1f", "min", True),
    _Column("scale_events", "scale events", "events", ",d", "min"),
    _Column("forecast_mae", "forecast MAE (msg/s)", "MAE", ",.2f", "min"),
    _Column("forecast_mase", "forecast MASE", "MASE", ".3f", "min"),
    _Column("runtime_seconds", "runtime (s)", "run s", ",.2f", None),
)
"""The comparison, in the order of both tables. Runtime is not ranked: the runs without a
model are always fastest, which says nothing about them."""


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


def iso_utc(timestamp: float) -> str:
    """``2015-02-26T21:42:53Z``; microseconds only when the time is not whole seconds."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0") + "Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- the tables


def comparison_table(summary: dict[str, Any]) -> str:
    """The terminal table: one aligned row per run, then each run's change vs reactive."""
    results: list[dict[str, Any]] = summary["results"]
    rows = [[c.short for c in COLUMNS]]
    rows += [[_cell(c, r.get(c.key), ascii_only=True) for c in COLUMNS] for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    changes = changes_vs_reactive(results)
    return "\n".join(lines + ([""] if changes else []) + changes + frontier_lines(summary))


def table_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The terminal table as data (``replay -o json|yaml``): one row per run, the table's
    columns by their summary.json names, numbers unrounded (None where not finite)."""
    return [{c.key: run.get(c.key) for c in COLUMNS} for run in summary["results"]]


def frontier_lines(summary: dict[str, Any]) -> list[str]:
    """The KEDA frontier as a small table, then where each run stands against it."""
    frontier: list[dict[str, Any]] = summary.get("keda_frontier") or []
    if not frontier:
        return []
    lines = [
        "",
        "KEDA frontier: reactive at other lag thresholds (lag per replica; "
        f"{_in_flight(summary):g} is one saturated replica's in-flight lag)",
    ]
    rows = [["lag_threshold", "rep-h", "SLO min", "SLO %", "events"]] + [
        [
            str(p["lag_threshold"]),
            f"{p['replica_hours']:,.1f}",
            f"{p['slo_violation_minutes']:,.1f}",
            f"{p['slo_violation_pct']:.2f}",
            f"{p['scale_events']:,d}",
        ]
        for p in frontier
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines += ["  " + "  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    for run in summary["results"]:
        standing = run.get("keda_frontier")
        if standing is not None:
            lines.append(f"{run['predictor']} vs the KEDA frontier: {standing_text(standing)}")
    return lines


def standing_text(standing: dict[str, Any]) -> str:
    best = standing["best_keda_costing_as_much"]
    if best is None:
        verdict = "costs more than every lag threshold"
    else:
        threshold = best["lag_threshold"]
        minutes, hours = best["slo_violation_minutes"], best["replica_hours"]
        verdict = (
            "ahead: no lag threshold costing as much or more does as well (the best of them, "
            f"{threshold}: {minutes:,.1f} min at {hours:,.1f} rep-h)"
            if standing["beats_frontier"]
            else f"not ahead: lag threshold {threshold}, costing as much or more "
            f"({hours:,.1f} rep-h), violates no longer ({minutes:,.1f} min)"
        )
    dominated = standing["dominated_by"]
    if dominated:
        verdict += f"; dominated by lag threshold {', '.join(map(str, dominated))}"
    return verdict


def _in_flight(summary: dict[str, Any]) -> float:
    frontier = summary["keda_frontier"]
    return float(sorted(p["lag_threshold"] for p in frontier)[len(frontier) // 2])


def knowledge_line(summary: dict[str, Any]) -> str:
    """What the replayed target knew of the per-replica throughput, against the truth."""
    info = summary.get("throughput") or {}
    true = info.get("true")
    configured = info.get("configured")
    if configured is not None:
        told = f"configured {configured:g} msg/s"
        if true is not None and configured != true:
            told += f" ({100.0 * (configured - true) / true:+.0f}% off the truth)"
        return (
            f"per-replica throughput: true {true:g} msg/s (simulated); the target uses the {told}"
        )
    learned = [
        f"{r['predictor']} {r['throughput_learned_final']:.4g} after "
        f"{r['throughput_learned_after_hours']:.1f} h"
        for r in summary["results"]
        if r.get("throughput_source") == "learned" and r.get("throughput_learned_final")
    ]
    not_learned = [
        r["predictor"] for r in summary["results"] if r.get("throughput_source") == "not learned"
    ]
    text = (
        f"per-replica throughput: true {true:g} msg/s (simulated); the target configures none "
        "and learns it as live (KEDA's lag formula until then)"
    )
    if learned:
        text += f": learned {'; '.join(learned)}"
    if not_learned:
        text += f"; never saturated, so never learned: {', '.join(not_learned)}"
    return text


LEGEND = (
    "rep-h: replica-hours paid; eff: work done / capacity paid; SLO min, SLO %: time the lag "
    "took longer than the SLO to drain; p50/p99/max s: that drain time; events: replica "
    "changes (each a consumer-group rebalance); MAE, MASE: forecast error (MASE < 1 beats "
    "repeating the last value); oracle: the cheapest schedule meeting the SLO with perfect "
    "foresight, a floor no autoscaler reaches"
)


def verdict(summary: dict[str, Any]) -> str:
    """One line: which run to prefer here, and at what cost, against reactive KEDA."""
    results: list[dict[str, Any]] = summary["results"]
    base = next((r for r in results if r["predictor"] == REACTIVE), None)
    candidates = [r for r in results if r["predictor"] not in (REACTIVE, ORACLE, ORACLE_BEHAVIOR)]
    if base is None or not candidates:
        return ""
    no_worse = [
        r for r in candidates if r["slo_violation_minutes"] <= base["slo_violation_minutes"]
    ]
    if no_worse:
        best = min(no_worse, key=lambda r: (r["replica_hours"], r["slo_violation_minutes"]))
        hours = percent_change(best["replica_hours"], base["replica_hours"]) or "n/a"
        return (
            f"verdict: {best['predictor']} is the cheapest run that violates the SLO no longer "
            f"than reactive KEDA: {hours} replica-hours, {best['slo_violation_minutes']:,.1f} "
            f"vs {base['slo_violation_minutes']:,.1f} SLO-violation minutes"
        )
    least = min(candidates, key=lambda r: (r["slo_violation_minutes"], r["replica_hours"]))
    return (
        f"verdict: every run violates the SLO longer than reactive KEDA here; the least is "
        f"{least['predictor']} ({least['slo_violation_minutes']:,.1f} vs "
        f"{base['slo_violation_minutes']:,.1f} minutes): try more spare capacity "
        "(slo.target_utilization) or autoscaler tune"
    )


NEXT_STEPS = (
    "next: --output DIR writes report.html (charts), summary.json and a CSV per run; "
    "--history your.csv or --prometheus-url URL --query 'sum(rate(...))' replays your own "
    "history; autoscaler tune finds the cheapest settings within an SLO budget"
)


def changes_vs_reactive(results: Sequence[dict[str, Any]]) -> list[str]:
    """One line per run other than ``reactive``: the SLO gained for the replicas paid."""
    base = next((r for r in results if r["predictor"] == REACTIVE), None)
    if base is None:
        return []
    lines = []
    for run in results:
        if run is base:
            continue
        hours = percent_change(run["replica_hours"], base["replica_hours"])
        minutes = percent_change(run["slo_violation_minutes"], base["slo_violation_minutes"])
        slo = (
            f"SLO-violation minutes {minutes} vs reactive"
            if minutes is not None
            else f"{run['slo_violation_minutes']:,.1f} SLO-violation minutes (reactive: 0)"
        )
        cost = f"{hours} replica-hours" if hours is not None else "n/a replica-hours"
        lines.append(f"{run['predictor']}: {slo} at {cost}")
    return lines


def percent_change(value: float | None, base: float | None) -> str | None:
    """``-53%``/``+2.6%`` (one decimal under 10%); None when the base is zero or missing."""
    if value is None or base is None or base == 0:
        return "0%" if value == 0 and base == 0 else None
    change = 100.0 * (value - base) / base
    text = f"{change:+.1f}%" if abs(change) < 10 else f"{change:+.0f}%"
    return "0%" if text in ("+0.0%", "-0.0%") else text


def _cell(column: _Column, value: Any, ascii_only: bool = False) -> str:
    if column.key == "predictor":
        return str(value)
    if value is None:
        if column.none_is_infinite:
            return "inf" if ascii_only else "∞"
        return "-" if ascii_only else "–"
    return format(value, column.spec)


def _best_rows(column: _Column, results: Sequence[dict[str, Any]]) -> set[int]:
    """Rows holding the best shown value of a ranked column; none when all look alike."""
    if column.better is None:
        return set()
    shown: dict[int, tuple[float, str]] = {}
    for i, run in enumerate(results):
        value = run.get(column.key)
        if run["predictor"] in REFERENCE_RUNS or (value is None and not column.none_is_infinite):
            continue
        number = math.inf if value is None else float(value)
        shown[i] = (number, _cell(column, value))
    if len({text for _, text in shown.values()}) < 2:
        return set()
    pick = min if column.better == "min" else max
    best_text = pick(shown.values(), key=lambda item: item[0])[1]
    return {i for i, (_, text) in shown.items() if text == best_text}


def html_table(results: Sequence[dict[str, Any]]) -> str:
    best = {c.key: _best_rows(c, results) for c in COLUMNS}
    base = next((r for r in results if r["predictor"] == REACTIVE), None)
    head = "".join(f"<th>{escape(c.header)}</th>" for c in COLUMNS)
    body = []
    for i, run in enumerate(results):
        cells = []
        for column in COLUMNS:
            text = escape(_cell(column, run.get(column.key)))
            classes = ["best"] if i in best[column.key] else []
            if column.key == "predictor":
                classes.append("name")
            elif (
                base is not None
                and run is not base
                and column.key
                in (
                    "replica_hours",
                    "slo_violation_minutes",
                )
            ):
                text += _delta_html(run[column.key], base[column.key])
            attr = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{attr}>{text}</td>")
        kind = ' class="reference"' if run["predictor"] in REFERENCE_RUNS else ""
        body.append(f"<tr{kind}>{''.join(cells)}</tr>")
    return (
        f'<table class="comparison"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _delta_html(value: float, base: float) -> str:
    change = percent_change(value, base)
    if change is None:
        return '<span class="delta">reactive: 0</span>'
    tone = "good" if change.startswith("-") else "bad" if change.startswith("+") else ""
    return f'<span class="delta {tone}">{change.replace("-", "−")}</span>'


# --------------------------------------------------------------------------- the page


def render_html(result: ReplayResult, summary: dict[str, Any]) -> str:
    """The whole page; the numbers in it come from ``summary`` (what summary.json holds)."""
    timelines = result.timelines
    colors = {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(timelines)}
    any_timeline = next(iter(timelines.values()))
    x_range = (float(any_timeline.timestamps[0]), float(any_timeline.timestamps[-1]))
    throughput = result.settings.per_replica_throughput
    slo = result.slo_seconds
    changes = "".join(
        f"<li>{escape(line)}</li>" for line in changes_vs_reactive(summary["results"])
    )
    replica_plots, replica_top = _replica_plots(timelines, colors, x_range, throughput)
    lag_plots, lag_top = _lag_plots(timelines, colors, x_range, slo)
    files = ", ".join(f"timeseries-{escape(name)}.csv" for name in timelines)
    scaled = f", arrival rates scaled ×{result.scale:.4g}" if result.scale != 1 else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Replay of {escape(summary["trace"])}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>Replay of <code>{escape(summary["trace"])}</code></h1>
<p class="meta">{summary["steps"]:,} polls of {summary["step_seconds"]:g} s
({summary["duration_hours"]:,.1f} h, from {iso_utc(x_range[0])}){scaled};
{throughput:g} messages/s per replica, {summary["startup_seconds"]:g} s start-up;
SLO: lag drains within {slo:g} s; no schedule can cost less than
{summary["work_lower_bound_replica_hours"]:,.1f} replica-hours (the work lower bound).</p>
<p class="meta">{escape(knowledge_line(summary))}.</p>
<h2 id="comparison">Comparison</h2>
{html_table(summary["results"])}
<ul class="changes">{changes}</ul>
{_frontier_html(summary)}
<p class="note">Best value per column in bold ({", ".join(sorted(REFERENCE_RUNS))}, a
reference with perfect foresight, is not ranked). Lag ∞: some step had lag and no replica
ready to drain it. Changes are relative to <code>reactive</code>.</p>
<h2 id="forecasts">Arrival rate and forecasts</h2>
{_rate_plot(timelines, colors, x_range)}
<p class="note">Each forecast is drawn at the poll that made it; it is for one lead time
(start-up + margin) later, so a good forecast runs ahead of the arrival rate.</p>
<h2 id="replicas">Replicas</h2>
<p class="note">Replicas running (billed, ready or starting), replicas ready, and the
replicas the arrival rate needed (arrival rate ÷ {throughput:g} messages/s). Same scale
for every run, 0 to {replica_top:,.0f}.</p>
{replica_plots}
<h2 id="lag">Lag (seconds to drain)</h2>
<p class="note">Lag ÷ ready capacity. Linear scale, clipped at {lag_top:,.0f} s
({LAG_CLIP_SLO_MULTIPLE:g} × the SLO at most): an orange bar on the top edge marks a stretch
above it, a red bar a stretch of infinite lag (no replica ready).</p>
{lag_plots}
<p class="note">Downsampled to at most 2,000 points a line: bucket means for rates and
forecasts, bucket minimum and maximum for replicas and lag, so spikes stay visible.
Exact values: summary.json and {files} (timestamps ISO-8601 UTC).</p>
</body>
</html>
"""


def _frontier_html(summary: dict[str, Any]) -> str:
    """The KEDA frontier as a table, and each run's standing against it."""
    frontier: list[dict[str, Any]] = summary.get("keda_frontier") or []
    if not frontier:
        return ""
    rows = "".join(
        f"<tr><td>{p['lag_threshold']}</td><td>{p['replica_hours']:,.1f}</td>"
        f"<td>{p['slo_violation_minutes']:,.1f}</td><td>{p['scale_events']:,d}</td></tr>"
        for p in frontier
    )
    standings = "".join(
        f"<li><code>{escape(r['predictor'])}</code>: "
        f"{escape(standing_text(r['keda_frontier']))}</li>"
        for r in summary["results"]
        if r.get("keda_frontier") is not None
    )
    oracle = summary.get("oracle_lower_bound_replica_hours")
    bound = (
        ""
        if oracle is None
        else f'<p class="note">The oracle\'s lower bound: {oracle:,.1f} replica-hours (no '
        "schedule meeting the SLO where it can be met costs less); SLO-violation minutes no "
        f"schedule can avoid: {summary.get('unavoidable_violation_minutes') or 0:,.1f}.</p>"
    )
    return f"""<h2 id="frontier">KEDA frontier</h2>
<p class="note">Reactive at other lag thresholds (lag per replica), so each run is compared
with the best KEDA at equal replica-hours, not with one threshold.</p>
<table class="comparison"><thead><tr><th>lag_threshold</th><th>replica-hours</th>
<th>SLO-violation minutes</th><th>scale events</th></tr></thead><tbody>{rows}</tbody></table>
<ul class="changes">{standings}</ul>
{bound}"""


def _rate_plot(
    timelines: dict[str, Timeline], colors: dict[str, str], x_range: tuple[float, float]
) -> str:
    any_timeline = next(iter(timelines.values()))
    x = any_timeline.timestamps
    series = [
        Series("arrival rate", *downsample_mean(x, any_timeline.arrival_rate), "#aaa", width=3.0)
    ]
    top = float(np.max(any_timeline.arrival_rate))
    for name, timeline in timelines.items():
        forecast = timeline.forecast
        if np.isfinite(forecast).any():
            series.append(
                Series(f"{name} forecast", *downsample_mean(x, forecast), colors[name], width=1.2)
            )
            top = max(top, float(np.nanmax(forecast)))
    chart = Chart(
        "Arrival rate and each run's forecast",
        x_range,
        (0.0, nice_ceiling(top * 1.02)),
        "messages/s",
        height=300,
    )
    return render(chart, series)


def _replica_plots(
    timelines: dict[str, Timeline],
    colors: dict[str, str],
    x_range: tuple[float, float],
    throughput: float,
) -> tuple[str, float]:
    needed_top = max(float(np.max(t.arrival_rate)) / throughput for t in timelines.values())
    highest = max(needed_top, *(float(np.max(t.replicas)) for t in timelines.values()))
    top = nice_ceiling(highest * 1.02)
    plots = []
    for name, timeline in timelines.items():
        x = timeline.timestamps
        series = [
            Series(
                "needed",
                *downsample_mean(x, timeline.arrival_rate / throughput),
                "#888",
                width=1.0,
            ),
            Series(
                "running",
                *downsample_minmax(x, timeline.replicas.astype(np.float64)),
                colors[name],
                step=True,
            ),
            Series(
                "ready",
                *downsample_minmax(x, timeline.ready_replicas.astype(np.float64)),
                "#222",
                step=True,
                dash="3 2",
                width=1.0,
            ),
        ]
        chart = Chart(f"{name}: replicas", x_range, (0.0, top), "replicas", height=180)
        plots.append(render(chart, series))
    return "\n".join(plots), top


def _lag_plots(
    timelines: dict[str, Timeline],
    colors: dict[str, str],
    x_range: tuple[float, float],
    slo: float,
) -> tuple[str, float]:
    finite = [t.lag_seconds[np.isfinite(t.lag_seconds)] for t in timelines.values()]
    highest = max((float(np.max(f)) for f in finite if len(f)), default=0.0)
    top = min(nice_ceiling(max(highest * 1.02, 2 * slo)), LAG_CLIP_SLO_MULTIPLE * slo)
    plots = []
    for name, timeline in timelines.items():
        series = [
            Series(
                "lag", *downsample_minmax(timeline.timestamps, timeline.lag_seconds), colors[name]
            )
        ]
        chart = Chart(
            f"{name}: lag (seconds to drain)",
            x_range,
            (0.0, top),
            "seconds",
            height=180,
            hlines=(HLine(f"SLO {slo:g} s", slo, "#d62728"),),
            clipped_label=f"above {top:,.0f} s",
            infinite_label="infinite",
        )
        plots.append(render(chart, series))
    return "\n".join(plots), top


_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; color: #222; margin: 24px auto;
       max-width: 1180px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; }
code { font: 13px ui-monospace, monospace; }
.meta, .note { color: #555; max-width: 960px; }
table.comparison { border-collapse: collapse; font-variant-numeric: tabular-nums; }
.comparison th, .comparison td { padding: 4px 8px; border-bottom: 1px solid #e5e5e5;
                                 text-align: right; vertical-align: top; }
.comparison th { font-weight: 600; font-size: 12px; color: #444; vertical-align: bottom; }
.comparison th:first-child, .comparison td.name { text-align: left; }
.comparison td.best { font-weight: 700; background: #e8f4ea; }
.comparison tr.reference td { color: #777; font-style: italic; }
.delta { display: block; font-size: 11px; color: #777; font-weight: 400;
         white-space: nowrap; }
.delta.good { color: #2e7d32; } .delta.bad { color: #c62828; }
.changes { margin: 8px 0; }
svg.chart { display: block; margin: 4px 0 10px; }
"""
