"""A fleet of workloads replayed and tuned on dask.distributed gives exactly what the same
fleet gives in this process; its summary ranks workloads by savings and says what failed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autoscaler.cli import main
from autoscaler.fleet import engine as fleet_engine
from autoscaler.fleet.summary import rank_replays, rank_tunes

ROOT = Path(__file__).resolve().parents[2]
EMBEDDED = ROOT / "autoscaler" / "data" / "nab_twitter_amzn.csv"
# Four workloads: four different 5-day windows of the embedded trace (5-minute rows).
WINDOWS = {"orders": 0, "payments": 1500, "shipping": 3000, "billing": 4500}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fleet")
    header, *rows = EMBEDDED.read_text().splitlines()
    for name, start in WINDOWS.items():
        window = rows[start : start + 5 * 288]
        (folder / f"{name}.csv").write_text("\n".join([header, *window]) + "\n")
    return folder


# The windows are tweet counts: scaled to the target's size (a fleet replays its histories
# as recorded unless --peak-replicas asks).
COMMON = ["--config", str(ROOT / "config.example.yaml"), "--poll-interval", "300",
          "--warmup-days", "2", "--span-days", "3", "--peak-replicas", "25",
          "--no-progress"]  # fmt: skip


def _replay(fleet: Path, out: Path, *extra: str) -> dict[str, Any]:
    code = main(["replay", "--fleet", str(fleet), *COMMON, "--output", str(out), *extra])
    assert code == 0
    document: dict[str, Any] = json.loads((out / "fleet.json").read_text())
    return document


def test_a_fleet_on_a_local_cluster_matches_the_run_in_this_process(
    fleet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    here = _replay(fleet, tmp_path / "serial", "--workers", "1")
    on_dask = _replay(fleet, tmp_path / "dask", "--workers", "2")
    assert on_dask == here
    assert [w["workload"] for w in here["workloads"]] == sorted(WINDOWS)
    for outcome in here["workloads"]:
        assert outcome["error"] is None
        runs = [r["predictor"] for r in outcome["summary"]["results"]]
        assert runs == ["reactive", "auto"]
    savings = [row["saved_replica_hours"] for row in here["ranking"]]
    assert savings == sorted(savings, reverse=True)
    assert len({row["replica_hours"] for row in here["ranking"]}) == len(WINDOWS)  # not one
    out = capsys.readouterr().out
    assert "fleet of 4 workloads" in out
    assert "replica-hours against reactive's" in out


def test_a_fleet_on_a_scheduler_address_matches_too(
    fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distributed import LocalCluster

    here = _replay(fleet, tmp_path / "serial", "--workers", "1", "--predictors", "none")
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
        remote = _replay(fleet, tmp_path / "remote", "--predictors", "none")
    assert remote == here


def test_a_workload_that_cannot_be_read_fails_alone(
    fleet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "with-a-bad-one"
    folder.mkdir()
    for csv in fleet.glob("*.csv"):
        (folder / csv.name).write_text(csv.read_text())
    (folder / "broken.csv").write_bytes(b"\x00\x01garbage")
    document = _replay(folder, tmp_path / "out", "--workers", "1", "--predictors", "none")
    failed = [row for row in document["ranking"] if row["error"]]
    assert [row["workload"] for row in failed] == ["broken"]
    assert len(document["ranking"]) == len(WINDOWS) + 1
    assert document["ranking"][-1]["workload"] == "broken"  # failures last
    assert "failed broken:" in capsys.readouterr().out


def test_a_fleets_ranking_as_json_is_fleet_jsons_ranking(
    fleet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _replay(
        fleet, tmp_path / "out", "--workers", "1", "--predictors", "none", "-o", "json"
    )
    out, err = capsys.readouterr()
    assert json.loads(out) == document["ranking"]
    assert f"wrote fleet.json to {tmp_path / 'out'}" in err, "stdout holds the rows alone"


def test_a_fleet_where_no_workload_can_be_read_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "a.csv").write_text("not,a,trace\n")
    (folder / "b.csv").write_bytes(b"\xff\xfe")
    assert main(["replay", "--fleet", str(folder), *COMMON, "--workers", "1"]) == 2
    captured = capsys.readouterr()
    assert "failed a:" in captured.out
    assert "failed b:" in captured.out
    assert "no workload could be replayed" in captured.err


def test_tune_over_a_fleet_matches_between_dask_and_this_process(
    fleet: Path, tmp_path: Path
) -> None:
    def run(out: Path, workers: str) -> dict[str, Any]:
        options = ["--settings", "4", "--models", "none,linear", "--workers", workers]
        code = main(["tune", "--fleet", str(fleet), *COMMON, *options, "--output", str(out)])
        assert code == 0
        document: dict[str, Any] = json.loads((out / "fleet.json").read_text())
        return document

    here = run(tmp_path / "serial", "1")
    assert run(tmp_path / "dask", "2") == here
    assert sorted(row["workload"] for row in here["ranking"]) == sorted(WINDOWS)
    for outcome in here["workloads"]:
        assert outcome["error"] is None
        assert len(outcome["tune"]["candidates"]) == 4
    for row in here["ranking"]:
        # Each row is its workload's recommendation (or closest) on the test part.
        outcome = next(o for o in here["workloads"] if o["workload"] == row["workload"])
        tuned = outcome["tune"]
        chosen = tuned["recommended"] or {"name": row["setting"]}
        assert row["setting"] == chosen["name"]
        reactive = next(b for b in tuned["baselines"] if b["name"] == "reactive")
        assert row["reactive_replica_hours"] == reactive["test"]["replica_hours"]


def test_an_unreachable_scheduler_is_one_line_and_exit_2(
    fleet: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from servers.process import free_port

    monkeypatch.setattr(fleet_engine, "CONNECT_TIMEOUT_SECONDS", 1.0)
    code = main(["replay", "--fleet", str(fleet), *COMMON,
                 "--scheduler", f"tcp://127.0.0.1:{free_port()}"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("replay: cannot reach the Dask scheduler at tcp://127.0.0.1:")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fleet", "/nonexistent"], "--fleet /nonexistent: not a folder"),
        (["--fleet", "{empty}"], "no *.csv file in it"),
        (["--fleet-label", "consumergroup"], "--fleet-label needs --prometheus-url and --query"),
        (["--fleet", "{fleet}", "--workers", "0"], "--workers must be >= 1"),
        (["--fleet", "{fleet}", "--history", "x.csv"], "--history is one workload"),
        (["--fleet", "{fleet}", "--predictors", "reactive"], "must name a run besides reactive"),
    ],
)
def test_bad_fleet_options_are_one_line(
    args: list[str],
    message: str,
    fleet: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "empty").mkdir()
    filled = [a.format(empty=tmp_path / "empty", fleet=fleet) for a in args]
    assert main(["replay", *filled, *COMMON]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def _figures(hours: float, minutes: float, events: int = 10) -> dict[str, Any]:
    return {
        "replica_hours": hours,
        "slo_violation_minutes": minutes,
        "slo_violation_pct": minutes / 10,
        "scale_events": events,
    }


def test_the_replay_ranking_flags_a_workload_over_its_budget() -> None:
    def outcome(name: str, ours: dict[str, Any], reactive: dict[str, Any]) -> dict[str, Any]:
        results = [{"predictor": "reactive", **reactive}, {"predictor": "auto", **ours}]
        return {"workload": name, "error": None, "summary": {"results": results}}

    rows = rank_replays(
        [
            outcome("small", _figures(90, 0), _figures(100, 5)),
            outcome("big", _figures(500, 30), _figures(800, 5)),
            {"workload": "lost", "error": "file not found"},
        ],
        "auto",
        budget_pct=1.0,
    )
    assert [r["workload"] for r in rows] == ["big", "small", "lost"]
    assert rows[0]["saved_pct"] == pytest.approx(37.5)
    assert rows[0]["flags"] == ["over the 1% budget", "violates longer than reactive"]
    assert rows[1]["flags"] == []


def test_the_tune_ranking_shows_the_closest_setting_when_none_meets_the_budget() -> None:
    def candidate(name: str, tune: dict[str, Any], test: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "tune": tune, "test": test}

    reactive = candidate("reactive", _figures(100, 50), _figures(100, 50))
    tuned = {
        "budget_pct": 1.0,
        "recommended": None,
        "baselines": [reactive],
        "candidates": [
            candidate("a", _figures(80, 40), _figures(80, 45)),
            candidate("b", _figures(70, 60), _figures(70, 60)),
        ],
    }
    rows = rank_tunes([{"workload": "w", "error": None, "tune": tuned}])
    assert rows[0]["setting"] == "a"
    assert rows[0]["flags"] == ["no setting meets the 1% budget: the closest"]
