"""The hand-written SVG charts: layout (title, legend, axis labels) and what is drawn.

Boxes are estimated with ``text_width``, the same estimate the layout uses; the browser test
(``test_report_browser.py``) measures the real ones where Chromium is installed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from itertools import pairwise

import numpy as np
import pytest

from autoscaler.report.legend import text_width
from autoscaler.report.svg import (
    Band,
    Chart,
    HLine,
    Series,
    envelope,
    render,
)

DAY = 86400.0
T0 = 1425592988.0  # 2015-03-05T22:03:08Z
SVG = "{http://www.w3.org/2000/svg}"
NAMES = [
    "reactive", "none", "naive", "seasonal_naive", "moving_average", "linear",
    "holt_winters", "seasonal_ridge", "quantile_gbm", "auto", "oracle-behavior",
]  # fmt: skip


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1))


def _text_boxes(root: ET.Element) -> list[tuple[str, float, float, float, float]]:
    """(text, left, top, right, bottom) of every unrotated text, from the estimate."""
    boxes = []
    for text in root.iter(f"{SVG}text"):
        if "transform" in text.attrib:
            continue
        label = text.text or ""
        width = text_width(label, bold=text.get("font-weight") == "600")
        x, y = float(text.get("x", 0)), float(text.get("y", 0))
        anchor = text.get("text-anchor", "start")
        left = x - width if anchor == "end" else x - width / 2 if anchor == "middle" else x
        boxes.append((label, left, y - 11, left + width, y + 3))
    return boxes


def _overlaps(
    a: tuple[str, float, float, float, float], b: tuple[str, float, float, float, float]
) -> bool:
    return a[1] < b[3] and b[1] < a[3] and a[2] < b[4] and b[2] < a[4]


def _chart(series_count: int, width: int = 1100) -> str:
    x = T0 + 15.0 * np.arange(2000)
    series = [
        Series(f"{name} forecast", x, np.sin(x / 3600 + i), f"#{i:02x}{i:02x}{i:02x}")
        for i, name in enumerate(NAMES[:series_count])
    ]
    chart = Chart(
        "Arrival rate and each run's forecast",
        (float(x[0]), float(x[-1])),
        (-1.0, 1.0),
        "messages/s",
        width=width,
        hlines=(HLine("max_replicas 50", 0.9, "#555"),),
    )
    return render(chart, series)


@pytest.mark.parametrize(
    ("count", "width"),
    [
        pytest.param(2, 1100, id="few-beside-the-title"),
        pytest.param(11, 1100, id="eleven-runs-wrap"),
        pytest.param(11, 420, id="eleven-runs-narrow"),
    ],
)
def test_no_label_overprints_another_and_the_legend_stays_in_the_view_box(
    count: int, width: int
) -> None:
    root = _parse(_chart(count, width))
    _, _, view_w, view_h = (float(v) for v in root.get("viewBox", "").split())
    boxes = _text_boxes(root)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not _overlaps(a, b), (a, b)
    legend = root.find(f"{SVG}g[@class='legend']")
    assert legend is not None
    legend_boxes = _text_boxes(legend)
    assert len(legend_boxes) == count + 1
    for label, left, top, right, bottom in legend_boxes:
        assert left >= 0, label
        assert right <= view_w, label
        assert top >= 0, label
        assert bottom <= view_h, label


def test_a_wrapped_legend_pushes_the_plot_down_not_over_the_title() -> None:
    few, many = _parse(_chart(2)), _parse(_chart(11))
    few_h, many_h = (float(r.get("viewBox", "").split()[3]) for r in (few, many))
    assert many_h > few_h  # the legend's rows are added, the plot keeps its height
    title = next(t for t in many.iter(f"{SVG}text") if t.get("class") == "title")
    legend = many.find(f"{SVG}g[@class='legend']")
    assert legend is not None
    assert all(float(t.get("y", 0)) > float(title.get("y", 0)) for t in legend.iter(f"{SVG}text"))


@pytest.mark.parametrize(
    ("span", "width"),
    [
        pytest.param(3 * DAY, 1100, id="three-days"),
        pytest.param(30 * DAY, 1100, id="a-month"),
        pytest.param(3600.0, 380, id="an-hour-narrow"),
        pytest.param(DAY, 380, id="a-day-narrow"),
    ],
)
def test_time_labels_never_touch(span: float, width: int) -> None:
    x = np.array([T0, T0 + span])
    chart = Chart("t", (T0, T0 + span), (0.0, 1.0), "u", width=width)
    root = _parse(render(chart, [Series("s", x, np.array([0.0, 1.0]), "#000")]))
    boxes = _text_boxes(root)
    labels = [b for b in boxes if b[2] == max(box[2] for box in boxes)]  # the x axis' row
    assert len(labels) >= 2
    for a, b in pairwise(labels):
        assert a[3] + 8 <= b[1], (a, b)
    assert all(b[1] >= 72 for b in labels)  # clear of the y axis' labels
    assert all(b[3] <= width for b in labels)


def test_the_envelope_keeps_each_pixels_range_and_mean() -> None:
    x = T0 + 15.0 * np.arange(1000)
    y = np.where(np.arange(1000) % 2 == 0, 8.0, 50.0)  # flapping every poll
    env = envelope(x, y, 15.0, buckets=100)
    assert (len(env.edges), len(env.mean)) == (101, 100)
    assert env.spread
    assert set(env.low.tolist()) == {8.0}
    assert set(env.high.tolist()) == {50.0}
    assert np.allclose(env.mean, 29.0)
    assert (env.edges[0], env.edges[-1]) == (x[0] - 15.0, x[-1])
    exact = envelope(x[:50], y[:50], 15.0, buckets=100)  # fewer steps than pixels
    assert len(exact.mean) == 50
    assert not exact.spread
    assert np.array_equal(exact.mean, y[:50])


def test_a_band_is_one_closed_outline_and_series_are_drawn_in_order() -> None:
    x = T0 + 15.0 * np.arange(1000)
    y = np.where(np.arange(1000) % 2 == 0, 8.0, 50.0)
    env = envelope(x, y, 15.0, buckets=100)
    chart = Chart("replicas", (float(env.edges[0]), float(env.edges[-1])), (0.0, 60.0), "n")
    svg = render(
        chart,
        [
            Band("range", env.edges, env.low, env.high, "#4e79a7"),
            Series("mean", env.edges, np.append(env.mean, env.mean[-1]), "#4e79a7", step=True),
            Series("last", x, y, "#000", css="last"),
        ],
    )
    paths = _parse(svg).findall(f"{SVG}path")
    assert [p.get("data-label") for p in paths] == ["range", "mean", "last"]
    outline = paths[0].get("d", "")
    assert outline.startswith("M")
    assert outline.endswith("Z")
    assert outline.count("M") == 1
    # 100 buckets: along the top and back along the bottom, one H per bucket each way.
    assert len(re.findall("H", outline)) == 200


def test_an_area_is_filled_under_each_unbroken_piece() -> None:
    x = T0 + 15.0 * np.arange(6)
    y = np.array([1.0, 2.0, np.nan, 3.0, 4.0, 5.0])
    chart = Chart("a", (float(x[0]), float(x[-1])), (0.0, 5.0), "n")
    svg = render(chart, [Series("ready", x, y, "#000", step=True, fill_opacity=0.2)])
    area, line = _parse(svg).findall(f"{SVG}path")
    assert area.get("fill") == "#000"
    assert area.get("d", "").count("Z") == 2
    assert line.get("fill") == "none"
    assert line.get("d", "").count("M") == 2
