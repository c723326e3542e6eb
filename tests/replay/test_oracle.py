"""The oracle is a floor: the cheapest schedule meeting the SLO under the physics alone."""

from __future__ import annotations

import numpy as np
import pytest

from autoscaler.replay.oracle import oracle_schedule
from autoscaler.replay.simulator import Consumer, simulate_schedule

STEP = 60.0
T = 100.0


def _oracle(
    rates: np.ndarray,
    startup: float = 60.0,
    slo: float = 60.0,
    max_ready: int = 50,
    initial: int = 1,
):  # type: ignore[no-untyped-def]
    schedule = oracle_schedule(
        rates,
        STEP,
        per_replica_throughput=T,
        startup_seconds=startup,
        slo_seconds=slo,
        max_ready=max_ready,
        initial_replicas=initial,
    )
    consumer = Consumer(T, startup, max_ready, initial_replicas=initial)
    timeline = simulate_schedule(
        STEP * np.arange(len(rates)), rates, STEP, consumer, schedule.desired
    )
    return schedule, timeline


def _hours(timeline) -> float:  # type: ignore[no-untyped-def]
    return float(timeline.replicas.sum() * STEP / 3600.0)


def test_a_steady_load_needs_its_work_and_no_more() -> None:
    """350 msg/s at 100 per replica with a 60 s SLO: the bound is the work itself (3.5
    replicas, less the backlog the SLO lets the last step leave); whole replicas cost 4."""
    rates = np.full(200, 350.0)
    schedule, timeline = _oracle(rates, initial=4)
    assert np.count_nonzero(timeline.lag_seconds > 60.0) == 0
    assert schedule.unavoidable_violation_steps == 0
    work = 350.0 * 200 * STEP / T / 3600.0
    last_step_backlog = 3.5 * 60.0 / 3600.0  # at most the SLO's worth, left at the end
    assert schedule.lower_bound_replica_hours == pytest.approx(work - last_step_backlog, rel=1e-3)
    assert schedule.lower_bound_replica_hours <= _hours(timeline) <= 4 * 200 * STEP / 3600.0


def test_replicas_start_before_the_load_they_serve() -> None:
    rates = np.concatenate([np.full(20, 100.0), np.full(20, 1000.0)])
    _, timeline = _oracle(rates, startup=180.0, slo=60.0)
    assert np.count_nonzero(timeline.lag_seconds > 60.0) == 0
    # Ready for the jump at step 20: requested 3 polls (180 s) ahead, billed meanwhile.
    assert timeline.ready_replicas[20] * T * (STEP + 60.0) >= 1000.0 * STEP
    assert timeline.replicas[17] > timeline.ready_replicas[17]


def test_violations_only_where_no_schedule_avoids_them() -> None:
    """A burst beyond what every partition can drain: violated by every schedule, and the
    oracle violates there only."""
    rates = np.concatenate([np.full(30, 200.0), np.full(5, 9000.0), np.full(60, 200.0)])
    schedule, timeline = _oracle(rates, max_ready=10, initial=2)
    violated = np.count_nonzero(timeline.lag_seconds > 60.0)
    assert schedule.unavoidable_violation_steps > 0
    assert violated == schedule.unavoidable_violation_steps


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_simple_policy_meets_the_slo_for_less(seed: int) -> None:
    """Random loads: a capacity policy with perfect foresight (ready for the coming peak,
    integer replicas) meets the SLO too, and never costs less than the oracle."""
    rng = np.random.default_rng(seed)
    rates = rng.gamma(2.0, 300.0, 400)
    schedule, timeline = _oracle(rates, initial=10)
    assert np.count_nonzero(timeline.lag_seconds > 60.0) == schedule.unavoidable_violation_steps
    ahead = np.concatenate([rates[1:], rates[-1:]])
    peak = np.maximum.reduce([rates, ahead, np.concatenate([ahead[1:], ahead[-1:]])])
    desired = np.minimum(50, np.ceil(peak / T)).astype(np.int64)
    consumer = Consumer(T, 60.0, 50, initial_replicas=10)
    simple = simulate_schedule(STEP * np.arange(len(rates)), rates, STEP, consumer, desired)
    assert _hours(simple) >= _hours(timeline) >= schedule.lower_bound_replica_hours


def test_a_long_replay_is_solved_in_chunks_and_stays_a_floor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Chunks start with no backlog: a relaxation, so their bound is at most the whole
    programme's, and the schedule still violates only where it must."""
    import autoscaler.replay.oracle as oracle

    rng = np.random.default_rng(9)
    rates = rng.gamma(2.0, 300.0, 600)
    whole, _ = _oracle(rates, initial=10)
    monkeypatch.setattr(oracle, "CHUNK_STEPS", 150)
    chunked, timeline = _oracle(rates, initial=10)
    assert chunked.lower_bound_replica_hours <= whole.lower_bound_replica_hours + 1e-9
    assert chunked.lower_bound_replica_hours >= 0.97 * whole.lower_bound_replica_hours
    assert np.count_nonzero(timeline.lag_seconds > 60.0) == chunked.unavoidable_violation_steps
    assert _hours(timeline) >= whole.lower_bound_replica_hours
