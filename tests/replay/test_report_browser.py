"""The report page laid out by a real browser: headless Chromium loads a generated
report.html with a script appended, which measures what the page shows and writes it into
the page; ``--dump-dom`` hands the page back.

Checked mechanically, as a reader would at a glance: no two text labels of a chart overlap,
nothing of a chart (legend, title, labels) lies outside its view box, every run keeps a
colour of its own, and nothing is wider than the window. Skips where no Chromium is
installed (``.ci/install`` installs Debian's ``chromium``).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from report_runs import ELEVEN_RUNS

from autoscaler.replay.engine import ReplayResult
from autoscaler.report.files import write_report
from autoscaler.report.incident import plan_before, worst_incident

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
WINDOW = (1240, 900)
TOLERANCE = 0.5
"""Pixels two boxes may share before they count as overlapping (anti-aliasing)."""

MEASURE = """
<script>
(() => {
  const out = {svgs: 0, texts: 0, overlaps: [], outside: [], runs: {}, points: {},
               pageWidth: document.documentElement.scrollWidth, window: window.innerWidth};
  const tolerance = %(tolerance)s;
  for (const svg of document.querySelectorAll("svg")) {
    out.svgs += 1;
    const name = svg.getAttribute("aria-label");
    const frame = svg.getBoundingClientRect();
    const view = svg.viewBox.baseVal;
    const scale = view.width / frame.width;
    const box = (el) => {
      const r = el.getBoundingClientRect();
      return {left: (r.left - frame.left) * scale, top: (r.top - frame.top) * scale,
              right: (r.right - frame.left) * scale, bottom: (r.bottom - frame.top) * scale};
    };
    const texts = [...svg.querySelectorAll("text")].map(
      (t) => ({text: t.textContent, box: box(t)}));
    out.texts += texts.length;
    for (let i = 0; i < texts.length; i++) {
      for (let j = i + 1; j < texts.length; j++) {
        const a = texts[i].box, b = texts[j].box;
        const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (w > tolerance && h > tolerance) {
          out.overlaps.push([name, texts[i].text, texts[j].text]);
        }
      }
    }
    for (const el of svg.querySelectorAll("text, .legend *")) {
      const b = box(el);
      if (b.left < -tolerance || b.top < -tolerance || b.right > view.width + tolerance ||
          b.bottom > view.height + tolerance) {
        out.outside.push([name, el.tagName, el.textContent, b]);
      }
    }
  }
  for (const row of document.querySelectorAll("table.comparison:not(.settings) tr[data-run]")) {
    const swatch = row.querySelector(".swatch");
    out.runs[row.dataset.run] = swatch ? getComputedStyle(swatch).borderTopColor + " " +
                                         getComputedStyle(swatch).borderTopStyle : null;
  }
  for (const point of document.querySelectorAll("svg.scatter circle.run")) {
    out.points[point.dataset.run] = getComputedStyle(point).stroke;
  }
  const pre = document.createElement("pre");
  pre.id = "layout-check";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
"""


def chromium() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def measure(report: Path, browser: str, work: Path) -> dict[str, Any]:
    """Load ``report`` with the measuring script appended; what the script found."""
    page = report.read_text(encoding="utf-8")
    script = MEASURE % {"tolerance": TOLERANCE}
    probe = work / "report-measured.html"
    probe.write_text(page.replace("</body>", script + "</body>"), encoding="utf-8")
    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    ).stdout
    found = re.search(r'<pre id="layout-check">(.*?)</pre>', dom, re.DOTALL)
    assert found, "the measuring script did not run"
    measured: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return measured


@pytest.fixture(scope="module")
def layout(eleven_runs: ReplayResult, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    browser = chromium()
    if browser is None:
        pytest.skip(
            "no Chromium to lay the page out (apt-get install chromium, as .ci/install does)"
        )
    work = tmp_path_factory.mktemp("browser")
    write_report(eleven_runs, work)
    return measure(work / "report.html", browser, work)


def test_the_browser_ran_the_measurement_over_every_chart(
    layout: dict[str, Any], eleven_runs: ReplayResult
) -> None:
    # scatter, forecasts, the replicas' legend, 2 replica charts and a lag chart a run, and
    # the incident's 3 (4 when its run planned: the plan it made before): a check that
    # found nothing must have looked.
    incident = worst_incident(eleven_runs.timelines, eleven_runs.slo_seconds)
    assert incident is not None
    planned = plan_before(eleven_runs.timelines[incident.run], incident) is not None
    assert layout["svgs"] == 3 + 3 * len(ELEVEN_RUNS) + 3 + int(planned)
    assert layout["texts"] > 40 * len(ELEVEN_RUNS)


def test_no_two_text_labels_overlap(layout: dict[str, Any]) -> None:
    assert layout["overlaps"] == []


def test_nothing_lies_outside_its_charts_view_box(layout: dict[str, Any]) -> None:
    assert layout["outside"] == []


def test_every_run_has_a_colour_of_its_own(layout: dict[str, Any]) -> None:
    assert list(layout["runs"]) == ELEVEN_RUNS
    assert len(set(layout["runs"].values())) == len(ELEVEN_RUNS)
    assert len(set(layout["points"].values())) == len(ELEVEN_RUNS)


def test_the_page_is_no_wider_than_the_window(layout: dict[str, Any]) -> None:
    assert layout["pageWidth"] <= layout["window"]
