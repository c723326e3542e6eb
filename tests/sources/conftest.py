"""Fixtures for the live sources: a real tansu broker per test, and helpers to put known
offsets into it (one record per batch: tansu's end offsets are exact only then)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from servers.kafka_broker import TansuBroker
from servers.kafka_data import KafkaData

from autoscaler.config.model import KafkaClusterConfig
from autoscaler.sources.kafka import KafkaCluster


@pytest.fixture
def broker() -> Iterator[TansuBroker]:
    with TansuBroker() as server:
        yield server


@pytest.fixture
async def cluster(broker: TansuBroker) -> AsyncIterator[KafkaCluster]:
    config = KafkaClusterConfig(
        bootstrap_servers=(broker.bootstrap_server,), request_timeout_seconds=2.0
    )
    kafka = KafkaCluster("main", config, backoff_initial=1.0, backoff_max=4.0)
    yield kafka
    await kafka.close()


@pytest.fixture
async def kafka(broker: TansuBroker) -> AsyncIterator[KafkaData]:
    data = KafkaData(broker.bootstrap_server)
    yield data
    await asyncio.wait_for(data.close(), 10)
