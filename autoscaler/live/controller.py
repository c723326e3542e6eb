"""One target's poll: gather observations, read the scale, run the poll step, actuate (the
imperative shell around the pure ``autoscaler.decision.poll_step``).

A ``TargetController`` is owned by its target's supervised task and called once per poll.
It never lets a source or the API crash the poll: sources answer ``Unavailable``; an API
error is logged and reported in the outcome, and nothing is recorded as a scale event unless
the patch succeeded (the rate policies count real changes only, as the HPA's do).

Patching happens only when all of these hold: the decision changed the count, no HPA or
KEDA ScaledObject scales the same workload (``conflicts.py``; and that could be checked), the
target is not in dry-run (forecast-only), this instance is the leader, and the workload is
not paused (``autoscaler.io/paused``; ``autoscaler.io/paused-replicas: N`` pins the count
instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, cast

import structlog

from autoscaler.config.model import PrometheusTrigger, TargetConfig
from autoscaler.decision import (
    Decision,
    Forecast,
    Forecaster,
    Observation,
    PollInputs,
    PollResult,
    PollState,
    Unavailable,
    poll_step,
    refits_due,
    scaled,
)
from autoscaler.decision.budget import budget_report
from autoscaler.decision.effectiveness import scale_up_hold
from autoscaler.live.actuator import ActuatorError, ScaleActuator, ScaleState
from autoscaler.live.conflicts import Conflict, ConflictChecker
from autoscaler.live.fit_pool import FitPool
from autoscaler.live.memory import release_free_memory
from autoscaler.live.startup_probe import GroupProbe, StartupProbe
from autoscaler.observability.decision_log import log_decision, missing_data
from autoscaler.observability.repeats import RepeatedFailure
from autoscaler.sources.prometheus import PrometheusSource
from predictors.forecaster import SeriesForecaster

_log = structlog.get_logger("autoscaler.live.controller")


class TriggerSource(Protocol):
    """What a trigger's source gives the controller: one observation per poll."""

    async def poll(self, now: float) -> Observation: ...


@dataclass
class PrometheusTriggerSource:
    """A Prometheus trigger as a ``TriggerSource`` (the source is shared per server)."""

    source: PrometheusSource
    trigger: PrometheusTrigger

    async def poll(self, now: float) -> Observation:
        return await self.source.instant(self.trigger, now)


@dataclass(frozen=True)
class StepOutcome:
    """What one poll did, with what it saw: the service exports and reports it."""

    decision: Decision | None
    patched: bool
    held_because: str | None = None
    """Why a changed decision was not applied (dry-run, follower, paused, API error)."""
    observations: Mapping[str, Observation] = field(default_factory=dict)
    forecasts: Mapping[str, Forecast] = field(default_factory=dict)
    api_error: str | None = None
    """The kind of API failure (``ActuatorError.kind``) when reading or patching the scale
    failed."""
    at: float | None = None
    """The poll's time."""
    conflict: str | None = None
    """Another owner of the workload (``HorizontalPodAutoscaler shop/orders``): while there
    is one the target is never patched."""


def _consuming(scale: ScaleState) -> int:
    """Replicas that consume now: the workload's ready pods (the scale's status counts
    starting ones too, which would overstate the capacity while a scale-up starts)."""
    return scale.status_replicas if scale.ready_replicas is None else scale.ready_replicas


def _log_failure(state: RepeatedFailure, event: str, error: ActuatorError, now: float) -> None:
    how = state.failed(str(error), now)
    if how == "new":
        _log.warning(event, error=str(error), temporary=error.temporary)
    elif how == "summary":
        _log.warning(
            event,
            error=str(error),
            temporary=error.temporary,
            still_failing_for_seconds=round(now - state.since),
            occurrences=state.count,
        )


def _log_recovery(state: RepeatedFailure, event: str, now: float) -> None:
    ended = state.recovered(now)
    if ended is not None:
        error, count, seconds = ended
        _log.info(event, after_seconds=round(seconds), occurrences=count, last_error=error)


@contextlib.asynccontextmanager
async def _always_allowed() -> AsyncIterator[bool]:
    yield True


class TargetController:
    """Observe, run the poll step and actuate one target, poll after poll."""

    def __init__(
        self,
        target: TargetConfig,
        sources: Mapping[str, TriggerSource],
        forecasters: Mapping[str, Forecaster],
        actuator: ScaleActuator,
        is_leader: Callable[[], bool] = lambda: True,
        *,
        refits: asyncio.Semaphore | None = None,
        fit_pool: FitPool | None = None,
        conflicts: ConflictChecker | None = None,
        startup_probe_interval: float | None = None,
        patch_guard: Callable[[], contextlib.AbstractAsyncContextManager[bool]] | None = None,
    ) -> None:
        self.target = target
        self.patch_guard = patch_guard
        """Around each patch (sharding's fence): yields whether the patch may go ahead, and
        keeps this target's shard from being handed over until the patch is done. None:
        ``is_leader`` alone decides."""
        self.conflicts = conflicts
        """Asked before every patch; None: no check (tests of the decision path only)."""
        self._conflict: Conflict | None = None
        self.sources = dict(sources)
        self.forecasters = dict(forecasters)
        self.actuator = actuator
        self.is_leader = is_leader
        self.state = PollState()
        """A config reload that keeps the workload carries it over to the new controller,
        so stabilization, rate policies and the learned throughput keep their history."""
        self.refits = refits
        """Shared by every target: how many model fits may run at once. A fit that finds
        no free slot waits for a later poll (the current model keeps forecasting), so
        hundreds of targets due at once neither starve the CPU nor stall their polls."""
        self.fit_pool = fit_pool
        """Where refits run (worker processes); None: a worker thread of this process."""
        self.last: StepOutcome | None = None
        self.last_result: PollResult | None = None
        """The poll step's last answer (with the learned throughput), for reports."""
        self._in_thread: asyncio.Future[PollResult] | None = None
        # An API outage is logged when it starts, changes or ends (and every few minutes
        # while it lasts), not at every poll.
        self._read_failures = RepeatedFailure()
        self._patch_failures = RepeatedFailure()
        self._conflict_failures = RepeatedFailure()
        self._missing_data: frozenset[str] = frozenset()
        """The triggers the last decision had no data for: a decision warns only about
        those that went missing since (an outage is warned about once, not every poll)."""
        self._planner_states: dict[str, str] = {}
        """Per trigger: ``planned``, or why the last decision could not plan."""
        self.probe: StartupProbe | None = None
        """Times this target's scale-ups between polls (``startup_probe``), on the wall
        clock the service's polls use; None: the poll step's own estimate alone (tests
        and benchmarks on a simulated clock)."""
        if startup_probe_interval is not None:
            self.probe = StartupProbe(
                self._ready_now,
                [s for s in self.sources.values() if isinstance(s, GroupProbe)],
                time.time,
                startup_probe_interval,
            )
        self._permanent: dict[str, ActuatorError] = {}
        """Per kind of call (read, patch): the failure in force when no retry can mend it
        (forbidden, rejected credentials): readiness reports it."""

    def _note_planner(self, decision: Decision) -> None:
        """The planner's state per trigger, logged when it changes, not at every poll: a
        trigger sized for want of a plan (``planner_fallback``, warning; expected once at
        start-up, until a forecast path and the throughput are known) and planned again
        (``planner_resumed``). Each decision line says it too."""
        for rec in decision.triggers:
            if rec.plan is None and rec.plan_fallback is None:
                continue  # not a planning trigger, or its data is missing
            state = rec.plan_fallback if rec.plan_fallback is not None else "planned"
            previous = self._planner_states.get(rec.trigger)
            self._planner_states[rec.trigger] = state
            if state == previous or (previous is None and state == "planned"):
                continue
            if state == "planned":
                _log.info("planner_resumed", trigger=rec.trigger, after=previous)
            else:
                _log.warning("planner_fallback", trigger=rec.trigger, reason=state)

    async def step(self, now: float) -> StepOutcome:
        """One poll at ``now`` (the loop's clock; the same clock for every poll)."""
        with structlog.contextvars.bound_contextvars(target=self.target.name):
            outcome = await self._step(now)
        self.last = outcome
        return outcome

    async def _step(self, now: float) -> StepOutcome:
        target = self.target
        names = list(target.trigger_names)
        polled = await asyncio.gather(*(self._poll(name, now) for name in names))
        observations: dict[str, Observation] = dict(zip(names, polled, strict=True))
        scale: ScaleState | None = None
        unreadable: ActuatorError | None = None
        try:
            scale = await self.actuator.read(target)
        except ActuatorError as error:
            _log_failure(self._read_failures, "scale_unreadable", error, now)
            self._note_failure("read", error)
            unreadable = error
        else:
            _log_recovery(self._read_failures, "scale_readable_again", now)
            self._permanent.pop("read", None)
        # The step runs even when the scale cannot be read: forecasters and the throughput
        # estimate keep learning, and accuracy keeps being scored, through an API outage.
        inputs = PollInputs(
            at=now,
            observations=observations,
            current_replicas=None if scale is None else scale.spec_replicas,
            ready_replicas=None if scale is None else _consuming(scale),
            # Paused, or led elsewhere: the replicas running are not these decisions'.
            acting=scale is not None and not scale.paused and self.is_leader(),
            startup_timings=() if self.probe is None else self.probe.take(),
        )
        previous = self.state
        result = await self._poll_step(inputs)
        self.state = result.state
        self.last_result = result
        await self._note_learning(previous, result.state)

        conflict, unchecked = (None, None) if scale is None else await self._check(now)

        def outcome(
            decision: Decision | None,
            patched: bool,
            held_because: str | None = None,
            api_error: str | None = None,
        ) -> StepOutcome:
            return StepOutcome(
                decision,
                patched,
                held_because,
                observations,
                result.forecasts,
                api_error,
                now,
                None if conflict is None or conflict.external_scaler else str(conflict),
            )

        if scale is None or result.decision is None:
            assert unreadable is not None
            return outcome(None, False, str(unreadable), unreadable.kind)
        decision = result.decision
        budget = budget_report(target, result.state.budget)
        extra: dict[str, object] = {"slo_budget": budget} if budget else {}
        if conflict is not None:
            extra["actuated_by_keda" if conflict.external_scaler else "conflict"] = str(conflict)
        log_decision(
            target.name,
            decision,
            dry_run=target.dry_run,
            missing_before=self._missing_data,
            leader=self.is_leader(),
            **extra,
        )
        self._missing_data = missing_data(decision)
        self._note_planner(decision)

        desired = decision.desired_replicas
        if scale.paused:
            if scale.paused_replicas is None or scale.paused_replicas == scale.spec_replicas:
                return outcome(decision, False, "paused")
            desired = scale.paused_replicas  # pinned by autoscaler.io/paused-replicas
        elif not decision.changed:
            return outcome(decision, False)
        if conflict is not None and conflict.external_scaler:
            return outcome(decision, False, f"actuated by KEDA through {conflict}")
        if conflict is not None:
            return outcome(decision, False, f"conflict: {conflict} scales this workload too")
        if unchecked is not None:
            return outcome(decision, False, f"conflict check failed: {unchecked}", unchecked.kind)
        if target.dry_run:
            return outcome(decision, False, "dry-run")
        if not self.is_leader():
            return outcome(decision, False, "not the leader")
        guard = self.patch_guard() if self.patch_guard is not None else _always_allowed()
        async with guard as allowed:
            if not allowed:
                return outcome(decision, False, "its shard's Lease is not held")
            try:
                patched = await self.actuator.scale(
                    target, desired, expected_current=scale.spec_replicas
                )
            except ActuatorError as error:
                _log_failure(self._patch_failures, "scale_failed", error, now)
                self._note_failure("patch", error)
                return outcome(decision, False, str(error), error.kind)
        _log_recovery(self._patch_failures, "scale_patched_again", now)
        self._permanent.pop("patch", None)
        if patched.outcome != "scaled":
            return outcome(decision, False, patched.outcome)
        self.state = scaled(target, self.state, scale.spec_replicas, desired, now)
        if self.probe is not None:
            self.probe.scaled(scale.spec_replicas, desired, now)
        await self.actuator.event(
            target,
            reason="Rescaled" if not scale.paused else "PausedReplicas",
            message=f"{scale.spec_replicas} -> {desired} replicas: {decision.reason}",
        )
        return outcome(decision, True)

    async def _note_learning(self, before: PollState, after: PollState) -> None:
        """What the poll step measured, said when it changes: a start-up sample, a
        scale-up's verdict, scale-ups stopped (a warning and a Warning Event, once, by the
        leader) or tried again."""
        samples = after.startup.consuming_samples
        if samples and samples != before.startup.consuming_samples:
            _log.info(
                "startup_measured",
                consuming_seconds=samples[-1],
                ready_seconds=after.startup.ready_samples[-1]
                if after.startup.ready_samples
                else None,
                measured_p90=after.startup.measured,
                samples=len(samples),
                configured=self.target.startup_configured,
            )
        verdict = after.effectiveness.verdict
        if verdict is not None and verdict != before.effectiveness.verdict:
            _log.info("scale_up_judged", effective=verdict.effective, detail=verdict.detail)
        stopped, was = after.effectiveness.stopped_at, before.effectiveness.stopped_at
        if stopped is not None and was is None:
            why = scale_up_hold(after.effectiveness, self.target.scaling_effectiveness) or ""
            detail = why if verdict is None else f"{why}; last: {verdict.detail}"
            _log.warning("scaling_ineffective", detail=detail)
            if self.is_leader():
                await self.actuator.event(self.target, "IneffectiveScaling", detail, type="Warning")
        elif stopped is None and was is not None:
            _log.info(
                "scaling_retry",
                detail="the cool-down is over: one scale-up is tried again, on probation",
            )

    async def _check(self, now: float) -> tuple[Conflict | None, ActuatorError | None]:
        """Another owner of the workload, or why that cannot be known this poll. A new
        conflict is a warning and a Warning Event (once, by the leader); its end is said."""
        if self.conflicts is None:
            return None, None
        try:
            conflict = await self.conflicts.find(self.target, now)
        except ActuatorError as error:
            _log_failure(self._conflict_failures, "conflict_check_failed", error, now)
            self._note_failure("conflict check", error)
            return None, error
        _log_recovery(self._conflict_failures, "conflict_check_works_again", now)
        self._permanent.pop("conflict check", None)
        previous, self._conflict = self._conflict, conflict
        if conflict is not None and conflict.external_scaler:
            if conflict != previous:
                _log.info(
                    "actuated_by_keda",
                    scaled_object=str(conflict),
                    detail="its triggers are external scalers: KEDA applies the decisions",
                )
        elif conflict is not None and conflict != previous:
            why = (
                f"{conflict} also scales {self.target.scale_target_ref.kind} "
                f"{self.target.namespace}/{self.target.scale_target_ref.name}: this target "
                "will not patch it while it exists (remove one of the two)"
            )
            _log.warning("scale_conflict", conflict=str(conflict), detail=why)
            if self.is_leader():
                await self.actuator.event(self.target, "Conflict", why, type="Warning")
        elif conflict is None and previous is not None:
            _log.info("scale_conflict_resolved", previous=str(previous))
        return conflict, None

    def _note_failure(self, call: str, error: ActuatorError) -> None:
        if error.temporary:
            self._permanent.pop(call, None)
        else:
            self._permanent[call] = error

    def kubernetes_failures(self) -> dict[str, tuple[str, int]]:
        """Per kind of call (``read``, ``patch``): a failure no retry can mend (forbidden,
        rejected credentials), and how many polls in a row met it."""
        counts = {
            "read": self._read_failures.count,
            "patch": self._patch_failures.count,
            "conflict check": self._conflict_failures.count,
        }
        return {call: (str(error), counts[call]) for call, error in self._permanent.items()}

    async def _poll_step(self, inputs: PollInputs) -> PollResult:
        """The pure step; in a worker thread when it refits (heavy), so other targets keep
        their polls, under the shared fit slots. With every slot busy the refit waits for a
        later poll and the current models forecast."""
        if not refits_due(self.forecasters, inputs.at):
            return poll_step(self.target, inputs, self.forecasters, self.state)
        if self.refits is not None and self.refits.locked():
            return poll_step(self.target, inputs, self.forecasters, self.state, refit=False)
        if self.fit_pool is not None:
            refitted = await self._refit_in_pool(self.fit_pool, inputs.at)
            if refitted is not None:
                result = poll_step(self.target, inputs, self.forecasters, self.state, refit=False)
                return dataclasses.replace(result, refitted=refitted)
        slots = self.refits
        if slots is not None:
            await slots.acquire()
        work = asyncio.ensure_future(
            asyncio.to_thread(poll_step, self.target, inputs, self.forecasters, self.state)
        )
        # The thread cannot be cancelled: if this task is (a reload, a stop), the fit goes
        # on, holding its slot and the forecasters, until it ends (``settle``).
        work.add_done_callback(lambda _: self._fitted(slots))
        self._in_thread = work
        return await asyncio.shield(work)

    async def _refit_in_pool(self, pool: FitPool, now: float) -> tuple[str, ...] | None:
        """Refit the due models in ``pool`` (under a fit slot) and adopt them: the triggers
        refitted, or None when the pool cannot (a forecaster of another kind, a broken pool:
        then the step refits in a thread, as without a pool)."""
        due = {name: f for name, f in self.forecasters.items() if f.refit_due(now)}
        if not all(isinstance(f, SeriesForecaster) for f in due.values()):
            return None
        series = cast(dict[str, SeriesForecaster], due)
        slots = self.refits
        try:
            if slots is not None:
                await slots.acquire()
            try:
                models = await pool.refit([f.refit_inputs() for f in series.values()])
            finally:
                if slots is not None:
                    slots.release()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            _log.warning("refit_in_pool_failed", target=self.target.name, error=repr(error))
            return None
        for forecaster, model in zip(series.values(), models, strict=True):
            forecaster.adopt(model, now)
        return tuple(series)

    def _fitted(self, slots: asyncio.Semaphore | None) -> None:
        if slots is not None:
            slots.release()
        # Give the fit's freed temporaries back to the OS (a daily refit of every target
        # would otherwise keep the heap at its peak).
        release_free_memory()

    async def aclose(self) -> None:
        """End what runs beside the polls (the start-up probe)."""
        if self.probe is not None:
            await self.probe.aclose()

    async def _ready_now(self) -> int | None:
        """The workload's consuming replicas now (for the start-up probe)."""
        return _consuming(await self.actuator.read(self.target))

    async def settle(self) -> None:
        """Wait until no step of this controller runs in a worker thread any more: a
        controller that takes over its forecasters must not share them with a running fit."""
        work = self._in_thread
        if work is not None and not work.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(work)

    async def _poll(self, name: str, now: float) -> Observation:
        source = self.sources.get(name)
        if source is None:
            return Unavailable(now, "no source for this trigger")
        try:
            return await source.poll(now)
        except Exception as error:  # a source must not raise; if one does, it is data loss
            _log.error("source_raised", trigger=name, error=repr(error))
            return Unavailable(now, f"source error: {error!r}")
