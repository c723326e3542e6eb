"""What each run paid against how long it violated the SLO: one point per run.

Replica-hours on x, SLO-violation minutes on y on a square-root scale (so that none, a few
minutes and hours of violation all read), the KEDA frontier as a dashed line, the SLO
budget as a red line: a point under it meets the SLO, and the cheapest of those is the one
to beat. References (they know the future) are rings. Each point is labelled with its run;
a label goes where it overlaps no other label or point, joined to its point by a thin line
when it had to move away.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from autoscaler.replay.runs import REFERENCE_RUNS
from autoscaler.report.charts import SLO_RED, RunStyle
from autoscaler.report.legend import FONT, draw_legend, layout_legend, text_width
from autoscaler.report.svg import nice_ticks

WIDTH, HEIGHT = 1100, 440
LEFT, RIGHT, TOP, BOTTOM = 72, 24, 36, 44
KEDA = "#7f7f7f"
_ROUND = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)

Box = tuple[float, float, float, float]
"""left, top, right, bottom."""


@dataclass(frozen=True)
class _Axes:
    x0: float
    x1: float
    y_top: float

    def px(self, hours: float) -> float:
        span = self.x1 - self.x0 or 1.0
        return LEFT + (hours - self.x0) / span * (WIDTH - LEFT - RIGHT)

    def py(self, minutes: float) -> float:
        share = math.sqrt(max(0.0, minutes) / self.y_top)
        return HEIGHT - BOTTOM - share * (HEIGHT - TOP - BOTTOM)


def tradeoff_scatter(
    results: Sequence[dict[str, Any]],
    frontier: Sequence[dict[str, Any]],
    styles: Mapping[str, RunStyle],
    *,
    budget_minutes: float,
    budget_label: str,
) -> str:
    points = [*results, *frontier]
    hours = [float(p["replica_hours"]) for p in points]
    minutes = [float(p["slo_violation_minutes"]) for p in points]
    x_ticks = nice_ticks(min(hours) * 0.95, max(hours) * 1.03)
    axes = _Axes(
        min(x_ticks[0], min(hours)),
        max(x_ticks[-1], max(hours)),
        max(1.0, max(minutes), budget_minutes) * 1.08,
    )
    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" class="chart scatter" '
        'aria-label="replica-hours against SLO-violation minutes, one point per run">',
        "<title>Replica-hours against SLO-violation minutes</title>",
        f'<text class="title" x="{LEFT}" y="16" {FONT} font-weight="600">Cost against SLO '
        "violations, one point per run</text>",
        *_axes(axes, x_ticks),
    ]
    budget_y = axes.py(budget_minutes)
    parts.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{budget_y:.1f}" y2="{budget_y:.1f}" '
        f'stroke="{SLO_RED}" stroke-dasharray="6 4"/>'
    )
    keda = sorted(frontier, key=lambda p: float(p.get("lag_threshold") or 0))
    if keda:
        coords = " ".join(
            f"{axes.px(p['replica_hours']):.1f},{axes.py(p['slo_violation_minutes']):.1f}"
            for p in keda
        )
        parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{KEDA}" stroke-dasharray="5 3"/>'
        )
        for p in keda:
            parts.append(
                f'<circle cx="{axes.px(p["replica_hours"]):.1f}" '
                f'cy="{axes.py(p["slo_violation_minutes"]):.1f}" r="3" fill="{KEDA}">'
                f"<title>{escape(str(p['predictor']))}: {p['replica_hours']:,.1f} rep-h, "
                f"{p['slo_violation_minutes']:,.1f} min</title></circle>"
            )
    centres = [(axes.px(r["replica_hours"]), axes.py(r["slo_violation_minutes"])) for r in results]
    taken: list[Box] = [(x - 6, y - 6, x + 6, y + 6) for x, y in centres]
    taken += [(x - 4, y - 4, x + 4, y + 4) for x, y in _keda_centres(keda, axes)]
    for run, (x, y) in zip(results, centres, strict=True):
        name = str(run["predictor"])
        style = styles.get(name, RunStyle("#333333"))
        reference = name in REFERENCE_RUNS
        fill = "#ffffff" if reference else style.color
        parts.append(
            f'<circle class="run" data-run="{escape(name)}" cx="{x:.1f}" cy="{y:.1f}" r="5" '
            f'fill="{fill}" stroke="{style.color}" stroke-width="2"><title>{escape(name)}: '
            f"{run['replica_hours']:,.1f} rep-h, {run['slo_violation_minutes']:,.1f} min"
            "</title></circle>"
        )
        label_x, label_y, moved = _place(name, x, y, taken)
        width = text_width(name)
        taken.append((label_x, label_y - 11, label_x + width, label_y + 3))
        if moved:
            end_x = min(max(x, label_x), label_x + width)
            end_y = label_y - 4
            parts.append(
                f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{end_x:.1f}" y2="{end_y:.1f}" '
                f'stroke="{style.color}" stroke-width="0.8"/>'
            )
        parts.append(
            f'<text class="point-label" x="{label_x:.1f}" y="{label_y:.1f}" {FONT} '
            f'fill="#222">{escape(name)}</text>'
        )
    for p, (x, y) in zip(keda, _keda_centres(keda, axes), strict=True):
        label = str(p.get("lag_threshold", ""))
        label_x, label_y, moved = _place(label, x, y, taken)
        taken.append((label_x, label_y - 11, label_x + text_width(label), label_y + 3))
        parts.append(
            f'<text class="point-label" x="{label_x:.1f}" y="{label_y:.1f}" {FONT} '
            f'fill="{KEDA}">{escape(label)}</text>'
        )
    title_width = text_width("Cost against SLO violations, one point per run", bold=True)
    layout = layout_legend(
        [
            ("KEDA at other lag thresholds (labelled)", KEDA, "5 3"),
            (budget_label, SLO_RED, "6 4"),
        ],
        title_width=title_width,
        left=LEFT,
        right=WIDTH - RIGHT,
    )
    parts.extend(draw_legend(layout))
    parts.append("</svg>")
    return "\n".join(parts)


def _keda_centres(keda: Sequence[dict[str, Any]], axes: _Axes) -> list[tuple[float, float]]:
    return [(axes.px(p["replica_hours"]), axes.py(p["slo_violation_minutes"])) for p in keda]


def _place(name: str, x: float, y: float, taken: list[Box]) -> tuple[float, float, bool]:
    """A baseline position for the label of the point at (x, y): beside it where free,
    else further away on rings around it; (x, y, moved away)."""
    width = text_width(name)
    near = [
        (x + 9, y + 4),
        (x - 9 - width, y + 4),
        (x - width / 2, y - 10),
        (x - width / 2, y + 19),
        (x + 7, y - 8),
        (x + 7, y + 16),
        (x - 7 - width, y - 8),
        (x - 7 - width, y + 16),
    ]
    rings = [
        (x + radius * math.cos(angle) - width / 2, y + radius * math.sin(angle) + 4)
        for radius in (30, 45, 60, 80, 100, 130)
        for angle in (i * math.pi / 8 for i in range(16))
    ]
    for index, (left, baseline) in enumerate(near + rings):
        box = (left, baseline - 11, left + width, baseline + 3)
        inside = box[0] >= LEFT and box[2] <= WIDTH - RIGHT
        inside = inside and box[1] >= TOP and box[3] <= HEIGHT - BOTTOM
        if inside and not any(_overlap(box, other) for other in taken):
            return left, baseline, index >= len(near)
    return near[0][0], near[0][1], False


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _axes(axes: _Axes, x_ticks: list[float]) -> list[str]:
    bottom = HEIGHT - BOTTOM
    parts = [
        f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" height="{bottom - TOP}" '
        'fill="none" stroke="#d0d7de"/>'
    ]
    for tick in x_ticks:
        if not axes.x0 <= tick <= axes.x1:
            continue
        x = axes.px(tick)
        parts.append(
            f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle" {FONT} fill="#555">'
            f"{tick:,.0f}</text>"
        )
    last = math.inf
    for value in _ROUND:
        if value > axes.y_top:
            break
        y = axes.py(value)
        if last - y < 16:
            continue
        last = y
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" {FONT} fill="#555">'
            f"{value:,}</text>"
        )
    parts.append(
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" y="{HEIGHT - 6}" text-anchor="middle" '
        f'{FONT} fill="#555">replica-hours</text>'
    )
    middle = (TOP + bottom) / 2
    parts.append(
        f'<text x="14" y="{middle:.0f}" {FONT} fill="#555" text-anchor="middle" '
        f'transform="rotate(-90 14 {middle:.0f})">SLO-violation minutes (square-root scale)'
        "</text>"
    )
    return parts
