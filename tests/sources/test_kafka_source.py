"""The Kafka lag source against a real Kafka-protocol broker (tansu): exact lags, rates,
reset policies, stuck partitions, discovery, and outages that never raise."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from aiokafka import TopicPartition
from servers.kafka_broker import TansuBroker
from structlog.testing import capture_logs

from autoscaler.config.model import KafkaLagTrigger
from autoscaler.decision import ThroughputEstimate, learn_throughput
from autoscaler.decision.types import KafkaLagObservation, Unavailable
from autoscaler.sources.kafka import ConsumerGroupLag, KafkaCluster, partition_lag

if TYPE_CHECKING:
    from conftest import KafkaData  # tests/sources/conftest.py: the `kafka` fixture


def _trigger(group: str, *topics: str, **settings: object) -> KafkaLagTrigger:
    return KafkaLagTrigger.model_validate(
        {
            "type": "kafka_lag",
            "cluster": "main",
            "consumer_group": group,
            "topics": list(topics),
            **settings,
        },
        strict=False,
    )


def _observed(result: KafkaLagObservation | Unavailable) -> KafkaLagObservation:
    assert isinstance(result, KafkaLagObservation), result
    return result


# --------------------------------------------------------------------------- pure rules


@pytest.mark.parametrize(
    ("committed", "end", "start", "policy", "to_zero", "expected"),
    [
        pytest.param(3, 10, 0, "latest", False, 7, id="committed"),
        pytest.param(10, 10, 0, "latest", False, 0, id="caught-up"),
        pytest.param(12, 10, 0, "latest", False, 0, id="committed-beyond-end"),
        pytest.param(None, 10, 0, "latest", False, 1, id="no-commit-latest"),
        pytest.param(None, 10, 0, "latest", True, 0, id="no-commit-latest-scale-to-zero"),
        pytest.param(None, 10, 4, "earliest", False, 6, id="no-commit-earliest-keda-7936"),
        # Current KEDA checks scaleToZeroOnInvalidOffset for earliest too.
        pytest.param(None, 10, 4, "earliest", True, 0, id="no-commit-earliest-scale-to-zero"),
        pytest.param(None, 0, 0, "earliest", False, 0, id="no-commit-earliest-empty"),
    ],
)
def test_partition_lag_rules(
    committed: int | None, end: int, start: int, policy: str, to_zero: bool, expected: int
) -> None:
    lag = partition_lag(
        committed,
        end,
        start,
        offset_reset_policy=policy,  # type: ignore[arg-type]
        scale_to_zero_on_invalid_offset=to_zero,
    )
    assert lag == expected


# --------------------------------------------------------------------------- live broker


async def test_lag_members_and_rates(kafka: KafkaData, cluster: KafkaCluster) -> None:
    await kafka.create_topic("orders", 3)
    await kafka.produce("orders", [5, 3, 2])
    member = await kafka.member("g-orders", "orders")
    try:
        tps = [TopicPartition("orders", p) for p in range(3)]
        await member.commit({tps[0]: 3, tps[1]: 1, tps[2]: 2})
        source = ConsumerGroupLag(cluster, _trigger("g-orders", "orders"))

        first = _observed(await source.poll(100.0))
        assert source.last is not None
        assert [p.lag for p in source.last.partitions] == [2, 2, 0]
        assert [p.committed for p in source.last.partitions] == [3, 1, 2]
        assert [p.end_offset for p in source.last.partitions] == [5, 3, 2]
        assert source.last.members == 1
        assert (first.total_lag, first.partition_count, first.partitions_with_lag) == (4, 3, 2)
        assert first.arrival_rate is None
        assert first.processing_rate is None
        assert first.persistent_lag == 0

        await kafka.produce("orders", [4, 2, 0])  # 6 more records
        await member.commit({tps[0]: 6})  # 3 more processed
        second = _observed(await source.poll(110.0))
        assert [p.lag for p in source.last.partitions] == [3, 4, 0]
        assert second.total_lag == 7
        assert second.arrival_rate == pytest.approx(0.6)
        assert second.processing_rate == pytest.approx(0.3)
        assert second.members == 1
        assert second.rebalancing is False  # one member with its partitions: Stable
        # Lag grew while the one member processed 0.3 msg/s: the poll step's estimator
        # pools it as saturated work (3 messages in 10 consumer-seconds), from what this
        # real broker reported; a sample needs more messages than that.
        learned = learn_throughput(learn_throughput(ThroughputEstimate(), first, 1), second, 1)
        assert (learned.pooled_messages, learned.pooled_consumer_seconds) == pytest.approx(
            (3.0, 10.0)
        )
    finally:
        await member.stop()


@pytest.mark.parametrize(
    ("policy", "to_zero", "expected_lag_p1"),
    [
        pytest.param("latest", False, 1, id="latest"),
        pytest.param("latest", True, 0, id="latest-scale-to-zero"),
        pytest.param("earliest", False, 3, id="earliest"),
        pytest.param("earliest", True, 0, id="earliest-scale-to-zero"),
    ],
)
async def test_partition_without_commit_follows_reset_policy(
    kafka: KafkaData, cluster: KafkaCluster, policy: str, to_zero: bool, expected_lag_p1: int
) -> None:
    await kafka.create_topic("events", 2)
    await kafka.produce("events", [4, 3])
    await kafka.commit("g-events", "events", {0: 1})  # partition 1 never committed
    trigger = _trigger(
        "g-events",
        "events",
        offset_reset_policy=policy,
        scale_to_zero_on_invalid_offset=to_zero,
    )
    source = ConsumerGroupLag(cluster, trigger)
    observation = _observed(await source.poll(1.0))
    assert source.last is not None
    assert source.last.lag_of("events", 0) == 3
    assert source.last.lag_of("events", 1) == expected_lag_p1
    assert observation.total_lag == 3 + expected_lag_p1


async def test_stuck_partition_after_n_polls(kafka: KafkaData, cluster: KafkaCluster) -> None:
    await kafka.create_topic("jobs", 2)
    await kafka.produce("jobs", [5, 10])
    await kafka.commit("g-jobs", "jobs", {0: 3, 1: 2})
    source = ConsumerGroupLag(cluster, _trigger("g-jobs", "jobs", persistent_lag_polls=2))

    persistent = []
    for poll, now in enumerate([0.0, 10.0, 20.0]):
        observation = _observed(await source.poll(now))
        persistent.append(observation.persistent_lag)
        await kafka.commit("g-jobs", "jobs", {1: 3 + poll})  # partition 1 keeps moving
    # Partition 0 (lag 2) unmoved for 1 poll, then 2 polls: stuck at the third.
    assert persistent == [0, 0, 2]
    assert source.last is not None
    assert source.last.stuck_partitions == 1
    assert [p.stuck for p in source.last.partitions] == [True, False]

    await kafka.commit("g-jobs", "jobs", {0: 4})  # it moves again: no longer stuck
    assert _observed(await source.poll(30.0)).persistent_lag == 0


@pytest.mark.parametrize(("exclude", "expected"), [(False, 2), (True, 1)])
async def test_a_stuck_partition_excluded_from_the_lag_earns_no_replica(
    kafka: KafkaData, cluster: KafkaCluster, exclude: bool, expected: int
) -> None:
    """With exclude_persistent_lag, limit_to_partitions_with_lag counts only the partitions
    whose lag counts: a stuck one would otherwise allow one idle replica more (KEDA)."""
    await kafka.create_topic("stuck", 2)
    await kafka.produce("stuck", [5, 10])
    await kafka.commit("g-stuck", "stuck", {0: 3, 1: 2})
    trigger = _trigger(
        "g-stuck",
        "stuck",
        persistent_lag_polls=1,
        exclude_persistent_lag=exclude,
        limit_to_partitions_with_lag=True,
    )
    source = ConsumerGroupLag(cluster, trigger)
    for poll, now in enumerate([0.0, 10.0]):
        observation = _observed(await source.poll(now))
        await kafka.commit("g-stuck", "stuck", {1: 3 + poll})  # partition 1 keeps moving
    assert source.last is not None
    assert [p.stuck for p in source.last.partitions] == [True, False]
    assert observation.partitions_with_lag == expected


async def test_partition_limitation_counts_only_the_partitions_it_names(
    kafka: KafkaData, cluster: KafkaCluster
) -> None:
    """KEDA partitionLimitation: only the named partitions' lag is summed, only they count
    as partitions (the cap) and as arrivals; a named partition that does not exist is left
    out."""
    await kafka.create_topic("limited", 4)
    await kafka.produce("limited", [5, 6, 7, 8])
    await kafka.commit("g-limited", "limited", {0: 1, 1: 1, 2: 1, 3: 1})
    trigger = _trigger("g-limited", "limited", partition_limitation=" 1, 3-9")
    source = ConsumerGroupLag(cluster, trigger)

    first = _observed(await source.poll(0.0))
    assert source.last is not None
    assert [p.partition for p in source.last.partitions] == [1, 3]
    assert (first.total_lag, first.partition_count, first.partitions_with_lag) == (5 + 7, 2, 2)

    await kafka.produce("limited", [10, 0, 0, 2])  # only partition 3's two count
    second = _observed(await source.poll(10.0))
    assert second.total_lag == 5 + 9
    assert second.arrival_rate == pytest.approx(0.2)


async def test_partition_limitation_naming_no_partition_is_unavailable(
    kafka: KafkaData, cluster: KafkaCluster
) -> None:
    await kafka.create_topic("small", 2)
    await kafka.create_topic("large", 8)
    await kafka.commit("g-small", "large", {5: 0})
    trigger = _trigger("g-small", "large", "small", partition_limitation="5-9")
    result = await ConsumerGroupLag(cluster, trigger).poll(1.0)
    assert isinstance(result, Unavailable)
    assert result.reason == (
        "partition_limitation (5-9) names no partition of topic 'small', which has 2"
    )


async def test_topics_discovered_and_added_while_running(
    kafka: KafkaData, cluster: KafkaCluster
) -> None:
    await kafka.create_topic("a", 2)
    await kafka.create_topic("b", 1)
    await kafka.produce("a", [3, 1])
    await kafka.produce("b", [5])
    await kafka.commit("g-multi", "a", {0: 1})
    source = ConsumerGroupLag(cluster, _trigger("g-multi"))  # no topics: discover them

    first = _observed(await source.poll(0.0))
    assert (first.partition_count, first.total_lag) == (2, 2 + 1)  # a/1: no commit, latest

    await kafka.commit("g-multi", "b", {0: 2})  # the group starts on topic b
    second = _observed(await source.poll(5.0))
    assert (second.partition_count, second.total_lag) == (3, 2 + 1 + 3)


async def test_unknown_group_is_unavailable(kafka: KafkaData, cluster: KafkaCluster) -> None:
    await kafka.create_topic("orders", 1)
    await kafka.produce("orders", [2])
    for trigger in (_trigger("no-such-group", "orders"), _trigger("no-such-group")):
        result = await ConsumerGroupLag(cluster, trigger).poll(1.0)
        assert isinstance(result, Unavailable)
        assert "consumer group 'no-such-group' is unknown" in result.reason


async def test_unknown_topic_is_unavailable(kafka: KafkaData, cluster: KafkaCluster) -> None:
    await kafka.create_topic("orders", 1)
    await kafka.commit("g", "orders", {0: 0})
    source = ConsumerGroupLag(cluster, _trigger("g", "orders", "typo"))
    with capture_logs() as logs:
        results = [await source.poll(now) for now in (1.0, 100.0, 200.0, 301.0, 400.0)]
    assert all(isinstance(result, Unavailable) for result in results), results
    assert results[0].reason == "topic(s) 'typo' do not exist"  # type: ignore[union-attr]
    # The target's own failure: said when it starts, then every 5 minutes while it lasts.
    assert [line["event"] for line in logs] == [
        "kafka_lag_unavailable",
        "kafka_lag_still_unavailable",
    ]
    assert (logs[1]["for_seconds"], logs[1]["failed_polls"]) == (300, 4)


async def test_broker_outage_then_recovery(
    broker: TansuBroker, kafka: KafkaData, cluster: KafkaCluster
) -> None:
    async def seed() -> None:  # tansu keeps everything in memory: a restart starts empty
        await kafka.create_topic("orders", 1)
        await kafka.produce("orders", [3])
        await kafka.commit("g-out", "orders", {0: 1})

    await seed()
    await kafka.close()
    source = ConsumerGroupLag(cluster, _trigger("g-out", "orders"))
    assert _observed(await source.poll(0.0)).total_lag == 2

    broker.stop()
    with capture_logs() as logs:
        down = [await source.poll(now) for now in (10.0, 10.5, 11.0, 30.0, 30.5)]
    assert all(isinstance(result, Unavailable) for result in down), down
    assert all("kafka cluster 'main' unreachable" in r.reason for r in down)  # type: ignore[union-attr]
    unavailable_lines = [line for line in logs if line["event"] == "kafka_lag_unavailable"]
    assert len(unavailable_lines) == 1, logs

    broker.start()  # same port
    await seed()
    with capture_logs() as logs:
        results = [await source.poll(now) for now in (60.0, 61.0)]
    assert isinstance(results[-1], KafkaLagObservation), results
    assert results[-1].total_lag == 2
    assert any(line["event"] == "kafka_lag_recovered" for line in logs)


async def test_a_long_outage_is_logged_when_it_starts_every_5_minutes_and_when_it_ends(
    broker: TansuBroker, kafka: KafkaData, cluster: KafkaCluster
) -> None:
    """A poll every 10 s through a 12-minute outage (the clock is the polls', so minutes
    pass at once): one line when it starts, the cluster's summary every 5 minutes with how
    long and how many attempts, and one line each from the cluster and the source when it
    ends. Each poll after the backoff tries to connect again."""

    async def seed() -> None:  # tansu keeps everything in memory: a restart starts empty
        await kafka.create_topic("orders", 1)
        await kafka.produce("orders", [3])
        await kafka.commit("g-long", "orders", {0: 1})

    await seed()
    await kafka.close()
    source = ConsumerGroupLag(cluster, _trigger("g-long", "orders"))
    _observed(await source.poll(0.0))

    broker.stop()
    with capture_logs() as logs:
        for now in range(10, 730, 10):
            assert isinstance(await source.poll(float(now)), Unavailable)
    loud = [line for line in logs if line["log_level"] in ("warning", "error")]
    assert [line["event"] for line in loud] == [
        "kafka_cluster_connection_failed",
        "kafka_lag_unavailable",
        "kafka_cluster_still_failing",
        "kafka_cluster_still_failing",
    ]
    first, second = loud[2:]
    assert (first["for_seconds"], second["for_seconds"]) == (300, 600)
    assert (first["failed_attempts"], second["failed_attempts"]) == (31, 61)  # one a poll

    broker.start()  # same port
    await seed()
    with capture_logs() as logs:
        _observed(await source.poll(730.0))
        _observed(await source.poll(740.0))
    assert [(line["event"], line["log_level"]) for line in logs] == [
        ("kafka_cluster_reconnected", "info"),
        ("kafka_lag_recovered", "info"),
    ]
    reconnected, recovered = logs
    assert reconnected["after_seconds"] == 720
    assert reconnected["failed_attempts"] == 72
    assert (recovered["after_seconds"], recovered["failed_polls"]) == (720, 72)
