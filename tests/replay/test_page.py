"""The report page as a user reads it: eleven runs, each its own colour; what a chart is
about drawn on top; replicas readable at thousands of changes; best on cost only among the
runs meeting the SLO; the settings, the worst incident and the cost/violation scatter.

One real replay of eleven runs (``eleven_runs`` in conftest); synthetic timelines where a
case must be exact. Text boxes are estimated with ``text_width`` (the layout's own
estimate); ``test_report_browser.py`` measures them in Chromium.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from itertools import combinations
from typing import Any

import numpy as np
import pytest
from report_runs import ELEVEN_RUNS

from autoscaler.replay.engine import ReplayResult
from autoscaler.replay.runs import DEFAULT_SLO_BUDGET_PERCENT
from autoscaler.replay.simulator import Timeline
from autoscaler.report.charts import (
    ARRIVAL,
    NEEDED,
    PALETTE,
    SLO_RED,
    WHOLE,
    Limits,
    busiest_window,
    replica_plots,
    run_styles,
)
from autoscaler.report.incident import worst_incident
from autoscaler.report.legend import text_width
from autoscaler.report.page import best_note, html_table, render_html
from autoscaler.report.svg import LEFT, RIGHT

SVG = "{http://www.w3.org/2000/svg}"
T0 = 1425592988.0


@pytest.fixture(scope="module")
def page(eleven_runs: ReplayResult) -> str:
    return render_html(eleven_runs, eleven_runs.summary())


def _svgs(html: str) -> list[ET.Element]:
    return [
        ET.fromstring(svg.replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1))
        for svg in re.findall(r"<svg .*?</svg>", html, re.DOTALL)
    ]


def _chart(html: str, label: str) -> ET.Element:
    return next(svg for svg in _svgs(html) if svg.get("aria-label") == label)


Box = tuple[float, float, float, float]


def _text_boxes(root: ET.Element) -> list[tuple[str, Box]]:
    boxes = []
    for text in root.iter(f"{SVG}text"):
        if "transform" in text.attrib:
            continue
        label = text.text or ""
        width = text_width(label, bold=text.get("font-weight") == "600")
        x, y = float(text.get("x", 0)), float(text.get("y", 0))
        anchor = text.get("text-anchor", "start")
        left = x - width if anchor == "end" else x - width / 2 if anchor == "middle" else x
        boxes.append((label, (left, y - 11, left + width, y + 3)))
    return boxes


def _lab(color: str) -> tuple[float, float, float]:
    """CIELAB of an sRGB hex colour (D65)."""
    rgb = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    x = (0.4124 * lin[0] + 0.3576 * lin[1] + 0.1805 * lin[2]) / 0.95047
    y = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    z = (0.0193 * lin[0] + 0.1192 * lin[1] + 0.9505 * lin[2]) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def test_every_run_has_its_own_colour_that_nothing_else_uses() -> None:
    styles = run_styles(ELEVEN_RUNS)
    assert len({s.color for s in styles.values()}) == 11
    for a, b in combinations([*PALETTE, ARRIVAL, NEEDED, SLO_RED, "#ffffff"], 2):
        assert math.dist(_lab(a), _lab(b)) > 30, (a, b)  # CIE76: clearly different
    many = run_styles([f"run{i}" for i in range(30)])  # past the palette: a dash as well
    assert len({(s.color, s.dash) for s in many.values()}) == 30


def test_the_page_keeps_each_runs_colour_in_the_tables_and_charts(page: str) -> None:
    swatches = re.findall(r'<tr[^>]* data-run="([^"]+)"><td class="name[^"]*"><span '
                          r'class="swatch" data-color="([^"]+)"', page)  # fmt: skip
    comparison = dict(swatches[: len(ELEVEN_RUNS)])
    assert list(comparison) == ELEVEN_RUNS
    assert len(set(comparison.values())) == 11
    scatter = _chart(page, "replica-hours against SLO-violation minutes, one point per run")
    points = {c.get("data-run"): c.get("stroke") for c in scatter.iter(f"{SVG}circle")
              if c.get("class") == "run"}  # fmt: skip
    assert points == comparison


def test_the_arrival_rate_is_drawn_last_over_the_forecasts(page: str) -> None:
    chart = _chart(page, "Arrival rate and each run's forecast")
    paths = chart.findall(f"{SVG}path")
    assert paths[-1].get("class") == "arrival"
    assert paths[-1].get("stroke") == ARRIVAL
    forecasts = [p for p in paths if p.get("class") == "forecast"]
    assert len(forecasts) == 8  # every run with a model, the oracle-behavior reference too
    reference = next(p for p in forecasts if p.get("data-label") == "oracle-behavior forecast")
    assert reference.get("stroke-dasharray")
    assert float(reference.get("stroke-opacity", 1)) < 0.6


def test_no_text_overprints_another_and_everything_stays_in_its_view_box(page: str) -> None:
    for svg in _svgs(page):
        _, _, width, height = (float(v) for v in svg.get("viewBox", "").split())
        boxes = _text_boxes(svg)
        for label, (left, top, right, bottom) in boxes:
            assert left >= 0, (svg.get("aria-label"), label)
            assert right <= width, (svg.get("aria-label"), label)
            assert top >= 0, (svg.get("aria-label"), label)
            assert bottom <= height, (svg.get("aria-label"), label)
        for (a, box_a), (b, box_b) in combinations(boxes, 2):
            overlap = box_a[0] < box_b[2] and box_b[0] < box_a[2]
            overlap = overlap and box_a[1] < box_b[3] and box_b[1] < box_a[3]
            assert not overlap, (svg.get("aria-label"), a, b)


def test_replica_charts_show_the_bounds_and_ready_under_running(page: str) -> None:
    charts = [svg for svg in _svgs(page) if svg.get("aria-label", "").endswith(": replicas")]
    assert len(charts) == len(ELEVEN_RUNS) + 1  # and the incident's
    strip = next(svg for svg in _svgs(page) if "legend-strip" in svg.get("class", ""))
    legend = [t.text for t in strip.iter(f"{SVG}text")]
    assert "max_replicas 30" in legend
    assert "partitions 24" in legend
    for chart in charts:
        dashed = {line.get("stroke-dasharray") for line in chart.iter(f"{SVG}line")}
        assert {"6 4", "2 3"} <= dashed  # max_replicas and the partitions
        paths = chart.findall(f"{SVG}path")
        labels = [(p.get("data-label"), p.get("class")) for p in paths]
        assert labels.index(("ready", "area")) < labels.index(("running", "running"))
        ready_lines = [
            p for p in paths if p.get("data-label") == "ready" and p.get("fill") == "none"
        ]
        assert ready_lines == []  # an area, not a line drawn over running


def _flapping(steps: int, every: int) -> Timeline:
    """A reactive-like run: 8 and 50 replicas in turn, ``every`` polls each."""
    replicas = np.where((np.arange(steps) // every) % 2 == 0, 8, 50).astype(np.int64)
    zeros = np.zeros(steps)
    return Timeline(
        timestamps=T0 + 15.0 * np.arange(steps, dtype=np.float64),
        arrival_rate=np.full(steps, 2500.0),
        forecast=np.full(steps, np.nan),
        desired_replicas=replicas,
        replicas=replicas,
        ready_replicas=np.maximum(replicas - 2, 0),
        lag_messages=zeros,
        lag_seconds=zeros,
        scale_events=int(np.count_nonzero(np.diff(replicas))),
    )


def test_thousands_of_changes_read_as_a_band_and_the_busiest_window_beside() -> None:
    timeline = _flapping(17280, 8)  # three days of 15 s polls, 2,160 changes
    html, _ = replica_plots(
        {"reactive": timeline},
        run_styles(["reactive"]),
        throughput=250.0,
        step=15.0,
        limits=Limits(50, None),
    )
    whole, zoom = _svgs(html)[1:]
    pixels = WHOLE - LEFT - RIGHT
    running = next(p for p in whole.findall(f"{SVG}path") if p.get("class") == "running")
    assert running.get("d", "").count("H") <= pixels  # a point a pixel, not a barcode
    band = next(p for p in whole.findall(f"{SVG}path") if p.get("class") == "band")
    assert band.get("fill-opacity")
    title = next(t.text for t in zoom.iter(f"{SVG}text") if t.get("class") == "title")
    assert title is not None
    assert title.startswith("busiest ")
    shaded = next(r for r in whole.iter(f"{SVG}rect") if r.get("class") == "span")
    assert float(shaded.get("width", 0)) < pixels / 2


@pytest.mark.parametrize(
    ("steps", "every", "polls"),
    [
        # 272 px: a window with at most 45 changes, or of at most 136 polls, reads.
        pytest.param(17280, 8, 240, id="flapping-zooms-to-an-hour"),
        pytest.param(17280, 400, 5760, id="calm-zooms-to-a-day"),
        pytest.param(200, 8, 60, id="short-span-half-at-most"),
    ],
)
def test_the_busiest_window_is_as_long_as_stays_readable(
    steps: int, every: int, polls: int
) -> None:
    replicas = _flapping(steps, every).replicas
    window = busiest_window(replicas, 15.0, 272)
    assert window.stop - window.start == polls
    inside = int(np.count_nonzero(np.diff(replicas[window.start : window.stop])))
    assert f": {inside:,} changes" in window.label


def _run(name: str, hours: float, pct: float) -> dict[str, Any]:
    return {
        "predictor": name,
        "replica_hours": hours,
        "efficiency": 100.0 / hours,
        "slo_violation_pct": pct,
        "slo_violation_minutes": pct * 43.2,
    }


class _Marked(HTMLParser):
    """{run: [headers of the cells marked best]} and the runs flagged over the budget."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[str] = []
        self.best: dict[str, list[str]] = {}
        self.over: list[str] = []
        self._run = ""
        self._column = -1
        self._in_th = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "th":
            self._in_th = True
        if tag == "tr" and values.get("data-run"):
            self._run, self._column = values["data-run"] or "", -1
            self.best[self._run] = []
            if "over-slo" in (values.get("class") or ""):
                self.over.append(self._run)
        if tag == "td":
            self._column += 1
            if "best" in (values.get("class") or "").split():
                self.best[self._run].append(self.headers[self._column])

    def handle_endtag(self, tag: str) -> None:
        if tag == "th":
            self._in_th = False

    def handle_data(self, data: str) -> None:
        if self._in_th:
            self.headers.append(data)


def _marks(results: list[dict[str, Any]], budget: float) -> _Marked:
    parser = _Marked()
    parser.feed(html_table(results, budget))
    return parser


def test_best_on_cost_is_only_among_the_runs_that_meet_the_slo() -> None:
    results = [
        _run("reactive", 100.0, 0.5),
        _run("cheap", 10.0, 99.95),  # the bug report's case: cheapest by never scaling up
        _run("good", 80.0, 0.2),
        _run("oracle", 50.0, 0.0),
    ]
    marked = _marks(results, 1.0)
    assert marked.best["good"] == [
        "replica-hours (vs reactive)", "efficiency", "SLO-violation minutes (vs reactive)",
        "SLO violation %",
    ]  # fmt: skip
    assert marked.best["cheap"] == []
    assert marked.over == ["cheap"]
    assert "no ranked run meets it" not in best_note(results, 1.0)


def test_when_no_run_meets_the_slo_none_is_best_on_cost_and_the_page_says_so() -> None:
    results = [_run("reactive", 100.0, 5.0), _run("cheap", 10.0, 99.95), _run("b", 90.0, 2.0)]
    marked = _marks(results, 1.0)
    costs = {"replica-hours (vs reactive)", "efficiency"}
    assert not any(costs & set(cells) for cells in marked.best.values())
    assert marked.best["b"] == ["SLO-violation minutes (vs reactive)", "SLO violation %"]
    assert "no ranked run meets it, so none is marked best on cost" in best_note(results, 1.0)


class _Settings(HTMLParser):
    """The settings table as {run: {header: text}}."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[str] = []
        self.rows: dict[str, list[str]] = {}
        self._inside = False
        self._cell: list[str] | None = None
        self._run = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "table":
            self._inside = "settings" in (values.get("class") or "")
        elif self._inside and tag == "tr" and values.get("data-run"):
            self._run = values["data-run"] or ""
            self.rows[self._run] = []
        elif self._inside and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._inside = False
        elif self._inside and tag in ("td", "th") and self._cell is not None:
            text = "".join(self._cell)
            (self.rows[self._run] if tag == "td" else self.headers).append(text)
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_the_settings_table_says_what_each_run_decided_with(page: str) -> None:
    parser = _Settings()
    parser.feed(page)
    table = {
        run: dict(zip(parser.headers, cells, strict=True)) for run, cells in parser.rows.items()
    }
    assert list(table) == ELEVEN_RUNS
    reactive, none, naive, oracle = (table[r] for r in ("reactive", "none", "naive", "oracle"))
    assert reactive["decides with"] == "KEDA formula"
    assert reactive["lag threshold"] == "100"  # the target's own
    assert reactive["quantile"] == "–"
    assert reactive["min dwell (s)"] == "0"  # reactive is KEDA at the HPA's defaults
    assert reactive["scale down (HPA behavior)"] == "window 300 s; -100%/15s"
    assert reactive["throughput known"] == "not used"
    assert none["decides with"] == "no forecast (capacity sizing)"
    assert none["min dwell (s)"] == "120"  # the target's actuation
    assert none["throughput known"] == "100 msg/s"
    assert naive["quantile"] == "0.9"
    assert naive["scale up (HPA behavior)"] == "window 0 s; max of +4 pods/15s, +100%/15s"
    assert naive["replicas"] == "0–30"
    assert oracle["decides with"] == "perfect foresight (schedule)"
    assert oracle["lag threshold"] == "–"
    assert oracle["replicas"] == "0–30"


def _lagging(stretches: list[tuple[int, int]], steps: int = 200) -> Timeline:
    lag = np.zeros(steps)
    for start, stop in stretches:
        lag[start:stop] = 90.0
    timeline = _flapping(steps, 8)
    return Timeline(**{**timeline.__dict__, "lag_seconds": lag})


def test_the_worst_incident_is_the_longest_stretch_over_the_slo_of_a_ranked_run() -> None:
    timelines = {
        "a": _lagging([(10, 13), (50, 54)]),
        "b": _lagging([(100, 105)]),
        "oracle": _lagging([(0, 50)]),  # a reference: never the incident
    }
    incident = worst_incident(timelines, 60.0)
    assert incident is not None
    assert (incident.run, incident.start, incident.stop) == ("b", 100, 105)
    assert incident.minutes(15.0) == 1.25
    assert worst_incident({"a": _lagging([])}, 60.0) is None


def test_the_page_zooms_on_the_worst_incident_with_every_runs_lag(
    page: str, eleven_runs: ReplayResult
) -> None:
    incident = worst_incident(eleven_runs.timelines, eleven_runs.slo_seconds)
    assert incident is not None  # the scenario has one (guards the test)
    assert f"<code>{incident.run}</code>: {incident.minutes(60.0):,.1f} minutes over" in page
    lags = _chart(page, "Lag of every run over the same window (seconds to drain)")
    paths = [p for p in lags.findall(f"{SVG}path") if p.get("data-label")]
    assert len(paths) == len(ELEVEN_RUNS)
    assert paths[-1].get("class") == "incident"  # on top of the others


def test_the_scatter_has_a_labelled_point_per_run_and_the_slo_budget(page: str) -> None:
    scatter = _chart(page, "replica-hours against SLO-violation minutes, one point per run")
    points = [c for c in scatter.iter(f"{SVG}circle") if c.get("class") == "run"]
    assert [p.get("data-run") for p in points] == ELEVEN_RUNS
    assert [p.get("fill") == "#ffffff" for p in points][-2:] == [True, True]  # references
    labels = {t.text for t in scatter.iter(f"{SVG}text") if t.get("class") == "point-label"}
    assert set(ELEVEN_RUNS) <= labels
    legend = [t.text for t in scatter.iter(f"{SVG}text")]
    assert "SLO budget: 1% of the time (14 min)" in legend  # 1% of the 24 hours replayed


def test_the_summary_carries_the_budget_and_each_runs_settings(eleven_runs: ReplayResult) -> None:
    summary = eleven_runs.summary()
    assert summary["slo_budget_percent"] == DEFAULT_SLO_BUDGET_PERCENT
    assert summary["slo_budget_source"] == "default"
    assert all(set(r["settings"]) >= {"lag_threshold", "max_replicas"} for r in summary["results"])


def test_tune_budgets_by_the_same_default() -> None:
    import argparse

    from autoscaler.commands.tune import add_parser

    commands = argparse.ArgumentParser().add_subparsers()
    add_parser(commands)
    tune = commands.choices["tune"]
    assert tune.get_default("budget") == DEFAULT_SLO_BUDGET_PERCENT
