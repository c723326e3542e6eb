"""Per-replica throughput, learned from what a poll sees (pure: a value in, a value out).

Capacity sizing needs messages/s per replica. When the trigger does not configure it, it is
measured, as Flink's autoscaler measures its true processing rate: while the consumers are
*saturated* (a real backlog waits for them, growing or draining) they process as fast as
they can, so the processing rate (growth of the committed offsets) per busy consumer is a
sample of one replica's capacity. Samples are smoothed with an EWMA.

Saturation needs more than "lag present": consumers commit periodically (Kafka's
``auto.commit.interval.ms``, 5 s by default), so a group that keeps up still shows the
messages processed since its last commit as lag. Sampling then would learn the *load* per
replica, not its capacity: sizing on it asks for more replicas, each then busier by less,
and the estimate falls further. A sample is therefore taken only while the backlog holds
more than ``SATURATED_BACKLOG_SECONDS`` of the group's processing, far above any in-flight
lag, and at least ``SATURATED_BACKLOG_PER_CONSUMER`` messages per consumer.

Offsets are whole messages, so at a trickle (a replica doing 0.6 messages a minute) one
poll's committed offsets move by 0 or 1 and its rate says little. Saturated polls are
therefore pooled, zero-progress ones included, until the pool holds at least
``MIN_SAMPLE_MESSAGES`` processed messages: the sample is the pool's messages over its
consumer-seconds. At hundreds of messages a second every poll is a sample of its own.

The estimator is part of the poll step (``autoscaler.decision.poll``), so replay learns
exactly as the live service does: its warm-up, and its mistakes.
"""

from __future__ import annotations

from dataclasses import dataclass

from autoscaler.decision.types import KafkaLagObservation

SMOOTHING = 0.3
"""EWMA weight of a new sample."""
SATURATED_BACKLOG_SECONDS = 10.0
"""A backlog worth more than this many seconds of the group's current processing counts as
saturation (twice the largest in-flight lag of the default 5 s commit interval)."""
MIN_SAMPLE_MESSAGES = 20.0
"""Processed messages a sample rests on (whole-message offsets: at most 5% rounding)."""
SATURATED_BACKLOG_PER_CONSUMER = 2
"""And at least this many messages waiting per busy consumer: at a few messages a minute,
one uncommitted message is already many seconds of processing, and a group of idle
consumers would be taken for a saturated one."""


@dataclass(frozen=True, slots=True)
class ThroughputEstimate:
    """What the estimator knows about one consumer group after a poll."""

    per_replica: float | None = None
    """Messages/s one replica processes, as learned so far (None: not yet)."""
    samples: int = 0
    """Samples taken (each pooled from one or more saturated polls): how much the estimate
    rests on."""
    previous_consumers: int | None = None
    """The busy consumers at the previous successful poll."""
    previous_at: float | None = None
    """When that poll was."""
    pooled_messages: float = 0.0
    """Messages processed over the saturated polls not yet turned into a sample."""
    pooled_consumer_seconds: float = 0.0
    """Busy consumers times seconds over the same polls."""


def learn_throughput(
    estimate: ThroughputEstimate,
    observation: KafkaLagObservation,
    ready_replicas: int | None,
) -> ThroughputEstimate:
    """The estimate after one poll's observation of the group.

    The busy consumers are the group's members when the source reports them, else the
    ready replicas, at most one per partition (members beyond the partition count sit
    idle).
    """
    lag = observation.total_lag - max(0, observation.persistent_lag)
    rate = observation.processing_rate
    now = observation.observed_at
    consumers = observation.members if observation.members is not None else ready_replicas
    busy = None if consumers is None else min(consumers, observation.partition_count)
    elapsed = None if estimate.previous_at is None else now - estimate.previous_at
    saturated = (
        rate is not None
        and rate >= 0
        and busy is not None
        and busy > 0
        and busy == estimate.previous_consumers
        and elapsed is not None
        and elapsed > 0
        and lag > 0
        and lag > rate * SATURATED_BACKLOG_SECONDS
        and lag >= SATURATED_BACKLOG_PER_CONSUMER * busy
    )
    if rate is None or busy is None or elapsed is None or not saturated:
        return ThroughputEstimate(estimate.per_replica, estimate.samples, busy, now)
    messages = estimate.pooled_messages + rate * elapsed
    consumer_seconds = estimate.pooled_consumer_seconds + busy * elapsed
    if messages < MIN_SAMPLE_MESSAGES:
        return ThroughputEstimate(
            estimate.per_replica, estimate.samples, busy, now, messages, consumer_seconds
        )
    sample = messages / consumer_seconds
    learned = (
        sample
        if estimate.per_replica is None
        else estimate.per_replica + SMOOTHING * (sample - estimate.per_replica)
    )
    return ThroughputEstimate(learned, estimate.samples + 1, busy, now)
