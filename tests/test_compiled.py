"""The facts the decision core derives once per config object, and the memo that keeps them."""

from __future__ import annotations

from helpers import KAFKA, make_target

from autoscaler.decision import compiled as compiled_module
from autoscaler.decision.compiled import MAX_ENTRIES, compiled
from autoscaler.decision.hpa import Tolerances


def test_the_facts_are_the_configs() -> None:
    target = make_target(
        triggers=[
            {**KAFKA, "learn_throughput": False},
            {**KAFKA, "name": "second", "learn_throughput": True},
        ],
        behavior={
            "scale_up": {
                "tolerance": 0.2,
                "policies": [
                    {"type": "Pods", "value": 4, "period_seconds": 15},
                    {"type": "Percent", "value": 100, "period_seconds": 60},
                ],
            },
            "scale_down": {"tolerance": 0.05},
        },
        stale_after_seconds=42,
    )
    facts = compiled(target)
    assert [name for name, _ in facts.triggers] == list(target.trigger_names)
    assert [t for _, t in facts.triggers] == list(target.triggers)
    assert [name for name, _ in facts.kafka] == list(target.trigger_names)
    assert [name for name, _ in facts.learning] == ["second"]
    assert facts.stale_after == 42
    assert facts.tolerances == Tolerances(scale_down=0.05, scale_up=0.2)
    assert facts.longest_scale_up_period == 60
    assert facts.longest_scale_down_period == 15
    assert not facts.forecasting
    assert not facts.planning


def test_the_same_object_gets_the_same_facts_and_a_copy_its_own() -> None:
    target = make_target()
    assert compiled(target) is compiled(target)
    copy = target.model_copy(update={"stale_after_seconds": 7.0})
    assert compiled(copy).stale_after == 7.0
    assert compiled(target).stale_after == target.stale_after


def test_the_memo_is_bounded() -> None:
    kept = [make_target(stale_after_seconds=float(n + 1)) for n in range(MAX_ENTRIES + 3)]
    for target in kept:
        assert compiled(target).stale_after == target.stale_after
    assert len(compiled_module._MEMO) <= MAX_ENTRIES
    assert all(compiled(target).stale_after == target.stale_after for target in kept)
