"""deploy/overlays/sharded: three replicas sharing the targets by twelve shard Leases.

The overlay is the cluster flavor with three replicas, ``server.sharding.shards: 12`` in
its config (otherwise config.example.yaml, line for line) and the shard Leases' Role. The
Role's verbs are checked against the code in test_deploy_rbac.py; the Leases themselves
run against a real API server in tests/kube/test_kube_shards.py.
"""

from __future__ import annotations

import difflib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_helpers import FLAVORS, ROOT, SHARDED, Doc, find, normalized, render, render_raw

from autoscaler.live.shard_state import state_config_map_name


@pytest.fixture(scope="module")
def sharded(kubectl_reason: str | None) -> list[Doc]:
    return render_raw(SHARDED) if kubectl_reason else render(SHARDED)


def _config(docs: list[Doc]) -> str:
    return str(find(docs, "ConfigMap", "predictive-autoscaler-config")["data"]["config.yaml"])


def test_kustomize_renders_it_and_the_fallback_agrees(kubectl_reason: str | None) -> None:
    if kubectl_reason:
        pytest.skip(f"{kubectl_reason}: the other tests use the raw files instead")
    by_kubectl = normalized(render(SHARDED))
    by_fallback = normalized(render_raw(SHARDED))
    assert sorted(by_kubectl) == sorted(by_fallback)
    for key, doc in by_kubectl.items():
        assert doc == by_fallback[key], key


def test_its_config_is_the_example_with_twelve_shards(sharded: list[Doc]) -> None:
    example = (ROOT / "config.example.yaml").read_text().splitlines()
    shipped = (SHARDED / "config.yaml").read_text()
    assert _config(sharded) == shipped
    changed = [
        line
        for line in difflib.unified_diff(example, shipped.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert changed == ["-    shards: 1", "+    shards: 12"], (
        "deploy/overlays/sharded/config.yaml must be config.example.yaml with shards: 12"
    )
    config: dict[str, Any] = yaml.safe_load(shipped)
    assert config["leader_election"]["enabled"] is True  # the shards are its Leases


def test_its_config_passes_autoscaler_validate(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "autoscaler", "validate", str(SHARDED / "config.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_three_replicas_that_name_their_pod(sharded: list[Doc]) -> None:
    deployment = find(sharded, "Deployment", "predictive-autoscaler")
    assert deployment["spec"]["replicas"] == 3
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}
    assert env == {"POD_NAME": "metadata.name", "POD_UID": "metadata.uid"}


def test_the_shard_role_is_bound_in_the_autoscaler_namespace_only(sharded: list[Doc]) -> None:
    role = find(sharded, "Role", "predictive-autoscaler-shards")
    binding = find(sharded, "RoleBinding", "predictive-autoscaler-shards")
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "autoscaler"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "predictive-autoscaler-shards",
    }
    assert {r["resources"][0] for r in role["rules"]} == {"leases", "configmaps"}
    assert not [
        r
        for r in role["rules"]
        if "delete" in r["verbs"] or ("list" in r["verbs"] and r["resources"] != ["leases"])
    ]
    assert not [d for d in sharded if d["kind"] == "ClusterRole" and "shard" in str(d)]


def test_everything_else_is_the_cluster_flavor(
    sharded: list[Doc], rendered: dict[str, list[Doc]]
) -> None:
    cluster = normalized(rendered["cluster"])
    own = normalized(sharded)
    extra = set(own) - set(cluster)
    assert extra == {
        ("Role", "autoscaler", "predictive-autoscaler-shards"),
        ("RoleBinding", "autoscaler", "predictive-autoscaler-shards"),
    }
    for key, doc in cluster.items():
        if key[0] in ("ConfigMap", "Deployment"):
            continue
        assert own[key] == doc, key
    assert set(FLAVORS) == {"default", "cluster", "namespaced"}


def test_the_state_config_maps_granted_are_one_per_shard_of_its_config(
    sharded: list[Doc],
) -> None:
    config: dict[str, Any] = yaml.safe_load((SHARDED / "config.yaml").read_text())
    shards = config["server"]["sharding"]["shards"]
    prefix = config["leader_election"]["lease_name"]
    role = find(sharded, "Role", "predictive-autoscaler-shards")
    named = [r for r in role["rules"] if r["resources"] == ["configmaps"] and "resourceNames" in r]
    (rule,) = named
    assert rule["resourceNames"] == [state_config_map_name(prefix, n) for n in range(shards)]
    assert sorted(rule["verbs"]) == ["get", "update"]
