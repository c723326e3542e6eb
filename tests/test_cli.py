"""The ``autoscaler`` command line: exit codes, what is printed where, and never a traceback."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoscaler import __version__
from autoscaler.build_info import BuildInfo, build_info
from autoscaler.cli import build_parser, describe_target, main
from autoscaler.config import AutoscalerConfig, ConfigError, load_config, parse_config
from autoscaler.config.overrides import RunOverrides

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.yaml"

BAD = """\
kafka_clusters:
  main:
    bootstrap_servers: [kafka:9092]
targets:
  - name: orders
    scale_target_ref: {name: orders}
    min_replicas: lots
    triggers:
      - type: kafka_lag
        cluster: mian
        consumer_group: orders
"""

BAD_PROBLEMS = [
    "  targets[0].min_replicas: must be an integer (line 7, column 19)",
    "  targets[0].triggers[0].cluster: 'mian' is not defined in kafka_clusters "
    "(defined: 'main') (line 10, column 18)",
]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_validate_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLE)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "orders-consumer: Deployment shop/orders-consumer, replicas 1..50, "
        "triggers kafka_lag(cluster=main, group=orders, topics=orders, lag_threshold=625), "
        "predictor auto (lead 90s, q0.9), SLO 60s, dry-run",
        "invoice-renderer: Deployment billing/invoice-renderer, replicas 0..20 "
        "(idle 0 after 600s), triggers prometheus(server=main), "
        "predictor seasonal_ridge (lead 75s, q0.9), SLO 60s, dry-run",
        "config OK: 2 targets",
    ]
    assert err == ""


def test_validate_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, BAD)
    assert main(["validate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [f"{path}: 2 problems", *BAD_PROBLEMS]
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        pytest.param("missing.yaml", None, "  <file>: file not found", id="missing"),
        pytest.param("empty.yaml", "", "  <file>: the file is empty", id="empty"),
        pytest.param(
            "broken.yaml",
            "targets: [\n",
            "  <file>: invalid YAML: expected the node content, but found '<stream end>' "
            "(while parsing a flow node at line 2) (line 2, column 1)",
            id="not-yaml",
        ),
    ],
)
def test_validate_unreadable(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    text: str | None,
    expected: str,
) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text, encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert (out, err.splitlines()) == ("", [f"{path}: 1 problem", expected])


def test_run_without_cluster_credentials_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["run", "--config", str(EXAMPLE)]) == 1
    err = capsys.readouterr().err
    assert "cannot load Kubernetes credentials: no kubeconfig file at" in err
    assert "(KUBECONFIG)" in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_run_refuses_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, BAD)
    assert main(["run", "--config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [f"{path}: 2 problems", *BAD_PROBLEMS]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"autoscaler {__version__}\n"


HEAVY = ("sklearn", "scipy", "dask", "distributed")
"""What only replay, tune, a fleet or the service need: never loaded to build the command
line, print the version or validate a file."""


def _heavy_modules_loaded(code: str) -> list[str]:
    """The ``HEAVY`` top-level modules in ``sys.modules`` after ``code``, in a fresh
    interpreter."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = {name.split(".")[0] for name in json.loads(result.stdout.splitlines()[-1])}
    return sorted(loaded & set(HEAVY))


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("from autoscaler.cli import build_parser; build_parser()", id="parser"),
        pytest.param("from autoscaler.cli import main; main(['version'])", id="version"),
        pytest.param(
            "from autoscaler.cli import main; main(['validate', 'config.example.yaml'])",
            id="validate",
        ),
    ],
)
def test_the_light_commands_load_no_heavy_library(code: str) -> None:
    assert _heavy_modules_loaded(code) == []


def test_the_heavy_library_check_can_fail() -> None:
    """What a replay runs does load them: the check above is not vacuous."""
    assert "sklearn" in _heavy_modules_loaded("import autoscaler.replay.engine")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        pytest.param([], "the following arguments are required: COMMAND", id="no-command"),
        pytest.param(["scale"], "invalid choice: 'scale'", id="unknown-command"),
        pytest.param(["validate"], "the following arguments are required: FILE", id="no-file"),
        pytest.param(["run"], "the following arguments are required: --config", id="no-config"),
        pytest.param(["validate", "a", "b"], "unrecognized arguments: b", id="extra-argument"),
    ],
)
def test_usage_errors(argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usage: autoscaler")
    assert says in err


def test_unexpected_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    # A NUL byte in a path is refused by the OS layer with a ValueError: not a config
    # problem the loader knows, so the generic handler reports it.
    assert main(["validate", "bad\0path.yaml"]) == 1
    out, err = capsys.readouterr()
    assert (out, err) == ("", "error: embedded null byte\n")


def test_unexpected_error_traceback_with_debug(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--debug", "validate", "bad\0path.yaml"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert err.endswith("error: embedded null byte\n")


TARGET = {"name": "t", "scale_target_ref": {"name": "w"}}
KAFKA = {"type": "kafka_lag", "cluster": "k", "consumer_group": "g"}


@pytest.mark.parametrize(
    ("target", "line"),
    [
        pytest.param(
            {**TARGET, "triggers": [KAFKA]},
            "t: Deployment default/w, replicas 1..100, triggers kafka_lag(cluster=k, group=g, "
            "topics=*, lag_threshold=10), predictor auto (lead 90s, q0.9), SLO 60s, dry-run",
            id="defaults",
        ),
        pytest.param(
            {
                **TARGET,
                "namespace": "shop",
                "scale_target_ref": {"kind": "StatefulSet", "name": "w"},
                "min_replicas": 2,
                "idle_replicas": 0,
                "cooldown_seconds": 120.5,
                "dry_run": False,
                "triggers": [
                    {**KAFKA, "topics": ["a", "b"], "lag_threshold": 5},
                    {"type": "prometheus", "server": "p", "query": "up", "target_value": 1},
                ],
                "predictor": {"model": "none"},
                "slo": {"max_lag_seconds": 30},
            },
            "t: StatefulSet shop/w, replicas 2..100 (idle 0 after 120.5s), "
            "triggers kafka_lag(cluster=k, group=g, topics=a+b, lag_threshold=5), "
            "prometheus(server=p), predictor none (reactive), SLO 30s, live",
            id="everything-else",
        ),
    ],
)
def test_describe_target(target: dict[str, object], line: str) -> None:
    config = parse_config(
        {
            "kafka_clusters": {"k": {"bootstrap_servers": ["k:9092"]}},
            "prometheus_servers": {"p": {"url": "http://p:9090"}},
            "targets": [target],
        }
    )
    assert describe_target(config.targets[0]) == line


def test_python_dash_m_from_the_repo_root() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "autoscaler", "validate", "config.example.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.endswith("config OK: 2 targets\n"), textwrap.shorten(result.stdout, 200)


@pytest.mark.parametrize("form", ["json", "yaml"])
def test_validate_structured_is_the_normalised_config_that_loads_again(
    form: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "-o", form, str(EXAMPLE)]) == 0
    out, err = capsys.readouterr()
    document = json.loads(out) if form == "json" else yaml.safe_load(out)
    assert (document["valid"], document["source"], err) == (True, str(EXAMPLE), "")
    normalised = document["config"]
    assert normalised["targets"][0]["predictor"]["quantile"] == 0.9, "defaults filled in"
    assert normalised["targets"][1]["dry_run"] is True, "inherited from the top level"
    assert parse_config(normalised) == load_config(EXAMPLE)


@pytest.mark.parametrize("form", ["json", "yaml"])
def test_validate_structured_lists_every_problem(
    form: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, BAD)
    assert main(["validate", "--format", form, str(path)]) == 2
    out, err = capsys.readouterr()
    document = json.loads(out) if form == "json" else yaml.safe_load(out)
    assert err == ""
    assert document == {
        "valid": False,
        "source": str(path),
        "problems": [
            {
                "path": "targets[0].min_replicas",
                "message": "must be an integer",
                "line": 7,
                "column": 19,
            },
            {
                "path": "targets[0].triggers[0].cluster",
                "message": "'mian' is not defined in kafka_clusters (defined: 'main')",
                "line": 10,
                "column": 18,
            },
        ],
    }


def test_validate_structured_masks_header_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path,
        EXAMPLE.read_text(encoding="utf-8").replace(
            "    # headers:\n    #   X-Scope-OrgID: shop\n",
            "    headers:\n      X-Scope-OrgID: tenant-shop\n",
        ),
    )
    assert main(["validate", "-o", "json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "tenant-shop" not in out
    assert json.loads(out)["config"]["prometheus_servers"]["main"]["headers"] == {
        "X-Scope-OrgID": "**********"
    }


KUBE_FILE = """\
kubernetes: {mode: MODE, kubeconfig_path: /from/the/file, context: file-context}
logging: {level: info}
dry_run: false
kafka_clusters: {k: {bootstrap_servers: ["k:9092"]}}
targets:
  - name: a
    scale_target_ref: {name: a}
    triggers: [{type: kafka_lag, cluster: k, consumer_group: g}]
  - name: b
    scale_target_ref: {name: b}
    dry_run: false
    triggers: [{type: kafka_lag, cluster: k, consumer_group: g}]
"""


@pytest.mark.parametrize(
    ("mode", "overrides", "expected"),
    [
        pytest.param(
            "auto",
            RunOverrides(),
            ("auto", "/from/the/file", "file-context", "info", False),
            id="nothing-given",
        ),
        pytest.param(
            "auto",
            RunOverrides(kubeconfig_path="/flag/kubeconfig"),
            ("kubeconfig", "/flag/kubeconfig", "file-context", "info", False),
            id="kubeconfig-implies-mode-kubeconfig",
        ),
        pytest.param(
            "kubeconfig",
            RunOverrides(context="flag-context"),
            ("kubeconfig", "/from/the/file", "flag-context", "info", False),
            id="context",
        ),
        pytest.param(
            "auto",
            RunOverrides(log_level="debug", dry_run=True),
            ("auto", "/from/the/file", "file-context", "debug", True),
            id="log-level-and-dry-run",
        ),
    ],
)
def test_run_overrides(
    tmp_path: Path,
    mode: str,
    overrides: RunOverrides,
    expected: tuple[str, str, str, str, bool],
) -> None:
    config = overrides.apply(load_config(_write(tmp_path, KUBE_FILE.replace("MODE", mode))))
    kube = config.kubernetes
    seen = (kube.mode, str(kube.kubeconfig_path), kube.context, config.logging.level)
    assert seen == expected[:4]
    # Every target, including one whose own dry_run is false; never the other way.
    assert {config.dry_run, *(t.dry_run for t in config.targets)} == {expected[4]}


def test_a_kubeconfig_flag_contradicts_mode_in_cluster(tmp_path: Path) -> None:
    text = KUBE_FILE.replace("MODE", "in_cluster").replace(
        ", kubeconfig_path: /from/the/file, context: file-context", ""
    )
    config = load_config(_write(tmp_path, text))
    with pytest.raises(ConfigError) as raised:
        RunOverrides(kubeconfig_path="/k", context="c").apply(config, "f.yaml")
    assert raised.value.format() == (
        "kubernetes.mode: is in_cluster, which uses no kubeconfig: --kubeconfig and --context "
        "needs mode kubeconfig or auto"
    )


def test_run_passes_its_flags_to_the_service_and_to_every_reload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from autoscaler.live import service

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("{}\n")
    path = _write(tmp_path, KUBE_FILE.replace("MODE", "auto"))
    seen: dict[str, object] = {}

    async def fake_run(config: object, stop: object, **kwargs: Any) -> None:
        seen["config"] = config
        seen["reloaded"] = kwargs["load"](kwargs["config_path"])

    monkeypatch.setattr(service, "run", fake_run)
    argv = ["run", "--config", str(path), "--kubeconfig", str(kubeconfig), "--dry-run",
            "--context", "ctx", "--log-level", "warning"]  # fmt: skip
    assert main(argv) == 0
    for config in (seen["config"], seen["reloaded"]):
        assert isinstance(config, AutoscalerConfig)
        assert (config.kubernetes.mode, config.kubernetes.kubeconfig_path) == (
            "kubeconfig",
            kubeconfig,
        )
        assert (config.kubernetes.context, config.logging.level) == ("ctx", "warning")
        assert [t.dry_run for t in config.targets] == [True, True]


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        pytest.param(
            ["--kubeconfig", "/no/such/kubeconfig"],
            "run: --kubeconfig /no/such/kubeconfig: no such file",
            id="missing-kubeconfig",
        ),
        pytest.param(["--context", ""], "argument --context: must not be empty", id="empty"),
        pytest.param(["--log-level", "loud"], "argument --log-level: invalid choice", id="level"),
        pytest.param(["--dry-run=false"], "ignored explicit argument 'false'", id="no-dry-run-off"),
    ],
)
def test_run_flag_errors_are_one_line_and_exit_2(
    extra: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--config", str(EXAMPLE), *extra]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert says in err
    assert "Traceback" not in err


def test_run_with_a_kubeconfig_flag_against_mode_in_cluster_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path,
        KUBE_FILE.replace("MODE", "in_cluster").replace(
            ", kubeconfig_path: /from/the/file, context: file-context", ""
        ),
    )
    assert main(["run", "--config", str(path), "--context", "staging"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{path}: 1 problem",
        "  kubernetes.mode: is in_cluster, which uses no kubeconfig: --context needs mode "
        "kubeconfig or auto",
    ]


def test_run_help_describes_the_service() -> None:
    text = _subcommands(build_parser())["run"].format_help()
    for needed in ("/healthz", "/readyz", "/status", "/metrics", "SIGTERM", "leader Lease",
                   "dry_run", "exit codes"):  # fmt: skip
        assert needed in text


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(commands.choices)


def _parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    parser = build_parser()
    return [("autoscaler", parser), *_subcommands(parser).items()]


@pytest.mark.parametrize(
    ("name", "parser"), [pytest.param(name, parser, id=name) for name, parser in _parsers()]
)
def test_every_flag_of_every_command_says_what_it_does(
    name: str, parser: argparse.ArgumentParser
) -> None:
    missing = [
        action.option_strings or [action.dest]
        for action in parser._actions
        if not (action.help and action.help.strip() and action.help != argparse.SUPPRESS)
    ]
    assert missing == [], f"{name}: no help for {missing}"
    if name != "autoscaler":
        assert parser.description, f"{name} has no description"


@pytest.mark.parametrize(
    ("name", "parser"), [pytest.param(name, parser, id=name) for name, parser in _parsers()]
)
def test_every_flag_with_a_default_says_it(name: str, parser: argparse.ArgumentParser) -> None:
    """tune's --jobs said only "processes": a reader could not know it runs two at once."""
    silent = [
        action.option_strings
        for action in parser._actions
        if action.option_strings
        and action.default not in (None, False, argparse.SUPPRESS)
        and "default" not in (action.help or "")
    ]
    assert silent == [], f"{name}: the help does not say the default of {silent}"


def test_tune_help_names_every_file_it_writes() -> None:
    text = " ".join(_subcommands(build_parser())["tune"].format_help().split())
    for written in ("tune.json", "report.html", "config.yaml"):
        assert written in text, written


def test_every_command_is_listed_with_a_line_of_help() -> None:
    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {choice.dest: choice.help for choice in commands._choices_actions}
    assert set(helps) == set(commands.choices)
    assert all(helps.values()), helps


def test_the_help_test_fails_on_a_flag_without_help() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quiet", action="store_true")
    with pytest.raises(AssertionError, match="no help for"):
        test_every_flag_of_every_command_says_what_it_does("probe", parser)


def _git_head() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def test_version_prints_the_baked_revision_first(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUTOSCALER_REVISION", "0123abcd")
    assert main(["version"]) == 0
    assert capsys.readouterr().out == (
        f"autoscaler {__version__}\ncommit 0123abcd (from $AUTOSCALER_REVISION)\n"
    )
    assert main(["version", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "version": __version__,
        "commit": "0123abcd",
        "commit_from": "env",
        "modified": None,
    }


def test_version_from_a_checkout_is_its_head(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    head = _git_head()
    if head is None:
        pytest.skip("not run from a git checkout")
    # The Dockerfile's default when no --build-arg REVISION is given: not a commit.
    monkeypatch.setenv("AUTOSCALER_REVISION", "unknown")
    assert main(["version", "-o", "yaml"]) == 0
    document = yaml.safe_load(capsys.readouterr().out)
    assert (document["commit"], document["commit_from"]) == (head, "git")
    assert isinstance(document["modified"], bool)


def test_version_elsewhere_is_unknown(tmp_path: Path) -> None:
    """Installed outside a checkout, or inside some other repository that does not track
    the package (a virtual environment in a project's folder): no commit is guessed."""
    package = tmp_path / "site-packages" / "autoscaler"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    assert build_info({}, package) == BuildInfo(__version__, "unknown", "unknown")
    if subprocess.run(["git", "init", "-q", str(tmp_path)], check=False).returncode != 0:
        pytest.skip("no git")
    assert build_info({}, package).commit_from == "unknown"


@pytest.mark.parametrize("enabled", [pytest.param(True, id="on"), pytest.param(False, id="off")])
def test_a_command_loads_its_config_with_the_garbage_collector_paused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, enabled: bool
) -> None:
    """Paused while the config loads (a large file's objects are all alive: collections
    walk them for nothing), then as it was, valid file or not."""
    import gc

    from autoscaler import cli
    from autoscaler.config import load_config

    during: list[bool] = []

    def load(path: str) -> object:
        during.append(gc.isenabled())
        return load_config(path)

    monkeypatch.setattr(cli, "load_config", load)
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        assert main(["validate", str(EXAMPLE)]) == 0
        assert gc.isenabled() is enabled
        assert main(["validate", str(bad)]) == 2
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
    assert during == [False, False]
