"""The planner's dynamic programme over replica levels: the cheapest schedule, exactly.

``planner.plan`` reduces a problem to a few replica *levels* (sorted counts), the lowest
count each decision may set, and which level may follow which in one poll step; this module
finds the cheapest path through them. Being at level ``q`` for a step bills
``levels[q] * step`` replica-seconds, and moving to it from another level costs
``event_cost * levels[q]`` more; a level below a step's lowest count is not allowed then.
Ties go to the lowest level index, at every step and at the end (``numpy.argmin``'s rule),
so that a schedule never depends on how it was computed.

Two implementations, which give the same schedules:

* ``schedule_reference``: the straightforward one, ``O(H L^2)`` array operations over the
  whole transition matrix, step by step. It is what the fast one is tested against.
* ``schedule_fast``: the same recurrence in plain Python, about twice as cheap at the
  sizes plans have (tens of steps, a handful of levels, where each numpy call on a tiny array
  costs more than its arithmetic). At each step the cheapest level so far is the best level
  to come from, wherever the rate policies and ``min_step`` allow the move, since billing
  the same event cost on top keeps the order; only a level it may not move to looks at its
  own predecessors. This holds with ties too when every sum is exact: ``exact_costs`` says
  whether they are (costs in multiples of 1/1024 s, as any whole-second poll interval and
  event cost give), and ``planner.plan`` uses the reference otherwise.

Both are pure functions of their arguments.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

_INF = math.inf
_EXACT_UNIT = 1024
"""Costs are exact when every one is a whole multiple of ``1 / _EXACT_UNIT`` seconds below
``2**53 / _EXACT_UNIT``: sums of such floats are never rounded."""


def exact_costs(levels: Sequence[int], horizon: int, step: float, event_cost: float) -> bool:
    """Whether every cost the programme adds up is exact in floating point (see module)."""
    unit = _EXACT_UNIT
    if not (step * unit).is_integer() or not (event_cost * unit).is_integer():
        return False
    if step < 0 or event_cost < 0:
        return False
    top = max(levels) if levels else 0
    return horizon * top * (step + event_cost) * unit < 2.0**53


def schedule_fast(
    levels: Sequence[int],
    low: Sequence[int],
    allowed: Sequence[Sequence[bool]],
    current: int,
    first_ok: Sequence[bool],
    step: float,
    event_cost: float,
) -> tuple[list[int], float] | None:
    """The cheapest schedule as level indices (now first) and its cost; None when no
    schedule meets the constraints. ``allowed[p][q]``: level ``p`` may be followed by level
    ``q`` (always true for ``p == q``); ``current``: the index of the current count;
    ``first_ok[q]``: the first decision may set level ``q``. Needs ``exact_costs``."""
    count = len(levels)
    horizon = len(low)
    bill = [v * step for v in levels]
    event = [event_cost * v for v in levels]
    # Per step, the first level at or above its lowest count: those below cannot be held.
    starts = [bisect.bisect_left(levels, need) for need in low]
    cost = [_INF] * count
    for q in range(starts[0], count):
        if first_ok[q]:
            cost[q] = (0.0 if q == current else event[q]) + bill[q]
    backs = [[current] * count]
    indices = range(count)
    for k in range(1, horizon):
        best = min(cost)
        if best == _INF:
            return None  # nothing reachable now: nothing later either
        b = cost.index(best)  # the first cheapest level
        row = allowed[b]
        order: list[int] | None = None
        new = [_INF] * count
        back = [0] * count
        for q in range(starts[k], count):
            here = cost[q]
            chosen = q
            # The cheapest level stays put (moving only adds an event cost); another one
            # stays, or comes from the cheapest if it may, or else from the next cheapest
            # that may (ties to the lowest index).
            if q != b:
                if row[q]:
                    moved = best + event[q]
                    if moved < here or (moved == here and b < q):
                        here, chosen = moved, b
                else:
                    if order is None:  # the levels by cost, then index (a stable sort)
                        order = sorted(indices, key=cost.__getitem__)
                    for p in order:
                        if p != q and allowed[p][q]:
                            moved = cost[p] + event[q]
                            if moved < here or (moved == here and p < q):
                                here, chosen = moved, p
                            break
            new[q] = here + bill[q]
            back[q] = chosen
        backs.append(back)
        cost = new
    best = min(cost)
    if best == _INF:
        return None
    end = cost.index(best)
    path = [0] * horizon
    for k in range(horizon - 1, -1, -1):
        path[k] = end
        end = backs[k][end]
    return path, best


def schedule_reference(
    levels: Sequence[int],
    low: Sequence[int],
    allowed: Sequence[Sequence[bool]],
    current: int,
    first_ok: Sequence[bool],
    step: float,
    event_cost: float,
) -> tuple[list[int], float] | None:
    """``schedule_fast``'s answer, from whole-matrix array operations (any float costs)."""
    count = len(levels)
    horizon = len(low)
    values = np.asarray(levels, dtype=np.int64)
    event = event_cost * values.astype(np.float64)
    change = ~np.eye(count, dtype=bool)
    transition = np.where(change, event[None, :], 0.0)
    cost_later = np.where(np.asarray(allowed, dtype=bool), transition, np.inf)
    billed = values.astype(np.float64) * step
    lowest = np.asarray(low, dtype=np.int64)
    stay = np.where(values[None, :] < lowest[:, None], np.inf, billed[None, :])
    columns = np.arange(count)
    back: NDArray[np.int64] = np.empty((horizon, count), dtype=np.int64)
    total = np.where(np.asarray(first_ok, dtype=bool), transition[current], np.inf)[None, :]
    back[0] = current
    cost = total[0] + stay[0]
    for k in range(1, horizon):
        total = cost[:, None] + cost_later
        choice = total.argmin(axis=0)
        back[k] = choice
        cost = total[choice, columns] + stay[k]
    if not np.isfinite(cost).any():
        return None
    end = int(np.argmin(cost))
    best = float(cost[end])
    path = [0] * horizon
    for k in range(horizon - 1, -1, -1):
        path[k] = end
        end = int(back[k, end])
    return path, best
