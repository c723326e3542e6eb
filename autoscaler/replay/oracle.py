"""The oracle: the cheapest replica schedule that meets the SLO with perfect foresight, under
the simulator's physics alone (no HPA behavior, no dwell time, no minimum step, no
``min_replicas``), so that no run of a replay can meet the SLO for less.

The physics (``autoscaler.replay.simulator``) in units of one replica's work per step:
``a[j]`` messages arrive in step ``j``; ``c[j]`` replicas are ready and process up to
``c[j]`` each; the backlog ``l[j] = max(0, l[j-1] + a[j] - c[j])`` must stay within the
SLO, ``l[j] <= (slo / step) * c[j]``. A replica ready in step ``j`` was requested at least
``d = ceil(startup / step)`` polls earlier and is billed from then, so the replicas billed in
step ``j`` are ``r[j] >= max(c[j], ..., c[j+d])``; those ready in the first ``d`` steps are
the initial ones. The cost is ``sum(r)``. Ready replicas are at most ``min(max_replicas,
partitions)``: a replica beyond the partition count processes nothing.

1. **Unavoidable violations.** With every replica it may have, as early as it can, the
   backlog is the smallest any schedule can have at every step (more capacity never leaves
   more backlog). Steps where even that schedule violates the SLO are violated by every
   schedule; the SLO is imposed at every other step, so the oracle violates exactly where
   it must, and nowhere else.
2. **The linear programme** over ``c``, ``l`` and the increases of ``c`` (HiGHS, through
   SciPy) gives the cheapest fractional schedule. Every replica that becomes ready was
   billed for ``d`` steps before, so any schedule costs at least ``sum(c) + d * (sum of the
   increases of c)``: the programme's cost is a lower bound on the cost of any schedule
   that meets the SLO at the same steps (``lower_bound_replica_hours``).
3. **Whole replicas.** A forward pass rounds it: at each step the fewest whole replicas that
   keep the backlog within the SLO and no higher than the programme's backlog. Staying at or
   below the programme's backlog keeps every later step feasible with at most the
   programme's replicas rounded up, and a replica rounded up now drains backlog that later
   steps then need not. Then ``r[j] = max(c[j..j+d])``.

The schedule is replayed through the same simulator as every other run (``simulate_schedule``),
so its figures are measured, not assumed. Replays longer than ``CHUNK_STEPS`` polls are
solved chunk by chunk (a relaxation: the bound stays a bound), which keeps the time linear
in the span: 30 days of 30 s polls take about 20 s instead of 50 s.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.optimize import linprog

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

_SLACK = 1e-9


@dataclass(frozen=True)
class OracleSchedule:
    """The oracle's replicas, and the bound it rests on."""

    desired: IntArray
    """Replicas set at the poll ending each step (``simulate_schedule``'s input)."""
    lower_bound_replica_hours: float
    """The linear programme's cost: no schedule meeting the SLO where it can be met costs
    less, in whole or fractional replicas."""
    unavoidable_violation_steps: int
    """Steps where no schedule can meet the SLO (too few partitions or replicas, or too
    little time to start them)."""


def oracle_schedule(
    rates: FloatArray,
    step_seconds: float,
    *,
    per_replica_throughput: float,
    startup_seconds: float,
    slo_seconds: float,
    max_ready: int,
    initial_replicas: int,
) -> OracleSchedule:
    """The cheapest schedule for ``rates`` (messages/s in each step); see the module."""
    n = len(rates)
    work = (
        np.asarray(rates, dtype=np.float64) * step_seconds / (step_seconds * per_replica_throughput)
    )
    d = max(0, math.ceil(startup_seconds / step_seconds - _SLACK))
    allowed = slo_seconds / step_seconds
    cap = np.full(n, float(max_ready))
    cap[: d + 1] = min(initial_replicas, max_ready)
    feasible = _avoidable(work, cap, allowed)
    ready_lp, backlog_lp, bound = _chunked(work, cap, allowed, feasible, d)
    ready = _whole(work, cap, allowed, feasible, ready_lp, backlog_lp)
    billed = _billed(ready, d, initial_replicas)
    desired = np.empty(n, dtype=np.int64)
    desired[:-1] = billed[1:]
    desired[-1] = billed[-1]
    return OracleSchedule(
        desired=desired,
        lower_bound_replica_hours=bound * step_seconds / 3600.0,
        unavoidable_violation_steps=int(n - np.count_nonzero(feasible)),
    )


def _avoidable(work: FloatArray, cap: FloatArray, allowed: float) -> NDArray[np.bool_]:
    """Steps where the SLO can be met: the all-capacity schedule meets it there."""
    feasible = np.empty(len(work), dtype=bool)
    backlog = 0.0
    for j, (arrived, ready) in enumerate(zip(work.tolist(), cap.tolist(), strict=True)):
        backlog = max(0.0, backlog + arrived - ready)
        feasible[j] = backlog <= allowed * ready * (1 + _SLACK) + _SLACK
    return feasible


CHUNK_STEPS = 20_160
"""Longest span solved as one programme (two weeks of one-minute polls). HiGHS's time grows
faster than the span, so a longer replay is solved chunk by chunk: each chunk starts with no
backlog and no replica history, which only relaxes the problem, so the sum of the chunks'
costs is still a lower bound; the whole-replica pass then follows the chunks' backlog and
absorbs what a chunk's start left out."""


def _chunked(
    work: FloatArray, cap: FloatArray, allowed: float, feasible: NDArray[np.bool_], d: int
) -> tuple[FloatArray, FloatArray, float]:
    """``_programme`` over ``CHUNK_STEPS``-long chunks of equal length."""
    n = len(work)
    chunks = max(1, math.ceil(n / CHUNK_STEPS))
    edges = np.linspace(0, n, chunks + 1).round().astype(int).tolist()
    ready_parts, backlog_parts, bound = [], [], 0.0
    for start, stop in itertools.pairwise(edges):
        ready, backlog, cost = _programme(
            work[start:stop], cap[start:stop], allowed, feasible[start:stop], d
        )
        ready_parts.append(ready)
        backlog_parts.append(backlog)
        bound += cost
    return np.concatenate(ready_parts), np.concatenate(backlog_parts), bound


def _programme(
    work: FloatArray,
    cap: FloatArray,
    allowed: float,
    feasible: NDArray[np.bool_],
    d: int,
) -> tuple[FloatArray, FloatArray, float]:
    """The fractional optimum: (ready, backlog) per step, and its cost in replica-steps.

    Billing is written with the ready count's increases ``u[j] >= c[j] - c[j-1]``: a replica
    that becomes ready in step ``j`` was billed, not yet ready, for the ``d`` steps before,
    so any schedule costs at least ``sum(c) + d * sum(u)``; one row per step instead of
    ``d + 1`` for the sliding maximum, which keeps the programme small at short polls.
    """
    n = len(work)
    index = np.arange(n)
    c, backlog, rise = index, n + index, 2 * n + index
    rows: list[NDArray[np.int64]] = []
    cols: list[NDArray[np.int64]] = []
    vals: list[FloatArray] = []
    rhs: list[FloatArray] = []

    def add(row_ids: NDArray[np.int64], col_ids: NDArray[np.int64], value: float) -> None:
        rows.append(row_ids)
        cols.append(col_ids)
        vals.append(np.full(len(row_ids), value))

    # Backlog: l[j-1] - l[j] - c[j] <= -a[j]  (l[-1] = 0).
    add(index, backlog, -1.0)
    add(index, c, -1.0)
    add(index[1:], backlog[:-1], 1.0)
    rhs.append(-work)
    # SLO where it can be met: l[j] - allowed * c[j] <= 0.
    where = index[feasible]
    slo = n + np.arange(len(where))
    add(slo, backlog[where], 1.0)
    add(slo, c[where], -allowed)
    rhs.append(np.zeros(len(where)))
    # Increases: c[j] - c[j-1] - u[j] <= 0.
    rises = n + len(where) + index[:-1]
    add(rises, c[1:], 1.0)
    add(rises, c[:-1], -1.0)
    add(rises, rise[1:], -1.0)
    rhs.append(np.zeros(n - 1))
    matrix = sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(2 * n + len(where) - 1, 3 * n),
    )
    cost = np.concatenate([np.ones(n), np.zeros(n), np.full(n, float(d))])
    bounds = np.zeros((3 * n, 2))
    bounds[:n, 1] = cap
    bounds[n:, 1] = np.inf
    solved = linprog(cost, A_ub=matrix, b_ub=np.concatenate(rhs), bounds=bounds, method="highs")
    if solved.status != 0:  # cannot happen: the all-capacity schedule is feasible
        raise RuntimeError(f"oracle: the linear programme failed: {solved.message}")
    x = np.asarray(solved.x, dtype=np.float64)
    return x[:n], x[n : 2 * n], float(solved.fun)


def _whole(
    work: FloatArray,
    cap: FloatArray,
    allowed: float,
    feasible: NDArray[np.bool_],
    ready_lp: FloatArray,
    backlog_lp: FloatArray,
) -> IntArray:
    """Whole ready replicas per step, following the programme's backlog from below."""
    n = len(work)
    ready = np.empty(n, dtype=np.int64)
    backlog = 0.0
    for j in range(n):
        total = backlog + float(work[j])
        need = total - float(backlog_lp[j])  # stay at or below the programme's backlog
        if feasible[j]:
            need = max(need, total / (1.0 + allowed))
        limit = int(cap[j])
        count = min(max(0, math.ceil(need - _SLACK)), limit)
        while feasible[j] and count < limit and total - count > allowed * count * (1 - _SLACK):
            count += 1  # at the SLO's edge: float noise in the replay must not cross it
        ready[j] = count
        backlog = max(0.0, total - count)
    return ready


def _billed(ready: IntArray, d: int, initial: int) -> IntArray:
    """Replicas running in each step: every replica ready within the next ``d`` steps is
    already starting (and billed)."""
    n = len(ready)
    padded = np.concatenate([ready, np.full(d, ready[-1] if n else 0, dtype=np.int64)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, d + 1)[:n]
    billed: IntArray = windows.max(axis=1).astype(np.int64)
    if n:
        billed[0] = initial
    return billed
