"""A Kafka consumer group simulated poll by poll, scaled by the live poll step.

The physics (``ConsumerGroup``), stated once:

* Each step is one poll interval. The trace gives the topic's arrival rate; every *ready*
  replica processes ``per_replica_throughput`` messages/s (replicas beyond the partition
  count process nothing); the backlog carries over.
* A ``throughput_cap``, when set, bounds the whole group's processing (a downstream
  bottleneck: more replicas do not process more).
* Every change of membership (a replica getting ready, one removed) stops the whole group
  for ``rebalance_seconds`` (Kafka's eager rebalance; 0 by default).
* A replica requested at ``t`` is billed from ``t`` and ready at ``t + startup_seconds``; a
  removed one stops at once (not-yet-ready ones first, as a Deployment removes unready pods
  first).
* Offsets, as a broker reports them: the log end offset grows by what arrived; consumers
  commit what they processed every ``commit_interval_seconds`` (Kafka's
  ``auto.commit.interval.ms``), each on its own schedule, so at a poll the committed offset
  trails what was processed by half an interval of processing on average. Both are whole
  numbers.

At the end of each step the poll step (``autoscaler.decision.poll_step``) gets exactly what
the live source would report then: the lag (end minus committed offset, so including the
processed but not yet committed messages), the arrival and processing rates from the offsets'
growth since the previous poll, the group's members, and the current and ready replicas. The
forecasters see the arrival rate only after it happened (replay's perfect-foresight
reference aside), and the throughput estimator learns from the committed offsets as it does
live, with its warm-up and its mistakes. The SLO is scored on the real backlog.

``simulate_schedule`` runs the same physics under a replica schedule given in advance (the
oracle's).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from autoscaler.config.model import TargetConfig
from autoscaler.decision import (
    Forecaster,
    KafkaLagObservation,
    PollInputs,
    PollState,
    poll_step,
    scaled,
)
from autoscaler.decision.planner import Plan

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

UNCAPPED_PARTITIONS = 1 << 30
"""The partition count reported when the simulation has no partition cap."""


@dataclass(frozen=True)
class Consumer:
    """What is simulated about the consumers (the truth, whatever the target is told)."""

    per_replica_throughput: float
    startup_seconds: float
    partitions: int | None
    initial_replicas: int = 1
    commit_interval_seconds: float = 5.0
    """Consumers commit offsets periodically (Kafka's auto.commit.interval.ms, 5 s by
    default), so the lag a poll observes includes, on average, half an interval of
    processed but uncommitted messages. KEDA's lag formula relies on that in-flight lag to
    hold a steady replica count; the SLO is measured on the real backlog."""
    throughput_cap: float | None = None
    """Messages/s the whole group can process, however many replicas it has (a downstream
    bottleneck: a database at its limit, a shared rate limit); None: no such limit."""
    rebalance_seconds: float = 0.0
    """How long the whole group stops processing when its membership changes (Kafka's
    eager rebalance: every member gives up its partitions until the new assignment): after
    a replica gets ready, and after one is removed. 0: rebalances are free (the default,
    as replay has always been; the closed loop measures it on real consumers)."""


@dataclass(frozen=True)
class Timeline:
    """One run, step by step (row ``k`` describes the poll at the end of step ``k``)."""

    timestamps: FloatArray
    arrival_rate: FloatArray
    forecast: FloatArray
    """The forecast (point) made at this poll, for ``lead`` seconds later (NaN: none)."""
    desired_replicas: IntArray
    """Replicas requested at this poll (what the decision set)."""
    replicas: IntArray
    """Replicas running (and billed) during the step, ready or starting."""
    ready_replicas: IntArray
    """Replicas consuming during the step."""
    lag_messages: FloatArray
    lag_seconds: FloatArray
    """Time to drain the lag at the consuming capacity: lag / (consumers x throughput), the
    consumers being the ready replicas capped at the partition count."""
    scale_events: int
    processed: FloatArray | None = None
    """Messages processed during the step."""
    forecast_upper: FloatArray | None = None
    """The forecast's upper quantile made at this poll (NaN: none)."""
    learned_throughput: FloatArray | None = None
    """The per-replica throughput the estimator had learned at this poll (NaN: not yet)."""
    plans: PlanRecord | None = None
    """The planner's schedule at each poll (a planned run only)."""
    startup_seconds: FloatArray | None = None
    """The start-up the decision used at each poll: the configured one, or the one measured
    after the run's own scale-ups (``decision.startup``)."""


@dataclass(frozen=True)
class PlanRecord:
    """What the planner planned at each poll, compactly (a row per poll; -1 and NaN where
    the poll was not planned): the replicas it would set at each of its steps, and the
    arrival rate it expected in each."""

    step_seconds: float
    replicas: NDArray[np.int16]
    arrivals: NDArray[np.float32]


class ConsumerGroup:
    """The physics of one consumer group, step by step (see the module docstring)."""

    def __init__(self, consumer: Consumer, step_seconds: float, start: float) -> None:
        self.consumer = consumer
        self.step_seconds = step_seconds
        self.throughput = consumer.per_replica_throughput
        self.current = consumer.initial_replicas
        """Replicas running (billed): ``spec.replicas``."""
        self.ready = consumer.initial_replicas
        self._starting: deque[float] = deque()  # ready times of starting replicas, oldest first
        self.lag = 0.0
        """The real backlog: messages arrived and not processed."""
        self._arrived = 0.0
        depth = math.ceil(consumer.commit_interval_seconds / 2 / step_seconds) + 2
        self._processed_at: deque[tuple[float, float]] = deque([(start, 0.0)], maxlen=depth)
        """(time, messages processed by then) at the ends of the recent steps: as many as
        half a commit interval reaches back over."""
        self._previous_offsets = (0, 0)
        """(end, committed) offsets at the previous poll: the first poll compares with the
        start, as if the source had polled then, so every poll has its rates."""
        self.processed_in_step = 0.0
        self._paused_until = -math.inf
        """The group processes nothing before this (a rebalance in progress)."""

    @property
    def consuming(self) -> int:
        partitions = self.consumer.partitions
        return self.ready if partitions is None else min(self.ready, partitions)

    @property
    def capacity(self) -> float:
        """Messages/s the group processes while a backlog waits."""
        capacity = self.consuming * self.throughput
        cap = self.consumer.throughput_cap
        return capacity if cap is None else min(capacity, cap)

    def advance(self, start: float, rate: float) -> None:
        """One step from ``start``: replicas due become ready, then arrive and process."""
        joined = False
        while self._starting and self._starting[0] <= start:
            self._starting.popleft()
            self.ready += 1
            joined = True
        step = self.step_seconds
        rebalance = self.consumer.rebalance_seconds
        if joined and rebalance > 0:
            self._paused_until = max(self._paused_until, start + rebalance)
        working = step - min(step, max(0.0, self._paused_until - start))
        arrived = rate * step
        processed = min(self.lag + arrived, self.capacity * working)
        self.lag += arrived - processed
        self._arrived += arrived
        self.processed_in_step = processed
        self._processed_at.append((start + step, self._processed_at[-1][1] + processed))

    @property
    def lag_seconds(self) -> float:
        if self.lag <= 0.0:
            return 0.0
        capacity = self.capacity
        if capacity <= 0:
            return math.inf
        return self.lag / capacity

    def _committed(self, now: float) -> float:
        """Messages committed by ``now``: processed by half a commit interval earlier
        (processing is uniform within a step)."""
        at = now - self.consumer.commit_interval_seconds / 2
        points = self._processed_at
        if at >= points[-1][0]:
            return points[-1][1]
        for index in range(len(points) - 1, 0, -1):  # newest first: usually the last step
            t0, p0 = points[index - 1]
            if at >= t0:
                t1, p1 = points[index]
                return p0 + (p1 - p0) * (at - t0) / (t1 - t0)
        return points[0][1]

    def observe(self, now: float) -> KafkaLagObservation:
        """What the live Kafka source would report at the poll at ``now``."""
        end = math.floor(self._arrived + 1e-9)
        committed = min(end, math.floor(self._committed(now) + 1e-9))
        previous_end, previous_committed = self._previous_offsets
        self._previous_offsets = (end, committed)
        partitions = self.consumer.partitions
        return KafkaLagObservation(
            observed_at=now,
            total_lag=end - committed,
            partition_count=partitions if partitions is not None else UNCAPPED_PARTITIONS,
            arrival_rate=(end - previous_end) / self.step_seconds,
            processing_rate=(committed - previous_committed) / self.step_seconds,
            members=self.ready,
        )

    def scale(self, desired: int, now: float) -> None:
        """Set ``spec.replicas`` at ``now``."""
        if desired > self.current:
            self._starting.extend([now + self.consumer.startup_seconds] * (desired - self.current))
        elif desired < self.current:
            remove = self.current - desired
            while remove and self._starting:  # unready replicas go first
                self._starting.pop()
                remove -= 1
            self.ready -= remove
            if remove and self.consumer.rebalance_seconds > 0:  # members left: rebalance
                self._paused_until = max(self._paused_until, now + self.consumer.rebalance_seconds)
        self.current = desired


class _Recorder:
    """The per-step columns of a ``Timeline``, in Python lists while the loop runs (item
    assignment into numpy arrays costs more than the physics)."""

    def __init__(self) -> None:
        self.forecast: list[float] = []
        self.forecast_upper: list[float] = []
        self.learned: list[float] = []
        self.startup: list[float] = []
        self.desired: list[int] = []
        self.replicas: list[int] = []
        self.ready: list[int] = []
        self.lag: list[float] = []
        self.lag_seconds: list[float] = []
        self.processed: list[float] = []
        self.scale_events = 0
        self.plans: list[tuple[int, NDArray[np.int16], NDArray[np.float32]]] = []
        """(poll index, the plan's replicas, the arrivals it expected), compact at once: a
        plan's Python tuples would cost kilobytes a poll."""
        self.plan_step = 0.0

    def plan(self, index: int, plan: Plan) -> None:
        replicas = np.minimum(np.asarray(plan.replicas), 32767).astype(np.int16)
        arrivals = np.asarray(
            plan.arrivals if plan.arrivals is not None else np.full(len(replicas), np.nan),
            dtype=np.float32,
        )
        self.plans.append((index, replicas, arrivals))
        self.plan_step = plan.step_seconds

    def plan_record(self, n: int) -> PlanRecord | None:
        if not self.plans:
            return None
        width = max(len(row) for _, row, _ in self.plans)
        replicas = np.full((n, width), -1, dtype=np.int16)
        arrivals = np.full((n, width), np.nan, dtype=np.float32)
        for index, row, expected in self.plans:
            replicas[index, : len(row)] = row
            arrivals[index, : len(expected)] = expected
        return PlanRecord(self.plan_step, replicas, arrivals)

    def physics(self, group: ConsumerGroup) -> None:
        self.replicas.append(group.current)
        self.ready.append(group.ready)
        self.lag.append(group.lag)
        self.lag_seconds.append(group.lag_seconds)
        self.processed.append(group.processed_in_step)

    def timeline(self, times: FloatArray, rates: FloatArray, step_seconds: float) -> Timeline:
        n = len(self.replicas)
        return Timeline(
            timestamps=np.asarray(times, dtype=np.float64) + step_seconds,
            arrival_rate=np.asarray(rates, dtype=np.float64),
            forecast=np.asarray(self.forecast, dtype=np.float64)
            if self.forecast
            else np.full(n, np.nan),
            desired_replicas=np.asarray(self.desired, dtype=np.int64),
            replicas=np.asarray(self.replicas, dtype=np.int64),
            ready_replicas=np.asarray(self.ready, dtype=np.int64),
            lag_messages=np.asarray(self.lag, dtype=np.float64),
            lag_seconds=np.asarray(self.lag_seconds, dtype=np.float64),
            scale_events=self.scale_events,
            processed=np.asarray(self.processed, dtype=np.float64),
            forecast_upper=np.asarray(self.forecast_upper, dtype=np.float64)
            if self.forecast_upper
            else np.full(n, np.nan),
            learned_throughput=np.asarray(self.learned, dtype=np.float64)
            if self.learned
            else np.full(n, np.nan),
            plans=self.plan_record(n),
            startup_seconds=np.asarray(self.startup, dtype=np.float64) if self.startup else None,
        )


def simulate(
    target: TargetConfig,
    trigger_name: str,
    times: FloatArray,
    rates: FloatArray,
    step_seconds: float,
    consumer: Consumer,
    forecasters: Mapping[str, Forecaster] | None = None,
) -> Timeline:
    """Run the poll step over ``rates`` (messages/s during each step from ``times``)."""
    forecasters = forecasters or {}
    out = _Recorder()
    starts: list[float] = np.asarray(times, dtype=np.float64).tolist()
    group = ConsumerGroup(consumer, step_seconds, starts[0] if starts else 0.0)
    state = PollState()
    nan = math.nan
    for start, rate in zip(starts, np.asarray(rates, dtype=np.float64).tolist(), strict=True):
        group.advance(start, rate)
        out.physics(group)
        now = start + step_seconds
        current = group.current
        inputs = PollInputs(now, {trigger_name: group.observe(now)}, current, group.ready)
        result = poll_step(target, inputs, forecasters, state)
        state = result.state
        forecast = result.forecasts.get(trigger_name)
        if forecast is None:
            out.forecast.append(nan)
            out.forecast_upper.append(nan)
        else:
            out.forecast.append(forecast.point)
            out.forecast_upper.append(forecast.point if forecast.upper is None else forecast.upper)
        out.learned.append(result.learned_throughput.get(trigger_name, nan))
        out.startup.append(nan if result.startup_seconds is None else result.startup_seconds)
        decision = result.decision
        assert decision is not None  # the simulated scale is always readable
        for rec in decision.triggers:
            if rec.plan is not None and rec.trigger == trigger_name:
                out.plan(len(out.desired), rec.plan)
        desired = decision.desired_replicas
        out.desired.append(desired)
        if desired != current:
            state = scaled(target, state, current, desired, now)
            group.scale(desired, now)
            out.scale_events += 1
    return out.timeline(times, rates, step_seconds)


def simulate_schedule(
    times: FloatArray,
    rates: FloatArray,
    step_seconds: float,
    consumer: Consumer,
    desired: IntArray,
) -> Timeline:
    """The same physics under ``desired[k]``, the replicas set at the poll ending step ``k``."""
    out = _Recorder()
    starts: list[float] = np.asarray(times, dtype=np.float64).tolist()
    group = ConsumerGroup(consumer, step_seconds, starts[0] if starts else 0.0)
    wanted: list[int] = np.asarray(desired, dtype=np.int64).tolist()
    for start, rate, want in zip(
        starts, np.asarray(rates, dtype=np.float64).tolist(), wanted, strict=True
    ):
        group.advance(start, rate)
        out.physics(group)
        out.desired.append(want)
        if want != group.current:
            group.scale(want, start + step_seconds)
            out.scale_events += 1
    return out.timeline(times, rates, step_seconds)
