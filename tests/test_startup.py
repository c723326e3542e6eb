"""Measured start-up: from a scale-up's patch to its replicas ready, and consuming."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import KAFKA, UNBOUNDED, make_target

from autoscaler.decision import KafkaLagObservation, PollInputs, PollState, poll_step, scaled
from autoscaler.decision.poll import startup_in_force
from autoscaler.decision.startup import (
    GIVE_UP_SECONDS,
    KEPT_SAMPLES,
    PendingStartup,
    StartupState,
    observed,
    percentile,
    started,
)
from autoscaler.replay.simulator import Consumer, simulate


def group(members: int | None, partitions: int = 12) -> list[KafkaLagObservation]:
    return [KafkaLagObservation(0.0, 0, partitions, members=members)]


def test_a_scale_up_is_timed_to_ready_and_consuming_at_the_poll_midpoints() -> None:
    state = started(StartupState(), 2, 4, 100.0)
    state = observed(state, 105.0, 2, group(2))  # still starting
    state = observed(state, 110.0, 4, group(2))  # ready between 105 and 110; rebalancing
    assert state.ready_samples == (7.5,)
    assert state.consuming_samples == ()
    state = observed(state, 115.0, 4, group(4))  # consuming between 110 and 115
    assert state.consuming_samples == (12.5,)
    assert state.pending is None


@pytest.mark.parametrize(
    ("members", "partitions", "replicas", "consuming"),
    [
        pytest.param(None, 12, 4, True, id="members-unknown-readiness-says-it"),
        pytest.param(3, 12, 4, False, id="a-member-missing"),
        pytest.param(4, 3, 6, True, id="one-member-per-partition-is-all"),
        pytest.param(2, 3, 6, False, id="partitions-not-all-owned"),
    ],
)
def test_consuming_needs_the_members(
    members: int | None, partitions: int, replicas: int, consuming: bool
) -> None:
    state = started(StartupState(), 1, replicas, 0.0)
    state = observed(state, 10.0, replicas, group(members, partitions))
    assert state.ready_samples == (5.0,)
    assert state.consuming_samples == ((5.0,) if consuming else ())


@pytest.mark.parametrize(
    ("old", "new", "pending"),
    [
        pytest.param(4, 2, None, id="scale-down-drops-it"),
        pytest.param(4, 4, PendingStartup(0.0, 4), id="no-change-keeps-it"),
        pytest.param(4, 6, PendingStartup(50.0, 6), id="newer-scale-up-replaces-it"),
    ],
)
def test_a_change_before_consuming(old: int, new: int, pending: PendingStartup | None) -> None:
    state = started(StartupState(), 1, 4, 0.0)
    assert started(state, old, new, 50.0).pending == pending


def test_a_group_still_rebalancing_is_not_consuming_yet() -> None:
    state = started(StartupState(), 1, 4, 0.0)
    joined = [KafkaLagObservation(0.0, 0, 12, members=4, rebalancing=True)]
    state = observed(state, 10.0, 4, joined)
    assert (state.ready_samples, state.consuming_samples) == ((5.0,), ())
    state = observed(
        state, 20.0, 4, [KafkaLagObservation(0.0, 0, 12, members=4, rebalancing=False)]
    )
    assert state.consuming_samples == (15.0,)


def test_a_scale_up_that_never_completes_is_dropped_not_sampled() -> None:
    state = started(StartupState(), 1, 4, 0.0)
    state = observed(state, GIVE_UP_SECONDS + 1, 4, group(4))
    assert state == StartupState()


def test_unknown_ready_replicas_measure_nothing() -> None:
    state = started(StartupState(), 1, 4, 0.0)
    assert observed(state, 10.0, None, group(4)) == state


def test_measured_is_the_p90_of_the_kept_consuming_samples() -> None:
    state = StartupState()
    assert state.measured is None
    for index, seconds in enumerate([10.0, 12.0]):
        at = 1000.0 * index
        state = observed(started(state, 1, 2, at), at + 2 * seconds, 2, group(2))
    assert state.measured is None  # two samples are not enough
    samples = [10.0, 12.0] + [float(x) for x in range(20, 20 + KEPT_SAMPLES)]
    for index, seconds in enumerate(samples[2:], start=2):
        at = 1000.0 * index
        state = observed(started(state, 1, 2, at), at + 2 * seconds, 2, group(2))
    kept = samples[-KEPT_SAMPLES:]
    assert state.consuming_samples == tuple(kept)
    assert state.measured == pytest.approx(float(np.percentile(kept, 90)))


@pytest.mark.parametrize("values", [[3.0], [1.0, 2.0], [5.0, 1.0, 4.0, 2.0, 3.0]])
@pytest.mark.parametrize("q", [0.0, 50.0, 90.0, 100.0])
def test_percentile_is_numpys(values: list[float], q: float) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def _measured(samples: tuple[float, ...]) -> StartupState:
    return StartupState(consuming_samples=samples)


@pytest.mark.parametrize(
    ("overrides", "state", "expected"),
    [
        pytest.param({"startup_seconds": 45}, _measured((9.0, 9.0, 9.0)), 45.0, id="configured"),
        pytest.param({}, _measured((9.0, 9.0, 9.0)), 9.0, id="measured"),
        pytest.param({}, _measured((9.0, 9.0)), 60.0, id="default-until-enough"),
    ],
)
def test_startup_in_force(
    overrides: dict[str, float], state: StartupState, expected: float
) -> None:
    assert startup_in_force(make_target(**overrides), state) == expected


def test_the_poll_step_decides_with_the_measured_startup() -> None:
    """Through the poll step: three timed scale-ups, then the decision's physics use the
    measured start-up (sizing drains the backlog the start-up lets grow: a shorter start-up
    needs fewer replicas for the same backlog)."""
    target = make_target(
        triggers=[{**KAFKA, "per_replica_throughput": 100}],
        poll_interval_seconds=5,
        behavior=UNBOUNDED,
    )
    state = PollState()
    at = 0.0
    for _ in range(3):
        state = scaled(target, state, 1, 2, at)
        for poll in (at + 5, at + 10):
            observation = KafkaLagObservation(poll, 0, 12, members=2)
            inputs = PollInputs(poll, {"kafka_lag": observation}, 2, 2 if poll > at + 5 else 1)
            result = poll_step(target, inputs, {}, state)
            state = result.state
        state = scaled(target, state, 2, 1, at + 11)
        at += 100.0
    assert state.startup.consuming_samples == (7.5, 7.5, 7.5)
    busy = KafkaLagObservation(at, 5000, 12, arrival_rate=300.0, processing_rate=100.0, members=1)
    result = poll_step(target, PollInputs(at, {"kafka_lag": busy}, 1, 1), {}, state)
    assert result.startup_seconds == 7.5
    configured = make_target(
        triggers=[{**KAFKA, "per_replica_throughput": 100}],
        poll_interval_seconds=5,
        startup_seconds=60,
        behavior=UNBOUNDED,
    )
    slow = poll_step(configured, PollInputs(at, {"kafka_lag": busy}, 1, 1), {}, state)
    assert slow.startup_seconds == 60
    assert result.decision is not None
    assert slow.decision is not None
    assert result.decision.desired_replicas < slow.decision.desired_replicas


def test_replay_learns_the_simulated_startup_within_half_a_poll() -> None:
    """The simulator's replicas are ready at the first step boundary ``startup`` after the
    patch (a 23 s start-up consumes from 25 s at 5 s steps): the measurement, poll by poll,
    lands within half a poll of it."""
    step, startup = 5.0, 23.0
    target = make_target(
        triggers=[{**KAFKA, "per_replica_throughput": 100}],
        poll_interval_seconds=step,
        behavior={"scale_down": {"stabilization_window_seconds": 0}},
        max_replicas=20,
    )
    times = step * np.arange(600)
    rates = np.where((times // 300) % 2 == 0, 150.0, 900.0)  # up and down every 5 minutes
    consumer = Consumer(100.0, startup, 12)
    timeline = simulate(target, "kafka_lag", times, rates, step, consumer)
    assert timeline.scale_events >= 6
    assert timeline.startup_seconds is not None
    assert timeline.startup_seconds[0] == 60.0  # the default until measured
    consumes_from = math.ceil(startup / step) * step
    assert timeline.startup_seconds[-1] == pytest.approx(consumes_from, abs=step / 2)
