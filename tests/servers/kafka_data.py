"""Puts topics, records and commits into a broker, as producers and consumers would (one
record per batch: tansu's end offsets are exact only then)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

__all__ = ["KafkaData"]


class KafkaData:
    """Puts topics, records and commits into the broker, as producers and consumers would."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._producer: AIOKafkaProducer | None = None

    async def create_topic(self, topic: str, partitions: int) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, partitions, 1)])
        finally:
            await admin.close()

    async def produce(self, topic: str, counts: Sequence[int]) -> None:
        """``counts[p]`` records to partition ``p``, one record per batch."""
        if self._producer is None:
            self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=0)
            await self._producer.start()
        for partition, count in enumerate(counts):
            for _ in range(count):
                await self._producer.send_and_wait(topic, b"m", partition=partition)

    async def commit(self, group: str, topic: str, offsets: Mapping[int, int]) -> None:
        """Commit ``{partition: offset}`` for a group without members (a manual assignment)."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, p) for p in offsets])
            await consumer.commit({TopicPartition(topic, p): o for p, o in offsets.items()})
        finally:
            await consumer.stop()

    async def member(self, group: str, topic: str) -> AIOKafkaConsumer:
        """A live member of ``group`` subscribed to ``topic``, once it has its assignment."""
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=self.bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        for _ in range(100):
            if consumer.assignment():
                return consumer
            await consumer.getmany(timeout_ms=100)
        await consumer.stop()
        raise AssertionError(f"{group} got no assignment")

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
