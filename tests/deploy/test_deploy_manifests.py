"""deploy/: renders, validates against the Kubernetes schemas, and matches the config.

Schemas: kubernetes-validate's offline copy of the OpenAPI schemas of Kubernetes
``K8S_VERSION``, strict (an unknown field is an error, as ``kubectl apply --validate=strict``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_helpers import (
    DEPLOY,
    FLAVORS,
    MONITORING,
    ROOT,
    Doc,
    find,
    normalized,
    render,
    render_raw,
)

K8S_VERSION = "1.30.0"
SERVICE_MONITOR = DEPLOY / "components" / "servicemonitor"
PROMETHEUS_RULE = DEPLOY / "components" / "prometheusrule"
# The Prometheus Operator's pattern for a rule's `for` and a group's `interval`.
_DURATION = re.compile(r"^(0|(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?)$")


def _validate(doc: Doc) -> None:
    """Schema-validate one document; the operator's CRDs by their shape instead."""
    if doc.get("kind") == "ServiceMonitor":
        _check_service_monitor_shape(doc)
        return
    if doc.get("kind") == "PrometheusRule":
        _check_prometheus_rule_shape(doc)
        return
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(p) for p in error.path)
        name = doc.get("metadata", {}).get("name")
        pytest.fail(f"{doc.get('kind')} {name}: {where}: {error.message}")


def _check_service_monitor_shape(doc: Doc) -> None:
    # kubernetes-validate has no schema for CRDs: check what Prometheus Operator requires.
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    assert doc["metadata"]["name"]
    spec = doc["spec"]
    assert set(spec) <= {"selector", "endpoints", "namespaceSelector", "jobLabel"}
    assert spec["selector"]["matchLabels"]
    assert spec["endpoints"]
    for endpoint in spec["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout", "scheme"}
        assert isinstance(endpoint["port"], str)


def _check_prometheus_rule_shape(doc: Doc) -> None:
    # The fields of the operator's PrometheusRule CRD (monitoring.coreos.com/v1).
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    assert doc["metadata"]["name"]
    assert set(doc["spec"]) == {"groups"}
    names = [group["name"] for group in doc["spec"]["groups"]]
    assert len(names) == len(set(names)), "group names must be unique"
    for group in doc["spec"]["groups"]:
        assert set(group) <= {"name", "interval", "rules", "limit", "partial_response_strategy"}
        assert _DURATION.match(group.get("interval", "0")), group["name"]
        for rule in group["rules"]:
            allowed = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}
            assert set(rule) <= allowed, rule
            assert ("alert" in rule) != ("record" in rule), rule
            assert isinstance(rule["expr"], str)
            assert rule["expr"].strip()
            assert _DURATION.match(rule.get("for", "0")), rule
            for key in ("labels", "annotations"):
                assert all(isinstance(v, str) for v in rule.get(key, {}).values()), rule


def _raw_manifest_files() -> list[Path]:
    # deploy/monitoring holds a Prometheus rules file and a Grafana dashboard, for the tools
    # themselves: no Kubernetes objects (test_deploy_monitoring.py checks them).
    return sorted(
        path
        for path in DEPLOY.rglob("*.yaml")
        if path.name not in ("kustomization.yaml", "config.yaml") and MONITORING not in path.parents
    )


# --------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("flavor", sorted(FLAVORS))
def test_kustomize_renders_and_fallback_agrees(flavor: str, kubectl_reason: str | None) -> None:
    if kubectl_reason:
        pytest.skip(f"{kubectl_reason}: the other tests use the raw files instead")
    by_kubectl = normalized(render(FLAVORS[flavor]))
    by_fallback = normalized(render_raw(FLAVORS[flavor]))
    assert sorted(by_kubectl) == sorted(by_fallback)
    for key, doc in by_kubectl.items():
        assert doc == by_fallback[key], key


def test_default_is_the_cluster_overlay(rendered: dict[str, list[Doc]]) -> None:
    assert normalized(rendered["default"]) == normalized(rendered["cluster"])


@pytest.mark.parametrize("flavor", sorted(FLAVORS))
def test_rendered_documents_match_the_kubernetes_schemas(
    flavor: str, rendered: dict[str, list[Doc]]
) -> None:
    for doc in rendered[flavor]:
        _validate(doc)


@pytest.mark.parametrize("path", _raw_manifest_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_raw_manifest_files_match_the_kubernetes_schemas(path: Path) -> None:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    assert docs
    for doc in docs:
        _validate(doc)


@pytest.mark.parametrize("flavor", sorted(FLAVORS))
def test_everything_lives_in_the_autoscaler_namespace(
    flavor: str, rendered: dict[str, list[Doc]]
) -> None:
    docs = rendered[flavor]
    assert find(docs, "Namespace")["metadata"]["name"] == "autoscaler"
    for doc in docs:
        if doc["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"].get("namespace") == "autoscaler", doc["metadata"]["name"]
    optional = ("Secret", "ServiceMonitor", "PrometheusRule")
    assert not [d for d in docs if d["kind"] in optional]


def _render_with_component(
    component: Path, tmp_path: Path, kubectl_reason: str | None
) -> list[Doc]:
    """The cluster overlay with ``component``, as README.md says to add one: in an overlay
    (which sets the namespace); every document validated."""
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": "autoscaler",
        # kustomize refuses absolute roots
        "resources": [os.path.relpath(FLAVORS["cluster"], tmp_path)],
        "components": [os.path.relpath(component, tmp_path)],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    docs = render_raw(tmp_path) if kubectl_reason else render(tmp_path)
    for doc in docs:
        _validate(doc)
    return docs


def test_service_monitor_component(tmp_path: Path, kubectl_reason: str | None) -> None:
    docs = _render_with_component(SERVICE_MONITOR, tmp_path, kubectl_reason)
    monitor = find(docs, "ServiceMonitor")
    service = find(docs, "Service", "predictive-autoscaler-metrics")
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    labels = service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ports = {port["name"] for port in service["spec"]["ports"]}
    assert [endpoint["port"] for endpoint in monitor["spec"]["endpoints"]] == ["metrics"]
    assert "metrics" in ports


def test_prometheus_rule_component(tmp_path: Path, kubectl_reason: str | None) -> None:
    docs = _render_with_component(PROMETHEUS_RULE, tmp_path, kubectl_reason)
    rule = find(docs, "PrometheusRule")
    assert (
        rule["metadata"]["namespace"]
        == find(docs, "Service", "predictive-autoscaler-metrics")["metadata"]["namespace"]
    )
    # What Prometheus gets is the plain rules file, which promtool checks and tests.
    rules_file = yaml.safe_load((MONITORING / "autoscaler.rules.yaml").read_text())
    assert rule["spec"] == rules_file


# --------------------------------------------------------------------------- config


def test_shipped_config_is_the_example(rendered: dict[str, list[Doc]]) -> None:
    example = (ROOT / "config.example.yaml").read_text()
    assert (DEPLOY / "base" / "config.yaml").read_text() == example, (
        "deploy/base/config.yaml must be a copy of config.example.yaml: cp it again"
    )
    for docs in rendered.values():
        assert find(docs, "ConfigMap")["data"]["config.yaml"] == example


def test_shipped_config_passes_autoscaler_validate(
    rendered: dict[str, list[Doc]], tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(find(rendered["default"], "ConfigMap")["data"]["config.yaml"])
    result = subprocess.run(
        [sys.executable, "-m", "autoscaler", "validate", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "config OK" in result.stdout


def test_shipped_config_suits_a_cluster(shipped_config: dict[str, Any]) -> None:
    assert shipped_config["dry_run"] is True, "ship forecast-only mode; users switch it off"
    assert shipped_config["kubernetes"]["mode"] in ("auto", "in_cluster")
    assert shipped_config["server"]["bind_address"] == "0.0.0.0"
    election = shipped_config["leader_election"]
    assert election["enabled"] is True
    assert election.get("lease_namespace") in (None, "autoscaler")


# --------------------------------------------------------------------------- Deployment


def _deployment(docs: list[Doc]) -> tuple[Doc, Doc]:
    deployment = find(docs, "Deployment", "predictive-autoscaler")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return deployment, container


@pytest.mark.parametrize("flavor", sorted(FLAVORS))
def test_deployment_is_locked_down(flavor: str, rendered: dict[str, list[Doc]]) -> None:
    deployment, container = _deployment(rendered[flavor])
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is True
    assert pod["serviceAccountName"] == find(rendered[flavor], "ServiceAccount")["metadata"]["name"]
    assert pod.get("hostNetwork") is not True
    assert pod.get("hostPID") is not True
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security.get("privileged") is not True
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]], "a writable /tmp on a read-only root"
    for volume in volumes.values():
        if "secret" in volume:
            assert volume["secret"]["optional"] is True, "install must work without Secrets"
    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]


@pytest.mark.parametrize("flavor", sorted(FLAVORS))
def test_deployment_matches_the_config(
    flavor: str, rendered: dict[str, list[Doc]], shipped_config: dict[str, Any]
) -> None:
    docs = rendered[flavor]
    deployment, container = _deployment(docs)
    server = shipped_config["server"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    scaler = server.get("external_scaler", {}).get("port", 6000)
    assert ports == {
        "health": server["health_port"],
        "metrics": server["metrics_port"],
        "external-scaler": scaler,
    }
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        action = container[probe]["httpGet"]
        assert action["path"] == path
        assert ports.get(action["port"], action["port"]) == server["health_port"]
    # Two replicas only make sense with leader election (else both would patch).
    assert deployment["spec"]["replicas"] == 2
    assert shipped_config["leader_election"]["enabled"] is True
    budget = find(docs, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    # Readiness follows Kafka: unready pods during a Kafka outage must stay evictable, or
    # the budget would block every node drain until Kafka is back.
    assert budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert budget["spec"]["selector"]["matchLabels"] == selector
    service = find(docs, "Service", "predictive-autoscaler-metrics")
    assert service["spec"]["selector"] == selector
    (port,) = service["spec"]["ports"]
    assert port["port"] == server["metrics_port"]
    assert ports.get(port["targetPort"], port["targetPort"]) == server["metrics_port"]
    grpc_service = next(
        d
        for d in docs
        if d["kind"] == "Service" and d["metadata"]["name"] == "predictive-autoscaler"
    )
    assert grpc_service["spec"]["selector"] == selector
    (grpc_port,) = grpc_service["spec"]["ports"]
    assert ports.get(grpc_port["targetPort"], grpc_port["targetPort"]) == scaler
    # The ConfigMap is mounted where the image's command reads the config.
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/etc/autoscaler")
    volume = next(
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]
    )
    assert volume["configMap"]["name"] == find(docs, "ConfigMap")["metadata"]["name"]
    assert "command" not in container
    assert "args" not in container


def _config_files(config: Any) -> list[str]:
    """Every ``*_file`` path the config names (password, CA, token...)."""
    if isinstance(config, dict):
        found = [v for k, v in config.items() if k.endswith("_file") and isinstance(v, str)]
        return found + [f for v in config.values() for f in _config_files(v)]
    if isinstance(config, list):
        return [f for v in config for f in _config_files(v)]
    return []


def test_secret_example_provides_the_files_the_config_reads(
    rendered: dict[str, list[Doc]], shipped_config: dict[str, Any]
) -> None:
    secrets = {
        doc["metadata"]["name"]: doc
        for doc in yaml.safe_load_all((DEPLOY / "secret.example.yaml").read_text())
    }
    deployment, container = _deployment(rendered["default"])
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounted: dict[str, set[str]] = {}  # mount directory -> keys of the Secret there
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "secret" in volume:
            secret = secrets[volume["secret"]["secretName"]]
            assert secret["metadata"]["namespace"] == deployment["metadata"]["namespace"]
            mounted[mount["mountPath"]] = set(secret["stringData"])
    wanted = [*_config_files(shipped_config), "/var/run/secrets/prometheus/token"]
    for path in wanted:
        directory, _, key = path.rpartition("/")
        assert key in mounted.get(directory, set()), f"{path} is in no mounted Secret"
    assert sorted(mounted) == ["/var/run/secrets/kafka", "/var/run/secrets/prometheus"]
