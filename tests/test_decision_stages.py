"""Each stage of ``decide`` alone, one named case per row (``autoscaler.decision.stages``).

Every table has rows where the stage changes the count (or ends the pipeline) and rows
where it passes the count through, so a stage that did nothing, or too much, fails here.
``test_decision.py`` tests the whole fold through ``decide``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from helpers import make_target

from autoscaler.decision import Bound, DecisionState, Rule, TriggerRecommendation
from autoscaler.decision.hpa import ScaleEvent, TimedRecommendation
from autoscaler.decision.planner import Plan
from autoscaler.decision.stages import (
    STAGES,
    DecisionContext,
    Step,
    combine,
    dwell_and_min_step,
    hold_scale_up,
    idle_or_activation,
    limits,
    note_min_above_cap,
    plan_floor,
    rate,
    run_stages,
    stabilize,
)

NOW = 1000.0


def rec(
    replicas: int | None, active: bool | None = True, rule: Rule = Rule.KAFKA_LAG, name: str = "a"
) -> TriggerRecommendation:
    return TriggerRecommendation(name, replicas, rule, active, "")


def ctx(
    *,
    current: int = 4,
    recs: Sequence[TriggerRecommendation] = (),
    caps: Sequence[int | None] = (),
    state: DecisionState | None = None,
    hold: str | None = None,
    **target: Any,
) -> DecisionContext:
    """A context as ``decide`` builds it: a real target with ``target`` overrides."""
    return DecisionContext.of(
        make_target(**target),
        state or DecisionState(),
        NOW,
        current=current,
        ready=current,
        recommendations=recs or (rec(current),),
        caps=caps,
        scale_up_hold=hold,
    )


# --------------------------------------------------------------------------- combine


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        pytest.param(ctx(recs=[rec(3), rec(7, name="b")]), Step(7), id="max-of-triggers"),
        pytest.param(
            ctx(recs=[rec(3), rec(7, name="b")], trigger_combination="min"),
            Step(3),
            id="min-of-triggers",
        ),
        pytest.param(
            ctx(recs=[rec(2), rec(5, rule=Rule.FALLBACK, name="b")], trigger_combination="min"),
            Step(5),
            id="fallback-holds-under-min",
        ),
        pytest.param(
            ctx(recs=[rec(2, rule=Rule.FALLBACK), rec(5, rule=Rule.FALLBACK, name="b")]),
            Step(5),
            id="only-fallbacks-take-the-max",
        ),
        pytest.param(
            ctx(current=4, recs=[rec(None), rec(None, name="b")]),
            Step(4, (Bound(Rule.MISSING_DATA, 4, 4, "no trigger has data: hold"),)),
            id="no-data-holds",
        ),
        pytest.param(
            ctx(current=4, recs=[rec(2), rec(None, name="b")]),
            Step(4, (Bound(Rule.MISSING_DATA, 2, 4, "no scale-down while b has no data"),)),
            id="missing-trigger-blocks-scale-down",
        ),
        pytest.param(
            ctx(current=4, recs=[rec(6), rec(None, name="b")]),
            Step(6),
            id="missing-trigger-allows-scale-up",
        ),
    ],
)
def test_combine(context: DecisionContext, expected: Step) -> None:
    assert combine(context, Step(context.current)) == expected


# --------------------------------------------------------------------------- idle


IDLE_AT_2: dict[str, Any] = {"min_replicas": 3, "idle_replicas": 2}
INACTIVE_SINCE = DecisionState(last_active_at=NOW - 300)


@pytest.mark.parametrize(
    ("context", "raw", "expected"),
    [
        pytest.param(
            ctx(current=0, min_replicas=1),
            5,
            Step(
                0,
                (Bound(Rule.SCALING_DISABLED, 5, 0, "replicas are 0 and scale-to-zero is off"),),
                idle=True,
            ),
            id="zero-without-idle-is-disabled",
        ),
        pytest.param(
            ctx(current=0, min_replicas=0, recs=[rec(0, active=True)]),
            0,
            Step(1, (Bound(Rule.ACTIVATION, 0, 1, "a trigger is active"),), ends=True),
            id="activation-to-at-least-one",
        ),
        pytest.param(
            ctx(current=0, min_replicas=0, max_replicas=10, recs=[rec(30, active=True)]),
            30,
            Step(10, (Bound(Rule.ACTIVATION, 0, 10, "a trigger is active"),), ends=True),
            id="activation-within-max",
        ),
        pytest.param(
            ctx(current=0, min_replicas=0, recs=[rec(0, active=False)]),
            0,
            Step(0, (Bound(Rule.IDLE, 0, 0, "every trigger inactive"),), idle=True),
            id="stays-idle",
        ),
        pytest.param(
            ctx(current=1, recs=[rec(3, active=False)], **IDLE_AT_2),
            3,
            Step(2, (Bound(Rule.IDLE, 3, 2, "every trigger inactive"),), idle=True),
            id="below-idle-count-goes-to-it",
        ),
        pytest.param(
            ctx(current=0, min_replicas=0, recs=[rec(2, active=None)]),
            2,
            Step(0, (Bound(Rule.IDLE, 2, 0, "trigger activity unknown"),), idle=True),
            id="unknown-activity-holds",
        ),
        pytest.param(
            ctx(current=3, min_replicas=0, recs=[rec(1, active=False)], state=INACTIVE_SINCE),
            1,
            Step(
                0, (Bound(Rule.SCALE_TO_IDLE, 3, 0, "every trigger inactive for 300s"),), idle=True
            ),
            id="cooldown-over-scales-to-idle",
        ),
        pytest.param(
            ctx(
                current=3,
                min_replicas=0,
                cooldown_seconds=301,
                recs=[rec(1, active=False)],
                state=INACTIVE_SINCE,
            ),
            1,
            Step(1),
            id="cooldown-running-passes",
        ),
        pytest.param(
            ctx(current=3, min_replicas=0, recs=[rec(5, active=True)], state=INACTIVE_SINCE),
            5,
            Step(5),
            id="active-above-idle-passes",
        ),
        pytest.param(ctx(current=3, min_replicas=1), 5, Step(5), id="no-idle-count-passes"),
    ],
)
def test_idle_or_activation(context: DecisionContext, raw: int, expected: Step) -> None:
    assert idle_or_activation(context, Step(raw)) == expected


# --------------------------------------------------------------------------- limits


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        pytest.param(
            ctx(current=12, max_replicas=10),
            Step(
                10, (Bound(Rule.TOO_MANY_REPLICAS, 12, 10, "above the maximum of 10"),), ends=True
            ),
            id="above-max",
        ),
        pytest.param(
            ctx(current=6, caps=[4]),
            Step(4, (Bound(Rule.PARTITION_CAP, 6, 4, "above the maximum of 4"),), ends=True),
            id="above-partition-cap",
        ),
        pytest.param(
            ctx(current=1, min_replicas=3),
            Step(3, (Bound(Rule.TOO_FEW_REPLICAS, 1, 3, "below the minimum of 3"),), ends=True),
            id="below-min",
        ),
        pytest.param(
            ctx(current=2, min_replicas=3, caps=[2]), Step(7), id="min-lowered-to-cap-passes"
        ),
        pytest.param(
            ctx(current=5, min_replicas=3, max_replicas=10), Step(7), id="in-range-passes"
        ),
    ],
)
def test_limits(context: DecisionContext, expected: Step) -> None:
    assert limits(context, Step(7)) == expected


# --------------------------------------------------------------------------- plan floor


def planned(first: int, announced: int) -> TriggerRecommendation:
    """A planned trigger: it announces ``announced`` and sets ``first`` now."""
    schedule = Plan(
        replicas=(first, announced),
        needed=(first, announced),
        backlog=(0.0, 0.0),
        step_seconds=30.0,
        cost_replica_seconds=0.0,
        unavoidable_steps=0,
        levels=2,
    )
    return TriggerRecommendation("a", announced, Rule.PLANNED, True, "", plan=schedule)


@pytest.mark.parametrize(
    ("context", "so_far", "expected"),
    [
        pytest.param(
            ctx(current=10, recs=(planned(8, 3),)),
            Step(3),
            Step(8, (Bound(Rule.PLAN_FLOOR, 3, 8, "the plan sets 8 now"),)),
            id="announced-lower-than-the-first-step-is-floored",
        ),
        pytest.param(
            ctx(current=10, recs=(planned(8, 3),)), Step(9), Step(9), id="above-the-floor-passes"
        ),
        pytest.param(
            ctx(current=6, recs=(planned(8, 8),)),
            Step(5),
            Step(6, (Bound(Rule.PLAN_FLOOR, 5, 6, "the plan sets 8 now"),)),
            id="floor-never-above-the-current-count",
        ),
        pytest.param(ctx(current=10, recs=(rec(3),)), Step(3), Step(3), id="sized-no-floor"),
        pytest.param(
            ctx(current=10, recs=(planned(8, 3),), trigger_combination="min"),
            Step(3),
            Step(3),
            id="min-combination-no-floor",
        ),
    ],
)
def test_plan_floor(context: DecisionContext, so_far: Step, expected: Step) -> None:
    assert plan_floor(context, so_far) == expected


# --------------------------------------------------------------------------- stabilize


@pytest.mark.parametrize(
    ("context", "raw", "expected"),
    [
        pytest.param(
            ctx(current=5),
            3,
            Step(
                5,
                (Bound(Rule.SCALE_DOWN_STABILIZED, 3, 5),),
                history=(TimedRecommendation(NOW, 5), TimedRecommendation(NOW, 3)),
            ),
            id="first-decision-records-current-and-holds",
        ),
        pytest.param(
            ctx(current=5),
            8,
            Step(8, history=(TimedRecommendation(NOW, 5), TimedRecommendation(NOW, 8))),
            id="scale-up-without-window-passes",
        ),
        pytest.param(
            ctx(
                current=4,
                behavior={"scale_up": {"stabilization_window_seconds": 60}},
                state=DecisionState(recommendations=(TimedRecommendation(NOW - 30, 6),)),
            ),
            9,
            Step(
                6,
                (Bound(Rule.SCALE_UP_STABILIZED, 9, 6),),
                history=(TimedRecommendation(NOW - 30, 6), TimedRecommendation(NOW, 9)),
            ),
            id="scale-up-window-takes-the-lowest",
        ),
        pytest.param(
            ctx(
                current=7, state=DecisionState(recommendations=(TimedRecommendation(NOW - 400, 7),))
            ),
            4,
            Step(4, history=(TimedRecommendation(NOW, 4),)),
            id="window-over-replaces-old-entry",
        ),
    ],
)
def test_stabilize(context: DecisionContext, raw: int, expected: Step) -> None:
    assert stabilize(context, Step(raw)) == expected


# --------------------------------------------------------------------------- rate

PODS_2 = {
    "scale_up": {"policies": [{"type": "Pods", "value": 2, "period_seconds": 60}]},
    "scale_down": {"policies": [{"type": "Pods", "value": 1, "period_seconds": 60}]},
}


@pytest.mark.parametrize(
    ("context", "stabilized", "expected"),
    [
        pytest.param(
            ctx(current=4, behavior=PODS_2),
            10,
            Step(6, (Bound(Rule.SCALE_UP_LIMIT, 10, 6),), rate_limited=True),
            id="scale-up-limited",
        ),
        pytest.param(ctx(current=4, behavior=PODS_2), 6, Step(6), id="scale-up-within-limit"),
        pytest.param(
            ctx(
                current=4,
                behavior=PODS_2,
                state=DecisionState(scale_up_events=(ScaleEvent(NOW - 30, 2),)),
            ),
            6,
            Step(4, (Bound(Rule.SCALE_UP_LIMIT, 6, 4),), rate_limited=True),
            id="recent-scale-up-used-the-budget",
        ),
        pytest.param(
            ctx(current=4, behavior=PODS_2),
            1,
            Step(3, (Bound(Rule.SCALE_DOWN_LIMIT, 1, 3),), rate_limited=True),
            id="scale-down-limited",
        ),
        pytest.param(
            ctx(current=8, max_replicas=10),
            20,
            Step(10, (Bound(Rule.TOO_MANY_REPLICAS, 20, 10),), rate_limited=True),
            id="max-bounds",
        ),
        pytest.param(
            ctx(current=3, caps=[5]),
            7,
            Step(5, (Bound(Rule.PARTITION_CAP, 7, 5),), rate_limited=True),
            id="partition-cap-bounds",
        ),
        pytest.param(ctx(current=4), 4, Step(4), id="no-change-passes"),
    ],
)
def test_rate(context: DecisionContext, stabilized: int, expected: Step) -> None:
    assert rate(context, Step(stabilized)) == expected


# --------------------------------------------------------------------------- actuation

SCALED_AT_980 = DecisionState(last_scale_at=NOW - 20)


@pytest.mark.parametrize(
    ("context", "so_far", "expected"),
    [
        pytest.param(
            ctx(current=4, actuation={"min_dwell_seconds": 30}, state=SCALED_AT_980),
            Step(8),
            Step(4, (Bound(Rule.MIN_DWELL, 8, 4, "last change 20s ago"),)),
            id="within-dwell-holds",
        ),
        pytest.param(
            ctx(current=4, actuation={"min_dwell_seconds": 10}, state=SCALED_AT_980),
            Step(8),
            Step(8),
            id="dwell-over-passes",
        ),
        pytest.param(
            ctx(current=4, actuation={"min_dwell_seconds": 30}, state=SCALED_AT_980),
            Step(4),
            Step(4),
            id="no-change-passes-within-dwell",
        ),
        pytest.param(
            ctx(current=4, actuation={"min_step": 3}),
            Step(6),
            Step(4, (Bound(Rule.MIN_STEP, 6, 4, "change of 2 is below min_step 3"),)),
            id="below-min-step-holds",
        ),
        pytest.param(
            ctx(current=4, actuation={"min_step": 3}),
            Step(7),
            Step(7),
            id="min-step-reached-passes",
        ),
        pytest.param(
            ctx(current=4, max_replicas=6, actuation={"min_step": 3}),
            Step(6),
            Step(6),
            id="small-step-to-max-passes",
        ),
        pytest.param(
            ctx(current=4, actuation={"min_step": 3}),
            Step(6, rate_limited=True),
            Step(6),
            id="small-step-cut-by-rate-passes",
        ),
    ],
)
def test_dwell_and_min_step(context: DecisionContext, so_far: Step, expected: Step) -> None:
    assert dwell_and_min_step(context, so_far) == expected


# --------------------------------------------------------------------------- scale-up hold


@pytest.mark.parametrize(
    ("context", "so_far", "expected"),
    [
        pytest.param(ctx(current=4), Step(7), Step(7), id="no-hold-scale-up-passes"),
        pytest.param(
            ctx(current=4, hold="ineffective"),
            Step(7),
            Step(4, (Bound(Rule.SCALING_INEFFECTIVE, 7, 4, "ineffective"),)),
            id="held-scale-up-keeps-the-replicas",
        ),
        pytest.param(
            ctx(current=4, hold="ineffective"), Step(2), Step(2), id="held-scale-down-passes"
        ),
        pytest.param(
            ctx(current=4, hold="ineffective"),
            Step(4, rate_limited=True),
            Step(4, rate_limited=True),
            id="no-change-keeps-its-rate-flag",
        ),
        pytest.param(
            ctx(current=4), Step(6, rate_limited=True), Step(6, rate_limited=True), id="rate-cut"
        ),
    ],
)
def test_hold_scale_up(context: DecisionContext, so_far: Step, expected: Step) -> None:
    assert hold_scale_up(context, so_far) == expected


# --------------------------------------------------------------------------- closing note


@pytest.mark.parametrize(
    ("context", "desired", "expected"),
    [
        pytest.param(
            ctx(current=3, min_replicas=5, caps=[3]),
            3,
            Step(
                3, (Bound(Rule.PARTITION_CAP, 5, 3, "min_replicas 5 is above the partition cap 3"),)
            ),
            id="cap-below-min-noted",
        ),
        pytest.param(ctx(current=3, min_replicas=5), 5, Step(5), id="no-cap-no-note"),
        pytest.param(ctx(current=3, min_replicas=2, caps=[3]), 3, Step(3), id="cap-above-min"),
    ],
)
def test_note_min_above_cap(context: DecisionContext, desired: int, expected: Step) -> None:
    assert note_min_above_cap(context, Step(desired)) == expected


# --------------------------------------------------------------------------- the fold


def test_stages_run_in_the_documented_order() -> None:
    names = [stage.__name__ for stage in STAGES]
    assert names == [
        "combine",
        "idle_or_activation",
        "limits",
        "stabilize",
        "plan_floor",
        "rate",
        "hold_scale_up",
        "dwell_and_min_step",
    ]


@pytest.mark.parametrize(
    ("context", "taken", "rules"),
    [
        pytest.param(
            ctx(current=0, min_replicas=0, recs=[rec(0, active=False)]),
            2,
            [Rule.IDLE],
            id="idle-ends-the-decision",
        ),
        pytest.param(
            ctx(current=2, min_replicas=5, idle_replicas=2, caps=[1], recs=[rec(4, active=None)]),
            2,
            [Rule.IDLE],
            id="idle-skips-the-note",
        ),
        pytest.param(
            ctx(current=0, min_replicas=5, idle_replicas=0, caps=[3], recs=[rec(4, active=True)]),
            3,
            [Rule.ACTIVATION, Rule.PARTITION_CAP],
            id="activation-ends-then-note",
        ),
        pytest.param(
            ctx(current=12, max_replicas=10, recs=[rec(3)]),
            4,
            [Rule.TOO_MANY_REPLICAS],
            id="out-of-range-ends-then-note",
        ),
        pytest.param(
            ctx(current=4, recs=[rec(2)]),
            len(STAGES) + 1,
            [Rule.SCALE_DOWN_STABILIZED],
            id="in-range-runs-every-stage",
        ),
    ],
)
def test_run_stages(context: DecisionContext, taken: int, rules: list[Rule]) -> None:
    """Which stages ran, by the number of steps taken, and the bounds they applied in order."""
    steps = run_stages(context)
    assert len(steps) == taken
    assert [bound.rule for step in steps for bound in step.bounds] == rules
