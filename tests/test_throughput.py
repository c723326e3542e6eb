"""The throughput estimator: it learns one replica's capacity only from a real backlog."""

from __future__ import annotations

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
    estimate = ThroughputEstimate()
    for observation in observations:
        estimate = learn_throughput(estimate, observation, ready)
    return estimate


@pytest.mark.parametrize(
    ("polls", "ready", "expected"),
    [
        pytest.param([_seen(5000, 400.0), _seen(6000, 400.0)], None, 200.0, id="backlog-growing"),
        pytest.param([_seen(5000, 400.0), _seen(5000, 400.0)], None, 200.0, id="backlog-steady"),
        pytest.param([_seen(6000, 400.0), _seen(5000, 400.0)], None, None, id="backlog-draining"),
        pytest.param(
            # 1,000 in flight at 400 msg/s is 2.5 s of processing: a group that keeps up
            # (the messages since its last commit), not a saturated one.
            [_seen(900, 400.0), _seen(1000, 400.0)],
            None,
            None,
            id="in-flight-lag-is-not-saturation",
        ),
        pytest.param([_seen(0, 400.0), _seen(0, 400.0)], None, None, id="no-lag"),
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
    second = learn_throughput(first, _seen(7000, 600.0), None)
    assert second.previous_consumers == 2
    assert second.per_replica == pytest.approx(200.0 + SMOOTHING * (300.0 - 200.0))
    assert (first.samples, second.samples) == (1, 2)
    assert second.previous_lag == 7000


def test_saturation_threshold_is_seconds_of_processing() -> None:
    rate = 400.0
    edge = int(rate * SATURATED_BACKLOG_SECONDS)
    assert _after(_seen(edge, rate), _seen(edge, rate)).per_replica is None
    assert _after(_seen(edge + 1, rate), _seen(edge + 1, rate)).per_replica == 200.0
