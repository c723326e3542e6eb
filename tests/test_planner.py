"""The receding-horizon planner (``autoscaler.decision.planner``), alone: pure inputs, one
plan, its schedule checked against what the module promises."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from autoscaler.config.model import BehaviorConfig, ScaleUpRules, ScalingPolicy
from autoscaler.decision.planner import (
    MAX_PLAN_CELLS,
    PlanError,
    PlanProblem,
    arrivals_on_steps,
    needed_ready,
    plan,
    stabilization_floors,
)
from autoscaler.replay.simulator import Consumer, ConsumerGroup

STEP = 30.0
MU = 100.0  # msg/s per replica
DEFAULT = BehaviorConfig()


def problem(arrivals: list[float], **changes: Any) -> PlanProblem:
    values = np.asarray(arrivals, dtype=np.float64)
    base: dict[str, Any] = {
        "step_seconds": STEP,
        "arrivals": values,
        "rate_now": float(values[0]),
        "backlog": 0.0,
        "ready": 5,
        "starting": 0,
        "starting_steps": 0,
        "throughput": MU,
        "slo_seconds": 60.0,
        "startup_steps": 2,
        "current": 5,
        "min_replicas": 1,
        "max_replicas": 50,
        "floors": np.zeros(len(values), dtype=np.int64),
        "first_band": (0, 1000),
        "scale_up": DEFAULT.scale_up,
        "scale_down": DEFAULT.scale_down,
        "scale_event_cost_seconds": 10.0,
        "min_step": 1,
    }
    base.update(changes)
    return PlanProblem(**base)


def first_change(replicas: tuple[int, ...]) -> int | None:
    for k in range(1, len(replicas)):
        if replicas[k] != replicas[k - 1]:
            return k
    return None


def test_a_rise_is_met_exactly_one_startup_ahead() -> None:
    # 500 msg/s (5 replicas) until step 20, then 1,500 (15): with 2 steps of start-up, the
    # count set at decision 17 runs from step 18 and consumes from step 20.
    arrivals = [500.0] * 19 + [1500.0] * 21
    fast = ScaleUpRules(policies=(ScalingPolicy(type="Percent", value=900, period_seconds=15),))
    schedule = plan(problem(arrivals, slo_seconds=0.0, scale_up=fast))
    assert schedule.first == 5
    assert schedule.replicas[16] == 5
    assert schedule.replicas[17] == 15
    assert schedule.needed[19] == 15
    # Under the HPA's default policies (at most double per step) the ramp starts a step
    # earlier, as the policies are a constraint of the plan.
    ramped = plan(problem(arrivals, slo_seconds=0.0))
    assert ramped.replicas[15:18] == (5, 10, 15)


def test_no_plan_goes_below_what_arrives_now() -> None:
    # The path says the load vanishes, but 800 msg/s arrive now: 8 replicas now.
    schedule = plan(problem([0.0] * 30, rate_now=800.0, current=8, ready=8))
    assert schedule.first == 8
    assert schedule.replicas[-1] < 8  # the plan itself goes down later


@pytest.mark.parametrize(
    ("dip_steps", "expect_drop"),
    [
        pytest.param(2, False, id="short-dip-held-two-events-cost-more"),
        pytest.param(20, True, id="long-dip-dropped"),
    ],
)
def test_a_dip_is_held_or_skipped_by_the_event_cost(dip_steps: int, expect_drop: bool) -> None:
    arrivals = [1000.0] * 3 + [200.0] * dip_steps + [1000.0] * 25
    schedule = plan(
        problem(
            arrivals,
            slo_seconds=0.0,
            current=10,
            ready=10,
            startup_steps=1,
            scale_event_cost_seconds=60.0,
        )
    )
    dropped = min(schedule.replicas) < 10
    assert dropped is expect_drop


def test_scale_down_happens_ahead_of_the_trough_not_after_it() -> None:
    # Sizing keeps the count while the load is high now; the plan lowers it at the first
    # step where the lower load holds (removal is immediate, nothing to anticipate).
    arrivals = [1000.0] * 5 + [300.0] * 35
    schedule = plan(problem(arrivals, slo_seconds=0.0, current=10, ready=10, startup_steps=2))
    k = first_change(schedule.replicas)
    assert k == 5
    assert schedule.replicas[5] == 3


def test_backlog_drains_within_the_slo() -> None:
    # 40,000 messages waiting, 500 msg/s arriving: 5 replicas would hold 80 s of backlog,
    # the SLO allows 60; the replicas requested now consume from step 3 on.
    schedule = plan(problem([500.0] * 40, backlog=40_000.0, slo_seconds=60.0, current=5))
    assert schedule.first > 5
    backlog = np.asarray(schedule.backlog)
    needed = np.asarray(schedule.needed)
    later = slice(3, None)
    assert np.all(backlog[later] <= 60.0 * MU * needed[later] + 1e-6)


def test_a_peak_shorter_than_the_startup_is_absorbed_not_chased() -> None:
    # A one-step burst right now: no replica requested now could help before it is over,
    # so the plan takes the backlog (within the SLO where it can) instead of scaling up.
    arrivals = [2000.0] + [500.0] * 39
    schedule = plan(problem(arrivals, rate_now=500.0, slo_seconds=300.0, startup_steps=3))
    assert max(schedule.replicas) <= 6


def test_the_first_step_stays_within_the_rate_policies_band() -> None:
    schedule = plan(problem([3000.0] * 40, slo_seconds=0.0, first_band=(5, 9)))
    assert schedule.first == 9


def test_later_steps_follow_the_policies_per_step() -> None:
    # At most 2 pods per 30 s: 5 -> 7 -> 9 ... to 25.
    rules = ScaleUpRules(policies=(ScalingPolicy(type="Pods", value=2, period_seconds=30),))
    schedule = plan(problem([2500.0] * 40, slo_seconds=0.0, scale_up=rules, first_band=(5, 7)))
    steps = np.diff(np.asarray((5, *schedule.replicas)))
    assert steps.max() <= 2
    assert schedule.replicas[-1] == 25


def test_no_change_smaller_than_min_step_unless_at_a_limit() -> None:
    arrivals = [600.0] * 40  # 6 replicas from 5: a change of 1
    held = plan(problem(arrivals, slo_seconds=0.0, min_step=2, startup_steps=0))
    changes = np.diff(np.asarray((5, *held.replicas)))
    assert set(np.abs(changes[changes != 0]).tolist()) >= {2}
    assert np.all((changes == 0) | (np.abs(changes) >= 2))
    assert held.first >= 7  # 5 -> 6 is too small a change: it overshoots, then settles
    assert plan(problem(arrivals, slo_seconds=0.0, min_step=1, startup_steps=0)).first == 6
    # A change of 1 that reaches max_replicas goes through.
    capped = problem(arrivals, slo_seconds=0.0, min_step=3, max_replicas=6, startup_steps=0)
    assert plan(capped).first == 6


def test_stabilization_floors_hold_the_steps_they_cover() -> None:
    floors = stabilization_floors([(0.0, 12), (60.0, 9)], 300.0, 90.0, STEP, 20)
    # Decision k is at 90 + 30k: 12 covers k with 90 + 30k < 300 (k <= 6), 9 until k <= 8.
    assert floors[:7].tolist() == [12] * 7
    assert floors[7:9].tolist() == [9, 9]
    assert floors[9:].tolist() == [0] * 11
    schedule = plan(problem([200.0] * 20, current=12, ready=12, floors=floors))
    assert schedule.replicas[:7] == (12,) * 7
    assert schedule.replicas[7] == 9


def test_announced_is_the_lowest_count_until_past_the_window() -> None:
    schedule = plan(problem([1000.0] * 4 + [300.0] * 36, slo_seconds=0.0, current=10, ready=10))
    assert schedule.first == 10
    assert schedule.announced(10, window_steps=3) == 10  # the drop is after step 3
    assert schedule.announced(10, window_steps=4) == 3
    assert schedule.announced(10, window_steps=0) == 10
    rising = plan(problem([2000.0] * 40, slo_seconds=0.0))
    assert rising.announced(5, window_steps=10) == rising.first  # scaling up: no announcing


def test_the_partition_cap_bounds_the_plan_and_counts_what_it_cannot_meet() -> None:
    schedule = plan(problem([5000.0] * 40, slo_seconds=0.0, max_replicas=12))
    assert max(schedule.replicas) == 12
    assert schedule.unavoidable_steps == 40


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        pytest.param({"arrivals": np.zeros(0)}, "empty forecast path", id="no-path"),
        pytest.param({"throughput": 0.0}, "throughput", id="no-throughput"),
    ],
)
def test_failures_say_why(changes: dict[str, Any], why: str) -> None:
    base = problem([100.0] * 10)
    with pytest.raises(PlanError, match=why):
        plan(dataclasses.replace(base, **changes))


def test_a_problem_too_big_fails_instead_of_taking_unbounded_time() -> None:
    # Every count from 1 to 1,000 named by the steps' needs: 1,000 levels.
    arrivals = np.linspace(100.0, 100_000.0, 400)
    big = problem(arrivals.tolist(), slo_seconds=0.0, max_replicas=2000, first_band=(0, 5000))
    assert MAX_PLAN_CELLS < 400 * 400 * 400
    with pytest.raises(PlanError, match="too big to plan"):
        plan(big)


def test_arrivals_are_resampled_to_the_middle_of_each_step() -> None:
    times = np.asarray([100.0, 160.0, 220.0])
    values = np.asarray([0.0, 60.0, 120.0])
    out = arrivals_on_steps(times, values, now=100.0, step_seconds=30.0, horizon=5)
    np.testing.assert_allclose(out, [15.0, 45.0, 75.0, 105.0, 120.0])


@pytest.mark.parametrize("seed", range(6))
def test_the_plan_meets_the_slo_under_the_replay_physics(seed: int) -> None:
    """Executed open loop with its forecast come true, the plan's replicas meet the SLO in
    the replay simulator at every step the plan did not call unavoidable: the planner's
    physics is the simulator's."""
    rng = np.random.default_rng(seed)
    n = 40
    base = rng.uniform(300, 1500)
    arrivals = np.clip(base + np.cumsum(rng.normal(0, 120, n)), 50, None)
    startup_steps = int(rng.integers(1, 4))
    slo = float(rng.choice([0.0, 60.0, 120.0]))
    p = problem(
        arrivals.tolist(),
        slo_seconds=slo,
        startup_steps=startup_steps,
        current=int(np.ceil(arrivals[0] / MU)),
        ready=int(np.ceil(arrivals[0] / MU)),
        rate_now=float(arrivals[0]),
        max_replicas=200,
    )
    schedule = plan(p)
    consumer = Consumer(
        per_replica_throughput=MU,
        startup_seconds=startup_steps * STEP,
        partitions=None,
        initial_replicas=p.current,
        commit_interval_seconds=0.0,
    )
    group = ConsumerGroup(consumer, STEP, 0.0)
    violations = 0
    for k, rate in enumerate(arrivals.tolist()):
        group.scale(schedule.replicas[k], k * STEP)  # decision k, at the start of step k + 1
        group.advance(k * STEP, rate)
        violations += group.lag_seconds > slo + 1e-6
    assert violations <= schedule.unavoidable_steps
    assert schedule.unavoidable_steps < n  # not vacuous: most steps are met
    needed, _, _, _ = needed_ready(p)
    assert len(needed) == n


@pytest.mark.parametrize(
    ("drain_steps", "first"),
    [
        pytest.param(0, 5, id="edge-the-backlog-may-stay-at-the-slo"),
        pytest.param(3, 6, id="drained-where-the-decision-commits"),
    ],
)
def test_the_backlog_is_drained_where_the_decision_commits(drain_steps: int, first: int) -> None:
    # 6,000 messages waiting, 500 msg/s: 5 replicas hold the lag at 60 s / 2.4 replicas
    # would hold it at the SLO's edge; draining it within the SLO takes (500 + 100) / 100.
    p = problem(
        [500.0] * 30, backlog=6000.0, slo_seconds=60.0, startup_steps=0, drain_steps=drain_steps
    )
    assert plan(p).first == first


@pytest.mark.parametrize(
    ("rate", "first"),
    [
        pytest.param(1050.0, 10, id="within-tolerance-held"),
        pytest.param(1150.0, 12, id="beyond-tolerance-scaled"),
    ],
)
def test_a_scale_up_within_the_tolerance_is_not_made(rate: float, first: int) -> None:
    p = problem(
        [rate] * 30,
        rate_now=rate,
        slo_seconds=0.0,
        current=10,
        ready=10,
        startup_steps=0,
        tolerance_up=0.1,
    )
    assert plan(p).first == first


@pytest.mark.parametrize("seed", range(200))
def test_stabilization_floors_are_the_windows_comparison_step_by_step(seed: int) -> None:
    rng = np.random.default_rng(seed)
    now = float(rng.choice([0.0, 1e9 + 0.3, 1_700_000_123.7]))
    step = float(rng.choice([15.0, 30.0, 60.0, 7.3]))
    window = float(rng.choice([0.0, 60.0, 300.0, 299.9]))
    horizon = int(rng.integers(1, 31))
    history = [
        (now - float(rng.choice([0.0, step, 300.0, rng.random() * 600])), int(rng.integers(0, 40)))
        for _ in range(int(rng.integers(0, 25)))
    ]
    times = now + step * np.arange(horizon, dtype=np.float64)
    expected = np.zeros(horizon, dtype=np.int64)
    if window > 0 and history:
        at = np.asarray([r[0] for r in history], dtype=np.float64)
        replicas = np.asarray([r[1] for r in history], dtype=np.int64)
        covered = times[:, None] - at[None, :] < window
        expected = np.where(covered, replicas[None, :], 0).max(axis=1)
    floors = stabilization_floors(history, window, now, step, horizon)
    assert floors.tolist() == expected.tolist()
