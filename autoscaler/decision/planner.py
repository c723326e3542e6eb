"""The receding-horizon planner: the cheapest replica schedule over the forecast path.

Sizing (``sizing.size_kafka_lag``) answers one number per poll: enough replicas for the
arrival rate a lead time ahead plus draining the backlog. It cannot see the shape of the
next half hour, so it scales down into a trough late, holds replicas through a dip it could
have skipped, and pays a scale event for every wiggle. The planner looks at the whole path
(the forecast at the quantile in force, at every poll step of the horizon) and chooses the
cheapest *schedule* of replica counts that keeps the predicted lag within the SLO, then
applies its first step; next poll it plans again with what it learned (model-predictive
control). The physics is the replay simulator's, in units of one poll step ``D``:

* ``a[j]`` messages/s arrive in step ``j`` (j = 1..H, step 1 starting now); ``mu`` messages/s
  per ready replica (the per-replica throughput times ``slo.target_utilization``);
* the backlog ``b[j] = max(0, b[j-1] + a[j] D - c[j] mu D)`` must stay within the SLO,
  ``b[j] <= slo * mu * c[j]``: the fewest ready replicas in step ``j`` are
  ``n[j] = ceil((b[j-1] + a[j] D) / (mu (D + slo)))``, the backlog carried at that capacity
  (a forward pass: less capacity now only leaves more backlog later);
* a replica set at decision ``k`` (now is ``k = 0``) runs from step ``k + 1`` and consumes
  from step ``k + 1 + d`` (``d`` = start-up, plus the scale-up stabilization window, in
  steps); before that only the replicas ready or starting now can consume. So the count set
  at decision ``k`` must be at least ``max(n[k+1 .. k+1+d])``: a rise is met exactly one
  start-up ahead, and no replica needed before a new one could be ready is removed;
* the cost is the replica-seconds billed, ``sum(r[k]) D``, plus
  ``scale_event_cost_seconds * r`` for each change to ``r`` replicas (a rebalance stops the
  whole group for about that long).

Constraints of the plan, not a clamp after it: ``min_replicas``, ``max_replicas`` and the
partition cap; the HPA rate policies (the first step exactly, from the recorded scale
events; later steps with each policy's allowance per poll step); the scale-down
stabilization window, whose recorded recommendations floor every step they still cover.
A planned scale-down is *announced* a window ahead: the recommendation recorded for
stabilization is the lowest count the plan holds over the next window, so that the HPA's
"highest recommendation within the window" lets the scale-down happen when the plan wants
it, and the plan's first step floors the result (``first``). Dwell time and ``min_step``
stay after the plan, as configured.

The schedule is found by a dynamic programme over replica counts (the levels the
constraints name, plus the rate-limited ramps from the current count: an optimal plateau
sits on one of them), at most ``O(H L^2)`` for ``L`` levels (``schedule``). Its work is bounded
(``MAX_PLAN_CELLS``): a deterministic budget rather than a time limit, since the decision
core reads no clock and replay must decide exactly as the live loop did. A problem too big,
or infeasible, is a ``PlanError``, and the caller sizes as before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from autoscaler.decision.hpa import RulesLike
from autoscaler.decision.schedule import exact_costs, schedule_fast, schedule_reference

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

MAX_PLAN_CELLS = 2_000_000
"""Most (steps x levels x levels) cells a plan may take: about 10 ms of array work. A target
whose constraints name more levels than that allows is sized instead (``PlanError``)."""
_SLACK = 1e-9


@dataclass(frozen=True, slots=True)
class PlanProblem:
    """Everything one plan is made of (all counts in replicas, times in seconds)."""

    step_seconds: float
    arrivals: FloatArray
    """Messages/s expected in each step of the horizon, step 1 first (the quantile in force)."""
    rate_now: float
    """Messages/s arriving now: no plan sizes below it."""
    backlog: float
    """Messages waiting now."""
    ready: int
    """Replicas consuming now."""
    starting: int
    """Replicas requested, not consuming yet."""
    starting_steps: int
    """Steps until the starting replicas consume."""
    throughput: float
    """Messages/s one ready replica processes (times the target utilization)."""
    slo_seconds: float
    startup_steps: int
    current: int
    min_replicas: int
    max_replicas: int
    """Including the partition cap."""
    floors: IntArray
    """Per decision ``k``: the recorded recommendations the stabilization window still
    covers then (0 where none)."""
    first_band: tuple[int, int]
    """The fewest and most replicas the rate policies allow now."""
    scale_up: RulesLike
    scale_down: RulesLike
    scale_event_cost_seconds: float
    min_step: int = 1
    """No change smaller than this, unless it reaches ``min_replicas`` or ``max_replicas``."""
    tolerance_up: float = 0.0
    """A scale-up now only when the need exceeds the current count by more than this share
    (the HPA's scale-up tolerance)."""
    drain_steps: int = 0
    """The first steps, where this decision commits: there the backlog is not left at the
    SLO's edge but drained within the SLO (``n >= (a + b / slo) / mu``, sizing's rule).
    Beyond, the plan may let a backlog absorb a peak (what the oracle does with perfect
    foresight); a forecast is only a forecast, and a backlog kept at the edge turns the
    first burst it did not foresee into a violation."""


@dataclass(frozen=True, slots=True)
class Plan:
    """The cheapest schedule found, and what it expects."""

    replicas: tuple[int, ...]
    """Replicas set at each decision of the horizon, now first."""
    needed: tuple[int, ...]
    """Ready replicas each step needs (step 1 first)."""
    backlog: tuple[float, ...]
    """The backlog expected at the end of each step at that capacity."""
    step_seconds: float
    cost_replica_seconds: float
    unavoidable_steps: int
    """Steps where even every replica the plan may have cannot meet the SLO."""
    levels: int
    """Replica counts the programme considered."""
    arrivals: FloatArray | None = None
    """The messages/s it expected in each step (the problem's path)."""

    @property
    def first(self) -> int:
        """The count to set now."""
        return self.replicas[0]

    def announced(self, current: int, window_steps: int) -> int:
        """What the stabilization window records now: the first step when scaling up, else
        the fewest replicas the plan holds until the first step after the window ahead
        (see the module). That step is the first the recommendations recorded before this
        one no longer floor, so a hold they impose is not recorded again."""
        if self.first > current or window_steps <= 0:
            return self.first
        return min(self.replicas[: window_steps + 1])

    def runs(self) -> list[list[int]]:
        """The schedule as ``[replicas, steps]`` runs, now first: the log's compact form
        (a plan changes a few times over its horizon, so a few pairs, not 30 counts)."""
        runs: list[list[int]] = []
        for count in self.replicas:
            if runs and runs[-1][0] == count:
                runs[-1][1] += 1
            else:
                runs.append([count, 1])
        return runs

    def describe(self) -> str:
        """One line for the decision log: the first step and the next changes."""
        changes: list[str] = []
        previous = self.replicas[0]
        for k, count in enumerate(self.replicas[1:], start=1):
            if count != previous:
                changes.append(f"{count} at +{k * self.step_seconds:.0f}s")
                previous = count
            if len(changes) == 3:
                break
        then = f", then {', '.join(changes)}" if changes else ", held"
        horizon = len(self.replicas) * self.step_seconds
        return f"plan over {horizon:.0f}s: {self.first} now{then}"


class PlanError(Exception):
    """No plan this poll (too big a problem, or none feasible): size as before.

    ``kind`` is a short fixed code (a metric label); the message says it in words."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def needed_ready(problem: PlanProblem) -> tuple[IntArray, FloatArray, int, FloatArray]:
    """The fewest ready replicas each step needs, the backlog carried, the steps where even
    the most replicas possible cannot meet the SLO (a forward pass; see the module), and
    each step's need before rounding up (what the tolerance compares)."""
    needed, backlog, unavoidable, exact = _needed(problem)
    return (
        np.asarray(needed, dtype=np.int64),
        np.asarray(backlog, dtype=np.float64),
        unavoidable,
        np.asarray(exact, dtype=np.float64),
    )


def _needed(problem: PlanProblem) -> tuple[list[int], list[float], int, list[float]]:
    """``needed_ready`` as lists (what ``plan`` reads: a plan is tens of steps, where a
    Python list costs less than an array)."""
    step = problem.step_seconds
    mu = problem.throughput
    per_replica = mu * (step + problem.slo_seconds)
    drained = mu * step
    needed: list[int] = []
    exact: list[float] = []
    backlog: list[float] = []
    carried = max(0.0, problem.backlog)
    unavoidable = 0
    now_ready = problem.ready
    with_starting = problem.ready + problem.starting
    slo = problem.slo_seconds
    drain_steps = problem.drain_steps if slo > 0 else 0
    startup_steps = problem.startup_steps
    starting_steps = problem.starting_steps
    top = problem.max_replicas
    for j, rate in enumerate(problem.arrivals.tolist(), start=1):
        rate = max(0.0, rate)
        total = carried + rate * step
        fraction = total / per_replica
        if j <= drain_steps:
            fraction = max(fraction, (rate + carried / slo) / mu)
        need = max(0, math.ceil(fraction - _SLACK))
        if j <= startup_steps:  # only what runs now can consume before then
            limit = min(with_starting if j > starting_steps else now_ready, top)
        else:
            limit = top
        if need > limit:
            need = limit
            fraction = float(limit)
            unavoidable += 1
        needed.append(need)
        exact.append(fraction)
        carried = max(0.0, total - need * drained)
        backlog.append(carried)
    return needed, backlog, unavoidable, exact


def plan(problem: PlanProblem) -> Plan:
    """The cheapest schedule of ``problem`` (``PlanError`` when there is none to give)."""
    horizon = len(problem.arrivals)
    if horizon == 0:
        raise PlanError("no_path", "empty forecast path")
    if problem.throughput <= 0 or not math.isfinite(problem.throughput):
        raise PlanError("no_throughput", "no per-replica throughput")
    needed, backlog, unavoidable, exact = _needed(problem)
    limits = StepLimits.of(problem)
    low = _lowest_counts(problem, needed, exact, problem.startup_steps, limits)
    levels = _levels(problem, low, limits)
    count = len(levels)
    if horizon * count * count > MAX_PLAN_CELLS:
        raise PlanError("too_big", f"{count} replica levels over {horizon} steps: too big to plan")
    step = problem.step_seconds
    event_cost = problem.scale_event_cost_seconds
    current = levels.index(problem.current)
    allowed = _allowed(problem, levels, limits)
    lo_now, hi_now = problem.first_band
    lowest, highest = min(lo_now, problem.current), max(hi_now, problem.current)
    from_current = _big_enough(problem, problem.current, levels)
    first_ok = [lowest <= v <= highest and ok for v, ok in zip(levels, from_current, strict=True)]
    exact_sums = exact_costs(levels, horizon, step, event_cost)
    solve = schedule_fast if exact_sums else schedule_reference
    found = solve(levels, low, allowed, current, first_ok, step, event_cost)
    if found is None:
        raise PlanError("infeasible", "no schedule meets the constraints")
    path, total_cost = found
    return Plan(
        replicas=tuple(levels[i] for i in path),
        needed=tuple(needed),
        backlog=tuple(backlog),
        step_seconds=step,
        cost_replica_seconds=total_cost,
        unavoidable_steps=unavoidable,
        levels=count,
        arrivals=problem.arrivals,
    )


def _lowest_counts(
    problem: PlanProblem, needed: list[int], exact: list[float], d: int, limits: StepLimits
) -> list[int]:
    """The fewest replicas each decision may set: what the steps it covers until a new
    replica could consume need, the stabilization floors, ``min_replicas``, and now also
    what arrives now; never above the most the limits allow.

    Now, a scale-up the need asks for only within the HPA's tolerance of the current count
    (``tolerance_up``) is not made: the need is a forecast, and a change that small is
    noise a rebalance would cost more than it buys (the HPA's own rule)."""
    horizon = len(needed)
    low = [max(needed[k : k + d + 1]) for k in range(horizon)]
    arriving_exact = max(0.0, problem.rate_now) / problem.throughput
    arriving = math.ceil(arriving_exact - _SLACK)
    first = max(low[0], arriving)
    first_exact = max(max(exact[: d + 1]), arriving_exact)
    current = problem.current
    if first > current > 0 and first_exact <= current * (1 + problem.tolerance_up):
        first = current
    low[0] = first
    floors = problem.floors[:horizon].tolist()
    if len(floors) != horizon:  # a single floor for every step (numpy's broadcasting)
        floors = np.broadcast_to(problem.floors[:horizon], (horizon,)).tolist()
    bottom = problem.min_replicas
    reach = _reachable(problem, horizon, limits)
    return [
        min(max(v, floor, bottom), most) for v, floor, most in zip(low, floors, reach, strict=True)
    ]


def _reachable(problem: PlanProblem, horizon: int, limits: StepLimits) -> list[int]:
    """The most replicas each decision can set: the first step's band, then each step's
    allowance from there (a need above it is unavoidable, not infeasible)."""
    top = problem.max_replicas
    reach = [top] * horizon
    level = min(top, max(problem.first_band[1], problem.current))
    for k in range(horizon):
        if level >= top:
            break  # the rest stays at the most allowed
        reach[k] = level
        level = min(top, max(level, limits.up(level)))
    return reach


def _levels(problem: PlanProblem, low: list[int], limits: StepLimits) -> list[int]:
    """The replica counts worth considering: the current one, each decision's lowest, the
    counts the rate policies reach step by step up from each of them and down from the
    current one (ramps), and those ``min_step`` allows next to the current one."""
    wanted = {problem.current, *low}
    top = max(wanted)
    bottom = min(wanted)
    for start in sorted(wanted):  # the way back up from every count (rate-limited ramps)
        level = start
        for _ in range(len(low)):
            up = min(limits.up(level), top)
            if up <= level or up in wanted:
                break
            wanted.add(up)
            level = up
    level = problem.current
    for _ in range(len(low)):
        down = max(limits.down(level), bottom)
        if down >= level:
            break
        wanted.add(down)
        level = down
    # A change smaller than min_step is not allowed: the nearest counts one is allowed to.
    step = problem.min_step
    if step > 1:
        for level in list(wanted):
            if 0 < abs(level - problem.current) < step:
                above = min(problem.current + step, problem.max_replicas)
                below = max(problem.current - step, problem.min_replicas)
                wanted.update(v for v in (above, below) if v >= level or v == below)
    return sorted(wanted)


def _allowed(problem: PlanProblem, levels: list[int], limits: StepLimits) -> list[list[bool]]:
    """``allowed[p][q]``: the rate policies let one poll step go from level p to level q,
    by a change no smaller than ``min_step`` (``_big_enough``)."""
    step = problem.min_step
    bounds = (problem.min_replicas, problem.max_replicas)
    allowed: list[list[bool]] = []
    for v in levels:
        most = max(limits.up(v), v)
        fewest = min(limits.down(v), v)
        if step > 1:  # as _big_enough, in the same pass
            row = [
                fewest <= w <= most and (w == v or abs(w - v) >= step or w in bounds)
                for w in levels
            ]
        else:
            row = [fewest <= w <= most for w in levels]
        allowed.append(row)
    return allowed


def _big_enough(problem: PlanProblem, v: int, levels: list[int]) -> list[bool]:
    """``ok[q]``: a change from ``v`` replicas to level q is no smaller than ``min_step``
    (or none, or it reaches a limit), as the actuation stage would let it through."""
    step = problem.min_step
    if step <= 1:
        return [True] * len(levels)
    bounds = (problem.min_replicas, problem.max_replicas)
    return [w == v or abs(w - v) >= step or w in bounds for w in levels]


@dataclass(frozen=True, slots=True)
class StepLimits:
    """How far one poll step may move the count, with no recent scale event: each policy's
    allowance over its period, prorated when the period is longer than a step (an
    approximation of the HPA's sliding periods; the first step is limited exactly, and the
    rate policies still bound every decision). Read off the rules once per plan."""

    ups: tuple[tuple[bool, float], ...]
    """Per scale-up policy: (a Pods policy, its pods per step or its fraction per step)."""
    downs: tuple[tuple[bool, float], ...]
    up_max: bool
    """Whether the most permissive policy applies (``selectPolicy: Max``)."""
    down_max: bool

    @classmethod
    def of(cls, problem: PlanProblem) -> StepLimits:
        return cls(
            ups=_per_step(problem.scale_up, problem.step_seconds),
            downs=_per_step(problem.scale_down, problem.step_seconds),
            up_max=problem.scale_up.select_policy == "Max",
            down_max=problem.scale_down.select_policy == "Max",
        )

    def up(self, replicas: int) -> int:
        most: int | None = None
        for pods, amount in self.ups:
            v = replicas + int(amount) if pods else math.ceil(replicas * (1 + amount) - _SLACK)
            if most is None or (v > most if self.up_max else v < most):
                most = v
        return replicas if most is None else most

    def down(self, replicas: int) -> int:
        fewest: int | None = None
        for pods, amount in self.downs:
            v = replicas - int(amount) if pods else math.floor(replicas * (1 - amount) + _SLACK)
            if fewest is None or (v < fewest if self.down_max else v > fewest):
                fewest = v
        return replicas if fewest is None else fewest


def _per_step(rules: RulesLike, step: float) -> tuple[tuple[bool, float], ...]:
    """Each policy's allowance per poll step (none when the direction is disabled)."""
    if rules.select_policy == "Disabled":
        return ()
    allowances: list[tuple[bool, float]] = []
    for policy in rules.policies:
        share = min(1.0, step / policy.period_seconds) if policy.period_seconds > 0 else 1.0
        if policy.type == "Pods":
            pods = max(1, math.floor(policy.value * share)) if policy.value > 0 else 0
            allowances.append((True, float(pods)))
        else:
            allowances.append((False, policy.value * share / 100))
    return tuple(allowances)


def stabilization_floors(
    recommendations: Sequence[tuple[float, int]],
    window_seconds: float,
    now: float,
    step_seconds: float,
    horizon: int,
) -> IntArray:
    """Per decision ``k``: the highest recorded recommendation (``(at, replicas)``) still
    within the scale-down window at ``now + k * step`` (0 where none): the HPA keeps at
    least that many replicas then.

    A recommendation covers the decisions until its window has passed, a run from now:
    each one's run is found from its length estimated, then checked with the window's own
    comparison (``now + k * step - at < window``), and the floors are the highest
    recommendation whose run reaches each decision."""
    floors = [0] * horizon
    if window_seconds <= 0 or not recommendations or horizon <= 0:
        return np.zeros(horizon, dtype=np.int64)
    highest = [0] * (horizon + 1)  # by the number of decisions covered
    for at, replicas in recommendations:
        left = window_seconds - (now - at)
        covers = min(horizon, max(0, math.ceil(left / step_seconds))) if step_seconds > 0 else 0
        while covers > 0 and not now + step_seconds * (covers - 1) - at < window_seconds:
            covers -= 1
        while covers < horizon and now + step_seconds * covers - at < window_seconds:
            covers += 1
        if replicas > highest[covers]:
            highest[covers] = replicas
    top = 0
    for k in range(horizon, 0, -1):  # decision k - 1 is covered by runs of k or more
        top = max(top, highest[k])
        floors[k - 1] = top
    return np.asarray(floors, dtype=np.int64)


def arrivals_on_steps(
    times: FloatArray, values: FloatArray, now: float, step_seconds: float, horizon: int
) -> FloatArray:
    """A forecast path (values at ``times``) resampled to the middle of each poll step from
    ``now`` (held flat past its ends)."""
    middles = now + step_seconds * (np.arange(horizon, dtype=np.float64) + 0.5)
    resampled: FloatArray = np.maximum(np.interp(middles, times, values), 0.0)
    return resampled


def arrivals_in_two_parts(
    times: FloatArray,
    first: FloatArray,
    later: FloatArray,
    now: float,
    step_seconds: float,
    horizon: int,
    split: int,
) -> FloatArray:
    """``arrivals_on_steps`` of the path ``first`` for the first ``split`` steps and of
    ``later`` beyond (the same values, resampled once)."""
    middles = now + step_seconds * (np.arange(horizon, dtype=np.float64) + 0.5)
    split = max(0, min(split, horizon))
    both = np.concatenate(
        (np.interp(middles[:split], times, first), np.interp(middles[split:], times, later))
    )
    resampled: FloatArray = np.maximum(both, 0.0)
    return resampled
