"""The actuator's fault paths, through kubernetes-asyncio, against the fake API server.

Everything a real server does on demand (reads, merge patches, real 409s, 404s, RBAC's 403s,
Events, kubeconfigs) is tested against a real kube-apiserver in ``tests/kube``. What stays
here needs a fault the real one cannot be made to produce when asked: a 500 or 503, an
unreachable server, conflicts on every try, and the exact bytes of the patch on the wire.
"""

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
    ScaleActuator,
    ScaleConflict,
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


async def test_event_failure_does_not_raise(api: KubeApiServer, actuator: ScaleActuator) -> None:
    api.fail("POST", "/events", 403)
    await actuator.event(_target(), "ScaledUp", "x", type="Warning")
    api.clear_failures()
    api.fail("POST", "/events", 500)
    await actuator.event(_target(), "ScaledUp", "x")
    assert api.events == []


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
