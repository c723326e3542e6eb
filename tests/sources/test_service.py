"""``autoscaler run`` end to end, in-process: a real Kafka-protocol broker (tansu), the
service's own tasks, and the strict Kubernetes API fake reached through kubernetes-asyncio.

The same runs against a real kube-apiserver are in ``test_service_kube.py``; what stays here
needs the fake's record of every request (the follower's patches counted: none).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import kubernetes_asyncio.client as k8s
import pytest
from servers.kafka_broker import TansuBroker
from servers.kafka_data import KafkaData
from servers.kube_api import FAST_LEASE, KubeApiServer
from servers.process import free_port

from autoscaler.config import parse_config
from autoscaler.live import service
from autoscaler.live.actuator import ScaleActuator

TOPIC = "orders"


@pytest.fixture
async def api() -> AsyncIterator[KubeApiServer]:
    async with KubeApiServer() as server:
        server.add_workload("Deployment", "shop", "orders", replicas=1)
        yield server


def _config(broker: TansuBroker, dry_run: bool, election: bool = False) -> Any:
    leader_election: dict[str, Any] = {"enabled": election}
    if election:
        leader_election |= FAST_LEASE
    return parse_config(
        {
            "poll_interval_seconds": 0.3,
            "dry_run": dry_run,
            "leader_election": leader_election,
            "server": {"health_port": free_port(), "metrics_port": free_port()},
            "kafka_clusters": {"main": {"bootstrap_servers": [broker.bootstrap_server]}},
            "targets": [
                {
                    "name": "orders",
                    "namespace": "shop",
                    "scale_target_ref": {"name": "orders"},
                    "max_replicas": 10,
                    "predictor": {"model": "none"},
                    "triggers": [
                        {
                            "type": "kafka_lag",
                            "cluster": "main",
                            "consumer_group": "orders",
                            "topics": [TOPIC],
                            "lag_threshold": 50,
                        }
                    ],
                }
            ],
        }
    )


async def _run_until(config: Any, api: KubeApiServer, done: Any, seconds: float) -> None:
    client = k8s.ApiClient(k8s.Configuration(host=api.url))
    actuator = ScaleActuator(client, request_timeout_seconds=5, owns_client=True)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(config, stop, actuator=actuator))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while not done():
                await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 10)  # drains and closes within the grace period


async def test_with_two_instances_only_the_leader_patches(
    kafka: KafkaData, broker: TansuBroker, api: KubeApiServer
) -> None:
    await kafka.create_topic(TOPIC, 4)
    await kafka.commit("orders", TOPIC, dict.fromkeys(range(4), 0))
    await kafka.produce(TOPIC, [50, 50, 50, 50])
    stop = asyncio.Event()
    tasks = []
    for _ in range(2):
        client = k8s.ApiClient(k8s.Configuration(host=api.url))
        actuator = ScaleActuator(client, request_timeout_seconds=5, owns_client=True)
        config = _config(broker, dry_run=False, election=True)
        tasks.append(asyncio.create_task(service.run(config, stop, actuator=actuator)))
    await asyncio.sleep(3.0)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 15)
    assert api.workload("Deployment", "shop", "orders").replicas == 4
    assert len(api.patches()) == 1  # the follower decided the same but never patched
