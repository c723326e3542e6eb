"""The benchmarks still run: the predictor benchmark on a short slice of one real trace with
two cheap models; the calibration benchmark on a few hours of one trace; the service
benchmark on a few targets for a few cycles."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # ``benchmarks`` is a folder of scripts, not an installed package
    sys.path.insert(0, str(ROOT))

import structlog  # noqa: E402

from benchmarks import calibration as calibration_bench  # noqa: E402
from benchmarks import predictors as bench  # noqa: E402
from benchmarks import service as service_bench  # noqa: E402
from benchmarks.traces import Trace, load_traces, traces_dir  # noqa: E402

needs_traces = pytest.mark.skipif(
    not traces_dir().is_dir(), reason=f"no trace folder at {traces_dir()}"
)

MODELS = ["naive", "seasonal_naive"]
LEADS = (300.0, 900.0)


@pytest.fixture(scope="module")
def nasa_slice() -> Trace:
    """The first 4 days of the NASA trace: 1 1/3 days to fit, the rest walked forward."""
    (nasa,) = load_traces(["nasa_http_5min"])
    keep = nasa.timestamps < nasa.timestamps[0] + 4 * 86400
    return Trace(nasa.name, nasa.timestamps[keep], nasa.values[keep], nasa.step_seconds)


@needs_traces
def test_the_benchmark_scores_every_model_at_every_lead(nasa_slice: Trace) -> None:
    rows = bench.run([nasa_slice], MODELS, bench.Setup(leads_seconds=LEADS, refit_days=1.0), jobs=1)

    assert [(r["model"], r["lead_s"], r["h"]) for r in rows] == [
        ("naive", 300.0, 1),
        ("naive", 900.0, 3),
        ("seasonal_naive", 300.0, 1),
        ("seasonal_naive", 900.0, 3),
    ]
    for row in rows:
        assert row["error"] is None
        assert row["scored"] > 500  # about 2 2/3 days of 5-minute origins
        for key in ("mae", "mase", "pinball", "coverage", "fit_total_s", "predict_ms"):
            assert math.isfinite(row[key]), (row["model"], key, row[key])
        assert 0 <= row["coverage"] <= 1
        assert row["fits"] == 3  # the initial fit and one refit per day of trace time
    # The reference scores exactly 1 against itself.
    assert [r["mase"] for r in rows if r["model"] == "seasonal_naive"] == [1.0, 1.0]

    table = bench.accuracy_table(rows).splitlines()
    assert table[0].split() == [
        "trace", "model", "lead", "h", "MAE/s", "MASE", "pinb.9", "cover", "avail", "fits",
        "fit", "tot", "s", "fit", "mean", "ms", "predict", "ms", "update", "ms",
    ]  # fmt: skip
    assert len(table) == 2 + len(rows)
    assert table[2].split()[:4] == ["nasa_http_5min", "naive", "5m", "1"]


@needs_traces
def test_the_calibration_benchmark_writes_coverages_in_range(tmp_path: Path) -> None:
    # quantile_gbm has an upper of its own (no ladder) and falls back to naive at first: the
    # planner's other reading of a path, and the fallback's path, both scored.
    stem = tmp_path / "calibration"
    argv = ["--traces", "nasa_http_5min", "--models", "naive,quantile_gbm"]
    argv += ["--warmup-days", "1", "--days", "0.1", "--output", str(stem)]
    assert calibration_bench.main(argv) == 0

    written = json.loads(stem.with_suffix(".json").read_text())
    text = stem.with_suffix(".txt").read_text()
    rows = written["rows"]
    assert [(r["model"], r["horizon"]) for r in rows] == [
        (model, ahead) for model in ("naive", "quantile_gbm") for ahead in ("5m", "15m", "30m")
    ]
    for row in rows:
        # 144 polls, all scored: quantile_gbm's path is its lead's trees, held flat beyond,
        # so it has a path whenever it has a forecast.
        assert row["scored"] == 144
        for key in ("cov_0.5", "cov_0.9", "cov_0.99", "avail"):
            assert 0 <= row[key] <= 1, (row["model"], row["horizon"], key, row[key])
        assert row["cov_0.5"] <= row["cov_0.9"] <= row["cov_0.99"]
        assert row["pinball"] >= 0
    for walk in written["cost"]:
        assert walk["polls"] == 144
        assert walk["cpu_per_poll_ms"] > 0
    assert "Mean over the traces:" in text
    assert "nasa_http_5min  quantile_gbm" in text


def test_the_horizon_rounds_up_to_whole_steps() -> None:
    assert bench.horizon_steps(300, 300) == 1
    assert bench.horizon_steps(900, 300) == 3
    assert bench.horizon_steps(300, 1800) == 1
    assert bench.horizon_steps(900, 1800) == 1
    assert bench.horizon_steps(301, 300) == 2


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """The service benchmark configures logging for the whole process; put it back."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.configure(**saved)
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)


@pytest.mark.usefixtures("logging_restored")
def test_the_service_benchmark_runs_and_prints_its_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    met = service_bench.main(["--quick"])

    out = capsys.readouterr().out
    assert "20 targets, predictor.model auto (config default)" in out
    assert "20 cycles of 20 polls" in out
    for figure in ("CPU per cycle  median", "wall per cycle median", "after cycle    20:"):
        assert figure in out, figure
    assert "forecast + decide / decide alone (median CPU)" in out
    verdicts = [line for line in out.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert len(verdicts) == 3
    assert met == all(line.startswith("PASS") for line in verdicts)
    assert "load average at end" in out


def test_the_validate_benchmark_runs_and_prints_its_figures(tmp_path: Path) -> None:
    output = tmp_path / "validate_speed.txt"
    script = ROOT / "benchmarks" / "validate_speed.py"
    done = subprocess.run(
        [sys.executable, str(script), "--sizes", "20", "40", "--output", str(output)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
        timeout=120,
    )
    written = output.read_text()
    assert f"written to {output}" in done.stdout
    for figure in (
        "valid configs: validate's load (cli._load) in a fresh process, CPU seconds",
        "invalid configs:",
        "40 targets took",
        "(1.00x is linear)",
        "python -m autoscaler validate <40 valid targets>",
        "exit 0: config OK: 40 targets",
    ):
        assert figure in written, figure
    assert "      48 |" in written  # 40 invalid targets: 48 problems, 1.2 per target


@needs_traces
def test_the_refit_pool_benchmark_refits_every_target_both_ways() -> None:
    options = ["--targets", "4", "--model", "seasonal_ridge", "--workers", "1"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "refit_pool.py"), *options],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
        timeout=240,
    )
    assert "threads " in done.stdout
    assert "pool     1 at once" in done.stdout
    assert "pool / threads:" in done.stdout
