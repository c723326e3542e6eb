"""The worst incident: the longest stretch a run spent over the SLO, zoomed on.

Found over the runs that are ranked (a reference knows the future); ties go to the higher
lag. The zoom shows the stretch with as much time again on each side (half an hour at
least), in three charts: the arrival rate and that run's forecast, its replicas, and the lag
of every run over the same window, so that what went wrong and who else it hit read
together.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

import numpy as np

from autoscaler.replay.runs import REFERENCE_RUNS
from autoscaler.replay.simulator import Timeline
from autoscaler.report.charts import (
    ARRIVAL,
    HALF,
    LAG_CLIP_SLO_MULTIPLE,
    SLO_RED,
    WIDE,
    Limits,
    RunStyle,
    replica_series,
)
from autoscaler.report.svg import Chart, HLine, Series, Span, nice_ceiling, render

MARGIN_SECONDS = 1800.0
"""At least this much time is shown on each side of the stretch."""


@dataclass(frozen=True)
class Incident:
    run: str
    start: int
    stop: int
    """Steps ``start`` to ``stop`` (exclusive) had lag over the SLO, one stretch."""
    peak_lag_seconds: float

    def minutes(self, step: float) -> float:
        return (self.stop - self.start) * step / 60.0


def worst_incident(timelines: Mapping[str, Timeline], slo: float) -> Incident | None:
    """The longest stretch over the SLO of any ranked run; None when no lag exceeded it."""
    worst: Incident | None = None
    for name, timeline in timelines.items():
        if name in REFERENCE_RUNS:
            continue
        over = (timeline.lag_seconds > slo).astype(np.int8)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], over, [0]])))
        for start, stop in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
            peak = float(np.max(timeline.lag_seconds[start:stop]))
            candidate = Incident(name, start, stop, peak)
            if worst is None or (stop - start, peak) > (
                worst.stop - worst.start,
                worst.peak_lag_seconds,
            ):
                worst = candidate
    return worst


def incident_html(
    incident: Incident | None,
    timelines: Mapping[str, Timeline],
    styles: Mapping[str, RunStyle],
    *,
    step: float,
    slo: float,
    throughput: float,
    limits: Limits,
) -> str:
    """The section's text and charts."""
    if incident is None:
        return (
            '<p class="note">No ranked run let the lag exceed the SLO: no incident to zoom on.</p>'
        )
    timeline = timelines[incident.run]
    times = timeline.timestamps
    pad = max(incident.stop - incident.start, math.ceil(MARGIN_SECONDS / step))
    low, high = max(0, incident.start - pad), min(len(times), incident.stop + pad)
    window = slice(low, high)
    x_range = (float(times[low]) - step, float(times[high - 1]))
    over = Span(
        "over the SLO",
        float(times[incident.start]) - step,
        float(times[incident.stop - 1]),
        SLO_RED,
        0.12,
    )
    style = styles[incident.run]
    peak = "∞" if math.isinf(incident.peak_lag_seconds) else f"{incident.peak_lag_seconds:,.0f}"
    began, ended = float(times[incident.start]) - step, float(times[incident.stop - 1])
    text = (
        f'<p class="note"><code>{escape(incident.run)}</code>: '
        f"{incident.minutes(step):,.1f} minutes over the SLO in one stretch, from "
        f"{_clock(began)} to {_clock(ended)} UTC, lag up to {peak} s: the longest of any "
        "ranked run. Shaded red; the same window for every run in the lag chart.</p>"
    )
    return "\n".join(
        [
            text,
            '<div class="pair even">',
            _rate(timeline, window, x_range, over, style, incident.run),
            _replicas(
                timeline, window, x_range, over, style, incident.run, step, throughput, limits
            ),
            "</div>",
            _lags(timelines, styles, window, x_range, over, incident.run, slo),
            _plan(timeline, incident, style, throughput),
        ]
    )


def plan_before(timeline: Timeline, incident: Incident) -> int | None:
    """The poll whose plan the incident ran into: the last planned poll before it began
    (the decision at the end of the step before), None when the run did not plan."""
    plans = timeline.plans
    if plans is None:
        return None
    for index in range(min(incident.start, len(plans.replicas)) - 1, -1, -1):
        if plans.replicas[index, 0] >= 0:
            return index
    return None


def _plan(timeline: Timeline, incident: Incident, style: RunStyle, throughput: float) -> str:
    """What the run's plan expected just before the incident, against what came: the
    arrivals it expected (in replicas' worth of work) and the replicas it planned, beside
    the arrivals and replicas that were."""
    index = plan_before(timeline, incident)
    plans = timeline.plans
    if index is None or plans is None:
        return ""
    step = plans.step_seconds
    planned = plans.replicas[index].astype(np.float64)
    used = planned >= 0
    planned, expected = planned[used], plans.arrivals[index][used].astype(np.float64)
    made = float(timeline.timestamps[index])
    plan_x = made + step * np.arange(len(planned), dtype=np.float64)
    end = float(plan_x[-1]) + step
    came = (timeline.timestamps > made - 1e-6) & (timeline.timestamps <= end + 1e-6)
    actual_x = timeline.timestamps[came]
    series = [
        Series("expected arrivals (replicas' worth)", plan_x, expected / throughput, ARRIVAL,
               step=True, dash="4 3", width=1.4),
        Series("arrivals that came (replicas' worth)", actual_x,
               timeline.arrival_rate[came] / throughput, ARRIVAL, width=1.4, css="arrival"),
        Series("planned replicas", plan_x, planned, style.color, step=True, dash="4 3",
               width=2.0, css="planned"),
        Series("replicas that ran", actual_x, timeline.replicas[came].astype(np.float64),
               style.color, step=True, width=2.0),
    ]  # fmt: skip
    top = max(
        float(np.max(planned)),
        float(np.nanmax(expected / throughput)) if np.isfinite(expected).any() else 0.0,
        float(np.max(timeline.arrival_rate[came] / throughput)) if came.any() else 0.0,
        float(np.max(timeline.replicas[came])) if came.any() else 0.0,
    )
    chart = Chart(
        f"The plan made at {_clock(made)} UTC, just before the incident: expected vs what came",
        (made - step, end),
        (0.0, nice_ceiling(top * 1.05)),
        "replicas",
        width=WIDE,
        height=220,
    )
    note = (
        '<p class="note">The planner\'s schedule at the last poll before the stretch over the '
        "SLO, and the arrival rate it planned for (at the quantile in force where the "
        "decision commits, the median beyond), against what arrived and what ran: where "
        "the dashed arrivals lie below the solid ones, the load outran the forecast.</p>"
    )
    return note + render(chart, series)


def _rate(
    timeline: Timeline,
    window: slice,
    x_range: tuple[float, float],
    over: Span,
    style: RunStyle,
    run: str,
) -> str:
    x = timeline.timestamps[window]
    rate = timeline.arrival_rate[window]
    forecast = timeline.forecast[window]
    series = []
    top = float(np.max(rate))
    if np.isfinite(forecast).any():
        series.append(Series(f"{run} forecast", x, forecast, style.color, dash=style.dash))
        top = max(top, float(np.nanmax(forecast)))
    series.append(Series("arrival rate", x, rate, ARRIVAL, width=1.4, css="arrival"))
    chart = Chart(
        "Arrival rate" + (" and forecast" if len(series) > 1 else ""),
        x_range,
        (0.0, nice_ceiling(top * 1.02)),
        "messages/s",
        width=HALF,
        height=200,
        spans=(over,),
    )
    return render(chart, series)


def _replicas(
    timeline: Timeline,
    window: slice,
    x_range: tuple[float, float],
    over: Span,
    style: RunStyle,
    run: str,
    step: float,
    throughput: float,
    limits: Limits,
) -> str:
    series = replica_series(timeline, style, step, throughput, HALF, window)
    highest = max(
        limits.max_replicas,
        float(np.max(timeline.replicas[window])),
        float(np.max(timeline.arrival_rate[window])) / throughput,
    )
    chart = Chart(
        f"{run}: replicas",
        x_range,
        (0.0, nice_ceiling(highest * 1.05)),
        "replicas",
        width=HALF,
        height=200,
        hlines=limits.lines(),
        spans=(Span("", over.start, over.end, over.color, over.opacity),),
    )
    return render(chart, series)


def _lags(
    timelines: Mapping[str, Timeline],
    styles: Mapping[str, RunStyle],
    window: slice,
    x_range: tuple[float, float],
    over: Span,
    run: str,
    slo: float,
) -> str:
    highest = 2 * slo
    series = []
    for name, timeline in timelines.items():
        lag = timeline.lag_seconds[window]
        finite = lag[np.isfinite(lag)]
        if len(finite):
            highest = max(highest, float(np.max(finite)))
        if name == run:
            continue
        style = styles[name]
        series.append(
            Series(name, timeline.timestamps[window], lag, style.color, dash=style.dash, width=1.0)
        )
    ours = timelines[run]
    style = styles[run]
    series.append(
        Series(
            f"{run} (the incident)",
            ours.timestamps[window],
            ours.lag_seconds[window],
            style.color,
            dash=style.dash,
            width=2.5,
            css="incident",
        )
    )
    top = min(nice_ceiling(highest * 1.02), LAG_CLIP_SLO_MULTIPLE * slo)
    chart = Chart(
        "Lag of every run over the same window (seconds to drain)",
        x_range,
        (0.0, top),
        "seconds",
        width=WIDE,
        height=220,
        hlines=(HLine(f"SLO {slo:g} s", slo, SLO_RED),),
        spans=(Span("", over.start, over.end, over.color, over.opacity),),
        clipped_label=f"above {top:,.0f} s",
        infinite_label="infinite",
    )
    return render(chart, series)


def _clock(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%b %d %H:%M")
