"""The throughput estimator: it learns one replica's capacity only from a real backlog."""

from __future__ import annotations

import dataclasses

import pytest

from autoscaler.decision import KafkaLagObservation, ThroughputEstimate, learn_throughput
from autoscaler.decision.throughput import SATURATED_BACKLOG_SECONDS, SMOOTHING


def _seen(
    lag: int,
    rate: float | None,
    members: int | None = 2,
    partitions: int = 8,
    stuck: int = 0,
) -> KafkaLagObservation:
    return KafkaLagObservation(
        observed_at=0.0,
        total_lag=lag,
        partition_count=partitions,
        processing_rate=rate,
        members=members,
        persistent_lag=stuck,
    )


def _after(*observations: KafkaLagObservation, ready: int | None = None) -> ThroughputEstimate:
    """The estimate after ``observations``, one poll a minute."""
    estimate = ThroughputEstimate()
    for k, observation in enumerate(observations):
        polled = dataclasses.replace(observation, observed_at=60.0 * k)
        estimate = learn_throughput(estimate, polled, ready)
    return estimate


@pytest.mark.parametrize(
    ("polls", "ready", "expected"),
    [
        pytest.param([_seen(5000, 400.0), _seen(6000, 400.0)], None, 200.0, id="backlog-growing"),
        pytest.param([_seen(5000, 400.0), _seen(5000, 400.0)], None, 200.0, id="backlog-steady"),
        pytest.param(
            # Draining a backlog, consumers still work flat out.
            [_seen(6000, 400.0), _seen(5000, 400.0)],
            None,
            200.0,
            id="backlog-draining",
        ),
        pytest.param(
            # 1,000 in flight at 400 msg/s is 2.5 s of processing: a group that keeps up
            # (the messages since its last commit), not a saturated one.
            [_seen(900, 400.0), _seen(1000, 400.0)],
            None,
            None,
            id="in-flight-lag-is-not-saturation",
        ),
        pytest.param([_seen(0, 400.0), _seen(0, 400.0)], None, None, id="no-lag"),
        pytest.param(
            # A trickle: 1/15 msg/s reaching 40 idle consumers; 3 uncommitted messages are
            # 45 s of that processing, but nobody is saturated.
            [_seen(3, 1 / 15, members=40, partitions=50), _seen(3, 1 / 15, 40, 50)],
            None,
            None,
            id="a-trickle-to-idle-consumers-is-not-saturation",
        ),
        pytest.param([_seen(5000, None), _seen(6000, None)], None, None, id="no-rate-yet"),
        pytest.param([_seen(6000, 400.0)], None, None, id="needs-a-previous-poll"),
        pytest.param(
            [_seen(5000, 400.0, members=10, partitions=4), _seen(6000, 400.0, 10, 4)],
            None,
            100.0,
            id="members-beyond-the-partitions-sit-idle",
        ),
        pytest.param(
            [_seen(5000, 400.0, members=None), _seen(6000, 400.0, members=None)],
            4,
            100.0,
            id="ready-replicas-stand-in-for-members",
        ),
        pytest.param(
            [_seen(5000, 400.0, members=None), _seen(6000, 400.0, members=None)],
            None,
            None,
            id="no-consumer-count-no-sample",
        ),
        pytest.param([_seen(5000, 400.0, 0), _seen(6000, 400.0, 0)], None, None, id="no-members"),
        pytest.param(
            # A group of 2 scaled to 4: the committed offsets still carry the old pair's
            # work (and a rebalance), so the rate per member would be too low.
            [_seen(5000, 400.0, members=2), _seen(6000, 400.0, members=4)],
            None,
            None,
            id="no-sample-across-a-resize",
        ),
        pytest.param(
            # All the lag sits on a stuck partition: the group keeps up with the rest.
            [_seen(5000, 400.0, stuck=5000), _seen(6000, 400.0, stuck=6000)],
            None,
            None,
            id="stuck-partition-lag-is-not-saturation",
        ),
    ],
)
def test_learns_only_from_saturated_consumers(
    polls: list[KafkaLagObservation], ready: int | None, expected: float | None
) -> None:
    learned = _after(*polls, ready=ready).per_replica
    assert learned == (None if expected is None else pytest.approx(expected))


def test_samples_are_smoothed_and_counted() -> None:
    first = _after(_seen(5000, 400.0), _seen(6000, 400.0))
    second = learn_throughput(
        first, dataclasses.replace(_seen(7000, 600.0), observed_at=120.0), None
    )
    assert second.previous_consumers == 2
    assert second.per_replica == pytest.approx(200.0 + SMOOTHING * (300.0 - 200.0))
    assert (first.samples, second.samples) == (1, 2)


def test_saturation_threshold_is_seconds_of_processing() -> None:
    rate = 400.0
    edge = int(rate * SATURATED_BACKLOG_SECONDS)
    assert _after(_seen(edge, rate), _seen(edge, rate)).per_replica is None
    assert _after(_seen(edge + 1, rate), _seen(edge + 1, rate)).per_replica == 200.0


def test_a_trickle_is_pooled_until_the_sample_is_precise() -> None:
    """One replica doing 0.6 messages a minute: committed offsets move by 0 or 1 a poll.
    Pooled over saturated polls (the zero ones too) the rate comes out right; from the
    polls that moved alone it would be 1/60 msg/s, two thirds too high."""
    moves = [1, 0, 1, 1, 0] * 20  # 60 messages in 100 minutes
    polls = [_seen(50 + k, moved / 60.0, members=1) for k, moved in enumerate(moves)]
    estimate = _after(*polls)
    assert estimate.samples >= 2
    assert estimate.per_replica == pytest.approx(0.01, rel=0.15)
