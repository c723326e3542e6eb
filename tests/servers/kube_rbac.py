"""Helpers for the tests against the real API server: deploy/'s RBAC in a test namespace."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import yaml
from servers.kube_control_plane import Kube

ROOT = Path(__file__).resolve().parents[2]
NAMESPACED_RBAC = ROOT / "deploy" / "overlays" / "namespaced" / "rbac-scale.yaml"
LEASE_RBAC = ROOT / "deploy" / "base" / "rbac-leader-election.yaml"
SHARD_RBAC = ROOT / "deploy" / "overlays" / "sharded" / "rbac-shards.yaml"
SERVICE_ACCOUNT = "predictive-autoscaler"


def deploy_rbac(kube: Kube, *, sharded: bool = False) -> list[dict[str, Any]]:
    """deploy/'s namespaced Roles and RoleBindings, as shipped, placed in the test's namespace
    (what ``kubectl apply -k deploy/overlays/namespaced`` does with ``namespace:``); with
    ``sharded``, also the sharded overlay's Lease Role."""
    documents: list[dict[str, Any]] = []
    paths = (NAMESPACED_RBAC, LEASE_RBAC, *((SHARD_RBAC,) if sharded else ()))
    for path in paths:
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


def install_rbac(kube: Kube, *, sharded: bool = False) -> Path:
    """The deploy/ ServiceAccount with exactly deploy/'s rules; a kubeconfig with its token."""
    apply(kube, deploy_rbac(kube, sharded=sharded))
    return kube.service_account(SERVICE_ACCOUNT)


def remove_rule(kube: Kube, role: str, resource: str, verb: str) -> None:
    """Take ``verb`` on ``resource`` out of the Role, as a careless edit of deploy/ would."""
    path = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{kube.namespace}/roles/{role}"
    current = kube.admin.request("GET", path)
    original = copy.deepcopy(current["rules"])
    rules = []
    for rule in current["rules"]:
        if resource in rule["resources"]:
            rule["verbs"] = [v for v in rule["verbs"] if v != verb]
        if rule["verbs"]:
            rules.append(rule)
    current["rules"] = rules
    kube.admin.request("PUT", path, current)
    group = next(r["apiGroups"][0] for r in original if resource in r["resources"])
    wait_until_denied(kube, group, resource, verb)


def wait_until_denied(kube: Kube, group: str, resource: str, verb: str) -> None:
    """Until the API server's authorizer has seen the edit: its RBAC cache follows a Role
    change a moment later, and a request in between would still be allowed."""
    name, _, subresource = resource.partition("/")
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": f"system:serviceaccount:{kube.namespace}:{SERVICE_ACCOUNT}",
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{kube.namespace}",
                "system:authenticated",
            ],
            "resourceAttributes": {
                "namespace": kube.namespace,
                "verb": verb,
                "group": group,
                "resource": name,
                "subresource": subresource,
            },
        },
    }
    deadline = time.monotonic() + 15
    while True:
        answer = kube.admin.request(
            "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review
        )
        if not answer["status"].get("allowed"):
            return
        assert time.monotonic() < deadline, f"{verb} {resource} still allowed"
        time.sleep(0.05)
