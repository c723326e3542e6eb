"""``autoscaler run`` sharded (``server.sharding.shards``) on a real kube-apiserver and a real
Kafka-protocol broker: two instances share the targets by shard Leases, each target is
driven by exactly one of them, and when one goes the other takes its targets over.

Both connect as the deploy/ ServiceAccount with the sharded overlay's Lease Role, so every
Lease call and patch goes through the real RBAC.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from servers.kafka_broker import TansuBroker
from servers.kafka_data import KafkaData
from servers.kube_control_plane import Kube
from servers.kube_rbac import install_rbac
from servers.process import free_port

from autoscaler.config import parse_config
from autoscaler.config.model import AutoscalerConfig
from autoscaler.live import service

POLL = 0.3
PARTITIONS = 4
WORKLOADS = [f"orders-{n}" for n in range(6)]
SHARDS = 6


def _config(kube: Kube, kubeconfig: Path, broker: TansuBroker) -> AutoscalerConfig:
    def target(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "namespace": kube.namespace,
            "scale_target_ref": {"name": name},
            "max_replicas": 10,
            "predictor": {"model": "none"},
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

    return parse_config(
        {
            "poll_interval_seconds": POLL,
            "dry_run": False,
            "leader_election": {
                "enabled": True,
                "lease_namespace": kube.namespace,
                "lease_duration_seconds": 2.0,
                "renew_deadline_seconds": 1.5,
                "retry_period_seconds": 0.5,
            },
            "server": {
                "health_port": free_port(),
                "metrics_port": free_port(),
                "sharding": {"shards": SHARDS},
            },
            "kubernetes": {
                "mode": "kubeconfig",
                "kubeconfig_path": str(kubeconfig),
                "request_timeout_seconds": 2.0,
            },
            "kafka_clusters": {
                "main": {
                    "bootstrap_servers": [broker.bootstrap_server],
                    "request_timeout_seconds": 2,
                }
            },
            "targets": [target(name) for name in WORKLOADS],
        }
    )


async def _eventually(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def _status(config: AutoscalerConfig) -> dict[str, Any]:
    url = f"http://127.0.0.1:{config.server.health_port}/status"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        status: dict[str, Any] = await response.json()
    return status


async def _metric(config: AutoscalerConfig, name: str) -> str:
    url = f"http://127.0.0.1:{config.server.metrics_port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        text = await response.text()
    return "\n".join(line for line in text.splitlines() if line.startswith(name))


@pytest.fixture
def service_account(kube: Kube) -> Path:
    path = install_rbac(kube, sharded=True)
    for name in WORKLOADS:
        kube.admin.create_workload(kube.namespace, name, 1)
    return path


async def test_two_sharded_instances_drive_each_target_once_and_take_over_on_stop(
    kube: Kube, service_account: Path, broker: TansuBroker, kafka: KafkaData
) -> None:
    await kafka.create_topic("orders", PARTITIONS)
    await kafka.commit("orders", "orders", dict.fromkeys(range(PARTITIONS), 0))
    await kafka.produce("orders", [25] * PARTITIONS)  # lag 100: 2 replicas each
    first = _config(kube, service_account, broker)
    second = _config(kube, service_account, broker)
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    built: list[service.Service] = []
    first_task = asyncio.create_task(service.run(first, stop_first, on_built=built.append))
    second_task = asyncio.create_task(service.run(second, stop_second, on_built=built.append))
    try:

        def replicas() -> list[int]:
            return [kube.admin.replicas(kube.namespace, name) for name in WORKLOADS]

        assert await _eventually(lambda: replicas() == [2] * len(WORKLOADS), 20), replicas()
        # Balanced: each instance runs the targets of its half of the shards, and no target
        # runs in both.
        statuses: list[dict[str, Any]] = []
        deadline = time.monotonic() + 10
        while True:
            statuses = [await _status(first), await _status(second)]
            held = [s["sharding"]["held"] for s in statuses]
            if sorted(len(h) for h in held) == [3, 3] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert sorted(len(h) for h in held) == [3, 3], held
        assert set(held[0]).isdisjoint(held[1])
        targets = [set(s["targets"]) for s in statuses]
        assert targets[0].isdisjoint(targets[1])
        assert targets[0] | targets[1] == set(WORKLOADS)
        for status in statuses:
            per_shard = status["sharding"]["targets_per_shard"]
            assert sum(per_shard.values()) == len(status["targets"])
        assert (await _metric(first, "autoscaler_shards_held")).endswith(" 3.0")
        # Each change was made once, by one instance: one Rescaled Event per workload.
        events = [e for e in kube.admin.events(kube.namespace) if e["reason"] == "Rescaled"]
        assert sorted(e["involvedObject"]["name"] for e in events) == WORKLOADS

        assert await _eventually(lambda: len(built) == 2, 5)
        leaving = next(b for b in built if set(b.controllers) == targets[0])
        staying = next(b for b in built if b is not leaving)
        learned = {
            name: controller.state.decision.scale_up_events
            for name, controller in leaving.controllers.items()
        }
        assert all(len(events) == 1 for events in learned.values()), learned  # 1 -> 2
        stop_first.set()  # a rolling update: it releases its shards, the other takes them
        await asyncio.wait_for(first_task, 15)
        # Its learned state went with its shards: the scale-up it made still counts in the
        # rate policies and the stabilization window of the replica that took them.
        assert await _eventually(lambda: set(staying.controllers) == set(WORKLOADS), 10)
        for name, events in learned.items():
            taken = staying.controllers[name].state.decision
            assert taken.scale_up_events[: len(events)] == events, name
            assert taken.recommendations is not None
            assert min(r.at for r in taken.recommendations) < events[0].at + 1.0
        await kafka.produce("orders", [25] * PARTITIONS)  # lag 200: 4 replicas each
        assert await _eventually(lambda: replicas() == [4] * len(WORKLOADS), 20), replicas()
        status = await _status(second)
        assert sorted(status["sharding"]["held"]) == list(range(SHARDS))
        assert set(status["targets"]) == set(WORKLOADS)
    finally:
        stop_first.set()
        stop_second.set()
        await asyncio.wait_for(asyncio.gather(first_task, second_task), 20)
