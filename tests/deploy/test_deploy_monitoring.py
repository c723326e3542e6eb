"""deploy/monitoring: the alert rules, checked and unit-tested by promtool.

``autoscaler.rules.yaml`` is the one source of the alerts; the PrometheusRule of
``components/prometheusrule`` carries it as its spec (checked here, and rendered in
``test_deploy_manifests.py``). ``rules_test.yaml`` beside this file feeds series shaped as
the service exports them and asserts each alert fires on broken ones and stays silent on
healthy ones; the mutations below prove that those cases catch a missing guard. Every
expression is parsed by ``promql-parser`` (as ``autoscaler validate`` parses a trigger's
query) and may name only metrics the service exports.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_helpers import DEPLOY, MONITORING, ROOT
from promql_helpers import exported_metric_names, selector_names

RULES = MONITORING / "autoscaler.rules.yaml"
RULES_TEST = Path(__file__).with_name("rules_test.yaml")
PROMETHEUS_RULE = DEPLOY / "components" / "prometheusrule" / "prometheusrule.yaml"
SEVERITIES = {"warning", "critical"}


def _alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian's prometheus package: bash .ci/install)")
    return found


def _promtool(promtool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


# --------------------------------------------------------------------------- promtool


def test_rules_file_passes_promtool_check(promtool: str) -> None:
    result = _promtool(promtool, "check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in result.stdout


def test_rules_unit_tests_pass(promtool: str) -> None:
    result = _promtool(promtool, "test", "rules", RULES_TEST)
    assert result.returncode == 0, result.stdout + result.stderr


def _alert_cases() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    for case in yaml.safe_load(RULES_TEST.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            yield check["alertname"], check["exp_alerts"]


def test_every_alert_is_tested_firing_and_silent() -> None:
    names = {alert["alert"] for alert in _alerts()}
    fires = {name for name, expected in _alert_cases() if expected}
    silent = {name for name, expected in _alert_cases() if not expected}
    assert names - fires == set(), "alerts no test sees firing"
    assert names - silent == set(), "alerts no test sees silent"
    assert (fires | silent) - names == set(), "tests of alerts that do not exist"


# Each edit removes a guard of one alert (or shortens its `for`); rules_test.yaml must then
# fail. Without this, a "stays silent" case could pass on series that never matched at all.
MUTATIONS = [
    pytest.param("AutoscalerSLOBudgetBurn", "expr", "min by", "max by", id="burn-one-replica"),
    pytest.param("AutoscalerSLOBudgetBurn", "for", "30m", "10m", id="burn-short"),
    pytest.param("AutoscalerSLOBudgetAtLimit", "expr", "min by", "max by", id="limit-one-replica"),
    pytest.param("AutoscalerForecastCoverageLow", "expr", ">= 50", ">= 0", id="coverage-few"),
    pytest.param("AutoscalerForecastCoverageLow", "for", "30m", "10m", id="coverage-short"),
    pytest.param("AutoscalerForecastErrorHigh", "expr", ">= 50", ">= 0", id="error-few"),
    pytest.param("AutoscalerForecastErrorHigh", "expr", ") > 0\n", ") >= 0\n", id="error-idle"),
    pytest.param("AutoscalerSourceFailing", "expr", ") > 0", ") >= 0", id="source-flat"),
    pytest.param("AutoscalerSourceFailing", "for", "10m", "2m", id="source-burst"),
    pytest.param("AutoscalerScaleAPIFailing", "for", "10m", "2m", id="scale-once"),
    pytest.param("AutoscalerNoLeader", "for", "5m", "1m", id="leader-hand-over"),
    pytest.param("AutoscalerShardWithoutHolder", "for", "5m", "1m", id="shard-hand-over"),
    pytest.param("AutoscalerTargetConflict", "for", "5m", "0m", id="conflict-migration"),
    pytest.param("AutoscalerConfigRejected", "expr", "min by", "max by", id="config-one-replica"),
    pytest.param("AutoscalerConfigRejected", "for", "5m", "0m", id="config-fixed-quickly"),
]


def _unit_tests_on(
    promtool: str, rules: dict[str, Any], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """rules_test.yaml run on ``rules`` (written beside a copy of it, as YAML)."""
    (tmp_path / RULES.name).write_text(yaml.safe_dump(rules))
    checked = _promtool(promtool, "check", "rules", tmp_path / RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    unit_tests = yaml.safe_load(RULES_TEST.read_text())
    unit_tests["rule_files"] = [RULES.name]
    (tmp_path / RULES_TEST.name).write_text(yaml.safe_dump(unit_tests))
    return _promtool(promtool, "test", "rules", tmp_path / RULES_TEST.name)


def test_rules_unit_tests_pass_on_the_rules_rewritten(promtool: str, tmp_path: Path) -> None:
    # The control of the mutations: rewriting alone breaks nothing.
    result = _unit_tests_on(promtool, yaml.safe_load(RULES.read_text()), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("alert", "field", "old", "new"), MUTATIONS)
def test_rules_tests_catch_a_missing_guard(
    promtool: str, tmp_path: Path, alert: str, field: str, old: str, new: str
) -> None:
    rules = yaml.safe_load(RULES.read_text())
    (rule,) = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == alert]
    assert rule[field].count(old) == 1, f"{alert} {field}: no one {old!r}: update the mutation"
    rule[field] = rule[field].replace(old, new)
    result = _unit_tests_on(promtool, rules, tmp_path)
    assert result.returncode != 0, f"rules_test.yaml still passes with {alert} {field} {new!r}"
    assert f"alertname: {alert}," in result.stdout + result.stderr, result.stdout + result.stderr


# --------------------------------------------------------------------------- the rules


def test_prometheus_rule_spec_is_the_rules_file() -> None:
    (rule,) = [doc for doc in yaml.safe_load_all(PROMETHEUS_RULE.read_text()) if doc]
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"] == yaml.safe_load(RULES.read_text()), (
        f"{PROMETHEUS_RULE.relative_to(DEPLOY)}: spec must be {RULES.relative_to(DEPLOY)}, "
        "which is the source: copy its groups under spec"
    )


@pytest.mark.parametrize("alert", _alerts(), ids=lambda alert: alert["alert"])
def test_alert_is_labelled_and_explained(alert: dict[str, Any]) -> None:
    assert alert["labels"]["severity"] in SEVERITIES
    annotations = alert["annotations"]
    assert {"summary", "description", "runbook"} <= set(annotations)
    assert "\n" not in annotations["summary"]
    assert "{{" not in annotations["runbook"], "the runbook is static advice"
    assert "for" in alert, "a single evaluation pages on a scrape's noise"
    # Whatever the expression keeps of `target`, the text names it (and the tests see it).
    fired = [
        labels
        for name, expected in _alert_cases()
        if name == alert["alert"]
        for labels in (e["exp_labels"] for e in expected)
    ]
    assert fired
    if all("target" in labels for labels in fired):
        assert "$labels.target" in annotations["summary"]
        assert "$labels.target" in annotations["description"]


@pytest.mark.parametrize("alert", _alerts(), ids=lambda alert: alert["alert"])
def test_alert_expression_is_valid_promql_on_exported_metrics(alert: dict[str, Any]) -> None:
    names = selector_names(alert["expr"])
    assert names
    assert names <= exported_metric_names()


def test_readme_lists_every_alert_with_its_severity() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Dashboards and alerts", 1)[1].split("\n## ", 1)[0]
    listed = dict(re.findall(r"^\| `(Autoscaler\w+)` \| (\w+) \|", section, re.MULTILINE))
    assert listed == {alert["alert"]: alert["labels"]["severity"] for alert in _alerts()}
