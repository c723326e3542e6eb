"""``autoscaler tune``: out-of-sample search, the frontier, the recommendation, bad input."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import yaml

from autoscaler.cli import main
from autoscaler.config import load_config, parse_config
from autoscaler.replay.engine import ReplaySettings
from autoscaler.traces import TraceError, load_csv
from autoscaler.tune.search import split_index, tune
from autoscaler.tune.space import Setting, apply, grid, sample

ROOT = Path(__file__).resolve().parents[2]
EMBEDDED = ROOT / "autoscaler" / "data" / "nab_twitter_amzn.csv"
DAY = 86400.0
SETTINGS = [
    Setting("none", 0.9, 1.0, 0.0, 300),
    Setting("none", 0.9, 0.7, 120.0, 600),
    Setting("linear", 0.5, 1.0, 0.0, 60),
    Setting("linear", 0.95, 0.85, 120.0, 300),
]


@pytest.fixture(scope="module")
def small() -> tuple[object, object]:
    target = load_config(ROOT / "config.example.yaml").targets[0]
    # Without the example's slo.budget_percent, every setting may be recommended (with it,
    # only those keeping a budget: test_a_budget_the_target_sets_is_never_dropped...).
    target = target.model_copy(
        update={"slo": target.slo.model_copy(update={"budget_percent": None})}
    )
    settings = ReplaySettings(250.0, 60.0, 60.0, 50, 25, 3 * DAY, 3 * DAY, frontier=False)
    return target, settings


def test_the_split_needs_a_day_on_each_side() -> None:
    assert split_index(4320, 60.0, 2 / 3, "t") == 2880
    with pytest.raises(TraceError, match=r"tune needs at least 3\.0 days after the warm-up"):
        split_index(2880, 60.0, 2 / 3, "t")


def test_the_grid_is_fixed_and_sampled_deterministically() -> None:
    everything = grid()
    assert len(everything) == len(set(everything)) > 300
    assert sample(50) == sample(50)
    assert len(sample(50)) == 50
    assert sample(len(everything)) == everything


def test_a_setting_changes_only_its_keys() -> None:
    target = load_config(ROOT / "config.example.yaml").targets[0]
    changed = apply(target, Setting("linear", 0.8, 0.7, 120.0, 600))
    assert changed.predictor.model == "linear"
    assert changed.predictor.quantile == 0.8
    assert changed.slo.target_utilization == 0.7
    assert changed.slo.max_lag_seconds == target.slo.max_lag_seconds
    assert changed.actuation.min_dwell_seconds == 120.0
    assert changed.behavior.scale_down.stabilization_window_seconds == 600
    assert changed.behavior.scale_up == target.behavior.scale_up
    assert changed.triggers == target.triggers


def test_tune_recommends_the_cheapest_within_budget_on_the_tuning_part_only(
    small: tuple[object, object],
) -> None:
    target, settings = small
    result = tune(target, load_csv(EMBEDDED, "count"), settings, SETTINGS, 2.0)  # type: ignore[arg-type]
    assert len(result.candidates) == len(SETTINGS)
    assert result.tune_hours == pytest.approx(48.0)
    assert result.test_hours == pytest.approx(24.0)
    chosen = result.recommended
    assert chosen is not None
    within = [s for s in result.candidates if s.tune["slo_violation_pct"] <= 2.0]
    assert chosen.tune["replica_hours"] == min(s.tune["replica_hours"] for s in within)
    # The frontier: sorted by cost, each point violating less than every cheaper one.
    frontier = result.frontier
    costs = [s.tune["replica_hours"] for s in frontier]
    minutes = [s.tune["slo_violation_minutes"] for s in frontier]
    assert costs == sorted(costs)
    assert all(a > b for a, b in itertools.pairwise(minutes))
    for scored in result.candidates:
        assert any(
            f.tune["replica_hours"] <= scored.tune["replica_hours"]
            and f.tune["slo_violation_minutes"] <= scored.tune["slo_violation_minutes"]
            for f in frontier
        )
    names = {b.name for b in result.baselines}
    assert names == {"reactive", "oracle"}
    assert len(result.keda_frontier) >= 5
    oracle = next(b for b in result.baselines if b.name == "oracle")
    assert all(s.test["replica_hours"] >= oracle.test["replica_hours"] for s in result.candidates)


def test_processes_give_the_same_answer(small: tuple[object, object]) -> None:
    target, settings = small
    trace = load_csv(EMBEDDED, "count")
    alone = tune(target, trace, settings, SETTINGS, 2.0)  # type: ignore[arg-type]
    spread = tune(target, trace, settings, SETTINGS, 2.0, jobs=2)  # type: ignore[arg-type]
    assert [(s.name, s.tune, s.test) for s in alone.candidates] == [
        (s.name, s.tune, s.test) for s in spread.candidates
    ]
    assert [(b.name, b.test) for b in alone.baselines + alone.keda_frontier] == [
        (b.name, b.test) for b in spread.baselines + spread.keda_frontier
    ]


def test_the_command_prints_the_frontier_and_writes_a_config_that_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "out"
    code = main(
        [
            "tune", "--config", str(ROOT / "config.example.yaml"),
            "--poll-interval", "60",
            "--warmup-days", "3", "--settings", "6",
            "--models", "none,linear", "--budget", "5", "--jobs", "1",
            "--output", str(out_dir),
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "tuned on 2.0 days up to" in out, "no --span-days: 3 days of the embedded trace"
    # No --peak-replicas: the embedded trace scaled as replay scales it (its values are
    # tweet counts; as messages/s every run would sit at one replica).
    assert "arrival rate scaled x13,889 so that its 99th percentile needs 25 replicas" in out
    assert "frontier on the tuning part" in out
    assert "keda@625" in out
    assert "oracle" in out
    assert "recommended (*)" in out
    fragment = out.split("config fragment for target orders-consumer:")[1].split("wrote")[0]
    keys = yaml.safe_load(fragment)
    assert set(keys) == {"predictor", "slo", "actuation", "behavior", "planner"}
    summary = json.loads((out_dir / "tune.json").read_text())
    assert summary["recommended"]["name"] in out
    # The report page: one point per setting tried, the KEDA frontier, both baselines, the
    # recommendation ringed.
    page = (out_dir / "report.html").read_text()
    assert page.count('class="setting"') == len(summary["candidates"]) == 6
    assert page.count('class="keda"') == len(summary["keda_frontier"])
    assert page.count('class="baseline"') == 2
    assert page.count('class="chosen"') == 1
    assert f"recommended: {summary['recommended']['name']}" in page
    # The example's target sets slo.budget_percent 1: the recommendation keeps a budget (the
    # draw changes it to 5, which is said), never writes it as null.
    assert keys["slo"]["budget_percent"] == 5.0
    assert "budget_percent: null" not in out
    assert "note: the recommendation sets slo.budget_percent 5 (the target's is 1)" in out
    assert load_config(out_dir / "config.yaml").targets[0].slo.budget_percent == 5.0
    assert main(["validate", str(out_dir / "config.yaml")]) == 0
    document = yaml.safe_load((ROOT / "config.example.yaml").read_text())
    document["targets"][0].update(keys)
    parse_config(document)  # the printed fragment pasted into the file validates too


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--budget", "0"], "--budget must be a percentage in (0, 100)", id="budget-0"),
        pytest.param(["--budget", "100"], "in (0, 100), not 100", id="budget-100"),
        pytest.param(["--models", "prophet"], "--models: unknown prophet", id="model"),
        pytest.param(["--tune-share", "1"], "--tune-share must be in (0, 1)", id="share"),
        pytest.param(["--settings", "0"], "--settings must be >= 1", id="settings"),
        pytest.param(["--partitions", "-1"], "--partitions must be >= 1", id="partitions"),
        pytest.param(["--peak-replicas", "-5"], "--peak-replicas must be a number >= 0", id="peak"),
        pytest.param(["--startup-seconds", "-100"], "--startup-seconds must be", id="startup"),
        pytest.param(["--span-days", "0"], "--span-days must be a number > 0", id="span"),
        pytest.param(["--output", __file__], "is a file, not a folder", id="output-file"),
        pytest.param(
            ["--span-days", "1.5", "--poll-interval", "60"],
            "tune needs at least 3.0 days after the warm-up",
            id="too-short",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["tune", "--config", str(ROOT / "config.example.yaml"), *args])
    _, err = capsys.readouterr()
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err


def test_tune_and_replay_scale_the_embedded_trace_alike() -> None:
    from autoscaler.cli import build_parser
    from autoscaler.commands.options import demo_span_days, peak_replicas

    target = load_config(ROOT / "config.example.yaml").targets[0]
    parser = build_parser()
    for command in ("replay", "tune"):
        assert peak_replicas(parser.parse_args([command]), target) == 25.0, command
        own = parser.parse_args([command, "--history", "mine.csv"])
        assert peak_replicas(own, target) is None, "a user's own history replays as recorded"
        given = parser.parse_args([command, "--peak-replicas", "0"])
        assert peak_replicas(given, target) == 0.0, "0: the values as they are"
    # tune over the embedded trace's 48 days would take hours: 3, as replay's demo.
    assert demo_span_days(parser.parse_args(["tune"])) == 3.0
    assert demo_span_days(parser.parse_args(["tune", "--history", "mine.csv"])) is None
    assert demo_span_days(parser.parse_args(["tune", "--span-days", "14"])) == 14.0


def test_a_history_that_never_needs_more_than_min_replicas_is_refused_up_front(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The embedded trace as it is (tweets per 5 minutes read as messages/s) never needs a
    second replica at 250 msg/s: every run would be the same, so no recommendation."""
    code = main(["tune", "--peak-replicas", "0", "--span-days", "3", "--settings", "2",
                 "--models", "none", "--no-progress"])  # fmt: skip
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert "tune: nab_twitter_amzn: the arrival rate never exceeds" in err
    assert "which 1 replica (min_replicas 1) process at 250 msg/s each" in err
    assert "there is nothing to tune; scale the history with --peak-replicas N" in err
    assert len(err.strip().splitlines()) == 1, err


def test_settings_that_all_ran_the_same_schedule_are_refused() -> None:
    from autoscaler.tune.search import Scored, TuneResult, check_not_all_the_same

    same = {"replica_hours": 72.0, "slo_violation_pct": 0.0, "slo_violation_minutes": 0.0,
            "scale_events": 0}  # fmt: skip
    result = TuneResult("t", 1.0, 0.0, 48.0, 24.0)
    result.candidates = [Scored(f"s{i}", same, same) for i in range(3)]
    result.baselines = [Scored("reactive", same, same), Scored("oracle", same, same)]
    result.keda_frontier = [Scored("keda@156", same, same)]
    with pytest.raises(TraceError, match=r"every one of the 3 settings, reactive KEDA and the "
                       r"KEDA frontier ran the same schedule \(72\.0 replica-hours"):  # fmt: skip
        check_not_all_the_same(result)
    busier = {**same, "replica_hours": 80.0, "scale_events": 4}
    result.keda_frontier = [Scored("keda@156", busier, busier)]
    check_not_all_the_same(result)  # one run decided differently: something to compare


def test_the_written_config_keeps_other_targets_and_fits_the_new_model(tmp_path: Path) -> None:
    """A target whose old model had params, sharing its slo section with another target
    through a YAML anchor: the new model gets no stale params, the other target keeps its
    section."""
    from autoscaler.commands.tune import _write_config

    document = yaml.safe_load((ROOT / "config.example.yaml").read_text())
    first, second = document["targets"][0], document["targets"][1]
    first["predictor"] = {"model": "holt_winters", "params": {"seasonal": "add"}}
    first["slo"].pop("budget_percent")  # a budget needs a kafka_lag trigger: second has none
    second["slo"] = first["slo"]  # one mapping: PyYAML writes an anchor and an alias
    source = tmp_path / "mine.yaml"
    anchored = yaml.safe_dump(document, sort_keys=False)
    assert "&id001" in anchored
    assert "*id001" in anchored
    source.write_text(anchored)
    assert first["name"] != second["name"]
    setting = Setting("linear", 0.8, 0.55, 120.0, 600)
    _write_config(source, first["name"], setting.fragment("holt_winters"), tmp_path)
    written = load_config(tmp_path / "config.yaml")
    tuned, other = written.targets[0], written.targets[1]
    assert (tuned.predictor.model, dict(tuned.predictor.params)) == ("linear", {})
    assert tuned.slo.target_utilization == 0.55
    assert other.slo.target_utilization == 1.0
    assert other.predictor == load_config(ROOT / "config.example.yaml").targets[1].predictor


def test_the_recommendation_trades_up_to_2pct_of_cost_for_fewer_scale_events() -> None:
    from autoscaler.tune.search import Scored, TuneResult

    def scored(name: str, hours: float, pct: float, events: int) -> Scored:
        figures = {
            "replica_hours": hours,
            "slo_violation_pct": pct,
            "slo_violation_minutes": pct * 10,
            "scale_events": events,
        }
        return Scored(name, figures, figures)

    result = TuneResult("t", 1.0, 0.0, 1.0, 1.0)
    result.candidates = [
        scored("cheapest", 100.0, 0.5, 900),
        scored("calm", 101.9, 0.8, 200),
        scored("calmer but dear", 103.0, 0.1, 50),
        scored("over budget", 90.0, 1.5, 10),
    ]
    chosen = result.recommended
    assert chosen is not None
    assert chosen.name == "calm"
    # "calm" is off the cost/violation frontier ("cheapest" beats it on both), and is
    # still printed, marked, with the frontier.
    assert chosen not in result.frontier
    result.baselines = [scored("reactive", 120.0, 2.0, 1000), scored("oracle", 90.0, 0.1, 500)]
    from autoscaler.tune.page import render_page
    from autoscaler.tune.report import render

    assert "calm *" in render(result, 4)
    assert "calm (recommended)" in render_page(result, 4)
    result.candidates = result.candidates[3:]
    assert result.recommended is None


def _scored(setting: Setting, hours: float, pct: float, events: int) -> object:
    from autoscaler.tune.search import Scored

    figures = {"replica_hours": hours, "slo_violation_pct": pct,
               "slo_violation_minutes": pct * 10, "scale_events": events}  # fmt: skip
    return Scored(setting.label, figures, figures, setting)


def test_a_budget_the_target_sets_is_never_dropped_by_the_recommendation() -> None:
    """The cheapest settings run without a budget (model none, a fixed quantile): applied,
    they would switch off the target's slo.budget_percent, so with one they are shown and
    never recommended; without one they are."""
    from autoscaler.tune.report import render
    from autoscaler.tune.search import TuneResult

    none = Setting("none", 0.9, 1.0, 0.0, 300, event_cost_seconds=None)
    fixed = Setting("linear", 0.8, 1.0, 0.0, 300)
    kept = Setting("linear", 0.9, 1.0, 0.0, 300, budget_percent=1.0)
    halved = Setting("linear", 0.9, 0.85, 0.0, 300, budget_percent=0.5)
    result = TuneResult("t", 1.0, 0.0, 48.0, 24.0)
    result.candidates = [
        _scored(none, 90.0, 0.5, 100),  # type: ignore[list-item]
        _scored(fixed, 95.0, 0.5, 100),  # type: ignore[list-item]
        _scored(kept, 110.0, 0.5, 100),  # type: ignore[list-item]
        _scored(halved, 120.0, 0.2, 100),  # type: ignore[list-item]
    ]
    assert result.recommended is not None
    assert result.recommended.setting == none
    result.target_budget_percent = 1.0
    assert [s.setting for s in result.eligible] == [kept, halved]
    assert result.recommended is not None
    assert result.recommended.setting == kept
    text = render(result, 4)
    assert "only the 2 of the 4 settings that keep an SLO budget" in text
    assert "note: the recommendation sets" not in text, "the same budget: nothing to say"
    result.candidates = result.candidates[:2] + result.candidates[3:]
    assert result.recommended is not None
    assert result.recommended.setting == halved
    assert "note: the recommendation sets slo.budget_percent 0.5 (the target's is 1)" in render(
        result, 3
    )
    result.candidates = result.candidates[:2]
    assert result.recommended is None
    assert "no setting tried keeps the target's slo.budget_percent (1%)" in render(result, 2)


def test_the_fragment_never_writes_a_budget_as_null() -> None:
    for setting in (
        Setting("none", 0.9, 1.0, 0.0, 300, event_cost_seconds=None),
        Setting("linear", 0.8, 1.0, 0.0, 300),
    ):
        assert "budget_percent" not in setting.fragment()["slo"], setting.label
    budgeted = Setting("linear", 0.9, 1.0, 0.0, 300, budget_percent=0.25)
    assert budgeted.fragment()["slo"]["budget_percent"] == 0.25


def test_the_pages_legend_stays_within_the_chart() -> None:
    """Laid out in one row, the legend ran past the right edge and was cut off."""
    import re

    from autoscaler.report.legend import text_width
    from autoscaler.tune.page import WIDTH, render_page
    from autoscaler.tune.search import Scored, TuneResult

    figures = {"replica_hours": 100.0, "slo_violation_pct": 0.5, "slo_violation_minutes": 5.0,
               "scale_events": 10}  # fmt: skip
    result = TuneResult("t", 1.0, 0.0, 1.0, 1.0)
    result.candidates = [Scored("a", figures, figures)]
    result.baselines = [Scored("reactive", figures, figures)]
    svg = render_page(result, 1)
    legend = re.search(r'<g class="legend">(.*?)</g>', svg, re.DOTALL)
    assert legend is not None
    labels = re.findall(r'<text x="([0-9.]+)" y="[0-9.]+"[^>]*>([^<]+)</text>', legend.group(1))
    assert [label for _, label in labels][-1] == "recommended"
    for x, label in labels:
        assert float(x) + text_width(label) <= WIDTH, label
