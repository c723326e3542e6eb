"""A screenshot of the replay report page, for reviewers: benchmarks/results/report.png.

Run from the repository root::

    python benchmarks/report_screenshot.py [--report DIR/report.html] [--output PNG]

Without ``--report`` it first replays what the bug report showed: the embedded trace's
default three days with eleven runs (reactive, none, seven predictors and the two oracles),
``autoscaler replay --output`` into a temporary folder (a few minutes on two cores). Then
headless Chromium measures the page's height and takes one full-page screenshot, 1240 px
wide. Needs Debian's ``chromium`` (``.ci/install`` installs it).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 1240
PREDICTORS = (
    "none,naive,seasonal_naive,moving_average,linear,holt_winters,seasonal_ridge,quantile_gbm"
)
HEIGHT_PROBE = """<script>
document.body.insertAdjacentHTML("beforeend",
  '<pre id="page-height">' + document.documentElement.scrollHeight + "</pre>");
</script>"""


def browser() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        sys.exit("no chromium: apt-get install chromium (.ci/install does)")
    return found


def headless(chromium: str, *args: str) -> str:
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    done = subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=300, check=True
    )
    return done.stdout


def replay_report(folder: Path) -> Path:
    """``autoscaler replay`` of this checkout (not whatever is installed) into ``folder``."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-m", "autoscaler", "replay", "--predictors", PREDICTORS,
         "--span-days", "3", "--output", str(folder), "--no-progress"],
        check=True, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return folder / "report.html"


def screenshot(report: Path, output: Path, work: Path) -> None:
    chromium = browser()
    probe = work / "height.html"
    page = report.read_text(encoding="utf-8")
    probe.write_text(page.replace("</body>", HEIGHT_PROBE + "</body>"), encoding="utf-8")
    dom = headless(chromium, f"--window-size={WIDTH},1000", "--dump-dom", probe.as_uri())
    found = re.search(r'<pre id="page-height">(\d+)</pre>', dom)
    height = int(found.group(1)) if found else 12000
    output.parent.mkdir(parents=True, exist_ok=True)
    headless(chromium, f"--window-size={WIDTH},{height}", f"--screenshot={output}", report.as_uri())
    print(f"wrote {output} ({WIDTH}x{height}, {output.stat().st_size / 1e6:.1f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--report", type=Path, help="an existing report.html (default: replay)")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks" / "results" / "report.png"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        report = args.report.resolve() if args.report else replay_report(work / "replay")
        screenshot(report, args.output.resolve(), work)


if __name__ == "__main__":
    main()
