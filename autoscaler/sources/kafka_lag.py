"""Consumer-group lag, rates and members for one ``kafka_lag`` trigger.

Each ``poll(now)`` reads, for every partition of the group's topics (only those
``partition_limitation`` names, when set), the committed offset, the log end offset (and the
log start offset when the reset policy needs it) and the number of group members, then turns
them into a ``KafkaLagObservation``:

* lag per partition follows KEDA's rules (``partition_lag``), except that ``earliest`` counts
  only the messages still held (end minus log start), not the whole end offset (keda#7936);
* the arrival rate (end-offset growth per second) and processing rate (committed-offset
  growth per second) compare with the previous poll, on the clock value passed in;
* a partition with lag whose committed offset has not moved for ``persistent_lag_polls``
  polls is stuck: its lag is reported as ``persistent_lag``;
* the group's member count goes with them: the poll step's throughput estimator
  (``autoscaler.decision.throughput``) divides the processing rate among the members.
  Learning is not done here, so that replay learns exactly as the live service does.

Every failure becomes an ``Unavailable`` with its reason, logged when it starts or its state
changes, and once when it ends (after how long, how many polls). A failure of the trigger's
own (an unknown topic or group) is logged again every few minutes while it lasts; one of the
cluster's connection is the cluster's to summarize (``kafka_cluster_still_failing``), once
for all the targets on it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

import structlog

from autoscaler.config.model import KafkaLagTrigger
from autoscaler.decision.startup import consumes_with
from autoscaler.decision.types import KafkaLagObservation, Unavailable
from autoscaler.observability.repeats import RepeatedFailure
from autoscaler.sources.kafka_client import (
    GroupDescription,
    KafkaAuthenticationError,
    KafkaCluster,
    KafkaUnreachableError,
    Partition,
    is_connection_failure,
)

__all__ = ["ConsumerGroupLag", "GroupLag", "PartitionLag", "partition_lag"]

_log = structlog.get_logger(__name__)


def partition_lag(
    committed: int | None,
    end_offset: int,
    start_offset: int | None,
    *,
    offset_reset_policy: Literal["latest", "earliest"],
    scale_to_zero_on_invalid_offset: bool,
) -> int:
    """The lag of one partition, KEDA's ``getLagForPartition`` with keda#7936 fixed.

    A partition without a committed offset counts 0 with ``scale_to_zero_on_invalid_offset``,
    whatever the reset policy (KEDA checks it first). Otherwise it counts 1 with ``latest``:
    a consumer would start at the end, but one replica is needed to get there; and with
    ``earliest`` the messages a consumer would read: end minus log start
    (retention-deleted messages are not lag).
    """
    if committed is None:
        if scale_to_zero_on_invalid_offset:
            return 0
        if offset_reset_policy == "latest":
            return 1
        return max(0, end_offset - (start_offset or 0))
    return max(0, end_offset - committed)


REBALANCING_STATES = frozenset({"PreparingRebalance", "CompletingRebalance"})
"""DescribeGroups states of a group whose members wait for their new assignment."""


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One partition at one poll."""

    topic: str
    partition: int
    committed: int | None
    end_offset: int
    start_offset: int | None
    lag: int
    stuck: bool = False


@dataclass(frozen=True, slots=True)
class GroupLag:
    """The details behind the last successful observation (for logs, metrics and tests)."""

    observed_at: float
    partitions: tuple[PartitionLag, ...]
    members: int
    group_state: str

    @property
    def stuck_partitions(self) -> int:
        return sum(1 for p in self.partitions if p.stuck)

    def lag_of(self, topic: str, partition: int) -> int:
        for one in self.partitions:
            if (one.topic, one.partition) == (topic, partition):
                return one.lag
        raise KeyError((topic, partition))


class _PollFailedError(Exception):
    """A poll that cannot produce an observation; the message is the reason."""


class ConsumerGroupLag:
    """The lag source of one trigger; keeps what rates and stuck detection need.

    Args:
        cluster: the shared connections to the trigger's cluster.
        trigger: the trigger's settings.
        name: how logs name this source (default ``cluster/group``).
    """

    def __init__(
        self,
        cluster: KafkaCluster,
        trigger: KafkaLagTrigger,
        *,
        name: str | None = None,
    ) -> None:
        self.cluster = cluster
        self.trigger = trigger
        self.name = name or f"{cluster.name}/{trigger.consumer_group}"
        self._previous_at: float | None = None
        self._previous: dict[Partition, tuple[int, int | None]] = {}
        self._unmoved: dict[Partition, int] = {}
        self._unavailable = RepeatedFailure()
        self._limited = trigger.limited_partitions
        self.last: GroupLag | None = None
        """Details of the last successful poll."""

    async def poll(self, now: float) -> KafkaLagObservation | Unavailable:
        """One measurement. Never raises (cancellation aside)."""
        try:
            observation = await self._poll(now)
        except Exception as error:
            reason = await self._reason(now, error)
            # One line per change of state: every poll of an outage would repeat it, with
            # texts that vary (refused, timed out, in backoff) while the state is the same.
            state = "unreachable" if is_connection_failure(error) else reason
            how = self._unavailable.failed(state, now)
            if how == "new":
                _log.warning("kafka_lag_unavailable", source=self.name, reason=reason)
            elif how == "summary" and state != "unreachable":
                _log.warning(
                    "kafka_lag_still_unavailable",
                    source=self.name,
                    reason=reason,
                    for_seconds=round(now - self._unavailable.since),
                    failed_polls=self._unavailable.count,
                )
            return Unavailable(observed_at=now, reason=reason)
        ended = self._unavailable.recovered(now)
        if ended is not None:
            _, polls, seconds = ended
            _log.info(
                "kafka_lag_recovered",
                source=self.name,
                after_seconds=round(seconds),
                failed_polls=polls,
            )
        return observation

    async def group_settled(self, replicas: int) -> bool | None:
        """Between polls (``live.startup_probe``): whether the group has the members to
        use ``replicas`` (one per partition at most) and is not rebalancing. None: not
        known yet (no poll has counted the partitions)."""
        if self.last is None:
            return None
        description = await self.cluster.describe_group(
            self.last.observed_at, self.trigger.consumer_group
        )
        return consumes_with(
            replicas,
            description.members,
            len(self.last.partitions),
            description.state in REBALANCING_STATES,
        )

    async def _reason(self, now: float, error: Exception) -> str:
        if isinstance(error, _PollFailedError | KafkaAuthenticationError):
            return str(error)
        described = str(error) or type(error).__name__
        if not described.startswith(type(error).__name__):
            described = f"{type(error).__name__}: {described}"
        if is_connection_failure(error):
            await self.cluster.connection_failed(now, error)
            if isinstance(error, KafkaUnreachableError):
                return str(error)
            return f"kafka cluster '{self.cluster.name}' unreachable: {described}"
        return f"kafka error for group '{self.trigger.consumer_group}': {described}"

    # ------------------------------------------------------------------ one poll

    async def _poll(self, now: float) -> KafkaLagObservation:
        trigger, cluster = self.trigger, self.cluster
        group = trigger.consumer_group
        committed: dict[Partition, int | None]
        if trigger.topics:
            counts, description = await asyncio.gather(
                cluster.topic_partitions(now), cluster.describe_group(now, group)
            )
            missing = [topic for topic in trigger.topics if topic not in counts]
            if missing:
                raise _PollFailedError(f"topic(s) {', '.join(map(repr, missing))} do not exist")
            partitions = self._counted(trigger.topics, counts)
            committed = await cluster.committed_offsets(now, group, partitions)
        else:
            # First, alone: if the broker cannot answer OffsetFetch for all partitions it may
            # close the connection, failing whatever else was in flight on it.
            discovered = await cluster.committed_offsets(now, group, None)
            counts, description = await asyncio.gather(
                cluster.topic_partitions(now), cluster.describe_group(now, group)
            )
            if not discovered:
                raise _PollFailedError(self._unknown_group(description, "and no topics configured"))
            # Every partition of the discovered topics, committed or not (new ones included).
            topics = sorted({topic for topic, _ in discovered})
            partitions = [(t, p) for t in topics for p in range(counts.get(t, 0))]
            committed = {tp: discovered.get(tp) for tp in partitions}
            if len(partitions) < len(discovered):  # topic deleted since the commit
                committed = {**committed, **discovered}
                partitions = sorted(committed)
        if description.state == "Dead" or (
            description.members == 0 and all(o is None for o in committed.values())
        ):
            raise _PollFailedError(self._unknown_group(description, "on the configured topics"))
        need_start = trigger.offset_reset_policy == "earliest"
        end, start = await asyncio.gather(
            cluster.end_offsets(now, partitions),
            cluster.start_offsets(now, partitions) if need_start else _no_offsets(),
        )
        return self._observe(now, partitions, committed, end, start, description)

    def _counted(self, topics: tuple[str, ...], counts: dict[str, int]) -> list[Partition]:
        """The partitions of ``topics`` that count: all, or those ``partition_limitation``
        names (KEDA's ``isActivePartition``; a topic left with none fails, as in KEDA)."""
        limited = self._limited
        if limited is None:
            return [(topic, p) for topic in topics for p in range(counts[topic])]
        partitions: list[Partition] = []
        for topic in topics:
            kept = [(topic, p) for p in range(counts[topic]) if p in limited]
            if not kept:
                raise _PollFailedError(
                    f"partition_limitation ({limited}) names no partition of topic "
                    f"{topic!r}, which has {counts[topic]}"
                )
            partitions.extend(kept)
        return partitions

    def _unknown_group(self, description: GroupDescription, where: str) -> str:
        return (
            f"consumer group '{self.trigger.consumer_group}' is unknown: no members "
            f"(state {description.state}) and no committed offsets {where}"
        )

    def _observe(
        self,
        now: float,
        partitions: list[Partition],
        committed: dict[Partition, int | None],
        end: dict[Partition, int],
        start: dict[Partition, int],
        description: GroupDescription,
    ) -> KafkaLagObservation:
        trigger = self.trigger
        rows: list[PartitionLag] = []
        unmoved: dict[Partition, int] = {}
        arrived = processed = 0
        for tp in partitions:
            end_offset = end.get(tp, 0)
            offset = committed.get(tp)
            lag = partition_lag(
                offset,
                end_offset,
                start.get(tp),
                offset_reset_policy=trigger.offset_reset_policy,
                scale_to_zero_on_invalid_offset=trigger.scale_to_zero_on_invalid_offset,
            )
            previous = self._previous.get(tp)
            if previous is not None:
                previous_end, previous_offset = previous
                arrived += max(0, end_offset - previous_end)
                if offset is not None and previous_offset is not None:
                    processed += max(0, offset - previous_offset)
            still = previous is not None and offset is not None and offset == previous[1]
            unmoved[tp] = self._unmoved.get(tp, 0) + 1 if still and lag > 0 else 0
            stuck = unmoved[tp] >= trigger.persistent_lag_polls
            rows.append(PartitionLag(tp[0], tp[1], offset, end_offset, start.get(tp), lag, stuck))

        total_lag = sum(row.lag for row in rows)
        elapsed = None if self._previous_at is None else now - self._previous_at
        arrival_rate = processing_rate = None
        if elapsed is not None and elapsed > 0:
            arrival_rate = arrived / elapsed
            processing_rate = processed / elapsed

        self._previous_at = now
        self._previous = {tp: (end.get(tp, 0), committed.get(tp)) for tp in partitions}
        self._unmoved = unmoved
        self.last = GroupLag(now, tuple(rows), description.members, description.state)
        return KafkaLagObservation(
            observed_at=now,
            total_lag=total_lag,
            partition_count=len(rows),
            # A stuck partition excluded from the lag (exclude_persistent_lag) does not earn
            # a replica under limit_to_partitions_with_lag either, as in KEDA.
            partitions_with_lag=sum(
                1
                for row in rows
                if row.lag > 0 and not (trigger.exclude_persistent_lag and row.stuck)
            ),
            persistent_lag=sum(row.lag for row in rows if row.stuck),
            arrival_rate=arrival_rate,
            processing_rate=processing_rate,
            members=description.members,
            rebalancing=description.state in REBALANCING_STATES,
        )


async def _no_offsets() -> dict[Partition, int]:
    return {}
