"""Start-up time, measured: from a scale-up's patch to the new replicas consuming.

``startup_seconds`` drives the lead time, the planner's start-up steps and the backlog a
scale-up must drain once ready. Users guess it, and guess wrong: a pod may be ready in 5 s
and its consumer get partitions 20 s later, after the group's rebalance. Flink's autoscaler
measures its restart time instead of trusting a setting; so does this, per target:

* a scale-up that really happened (``started``, after a successful patch) opens a
  measurement: its time and the count it asked for;
* each poll after it (``observed``) checks the workload's ready replicas (``ready``) and
  the consumer group's members (``consuming``: ready, and every Kafka trigger's group has
  at least that many members, or one per partition, and is not rebalancing; a source that
  cannot tell leaves readiness alone to say it);
* the moment a stage is reached is only known to lie between the previous poll and this
  one: the sample is the midpoint (an error of at most half a poll interval). The live
  service times its scale-ups between polls too (``live.startup_probe``, every second or
  so), and such a timing (``timed``) replaces the poll's estimate of the same scale-up;
* a scale-down before the new replicas consumed, or a newer scale-up, drops the
  measurement (it would time something else); one that never completes is dropped after
  ``GIVE_UP_SECONDS``.

The last ``KEPT_SAMPLES`` samples of each stage are kept; the ``PERCENTILE`` of the
consuming samples (once there are ``MIN_SAMPLES``) is the measured start-up, which the
poll step uses where the config sets no ``startup_seconds`` (a configured value wins).
Pure: a value in, a value out; the time is the caller's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from autoscaler.decision.types import KafkaLagObservation

KEPT_SAMPLES = 20
"""Samples kept per stage: the measured value follows a workload whose start-up changes
(a new image, a bigger group) within a few scale-ups."""
MIN_SAMPLES = 3
"""Consuming samples before the measured value is used (one slow pull is not the rule)."""
PERCENTILE = 90.0
"""Of the consuming samples: a start-up usually as short as this (the p90, not the mean:
planning on the mean start-up is late half the time)."""
GIVE_UP_SECONDS = 1800.0
"""A scale-up whose replicas never all consume (a Pending pod, a crash loop) is not a
start-up time: after this long the measurement is dropped."""


@dataclass(frozen=True, slots=True)
class StartupTiming:
    """A scale-up timed by the live shell between polls (``live.startup_probe``): finer than
    a poll can see."""

    patched_at: float
    replicas: int
    ready_at: float
    consuming_at: float


@dataclass(frozen=True, slots=True)
class PendingStartup:
    """A scale-up being timed."""

    patched_at: float
    replicas: int
    """The count the scale-up asked for."""
    ready_at: float | None = None
    """When all of them were ready (estimated), once they were."""
    last_poll_at: float | None = None
    """The previous poll since the patch (the stage was not reached then)."""


@dataclass(frozen=True, slots=True)
class StartupState:
    """What the target has measured of its start-up so far."""

    pending: PendingStartup | None = None
    ready_samples: tuple[float, ...] = ()
    """Seconds from a scale-up's patch to ``readyReplicas`` reaching its count."""
    consuming_samples: tuple[float, ...] = ()
    """Seconds from the patch to the group consuming with them (rebalance included)."""

    @property
    def measured(self) -> float | None:
        """The measured start-up (the consuming samples' p90), None until ``MIN_SAMPLES``."""
        return (
            percentile(self.consuming_samples)
            if len(self.consuming_samples) >= MIN_SAMPLES
            else None
        )

    @property
    def measured_ready(self) -> float | None:
        """The same percentile of the ready samples (for reports: pod start-up alone)."""
        return percentile(self.ready_samples) if len(self.ready_samples) >= MIN_SAMPLES else None


def percentile(samples: Iterable[float], q: float = PERCENTILE) -> float:
    """The ``q``-th percentile by linear interpolation between ranks (numpy's default)."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def started(state: StartupState, old_replicas: int, new_replicas: int, now: float) -> StartupState:
    """The state after the replica count really changed at ``now``: a scale-up is timed
    from now (a newer one replaces the one being timed); a scale-down drops it."""
    if new_replicas > old_replicas:
        return StartupState(
            PendingStartup(now, new_replicas), state.ready_samples, state.consuming_samples
        )
    if new_replicas == old_replicas or state.pending is None:
        return state
    return StartupState(None, state.ready_samples, state.consuming_samples)


def observed(
    state: StartupState,
    now: float,
    ready: int | None,
    kafka: Iterable[KafkaLagObservation],
) -> StartupState:
    """The state after a poll at ``now`` saw ``ready`` replicas and the Kafka triggers'
    observations (their group members)."""
    pending = state.pending
    if pending is None or ready is None or now <= pending.patched_at:
        return state
    if now - pending.patched_at > GIVE_UP_SECONDS:
        return StartupState(None, state.ready_samples, state.consuming_samples)
    since = pending.patched_at if pending.last_poll_at is None else pending.last_poll_at
    at = (since + now) / 2.0
    ready_samples = state.ready_samples
    ready_at = pending.ready_at
    if ready_at is None and ready >= pending.replicas:
        ready_at = at
        ready_samples = _kept(ready_samples, at - pending.patched_at)
    if ready_at is not None and _consuming(pending.replicas, kafka):
        consuming = _kept(state.consuming_samples, at - pending.patched_at)
        return StartupState(None, ready_samples, consuming)
    return StartupState(
        PendingStartup(pending.patched_at, pending.replicas, ready_at, now),
        ready_samples,
        state.consuming_samples,
    )


def timed(state: StartupState, timings: Iterable[StartupTiming]) -> StartupState:
    """The state with the shell's timings as samples: each replaces the poll step's own
    estimate of the same scale-up (pending, or already sampled at this poll)."""
    for timing in timings:
        ready = _kept(state.ready_samples, timing.ready_at - timing.patched_at)
        consuming = _kept(state.consuming_samples, timing.consuming_at - timing.patched_at)
        pending = state.pending
        if pending is not None and pending.patched_at == timing.patched_at:
            pending = None
        state = StartupState(pending, ready, consuming)
    return state


def consumes_with(
    replicas: int, members: int | None, partitions: int, rebalancing: bool | None
) -> bool:
    """Whether a group consumes with ``replicas``: it is not rebalancing (joined members
    wait for their assignment) and has the members to use them (at most one per
    partition consumes). Unknown members or state do not say no."""
    if rebalancing:
        return False
    return members is None or members >= min(replicas, partitions)


def _consuming(replicas: int, kafka: Iterable[KafkaLagObservation]) -> bool:
    """Every Kafka trigger's group consumes with the new replicas."""
    return all(consumes_with(replicas, o.members, o.partition_count, o.rebalancing) for o in kafka)


def _kept(samples: tuple[float, ...], sample: float) -> tuple[float, ...]:
    return (*samples[-(KEPT_SAMPLES - 1) :], max(0.0, sample))
