"""``autoscaler replay`` from the command line: good runs, and one clear line for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from autoscaler.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """Ten days of a 5-minute daily cycle, as counts per row."""
    t = 1_700_000_000 + 300 * np.arange(10 * 288)
    counts = 3000 + 2000 * np.sin(2 * np.pi * t / 86400)
    path = tmp_path / "history.csv"
    rows = "\n".join(f"{int(a)},{int(c)}" for a, c in zip(t, counts, strict=True))
    path.write_text("timestamp,value\n" + rows + "\n")
    return path


def test_replay_csv_with_output(
    history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "out"
    code = main(
        [
            "replay",
            "--history", str(history),
            "--config", str(ROOT / "config.example.yaml"),
            "--predictors", "none,naive",
            "--poll-interval", "60",
            "--span-days", "1",
            "--warmup-days", "2",
            "--output", str(out_dir),
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    runs = ["reactive", "none", "naive", "oracle-behavior", "oracle"]
    for run in runs:
        assert run in out
        assert (out_dir / f"timeseries-{run}.csv").is_file()
    summary = json.loads((out_dir / "summary.json").read_text())
    assert [r["predictor"] for r in summary["results"]] == runs
    assert "KEDA frontier" in out
    assert len(summary["keda_frontier"]) >= 5
    assert summary["steps"] == 1440
    assert summary["step_seconds"] == 60.0
    assert (out_dir / "report.html").is_file()
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--history", "/nope.csv"], "replay: /nope.csv: file not found", id="missing"),
        pytest.param(["--predictors", "prophet"], "unknown predictor prophet", id="predictor"),
        pytest.param(["--target", "nope"], "no target named 'nope'", id="target"),
        pytest.param(["--target", "invoice-renderer"], "has no kafka_lag trigger", id="not-kafka"),
        pytest.param(["--poll-interval", "0"], "--poll-interval must be a number > 0", id="poll"),
        pytest.param(["--partitions", "0"], "--partitions must be >= 1", id="partitions"),
        # Every flag checked up front, before the history is read or a run starts.
        pytest.param(["--peak-replicas", "-5"], "--peak-replicas must be a number >= 0", id="peak"),
        pytest.param(["--span-days", "0"], "--span-days must be a number > 0, not 0", id="span0"),
        pytest.param(["--span-days", "-1"], "--span-days must be a number > 0", id="span<0"),
        pytest.param(["--warmup-days", "nan"], "--warmup-days must be a number >= 0", id="warm"),
        pytest.param(["--startup-seconds", "-1"], "--startup-seconds must be", id="startup"),
        pytest.param(["--jobs", "0"], "--jobs must be >= 1", id="jobs"),
        pytest.param(["--predictors", ","], "--predictors ',' names no run", id="no-run"),
        pytest.param(["--output", __file__], "is a file, not a folder", id="output-file"),
        pytest.param(
            ["--output", "json"],
            "--output json: --output names where to write; for the format, use -o json",
            id="output-is-not-the-format",
        ),
        pytest.param(
            ["--output", "/proc/nope/out"], "--output /proc/nope/out: cannot make it", id="out"
        ),
        pytest.param(
            ["--assume-throughput", "fast"], "--assume-throughput must be a number", id="assume"
        ),
        pytest.param(
            ["--assume-throughput", "-3"], "--assume-throughput must be a number > 0", id="assume<0"
        ),
        pytest.param(
            ["--prometheus-url", "http://127.0.0.1:9"], "go together", id="url-without-query"
        ),
        pytest.param(
            ["--prometheus-url", "http://127.0.0.1:9", "--query", "sum(rate(x[5m])"],
            "--query is not valid PromQL: unclosed left parenthesis",
            id="bad-promql",
        ),
        pytest.param(
            ["--prometheus-url", "http://127.0.0.1:9", "--query", "x"],
            "cannot connect",
            id="unreachable-prometheus",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["replay", "--config", str(ROOT / "config.example.yaml"), *args])
    _, err = capsys.readouterr()
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_short_history_warns_and_replays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "short.csv"
    path.write_text("timestamp,value\n0,1\n300,2\n600,3\n")
    config = str(ROOT / "config.example.yaml")
    assert (
        main(["replay", "--history", str(path), "--config", config, "--predictors", "naive"]) == 0
    )
    assert "warm-up shortened to 0.1 h" in capsys.readouterr().err


def test_history_shorter_than_a_poll(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "short.csv"
    path.write_text("timestamp,value\n0,1\n60,2\n")
    config = str(ROOT / "config.example.yaml")
    code = main(["replay", "--history", str(path), "--config", config, "--poll-interval", "600"])
    assert code == 2
    assert "too short to replay" in capsys.readouterr().err


def test_bad_config_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets: []\n")
    assert main(["replay", "--config", str(bad)]) == 2
    assert "targets" in capsys.readouterr().err


def test_no_argument_default_is_the_main_job() -> None:
    """The README's first command: the embedded trace, the example's first target."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "autoscaler", "replay"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("nab_twitter_amzn: 3.0 days replayed")
    for run in ("reactive", "none", "linear", "seasonal_ridge", "auto", "oracle"):
        assert any(line.startswith(run) for line in lines), run
    assert "arrival rate scaled x13,889 so that its 99th percentile needs 25 replicas" in lines[0]
    # A verdict, what the columns mean, and what to do next.
    assert any(line.startswith("verdict: ") for line in lines)
    assert any(line.startswith("rep-h: replica-hours paid; eff: ") for line in lines)
    assert lines[-1].startswith("next: --output DIR writes report.html")
    assert "Traceback" not in result.stderr


def test_a_users_own_history_replays_as_recorded_unless_asked(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["replay", "--history", str(history), "--predictors", "none", "--poll-interval",
              "60", "--span-days", "1", "--warmup-days", "2", "--no-progress"]  # fmt: skip
    assert main(common) == 0
    assert "arrival rate as recorded" in capsys.readouterr().out.splitlines()[0]
    assert main([*common, "--peak-replicas", "10"]) == 0
    assert "needs 10 replicas (--peak-replicas)" in capsys.readouterr().out.splitlines()[0]


def _trickle(tmp_path: Path) -> Path:
    """Two weeks of a few messages every 5 minutes."""
    path = tmp_path / "trickle.csv"
    rows = [f"{600 + 300 * k},{3 + (k % 7)}" for k in range(14 * 288)]
    path.write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    return path


def test_a_baseline_nobody_would_run_is_flagged_and_the_frontier_is_fair(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's new user: a trace of small counts and a tiny true throughput. The config's
    lag_threshold is hours of one replica's work and its per_replica_throughput is far off:
    one line says each, and the frontier sweeps whole-message thresholds that can keep up."""
    out_dir = tmp_path / "out"
    code = main(
        [
            "replay", "--history", str(_trickle(tmp_path)),
            "--config", str(ROOT / "config.example.yaml"),
            "--per-replica-throughput", "0.036", "--peak-replicas", "0",
            "--predictors", "none", "--poll-interval", "60", "--span-days", "1",
            "--output", str(out_dir),
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert any("lag_threshold 625 is" in w and "over the 60s SLO" in w for w in warnings)
    assert any("told 250 msg/s" in w and "--assume-throughput" in w for w in warnings)
    summary = json.loads((out_dir / "summary.json").read_text())
    thresholds = [p["lag_threshold"] for p in summary["keda_frontier"]]
    assert len(set(thresholds)) >= 5
    assert thresholds[0] == 1
    assert "the target uses the configured 250 msg/s" in out


def test_a_target_told_nothing_learns_the_throughput_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "out"
    code = main(
        [
            "replay", "--history", str(_trickle(tmp_path)),
            "--config", str(ROOT / "config.example.yaml"),
            "--per-replica-throughput", "0.01", "--assume-throughput", "learn",
            "--peak-replicas", "0", "--predictors", "none", "--poll-interval", "60",
            "--span-days", "2", "--output", str(out_dir),
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "configures none and learns it as live" in out
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["throughput"] == {"true": 0.01, "configured": None, "known_as": "learned"}
    (none,) = [r for r in summary["results"] if r["predictor"] == "none"]
    assert none["throughput_source"] == "learned"
    assert none["throughput_learned_final"] == pytest.approx(0.01, rel=0.25)
    work = none["messages_processed"] + none["backlog_end_messages"]
    assert work == pytest.approx(none["messages_arrived"])


@pytest.mark.parametrize("form", ["json", "yaml"])
def test_structured_output_is_the_tables_rows_and_nothing_else(
    form: str, history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "out"
    code = main(
        [
            "replay", "--history", str(history),
            "--config", str(ROOT / "config.example.yaml"),
            "--predictors", "none", "--poll-interval", "60", "--span-days", "1",
            "--warmup-days", "2", "--no-progress", "-o", form, "--output", str(out_dir),
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = json.loads(out) if form == "json" else yaml.safe_load(out)
    summary = json.loads((out_dir / "summary.json").read_text())
    assert [row["predictor"] for row in rows] == [r["predictor"] for r in summary["results"]]
    assert list(rows[0]) == [
        "predictor", "replica_hours", "efficiency", "slo_violation_minutes",
        "slo_violation_pct", "lag_seconds_p50", "lag_seconds_p99", "lag_seconds_max",
        "scale_events", "forecast_mae", "forecast_mase", "runtime_seconds",
    ]  # fmt: skip
    for row, run in zip(rows, summary["results"], strict=True):
        assert row["replica_hours"] == run["replica_hours"], "unrounded, as in summary.json"
    assert f"wrote 6 files to {out_dir}" in err, "stdout holds the rows alone"
