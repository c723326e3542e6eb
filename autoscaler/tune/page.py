"""``tune``'s report page: every setting's cost against its SLO violations on the test part
(out of sample), beside the KEDA frontier, reactive KEDA and the oracle.

One self-contained HTML file with an inline SVG scatter (no script, no network): replica
hours on x, SLO-violation minutes on y (a square-root scale, so that 0, a few minutes and
hours of violation all read), the tuning part's frontier joined in order, the
recommendation ringed, and the table of the frontier below.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from autoscaler.report.legend import LEGEND_ROW, LegendLayout, draw_legend, layout_legend
from autoscaler.report.svg import nice_ticks
from autoscaler.tune.search import Scored, TuneResult

__all__ = ["render_page"]

WIDTH, HEIGHT = 820, 480
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 40, 50
COLORS = {
    "setting": "#9aa5b1",
    "frontier": "#1f6feb",
    "keda": "#d97706",
    "reactive": "#b91c1c",
    "oracle": "#111827",
    "chosen": "#15803d",
}


def render_page(result: TuneResult, tried: int) -> str:
    """The page for ``result`` (``tried`` settings)."""
    points = [*result.candidates, *result.baselines, *result.keda_frontier]
    hours = [p.test["replica_hours"] for p in points]
    minutes = [p.test["slo_violation_minutes"] for p in points]
    x_ticks = nice_ticks(min(hours) * 0.95, max(hours) * 1.02)
    y_top = max(1.0, max(minutes))
    x0, x1 = x_ticks[0], max(x_ticks[-1], max(hours))
    legend = _legend()
    top = TOP + legend.rows_below * LEGEND_ROW  # the legend wraps onto rows of its own

    def px(value: float) -> float:
        return LEFT + (value - x0) / (x1 - x0 or 1.0) * (WIDTH - LEFT - RIGHT)

    def py(value: float) -> float:
        return HEIGHT - BOTTOM - math.sqrt(max(0.0, value) / y_top) * (HEIGHT - top - BOTTOM)

    def at(scored: Scored) -> tuple[float, float]:
        return px(scored.test["replica_hours"]), py(scored.test["slo_violation_minutes"])

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect x="{LEFT}" y="{top}" width="{WIDTH - LEFT - RIGHT}" '
        f'height="{HEIGHT - top - BOTTOM}" fill="none" stroke="#d0d7de"/>',
    ]
    for tick in x_ticks:
        x = px(tick)
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{tick:,.0f}</text>'
        )
    for share in (0.0, 0.25, 0.5, 0.75, 1.0):
        value = y_top * share**2
        parts.append(
            f'<text x="{LEFT - 6}" y="{py(value) + 4:.1f}" text-anchor="end">{value:,.0f}</text>'
        )
    parts.append(
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 12}" text-anchor="middle">'
        "replica-hours on the test part</text>"
    )
    parts.append(
        f'<text transform="translate(16 {(top + HEIGHT - BOTTOM) / 2}) rotate(-90)" '
        'text-anchor="middle">SLO-violation minutes (square-root scale)</text>'
    )
    for scored in result.candidates:
        x, y = at(scored)
        parts.append(
            f'<circle class="setting" cx="{x:.1f}" cy="{y:.1f}" r="3" '
            f'fill="{COLORS["setting"]}"><title>{escape(scored.name)}</title></circle>'
        )
    parts.append(_line(result.frontier, at, COLORS["frontier"], "frontier"))
    keda = sorted(result.keda_frontier, key=lambda s: s.test["replica_hours"])
    parts.append(_line(keda, at, COLORS["keda"], "keda", dashed=True))
    for scored in result.baselines:
        x, y = at(scored)
        color = COLORS["oracle"] if scored.name == "oracle" else COLORS["reactive"]
        parts.append(
            f'<rect class="baseline" x="{x - 5:.1f}" y="{y - 5:.1f}" width="10" height="10" '
            f'fill="{color}"><title>{escape(scored.name)}</title></rect>'
        )
    chosen = result.recommended
    if chosen is not None:
        x, y = at(chosen)
        parts.append(
            f'<circle class="chosen" cx="{x:.1f}" cy="{y:.1f}" r="8" fill="none" '
            f'stroke="{COLORS["chosen"]}" stroke-width="3"><title>recommended: '
            f"{escape(chosen.name)}</title></circle>"
        )
    parts += draw_legend(legend)
    parts.append("</svg>")
    return _html(result, tried, "\n".join(parts))


def _line(points: list[Scored], at: Any, color: str, css: str, *, dashed: bool = False) -> str:
    if not points:
        return ""
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in (at(p) for p in points))
    dash = ' stroke-dasharray="5 3"' if dashed else ""
    marks = "".join(
        f'<circle class="{css}" cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{color}">'
        f"<title>{escape(p.name)}</title></circle>"
        for p, (x, y) in zip(points, (at(p) for p in points), strict=True)
    )
    return (
        f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"{dash}/>' + marks
    )


def _legend() -> LegendLayout:
    """Wrapped within the chart's width (one row ran off its right edge)."""
    items = [
        ("settings tried", COLORS["setting"], "point"),
        ("frontier (tuning part)", COLORS["frontier"], "point"),
        ("KEDA at other lag thresholds", COLORS["keda"], "point"),
        ("reactive KEDA", COLORS["reactive"], "point"),
        ("oracle", COLORS["oracle"], "point"),
        ("recommended", COLORS["chosen"], "point"),
    ]
    return layout_legend(items, title_width=None, left=LEFT, right=WIDTH - RIGHT)


def _html(result: TuneResult, tried: int, svg: str) -> str:
    chosen = result.recommended
    verdict = (
        f"recommended: <b>{escape(chosen.name)}</b>"
        if chosen is not None
        else f"no setting kept the lag within the SLO {result.budget_pct:g}% of the time"
    )
    rows = "".join(
        f"<tr><td>{escape(s.name)}{' (recommended)' if s is chosen else ''}</td>"
        f"<td>{s.tune['replica_hours']:,.1f}</td><td>{s.tune['slo_violation_pct']:.2f}</td>"
        f"<td>{s.test['replica_hours']:,.1f}</td><td>{s.test['slo_violation_pct']:.2f}</td>"
        f"<td>{s.test['scale_events']:,d}</td></tr>"
        for s in [
            *result.frontier,
            *([chosen] if chosen and chosen not in result.frontier else []),
            *result.baselines,
        ]
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tune: {escape(result.trace)}</title>
<style>body{{font-family:sans-serif;margin:24px;max-width:900px}}
table{{border-collapse:collapse}}td,th{{border:1px solid #d0d7de;padding:3px 8px;text-align:right}}
td:first-child{{text-align:left}}</style></head><body>
<h1>tune: {escape(result.trace)}</h1>
<p>{tried} settings; tuned on {result.tune_hours / 24:.1f} days, scored on the
{result.test_hours / 24:.1f} days after (out of sample); budget: lag over the SLO at most
{result.budget_pct:g}% of the time. {verdict}.</p>
<p>Each point is one setting on the <b>test part</b>: left is cheaper, down violates less.
The blue line joins the frontier chosen on the tuning part; the dashed orange line is reactive
KEDA at other lag thresholds; squares are reactive KEDA (red) and the oracle, the cheapest
schedule meeting the SLO under the physics alone (black).</p>
{svg}
<h2>The frontier and the baselines</h2>
<table><tr><th>setting</th><th>tuning rep-h</th><th>tuning viol %</th><th>test rep-h</th>
<th>test viol %</th><th>test scale events</th></tr>{rows}</table>
</body></html>
"""
