"""Line charts as inline SVG text, for a report that must open offline with no library.

Only what the replay report draws: time on x (UTC), one linear y axis, lines and step
lines, dashed reference lines, and marks along the top edge where values were clipped.
Series are downsampled before drawing so that a month of 15-second polls stays a page
a browser opens at once: ``downsample_mean`` for smooth rates, ``downsample_minmax`` for
replicas and lag, whose spikes are the point of the plot and must survive.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from itertools import pairwise

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
Scale = Callable[[FloatArray], FloatArray]
"""Data values to pixel positions."""

MAX_POINTS = 2000
"""Points per drawn series: about two per horizontal pixel of a full-width chart."""

_TIME_STEPS = (60, 300, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)
_FONT = 'font-family="system-ui,sans-serif" font-size="12"'
_CHAR_WIDTH = 6.6  # average width of a 12px sans-serif character, for laying out legends


def downsample_mean(
    x: FloatArray, y: FloatArray, max_points: int = MAX_POINTS
) -> tuple[FloatArray, FloatArray]:
    """Bucket means (NaN ignored; an all-NaN bucket stays NaN, a gap in the line)."""
    n = len(x)
    if n <= max_points:
        return x, y
    starts = np.linspace(0, n, max_points + 1).astype(np.int64)[:-1]
    sizes = np.diff(np.append(starts, n))
    finite = np.isfinite(y)
    sums = np.add.reduceat(np.where(finite, y, 0.0), starts)
    counts = np.add.reduceat(finite.astype(np.int64), starts)
    means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    centres = np.add.reduceat(x, starts) / sizes
    return centres.astype(np.float64), means.astype(np.float64)


def downsample_minmax(
    x: FloatArray, y: FloatArray, max_points: int = MAX_POINTS
) -> tuple[FloatArray, FloatArray]:
    """Each bucket's lowest and highest point, at their own times and in time order, so
    a one-step spike (or an infinite lag) is still drawn. ``y`` must hold no NaN."""
    n = len(x)
    if n <= max_points:
        return x, y
    edges = np.linspace(0, n, max_points // 2 + 1).astype(np.int64)
    keep: list[int] = []
    for start, stop in pairwise(edges.tolist()):
        chunk = y[start:stop]
        low, high = int(np.argmin(chunk)), int(np.argmax(chunk))
        keep.extend(start + i for i in sorted({low, high}))
    index = np.asarray(keep, dtype=np.int64)
    return x[index], y[index]


@dataclass(frozen=True)
class Series:
    """One drawn line, already downsampled. NaN breaks the line; values above the
    chart's top are drawn on the top edge (and marked, if the chart says so)."""

    label: str
    x: FloatArray
    y: FloatArray
    color: str
    step: bool = False
    """Hold each value until the next point (replica counts change in steps)."""
    dash: str = ""
    width: float = 1.5
    opacity: float = 1.0


@dataclass(frozen=True)
class HLine:
    label: str
    y: float
    color: str
    dash: str = "6 4"


@dataclass(frozen=True)
class Chart:
    title: str
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    y_unit: str
    width: int = 1100
    height: int = 200
    hlines: tuple[HLine, ...] = ()
    clipped_label: str = ""
    """Non-empty: mark where a series goes above the top, with this legend label."""
    infinite_label: str = ""
    """Non-empty: mark infinite values apart from finite clipped ones, with this label."""


_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 30, 24
_CLIPPED, _INFINITE = "#f28e2b", "#d62728"


def render(chart: Chart, series: Sequence[Series]) -> str:
    """The chart as one ``<svg>`` element (no XML prolog, no external reference)."""
    x0, x1 = chart.x_range
    y0, y1 = chart.y_range
    plot_w = chart.width - _LEFT - _RIGHT
    plot_h = chart.height - _TOP - _BOTTOM

    def px(values: FloatArray) -> FloatArray:
        span = x1 - x0 if x1 > x0 else 1.0
        return np.asarray(_LEFT + (values - x0) / span * plot_w, dtype=np.float64)

    def py(values: FloatArray) -> FloatArray:
        span = y1 - y0 if y1 > y0 else 1.0
        clipped = np.minimum(values, y1)
        return np.asarray(_TOP + plot_h - (clipped - y0) / span * plot_h, dtype=np.float64)

    parts = [
        f'<svg viewBox="0 0 {chart.width} {chart.height}" width="100%" role="img" '
        f'aria-label="{escape(chart.title)}" class="chart">',
        f"<title>{escape(chart.title)}</title>",
        f'<text x="{_LEFT}" y="16" {_FONT} font-weight="600">{escape(chart.title)}</text>',
        *_y_axis(chart, py, plot_w),
        *_x_axis(chart, px, plot_h),
    ]
    for line in chart.hlines:
        y = float(py(np.array([line.y]))[0])
        parts.append(
            f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{line.color}" stroke-dasharray="{line.dash}"/>'
        )
    legend: list[tuple[str, str, str]] = [(s.label, s.color, s.dash) for s in series]
    legend += [(h.label, h.color, h.dash) for h in chart.hlines]
    clipped_any = infinite_any = False
    for s in series:
        parts.append(_path(px(s.x), py(s.y), s))
        if chart.clipped_label:
            marks, finite_hit, infinite_hit = _top_marks(px(s.x), s.y, y1, chart)
            parts.extend(marks)
            clipped_any |= finite_hit
            infinite_any |= infinite_hit
    if clipped_any:
        legend.append((chart.clipped_label, _CLIPPED, "mark"))
    if infinite_any:
        legend.append((chart.infinite_label or chart.clipped_label, _INFINITE, "mark"))
    parts.extend(_legend(legend, chart.width - _RIGHT))
    parts.append("</svg>")
    return "\n".join(parts)


def _path(xs: FloatArray, ys: FloatArray, s: Series) -> str:
    """``M``/``L`` commands (or ``H``/``V`` for steps), a new ``M`` after each gap."""
    commands: list[str] = []
    drawing = False
    for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
        if not math.isfinite(y):
            drawing = False
            continue
        if not drawing:
            commands.append(f"M{x:.1f} {y:.1f}")
            drawing = True
        elif s.step:
            commands.append(f"H{x:.1f}V{y:.1f}")
        else:
            commands.append(f"L{x:.1f} {y:.1f}")
    dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
    opacity = f' stroke-opacity="{s.opacity}"' if s.opacity < 1 else ""
    return (
        f'<path d="{"".join(commands)}" fill="none" stroke="{s.color}" '
        f'stroke-width="{s.width}"{dash}{opacity} stroke-linejoin="round"/>'
    )


def _top_marks(
    xs: FloatArray, ys: FloatArray, top: float, chart: Chart
) -> tuple[list[str], bool, bool]:
    """A thick bar on the top edge over each stretch above ``top`` (red where infinite)."""
    marks: list[str] = []
    above = ys > top
    infinite = np.isinf(ys) & (ys > 0) if chart.infinite_label else np.zeros_like(above)
    kinds = np.where(infinite, 2, np.where(above, 1, 0))
    bounds = np.flatnonzero(np.diff(np.concatenate([[0], kinds, [0]])) != 0)
    for start, stop in pairwise(bounds.tolist()):
        kind = int(kinds[start])
        if kind == 0:
            continue
        left = float(xs[start])
        right = float(xs[stop - 1])
        if right - left < 3:
            left, right = left - 1.5, left + 1.5
        color = _INFINITE if kind == 2 else _CLIPPED
        marks.append(
            f'<rect x="{left:.1f}" y="{_TOP - 2}" width="{right - left:.1f}" height="5" '
            f'fill="{color}"/>'
        )
    return marks, bool((kinds == 1).any()), bool((kinds == 2).any())


def _legend(items: Sequence[tuple[str, str, str]], right: float) -> list[str]:
    """Swatches and labels in the title row, laid out right to left."""
    parts: list[str] = []
    x = right
    for label, color, dash in reversed(items):
        x -= len(label) * _CHAR_WIDTH
        parts.append(f'<text x="{x:.0f}" y="16" {_FONT} fill="#333">{escape(label)}</text>')
        if dash == "mark":
            parts.append(f'<rect x="{x - 22:.0f}" y="9" width="18" height="5" fill="{color}"/>')
        else:
            dashes = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(
                f'<line x1="{x - 22:.0f}" x2="{x - 4:.0f}" y1="12" y2="12" stroke="{color}" '
                f'stroke-width="2"{dashes}/>'
            )
        x -= 36
    return parts


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round values (1, 2 or 5 times a power of ten apart) covering ``[low, high]``."""
    if not high > low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def nice_ceiling(value: float) -> float:
    """``value`` rounded up to the axis' tick step, so the top of a chart is a round
    number (and a clip limit reads as one)."""
    if not value > 0:
        return 1.0
    ticks = nice_ticks(0.0, value, count=10)
    step = ticks[1] - ticks[0]
    return round(math.ceil(value / step - 1e-9) * step, 12)


def _y_axis(chart: Chart, py: Scale, plot_w: int) -> list[str]:
    y0, y1 = chart.y_range
    ticks = nice_ticks(y0, y1)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    parts = []
    for tick in ticks:
        y = float(py(np.array([tick]))[0])
        parts.append(
            f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>'
        )
        parts.append(
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" {_FONT} fill="#555">'
            f"{tick:,.{decimals}f}</text>"
        )
    parts.append(
        f'<text x="12" y="{_TOP + (chart.height - _TOP - _BOTTOM) / 2:.0f}" {_FONT} '
        f'fill="#555" text-anchor="middle" transform="rotate(-90 12 '
        f'{_TOP + (chart.height - _TOP - _BOTTOM) / 2:.0f})">{escape(chart.y_unit)}</text>'
    )
    return parts


def _x_axis(chart: Chart, px: Scale, plot_h: int) -> list[str]:
    """UTC ticks at a round interval; the date is shown where it changes."""
    x0, x1 = chart.x_range
    span = max(x1 - x0, 1.0)
    interval = next((s for s in _TIME_STEPS if span / s <= 10), _TIME_STEPS[-1])
    while span / interval > 10:
        interval *= 2
    bottom = _TOP + plot_h
    parts = [
        f'<line x1="{_LEFT}" x2="{chart.width - _RIGHT}" y1="{bottom}" y2="{bottom}" '
        'stroke="#999"/>'
    ]
    tick = math.ceil(x0 / interval) * interval
    last_day = ""
    while tick <= x1:
        x = float(px(np.array([float(tick)]))[0])
        moment = datetime.fromtimestamp(tick, tz=UTC)
        day = moment.strftime("%b %d")
        label = day if interval >= 86400 else moment.strftime("%H:%M")
        if interval < 86400 and day != last_day:
            label = f"{day} {label}"
        last_day = day
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 4}" stroke="#999"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle" {_FONT} fill="#555">'
            f"{label}</text>"
        )
        tick += interval
    return parts
