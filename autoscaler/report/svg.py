"""Line charts as inline SVG text, for a report that must open offline with no library.

Only what the replay report draws: time on x (UTC), one linear y axis, lines and step
lines, filled min-max bands, shaded spans of time, dashed reference lines, and marks along
the top edge where values were clipped. Series are downsampled before drawing so that a
month of 15-second polls stays a page a browser opens at once: ``downsample_mean`` for
smooth rates, ``downsample_minmax`` for lag, whose spikes are the point of the plot and
must survive, ``envelope`` for replica counts (a pixel's lowest, highest and mean count:
thousands of changes read as a band around a line, not as a solid barcode).

The layout, stated once: the title on the first row; the legend right of it when it fits
there, else on rows of its own below the title (``legend``); then the plot, whose height
stays what the chart says.
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

from autoscaler.report.legend import (
    FONT,
    LEGEND_ROW,
    LegendItem,
    draw_legend,
    layout_legend,
    text_width,
)

FloatArray = NDArray[np.float64]
Scale = Callable[[FloatArray], FloatArray]
"""Data values to pixel positions."""

MAX_POINTS = 2000
"""Points per drawn series: about two per horizontal pixel of a full-width chart."""

_TIME_STEPS = (60, 300, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)


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
class Envelope:
    """A step series in buckets: bucket ``i`` spans ``edges[i]`` to ``edges[i + 1]``."""

    edges: FloatArray
    low: FloatArray
    high: FloatArray
    mean: FloatArray
    """The time-weighted mean (each step holds for one step): what the bucket bills."""

    @property
    def spread(self) -> bool:
        """Some bucket holds more than one value (the band is worth drawing)."""
        return bool(np.any(self.high > self.low))


def envelope(x: FloatArray, y: FloatArray, step: float, buckets: int) -> Envelope:
    """``y`` (each value held over the ``step`` ending at its ``x``, as the simulator's
    timelines say) in at most ``buckets`` buckets of whole steps; with fewer steps than
    buckets, one bucket per step (the exact step line)."""
    n = len(x)
    count = max(1, min(n, buckets))
    starts = np.unique(np.linspace(0, n, count + 1).astype(np.int64)[:-1])
    sizes = np.diff(np.append(starts, n))
    values = np.asarray(y, dtype=np.float64)
    edges = np.append(x[starts] - step, x[-1]).astype(np.float64)
    return Envelope(
        edges=edges,
        low=np.minimum.reduceat(values, starts),
        high=np.maximum.reduceat(values, starts),
        mean=np.add.reduceat(values, starts) / sizes,
    )


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
    fill_opacity: float = 0.0
    """Above 0: the area under the line is filled with its colour at this opacity."""
    css: str = ""
    """A class on the path, so that a page or a test can find the series."""
    legend: bool = True


@dataclass(frozen=True)
class Band:
    """A filled range over buckets: an envelope's lowest to highest value."""

    label: str
    edges: FloatArray
    low: FloatArray
    high: FloatArray
    color: str
    opacity: float = 0.3


@dataclass(frozen=True)
class Span:
    """A shaded stretch of time (a zoomed window, an incident)."""

    label: str
    start: float
    end: float
    color: str
    opacity: float = 0.15


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
    """Of the title row, the plot and the x axis; each legend row below the title adds
    ``LEGEND_ROW``."""
    hlines: tuple[HLine, ...] = ()
    spans: tuple[Span, ...] = ()
    clipped_label: str = ""
    """Non-empty: mark where a series goes above the top, with this legend label."""
    infinite_label: str = ""
    """Non-empty: mark infinite values apart from finite clipped ones, with this label."""
    legend: bool = True
    """False: no legend (a page showing one legend for several charts)."""


LEFT, RIGHT, TOP, BOTTOM = 72, 16, 30, 24
_CLIPPED, _INFINITE = "#f28e2b", "#d62728"


def _legend_kind(s: Series | Band) -> str:
    if isinstance(s, Band) or s.width == 0:
        return "band"
    return s.dash


def render(chart: Chart, series: Sequence[Series | Band]) -> str:
    """The chart as one ``<svg>`` element (no XML prolog, no external reference). Series
    are drawn in the order given: the last is on top."""
    legend: list[LegendItem] = [
        (s.label, s.color, _legend_kind(s)) for s in series if not isinstance(s, Series) or s.legend
    ]
    legend += [(h.label, h.color, h.dash) for h in chart.hlines]
    legend += [(span.label, span.color, "band") for span in chart.spans if span.label]
    marks, clipped_any, infinite_any = _all_top_marks(chart, series)
    if clipped_any:
        legend.append((chart.clipped_label, _CLIPPED, "mark"))
    if infinite_any:
        legend.append((chart.infinite_label or chart.clipped_label, _INFINITE, "mark"))
    if not chart.legend:
        legend = []
    layout = layout_legend(
        legend,
        title_width=text_width(chart.title, bold=True),
        left=LEFT,
        right=chart.width - RIGHT,
    )
    top = TOP + layout.rows_below * LEGEND_ROW
    height = chart.height + layout.rows_below * LEGEND_ROW
    frame = _Frame(chart, top, height)
    parts = [
        f'<svg viewBox="0 0 {chart.width} {height}" width="100%" role="img" '
        f'aria-label="{escape(chart.title)}" class="chart">',
        f"<title>{escape(chart.title)}</title>",
        f'<text class="title" x="{LEFT}" y="16" {FONT} font-weight="600">'
        f"{escape(chart.title)}</text>",
        *_y_axis(chart, frame),
        *_x_axis(chart, frame),
    ]
    for span in chart.spans:
        left, right = (float(v) for v in frame.px(np.array([span.start, span.end])))
        parts.append(
            f'<rect class="span" x="{left:.1f}" y="{top}" width="{max(right - left, 1.0):.1f}" '
            f'height="{frame.plot_h}" fill="{span.color}" fill-opacity="{span.opacity}"/>'
        )
    for line in chart.hlines:
        y = float(frame.py(np.array([line.y]))[0])
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + frame.plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{line.color}" stroke-dasharray="{line.dash}"/>'
        )
    for s in series:
        parts.append(_band(frame, s) if isinstance(s, Band) else _path(frame, s))
    if chart.clipped_label:
        parts.extend(_top_marks(frame, xs, ys, chart)[0] for xs, ys in marks)
    parts.extend(draw_legend(layout))
    parts.append("</svg>")
    return "\n".join(part for part in parts if part)


@dataclass(frozen=True)
class _Frame:
    """Where the plot is in a chart whose legend took ``top - TOP`` more pixels."""

    chart: Chart
    top: int
    height: int

    @property
    def plot_w(self) -> int:
        return self.chart.width - LEFT - RIGHT

    @property
    def plot_h(self) -> int:
        return self.height - self.top - BOTTOM

    def px(self, values: FloatArray) -> FloatArray:
        x0, x1 = self.chart.x_range
        span = x1 - x0 if x1 > x0 else 1.0
        return np.asarray(LEFT + (values - x0) / span * self.plot_w, dtype=np.float64)

    def py(self, values: FloatArray) -> FloatArray:
        y0, y1 = self.chart.y_range
        span = y1 - y0 if y1 > y0 else 1.0
        clipped = np.minimum(values, y1)
        return np.asarray(
            self.top + self.plot_h - (clipped - y0) / span * self.plot_h, dtype=np.float64
        )


def _path(frame: _Frame, s: Series) -> str:
    """``M``/``L`` commands (or ``H``/``V`` for steps), a new ``M`` after each gap; the
    area under each unbroken piece filled when the series asks."""
    pieces: list[tuple[float, list[str]]] = []  # (first x, commands) per unbroken piece
    drawing = False
    for x, y in zip(frame.px(s.x).tolist(), frame.py(s.y).tolist(), strict=True):
        if not math.isfinite(y):
            drawing = False
        elif not drawing:
            pieces.append((x, [f"M{x:.1f} {y:.1f}"]))
            drawing = True
        else:
            pieces[-1][1].append(f"H{x:.1f}V{y:.1f}" if s.step else f"L{x:.1f} {y:.1f}")
    parts = []
    if s.fill_opacity > 0 and pieces:
        bottom = frame.top + frame.plot_h
        area = "".join("".join(commands) + f"V{bottom}H{first:.1f}Z" for first, commands in pieces)
        parts.append(
            f'<path class="area" data-label="{escape(s.label)}" d="{area}" fill="{s.color}" '
            f'fill-opacity="{s.fill_opacity}" stroke="none"/>'
        )
    if s.width > 0:
        css = f' class="{s.css}"' if s.css else ""
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        opacity = f' stroke-opacity="{s.opacity}"' if s.opacity < 1 else ""
        line = "".join("".join(commands) for _, commands in pieces)
        parts.append(
            f'<path{css} data-label="{escape(s.label)}" d="{line}" fill="none" '
            f'stroke="{s.color}" stroke-width="{s.width}"{dash}{opacity} stroke-linejoin="round"/>'
        )
    return "\n".join(parts)


def _band(frame: _Frame, band: Band) -> str:
    """The range as one closed step outline: along the highs, back along the lows."""
    xs = frame.px(band.edges).tolist()
    highs = frame.py(band.high).tolist()
    lows = frame.py(band.low).tolist()
    n = len(highs)
    if n == 0:
        return ""
    commands = [f"M{xs[0]:.1f} {highs[0]:.1f}"]
    for i in range(n):
        commands.append(f"H{xs[i + 1]:.1f}")
        if i + 1 < n:
            commands.append(f"V{highs[i + 1]:.1f}")
    commands.append(f"V{lows[-1]:.1f}")
    for i in range(n - 1, -1, -1):
        commands.append(f"H{xs[i]:.1f}")
        if i > 0:
            commands.append(f"V{lows[i - 1]:.1f}")
    return (
        f'<path class="band" data-label="{escape(band.label)}" d="{"".join(commands)}Z" '
        f'fill="{band.color}" fill-opacity="{band.opacity}" stroke="none"/>'
    )


def _all_top_marks(
    chart: Chart, series: Sequence[Series | Band]
) -> tuple[list[tuple[FloatArray, FloatArray]], bool, bool]:
    """The series to mark on the top edge, and whether any value is clipped or infinite."""
    if not chart.clipped_label:
        return [], False, False
    top = chart.y_range[1]
    lines = [(s.x, s.y) for s in series if isinstance(s, Series)]
    above = any(bool(np.any((y > top) & np.isfinite(y))) for _, y in lines)
    infinite = any(bool(np.any(np.isposinf(y))) for _, y in lines)
    if not chart.infinite_label:
        above, infinite = above or infinite, False
    return lines, above, infinite


def _top_marks(
    frame: _Frame, x: FloatArray, ys: FloatArray, chart: Chart
) -> tuple[str, bool, bool]:
    """A thick bar on the top edge over each stretch above ``top`` (red where infinite)."""
    xs = frame.px(x)
    top = chart.y_range[1]
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
            f'<rect x="{left:.1f}" y="{frame.top - 2}" width="{right - left:.1f}" height="5" '
            f'fill="{color}"/>'
        )
    return "\n".join(marks), bool((kinds == 1).any()), bool((kinds == 2).any())


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


def _y_axis(chart: Chart, frame: _Frame) -> list[str]:
    y0, y1 = chart.y_range
    ticks = nice_ticks(y0, y1, count=max(2, min(5, frame.plot_h // 24)))
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    parts = []
    for tick in ticks:
        y = float(frame.py(np.array([tick]))[0])
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + frame.plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#e5e5e5"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" {FONT} fill="#555">'
            f"{tick:,.{decimals}f}</text>"
        )
    middle = frame.top + frame.plot_h / 2
    parts.append(
        f'<text x="12" y="{middle:.0f}" {FONT} fill="#555" text-anchor="middle" '
        f'transform="rotate(-90 12 {middle:.0f})">{escape(chart.y_unit)}</text>'
    )
    return parts


_X_LABEL_SPACING = 100  # px between time labels: "Mar 06 00:00" is ~80px wide


def _x_axis(chart: Chart, frame: _Frame) -> list[str]:
    """UTC ticks at a round interval, as many as the width holds; the date is shown where
    it changes."""
    x0, x1 = chart.x_range
    span = max(x1 - x0, 1.0)
    most = max(2, frame.plot_w // _X_LABEL_SPACING)
    interval = next((s for s in _TIME_STEPS if span / s <= most), _TIME_STEPS[-1])
    while span / interval > most:
        interval *= 2
    bottom = frame.top + frame.plot_h
    parts = [
        f'<line x1="{LEFT}" x2="{chart.width - RIGHT}" y1="{bottom}" y2="{bottom}" stroke="#999"/>'
    ]
    tick = math.ceil(x0 / interval) * interval
    last_day, last_right = "", -math.inf
    while tick <= x1:
        x = float(frame.px(np.array([float(tick)]))[0])
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 4}" stroke="#999"/>'
        )
        moment = datetime.fromtimestamp(tick, tz=UTC)
        day = moment.strftime("%b %d")
        label = day if interval >= 86400 else moment.strftime("%H:%M")
        if interval < 86400 and day != last_day:
            label = f"{day} {label}"
        # Centred on its tick, but never left of the plot (the y labels are there) nor off
        # the right edge; a label that would touch the one before is left out.
        width = text_width(label)
        left = min(max(x - width / 2, float(LEFT)), chart.width - 2 - width)
        if left >= last_right + 8:
            parts.append(
                f'<text x="{left:.1f}" y="{bottom + 16}" {FONT} fill="#555">{label}</text>'
            )
            last_day, last_right = day, left + width
        tick += interval
    return parts
