"""``report.html``: the replay on one page that opens offline (inline CSS and SVG, no
script, no URL).

In reading order: the comparison table (best values marked; best on cost only among the
runs that meet the SLO), cost against SLO violations as a scatter, the settings each run
decided with, the KEDA frontier, then the time charts (``charts``) and the worst incident
(``incident``). Every number on it comes from the summary (what summary.json holds), the
charts from the timelines (what the CSV files hold).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from autoscaler.replay.engine import ReplayResult
from autoscaler.replay.runs import REACTIVE, REFERENCE_RUNS
from autoscaler.report.charts import (
    Limits,
    RunStyle,
    lag_plots,
    rate_plot,
    replica_plots,
    run_styles,
)
from autoscaler.report.incident import incident_html, worst_incident
from autoscaler.report.scatter import tradeoff_scatter
from autoscaler.report.tables import (
    COLUMNS,
    Column,
    cell_text,
    changes_vs_reactive,
    frontier_standings,
    iso_utc,
    knowledge_line,
    percent_change,
    weak_keda_line,
)

__all__ = ["html_table", "meets_slo", "render_html", "settings_table"]


def meets_slo(run: Mapping[str, Any], budget_percent: float) -> bool:
    """The lag exceeded the SLO at most ``budget_percent`` of the time."""
    return float(run["slo_violation_pct"]) <= budget_percent


def _best_rows(
    column: Column, results: Sequence[Mapping[str, Any]], budget_percent: float
) -> set[int]:
    """Rows holding the best shown value of a ranked column; none when all look alike.
    A cost column ranks only the runs that meet the SLO."""
    if column.better is None:
        return set()
    shown: dict[int, tuple[float, str]] = {}
    ranked = 0
    for i, run in enumerate(results):
        value = run.get(column.key)
        if run["predictor"] in REFERENCE_RUNS or (value is None and not column.none_is_infinite):
            continue
        ranked += 1
        if column.cost and not meets_slo(run, budget_percent):
            continue
        number = math.inf if value is None else float(value)
        shown[i] = (number, cell_text(column, value))
    # All alike: nothing stands out. (The one run that meets the SLO is still the best on
    # cost: the others were set aside.)
    alike = len({text for _, text in shown.values()}) < 2
    if not shown or (alike and not (column.cost and len(shown) < ranked)):
        return set()
    pick = min if column.better == "min" else max
    best_text = pick(shown.values(), key=lambda item: item[0])[1]
    return {i for i, (_, text) in shown.items() if text == best_text}


def html_table(
    results: Sequence[Mapping[str, Any]],
    budget_percent: float,
    styles: Mapping[str, RunStyle] | None = None,
) -> str:
    best = {c.key: _best_rows(c, results, budget_percent) for c in COLUMNS}
    base = next((r for r in results if r["predictor"] == REACTIVE), None)
    head = "".join(f"<th>{escape(c.header)}</th>" for c in COLUMNS)
    body = []
    for i, run in enumerate(results):
        cells = []
        for column in COLUMNS:
            text = escape(cell_text(column, run.get(column.key)))
            classes = ["best"] if i in best[column.key] else []
            if column.key == "predictor":
                classes.append("name")
                text = _swatch(styles, run["predictor"]) + text
                if not meets_slo(run, budget_percent):
                    text += '<span class="delta bad">over the SLO budget</span>'
            elif (
                base is not None
                and run is not base
                and column.key in ("replica_hours", "slo_violation_minutes")
            ):
                text += _delta_html(run[column.key], base[column.key])
            attr = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{attr}>{text}</td>")
        kinds = ["reference"] if run["predictor"] in REFERENCE_RUNS else []
        if not meets_slo(run, budget_percent):
            kinds.append("over-slo")
        kind = f' class="{" ".join(kinds)}"' if kinds else ""
        body.append(f'<tr{kind} data-run="{escape(str(run["predictor"]))}">{"".join(cells)}</tr>')
    return (
        f'<table class="comparison"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def best_note(results: Sequence[Mapping[str, Any]], budget_percent: float) -> str:
    """What the marks in the table mean, and whether any run was eligible on cost."""
    ranked = [r for r in results if r["predictor"] not in REFERENCE_RUNS]
    meeting = [r for r in ranked if meets_slo(r, budget_percent)]
    references = ", ".join(sorted(REFERENCE_RUNS))
    text = (
        f"Best value per column in bold ({references}, references with perfect foresight, "
        "are not ranked). Best on cost (replica-hours, efficiency) only among the runs that "
        f"meet the SLO: lag over the SLO at most {budget_percent:g}% of the time"
    )
    if not meeting:
        text += "; <b>no ranked run meets it, so none is marked best on cost</b>"
    return text + "."


def _swatch(styles: Mapping[str, RunStyle] | None, name: str) -> str:
    if styles is None or name not in styles:
        return ""
    style = styles[name]
    border = "dashed" if style.dash else "solid"
    return (
        f'<span class="swatch" data-color="{style.color}" data-dash="{style.dash}" '
        f'style="border-top: 3px {border} {style.color}"></span>'
    )


def _delta_html(value: float, base: float) -> str:
    change = percent_change(value, base)
    if change is None:
        return '<span class="delta">reactive: 0</span>'
    tone = "good" if change.startswith("-") else "bad" if change.startswith("+") else ""
    return f'<span class="delta {tone}">{change.replace("-", "−")}</span>'


SETTINGS = (
    ("model", "decides with"),
    ("lag_threshold", "lag threshold"),
    ("quantile", "quantile"),
    ("target_utilization", "target utilization"),
    ("scale_up", "scale up (HPA behavior)"),
    ("scale_down", "scale down (HPA behavior)"),
    ("min_dwell_seconds", "min dwell (s)"),
    ("min_step", "min step"),
    ("replicas", "replicas"),
    ("throughput", "throughput known"),
)
"""The settings table's columns: (key of a summary entry's ``settings``, header)."""


def settings_table(
    results: Sequence[Mapping[str, Any]], styles: Mapping[str, RunStyle] | None = None
) -> str:
    """One row per run: the settings it decided with (``runs.run_settings``)."""
    head = "".join(f"<th>{escape(header)}</th>" for _, header in SETTINGS)
    rows = []
    for run in results:
        settings: Mapping[str, Any] = run.get("settings") or {}
        cells = [
            f'<td class="name">{_swatch(styles, run["predictor"])}'
            f"{escape(str(run['predictor']))}</td>"
        ]
        for key, _ in SETTINGS:
            cells.append(f"<td>{escape(_setting_text(key, settings))}</td>")
        rows.append(f'<tr data-run="{escape(str(run["predictor"]))}">{"".join(cells)}</tr>')
    return (
        f'<table class="comparison settings"><thead><tr><th>run</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _setting_text(key: str, settings: Mapping[str, Any]) -> str:
    if key == "replicas":
        return f"{settings.get('min_replicas', '?')}–{settings.get('max_replicas', '?')}"
    value = settings.get(key)
    if value is None:
        return "–"
    if key == "quantile" and settings.get("budget_percent") is not None:
        return f"{value:g}, adapted to a {settings['budget_percent']:g}% budget"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


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
    weak = weak_keda_line(summary)
    standings = "".join(
        f"<li>{escape(line)}</li>"
        for line in [*frontier_standings(summary), *([weak] if weak else [])]
    )
    oracle = summary.get("oracle_lower_bound_replica_hours")
    bound = (
        ""
        if oracle is None
        else f'<p class="note">The lower bound: {oracle:,.1f} replica-hours (the oracle\'s '
        "linear programme: no schedule meeting the SLO where it can be met costs less); "
        "SLO-violation minutes no "
        f"schedule can avoid: {summary.get('unavoidable_violation_minutes') or 0:,.1f}.</p>"
    )
    return f"""<h2 id="frontier">KEDA frontier</h2>
<p class="note">Reactive at other lag thresholds (lag per replica), so each run is compared
with the best KEDA at equal replica-hours, not with one threshold.</p>
<table class="comparison"><thead><tr><th>lag_threshold</th><th>replica-hours</th>
<th>SLO-violation minutes</th><th>scale events</th></tr></thead><tbody>{rows}</tbody></table>
<ul class="changes">{standings}</ul>
{bound}"""


def _bound_text(summary: dict[str, Any]) -> str:
    """The one lower bound, the oracle's, where the header names the work."""
    bound = summary.get("oracle_lower_bound_replica_hours")
    if bound is None:
        return ""
    return f"; the lower bound (the oracle's) is {bound:,.1f} replica-hours"


def render_html(result: ReplayResult, summary: dict[str, Any]) -> str:
    """The whole page; the numbers in it come from ``summary`` (what summary.json holds)."""
    timelines = result.timelines
    styles = run_styles(list(timelines))
    results: list[dict[str, Any]] = summary["results"]
    any_timeline = next(iter(timelines.values()))
    step = float(summary["step_seconds"])
    x_range = (float(any_timeline.timestamps[0]) - step, float(any_timeline.timestamps[-1]))
    throughput = result.settings.per_replica_throughput
    slo = result.slo_seconds
    budget = float(summary["slo_budget_percent"])
    budget_minutes = budget / 100 * summary["duration_hours"] * 60
    source = (
        "the target's slo.budget_percent"
        if summary["slo_budget_source"] == "slo.budget_percent"
        else "the default: the target sets no slo.budget_percent"
    )
    max_replicas = max(int((r.get("settings") or {}).get("max_replicas", 0)) for r in results)
    limits = Limits(max_replicas or int(any_timeline.replicas.max()), result.settings.partitions)
    changes = "".join(f"<li>{escape(line)}</li>" for line in changes_vs_reactive(results))
    replicas_html, replica_top = replica_plots(
        timelines, styles, throughput=throughput, step=step, limits=limits
    )
    lag_html, lag_top = lag_plots(timelines, styles, x_range, slo)
    incident = incident_html(
        worst_incident(timelines, slo),
        timelines,
        styles,
        step=step,
        slo=slo,
        throughput=throughput,
        limits=limits,
    )
    scatter = tradeoff_scatter(
        results,
        summary.get("keda_frontier") or [],
        styles,
        budget_minutes=budget_minutes,
        budget_label=f"SLO budget: {budget:g}% of the time ({budget_minutes:,.0f} min)",
    )
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
({summary["duration_hours"]:,.1f} h, from {iso_utc(x_range[0] + step)}){scaled};
{throughput:g} messages/s per replica, {summary["startup_seconds"]:g} s start-up;
SLO: lag drains within {slo:g} s, and may take longer at most {budget:g}% of the time
({source}); the work that arrived is
{summary["work_arrived_replica_hours"]:,.1f} replica-hours of processing{_bound_text(summary)}.</p>
<p class="meta">{escape(knowledge_line(summary))}.</p>
<h2 id="comparison">Comparison</h2>
{html_table(results, budget, styles)}
<p class="note">{best_note(results, budget)} Lag ∞: some step had lag and no replica ready
to drain it. Changes are relative to <code>reactive</code>.</p>
<ul class="changes">{changes}</ul>
<h2 id="tradeoff">Cost against SLO violations</h2>
<p class="note">Left is cheaper, down violates less; a point under the red line meets the
SLO. Rings: references that know the future.</p>
{scatter}
<h2 id="settings">Settings of each run</h2>
<p class="note">What each run decided with. <code>reactive</code> and the KEDA frontier are
KEDA's formula at the HPA's default behavior; the oracle is a schedule under the physics
alone, held only to the replica bounds.</p>
{settings_table(results, styles)}
{_frontier_html(summary)}
<h2 id="forecasts">Arrival rate and forecasts</h2>
{rate_plot(timelines, styles, x_range)}
<p class="note">Each forecast is drawn at the poll that made it; it is for one lead time
(start-up + margin) later, so a good forecast runs ahead of the arrival rate. The arrival
rate is drawn on top; the references' forecasts dashed.</p>
<h2 id="replicas">Replicas</h2>
<p class="note">Replicas running (billed, ready or starting), replicas ready, and the
replicas the arrival rate needed (arrival rate ÷ {throughput:g} messages/s), over the whole
span and, beside it, the run's busiest window (shaded on the left). Where a pixel holds
several counts, the band spans the lowest to the highest and the line is their mean. Same
scale for every run, 0 to {replica_top:,.0f}.</p>
{replicas_html}
<h2 id="incident">Worst incident</h2>
{incident}
<h2 id="lag">Lag (seconds to drain)</h2>
<p class="note">Lag ÷ ready capacity. Linear scale, clipped at {lag_top:,.0f} s
(10 × the SLO at most): an orange bar on the top edge marks a stretch above it, a red bar a
stretch of infinite lag (no replica ready).</p>
{lag_html}
<p class="note">Downsampled to about a point a pixel: bucket means for rates and forecasts,
bucket minimum and maximum for lag, so spikes stay visible. Exact values: summary.json and
{files} (timestamps ISO-8601 UTC).</p>
</body>
</html>
"""


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
.comparison th:first-child, .comparison td.name { text-align: left; white-space: nowrap; }
.comparison td.best { font-weight: 700; background: #e8f4ea; }
.comparison tr.reference td { color: #777; font-style: italic; }
.settings td, .settings th { font-size: 12px; text-align: left; }
.swatch { display: inline-block; width: 18px; margin: 0 6px 3px 0; vertical-align: middle; }
.delta { display: block; font-size: 11px; color: #777; font-weight: 400;
         white-space: nowrap; }
.delta.good { color: #2e7d32; } .delta.bad { color: #c62828; }
.changes { margin: 8px 0; }
svg.chart { display: block; margin: 4px 0 10px; }
.pair { display: grid; grid-template-columns: 740fr 360fr; gap: 0; }
.pair.even { grid-template-columns: 1fr 1fr; }
"""
