"""The report page's time charts, built from a replay's timelines with ``svg``.

Every run keeps one colour (and, past the palette's twelve, a dash) on every chart and in
the tables, so a run is found at a glance. What a chart is about is drawn last, on top: the
arrival rate over the forecasts, a run's replicas over what was ready.

* The arrival rate and each run's forecast: the forecasts of the reference that knows the
  future dashed and faint, the arrival rate on top; clipped at twice the highest arrival
  rate, so that one wild forecast does not flatten everything else.
* Replicas, one row per run: the whole span beside a zoom on its busiest window. Over the
  whole span each pixel shows the lowest to highest count running (a band) and their
  mean (the line): thousands of changes read as a band, not as a solid barcode. The zoom
  is the window with the most changes, as long as a pixel still holds a few polls.
* Lag, one chart per run, against the SLO.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from autoscaler.replay.runs import REFERENCE_RUNS
from autoscaler.replay.simulator import Timeline
from autoscaler.report.legend import legend_strip
from autoscaler.report.svg import (
    LEFT,
    RIGHT,
    Band,
    Chart,
    HLine,
    Series,
    Span,
    downsample_mean,
    downsample_minmax,
    envelope,
    nice_ceiling,
    render,
)

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#e7298a",
    "#6a3d9a",
    "#17becf",
    "#654522",
    "#f99379",
    "#b07aa1",
    "#1b9e77",
    "#a6761d",
    "#637939",
)
"""Twelve colours at least 33 apart (CIE76) from one another and from the arrival rate's
black, the needed line's grey, the SLO's red and the white page."""
DASHES = ("", "7 3", "2 2")
"""Past twelve runs the colours come round again with a dash (36 runs stay distinct)."""
ARRIVAL = "#111111"
NEEDED = "#6b6b6b"
READY = "#9aa0a6"
SLO_RED = "#d62728"
LIMIT = "#444444"
ZOOMED = "#f2c14e"
FORECAST_CLIP = 2.0
"""The forecast chart's top: at most this many times the highest arrival rate."""

WIDE, HALF = 1100, 550
WHOLE, ZOOM = 740, 360
"""A replica row: the whole span and its zoom side by side (the page gives each its share
of the width in this ratio, so both are drawn at the same scale)."""
ZOOM_LENGTHS = (
    (86400, "day"),
    (21600, "6 hours"),
    (7200, "2 hours"),
    (3600, "hour"),
    (1800, "30 minutes"),
    (900, "15 minutes"),
)
POLL_PIXELS = 2.0
"""A zoom is short enough that each poll has at least this many pixels..."""
CHANGE_PIXELS = 6.0
"""... or that its changes are at least this many pixels apart on average."""


@dataclass(frozen=True)
class RunStyle:
    color: str
    dash: str = ""


def run_styles(names: list[str]) -> dict[str, RunStyle]:
    """A colour (and dash) per run, in the runs' order."""
    size = len(PALETTE)
    return {
        name: RunStyle(PALETTE[i % size], DASHES[(i // size) % len(DASHES)])
        for i, name in enumerate(names)
    }


@dataclass(frozen=True)
class Window:
    """Steps ``start`` to ``stop`` (exclusive) of a timeline, and what they are."""

    start: int
    stop: int
    label: str

    def x_range(self, timeline: Timeline, step: float) -> tuple[float, float]:
        return (
            float(timeline.timestamps[self.start]) - step,
            float(timeline.timestamps[self.stop - 1]),
        )


def busiest_window(replicas: np.ndarray, step: float, plot_pixels: int) -> Window:
    """The window with the most replica changes, of the longest of ``ZOOM_LENGTHS`` that
    is a real zoom (at most half the span) and still readable at ``plot_pixels``: each poll
    at least ``POLL_PIXELS`` wide, or the changes ``CHANGE_PIXELS`` apart on average."""
    n = len(replicas)
    changed = np.concatenate([[0], (np.diff(replicas) != 0).astype(np.int64)])
    counts = np.concatenate([[0], np.cumsum(changed)])
    best: Window | None = None
    for seconds, name in ZOOM_LENGTHS:
        width = max(2, round(seconds / step))
        if width > n // 2 and best is not None:
            continue
        width = min(width, n)
        in_window = counts[width:] - counts[:-width]
        start = int(np.argmax(in_window))
        most = int(in_window[start])
        best = Window(start, start + width, f"busiest {name}: {most:,} changes")
        readable = plot_pixels / width >= POLL_PIXELS or most <= plot_pixels / CHANGE_PIXELS
        if width <= n // 2 and readable:
            break
    assert best is not None
    return best


def rate_plot(
    timelines: Mapping[str, Timeline],
    styles: Mapping[str, RunStyle],
    x_range: tuple[float, float],
) -> str:
    any_timeline = next(iter(timelines.values()))
    x = any_timeline.timestamps
    rate_x, rate_y = downsample_mean(x, any_timeline.arrival_rate)
    peak = float(np.max(any_timeline.arrival_rate))
    highest = peak
    series = []
    for name, timeline in timelines.items():
        forecast = timeline.forecast
        if not np.isfinite(forecast).any():
            continue
        highest = max(highest, float(np.nanmax(forecast)))
        style = styles[name]
        reference = name in REFERENCE_RUNS
        series.append(
            Series(
                f"{name} forecast",
                *downsample_mean(x, forecast),
                style.color,
                dash="4 3" if reference else style.dash,
                width=1.0 if reference else 1.2,
                opacity=0.55 if reference else 0.85,
                css="forecast",
            )
        )
    # Last, over a white casing: no forecast hides the rate they are all about.
    series.append(Series("", rate_x, rate_y, "#ffffff", width=3.5, legend=False))
    series.append(Series("arrival rate", rate_x, rate_y, ARRIVAL, width=1.4, css="arrival"))
    top = nice_ceiling(min(highest, FORECAST_CLIP * peak) * 1.02)
    chart = Chart(
        "Arrival rate and each run's forecast",
        x_range,
        (0.0, top),
        "messages/s",
        width=WIDE,
        height=300,
        clipped_label=f"forecast above {top:,.0f}" if highest > top else "",
    )
    return render(chart, series)


@dataclass(frozen=True)
class Limits:
    """The replica bounds every run is held to."""

    max_replicas: int
    partitions: int | None

    def lines(self) -> tuple[HLine, ...]:
        partitions = self.partitions
        if partitions is None or partitions > self.max_replicas:
            return (HLine(f"max_replicas {self.max_replicas}", self.max_replicas, LIMIT),)
        if partitions == self.max_replicas:
            return (HLine(f"max_replicas = partitions = {partitions}", partitions, LIMIT),)
        return (
            HLine(f"max_replicas {self.max_replicas}", self.max_replicas, LIMIT),
            HLine(f"partitions {partitions}", partitions, LIMIT, dash="2 3"),
        )


def replica_plots(
    timelines: Mapping[str, Timeline],
    styles: Mapping[str, RunStyle],
    *,
    throughput: float,
    step: float,
    limits: Limits,
) -> tuple[str, float]:
    """One row per run (whole span, busiest window) under one legend; and the y top."""
    needed_top = max(float(np.max(t.arrival_rate)) / throughput for t in timelines.values())
    highest = max(
        needed_top, limits.max_replicas, *(float(np.max(t.replicas)) for t in timelines.values())
    )
    top = nice_ceiling(highest * 1.05)
    rows = []
    for name, timeline in timelines.items():
        style = styles[name]
        x = timeline.timestamps
        window = busiest_window(timeline.replicas, step, ZOOM - LEFT - RIGHT)
        whole = Chart(
            f"{name}: replicas",
            (float(x[0]) - step, float(x[-1])),
            (0.0, top),
            "replicas",
            width=WHOLE,
            height=180,
            hlines=limits.lines(),
            spans=(Span("", *window.x_range(timeline, step), ZOOMED, 0.25),),
            legend=False,
        )
        zoom = Chart(
            window.label,
            window.x_range(timeline, step),
            (0.0, top),
            "replicas",
            width=ZOOM,
            height=180,
            hlines=limits.lines(),
            legend=False,
        )
        part = slice(window.start, window.stop)
        rows.append(
            '<div class="pair">'
            + render(whole, replica_series(timeline, style, step, throughput, WHOLE))
            + render(zoom, replica_series(timeline, style, step, throughput, ZOOM, part))
            + "</div>"
        )
    legend = legend_strip(
        [
            ("ready", READY, "band"),
            ("running: lowest to highest in a pixel", PALETTE[0], "band"),
            ("running (mean in a pixel)", PALETTE[0], ""),
            ("needed", NEEDED, ""),
            *((h.label, h.color, h.dash) for h in limits.lines()),
            ("the zoomed window (at right)", ZOOMED, "band"),
        ],
        WIDE,
        left=LEFT,
        right=RIGHT,
    )
    return legend + "\n" + "\n".join(rows), top


def replica_series(
    timeline: Timeline,
    style: RunStyle,
    step: float,
    throughput: float,
    width: int,
    part: slice = slice(None),
) -> list[Series | Band]:
    x = timeline.timestamps[part]
    pixels = width - LEFT - RIGHT
    running = envelope(x, timeline.replicas[part].astype(np.float64), step, pixels)
    ready = envelope(x, timeline.ready_replicas[part].astype(np.float64), step, pixels)
    series: list[Series | Band] = [
        Series(
            "ready", ready.edges, _held(ready.mean), READY, step=True, width=0, fill_opacity=0.35
        )
    ]
    if running.spread:
        series.append(
            Band("running range", running.edges, running.low, running.high, style.color, 0.3)
        )
    series.append(
        Series(
            "running",
            running.edges,
            _held(running.mean),
            style.color,
            step=True,
            dash=style.dash,
            css="running",
        )
    )
    needed_x, needed_y = downsample_mean(x, timeline.arrival_rate[part] / throughput, 2 * pixels)
    series.append(Series("needed", needed_x, needed_y, NEEDED, width=1.0, css="needed"))
    return series


def _held(values: np.ndarray) -> np.ndarray:
    """Bucket values for a step line over the buckets' edges (the last one held)."""
    return np.append(values, values[-1]).astype(np.float64)


LAG_CLIP_SLO_MULTIPLE = 10.0
"""The lag plots stop at this many times the SLO: beyond it, the SLO line would be lost."""


def lag_plots(
    timelines: Mapping[str, Timeline],
    styles: Mapping[str, RunStyle],
    x_range: tuple[float, float],
    slo: float,
) -> tuple[str, float]:
    finite = [t.lag_seconds[np.isfinite(t.lag_seconds)] for t in timelines.values()]
    highest = max((float(np.max(f)) for f in finite if len(f)), default=0.0)
    top = min(nice_ceiling(max(highest * 1.02, 2 * slo)), LAG_CLIP_SLO_MULTIPLE * slo)
    plots = []
    for name, timeline in timelines.items():
        style = styles[name]
        series = [
            Series(
                "lag",
                *downsample_minmax(timeline.timestamps, timeline.lag_seconds),
                style.color,
                dash=style.dash,
            )
        ]
        chart = Chart(
            f"{name}: lag (seconds to drain)",
            x_range,
            (0.0, top),
            "seconds",
            width=WIDE,
            height=160,
            hlines=(HLine(f"SLO {slo:g} s", slo, SLO_RED),),
            clipped_label=f"above {top:,.0f} s",
            infinite_label="infinite",
        )
        plots.append(render(chart, series))
    return "\n".join(plots), top
