"""The replay report: files that reproduce the summary, a page that opens offline, a table.

One real replay (the engine, the simulator and the decision core, no mock) over a short
synthetic trace that goes quiet twice a day: with ``min_replicas: 0`` the consumers scale
to zero, so some lag has no replica to drain it and is infinite, the case most likely to
be written or summarized wrong.
"""

from __future__ import annotations

import csv
import json
import math
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import KAFKA, make_target

from autoscaler.replay.engine import ReplayResult, ReplaySettings, replay
from autoscaler.replay.simulator import Timeline
from autoscaler.report.files import CSV_COLUMNS, write_report, write_timeseries
from autoscaler.report.page import html_table
from autoscaler.report.svg import downsample_mean, downsample_minmax
from autoscaler.report.tables import (
    COLUMNS,
    LEGEND,
    changes_vs_reactive,
    comparison_table,
    frontier_lines,
    iso_utc,
    percent_change,
    verdict,
)
from autoscaler.traces import from_points

RUNS = ["reactive", "none", "naive", "oracle"]
THROUGHPUT = 100.0
POLL = 60.0
STARTUP = 120.0
LEAD_MARGIN = 30.0  # the predictor's lead_margin_seconds default
DAY = 86400.0


@pytest.fixture(scope="module")
def result() -> ReplayResult:
    minutes = np.arange(int(2.5 * 1440))
    daily = np.maximum(0.0, 600.0 * np.sin(2 * np.pi * minutes / 1440))
    bursts = 400.0 * (minutes % 480 < 10)
    noise = np.random.default_rng(7).uniform(0.0, 20.0, len(minutes))
    rates = np.where(daily > 0, daily + noise, 0.0) + bursts
    trace = from_points(
        1424986973.0 + 60.0 * minutes.astype(np.float64), rates, "rate", "synthetic", "test"
    )
    target = make_target(
        min_replicas=0,
        predictor={"model": "none", "lead_margin_seconds": LEAD_MARGIN},
        triggers=[{**KAFKA, "per_replica_throughput": THROUGHPUT}],
    )
    settings = ReplaySettings(
        per_replica_throughput=THROUGHPUT,
        startup_seconds=STARTUP,
        poll_interval_seconds=POLL,
        partitions=None,
        warmup_seconds=DAY / 2,
    )
    return replay(target, trace, settings, RUNS)


@pytest.fixture(scope="module")
def output(result: ReplayResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("report") / "out"  # created by write_report
    written = write_report(result, directory)
    expected = ["summary.json", *(f"timeseries-{run}.csv" for run in RUNS), "report.html"]
    assert [p.name for p in written] == expected
    assert all(p.is_file() and p.parent == directory for p in written)
    return directory


@pytest.fixture(scope="module")
def summary(output: Path) -> dict[str, Any]:
    text = (output / "summary.json").read_text(encoding="utf-8")
    assert "NaN" not in text
    assert "Infinity" not in text
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def _read_csv(path: Path) -> tuple[list[str], dict[str, list[str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    return header, {name: [row[i] for row in body] for i, name in enumerate(header)}


def _floats(cells: list[str]) -> np.ndarray:
    return np.array([math.nan if cell == "" else float(cell) for cell in cells])


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _recompute(columns: dict[str, list[str]], summary: dict[str, Any]) -> dict[str, Any]:
    """Every number of a run's summary entry but runtime, from its CSV and the summary's
    settings alone (the lead time comes from the target this test configured)."""
    step = summary["step_seconds"]
    slo = summary["slo_max_lag_seconds"]
    rates = _floats(columns["arrival_rate"])
    forecast = _floats(columns["forecast"])
    replicas = _floats(columns["replicas"])
    desired = _floats(columns["desired_replicas"])
    lag = _floats(columns["lag_seconds"])
    replica_hours = replicas.sum() * step / 3600
    lower = rates.sum() * step / summary["per_replica_throughput"] / 3600
    violations = int(np.count_nonzero(lag > slo))

    lead = max(1, round((summary["startup_seconds"] + LEAD_MARGIN) / step))
    made = np.arange(len(rates) - lead)
    has = np.isfinite(forecast[made])
    mae = mase = None
    if has.any():
        model_error = np.abs(forecast[made] - rates[made + lead])
        mae = float(model_error[has].mean())
        usable = has & (made + lead - round(DAY / step) >= 0)
        if usable.any():
            reference = np.abs(rates[made + lead - round(DAY / step)] - rates[made + lead])
            mase = float(model_error[usable].mean() / reference[usable].mean())
    return {
        "replica_hours": replica_hours,
        "efficiency": lower / replica_hours,
        "slo_violation_pct": 100 * violations / len(lag),
        "slo_violation_minutes": violations * step / 60,
        "lag_seconds_p50": _finite_or_none(float(np.percentile(lag, 50))),
        "lag_seconds_p99": _finite_or_none(float(np.percentile(lag, 99))),
        "lag_seconds_max": _finite_or_none(float(lag.max())),
        "scale_events": int(np.count_nonzero(desired != replicas)),
        "forecast_mae": mae,
        "forecast_mase": mase,
    }


@pytest.mark.parametrize("run", [pytest.param(run, id=run) for run in RUNS])
def test_the_csv_reproduces_the_summary(output: Path, summary: dict[str, Any], run: str) -> None:
    header, columns = _read_csv(output / f"timeseries-{run}.csv")
    assert header == [*CSV_COLUMNS]
    assert header[:7] == [
        "timestamp", "arrival_rate", "forecast", "desired_replicas", "ready_replicas",
        "lag_messages", "lag_seconds",
    ]  # fmt: skip
    assert len(columns["timestamp"]) == summary["steps"]

    times = [datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
             for t in columns["timestamp"]]  # fmt: skip
    assert set(np.diff(times)) == {summary["step_seconds"]}
    assert summary["duration_hours"] == pytest.approx(len(times) * summary["step_seconds"] / 3600)
    # The decision at one poll sets the replicas of the next step.
    assert columns["replicas"][1:] == columns["desired_replicas"][:-1]

    entry = next(r for r in summary["results"] if r["predictor"] == run)
    expected = _recompute(columns, summary)
    for key, value in expected.items():
        if value is None:
            assert entry[key] is None, key
        else:
            assert entry[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert summary["work_arrived_replica_hours"] == pytest.approx(
        expected["efficiency"] * expected["replica_hours"], rel=1e-9
    )


def test_the_scenario_covers_infinite_lag_and_missing_forecasts(
    output: Path, summary: dict[str, Any]
) -> None:
    """Guards the test itself: the cases above must include the awkward values."""
    _, reactive = _read_csv(output / "timeseries-reactive.csv")
    _, naive = _read_csv(output / "timeseries-naive.csv")
    assert "inf" in reactive["lag_seconds"]
    assert set(reactive["forecast"]) == {""}
    assert "" not in naive["forecast"]
    by_run = {r["predictor"]: r for r in summary["results"]}
    assert by_run["reactive"]["lag_seconds_max"] is None
    assert by_run["naive"]["forecast_mase"] is not None


def test_a_timeline_with_nan_and_inf_is_written_as_documented(tmp_path: Path) -> None:
    timeline = Timeline(
        timestamps=np.array([1424986973.0, 1424986973.5]),
        arrival_rate=np.array([0.1, 2.0]),
        forecast=np.array([math.nan, 1.0 / 3.0]),
        desired_replicas=np.array([0, 1]),
        replicas=np.array([1, 0]),
        ready_replicas=np.array([1, 0]),
        lag_messages=np.array([0.0, 6.0]),
        lag_seconds=np.array([0.0, math.inf]),
        scale_events=2,
    )
    path = tmp_path / "timeseries-x.csv"
    write_timeseries(timeline, path)
    assert path.read_text(encoding="utf-8").splitlines() == [
        ",".join(CSV_COLUMNS),
        "2015-02-26T21:42:53Z,0.1,,0,1,0.0,0.0,1",
        "2015-02-26T21:42:53.5Z,2.0,0.3333333333333333,1,0,6.0,inf,0",
    ]
    assert float("0.3333333333333333") == 1.0 / 3.0  # repr reads back to the same float


class _Page(HTMLParser):
    """What the tests look for in report.html: tags, URL-bearing attributes, styles."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.styles: list[str] = []
        self.headers: list[str] = []
        self.body_rows = 0
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in.append(tag)
        if tag == "tr" and "tbody" in self._in:
            self.body_rows += 1
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "data") and value:
                self.urls.append(value)
            if name == "style" and value:
                self.styles.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._in:
            del self._in[len(self._in) - 1 - self._in[::-1].index(tag) :]

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "style":
            self.styles.append(data)
        if self._in and self._in[-1] == "th":
            self.headers.append(data)


def test_the_page_is_self_contained_with_every_plot_and_the_table(
    output: Path, summary: dict[str, Any]
) -> None:
    text = (output / "report.html").read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    page.close()

    # The scatter, the arrival rate with the forecasts, the replicas' legend, then for
    # every run its replicas (the whole span and the busiest window) and its lag, and the
    # worst incident's three charts, and a fourth when its run planned (the plan it made
    # just before: test_incident_plan.py).
    planned = int("just before the incident: expected vs what came" in text)
    assert page.tags.count("svg") == 3 + 3 * len(RUNS) + 3 + planned
    # The comparison, the settings, then the KEDA frontier; and what the target knew of
    # the throughput.
    assert page.tags.count("table") == 3
    assert page.body_rows == 2 * len(RUNS) + len(summary["keda_frontier"])
    assert "KEDA frontier" in text
    assert "per-replica throughput: true 100 msg/s" in text
    assert page.headers[:2] == ["predictor", "replica-hours (vs reactive)"]
    assert "script" not in page.tags
    assert "link" not in page.tags
    assert "img" not in page.tags
    for url in page.urls:
        assert not re.match(r"\s*(https?:)?//", url, re.IGNORECASE), url
    for style in page.styles:
        assert "url(" not in style
        assert "@import" not in style
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*https?://", text, re.IGNORECASE)
    assert not re.search(r"url\(\s*[\"']?\s*https?://", text, re.IGNORECASE)
    # One name for one lower bound: the oracle's, wherever the page says "lower bound"; the
    # work that arrived is named as such, not as another bound.
    bound = f"{summary['oracle_lower_bound_replica_hours']:,.1f}"
    words = " ".join(re.sub(r"<[^>]+>", " ", text).split())
    assert re.findall(r"lower bound[^0-9]*([0-9,.]+)", words) == [bound, bound]
    assert f"the work that arrived is {summary['work_arrived_replica_hours']:,.1f}" in words


def test_the_terminal_table_has_a_row_per_run_and_the_changes(summary: dict[str, Any]) -> None:
    lines = comparison_table(summary).splitlines()
    assert lines[0].split() == [
        "predictor", "rep-h", "eff", "SLO", "min", "SLO", "%", "p50", "s", "p99", "s",
        "max", "s", "events", "MAE", "MASE", "run", "s",
    ]  # fmt: skip
    rows = lines[1 : 1 + len(RUNS)]
    assert [row.split()[0] for row in rows] == RUNS
    assert len({len(row) for row in rows}) == 1  # right-aligned: every row as wide
    assert lines[1 + len(RUNS)] == ""
    changes = lines[2 + len(RUNS) : 1 + 2 * len(RUNS)]
    assert [line.split(":")[0] for line in changes] == RUNS[1:]
    assert rows[0].split()[7] == "inf"  # reactive's lag max: no replica to drain it


def test_a_change_line_reads_as_the_issue_shows() -> None:
    results = [
        {"predictor": "reactive", "replica_hours": 100.0, "slo_violation_minutes": 30.0},
        {"predictor": "seasonal_ridge", "replica_hours": 102.6, "slo_violation_minutes": 14.1},
        {"predictor": "none", "replica_hours": 100.0, "slo_violation_minutes": 30.0},
    ]
    assert changes_vs_reactive(results) == [
        "seasonal_ridge: SLO-violation minutes -53% vs reactive at +2.6% replica-hours",
        "none: SLO-violation minutes 0% vs reactive at 0% replica-hours",
    ]
    assert changes_vs_reactive(results[1:]) == []


# The demo's figures (autoscaler replay with no argument): every predictor is cheaper than
# lag threshold 312, which violates no longer, and the target's own 625 is beaten by 312 and
# 442 on both counts.
DEMO_RUNS = [
    ("reactive", 1653.4, 6.8),
    ("none", 941.2, 26.8),
    ("linear", 925.4, 4.5),
    ("seasonal_ridge", 894.2, 0.0),
    ("auto", 860.6, 0.5),
    ("auto/sized", 889.9, 1.0),
    ("oracle-behavior", 827.5, 0.0),
    ("oracle", 715.8, 0.0),
]
DEMO_FRONTIER = [(156, 2859.1, 0.0), (221, 2156.2, 0.0), (312, 1564.0, 0.0), (442, 1304.5, 2.0),
                 (625, 1653.4, 6.8), (884, 2389.5, 25.0), (1250, 2592.0, 46.8)]  # fmt: skip


def _demo(
    runs: list[tuple[str, float, float]] = DEMO_RUNS,
    frontier: list[tuple[int, float, float]] = DEMO_FRONTIER,
) -> dict[str, Any]:
    from autoscaler.replay.summary import frontier_standing

    points = [
        {"lag_threshold": t, "replica_hours": h, "slo_violation_minutes": m,
         "slo_violation_pct": m / 43.2, "scale_events": 1}
        for t, h, m in frontier
    ]  # fmt: skip
    results = []
    for name, hours, minutes in runs:
        run: dict[str, Any] = {"predictor": name, "replica_hours": hours,
                               "slo_violation_minutes": minutes}  # fmt: skip
        if name == "reactive":
            run["settings"] = {"lag_threshold": 625}
        elif not name.startswith("oracle"):
            run["keda_frontier"] = frontier_standing(run, points)
        results.append(run)
    return {"results": results, "keda_frontier": points}


def test_where_the_runs_stand_against_the_keda_frontier_is_said_once_in_plain_words() -> None:
    lines = frontier_lines(_demo())
    header = "against the KEDA frontier (the same formula at every lag threshold above):"
    standing = lines[lines.index(header) + 1 :]
    assert standing[:2] == [
        "  ahead: seasonal_ridge: every lag threshold costing as much or more violates the SLO "
        "longer, or as long for more",
        "  cheaper, not better: none, linear, auto and auto/sized cost 40% to 45% less than lag "
        "threshold 312 (1,564.0 rep-h), which violates no longer (0.0 min): against KEDA they "
        "save replica-hours, not violations",
    ]
    assert not any("not ahead" in line for line in lines), "one line per run read as a loss"
    # A run a threshold beats on both counts is behind; one dearer than all is not judged.
    behind = _demo([*DEMO_RUNS[:1], ("slow", 1600.0, 3.0)])
    assert frontier_lines(behind)[-2] == (
        "  behind: slow: lag thresholds 312 and 442 cost no more and violate no longer than it"
    )
    dear = _demo([*DEMO_RUNS[:1], ("dear", 5000.0, 0.0)], [(156, 2859.1, 1.0), (625, 1653.4, 6.8)])
    assert frontier_lines(dear)[-1] == (
        "  dearer than every lag threshold: dear (the frontier cannot judge it)"
    )


def test_a_weak_keda_setting_at_the_targets_threshold_is_said() -> None:
    weak = frontier_lines(_demo())[-1]
    assert weak == (
        "note: reactive's lag_threshold 625 is a weak KEDA setting here: lag thresholds 312 "
        "and 442 each do as well or better on both cost and violations (312: 1,564.0 rep-h, "
        "0.0 min; 442: 1,304.5 rep-h, 2.0 min; reactive: 1,653.4 rep-h, 6.8 min), so the "
        "changes vs reactive flatter every run: compare with the frontier"
    )
    # On the frontier itself (no threshold beats it on both counts): nothing to say.
    fair = [(t, h, m) for t, h, m in DEMO_FRONTIER if t not in (312, 442)]
    assert not frontier_lines(_demo(frontier=fair))[-1].startswith("note:")


def test_the_verdict_names_a_run_that_violates_much_less_for_a_few_percent_more() -> None:
    text = verdict(_demo())
    assert text.startswith(
        "verdict: auto is the cheapest run that violates the SLO no longer than reactive KEDA: "
        "-48% replica-hours, 0.5 vs 6.8 SLO-violation minutes"
    )
    assert (
        "; against lag threshold 312, the best KEDA that costs no more than reactive: -45% " in text
    )
    assert text.endswith(
        "; seasonal_ridge violates much less (0.0 vs 0.5 minutes) for 3.9% more replica-hours"
    )
    # Dearer than 10% more: not named.
    dear = [(n, h * 1.2 if n == "seasonal_ridge" else h, m) for n, h, m in DEMO_RUNS]
    assert "violates much less" not in verdict(_demo(dear))


def test_the_legend_explains_every_row_and_column() -> None:
    for row in ("reactive", "none", "a model's row", "<model>/sized", "oracle-behavior", "oracle"):
        assert f"{row}:" in LEGEND, row
    for column in COLUMNS[1:]:
        assert column.short in LEGEND or column.short.removesuffix(" s") in LEGEND, column.short
    assert "run s: seconds the run took to replay" in LEGEND


@pytest.mark.parametrize(
    ("value", "base", "expected"),
    [
        pytest.param(47.0, 100.0, "-53%", id="ten-percent-or-more-whole"),
        pytest.param(102.6, 100.0, "+2.6%", id="under-ten-percent-one-decimal"),
        pytest.param(100.0, 100.0, "0%", id="unchanged"),
        pytest.param(100.01, 100.0, "0%", id="rounds-to-zero"),
        pytest.param(0.0, 0.0, "0%", id="both-zero"),
        pytest.param(5.0, 0.0, None, id="zero-base"),
        pytest.param(None, 3.0, None, id="missing"),
    ],
)
def test_percent_change(value: float | None, base: float | None, expected: str | None) -> None:
    assert percent_change(value, base) == expected


def _row(name: str, **values: Any) -> dict[str, Any]:
    return {
        "predictor": name,
        "replica_hours": 1.0,
        "slo_violation_minutes": 0.0,
        "slo_violation_pct": 0.0,
        **values,
    }


class _Cells(HTMLParser):
    """The table body as {run: {column header: (text, marked best)}}."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[str] = []
        self.rows: list[list[tuple[str, bool]]] = []
        self._cell: list[str] | None = None
        self._best = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
            self._best = "best" in (dict(attrs).get("class") or "").split()
        elif tag == "span" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(("".join(self._cell), self._best))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _parse_table(results: list[dict[str, Any]]) -> dict[str, dict[str, tuple[str, bool]]]:
    parser = _Cells()
    parser.feed(html_table(results, budget_percent=100.0))  # every run meets the SLO
    header, *body = parser.rows
    names = [text for text, _ in header]
    return {row[0][0]: dict(zip(names, row, strict=True)) for row in body}


@pytest.mark.parametrize(
    ("efficiencies", "best"),
    [
        pytest.param({"reactive": 0.5, "a": 0.8, "b": 0.7}, ["a"], id="highest"),
        pytest.param({"reactive": 0.5, "a": 0.8, "oracle": 0.99}, ["a"], id="oracle-not-ranked"),
        pytest.param({"reactive": 0.8, "a": 0.8}, [], id="all-alike-none-marked"),
        pytest.param(
            {"reactive": 0.8001, "a": 0.8004, "b": 0.1}, ["reactive", "a"], id="ties-as-shown"
        ),
    ],
)
def test_the_best_value_is_marked(efficiencies: dict[str, float], best: list[str]) -> None:
    table = _parse_table([_row(name, efficiency=value) for name, value in efficiencies.items()])
    assert [name for name, cells in table.items() if cells["efficiency"][1]] == best
    # Runtime is not ranked, and neither is a column nobody has a value in.
    assert not any(cells["runtime (s)"][1] for cells in table.values())
    assert not any(cells["forecast MAE (msg/s)"][1] for cells in table.values())


def test_infinite_lag_loses_the_ranking_and_changes_show_under_the_value() -> None:
    table = _parse_table(
        [
            _row("reactive", lag_seconds_max=None, replica_hours=10.0),
            _row("a", lag_seconds_max=12.0, replica_hours=4.7),
            _row("b", lag_seconds_max=30.0, replica_hours=10.26),
        ]
    )
    assert {name: cells["lag max (s)"] for name, cells in table.items()} == {
        "reactive": ("∞", False),
        "a": ("12.0", True),
        "b": ("30.0", False),
    }
    hours = {name: cells["replica-hours (vs reactive)"][0] for name, cells in table.items()}
    assert hours == {"reactive": "10.0", "a": "4.7 −53%", "b": "10.3 +2.6%"}


def test_downsampling_keeps_spikes_and_the_point_budget() -> None:
    x = np.arange(100_000, dtype=np.float64)
    y = np.zeros_like(x)
    y[31_337] = math.inf
    y[77_000] = -5.0
    xs, ys = downsample_minmax(x, y, 2000)
    assert len(xs) <= 2000
    assert np.all(np.diff(xs) > 0)
    assert math.inf in ys.tolist()
    assert -5.0 in ys.tolist()
    assert 31_337.0 in xs.tolist()

    y = np.where(x < 50_000, math.nan, 1.0)
    xs, ys = downsample_mean(x, y, 1000)
    assert len(xs) == 1000
    assert np.isnan(ys[:499]).all()
    assert (ys[501:] == 1.0).all()
    short = np.arange(10, dtype=np.float64)
    assert downsample_minmax(short, short)[0] is short


def test_timestamps_are_iso_utc() -> None:
    assert iso_utc(1424986973.0) == "2015-02-26T21:42:53Z"
    assert iso_utc(1424986973.25) == "2015-02-26T21:42:53.25Z"
