"""Helpers for the tests against the real API server: deploy/'s RBAC in a test namespace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from servers.kube_control_plane import Kube

ROOT = Path(__file__).resolve().parents[2]
NAMESPACED_RBAC = ROOT / "deploy" / "overlays" / "namespaced" / "rbac-scale.yaml"
LEASE_RBAC = ROOT / "deploy" / "base" / "rbac-leader-election.yaml"
SERVICE_ACCOUNT = "predictive-autoscaler"


def deploy_rbac(kube: Kube) -> list[dict[str, Any]]:
    """deploy/'s namespaced Roles and RoleBindings, as shipped, placed in the test's namespace
    (what ``kubectl apply -k deploy/overlays/namespaced`` does with ``namespace:``)."""
    documents: list[dict[str, Any]] = []
    for path in (NAMESPACED_RBAC, LEASE_RBAC):
        for document in yaml.safe_load_all(path.read_text()):
            if not document:
                continue
            document["metadata"]["namespace"] = kube.namespace
            for subject in document.get("subjects", []):
                subject["namespace"] = kube.namespace
            documents.append(document)
    return documents


def apply(kube: Kube, documents: list[dict[str, Any]]) -> None:
    kube.plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(documents))


def install_rbac(kube: Kube) -> Path:
    """The deploy/ ServiceAccount with exactly deploy/'s rules; a kubeconfig with its token."""
    apply(kube, deploy_rbac(kube))
    return kube.service_account(SERVICE_ACCOUNT)


def remove_rule(kube: Kube, role: str, resource: str, verb: str) -> None:
    """Take ``verb`` on ``resource`` out of the Role, as a careless edit of deploy/ would."""
    path = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{kube.namespace}/roles/{role}"
    current = kube.admin.request("GET", path)
    rules = []
    for rule in current["rules"]:
        if resource in rule["resources"]:
            rule["verbs"] = [v for v in rule["verbs"] if v != verb]
        if rule["verbs"]:
            rules.append(rule)
    current["rules"] = rules
    kube.admin.request("PUT", path, current)
