"""The planner's dynamic programme (``autoscaler.decision.schedule``): the fast version gives
the reference's schedules, ties included, on randomized problems."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from autoscaler.config.model import ScaleDownRules, ScaleUpRules, ScalingPolicy
from autoscaler.decision import planner
from autoscaler.decision.planner import PlanError, PlanProblem, plan
from autoscaler.decision.schedule import exact_costs, schedule_fast, schedule_reference


def random_levels(rng: random.Random) -> dict[str, object]:
    """A level problem as ``plan`` hands it over, with arbitrary transitions (not only the
    rate policies' ranges) and small whole costs, so that ties are common."""
    count = rng.randint(1, 9)
    levels = sorted(rng.sample(range(0, 40), count))
    horizon = rng.randint(1, 30)
    low = [rng.choice([0, *levels]) for _ in range(horizon)]
    density = rng.random()
    allowed = [[p == q or rng.random() < density for q in range(count)] for p in range(count)]
    return {
        "levels": levels,
        "low": low,
        "allowed": allowed,
        "current": rng.randrange(count),
        "first_ok": [rng.random() < 0.8 for _ in range(count)],
        "step": float(rng.choice([1, 2, 15, 30])),
        "event_cost": float(rng.choice([0, 0.5, 1, 2, 10, 30])),
    }


@pytest.mark.parametrize("seed", range(400))
def test_the_fast_programme_gives_the_reference_schedules(seed: int) -> None:
    args = random_levels(random.Random(seed))
    assert exact_costs(args["levels"], len(args["low"]), args["step"], args["event_cost"])  # type: ignore[arg-type]
    assert schedule_fast(**args) == schedule_reference(**args)  # type: ignore[arg-type]


def random_problem(rng: random.Random) -> PlanProblem:
    """A whole plan problem: a random path, backlog, counts, policies and floors."""
    horizon = rng.randint(1, 30)
    scale = rng.choice([50.0, 500.0, 3000.0])
    arrivals = np.asarray([rng.random() * scale for _ in range(horizon)], dtype=np.float64)
    low, high = rng.randint(0, 3), rng.randint(4, 60)
    current = rng.randint(0, high + 2)

    def policy() -> ScalingPolicy:
        kind = rng.choice(["Pods", "Percent"])
        value = rng.randint(1, 5) if kind == "Pods" else rng.choice([10, 50, 100, 200])
        return ScalingPolicy(type=kind, value=value, period_seconds=rng.choice([15, 60, 300]))

    select = rng.choice(["Max", "Min", "Disabled"])
    up = ScaleUpRules(select_policy=select, policies=(policy(), policy()))
    down = ScaleDownRules(select_policy=rng.choice(["Max", "Min"]), policies=(policy(),))
    floors = [rng.choice([0, current, rng.randint(0, high)]) for _ in range(horizon)]
    floors.sort(reverse=True)
    return PlanProblem(
        step_seconds=float(rng.choice([15, 30, 60])),
        arrivals=arrivals,
        rate_now=float(arrivals[0]) * rng.choice([0.5, 1.0, 1.5]),
        backlog=rng.choice([0.0, rng.random() * scale * 60]),
        ready=max(0, current - rng.randint(0, 2)),
        starting=rng.randint(0, 2),
        starting_steps=rng.randint(0, 3),
        throughput=rng.choice([25.0, 100.0, 250.0]),
        slo_seconds=rng.choice([0.0, 60.0, 120.0]),
        startup_steps=rng.randint(0, 4),
        current=current,
        min_replicas=low,
        max_replicas=high,
        floors=np.minimum(np.asarray(floors, dtype=np.int64), current),
        first_band=(max(0, current - rng.randint(0, 10)), current + rng.randint(0, 10)),
        scale_up=up,
        scale_down=down,
        scale_event_cost_seconds=float(rng.choice([0, 5, 10, 30, 60])),
        min_step=rng.choice([1, 1, 2, 3]),
        tolerance_up=rng.choice([0.0, 0.1]),
        drain_steps=rng.randint(0, 4),
    )


def outcome(problem: PlanProblem) -> object:
    try:
        return plan(problem)
    except PlanError as failure:
        return failure.kind


@pytest.mark.parametrize("seed", range(300))
def test_plans_are_the_same_with_the_reference_programme(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem = random_problem(random.Random(seed))
    fast = outcome(problem)
    monkeypatch.setattr(planner, "schedule_fast", schedule_reference)
    reference = outcome(problem)
    if isinstance(fast, planner.Plan) and isinstance(reference, planner.Plan):
        fast = dataclasses.replace(fast, arrivals=None)
        reference = dataclasses.replace(reference, arrivals=None)
    assert fast == reference


@pytest.mark.parametrize(
    ("step", "event_cost", "exact"),
    [
        pytest.param(30.0, 10.0, True, id="whole-seconds"),
        pytest.param(7.5, 0.25, True, id="binary-fractions"),
        pytest.param(30.0, 0.1, False, id="a-tenth-is-not-exact"),
        pytest.param(1e12, 3600.0, False, id="too-large-to-stay-exact"),
    ],
)
def test_costs_are_exact_only_when_no_sum_is_rounded(
    step: float, event_cost: float, exact: bool
) -> None:
    assert exact_costs([1, 5, 50], 30, step, event_cost) is exact
