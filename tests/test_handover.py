"""What a target learned, handed over to the next holder of its shard
(``autoscaler.decision.handover``): it survives JSON, and only what still applies returns."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import KAFKA, make_target

from autoscaler.decision import PollState
from autoscaler.decision.budget import BudgetState
from autoscaler.decision.handover import learned, restored
from autoscaler.decision.hpa import ScaleEvent, TimedRecommendation
from autoscaler.decision.startup import StartupState
from autoscaler.decision.throughput import ThroughputEstimate
from autoscaler.decision.types import DecisionState


def _learned_state() -> PollState:
    return PollState(
        decision=DecisionState(
            recommendations=(TimedRecommendation(1000.0, 4), TimedRecommendation(1015.0, 6)),
            scale_up_events=(ScaleEvent(1000.0, 2),),
            scale_down_events=(ScaleEvent(900.0, 1, outdated=True),),
            last_scale_at=1000.0,
            last_active_at=1015.0,
            failures={"kafka_lag": 2},
        ),
        throughput={
            "kafka_lag": ThroughputEstimate(
                per_replica=120.5, samples=7, previous_consumers=3, pooled_messages=50.0
            )
        },
        budget=BudgetState(
            quantile=0.93, judged_polls=400, violations=3, recent_violation_ratio=0.01
        ),
        startup=StartupState(ready_samples=(31.0, 35.5), consuming_samples=(40.0, 44.0)),
    )


def _through_json(document: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(json.dumps(document))
    return decoded


def test_what_was_learned_comes_back_through_json() -> None:
    target = make_target(predictor={"model": "linear"}, slo={"budget_percent": 1.0})
    state = _learned_state()
    back = restored(target, _through_json(learned(target, state)))
    assert back.decision.recommendations == state.decision.recommendations
    assert back.decision.scale_up_events == state.decision.scale_up_events
    assert back.decision.scale_down_events == state.decision.scale_down_events
    assert (back.decision.last_scale_at, back.decision.last_active_at) == (1000.0, 1015.0)
    assert back.throughput == {"kafka_lag": ThroughputEstimate(per_replica=120.5, samples=7)}
    assert back.budget == state.budget
    assert back.startup == state.startup


def test_the_transient_parts_start_afresh() -> None:
    """A poll's pooled samples and the failure counts belong to the polls the old holder
    made; the new holder's own polls count from its first."""
    target = make_target()
    back = restored(target, _through_json(learned(target, _learned_state())))
    assert back.decision.failures == {}
    assert back.throughput["kafka_lag"].pooled_messages == 0.0
    assert back.throughput["kafka_lag"].previous_consumers is None


def test_a_throughput_is_kept_only_for_the_same_consumer_group() -> None:
    document = _through_json(learned(make_target(), _learned_state()))
    moved = make_target(triggers=[{**KAFKA, "consumer_group": "orders-v2"}])
    assert restored(moved, document).throughput == {}


def test_the_budget_quantile_is_kept_only_under_the_same_budget() -> None:
    target = make_target(predictor={"model": "linear"}, slo={"budget_percent": 1.0})
    document = _through_json(learned(target, _learned_state()))
    assert restored(target, document).budget.quantile == 0.93
    other = make_target(predictor={"model": "linear"}, slo={"budget_percent": 2.0})
    assert restored(other, document).budget == BudgetState()


def test_an_initial_state_round_trips() -> None:
    target = make_target()
    assert restored(target, _through_json(learned(target, PollState()))) == PollState()


@pytest.mark.parametrize(
    "document",
    [
        pytest.param({}, id="empty"),
        pytest.param({"v": 99}, id="another-version"),
        pytest.param({"v": 1, "recommendations": None}, id="missing-keys"),
        pytest.param("not a mapping", id="not-a-mapping"),
    ],
)
def test_a_foreign_or_malformed_document_is_a_value_error(document: Any) -> None:
    with pytest.raises(ValueError, match="hand-over document"):
        restored(make_target(), document)


def test_a_non_finite_number_is_refused() -> None:
    target = make_target()
    document = _through_json(learned(target, _learned_state()))
    document["last_scale_at"] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        restored(target, document)
