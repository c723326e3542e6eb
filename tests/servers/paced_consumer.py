"""One consumer "pod" of the closed loop: a real aiokafka group member that processes at a
fixed rate (a sleep-paced token bucket, not busy work) and commits what it processed.

    python tests/servers/paced_consumer.py --bootstrap 127.0.0.1:PORT --topic T --group G \
        --rate 40 [--rate-file FILE] [--commit-interval 5] [--name pod-1]

It prints one JSON line per event on stdout (``t`` is ``time.time()``):

* ``{"event": "started"}`` once the client is connected,
* ``{"event": "revoked", "partitions": [...]}`` and ``{"event": "assigned", "partitions":
  [...]}`` from the group's rebalance callbacks (``assigned`` after each rebalance, even with
  the same partitions),
* ``{"event": "stopped", "processed": N}`` after SIGTERM: it has committed what it processed
  and left the group (``LeaveGroup``), as a pod does in its termination grace period.

``--rate-file``: a file holding the current rate (msg/s), re-read twice a second (the pod
runner writes it to cap the group's total throughput: a downstream bottleneck). Offsets are
committed every ``--commit-interval`` seconds (Kafka's ``auto.commit.interval.ms``, 5 s by
default) and when partitions are revoked, so that a rebalance hands them over without
reprocessing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"t": time.time(), "event": event, **fields}) + "\n")
    sys.stdout.flush()


class Paced:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rate = float(args.rate)
        self.processed: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}
        self.total = 0
        self.stopping = asyncio.Event()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=args.bootstrap,
            group_id=args.group,
            client_id=args.name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=args.session_timeout_ms,
            heartbeat_interval_ms=args.heartbeat_interval_ms,
            max_poll_interval_ms=args.max_poll_interval_ms,
        )

    async def commit(self, partitions: list[TopicPartition] | None = None) -> None:
        owned = (
            self.processed
            if partitions is None
            else {tp: self.processed[tp] for tp in partitions if tp in self.processed}
        )
        offsets = {tp: o for tp, o in owned.items() if self.committed.get(tp) != o}
        if not offsets:
            return
        try:
            await self.consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
        except KafkaError as error:  # a rebalance in progress: the next commit retries
            emit("commit_failed", error=type(error).__name__)
            return
        self.committed.update(offsets)

    def read_rate(self) -> None:
        if self.args.rate_file is None:
            return
        with contextlib.suppress(OSError, ValueError):
            self.rate = max(0.0, float(Path(self.args.rate_file).read_text().strip()))

    async def run(self) -> None:
        owner = self

        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
                await owner.commit(sorted(revoked))
                for tp in revoked:
                    owner.processed.pop(tp, None)
                    owner.committed.pop(tp, None)
                emit("revoked", partitions=sorted(tp.partition for tp in revoked))

            async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
                emit("assigned", partitions=sorted(tp.partition for tp in assigned))

        await self.consumer.start()
        self.consumer.subscribe([self.args.topic], listener=Listener())
        emit("started")
        self.read_rate()
        tokens = 0.0
        last = last_commit = last_rate = time.monotonic()
        while not self.stopping.is_set():
            now = time.monotonic()
            if now - last_rate >= 0.5:
                self.read_rate()
                last_rate = now
            burst = max(1.0, self.rate * 0.2)
            tokens = min(tokens + self.rate * (now - last), burst)
            last = now
            if now - last_commit >= self.args.commit_interval:
                await self.commit()
                last_commit = now
            if tokens < 1.0:
                wait = (1.0 - tokens) / self.rate if self.rate > 0 else 0.5
                await asyncio.sleep(min(wait, 0.5))
                continue
            batch = await self.consumer.getmany(timeout_ms=100, max_records=int(tokens))
            for tp, records in batch.items():
                if records:
                    self.processed[tp] = records[-1].offset + 1
                    tokens -= len(records)
                    self.total += len(records)
        await self.commit()
        await self.consumer.stop()  # LeaveGroup: the others rebalance at once
        emit("stopped", processed=self.total)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--rate", type=float, required=True, help="messages/s")
    parser.add_argument("--rate-file", default=None)
    parser.add_argument("--commit-interval", type=float, default=5.0)
    parser.add_argument("--name", default="paced-consumer")
    parser.add_argument("--session-timeout-ms", type=int, default=10000)
    parser.add_argument("--heartbeat-interval-ms", type=int, default=3000)
    parser.add_argument("--max-poll-interval-ms", type=int, default=300000)
    paced = Paced(parser.parse_args())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, paced.stopping.set)
    await paced.run()


if __name__ == "__main__":
    asyncio.run(main())
