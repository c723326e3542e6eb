"""The Kafka lag source: one ``KafkaCluster`` per configured cluster (shared connections),
one ``ConsumerGroupLag`` per ``kafka_lag`` trigger.

    cluster = KafkaCluster("main", config.kafka_clusters["main"])
    source = ConsumerGroupLag(cluster, trigger)
    observation = await source.poll(loop.time())  # KafkaLagObservation | Unavailable
    ...
    await cluster.close()

The implementation lives in ``kafka_client`` (connections, timeouts, backoff) and
``kafka_lag`` (lag rules, rates, stuck partitions, members).
"""

from __future__ import annotations

from autoscaler.sources.kafka_client import (
    GroupDescription,
    KafkaCluster,
    KafkaConfigError,
    KafkaUnreachableError,
)
from autoscaler.sources.kafka_lag import ConsumerGroupLag, GroupLag, PartitionLag, partition_lag

__all__ = [
    "ConsumerGroupLag",
    "GroupDescription",
    "GroupLag",
    "KafkaCluster",
    "KafkaConfigError",
    "KafkaUnreachableError",
    "PartitionLag",
    "partition_lag",
]
