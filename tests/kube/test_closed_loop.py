"""The closed loop in short (issue 21; the long run is ``benchmarks/closed_loop.py``): a real
control plane with kube-controller-manager, real consumer processes run by the pod runner
(``servers/pod_runner.py``, standing in for a kubelet), tansu, and ``autoscaler run``.

* the runner follows ``spec.replicas`` with real group members, one per Pod, and takes them
  away again when the ReplicaSet deletes Pods;
* ``status.readyReplicas`` (the controllers' count) rises only once the new consumers have
  their partitions, not when the Pods exist;
* the service, with the deploy/ ServiceAccount's token, scales the Deployment up under a
  burst of lag.

Its own control plane (the session's has no controller manager: other tests write the
Deployment status themselves); about 40 s. Skips without the binaries, unless
``AUTOSCALER_REQUIRE_KUBE=1``.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from servers.kafka_broker import TansuBroker
from servers.kafka_data import KafkaData
from servers.kube_control_plane import Kube, KubeControlPlane, missing
from servers.kube_rbac import install_rbac
from servers.pod_runner import ConsumerSettings, PodRunner
from servers.process import free_port

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 12
RATE = 5.0
NAME = "consumer"


@pytest.fixture(scope="module")
def plane() -> Iterator[KubeControlPlane]:
    reason = missing(controller_manager=True)
    if reason is not None:
        if os.environ.get("AUTOSCALER_REQUIRE_KUBE") == "1":
            pytest.fail(f"AUTOSCALER_REQUIRE_KUBE=1 but {reason}")
        pytest.skip(f"no Kubernetes control plane with a controller manager: {reason}")
    with KubeControlPlane(controller_manager=True) as server:
        yield server


@pytest.fixture(scope="module")
def broker() -> Iterator[TansuBroker]:
    with TansuBroker() as server:
        yield server


async def _setup(plane: KubeControlPlane, broker: TansuBroker, tmp: Path) -> tuple[Kube, str]:
    namespace = f"loop-{secrets.token_hex(3)}"
    plane.admin.create_namespace(namespace)
    topic = f"events-{namespace}"
    await KafkaData(broker.bootstrap_server).create_topic(topic, PARTITIONS)
    plane.admin.create_workload(namespace, NAME, 1)
    return Kube(plane, namespace), topic


def _runner(kube: Kube, broker: TansuBroker, topic: str, tmp: Path) -> PodRunner:
    settings = ConsumerSettings(broker.bootstrap_server, topic, f"group-{topic}", RATE)
    return PodRunner(kube.admin_kubeconfig, kube.namespace, NAME, settings, tmp / "pods")


def _replicas(kube: Kube) -> tuple[int, int]:
    deployment = kube.admin.request("GET", kube.admin.workload_path(kube.namespace, NAME))
    return int(deployment["spec"]["replicas"]), int(deployment["status"].get("readyReplicas", 0))


async def _until(what: str, check: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not within {seconds:g} s: {what}"
        await asyncio.sleep(0.1)


def _pods(kube: Kube) -> list[dict[str, Any]]:
    answer = kube.admin.request(
        "GET", f"/api/v1/namespaces/{kube.namespace}/pods?labelSelector=app%3D{NAME}"
    )
    pods: list[dict[str, Any]] = answer["items"]
    return pods


async def test_the_runner_follows_spec_replicas_and_reports_ready_after_assignment(
    plane: KubeControlPlane, broker: TansuBroker, tmp_path: Path
) -> None:
    kube, topic = await _setup(plane, broker, tmp_path)
    async with _runner(kube, broker, topic, tmp_path) as runner:
        await _until("the first pod is ready", lambda: _replicas(kube) == (1, 1))
        assert runner.consumers == 1

        patched = time.time()
        kube.admin.set_replicas(kube.namespace, NAME, 3)
        await _until("3 consumer processes", lambda: runner.consumers == 3)
        # The Pods exist and their consumers run, but the group is still rebalancing:
        # the controllers count them only once they have partitions.
        assert len(_pods(kube)) == 3
        assert _replicas(kube)[1] < 3
        await _until("3 ready replicas", lambda: _replicas(kube) == (3, 3))

        for pod in {e.pod for e in runner.events}:
            mine = [e for e in runner.events if e.pod == pod]
            ready = [e.t for e in mine if e.event == "ready"]
            assigned = [e.t for e in mine if e.event == "assigned" and e.partitions]
            assert ready, pod
            assert assigned, pod
            assert min(ready) >= min(assigned), pod
        new = {e.pod for e in runner.events if e.event == "started" and e.t >= patched}
        assert len(new) == 2
        latest: dict[str, tuple[int, ...]] = {}
        for event in runner.events:
            if event.event == "assigned":
                latest[event.pod] = event.partitions
        assert sorted(p for parts in latest.values() for p in parts) == list(range(PARTITIONS))
        assert all(latest[pod] for pod in latest)  # every member consumes

        kube.admin.set_replicas(kube.namespace, NAME, 1)
        await _until("one consumer left", lambda: runner.consumers == 1)
        await _until("the deleted pods are gone", lambda: len(_pods(kube)) == 1)
        await _until("one ready replica", lambda: _replicas(kube) == (1, 1))
        stopped = {e.pod for e in runner.events if e.event == "stopped"}
        assert len(stopped) == 2  # committed and left the group, as in a grace period
        assert runner.problems == []
        changes = [replicas for _, replicas in runner.replica_changes]
        assert changes == [1, 3, 1]


async def test_the_service_scales_real_consumers_up_under_a_burst_of_lag(
    plane: KubeControlPlane, broker: TansuBroker, tmp_path: Path
) -> None:
    kube, topic = await _setup(plane, broker, tmp_path)
    kubeconfig = install_rbac(kube)  # the service runs with exactly deploy/'s RBAC
    group = f"group-{topic}"
    config = {
        "poll_interval_seconds": 1,
        "dry_run": False,
        "logging": {"format": "json"},
        "server": {
            "bind_address": "127.0.0.1",
            "health_port": free_port(),
            "metrics_port": free_port(),
        },
        "kubernetes": {"mode": "kubeconfig", "kubeconfig_path": str(kubeconfig)},
        "leader_election": {"enabled": True, "lease_namespace": kube.namespace},
        "kafka_clusters": {"tansu": {"bootstrap_servers": [broker.bootstrap_server]}},
        "targets": [
            {
                "name": NAME,
                "namespace": kube.namespace,
                "scale_target_ref": {"name": NAME},
                "min_replicas": 1,
                "max_replicas": 4,
                "startup_seconds": 8,
                "predictor": {"model": "none"},
                "triggers": [
                    {
                        "type": "kafka_lag",
                        "cluster": "tansu",
                        "consumer_group": group,
                        "topics": [topic],
                        "lag_threshold": 20,
                        "offset_reset_policy": "earliest",  # as the consumers start
                        "per_replica_throughput": RATE,
                    }
                ],
                "slo": {"max_lag_seconds": 10},
            }
        ],
    }
    path = tmp_path / "autoscaler.yaml"
    path.write_text(yaml.safe_dump(config))
    async with _runner(kube, broker, topic, tmp_path) as runner:
        await _until("the first pod is ready", lambda: _replicas(kube) == (1, 1))
        log = (tmp_path / "autoscaler.log").open("wb")
        service = subprocess.Popen(
            [sys.executable, "-m", "autoscaler", "run", "--config", str(path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
        )
        try:
            data = KafkaData(broker.bootstrap_server)
            await data.produce(topic, [25] * PARTITIONS)  # 300 messages: 60 s for one
            await data.close()
            await _until("the service scales up", lambda: _replicas(kube)[0] > 1, seconds=30)
            assert service.poll() is None
            spec = _replicas(kube)[0]
            await _until("the new consumers are ready", lambda: _replicas(kube)[1] == spec)
            assert runner.consumers == spec
            # The service timed that scale-up: patch to ready, and to the group consuming.
            status_url = f"http://127.0.0.1:{config['server']['health_port']}/status"

            def timed() -> bool:
                with urllib.request.urlopen(status_url, timeout=2) as answer:
                    target = json.loads(answer.read())["targets"][NAME]
                return bool(target["startup_seconds"]["samples"] >= 1)

            await _until("the scale-up is timed", timed, seconds=30)
        finally:
            service.send_signal(signal.SIGTERM)
            try:
                service.wait(20)
            except subprocess.TimeoutExpired:
                service.kill()
            log.close()
        text = (tmp_path / "autoscaler.log").read_text()
        assert "forbidden" not in text.lower(), text[-2000:]
