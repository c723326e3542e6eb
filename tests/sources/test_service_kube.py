"""``autoscaler run`` against a real kube-apiserver and a real Kafka-protocol broker (tansu).

The service connects as a user's would: ``kubernetes.kubeconfig_path`` pointing at a
kubeconfig with the token of the deploy/ ServiceAccount, which holds exactly deploy/'s rules.
So the scale patches, the Events and the Lease go through the real RBAC, and a rule removed
from the Role is a real 403. Faults a real server cannot produce when asked (a 500, a hung
request) are tested against the fake in ``test_service_e2e.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from servers.kafka_broker import TansuBroker
from servers.kafka_data import KafkaData
from servers.kube_control_plane import Kube
from servers.kube_rbac import apply, deploy_rbac, install_rbac, remove_rule
from servers.process import free_port

from autoscaler.config import parse_config
from autoscaler.config.model import AutoscalerConfig
from autoscaler.live import service

POLL = 0.3
PARTITIONS = 4


def _config(
    kube: Kube, kubeconfig: Path, broker: TansuBroker, *, dry_run: bool = False, **extra: Any
) -> AutoscalerConfig:
    document: dict[str, Any] = {
        "poll_interval_seconds": POLL,
        "dry_run": dry_run,
        "leader_election": {"enabled": False},
        "server": {"health_port": free_port(), "metrics_port": free_port()},
        "kubernetes": {
            "mode": "kubeconfig",
            "kubeconfig_path": str(kubeconfig),
            "request_timeout_seconds": 2.0,
        },
        "kafka_clusters": {
            "main": {"bootstrap_servers": [broker.bootstrap_server], "request_timeout_seconds": 2}
        },
        "targets": [
            {
                "name": "orders",
                "namespace": kube.namespace,
                "scale_target_ref": {"name": "orders"},
                "max_replicas": 10,
                "predictor": {"model": "none"},
                "fallback": {"failure_threshold": 3},
                "triggers": [
                    {
                        "type": "kafka_lag",
                        "cluster": "main",
                        "consumer_group": "orders",
                        "topics": ["orders"],
                        "lag_threshold": 50,
                    }
                ],
            }
        ],
    }
    document |= extra
    return parse_config(document)


@contextlib.asynccontextmanager
async def _running(config: AutoscalerConfig) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(config, stop))  # connects as the config says
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def _eventually(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def _ready(config: AutoscalerConfig) -> tuple[int, str]:
    url = f"http://127.0.0.1:{config.server.health_port}/readyz"
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status, await response.text()
    except aiohttp.ClientError as error:
        return 0, str(error)


async def _burst(kafka: KafkaData, per_partition: int = 50) -> None:
    await kafka.create_topic("orders", PARTITIONS)
    await kafka.commit("orders", "orders", dict.fromkeys(range(PARTITIONS), 0))
    await kafka.produce("orders", [per_partition] * PARTITIONS)  # lag 200: 4 replicas


@pytest.fixture
def service_account(kube: Kube) -> Path:
    path = install_rbac(kube)
    kube.admin.create_workload(kube.namespace, "orders", 1)
    return path


async def test_a_burst_scales_the_deployment_with_the_deploy_service_account(
    kube: Kube, service_account: Path, broker: TansuBroker, kafka: KafkaData
) -> None:
    await _burst(kafka)
    config = _config(kube, service_account, broker)
    async with _running(config):
        assert await _eventually(lambda: kube.admin.replicas(kube.namespace, "orders") > 1, 10)
        await asyncio.sleep(3 * POLL)
        status, body = await _ready(config)
    assert kube.admin.replicas(kube.namespace, "orders") == 4  # ceil(200 / 50), at the cap
    assert (status, json.loads(body)["ready"]) == (200, True), body
    (event,) = kube.admin.events(kube.namespace)  # one change, one Event: kubectl describe
    assert (event["reason"], event["message"]) == (
        "Rescaled",
        "1 -> 4 replicas: KafkaLagPerReplica",
    )
    assert event["involvedObject"]["name"] == "orders"


async def test_dry_run_never_changes_the_replicas(
    kube: Kube, service_account: Path, broker: TansuBroker, kafka: KafkaData
) -> None:
    await _burst(kafka)
    before = kube.admin.request("GET", kube.admin.workload_path(kube.namespace, "orders"))
    async with _running(_config(kube, service_account, broker, dry_run=True)):
        await asyncio.sleep(8 * POLL)
    after = kube.admin.request("GET", kube.admin.workload_path(kube.namespace, "orders"))
    assert after["spec"]["replicas"] == 1
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


async def test_a_forbidden_patch_makes_the_pod_unready_and_never_scales(
    kube: Kube, service_account: Path, broker: TansuBroker, kafka: KafkaData
) -> None:
    """A Role that lost ``patch`` on ``deployments/scale`` fails every poll: after the
    failure budget /readyz says so, naming the call; with the rule back it is ready again."""
    remove_rule(kube, "predictive-autoscaler", "deployments/scale", "patch")
    await _burst(kafka)
    config = _config(kube, service_account, broker)
    async with _running(config):

        async def unready() -> tuple[int, str]:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                status, body = await _ready(config)
                if status == 503:
                    return status, body
                await asyncio.sleep(0.1)
            return await _ready(config)

        status, body = await unready()
        assert status == 503, body
        assert "forbidden: need 'patch' on 'deployments/scale'" in body, body
        assert kube.admin.replicas(kube.namespace, "orders") == 1

        install_rbac_rules_again(kube)
        assert await _eventually(lambda: kube.admin.replicas(kube.namespace, "orders") == 4, 10)
        deadline = time.monotonic() + 5
        while (await _ready(config))[0] != 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        status, body = await _ready(config)
        assert status == 200, body


def install_rbac_rules_again(kube: Kube) -> None:
    """Re-apply deploy/'s Roles as shipped (the fix a person would make)."""
    apply(kube, deploy_rbac(kube))


async def test_with_leader_election_the_lease_is_held_and_a_second_instance_takes_over(
    kube: Kube, service_account: Path, broker: TansuBroker, kafka: KafkaData
) -> None:
    election = {
        "enabled": True,
        "lease_namespace": kube.namespace,
        "lease_duration_seconds": 2.0,
        "renew_deadline_seconds": 1.5,
        "retry_period_seconds": 0.5,
    }
    await _burst(kafka, per_partition=25)  # lag 100: 2 replicas
    first = _config(kube, service_account, broker, leader_election=election)
    second = _config(kube, service_account, broker, leader_election=election)
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    first_task = asyncio.create_task(service.run(first, stop_first))
    try:
        assert await _eventually(lambda: kube.admin.replicas(kube.namespace, "orders") == 2, 10)
        lease = kube.admin.lease(kube.namespace, "predictive-autoscaler")
        assert lease is not None
        first_holder = lease["spec"]["holderIdentity"]
        second_task = asyncio.create_task(service.run(second, stop_second))
        await asyncio.sleep(1.0)
        stop_first.set()  # a rolling update: the leader goes, releasing the Lease
        await asyncio.wait_for(first_task, 15)
        try:
            await kafka.produce("orders", [25] * PARTITIONS)  # lag 200: 4 replicas
            assert await _eventually(lambda: kube.admin.replicas(kube.namespace, "orders") == 4, 10)
            lease = kube.admin.lease(kube.namespace, "predictive-autoscaler")
            assert lease is not None
            assert lease["spec"]["holderIdentity"] not in ("", first_holder)
            assert lease["spec"]["leaseTransitions"] == 1
        finally:
            stop_second.set()
            await asyncio.wait_for(second_task, 15)
    finally:
        stop_first.set()
        await asyncio.wait_for(first_task, 15)


# --------------------------------------------------------------------------- conflicts

KEDA_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "scaledobjects.keda.sh"},
    "spec": {
        "group": "keda.sh",
        "names": {
            "kind": "ScaledObject",
            "listKind": "ScaledObjectList",
            "plural": "scaledobjects",
            "singular": "scaledobject",
            "shortNames": ["so"],
        },
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


def _hpa(name: str, target: str) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": 1,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 80},
                    },
                }
            ],
        },
    }


def _install_keda_crd(kube: Kube) -> None:
    status = kube.admin.status_of(
        "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", KEDA_CRD
    )
    assert status in (200, 409)  # created, or by an earlier test of the session
    path = f"/apis/keda.sh/v1alpha1/namespaces/{kube.namespace}/scaledobjects"
    deadline = time.monotonic() + 30
    while kube.admin.status_of("GET", path) != 200:  # the new resource is being served
        assert time.monotonic() < deadline, "the ScaledObject CRD is not served"
        time.sleep(0.2)


async def _metric(config: AutoscalerConfig, name: str) -> str:
    url = f"http://127.0.0.1:{config.server.metrics_port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        text = await response.text()
    return "\n".join(line for line in text.splitlines() if line.startswith(name))


async def _status(config: AutoscalerConfig) -> dict[str, Any]:
    url = f"http://127.0.0.1:{config.server.health_port}/status"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        status: dict[str, Any] = await response.json()
    return status


@pytest.mark.parametrize("owner", ["hpa", "scaled-object"])
async def test_with_another_autoscaler_on_the_workload_it_is_never_patched(
    kube: Kube, service_account: Path, broker: TansuBroker, kafka: KafkaData, owner: str
) -> None:
    """Across a restart too; once the other owner is gone it scales at the next check."""
    hpas = f"/apis/autoscaling/v2/namespaces/{kube.namespace}/horizontalpodautoscalers"
    scaled_objects = f"/apis/keda.sh/v1alpha1/namespaces/{kube.namespace}/scaledobjects"
    if owner == "hpa":
        kube.admin.request("POST", hpas, _hpa("orders-cpu", "orders"))
        path, expected = (
            f"{hpas}/orders-cpu",
            f"HorizontalPodAutoscaler {kube.namespace}/orders-cpu",
        )
    else:
        _install_keda_crd(kube)
        body = {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "orders-keda"},
            "spec": {"scaleTargetRef": {"name": "orders"}, "triggers": []},
        }
        kube.admin.request("POST", scaled_objects, body)
        path, expected = (
            f"{scaled_objects}/orders-keda",
            f"ScaledObject {kube.namespace}/orders-keda",
        )
    await _burst(kafka)  # lag 200: 4 replicas wanted
    config = _config(kube, service_account, broker)
    for _ in range(2):  # a restart changes nothing
        async with _running(config):
            await asyncio.sleep(8 * POLL)
            status = await _status(config)
            gauge = await _metric(config, "autoscaler_target_conflict")
        assert kube.admin.replicas(kube.namespace, "orders") == 1
        orders = status["targets"]["orders"]
        assert orders["conflict"] == expected
        assert orders["held_because"].startswith(f"conflict: {expected}")
        assert orders["decision"]["desired_replicas"] == 4
        assert gauge == 'autoscaler_target_conflict{target="orders"} 1.0'
    warnings = [e for e in kube.admin.events(kube.namespace) if e["reason"] == "Conflict"]
    assert warnings
    assert warnings[0]["type"] == "Warning"
    assert expected in warnings[0]["message"]
    kube.admin.request("DELETE", path)
    async with _running(config):
        assert await _eventually(lambda: kube.admin.replicas(kube.namespace, "orders") == 4, 10)
        await asyncio.sleep(2 * POLL)  # the patching poll's figures are exported after it
        gauge = await _metric(config, "autoscaler_target_conflict")
    assert gauge == 'autoscaler_target_conflict{target="orders"} 0.0'


async def test_an_hpa_on_another_workload_is_no_conflict(
    kube: Kube, service_account: Path, broker: TansuBroker, kafka: KafkaData
) -> None:
    kube.admin.create_workload(kube.namespace, "payments", 1)
    hpas = f"/apis/autoscaling/v2/namespaces/{kube.namespace}/horizontalpodautoscalers"
    kube.admin.request("POST", hpas, _hpa("payments-cpu", "payments"))
    await _burst(kafka)
    async with _running(_config(kube, service_account, broker)):
        assert await _eventually(lambda: kube.admin.replicas(kube.namespace, "orders") == 4, 10)
    assert kube.admin.replicas(kube.namespace, "payments") == 1


async def test_without_the_rights_to_check_it_never_patches_and_is_unready(
    kube: Kube, service_account: Path, broker: TansuBroker, kafka: KafkaData
) -> None:
    remove_rule(kube, "predictive-autoscaler", "horizontalpodautoscalers", "list")
    await _burst(kafka)
    config = _config(kube, service_account, broker)
    async with _running(config):
        deadline = time.monotonic() + 10
        while (await _ready(config))[0] != 503 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        status, body = await _ready(config)
    assert status == 503, body
    assert "need 'list' on 'horizontalpodautoscalers.autoscaling'" in body, body
    assert kube.admin.replicas(kube.namespace, "orders") == 1
