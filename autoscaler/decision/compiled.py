"""What the decision core derives from a target's config, derived once per config object.

A poll reads the same few facts of its target every time: the triggers with their names
(``TargetConfig.trigger_names`` rebuilds the names on each access), which of them are Kafka
triggers and which learn their throughput, the HPA tolerances, the staleness limit, the
longest rate-policy periods. Recomputing them costs more than most of the poll's own
arithmetic (replay polls a target tens of thousands of times a run), so ``compiled``
derives them once and hands back the same value for the same config object.

Why the memo is safe, and the poll step stays pure:

* ``TargetConfig`` is a frozen pydantic model: the config object a fact was derived from
  cannot change afterwards, so the fact stays true of it;
* entries are keyed on the object's identity and hold the object itself, which keeps it
  alive: its ``id`` cannot be reused by another config while the entry exists, and a hit
  is checked with ``is``. A copy (``model_copy``, a reloaded file) is another object, and
  gets its own entry, however equal it is;
* the answer depends only on the config: a caller cannot tell a hit from a miss, except by
  its speed. The memo is bounded (``MAX_ENTRIES``; cleared when full, an atomic operation,
  so concurrent polls in worker threads need no lock: at worst a fact is derived twice).
"""

from __future__ import annotations

from dataclasses import dataclass

from autoscaler.config.model import KafkaLagTrigger, TargetConfig, Trigger
from autoscaler.decision.hpa import Tolerances

__all__ = ["MAX_ENTRIES", "CompiledTarget", "compiled"]

MAX_ENTRIES = 256
"""Config objects remembered at once: far more than a service's targets (or replay's runs)."""


@dataclass(frozen=True, slots=True)
class CompiledTarget:
    """The facts of one target's config that every poll reads."""

    triggers: tuple[tuple[str, Trigger], ...]
    """Each trigger with its name (``trigger_names``), in the config's order."""
    kafka: tuple[tuple[str, KafkaLagTrigger], ...]
    """The Kafka triggers, with their names."""
    learning: tuple[tuple[str, KafkaLagTrigger], ...]
    """The Kafka triggers that learn their per-replica throughput (``learn_throughput``)."""
    stale_after: float
    tolerances: Tolerances
    forecasting: bool
    """A model forecasts (``predictor.model`` is not ``none``)."""
    planning: bool
    """``TargetConfig.planning``: the planner is on and a model forecasts."""
    longest_scale_up_period: int
    """The longest scale-up policy period (how long a scale-up event counts)."""
    longest_scale_down_period: int


_MEMO: dict[int, tuple[TargetConfig, CompiledTarget]] = {}


def compiled(target: TargetConfig) -> CompiledTarget:
    """The facts of ``target``, derived on its first poll (see the module on the memo)."""
    entry = _MEMO.get(id(target))
    if entry is not None and entry[0] is target:
        return entry[1]
    facts = _derive(target)
    if len(_MEMO) >= MAX_ENTRIES:
        _MEMO.clear()
    _MEMO[id(target)] = (target, facts)
    return facts


def _derive(target: TargetConfig) -> CompiledTarget:
    triggers = tuple(zip(target.trigger_names, target.triggers, strict=True))
    kafka = tuple((name, t) for name, t in triggers if isinstance(t, KafkaLagTrigger))
    behavior = target.behavior
    return CompiledTarget(
        triggers=triggers,
        kafka=kafka,
        learning=tuple((name, t) for name, t in kafka if t.learn_throughput),
        stale_after=target.stale_after,
        tolerances=Tolerances(
            scale_down=behavior.scale_down.tolerance, scale_up=behavior.scale_up.tolerance
        ),
        forecasting=target.predictor.model != "none",
        planning=target.planning,
        longest_scale_up_period=max(p.period_seconds for p in behavior.scale_up.policies),
        longest_scale_down_period=max(p.period_seconds for p in behavior.scale_down.policies),
    )
