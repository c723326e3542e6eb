"""The RBAC of deploy/ grants exactly the Kubernetes API calls the service makes.

The calls are found two ways: statically, every kubernetes-asyncio API method the code of
``autoscaler/`` names (called or passed on: ``self._apps.read_namespaced_deployment_scale``
returned by a helper counts too), mapped to (API group, resource, verb); and dynamically, the
requests the real actuator and leader elector send to the fake API server while reading,
scaling, recording events and acquiring, renewing and releasing the Lease. Every dynamic
request must be among the static calls, and each flavor's rules must grant the static calls,
in the namespaces they happen in, and nothing more.

A new API call in the code fails ``test_static_calls`` until it is added to the tables below,
and then the equality tests until deploy/ grants it: every new call gets an RBAC review.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from deploy_helpers import ROOT, Doc, find
from kubernetes_asyncio import client as k8s
from servers.kube_api import KubeApiServer

from autoscaler.config.model import LeaderElectionConfig, TargetConfig
from autoscaler.live.actuator import ScaleActuator
from autoscaler.live.conflicts import ConflictChecker
from autoscaler.live.leader import LeaderElector

Call = tuple[str, str, str]  # (API group, resource[/subresource], verb)

# kubernetes-asyncio API classes -> their API group ("" is the core group).
API_GROUPS = {
    "AppsV1Api": "apps",
    "CoreV1Api": "",
    "CoordinationV1Api": "coordination.k8s.io",
    "AutoscalingV2Api": "autoscaling",
    # The group of a custom object is an argument: the code lists only KEDA's ScaledObjects
    # (autoscaler/live/conflicts.py passes KEDA_GROUP; test_custom_objects_are_keda's).
    "CustomObjectsApi": "keda.sh",
}
# The kind part of a method name -> (API group, resource).
RESOURCES = {
    "deployment": ("apps", "deployments"),
    "stateful_set": ("apps", "statefulsets"),
    "event": ("", "events"),
    "lease": ("coordination.k8s.io", "leases"),
    "config_map": ("", "configmaps"),
    "horizontal_pod_autoscaler": ("autoscaling", "horizontalpodautoscalers"),
    "custom_object": ("keda.sh", "scaledobjects"),
}
SUBRESOURCES = ("scale", "status")
# Method prefix -> RBAC verb.
VERBS = {
    "read": "get",
    "list": "list",
    "watch": "watch",
    "create": "create",
    "replace": "update",
    "patch": "patch",
    "delete_collection": "deletecollection",
    "delete": "delete",
}
_METHOD = re.compile(
    r"^(?P<verb>delete_collection|read|list|watch|create|replace|patch|delete)_"
    r"(?P<scope>namespaced_|)(?P<kind>\w+?)(?P<all>_for_all_namespaces)?(?:_with_http_info)?$"
)
_API_CLASS = re.compile(r"^\w+V\d\w*Api$|^CustomObjectsApi$")
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "*"}


# --------------------------------------------------------------------------- static


@dataclass(frozen=True)
class Reference:
    where: str
    api_class: str
    method: str


def _api_class(node: ast.AST) -> str | None:
    """``k8s.AppsV1Api(...)`` (any spelling of the callee) -> "AppsV1Api"."""
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name if _API_CLASS.match(name) else None


def _api_attributes(trees: dict[str, ast.Module]) -> dict[str, str]:
    """``self.X = k8s.SomeApi(...)`` anywhere -> {X: SomeApi}; every API class must be known."""
    found: dict[str, str] = {}
    for where, tree in trees.items():
        for node in ast.walk(tree):
            name = _api_class(node)
            assert name is None or name in API_GROUPS, (
                f"{where}:{getattr(node, 'lineno', 0)}: {name} is not in API_GROUPS of "
                f"{__name__}: add it, then review deploy/ RBAC"
            )
            if isinstance(node, ast.Assign) and name is None:
                value_class = _api_class(node.value)
                for target in node.targets if value_class else []:
                    if isinstance(target, ast.Attribute):
                        found[target.attr] = value_class  # type: ignore[assignment]
    return found


def _references(trees: dict[str, ast.Module]) -> Iterator[Reference]:
    """Every API method the code names (called or not), with the API class it belongs to.

    A name like ``create_task`` is an API method only on an API object; a ``_namespaced_``
    name on something that cannot be traced to an API object fails (so none slips by).
    """
    apis = _api_attributes(trees)
    for where, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not _METHOD.match(node.attr):
                continue
            receiver = node.value
            api_class = _api_class(receiver)
            if isinstance(receiver, ast.Attribute):
                api_class = apis.get(receiver.attr)
            if api_class is None:
                traceable = "namespaces" not in node.attr and "_namespaced_" not in node.attr
                assert traceable, (
                    f"{where}:{node.lineno}: cannot tell which Kubernetes API {node.attr} is "
                    "called on: call it on an attribute assigned an API object"
                )
                continue
            yield Reference(f"{where}:{node.lineno}", api_class, node.attr)


def _service_trees() -> dict[str, ast.Module]:
    paths = [*(ROOT / "autoscaler").rglob("*.py"), *(ROOT / "predictors").rglob("*.py")]
    trees = {}
    for path in sorted(paths):
        where = str(path.relative_to(ROOT))
        trees[where] = ast.parse(path.read_text(), where)
    return trees


def _static_call(reference: Reference) -> Call:
    match = _METHOD.match(reference.method)
    assert match is not None
    hint = f"{reference.where}: {reference.method}: "
    assert match["scope"], hint + "a cluster-scoped call needs an RBAC review: map it"
    assert not match["all"], (
        hint + "only namespaced calls are mapped: a cluster-wide call needs an RBAC review"
    )
    kind, subresource = match["kind"], ""
    for candidate in SUBRESOURCES:
        if kind.endswith(f"_{candidate}"):
            kind, subresource = kind.removesuffix(f"_{candidate}"), candidate
    assert kind in RESOURCES, hint + f"kind {kind!r} is not in RESOURCES: add it, review RBAC"
    group, resource = RESOURCES[kind]
    assert API_GROUPS[reference.api_class] == group, hint + f"not in {reference.api_class}"
    return (group, f"{resource}/{subresource}" if subresource else resource, VERBS[match["verb"]])


@functools.cache
def static_calls() -> dict[Call, list[str]]:
    calls: dict[Call, list[str]] = {}
    for reference in _references(_service_trees()):
        calls.setdefault(_static_call(reference), []).append(reference.where)
    return calls


SHARDED_ONLY = ("autoscaler/live/shard_leases.py", "autoscaler/live/shard_state.py")
SHARD_ROLE = ROOT / "deploy" / "overlays" / "sharded" / "rbac-shards.yaml"
"""Its calls are made only with ``server.sharding.shards > 1``: granted by the sharded
overlay's Role (deploy/overlays/sharded/rbac-shards.yaml), not by the other flavors."""


def unsharded_calls() -> set[Call]:
    """The calls the service makes unsharded (every flavor but the sharded overlay)."""
    return {
        call
        for call, places in static_calls().items()
        if any(not where.startswith(SHARDED_ONLY) for where in places)
    }


def test_static_calls() -> None:
    assert set(static_calls()) == {
        ("coordination.k8s.io", "leases", "list"),
        ("", "configmaps", "get"),
        ("", "configmaps", "create"),
        ("", "configmaps", "update"),
        ("apps", "deployments/scale", "get"),
        ("apps", "deployments/scale", "patch"),
        ("apps", "statefulsets/scale", "get"),
        ("apps", "statefulsets/scale", "patch"),
        ("apps", "deployments", "get"),
        ("apps", "statefulsets", "get"),
        ("", "events", "create"),
        ("coordination.k8s.io", "leases", "get"),
        ("coordination.k8s.io", "leases", "create"),
        ("coordination.k8s.io", "leases", "update"),
        ("autoscaling", "horizontalpodautoscalers", "list"),
        ("keda.sh", "scaledobjects", "list"),
    }


def test_custom_objects_are_keda_scaled_objects_only() -> None:
    """The static map reads every custom-object call as KEDA's ScaledObjects: true only
    while the one module calling it passes KEDA's group and plural."""
    callers = [
        where for where, tree in _service_trees().items() if "custom_object" in ast.unparse(tree)
    ]
    assert callers == ["autoscaler/live/conflicts.py"], callers
    text = (ROOT / "autoscaler" / "live" / "conflicts.py").read_text()
    assert 'KEDA_GROUP = "keda.sh"' in text
    assert '"scaledobjects",' in text


@pytest.mark.parametrize(
    ("method", "api", "expected"),
    [
        pytest.param(
            "read_namespaced_deployment_scale",
            "AppsV1Api",
            ("apps", "deployments/scale", "get"),
            id="scale",
        ),
        pytest.param(
            "patch_namespaced_stateful_set_status",
            "AppsV1Api",
            ("apps", "statefulsets/status", "patch"),
            id="status",
        ),
        pytest.param(
            "delete_collection_namespaced_event",
            "CoreV1Api",
            ("", "events", "deletecollection"),
            id="deletecollection",
        ),
        pytest.param(
            "replace_namespaced_lease_with_http_info",
            "CoordinationV1Api",
            ("coordination.k8s.io", "leases", "update"),
            id="with-http-info",
        ),
    ],
)
def test_method_names_map_to_rbac(method: str, api: str, expected: Call) -> None:
    assert _static_call(Reference("x.py:1", api, method)) == expected


@pytest.mark.parametrize(
    ("method", "api"),
    [
        pytest.param("list_deployment_for_all_namespaces", "AppsV1Api", id="all-namespaces"),
        pytest.param("read_namespaced_secret", "CoreV1Api", id="unknown-kind"),
        pytest.param("create_namespaced_event", "AppsV1Api", id="wrong-api"),
    ],
)
def test_unmapped_methods_fail(method: str, api: str) -> None:
    with pytest.raises(AssertionError):
        _static_call(Reference("x.py:1", api, method))


# --------------------------------------------------------------------------- dynamic


@dataclass(frozen=True)
class Request:
    call: Call
    namespace: str
    name: str | None


def _request_call(method: str, path: str) -> Request:
    """An API request (method, path) -> what RBAC checks: group, resource, verb, name."""
    parts = path.strip("/").split("/")
    if parts[0] == "api":  # /api/v1/namespaces/{ns}/{resource}[/{name}[/{sub}]]
        group, rest = "", parts[2:]
    else:  # /apis/{group}/{version}/namespaces/...
        group, rest = parts[1], parts[3:]
    assert rest[0] == "namespaces", f"not a namespaced request: {method} {path}"
    namespace, resource, *tail = rest[1:]
    name = tail[0] if tail else None
    if len(tail) > 1:
        resource = f"{resource}/{tail[1]}"
    verbs = {"GET": "get" if name else "list", "POST": "create", "PUT": "update"}
    verbs |= {"PATCH": "patch", "DELETE": "delete" if name else "deletecollection"}
    return Request((group, resource, verbs[method]), namespace, name)


async def _exercise(lease_name: str, lease_namespace: str) -> list[Request]:
    """Read, scale and record events on both kinds; acquire, renew and release the Lease."""
    async with KubeApiServer() as api:
        api.add_workload("Deployment", "shop", "orders", replicas=1)
        api.add_workload("StatefulSet", "shop", "ledger", replicas=1)
        client = k8s.ApiClient(k8s.Configuration(host=api.url))
        async with ScaleActuator(client, request_timeout_seconds=5, owns_client=True) as actuator:
            for kind, name in (("Deployment", "orders"), ("StatefulSet", "ledger")):
                target = _target(kind, name)
                await actuator.event(target, "Probe", "before any read: looks the uid up")
                state = await actuator.read(target)
                await actuator.scale(target, 3, expected_current=state.spec_replicas)
                await actuator.scale(target, 4)
                await actuator.event(target, "Scaled", "scaled to 4")
            config = LeaderElectionConfig.model_validate(
                {
                    "lease_name": lease_name,
                    "lease_duration_seconds": 1.0,
                    "renew_deadline_seconds": 0.6,
                    "retry_period_seconds": 0.1,
                }
            )
            checker = ConflictChecker(client, refresh_seconds=0)
            assert await checker.find(_target("Deployment", "orders"), 0) is None  # no KEDA
            api.add_scaled_object("shop", "ledger-keda", "ledger")
            found = await checker.find(_target("StatefulSet", "ledger"), 1)
            assert found is None  # a StatefulSet's ScaledObject names its kind; this does not
            elector = LeaderElector(client, config, identity="pod-a_1", namespace=lease_namespace)
            stop = asyncio.Event()
            task = asyncio.create_task(elector.run(stop))
            await asyncio.wait_for(elector.wait_for(leader=True), 5)
            for _ in range(100):  # until the first renewal (a PUT)
                if any(r.method == "PUT" for r in api.requests):
                    break
                await asyncio.sleep(0.02)
            stop.set()
            await asyncio.wait_for(task, 5)
            lease = api.lease(lease_namespace, lease_name)
            assert lease is not None
            assert lease["spec"]["holderIdentity"] == "", "released on stop"
        return [_request_call(r.method, r.path) for r in api.requests]


def _target(kind: str, name: str) -> TargetConfig:
    return TargetConfig.model_validate(
        {
            "name": name,
            "namespace": "shop",
            "scale_target_ref": {"kind": kind, "name": name},
            "triggers": [{"type": "kafka_lag", "cluster": "main", "consumer_group": "g"}],
        },
        strict=False,
    )


@pytest.fixture(scope="module")
def dynamic_requests(shipped_config: dict[str, Any]) -> list[Request]:
    return asyncio.run(_exercise(shipped_config["leader_election"]["lease_name"], "autoscaler"))


def test_dynamic_calls_are_among_the_static_ones(dynamic_requests: list[Request]) -> None:
    dynamic = {request.call for request in dynamic_requests}
    assert dynamic <= set(static_calls()), dynamic - set(static_calls())
    # Every method found statically was exercised, so the subset test says something.
    assert dynamic == unsharded_calls()


def test_the_shard_lease_role_grants_exactly_what_the_shard_leases_call() -> None:
    """The sharded overlay's Role: every verb the shard Leases use, on Leases only, and
    nothing else (no delete: a member Lease goes with its pod, by its ownerReference)."""
    docs = [d for d in yaml.safe_load_all(SHARD_ROLE.read_text()) if d]
    (role,) = [d for d in docs if d["kind"] == "Role"]
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    used = {
        call
        for call, places in static_calls().items()
        if any(where.startswith(SHARDED_ONLY) for where in places)
    }
    assert granted == used, f"extra: {granted - used}; missing: {used - granted}"


# --------------------------------------------------------------------------- RBAC


@dataclass(frozen=True)
class Grant:
    """One rule, bound to the service account: everywhere (``namespace`` None) or in one."""

    namespace: str | None
    role: str
    rule: dict[str, Any]

    def allows(self, call: Call, namespace: str, name: str | None) -> bool:
        group, resource, verb = call
        rule = self.rule
        names = rule.get("resourceNames")
        return (
            self.namespace in (None, namespace)
            and group in rule.get("apiGroups", [])
            and resource in rule.get("resources", [])
            and verb in rule.get("verbs", [])
            and (not names or name in names)
        )

    def calls(self) -> set[Call]:
        rule = self.rule
        return {
            (group, resource, verb)
            for group in rule.get("apiGroups", [])
            for resource in rule.get("resources", [])
            for verb in rule.get("verbs", [])
        }


def grants(docs: list[Doc]) -> list[Grant]:
    """The rules bound to the autoscaler's service account; every role must be bound."""
    account = find(docs, "ServiceAccount")["metadata"]
    subject = ("ServiceAccount", account["name"], account["namespace"])
    roles = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in docs}
    found: list[Grant] = []
    bound: set[tuple[str, str | None, str]] = set()
    for binding in docs:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subjects = {(s["kind"], s["name"], s.get("namespace")) for s in binding["subjects"]}
        assert subjects == {subject}, f"{binding['metadata']['name']} binds {subjects}"
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace")  # None: ClusterRoleBinding
        key = (ref["kind"], namespace if ref["kind"] == "Role" else None, ref["name"])
        assert key in roles, f"{binding['metadata']['name']}: no {key}"
        bound.add(key)
        found += [Grant(namespace, ref["name"], rule) for rule in roles[key]["rules"]]
    unbound = {k for k in roles if k[0] in ("Role", "ClusterRole")} - bound
    assert not unbound, f"roles bound to nothing: {unbound}"
    return found


def _target_namespaces(flavor: str, config: dict[str, Any], own: str) -> set[str]:
    """Where the workload calls happen: the config's targets (namespaced flavor: its own)."""
    if flavor == "namespaced":
        return {own}
    return {target.get("namespace", "default") for target in config["targets"]}


@pytest.mark.parametrize("flavor", ["default", "cluster", "namespaced"])
def test_rbac_grants_exactly_what_the_code_calls(
    flavor: str,
    rendered: dict[str, list[Doc]],
    shipped_config: dict[str, Any],
    dynamic_requests: list[Request],
) -> None:
    docs = rendered[flavor]
    bound = grants(docs)
    used = unsharded_calls()
    own = find(docs, "Deployment")["metadata"]["namespace"]
    election = shipped_config["leader_election"]
    lease_namespace = election.get("lease_namespace") or own

    # Nothing more than the code uses: no wildcard, no extra verb or resource.
    for grant in bound:
        for key in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert "*" not in grant.rule.get(key, []), f"{grant.role}: wildcard in {key}"
        assert set(grant.rule) <= {"apiGroups", "resources", "verbs", "resourceNames"}
    granted = set().union(*(grant.calls() for grant in bound))
    assert granted == used, f"extra: {granted - used}; missing: {used - granted}"

    # Every call allowed where it happens: workloads in the targets' namespaces, the Lease
    # (by its name) in the lease namespace.
    for request in dynamic_requests:
        resource = request.call[1]
        if resource == "leases":
            places = {lease_namespace}
            name = election["lease_name"] if request.name else None
        else:
            places = _target_namespaces(flavor, shipped_config, own)
            name = request.name
        for namespace in places:
            assert any(g.allows(request.call, namespace, name) for g in bound), (
                f"{flavor}: {request.call} in {namespace} (name {name}) is not granted"
            )

    # ...and nowhere else: the Lease only in its namespace, only by its name; the
    # namespaced flavor nothing outside its own namespace.
    for call in used:
        if call[1] == "leases":
            assert not any(g.allows(call, "shop", election["lease_name"]) for g in bound)
            if call[2] != "create":
                assert not any(g.allows(call, lease_namespace, "other-lease") for g in bound)
        if flavor == "namespaced":
            assert not any(g.allows(call, "shop", "orders") for g in bound), call
    if flavor == "namespaced":
        assert all(grant.namespace == own for grant in bound)
        assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]


@pytest.mark.parametrize("flavor", ["default", "cluster", "namespaced"])
def test_rbac_never_writes_workloads_or_reads_secrets(
    flavor: str, rendered: dict[str, list[Doc]]
) -> None:
    for doc in rendered[flavor]:
        for rule in doc.get("rules", []) if doc["kind"] in ("Role", "ClusterRole") else []:
            resources, verbs = set(rule.get("resources", [])), set(rule.get("verbs", []))
            assert not resources & {"secrets", "configmaps", "pods", "pods/exec"}, rule
            if resources & {"deployments", "statefulsets"}:
                assert not verbs & WRITE_VERBS, f"write on a workload itself: {rule}"
            if resources & {"deployments/scale", "statefulsets/scale"}:
                assert "update" not in verbs, "the code patches */scale, never updates it"


def test_lease_rules_name_the_configured_lease(
    rendered: dict[str, list[Doc]], shipped_config: dict[str, Any]
) -> None:
    lease_name = shipped_config["leader_election"]["lease_name"]
    role = find(rendered["default"], "Role", "predictive-autoscaler-leader-election")
    for rule in role["rules"]:
        assert rule["resources"] == ["leases"]
        if rule["verbs"] == ["create"]:
            # The API server cannot check a name on create: resourceNames would deny it.
            assert "resourceNames" not in rule
        else:
            assert rule["resourceNames"] == [lease_name]


def test_request_paths_map_to_rbac() -> None:
    path = "/apis/apps/v1/namespaces/shop/deployments/orders/scale"
    assert _request_call("PATCH", path) == Request(
        ("apps", "deployments/scale", "patch"), "shop", "orders"
    )
    assert _request_call("POST", "/api/v1/namespaces/shop/events") == Request(
        ("", "events", "create"), "shop", None
    )
    lease = "/apis/coordination.k8s.io/v1/namespaces/autoscaler/leases/x"
    assert _request_call("PUT", lease).call == ("coordination.k8s.io", "leases", "update")


_SAMPLE = """
from kubernetes_asyncio import client as k8s

class Holder:
    def __init__(self, c):
        self._apps = k8s.AppsV1Api(c)
        self.tasks = []

    def method(self):
        self.tasks.create_task()  # a namesake on something else: not an API call
        return self._apps.read_namespaced_deployment_scale  # passed on, not called

def inline(c, holder):
    k8s.CoreV1Api(c).create_namespaced_event("ns", {})
    return holder._apps.patch_namespaced_stateful_set_scale
"""


def test_static_scan_catches_references_without_a_call() -> None:
    references = list(_references({"x.py": ast.parse(_SAMPLE)}))
    assert sorted(_static_call(r) for r in references) == [
        ("", "events", "create"),
        ("apps", "deployments/scale", "get"),
        ("apps", "statefulsets/scale", "patch"),
    ]


def test_static_scan_refuses_untraceable_and_unknown_apis() -> None:
    untraceable = "def f(api):\n    return api.read_namespaced_lease('a', 'b')\n"
    with pytest.raises(AssertionError, match="cannot tell which Kubernetes API"):
        list(_references({"x.py": ast.parse(untraceable)}))
    unknown = "from kubernetes_asyncio import client as k8s\napi = k8s.BatchV1Api(None)\n"
    with pytest.raises(AssertionError, match="BatchV1Api is not in API_GROUPS"):
        list(_references({"x.py": ast.parse(unknown)}))
