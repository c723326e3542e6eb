"""The actuator, through kubernetes-asyncio, against a faithful fake API server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client as k8s
from servers.kube_api import KubeApiServer

from autoscaler.config.model import KubernetesConfig, TargetConfig
from autoscaler.live.actuator import (
    ApiUnavailable,
    PermissionDenied,
    ScaleActuator,
    ScaleConflict,
    TargetMissing,
)

SCALE = "/apis/apps/v1/namespaces/shop/deployments/orders/scale"


def _target(kind: str = "Deployment", name: str = "orders") -> TargetConfig:
    trigger: dict[str, Any] = {"type": "kafka_lag", "cluster": "main", "consumer_group": "g"}
    return TargetConfig.model_validate(
        {
            "name": "orders",
            "namespace": "shop",
            "scale_target_ref": {"kind": kind, "name": name},
            "triggers": [trigger],
        },
        strict=False,
    )


@pytest.fixture
async def api() -> AsyncIterator[KubeApiServer]:
    async with KubeApiServer() as server:
        server.add_workload("Deployment", "shop", "orders", replicas=3, status_replicas=2)
        server.add_workload("StatefulSet", "shop", "ledger", replicas=1)
        yield server


@pytest.fixture
async def actuator(api: KubeApiServer) -> AsyncIterator[ScaleActuator]:
    configuration = k8s.Configuration(host=api.url)
    client = k8s.ApiClient(configuration)
    async with ScaleActuator(client, request_timeout_seconds=5, owns_client=True) as actuator:
        yield actuator


async def test_read(api: KubeApiServer, actuator: ScaleActuator) -> None:
    state = await actuator.read(_target())
    assert state.spec_replicas == 3
    assert state.status_replicas == 2
    assert state.resource_version == str(
        api.workload("Deployment", "shop", "orders").resource_version
    )
    assert not state.paused
    assert state.paused_replicas is None
    assert state.ready_replicas == 2


@pytest.mark.parametrize(
    ("ready", "expected"),
    [
        pytest.param(1, 1, id="starting-pods-are-not-ready"),
        pytest.param(0, 0, id="none-ready-the-api-omits-the-field"),
    ],
)
async def test_read_gives_the_ready_pods(
    api: KubeApiServer, actuator: ScaleActuator, ready: int, expected: int
) -> None:
    """Capacity is the pods that pass readiness: the scale's status counts starting pods."""
    api.workload("Deployment", "shop", "orders").ready_replicas = ready
    state = await actuator.read(_target())
    assert (state.status_replicas, state.ready_replicas) == (2, expected)


@pytest.mark.parametrize(
    ("annotations", "paused", "paused_replicas"),
    [
        pytest.param({"autoscaler.io/paused": "true"}, True, None, id="paused"),
        pytest.param({"autoscaler.io/paused": "false"}, False, None, id="not-paused"),
        pytest.param({"autoscaler.io/paused-replicas": "5"}, True, 5, id="paused-replicas"),
        pytest.param(
            {"autoscaler.io/paused": "true", "autoscaler.io/paused-replicas": "0"},
            True,
            0,
            id="both",
        ),
        pytest.param({"autoscaler.io/paused-replicas": "x"}, False, None, id="invalid-count"),
    ],
)
async def test_pause_annotations(
    api: KubeApiServer,
    actuator: ScaleActuator,
    annotations: dict[str, str],
    paused: bool,
    paused_replicas: int | None,
) -> None:
    api.workload("Deployment", "shop", "orders").annotations.update(annotations)
    state = await actuator.read(_target())
    assert (state.paused, state.paused_replicas) == (paused, paused_replicas)


async def test_scale_patches_only_replicas_of_the_scale_subresource(
    api: KubeApiServer, actuator: ScaleActuator
) -> None:
    result = await actuator.scale(_target(), 7)
    assert result.outcome == "scaled"
    assert result.replicas == 7
    assert api.workload("Deployment", "shop", "orders").replicas == 7
    writes = [r for r in api.requests if r.method != "GET"]
    assert len(writes) == 1
    (patch,) = writes
    assert patch.method == "PATCH"
    assert patch.path == SCALE
    assert patch.path.endswith("/scale")
    assert patch.content_type.split(";")[0] == "application/merge-patch+json"
    assert json.loads(patch.body) == {"spec": {"replicas": 7}}
    assert patch.body.replace(b" ", b"") == b'{"spec":{"replicas":7}}'
    assert patch.query.get("timeout") is None  # the timeout is client-side


async def test_scale_statefulset(api: KubeApiServer, actuator: ScaleActuator) -> None:
    result = await actuator.scale(_target("StatefulSet", "ledger"), 4)
    assert result.replicas == 4
    assert api.workload("StatefulSet", "shop", "ledger").replicas == 4
    (patch,) = api.patches()
    assert patch.path == "/apis/apps/v1/namespaces/shop/statefulsets/ledger/scale"
    assert json.loads(patch.body) == {"spec": {"replicas": 4}}


async def test_conflict_once_then_success(api: KubeApiServer, actuator: ScaleActuator) -> None:
    api.conflict_next(1)
    result = await actuator.scale(_target(), 6)
    assert result.outcome == "scaled"
    assert result.attempts == 2
    assert api.workload("Deployment", "shop", "orders").replicas == 6
    assert len(api.patches()) == 2
    # re-read between the two patches
    methods = [(r.method, r.path) for r in api.requests]
    assert methods == [("PATCH", SCALE), ("GET", SCALE), ("PATCH", SCALE)]


async def test_conflict_with_expected_current_changed_elsewhere(
    api: KubeApiServer, actuator: ScaleActuator
) -> None:
    api.conflict_next(1)
    api.fail("PATCH", SCALE, 409, times=1)
    result = await actuator.scale(_target(), 6, expected_current=3)
    assert result.outcome == "scaled"  # the version moved but replicas still 3: retried


async def test_expected_current_mismatch_does_not_patch(
    api: KubeApiServer, actuator: ScaleActuator
) -> None:
    api.set_replicas("Deployment", "shop", "orders", 10)  # someone ran kubectl scale
    result = await actuator.scale(_target(), 6, expected_current=3)
    assert result.outcome == "changed_elsewhere"
    assert not result.patched
    assert result.replicas == 10
    assert api.patches() == []
    assert api.workload("Deployment", "shop", "orders").replicas == 10


async def test_expected_current_match_patches(api: KubeApiServer, actuator: ScaleActuator) -> None:
    result = await actuator.scale(_target(), 5, expected_current=3)
    assert (result.outcome, result.previous, result.replicas) == ("scaled", 3, 5)
    assert len(api.patches()) == 1


async def test_missing_target(api: KubeApiServer, actuator: ScaleActuator) -> None:
    api.remove("Deployment", "shop", "orders")
    with pytest.raises(TargetMissing) as info:
        await actuator.read(_target())
    assert info.value.temporary
    assert info.value.kind == "not_found"
    with pytest.raises(TargetMissing):
        await actuator.scale(_target(), 2)


async def test_forbidden_names_verb_and_resource(
    api: KubeApiServer, actuator: ScaleActuator
) -> None:
    api.fail("PATCH", "/scale", 403)
    with pytest.raises(PermissionDenied) as info:
        await actuator.scale(_target(), 2)
    assert str(info.value).startswith(
        "forbidden: need 'patch' on 'deployments/scale' in namespace 'shop' (RBAC)"
    )
    assert not info.value.temporary
    assert info.value.kind == "forbidden"
    api.clear_failures()
    api.fail("GET", "/statefulsets/ledger/scale", 403)
    with pytest.raises(PermissionDenied, match="need 'get' on 'statefulsets/scale'"):
        await actuator.read(_target("StatefulSet", "ledger"))


async def test_server_error_is_unavailable(api: KubeApiServer, actuator: ScaleActuator) -> None:
    api.fail("GET", SCALE, 500)
    with pytest.raises(ApiUnavailable) as info:
        await actuator.read(_target())
    assert info.value.temporary
    assert info.value.kind == "unavailable"
    api.clear_failures()
    api.fail("PATCH", SCALE, 503)
    with pytest.raises(ApiUnavailable):
        await actuator.scale(_target(), 2)


async def test_unreachable_is_unavailable() -> None:
    async with KubeApiServer() as server:
        url = server.url
    client = k8s.ApiClient(k8s.Configuration(host=url))
    async with ScaleActuator(client, request_timeout_seconds=2, owns_client=True) as actuator:
        with pytest.raises(ApiUnavailable):
            await actuator.read(_target())


async def test_event(api: KubeApiServer, actuator: ScaleActuator) -> None:
    await actuator.read(_target())
    await actuator.event(_target(), "ScaledUp", "lag forecast 1200 > capacity: 3 -> 5")
    (event,) = api.events
    assert event["reason"] == "ScaledUp"
    assert event["message"] == "lag forecast 1200 > capacity: 3 -> 5"
    assert event["type"] == "Normal"
    assert event["metadata"]["namespace"] == "shop"
    assert event["involvedObject"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "orders",
        "namespace": "shop",
        "uid": api.workload("Deployment", "shop", "orders").uid,
    }
    (post,) = [r for r in api.requests if r.method == "POST"]
    assert post.path == "/api/v1/namespaces/shop/events"


async def test_event_failure_does_not_raise(api: KubeApiServer, actuator: ScaleActuator) -> None:
    api.fail("POST", "/events", 403)
    await actuator.event(_target(), "ScaledUp", "x", type="Warning")
    api.clear_failures()
    api.fail("POST", "/events", 500)
    await actuator.event(_target(), "ScaledUp", "x")
    assert api.events == []


async def test_connect_with_kubeconfig(api: KubeApiServer, tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(api.kubeconfig(context="test")))
    config = KubernetesConfig(
        mode="kubeconfig", kubeconfig_path=path, context="test", request_timeout_seconds=3
    )
    async with await ScaleActuator.connect(config) as actuator:
        state = await actuator.read(_target())
    assert state.spec_replicas == 3
    assert api.requests[0].method == "GET"


async def test_conflicts_exhausted(api: KubeApiServer, actuator: ScaleActuator) -> None:
    api.conflict_next(10)
    with pytest.raises(ScaleConflict) as info:
        await actuator.scale(_target(), 6)
    assert info.value.temporary
    assert info.value.kind == "conflict"
    assert len(api.patches()) == 4  # the first try and 3 retries


async def test_conflict_from_a_writer_that_changed_replicas(
    api: KubeApiServer, actuator: ScaleActuator
) -> None:
    api.conflict_next(1, writer_replicas=9)  # the writer lands between our read and patch
    result = await actuator.scale(_target(), 6, expected_current=3)
    assert result.outcome == "changed_elsewhere"
    assert result.replicas == 9
    assert len(api.patches()) == 1  # the rejected one; no second patch
    assert api.workload("Deployment", "shop", "orders").replicas == 9


@pytest.mark.parametrize("with_env", [False, True])
async def test_a_missing_kubeconfig_is_said_plainly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_env: bool
) -> None:
    from autoscaler.live.actuator import ConnectError

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config here
    if with_env:
        monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nope.yaml"))
    else:
        monkeypatch.delenv("KUBECONFIG", raising=False)
    with pytest.raises(ConnectError) as caught:
        await ScaleActuator.connect(KubernetesConfig())
    message = str(caught.value)
    assert "no kubeconfig file at" in message
    assert ("KUBECONFIG" if with_env else "~/.kube/config") in message
    assert "current-context" not in message
