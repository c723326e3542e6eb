"""The actuator against a real kube-apiserver v1.28.7, through the deploy/ ServiceAccount.

Every test runs with the token of a ServiceAccount that holds exactly deploy/'s rules (the
namespaced overlay's Role), so a call the RBAC does not grant fails here as it would in a
cluster. Faults a real server cannot be made to produce on demand (a 500, a hung request,
endless conflicts) stay in ``tests/test_actuator.py`` against the fake.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kube_rbac import install_rbac, remove_rule
from servers.kube_control_plane import Kube

from autoscaler.config.model import KubernetesConfig, TargetConfig
from autoscaler.live.actuator import ApiRejected, PermissionDenied, ScaleActuator, TargetMissing


def _target(kube: Kube, kind: str = "Deployment", name: str = "orders") -> TargetConfig:
    trigger: dict[str, Any] = {"type": "kafka_lag", "cluster": "main", "consumer_group": "g"}
    return TargetConfig.model_validate(
        {
            "name": name,
            "namespace": kube.namespace,
            "scale_target_ref": {"kind": kind, "name": name},
            "triggers": [trigger],
        },
        strict=False,
    )


async def _connect(path: Path) -> ScaleActuator:
    config = KubernetesConfig(mode="kubeconfig", kubeconfig_path=path, request_timeout_seconds=10)
    return await ScaleActuator.connect(config)


@pytest.fixture
def service_account(kube: Kube) -> Path:
    return install_rbac(kube)


@pytest.fixture
async def actuator(service_account: Path) -> AsyncIterator[ScaleActuator]:
    async with await _connect(service_account) as actuator:
        yield actuator


async def test_read_gives_the_scale_the_ready_pods_and_the_pause_annotations(
    kube: Kube, actuator: ScaleActuator
) -> None:
    kube.admin.create_workload(
        kube.namespace, "orders", 3, annotations={"autoscaler.io/paused-replicas": "5"}
    )
    state = await actuator.read(_target(kube))
    assert (state.spec_replicas, state.status_replicas, state.ready_replicas) == (3, 0, 0)
    assert (state.paused, state.paused_replicas) == (True, 5)
    kube.admin.set_ready(kube.namespace, "orders", replicas=3, ready=2)
    kube.admin.annotate(kube.namespace, "orders", {"autoscaler.io/paused-replicas": None})
    state = await actuator.read(_target(kube))
    assert (state.status_replicas, state.ready_replicas, state.paused) == (3, 2, False)
    scale = kube.admin.request("GET", kube.admin.workload_path(kube.namespace, "orders") + "/scale")
    assert state.resource_version == scale["metadata"]["resourceVersion"]


async def test_a_patch_changes_the_replicas_and_nothing_else(
    kube: Kube, actuator: ScaleActuator
) -> None:
    kube.admin.create_workload(kube.namespace, "orders", 3)
    path = kube.admin.workload_path(kube.namespace, "orders")
    before = kube.admin.request("GET", path)
    result = await actuator.scale(_target(kube), 7, expected_current=3)
    assert (result.outcome, result.previous, result.replicas, result.attempts) == (
        "scaled",
        3,
        7,
        1,
    )
    after = kube.admin.request("GET", path)
    assert after["spec"].pop("replicas") == 7
    before["spec"].pop("replicas")
    assert after["spec"] == before["spec"]
    assert after["metadata"].get("annotations") == before["metadata"].get("annotations")
    assert after["metadata"].get("labels") == before["metadata"].get("labels")
    assert result.resource_version == after["metadata"]["resourceVersion"]


async def test_a_statefulset_is_scaled_through_its_scale(
    kube: Kube, actuator: ScaleActuator
) -> None:
    kube.admin.create_workload(kube.namespace, "ledger", 1, kind="StatefulSet")
    result = await actuator.scale(_target(kube, "StatefulSet", "ledger"), 4)
    assert result.replicas == 4
    assert kube.admin.replicas(kube.namespace, "ledger", kind="StatefulSet") == 4


class _Interloper(ScaleActuator):
    """Another writer lands between our read of the scale and our patch: once."""

    def __init__(self, api_client: Any, write: Any) -> None:
        super().__init__(api_client, request_timeout_seconds=10)
        self._write = write
        self.reads = 0

    async def _read_scale(self, target: TargetConfig) -> Any:
        scale = await super()._read_scale(target)
        self.reads += 1
        if self.reads == 1:
            self._write()
        return scale


async def test_a_write_between_read_and_patch_is_a_real_409_then_a_retry(
    kube: Kube, actuator: ScaleActuator
) -> None:
    """The version moved (an annotation was written) but the replicas did not: the
    server refuses the stale patch, the actuator reads again and patches."""
    kube.admin.create_workload(kube.namespace, "orders", 3)
    interloper = _Interloper(
        actuator.api_client,
        lambda: kube.admin.annotate(kube.namespace, "orders", {"team": "payments"}),
    )
    result = await interloper.scale(_target(kube), 6, expected_current=3)
    assert (result.outcome, result.attempts, interloper.reads) == ("scaled", 2, 2)
    assert kube.admin.replicas(kube.namespace, "orders") == 6


async def test_a_person_scaling_between_read_and_patch_is_never_overwritten(
    kube: Kube, actuator: ScaleActuator
) -> None:
    """Without the resourceVersion precondition our patch would silently undo a
    ``kubectl scale`` made a moment earlier."""
    kube.admin.create_workload(kube.namespace, "orders", 3)
    interloper = _Interloper(
        actuator.api_client, lambda: kube.admin.set_replicas(kube.namespace, "orders", 9)
    )
    result = await interloper.scale(_target(kube), 6, expected_current=3)
    assert (result.outcome, result.replicas) == ("changed_elsewhere", 9)
    assert kube.admin.replicas(kube.namespace, "orders") == 9


async def test_a_missing_workload_is_target_missing(kube: Kube, actuator: ScaleActuator) -> None:
    with pytest.raises(TargetMissing, match="not found") as caught:
        await actuator.read(_target(kube))
    assert caught.value.temporary
    with pytest.raises(TargetMissing):
        await actuator.scale(_target(kube), 2)
    kube.admin.create_workload(kube.namespace, "orders", 3)
    assert (await actuator.read(_target(kube))).spec_replicas == 3  # created later: found


async def test_an_event_is_recorded_on_the_workload(kube: Kube, actuator: ScaleActuator) -> None:
    created = kube.admin.create_workload(kube.namespace, "orders", 3)
    await actuator.read(_target(kube))
    await actuator.event(_target(kube), "ScaledUp", "lag forecast 1200 > capacity: 3 -> 5")
    (event,) = kube.admin.events(kube.namespace)
    assert (event["reason"], event["type"]) == ("ScaledUp", "Normal")
    assert event["message"] == "lag forecast 1200 > capacity: 3 -> 5"
    assert event["source"] == {"component": "predictive-autoscaler"}
    involved = event["involvedObject"]
    assert (involved["kind"], involved["name"], involved["uid"]) == (
        "Deployment",
        "orders",
        created["metadata"]["uid"],
    )
    described = kube.plane.kubectl("describe", "deployment", "orders", "-n", kube.namespace)
    assert "lag forecast 1200 > capacity: 3 -> 5" in described.stdout


@pytest.mark.parametrize(
    ("resource", "verb", "call", "needed"),
    [
        pytest.param(
            "deployments/scale", "patch", "scale", "'patch' on 'deployments/scale'", id="patch"
        ),
        pytest.param("deployments/scale", "get", "read", "'get' on 'deployments/scale'", id="get"),
        pytest.param("deployments", "get", "read", "'get' on 'deployments'", id="annotations"),
    ],
)
async def test_a_rule_removed_from_the_role_is_a_real_403_naming_what_is_missing(
    kube: Kube, actuator: ScaleActuator, resource: str, verb: str, call: str, needed: str
) -> None:
    kube.admin.create_workload(kube.namespace, "orders", 3)
    assert (await actuator.read(_target(kube))).spec_replicas == 3  # granted as shipped
    remove_rule(kube, "predictive-autoscaler", resource, verb)
    attempt = actuator.scale(_target(kube), 5) if call == "scale" else actuator.read(_target(kube))
    with pytest.raises(PermissionDenied) as caught:
        await attempt
    message = str(caught.value)
    assert message.startswith(f"forbidden: need {needed} in namespace '{kube.namespace}' (RBAC)")
    # the server's own words follow: who was refused what
    assert f"system:serviceaccount:{kube.namespace}:predictive-autoscaler" in message
    assert not caught.value.temporary
    assert kube.admin.replicas(kube.namespace, "orders") == 3


async def test_an_event_the_role_does_not_allow_is_logged_not_raised(
    kube: Kube, actuator: ScaleActuator
) -> None:
    kube.admin.create_workload(kube.namespace, "orders", 3)
    remove_rule(kube, "predictive-autoscaler", "events", "create")
    await actuator.event(_target(kube), "ScaledUp", "x")  # never raises
    assert kube.admin.events(kube.namespace) == []


async def test_a_rejected_token_is_said_as_such(kube: Kube, service_account: Path) -> None:
    kube.admin.create_workload(kube.namespace, "orders", 3)
    document = json.loads(service_account.read_text())
    document["users"][0]["user"]["token"] = "not-a-token"
    service_account.write_text(json.dumps(document))
    async with await _connect(service_account) as actuator:
        with pytest.raises(ApiRejected, match="unauthorized, credentials rejected"):
            await actuator.read(_target(kube))


async def test_the_admin_kubeconfig_connects_too(kube: Kube) -> None:
    kube.admin.create_workload(kube.namespace, "orders", 2)
    async with await _connect(kube.admin_kubeconfig) as actuator:
        assert (await actuator.read(_target(kube))).spec_replicas == 2
