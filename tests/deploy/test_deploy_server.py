"""deploy/ against a real kube-apiserver v1.28.7: server-side dry-run of every flavor, and
the ServiceAccount's access as the real RBAC authorizer answers it.

The static tests beside this one check the manifests' shape and that the rules equal the
code's calls; here the API server itself says whether every object would be admitted
(schema, defaults, Pod Security "restricted" on the namespace) and what the ServiceAccount
may do once installed (``kubectl auth can-i`` as the ServiceAccount: a SubjectAccessReview).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from deploy_helpers import FLAVORS, Doc, find, kubectl_missing, render
from servers.kube_control_plane import Kube, KubeControlPlane

ACCOUNT = "system:serviceaccount:{namespace}:predictive-autoscaler"


@pytest.fixture(scope="module")
def rendered_by_kubectl() -> dict[str, list[Doc]]:
    reason = kubectl_missing()
    if reason is not None:
        pytest.skip(f"server-side dry-run needs kubectl: {reason}")
    return {flavor: render(path) for flavor, path in FLAVORS.items()}


def _in_namespace(docs: list[Doc], namespace: str, suffix: str) -> list[Doc]:
    """A flavor moved to another namespace (what ``namespace:`` in an overlay does), its
    cluster-scoped names suffixed so that several installs can live in one cluster."""
    moved = []
    for original in docs:
        doc = copy.deepcopy(original)
        metadata = doc["metadata"]
        if doc["kind"] == "Namespace":
            metadata["name"] = namespace
        elif doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            metadata["name"] += suffix
        else:
            metadata["namespace"] = namespace
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] += suffix
        for subject in doc.get("subjects", []):
            subject["namespace"] = namespace
        moved.append(doc)
    return moved


def _apply(plane: KubeControlPlane, docs: list[Doc], *extra: str) -> str:
    """``kubectl apply --server-side`` of the documents; stderr (warnings) returned."""
    result = plane.kubectl(
        "apply",
        "--server-side",
        "--field-manager",
        "tests",
        *extra,
        "-f",
        "-",
        stdin=yaml.safe_dump_all(docs),
    )
    return result.stderr


@pytest.mark.parametrize("flavor", sorted(FLAVORS))
def test_every_flavor_passes_a_server_side_dry_run_without_warnings(
    flavor: str, kube: Kube, rendered_by_kubectl: dict[str, list[Doc]]
) -> None:
    """The namespace is created for real (a dry-run of namespaced objects needs it to
    exist); everything else only as a dry-run, which runs validation and admission."""
    namespace = f"{kube.namespace}-{flavor}"
    docs = _in_namespace(rendered_by_kubectl[flavor], namespace, f"-{kube.namespace}")
    namespaces = [doc for doc in docs if doc["kind"] == "Namespace"]
    assert namespaces, "every flavor brings its namespace"
    _apply(kube.plane, namespaces)
    rest = [doc for doc in docs if doc["kind"] != "Namespace"]
    warnings = _apply(kube.plane, rest, "--dry-run=server")
    # Pod Security admission warns (it does not refuse) a Deployment whose pods would
    # violate the namespace's "restricted" level: no warning at all is the bar.
    assert warnings.strip() == "", warnings
    labels = namespaces[0]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_a_pod_that_breaks_restricted_is_warned_about(
    kube: Kube, rendered_by_kubectl: dict[str, list[Doc]]
) -> None:
    """The no-warning bar above can fail: the same Deployment made privileged is warned."""
    namespace = f"{kube.namespace}-bad"
    docs = _in_namespace(rendered_by_kubectl["namespaced"], namespace, "")
    _apply(kube.plane, [doc for doc in docs if doc["kind"] == "Namespace"])
    deployment = find(docs, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["allowPrivilegeEscalation"] = True
    warnings = _apply(kube.plane, [deployment], "--dry-run=server")
    assert "would violate PodSecurity" in warnings


def _can(plane: KubeControlPlane, account: str, verb: str, resource: str, namespace: str) -> bool:
    """``resource`` as ``deployments.apps/scale`` means the subresource; ``leases/NAME`` a
    name (kubectl's own syntax would read ``deployments/scale`` as a Deployment "scale")."""
    args = ["auth", "can-i", verb]
    kind, _, rest = resource.partition("/")
    if rest in ("scale", "status"):
        args += [kind, f"--subresource={rest}"]
    else:
        args.append(resource)
    result = plane.kubectl(*args, "-n", namespace, "--as", account, check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), result.stderr
    return answer == "yes"


def _install(kube: Kube, docs: list[Doc], namespace: str) -> str:
    _apply(kube.plane, [doc for doc in docs if doc["kind"] == "Namespace"])
    _apply(kube.plane, [doc for doc in docs if doc["kind"] != "Namespace"])
    return ACCOUNT.format(namespace=namespace)


@pytest.mark.parametrize("flavor", ["cluster", "namespaced"])
def test_the_installed_service_account_may_do_exactly_what_the_service_does(
    flavor: str,
    kube: Kube,
    rendered_by_kubectl: dict[str, list[Doc]],
    shipped_config: dict[str, Any],
) -> None:
    own = f"{kube.namespace}-{flavor}"
    docs = _in_namespace(rendered_by_kubectl[flavor], own, f"-{kube.namespace}")
    account = _install(kube, docs, own)
    elsewhere = kube.namespace  # a namespace with consumers, not the autoscaler's
    lease = shipped_config["leader_election"]["lease_name"]
    plane = kube.plane

    workloads_in = [own] if flavor == "namespaced" else [own, elsewhere]
    for namespace in workloads_in:
        for verb, resource in [
            ("get", "deployments.apps/scale"),
            ("patch", "deployments.apps/scale"),
            ("get", "statefulsets.apps/scale"),
            ("patch", "statefulsets.apps/scale"),
            ("get", "deployments.apps"),
            ("get", "statefulsets.apps"),
            ("create", "events"),
        ]:
            assert _can(plane, account, verb, resource, namespace), (verb, resource, namespace)
    if flavor == "namespaced":
        assert not _can(plane, account, "get", "deployments.apps/scale", elsewhere)
        assert not _can(plane, account, "patch", "deployments.apps/scale", elsewhere)

    # The Lease: create in its namespace; get and update only on its name.
    assert _can(plane, account, "create", "leases.coordination.k8s.io", own)
    assert _can(plane, account, "get", f"leases.coordination.k8s.io/{lease}", own)
    assert _can(plane, account, "update", f"leases.coordination.k8s.io/{lease}", own)
    assert not _can(plane, account, "update", "leases.coordination.k8s.io/other", own)
    assert not _can(plane, account, "create", "leases.coordination.k8s.io", elsewhere)

    # Never: write a workload itself, update its scale, read secrets or config maps.
    for namespace in (own, elsewhere):
        for verb, resource in [
            ("patch", "deployments.apps"),
            ("update", "deployments.apps"),
            ("update", "deployments.apps/scale"),
            ("delete", "deployments.apps"),
            ("get", "secrets"),
            ("list", "secrets"),
            ("get", "configmaps"),
            ("list", "pods"),
        ]:
            assert not _can(plane, account, verb, resource, namespace), (verb, resource)
