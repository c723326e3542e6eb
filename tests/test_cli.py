"""The ``autoscaler`` command line: exit codes, what is printed where, and never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autoscaler import __version__
from autoscaler.cli import describe_target, main
from autoscaler.config import parse_config

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
