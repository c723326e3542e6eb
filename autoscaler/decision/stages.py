"""The stages of ``decide``: small pure functions, folded over in order.

Each stage takes the :class:`DecisionContext` (everything fixed for this decision) and the
:class:`Step` the stage before it returned (the replicas so far), and returns its own
``Step``: the replicas it leaves, the bounds it applied (the reasons users read), whether it
ends the pipeline, and any state it updated. No stage appends to a shared list, reads a
clock or sees another stage's bounds.

The stages, in order (``STAGES``):

1. ``combine``: the triggers' recommendations -> the raw recommendation. With any trigger
   missing, never below the current count (the HPA: missing data never scales down).
2. ``idle_or_activation`` (KEDA): from the idle count, an active trigger activates the
   target straight to its recommendation; with every trigger known and inactive for
   ``cooldown_seconds``, the target goes to the idle count. Either ends the pipeline.
3. ``limits`` (the HPA): a current count outside [min, max] (the partition cap lowers the
   max) is brought inside at once, which ends the pipeline.
4. ``stabilize`` (the HPA): the stabilization windows; records the recommendation.
5. ``plan_floor``: a planned trigger's first step floors the stabilized count (planned
   scale-downs are announced to the window ahead of time; see ``planner``).
6. ``rate`` (the HPA): the rate policies, then [min, max].
7. ``hold_scale_up``: no scale-up while scale-ups are found not to raise the processing
   rate (``effectiveness``); the target keeps the replicas it has.
8. ``dwell_and_min_step``: rebalance-aware actuation: no change within ``min_dwell_seconds``
   of the previous one, none smaller than ``min_step`` unless it reaches a limit.

Planning or sizing comes before the stages, per trigger (``core._recommend``): a plan needs
the trigger's own backlog, forecast path and partitions.

Then ``note_min_above_cap`` closes every decision but an idle one: it records that the
partition cap holds the target below ``min_replicas``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from autoscaler.config.model import TargetConfig
from autoscaler.decision import hpa
from autoscaler.decision.types import Bound, DecisionState, Rule, TriggerRecommendation


class DecisionContext(NamedTuple):
    """Everything fixed for one decision: what the stages read and never change.

    A named tuple, as ``Step`` (below) and for the same reason: one is built every
    decision."""

    target: TargetConfig
    state: DecisionState
    """The state from the previous decision (stages return what they update)."""
    now: float
    current: int
    ready: int
    """Ready replicas (the current count when unknown); for sizing, not read by a stage yet."""
    recommendations: tuple[TriggerRecommendation, ...]
    cap: int | None
    """The target's partition cap; None without one or with a partition count unknown."""
    max_allowed: int
    """``max_replicas``, lowered to the partition cap."""
    min_allowed: int
    """The floor while active (``active_min_replicas``), never above ``max_allowed``."""
    any_active: bool
    all_inactive: bool
    last_active_at: float
    """When a trigger was last active: now if one is, else the state's (now on the first)."""
    scale_up_hold: str | None = None
    """Why no scale-up may happen now (scaling found ineffective), or None."""

    @classmethod
    def of(
        cls,
        target: TargetConfig,
        state: DecisionState,
        now: float,
        *,
        current: int,
        ready: int,
        recommendations: Sequence[TriggerRecommendation],
        caps: Sequence[int | None],
        scale_up_hold: str | None = None,
    ) -> DecisionContext:
        """The context from the triggers' recommendations and the Kafka triggers' caps."""
        cap = overall_cap(caps)
        max_allowed = target.max_replicas if cap is None else min(target.max_replicas, cap)
        any_active, all_inactive = _activity(recommendations)
        last_active = state.last_active_at
        return cls(
            target,
            state,
            now,
            current,
            ready,
            tuple(recommendations),
            cap,
            max_allowed,
            min(target.active_min_replicas, max_allowed),
            any_active,
            all_inactive,
            now if any_active or last_active is None else last_active,
            scale_up_hold,
        )


def _activity(recommendations: Sequence[TriggerRecommendation]) -> tuple[bool, bool]:
    """Whether any trigger is active, and whether every one is inactive (unknown is
    neither)."""
    any_active, all_inactive = False, True
    for rec in recommendations:
        if rec.active is True:
            any_active = True
        if rec.active is not False:
            all_inactive = False
    return any_active, all_inactive


class Step(NamedTuple):
    """What one stage made of the replicas so far.

    An immutable value like the others here, but a named tuple rather than a frozen
    dataclass: every decision builds several, and a frozen dataclass's ``__init__`` (one
    ``object.__setattr__`` per field) costs about three times as much as a tuple's."""

    replicas: int
    bounds: tuple[Bound, ...] = ()
    """The rules this stage applied, in order (not the earlier stages')."""
    ends: bool = False
    """The count is decided: no later stage runs (the closing note still does)."""
    idle: bool = False
    """The target is idle or scaling is off: no later stage runs, nor the closing note
    (``min_replicas`` does not apply to an idle target)."""
    rate_limited: bool = False
    """The rate policies cut this change short: it is as big as it may be now."""
    history: tuple[hpa.TimedRecommendation, ...] | None = None
    """The stabilization history after this stage; None when the stage left it alone."""

    @property
    def stops(self) -> bool:
        """No later stage of ``STAGES`` runs after this one."""
        return self.ends or self.idle


Stage = Callable[[DecisionContext, Step], Step]
"""A stage: the context and the previous stage's step -> this stage's step."""


def unchanged(so_far: Step) -> Step:
    """A stage's step that leaves the replicas as they are and applies nothing:
    ``Step(so_far.replicas)``, which is ``so_far`` itself when that is all it says (steps
    are immutable values: most stages leave most decisions alone, and building a new value
    for each costs more than the stage's own arithmetic)."""
    if so_far.bounds or so_far.history is not None or so_far.rate_limited:
        return Step(so_far.replicas)
    if so_far.ends or so_far.idle:  # ``stops``, spelled out: this runs often
        return Step(so_far.replicas)
    return so_far


def overall_cap(caps: Sequence[int | None]) -> int | None:
    """The partition cap of the target: the largest Kafka trigger's, only when every Kafka
    trigger is known and capped (an unknown partition count never lowers replicas)."""
    largest: int | None = None
    for cap in caps:
        if cap is None:
            return None
        if largest is None or cap > largest:
            largest = cap
    return largest


# --------------------------------------------------------------------------- stages


def combine(ctx: DecisionContext, so_far: Step) -> Step:
    """Combine the triggers; with any trigger missing, never below the current count.

    The first stage: ``so_far`` is the current count, which is also what a target with no
    data holds. Triggers in fallback stand for their fallback count whatever the
    combination (KEDA feeds the fallback to the HPA, which takes the max): under ``min`` a
    trigger held at ``current_replicas`` must still hold, not be outvoted by a healthy one.
    """
    current = ctx.current
    if len(ctx.recommendations) == 1:  # the usual target: one trigger, its count
        only = ctx.recommendations[0].replicas
        if only is not None:
            return Step(only)
    live: list[int] = []
    fallbacks: list[int] = []
    missing: list[str] = []
    for r in ctx.recommendations:
        if r.replicas is None:
            missing.append(r.trigger)
        elif r.rule == Rule.FALLBACK:
            fallbacks.append(r.replicas)
        else:
            live.append(r.replicas)
    if not live and not fallbacks:
        return Step(
            current, (Bound(Rule.MISSING_DATA, current, current, "no trigger has data: hold"),)
        )
    if live:
        combined = max(live) if ctx.target.trigger_combination == "max" else min(live)
    else:
        combined = max(fallbacks)
    combined = max(combined, *fallbacks) if fallbacks else combined
    if missing and combined < current:
        detail = f"no scale-down while {', '.join(missing)} has no data"
        return Step(current, (Bound(Rule.MISSING_DATA, combined, current, detail),))
    return Step(combined)


def idle_or_activation(ctx: DecisionContext, so_far: Step) -> Step:
    """KEDA's idle handling, which decides alone when it applies (the HPA is off at idle).

    At zero replicas without an idle count, scaling is disabled (the HPA's rule). At or
    below the idle count, an active trigger activates the target straight to its
    recommendation within [min, max] (no stabilization or rate policy holds an activation);
    every trigger inactive keeps it idle, also from below the idle count (someone scaled the
    workload to 0 while idle_replicas is 1: KEDA sets idleReplicaCount while inactive); and
    unknown activity holds. Above it, every trigger inactive for ``cooldown_seconds`` scales
    to idle.
    """
    raw = so_far.replicas
    current = ctx.current
    idle = ctx.target.idle_replica_count
    if current == 0 and idle is None:
        detail = "replicas are 0 and scale-to-zero is off"
        return Step(0, (Bound(Rule.SCALING_DISABLED, raw, 0, detail),), idle=True)
    if idle is not None and current <= idle:
        if ctx.any_active:
            desired = min(max(raw, ctx.min_allowed), ctx.max_allowed)
            bound = Bound(Rule.ACTIVATION, current, desired, "a trigger is active")
            return Step(desired, (bound,), ends=True)
        if ctx.all_inactive:
            return Step(idle, (Bound(Rule.IDLE, raw, idle, "every trigger inactive"),), idle=True)
        detail = "trigger activity unknown"
        return Step(current, (Bound(Rule.IDLE, raw, current, detail),), idle=True)
    inactive_for = ctx.now - ctx.last_active_at
    if idle is not None and ctx.all_inactive and inactive_for >= ctx.target.cooldown_seconds:
        detail = f"every trigger inactive for {inactive_for:.0f}s"
        return Step(idle, (Bound(Rule.SCALE_TO_IDLE, current, idle, detail),), idle=True)
    return unchanged(so_far)


def limits(ctx: DecisionContext, so_far: Step) -> Step:
    """A current count outside [min, max] is brought inside at once (the HPA), whatever the
    recommendation: no stabilization or rate policy applies to a count out of range. The
    partition cap lowers the max, and is named as the rule when it is what bounds."""
    current = ctx.current
    if current > ctx.max_allowed:
        capped = ctx.max_allowed < ctx.target.max_replicas
        rule = Rule.PARTITION_CAP if capped else Rule.TOO_MANY_REPLICAS
        detail = f"above the maximum of {ctx.max_allowed}"
        return Step(ctx.max_allowed, (Bound(rule, current, ctx.max_allowed, detail),), ends=True)
    if current < ctx.min_allowed:
        detail = f"below the minimum of {ctx.min_allowed}"
        bound = Bound(Rule.TOO_FEW_REPLICAS, current, ctx.min_allowed, detail)
        return Step(ctx.min_allowed, (bound,), ends=True)
    return unchanged(so_far)


def stabilize(ctx: DecisionContext, so_far: Step) -> Step:
    """The HPA's stabilization windows: scale-up takes the lowest recommendation of its
    window, scale-down the highest of its, so a brief spike or dip does not flap replicas.

    Records this recommendation in the history it returns. The first decision starts the
    history with the current count (the HPA's ``recordInitialRecommendation``): a restarted
    autoscaler cannot scale down before a full window has passed.
    """
    history = ctx.state.recommendations
    if history is None:
        history = (hpa.TimedRecommendation(at=ctx.now, replicas=ctx.current),)
    behavior = ctx.target.behavior
    stabilized, reason, history = hpa.stabilize_recommendation(
        ctx.current,
        so_far.replicas,
        history,
        behavior.scale_up.stabilization_window_seconds,
        behavior.scale_down.stabilization_window_seconds,
        ctx.now,
    )
    if stabilized == so_far.replicas:
        return Step(stabilized, history=history)
    bound = Bound(_STABILIZED[reason], so_far.replicas, stabilized)
    return Step(stabilized, (bound,), history=history)


_STABILIZED = {reason: Rule(str(reason)) for reason in hpa.StabilizeReason}
"""The decision's rule for each of the HPA's stabilization reasons (the same names; a
lookup here costs a quarter of ``Rule(str(reason))``)."""
_LIMITED = {reason: Rule(str(reason)) for reason in hpa.LimitReason}
"""The same for the HPA's rate-limit reasons."""


def plan_floor(ctx: DecisionContext, so_far: Step) -> Step:
    """The planner's floor: a planned trigger records the lowest count its plan holds over
    the scale-down window (so the window lets a planned scale-down happen on time), and
    sets its plan's first step now. When earlier plans announced a scale-down that this
    plan no longer wants, the stabilized count may be below that first step: the first
    step is what the SLO needs now, so the count never goes below it (nor above the
    current count: the floor holds a scale-down, it never causes a scale-up). Under
    ``trigger_combination: min`` planned triggers announce nothing, and there is no floor.
    """
    if ctx.target.trigger_combination != "max":
        return unchanged(so_far)
    firsts = [r.plan.first for r in ctx.recommendations if r.plan is not None]
    if not firsts:
        return unchanged(so_far)
    floor = min(max(firsts), ctx.current)
    if so_far.replicas >= floor:
        return unchanged(so_far)
    detail = f"the plan sets {max(firsts)} now"
    return Step(floor, (Bound(Rule.PLAN_FLOOR, so_far.replicas, floor, detail),))


def rate(ctx: DecisionContext, so_far: Step) -> Step:
    """The HPA's rate policies (how much may change per period, from the recorded scale
    events), then [min, max]; the partition cap is named when it is the max that bounds."""
    if so_far.replicas == ctx.current:
        return unchanged(so_far)  # no change: no policy applies (nor, then, min or max)
    behavior = ctx.target.behavior
    desired, reason = hpa.limit_by_behavior_rate(
        current_replicas=ctx.current,
        desired_replicas=so_far.replicas,
        min_replicas=ctx.min_allowed,
        max_replicas=ctx.max_allowed,
        scale_up_rules=behavior.scale_up,
        scale_down_rules=behavior.scale_down,
        scale_up_events=ctx.state.scale_up_events,
        scale_down_events=ctx.state.scale_down_events,
        now=ctx.now,
    )
    if desired == so_far.replicas:
        return unchanged(so_far)
    rule = _LIMITED[reason]
    if rule is Rule.TOO_MANY_REPLICAS and ctx.max_allowed < ctx.target.max_replicas:
        rule = Rule.PARTITION_CAP
    return Step(desired, (Bound(rule, so_far.replicas, desired),), rate_limited=True)


def hold_scale_up(ctx: DecisionContext, so_far: Step) -> Step:
    """No scale-up while scale-ups are held (``effectiveness``: the last ones did not raise
    the group's processing rate): the target keeps the replicas it has. A scale-down, and
    a count brought inside [min, max] (``limits``, earlier), still happen."""
    if ctx.scale_up_hold is None or so_far.replicas <= ctx.current:
        # As ``unchanged``, but the rate policies' cut must reach dwell_and_min_step.
        if not (so_far.bounds or so_far.history is not None or so_far.ends or so_far.idle):
            return so_far
        return Step(so_far.replicas, rate_limited=so_far.rate_limited)
    bound = Bound(Rule.SCALING_INEFFECTIVE, so_far.replicas, ctx.current, ctx.scale_up_hold)
    return Step(ctx.current, (bound,))


def dwell_and_min_step(ctx: DecisionContext, so_far: Step) -> Step:
    """Rebalance-aware actuation: every change rebalances the consumer group, so no change
    within ``min_dwell_seconds`` of the previous one, and none smaller than ``min_step``
    unless it reaches a limit.

    A change the rate policies cut short (``so_far.rate_limited``) is as big as it may be
    now: min_step must not hold it (with a 4-pod scale-up policy and min_step 5, nothing
    would ever scale up).
    """
    desired = so_far.replicas
    current = ctx.current
    if desired == current:
        return unchanged(so_far)
    actuation = ctx.target.actuation
    last_scale_at = ctx.state.last_scale_at
    if last_scale_at is not None and ctx.now - last_scale_at < actuation.min_dwell_seconds:
        detail = f"last change {ctx.now - last_scale_at:.0f}s ago"
        return Step(current, (Bound(Rule.MIN_DWELL, desired, current, detail),))
    if (
        abs(desired - current) < actuation.min_step
        and desired not in (ctx.min_allowed, ctx.max_allowed)
        and not so_far.rate_limited
    ):
        detail = f"change of {desired - current} is below min_step {actuation.min_step}"
        return Step(current, (Bound(Rule.MIN_STEP, desired, current, detail),))
    return unchanged(so_far)


def note_min_above_cap(ctx: DecisionContext, so_far: Step) -> Step:
    """The closing note: when the partition cap holds an active target below
    ``min_replicas``, say so (a pod per partition is the most that can consume; the user
    asked for more). The count is left as it is."""
    active_min = ctx.target.active_min_replicas
    if ctx.min_allowed < active_min and ctx.min_allowed <= so_far.replicas < active_min:
        detail = f"min_replicas {ctx.target.min_replicas} is above the partition cap {ctx.cap}"
        return Step(
            so_far.replicas, (Bound(Rule.PARTITION_CAP, active_min, so_far.replicas, detail),)
        )
    return unchanged(so_far)


STAGES: tuple[Stage, ...] = (
    combine,
    idle_or_activation,
    limits,
    stabilize,
    plan_floor,
    rate,
    hold_scale_up,
    dwell_and_min_step,
)
"""The pipeline, in order; ``run_stages`` folds over it."""


def run_stages(ctx: DecisionContext) -> tuple[Step, ...]:
    """Every step taken, in order: the stages from the current count until one stops the
    pipeline, then ``note_min_above_cap`` unless the target was decided idle.

    The decision reads off the steps: the raw recommendation is the first (``combine``'s),
    the desired count the last, the bounds all of theirs in order.
    """
    step = Step(ctx.current)
    steps: list[Step] = []
    for stage in STAGES:
        step = stage(ctx, step)
        steps.append(step)
        if step.ends or step.idle:  # ``step.stops``
            break
    if not step.idle:
        steps.append(note_min_above_cap(ctx, step))
    return tuple(steps)
