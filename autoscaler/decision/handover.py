"""What one target has learned, as plain JSON, so that it survives a hand-over.

With sharding (``autoscaler.live.shard_leases``) a target moves to another replica when its
shard does, or when its replica crashes. What the poll step learned there must not start
from zero: the per-replica throughput of each consumer group (minutes of saturated polls to
learn), the SLO budget's quantile, the measured start-ups, and the HPA's memory of recent
recommendations and scale events (without it a new holder would scale down as soon as its
own first stabilization window passed, or scale again inside a rate policy's period).

``learned`` turns that part of a ``PollState`` into a small JSON-able dict; ``restored``
turns it back for a target, keeping only what still applies to the target as configured
now, as a config reload does (``autoscaler.live.service._carried_state``): a trigger's
throughput only while it reads the same consumer group, the budget's quantile only under
the same budget, SLO and model. Transient fields (a poll's pooled samples, a pending
start-up, the effectiveness check in progress) start afresh: they are seconds old and
belong to the process that saw those polls.

Pure: no I/O; a malformed or foreign document is a ``ValueError`` (the caller starts the
target afresh and says so).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from autoscaler.config.model import KafkaLagTrigger, TargetConfig, Trigger
from autoscaler.decision.budget import BudgetState
from autoscaler.decision.hpa import ScaleEvent, TimedRecommendation
from autoscaler.decision.poll import PollState
from autoscaler.decision.startup import StartupState
from autoscaler.decision.throughput import ThroughputEstimate
from autoscaler.decision.types import DecisionState

__all__ = ["HANDOVER_VERSION", "budget_settings", "consumer_group", "learned", "restored"]

HANDOVER_VERSION = 1


def consumer_group(trigger: Trigger | None) -> list[object] | None:
    """What a throughput estimate belongs to: the consumer group's cluster, name and topics
    (None for a trigger that is not a Kafka consumer group's lag)."""
    if not isinstance(trigger, KafkaLagTrigger):
        return None
    return [trigger.cluster, trigger.consumer_group, sorted(trigger.topics)]


def _groups(target: TargetConfig) -> dict[str, list[object] | None]:
    pairs = zip(target.trigger_names, target.triggers, strict=True)
    return {name: consumer_group(trigger) for name, trigger in pairs}


def budget_settings(target: TargetConfig) -> list[object]:
    """What the SLO budget's quantile was learned under: a change to any starts it afresh."""
    slo, predictor = target.slo, target.predictor
    return [slo.budget_percent, slo.max_lag_seconds, predictor.model, predictor.quantile]


def learned(target: TargetConfig, state: PollState) -> dict[str, Any]:
    """The part of ``state`` worth handing over, as JSON-able values (see the module)."""
    decision = state.decision
    groups = _groups(target)
    return {
        "v": HANDOVER_VERSION,
        "recommendations": None
        if decision.recommendations is None
        else [[r.at, r.replicas] for r in decision.recommendations],
        "scale_up_events": [[e.at, e.change, e.outdated] for e in decision.scale_up_events],
        "scale_down_events": [[e.at, e.change, e.outdated] for e in decision.scale_down_events],
        "last_scale_at": decision.last_scale_at,
        "last_active_at": decision.last_active_at,
        "throughput": {
            name: {"group": groups.get(name), "per_replica": e.per_replica, "samples": e.samples}
            for name, e in state.throughput.items()
            if e.per_replica is not None
        },
        "budget": {
            "settings": budget_settings(target),
            "quantile": state.budget.quantile,
            "judged_polls": state.budget.judged_polls,
            "violations": state.budget.violations,
            "recent_violation_ratio": state.budget.recent_violation_ratio,
            "ceiling": state.budget.ceiling,
        },
        "startup": {
            "ready": list(state.startup.ready_samples),
            "consuming": list(state.startup.consuming_samples),
        },
    }


def restored(target: TargetConfig, document: Mapping[str, Any]) -> PollState:
    """The poll state ``target`` starts from, given what its previous holder learned."""
    if not isinstance(document, Mapping) or document.get("v") != HANDOVER_VERSION:
        raise ValueError(f"not a version {HANDOVER_VERSION} hand-over document")
    try:
        recommendations_raw = document["recommendations"]
        recommendations = (
            None
            if recommendations_raw is None
            else tuple(TimedRecommendation(_number(at), _count(n)) for at, n in recommendations_raw)
        )
        decision = DecisionState(
            recommendations=recommendations,
            scale_up_events=_events(document["scale_up_events"]),
            scale_down_events=_events(document["scale_down_events"]),
            last_scale_at=_optional_number(document.get("last_scale_at")),
            last_active_at=_optional_number(document.get("last_active_at")),
        )
        groups = _groups(target)
        throughput: dict[str, ThroughputEstimate] = {}
        for name, entry in dict(document.get("throughput") or {}).items():
            group = groups.get(name)
            if group is None or entry.get("group") != group:
                continue  # a trigger gone, or reading another group now
            throughput[name] = ThroughputEstimate(
                per_replica=_number(entry["per_replica"]), samples=_count(entry["samples"])
            )
        budget_raw = document["budget"]
        budget = BudgetState()
        if budget_raw.get("settings") == budget_settings(target):
            budget = BudgetState(
                quantile=_optional_number(budget_raw.get("quantile")),
                judged_polls=_count(budget_raw["judged_polls"]),
                violations=_count(budget_raw["violations"]),
                recent_violation_ratio=_number(budget_raw["recent_violation_ratio"]),
                ceiling=_number(budget_raw["ceiling"]),
            )
        startup_raw = document["startup"]
        startup = StartupState(
            ready_samples=tuple(_number(v) for v in startup_raw["ready"]),
            consuming_samples=tuple(_number(v) for v in startup_raw["consuming"]),
        )
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"malformed hand-over document: {error!r}") from None
    return PollState(decision=decision, throughput=throughput, budget=budget, startup=startup)


def _events(raw: Any) -> tuple[ScaleEvent, ...]:
    return tuple(
        ScaleEvent(_number(at), _count(change), bool(outdated)) for at, change, outdated in raw
    )


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    return float(value)


def _optional_number(value: Any) -> float | None:
    return None if value is None else _number(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"not a whole number: {value!r}")
    return value
