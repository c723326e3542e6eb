"""deploy/monitoring/dashboard.json: importable into Grafana, one row per target, every query
valid PromQL on exported metrics, and every query answering on a real Prometheus.

No Grafana here: the JSON is checked for what an import needs (a current schemaVersion, a
``datasource`` variable every panel queries, variables Grafana can resolve, a layout within
24 columns). Each query is parsed by ``promql-parser`` with the Grafana variables replaced
first, then sent to Debian's Prometheus holding what two real ``ServiceMetrics`` rendered
over 20 minutes of polls (a leader and a follower, scraped as a ServiceMonitor labels them):
a query that parses but selects nothing (a wrong label, a join that matches no series) fails.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from deploy_helpers import MONITORING
from helpers import UNBOUNDED, make_target, step
from prometheus_client.parser import text_string_to_metric_families
from promql_helpers import exported_metric_names, selector_names
from servers.prometheus_server import PrometheusServer, Series

from autoscaler.decision import Forecast, KafkaLagObservation, MetricObservation
from autoscaler.observability import ServiceMetrics

DASHBOARD = MONITORING / "dashboard.json"
MIN_SCHEMA_VERSION = 36  # Grafana 9.0 wrote 36; the file is 39, as a current Grafana exports it
# Series that are Prometheus's own, not the service's.
PROMETHEUS_SERIES = {"ALERTS"}
# What the variables stand for when a query is checked; Grafana's built-ins included.
VARIABLES = {
    "datasource": "prometheus",
    "namespace": ".*",
    "job": "autoscaler",
    "target": "orders",
    "slo_seconds": "60",
    "__rate_interval": "2m",
    "__interval": "30s",
    "__range": "1h",
}
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")
_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")


def _dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def _panels(dashboard: dict[str, Any]) -> Iterator[tuple[dict[str, Any] | None, dict[str, Any]]]:
    """(the row it is in, panel) for every panel that is not a row, in order."""
    row: dict[str, Any] | None = None
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            row = panel
            yield from ((row, inner) for inner in panel.get("panels", []))  # collapsed rows
            continue
        yield row, panel


def _queries() -> list[tuple[str, str, str]]:
    """(panel title / refId, the panel's row title, expr) of every query of every panel."""
    found = []
    for row, panel in _panels(_dashboard()):
        for query in panel["targets"]:
            where = f"{panel['title']} / {query['refId']}"
            found.append((where, row["title"] if row else "", query["expr"]))
    return found


def substitute(text: str, **values: str) -> str:
    """``text`` with every Grafana variable replaced (``VARIABLES``, then ``values``)."""
    known = {**VARIABLES, **values}

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in known, f"unknown variable ${name} in {text!r}"
        return known[name]

    return _VARIABLE.sub(one, text)


# --------------------------------------------------------------------------- importable


def test_dashboard_is_importable() -> None:
    dashboard = _dashboard()
    assert dashboard["schemaVersion"] >= MIN_SCHEMA_VERSION
    assert dashboard["uid"] == "predictive-autoscaler"
    assert dashboard["title"]
    assert dashboard["id"] is None, "an exported id would clash on import"
    assert "__inputs" not in dashboard, "the datasource variable replaces import inputs"
    rows = [panel["id"] for panel in dashboard["panels"] if panel["type"] == "row"]
    ids = rows + [panel["id"] for _, panel in _panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_every_panel_queries_the_datasource_variable() -> None:
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    for _, panel in _panels(_dashboard()):
        assert panel["datasource"] == datasource, panel["title"]
        assert panel["targets"], panel["title"]
        for query in panel["targets"]:
            assert query["datasource"] == datasource, panel["title"]
        assert panel["type"] in {"timeseries", "stat", "table"}, panel["title"]
        assert panel.get("description"), f"{panel['title']}: say what it shows"


def test_panels_fit_the_grid_without_overlapping() -> None:
    boxes = []
    for panel in _dashboard()["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0
        assert pos["w"] >= 1
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        boxes.append((panel["title"], pos))
    for i, (title, a) in enumerate(boxes):
        for other, b in boxes[i + 1 :]:
            apart = (
                a["x"] + a["w"] <= b["x"]
                or b["x"] + b["w"] <= a["x"]
                or a["y"] + a["h"] <= b["y"]
                or b["y"] + b["h"] <= a["y"]
            )
            assert apart, f"{title} overlaps {other}"


# --------------------------------------------------------------------------- variables


def _variables() -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in _dashboard()["templating"]["list"]}


def test_variables() -> None:
    variables = _variables()
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    target = variables["target"]
    assert target["type"] == "query"
    assert target["query"]["query"].startswith("label_values(autoscaler_current_replicas{")
    assert target["query"]["query"].endswith(", target)")
    # A repeated row needs a variable that can hold several values.
    assert target["multi"] is True
    assert target["includeAll"] is True
    # The scrape adds job (always) and namespace (the Prometheus Operator does): "All"
    # namespaces must also match series without the label, as a plain scrape config makes.
    assert variables["namespace"]["includeAll"] is True
    assert variables["namespace"]["allValue"] == ".*"
    assert variables["job"]["multi"] is False
    assert float(variables["slo_seconds"]["query"]) > 0
    assert set(variables) == {n for n in VARIABLES if not n.startswith("__")}


@pytest.mark.parametrize(
    "name", [n for n, v in _variables().items() if v["type"] == "query"], ids=str
)
def test_variable_query_is_label_values_of_an_exported_metric(name: str) -> None:
    variable = _variables()[name]
    assert variable["definition"] == variable["query"]["query"]
    match = _LABEL_VALUES.match(variable["query"]["query"])
    assert match, variable["query"]["query"]
    assert selector_names(substitute(match["selector"])) <= exported_metric_names()
    assert variable["datasource"]["uid"] == "${datasource}"


# --------------------------------------------------------------------------- the rows


def test_one_row_per_target() -> None:
    dashboard = _dashboard()
    rows = [panel for panel in dashboard["panels"] if panel["type"] == "row"]
    repeated = [row for row in rows if row.get("repeat")]
    assert [row["repeat"] for row in repeated] == ["target"]
    assert "$target" in repeated[0]["title"]
    for row, panel in _panels(dashboard):
        exprs = [query["expr"] for query in panel["targets"]]
        if row is repeated[0]:
            # Each query is about its row's target (but a constant like the SLO line).
            assert all(
                'target=~"$target"' in expr for expr in exprs if selector_names(substitute(expr))
            ), panel["title"]
        else:
            assert not any("$target" in expr for expr in exprs), panel["title"]


def test_the_target_row_shows_what_operating_a_target_needs() -> None:
    shown: set[str] = set()
    for _, row, expr in _queries():
        if "$target" in row:
            shown |= selector_names(substitute(expr))
    wanted = {
        "autoscaler_current_replicas",
        "autoscaler_desired_replicas",
        "autoscaler_forecast_point",
        "autoscaler_forecast_upper",
        "autoscaler_arrival_rate_messages_per_second",
        "autoscaler_processing_rate_messages_per_second",
        "autoscaler_observed_metric_value",
        "autoscaler_observed_lag_messages",
        "autoscaler_slo_violation_ratio",
        "autoscaler_slo_budget_ratio",
        "autoscaler_slo_budget_quantile",
        "autoscaler_slo_budget_at_limit",
        "autoscaler_forecast_mae",
        "autoscaler_forecast_coverage_ratio",
        "autoscaler_forecast_accuracy_samples",
        "autoscaler_decisions_total",
        "autoscaler_source_errors_total",
        "autoscaler_patch_errors_total",
    }
    assert wanted - shown == set()


@pytest.mark.parametrize(("where", "row", "expr"), _queries(), ids=[q[0] for q in _queries()])
def test_query_is_valid_promql_on_exported_metrics(where: str, row: str, expr: str) -> None:
    try:
        names = selector_names(substitute(expr))
    except ValueError as error:
        pytest.fail(f"{where}: not valid PromQL: {error}")
    assert names <= exported_metric_names() | PROMETHEUS_SERIES, where


# --------------------------------------------------------------------------- on Prometheus

POLL_SECONDS = 30
POLLS = 41  # 20 minutes


def _service_series(end: float) -> list[Series]:
    """What a leader (``a``) and a follower (``b``) render over ``POLLS`` polls to ``end``:
    a Kafka target ``orders`` (with an SLO budget, errors) and a Prometheus one ``search``,
    neither in conflict.
    The follower sees 1000 more messages of lag, so a query that does not keep to the
    leader shows it."""
    decision, _ = step(
        make_target(behavior=UNBOUNDED),
        2,
        {"kafka_lag": KafkaLagObservation(observed_at=0, total_lag=1000, partition_count=12)},
    )
    instances = {"a": ServiceMetrics(), "b": ServiceMetrics()}
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[float, float]]] = {}
    for i in range(POLLS):
        at = end - (POLLS - 1 - i) * POLL_SECONDS
        for name, metrics in instances.items():
            metrics.set_leader(name == "a")
            lag = 2000 + 50 * i + (1000 if name == "b" else 0)
            metrics.observe_observation(
                "orders",
                "lag",
                KafkaLagObservation(
                    observed_at=at,
                    total_lag=lag,
                    partition_count=12,
                    arrival_rate=100.0 + 5 * (i % 4),
                    processing_rate=90.0,
                ),
            )
            metrics.observe_observation(
                "search", "latency", MetricObservation(observed_at=at, value=2.0 + 0.1 * (i % 3))
            )
            for target, trigger, point in (("orders", "lag", 105.0), ("search", "latency", 2.1)):
                metrics.observe_forecast(
                    target,
                    trigger,
                    at,
                    Forecast(POLL_SECONDS, point=point, upper=point * 1.2),
                    quantile=0.9,
                    poll_interval_seconds=POLL_SECONDS,
                )
                metrics.observe_decision(target, decision)
                metrics.observe_loop_duration(target, 0.05)
                metrics.set_conflict(target, conflict=False)
            metrics.observe_budget(
                "orders",
                {
                    "quantile": 0.92,
                    "budget_percent": 1.0,
                    "recent_violation_percent": 0.5,
                    "at_limit": False,
                },
            )
            if i % 3 == 0:
                metrics.source_error("orders", "lag")
            if i % 4 == 0:
                metrics.patch_error("orders", "conflict")
            if i == 0:
                metrics.config_reload(success=True)
            scraped = {"job": "autoscaler", "namespace": "autoscaler", "instance": f"{name}:9090"}
            for family in text_string_to_metric_families(metrics.render().decode()):
                for sample in family.samples:
                    if sample.name.endswith("_created"):
                        continue
                    labels = tuple(sorted({**sample.labels, **scraped}.items()))
                    samples.setdefault((sample.name, labels), []).append((at, sample.value))
    return [Series(name, dict(labels), points) for (name, labels), points in samples.items()]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, float]]:
    """(URL, the time of the last poll) of a Prometheus holding ``_service_series``."""
    if shutil.which("prometheus") is None or shutil.which("promtool") is None:
        pytest.skip("prometheus is not installed (Debian's prometheus package: bash .ci/install)")
    end = float(int(time.time()) // 60 * 60)
    series = _service_series(end)
    with PrometheusServer(tmp_path_factory.mktemp("prometheus"), series) as server:
        yield server.url, end


def query(prometheus: tuple[str, float], expr: str) -> list[dict[str, Any]]:
    url, end = prometheus
    params = urllib.parse.urlencode({"query": expr, "time": end})
    with urllib.request.urlopen(f"{url}/api/v1/query?{params}", timeout=30) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


@pytest.mark.parametrize(("where", "row", "expr"), _queries(), ids=[q[0] for q in _queries()])
def test_query_answers_on_the_service_metrics(
    prometheus: tuple[str, float], where: str, row: str, expr: str
) -> None:
    names = selector_names(substitute(expr))
    if names & PROMETHEUS_SERIES:
        pytest.skip(f"{where}: {sorted(names & PROMETHEUS_SERIES)}: no rules run here")
    # A Kafka trigger's panels answer for orders, a Prometheus trigger's for search.
    answers = {
        target: query(prometheus, substitute(expr, target=target))
        for target in ("orders", "search")
    }
    assert any(answers.values()), f"{where}: no data for any target: {expr}"


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        pytest.param("Leader", 1, id="one-leader"),
        pytest.param("Instances", 2, id="both-instances"),
        # The leader's lag at the last poll over the processing rate (the follower's is
        # 1000 higher: the leader's figures are the ones shown).
        pytest.param("Time to drain the lag vs SLO", (2000 + 50 * (POLLS - 1)) / 90, id="drain"),
        pytest.param("Replicas", 2, id="current-replicas"),
    ],
)
def test_panel_values(prometheus: tuple[str, float], title: str, expected: float) -> None:
    (panel,) = [p for _, p in _panels(_dashboard()) if p["title"] == title]
    (result,) = query(prometheus, substitute(panel["targets"][0]["expr"]))
    assert float(result["value"][1]) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("name", "values"),
    [
        pytest.param("namespace", ["autoscaler"], id="namespace"),
        pytest.param("job", ["autoscaler"], id="job"),
        pytest.param("target", ["orders", "search"], id="target"),
    ],
)
def test_variable_query_finds_the_values(
    prometheus: tuple[str, float], name: str, values: list[str]
) -> None:
    match = _LABEL_VALUES.match(_variables()[name]["query"]["query"])
    assert match
    found = query(prometheus, f"count by ({match['label']}) ({substitute(match['selector'])})")
    assert sorted(r["metric"][match["label"]] for r in found) == values


def test_dashboard_file_is_formatted() -> None:
    # Diffs stay reviewable: 2-space indent, a final newline, as Grafana's export.
    text = DASHBOARD.read_text()
    assert text == json.dumps(json.loads(text), indent=2) + "\n"
