"""Scaling effectiveness: stop scaling up a group that more replicas do not speed up.

When the consumers are held back by something else (a downstream database at its limit, a
shared rate limit, one stuck partition), every scale-up adds cost and a rebalance and no
throughput, and a lag-driven autoscaler keeps adding replicas up to ``max_replicas``. Flink's
autoscaler detects this (``scaling.effectiveness.detection``); KEDA and the HPA do not. The
rule here, per target:

* A scale-up is **checked** when the group was *saturated* when it was patched (a backlog
  of more than ``SATURATED_BACKLOG_SECONDS`` of its processing: only then is the processing
  rate the group's capacity, not its load). The rate before is the group's processing rate
  over the saturated polls of the last evaluation window in which it consumed with the
  replicas it had (all ready, members with their partitions): a rate measured while fewer
  consumed is not the capacity of the count being scaled from, and would credit this
  scale-up with what an earlier one brought.
* While the group is saturated, a scale-up waits for the replicas of the one before to
  consume (or for twice the start-up and an evaluation window, whichever is first: a
  Pending pod does not hold scaling for long). A backlog that keeps growing behind a
  bottleneck otherwise ramps the count again and again before any step can be measured;
  this is the one start-up per step Flink's autoscaler waits too. Without a backlog,
  forecast-driven scale-ups are not held.
* Once all the new replicas are ready, the start-up has passed and the group has them as
  members with their partitions (not rebalancing), the processing rate is pooled over the
  polls wholly after that. If the backlog clears, the scale-up did its
  job (**effective**). It is **effective** as soon as the pooled rate rose by at least
  ``threshold`` of the rise the new replicas should bring (the rate before, times the busy
  consumers' growth: at most one per partition), usually at the first poll; and
  **ineffective** when a whole evaluation window shows less.
* From the moment the new replicas are ready (and the start-up passed) until the verdict,
  no further scale-up is made: otherwise a lag that keeps growing behind a bottleneck adds
  replicas faster than any of them can be judged. For a scale-up that works this costs the
  group's rebalance and one poll. A scale-up
  while the replicas of an earlier one are still starting is checked with it, from the
  earlier rate and count. A scale-down ends the check.
* After one ineffective scale-up, the next is *on probation*: while it is being checked
  (starting, too), no further scale-up (a second chance, not a ramp to the maximum).
* After ``max_ineffective`` ineffective ones in a row, scale-ups **stop** for
  ``cooldown_seconds``: the target keeps the replicas it has (scale-downs still follow the
  usual rules). After the cool-down one scale-up is tried again, on probation; an effective
  scale-up clears the count.

The live service turns the stop into a Warning Event and ``autoscaler_scaling_ineffective``
1. Pure: a value in, a value out; the time is the caller's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from autoscaler.config.model import ScalingEffectivenessConfig
from autoscaler.decision.startup import consumes_with
from autoscaler.decision.throughput import SATURATED_BACKLOG_SECONDS
from autoscaler.decision.types import KafkaLagObservation

GIVE_UP_SECONDS = 1800.0
"""A check whose replicas never all get ready is dropped after this long (no verdict: a
Pending pod is not a slow group)."""


@dataclass(frozen=True, slots=True)
class Pooled:
    """Messages processed over some seconds (a rate that rests on its duration)."""

    messages: float = 0.0
    seconds: float = 0.0

    def add(self, rate: float, seconds: float) -> Pooled:
        return Pooled(self.messages + rate * seconds, self.seconds + seconds)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Check:
    """A scale-up being checked."""

    patched_at: float
    before: int
    after: int
    rate_before: float
    """Messages/s the saturated group processed before it."""
    partitions: int
    ready_at: float | None = None
    """The first poll that saw every new replica ready, after the start-up, with the group
    settled."""
    after_ready: Pooled = Pooled()
    settling: bool = False
    """Every new replica is ready and the start-up has passed, but the group is not settled
    yet (members joining, a rebalance): judging is about to start."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one check, for the decision log."""

    at: float
    effective: bool
    detail: str


@dataclass(frozen=True, slots=True)
class EffectivenessState:
    """What the target knows about whether scaling up helps."""

    recent: tuple[tuple[float, float, float, int], ...] = ()
    """The saturated polls of the last evaluation window: (time, messages/s, seconds, the
    replicas the group consumed with)."""
    previous_at: float | None = None
    check: Check | None = None
    ineffective: int = 0
    """Ineffective scale-ups in a row."""
    stopped_at: float | None = None
    """When scale-ups were stopped (None: they are not)."""
    verdict: Verdict | None = None
    """The last check's outcome."""
    partitions: int | None = None
    """The group's partitions at the last poll that saw them."""
    starting: tuple[float, int] | None = None
    """The last scale-up whose replicas do not all consume yet: (patched at, replicas)."""
    saturated: bool = False
    """Whether the group was saturated at the last poll."""
    consuming: int | None = None
    """The replicas the group consumed with at the last poll (all ready, members with their
    partitions; None: it did not, or unknown). A poll's rate is that count's only when the
    poll before consumed with the same count: its whole interval did."""


class GroupPoll(NamedTuple):
    """The Kafka triggers of one poll, summed: the whole group's work (built every poll: a
    named tuple costs a third of a frozen dataclass)."""

    backlog: float
    processing_rate: float | None
    partitions: int
    groups: tuple[tuple[int | None, int, bool], ...] = ()
    """Per Kafka trigger: its group's members (None: unknown), partitions, and whether it
    is rebalancing."""

    def settled(self, replicas: int) -> bool:
        """Every group has the members to use ``replicas`` (one per partition at most) and
        its assignment: only then does the rate say what that many replicas do."""
        for members, partitions, rebalancing in self.groups:
            if not consumes_with(replicas, members, partitions, rebalancing):
                return False
        return True

    @property
    def saturated(self) -> bool:
        rate = self.processing_rate
        return (
            rate is not None
            and self.backlog > 0
            and self.backlog > rate * SATURATED_BACKLOG_SECONDS
        )

    @classmethod
    def of(cls, observations: Sequence[KafkaLagObservation]) -> GroupPoll | None:
        if not observations:
            return None
        if len(observations) == 1:  # the usual target: one Kafka trigger, nothing to sum
            only = observations[0]
            rate = only.processing_rate
            return cls(
                backlog=float(max(0, only.total_lag - max(0, only.persistent_lag))),
                processing_rate=None if rate is None else 0 + (rate or 0.0),  # as ``sum``
                partitions=only.partition_count,
                groups=((only.members, only.partition_count, bool(only.rebalancing)),),
            )
        rates = [o.processing_rate for o in observations]
        return cls(
            backlog=float(
                sum(max(0, o.total_lag - max(0, o.persistent_lag)) for o in observations)
            ),
            processing_rate=None if any(r is None for r in rates) else sum(r or 0.0 for r in rates),
            partitions=sum(o.partition_count for o in observations),
            groups=tuple((o.members, o.partition_count, bool(o.rebalancing)) for o in observations),
        )


def window_seconds(config: ScalingEffectivenessConfig, poll_interval: float) -> float:
    """How long a rate is pooled over: the configured window, at least two polls."""
    return max(config.evaluation_seconds, 2 * poll_interval)


def observed(
    state: EffectivenessState,
    config: ScalingEffectivenessConfig,
    *,
    now: float,
    poll_interval: float,
    startup_seconds: float,
    ready: int | None,
    group: GroupPoll | None,
) -> EffectivenessState:
    """The state after a poll at ``now``."""
    if not config.enabled:
        return state
    elapsed = None if state.previous_at is None else now - state.previous_at
    window = window_seconds(config, poll_interval)
    recent = state.recent
    consuming = ready if group is not None and ready is not None and group.settled(ready) else None
    # A paused or joining group's rate is not its capacity: only a poll whose whole interval
    # consumed with one count says what that count does.
    throughout = consuming if consuming == state.consuming else None
    saturated = state.saturated if group is None else group.saturated
    if (
        group is not None
        and saturated
        and throughout is not None
        and elapsed is not None
        and elapsed > 0
    ):
        assert group.processing_rate is not None
        recent = (*recent, (now, group.processing_rate, elapsed, throughout))
    recent = _after(recent, now - window)
    starting = state.starting
    if starting is not None and (
        now >= starting[0] + 2 * startup_seconds + window
        or (throughout is not None and throughout >= starting[1])
    ):
        starting = None
    stopped_at, ineffective = state.stopped_at, state.ineffective
    if stopped_at is not None and now - stopped_at >= config.cooldown_seconds:
        # The cool-down is over: one more try, on probation.
        stopped_at, ineffective = None, max(0, config.max_ineffective - 1)
    partitions = state.partitions if group is None else group.partitions
    base = EffectivenessState(
        recent,
        now,
        state.check,
        ineffective,
        stopped_at,
        state.verdict,
        partitions,
        starting,
        saturated,
        consuming,
    )
    check = state.check
    if check is None or group is None or ready is None:
        return base
    if now - check.patched_at > GIVE_UP_SECONDS:
        return _with(base, check=None)
    if check.ready_at is None:
        if ready >= check.after and now >= check.patched_at + startup_seconds:
            if group.settled(check.after):
                # The capacity changed: the rate a later scale-up starts from is measured anew.
                return dataclasses.replace(
                    base, check=dataclasses.replace(check, ready_at=now), recent=()
                )
            if not check.settling:
                return _with(base, check=dataclasses.replace(check, settling=True))
        return base
    if not saturated:
        detail = f"{check.before} -> {check.after} replicas: the backlog cleared"
        return _judged(base, config, Verdict(now, True, detail))
    if elapsed is None or state.previous_at is None or state.previous_at < check.ready_at:
        return base
    assert group.processing_rate is not None
    pooled = check.after_ready.add(group.processing_rate, elapsed)
    busy_before = min(check.before, check.partitions)
    busy_after = min(check.after, check.partitions)
    if busy_before <= 0 or busy_after <= busy_before:
        return _with(base, check=None)  # no rise to expect (the partitions cap it)
    expected = check.rate_before * (busy_after / busy_before - 1.0)
    rise = pooled.rate - check.rate_before
    effective = rise >= config.threshold * expected
    if pooled.seconds < window and not effective:
        return _with(base, check=dataclasses.replace(check, after_ready=pooled))
    detail = (
        f"{check.before} -> {check.after} replicas: processing {check.rate_before:.4g} -> "
        f"{pooled.rate:.4g} msg/s, expected about +{expected:.4g} "
        f"(at least {config.threshold:g} of it)"
    )
    return _judged(base, config, Verdict(now, effective, detail))


def started(
    state: EffectivenessState,
    config: ScalingEffectivenessConfig,
    old_replicas: int,
    new_replicas: int,
    now: float,
) -> EffectivenessState:
    """The state after the replica count really changed at ``now``."""
    if not config.enabled:
        return state
    if new_replicas < old_replicas:
        return _rescaled(state, check=None, starting=None)
    if new_replicas == old_replicas:
        return state
    state = _rescaled(state, check=state.check, starting=(now, new_replicas))
    check = state.check
    if check is not None:  # checked with the one in flight, from its rate and count
        merged = Check(
            check.patched_at, check.before, new_replicas, check.rate_before, check.partitions
        )
        return _with(state, check=merged)
    latest = state.recent[-1][0] if state.recent else None
    partitions = state.partitions
    if latest is None or latest != state.previous_at or partitions is None:
        return state  # not saturated at the last poll: the rate says nothing of capacity
    pooled = Pooled()
    for _, rate, seconds, consuming in state.recent:
        if consuming == old_replicas:
            pooled = pooled.add(rate, seconds)
    if pooled.seconds <= 0:
        return state  # no capacity measured at the count it scales from
    return _with(state, check=Check(now, old_replicas, new_replicas, pooled.rate, partitions))


def scale_up_hold(state: EffectivenessState, config: ScalingEffectivenessConfig) -> str | None:
    """Why scale-ups are held now, or None: stopped after ineffective ones, judging the last
    one, on probation while a scale-up after an ineffective one is being checked, or a
    saturated group's last scale-up not consuming yet."""
    if not config.enabled:
        return None
    if state.stopped_at is not None:
        until = state.stopped_at + config.cooldown_seconds
        return (
            f"{state.ineffective} scale-ups in a row did not raise the processing rate: "
            f"no scale-up until {until:.0f} (cool-down {config.cooldown_seconds:g}s)"
        )
    check = state.check
    if check is not None and (check.ready_at is not None or check.settling):
        return "waiting to see whether the last scale-up raised the processing rate"
    if state.ineffective > 0 and check is not None:
        return "the last scale-up did not raise the processing rate: waiting for this one's"
    if state.starting is not None and state.saturated:
        return (
            f"the last scale-up's replicas ({state.starting[1]}) do not all consume yet: "
            "the backlog waits for what they bring to be measured"
        )
    return None


def _after(
    recent: tuple[tuple[float, float, float, int], ...], start: float
) -> tuple[tuple[float, float, float, int], ...]:
    """The polls of ``recent`` after ``start`` (``recent`` itself when all are: most polls
    drop none)."""
    for poll in recent:
        if poll[0] <= start:
            return tuple(r for r in recent if r[0] > start)
    return recent


def _rescaled(
    state: EffectivenessState, *, check: Check | None, starting: tuple[float, int] | None
) -> EffectivenessState:
    """``dataclasses.replace(state, check=check, starting=starting)``, spelled out: it runs
    at every scale, and ``replace`` costs twice as much."""
    return EffectivenessState(
        recent=state.recent,
        previous_at=state.previous_at,
        check=check,
        ineffective=state.ineffective,
        stopped_at=state.stopped_at,
        verdict=state.verdict,
        partitions=state.partitions,
        starting=starting,
        saturated=state.saturated,
        consuming=state.consuming,
    )


def _with(state: EffectivenessState, *, check: Check | None) -> EffectivenessState:
    return dataclasses.replace(state, check=check)


def _judged(
    state: EffectivenessState, config: ScalingEffectivenessConfig, verdict: Verdict
) -> EffectivenessState:
    if verdict.effective:
        return dataclasses.replace(
            state, check=None, ineffective=0, stopped_at=None, verdict=verdict
        )
    ineffective = state.ineffective + 1
    stopped_at = verdict.at if ineffective >= config.max_ineffective else None
    return dataclasses.replace(
        state, check=None, ineffective=ineffective, stopped_at=stopped_at, verdict=verdict
    )
