"""KEDA ScaledObjects as targets: the workload, replicas, behavior, fallback, and each
trigger (``triggers``).

Where our default differs from KEDA's, KEDA's is written out: ``minReplicaCount`` (0 in
KEDA, 1 here), ``pollingInterval`` (30 s, 15 s), ``fallback.behavior`` (``static``,
``current_replicas``), so that the target scales as the ScaledObject did.
"""

from __future__ import annotations

from typing import Any

from autoscaler.importer import kube
from autoscaler.importer.drafts import Mapped, Note, TargetDraft, TriggerDraft, skipped
from autoscaler.importer.manifests import KubeObject
from autoscaler.importer.triggers import Context, map_trigger

SCALED_OBJECT_KEYS = {
    "minReplicaCount": "min_replicas",
    "maxReplicaCount": "max_replicas",
    "idleReplicaCount": "idle_replicas",
    "cooldownPeriod": "cooldown_seconds",
    "pollingInterval": "poll_interval_seconds",
}
KEDA_DEFAULTS = {"minReplicaCount": 0, "maxReplicaCount": 100, "pollingInterval": 30}
"""Written out when absent: ours are 1, 100 and 15."""
FALLBACK_BEHAVIORS = {
    "static": "static",
    "currentReplicas": "current_replicas",
    "currentReplicasIfHigher": "current_replicas_if_higher",
    "currentReplicasIfLower": "current_replicas_if_lower",
}
PAUSE_ANNOTATIONS = {
    "autoscaling.keda.sh/paused": "autoscaler.io/paused",
    "autoscaling.keda.sh/paused-replicas": "autoscaler.io/paused-replicas",
}


def map_scaled_object(obj: KubeObject, context: Context | None = None) -> Mapped:
    """One ScaledObject as a draft target (None when nothing can scale it), with notes;
    ``context`` holds the input's TriggerAuthentications and the flags about them."""
    about = obj.ref
    spec = obj.body.get("spec")
    if not isinstance(spec, dict):
        return skipped(about, "it has no spec")
    ref, problem = kube.workload(spec.get("scaleTargetRef"))
    if ref is None:
        return skipped(about, problem or "no workload")
    notes = _pause_notes(obj)
    triggers: list[TriggerDraft] = []
    raw_triggers = spec.get("triggers")
    for index, trigger in enumerate(raw_triggers if isinstance(raw_triggers, list) else []):
        drafted, trigger_notes = map_trigger(trigger, index, obj.ref, obj.namespace, context)
        notes.extend(trigger_notes)
        if drafted is not None:
            triggers.append(drafted)
    if not triggers:
        return skipped(
            about,
            "no trigger this project supports (kafka, apache-kafka, prometheus)",
            tuple(notes),
        )
    replicas: dict[str, Any] = {}
    for key, ours in SCALED_OBJECT_KEYS.items():
        if key in spec:
            replicas[ours] = spec[key]
        elif key in KEDA_DEFAULTS:
            replicas[ours] = KEDA_DEFAULTS[key]
    if "initialCooldownPeriod" in spec:
        notes.append(Note(about, "initialCooldownPeriod: not supported: left out"))
    rules, rule_notes = _advanced(spec.get("advanced"), about)
    notes.extend(rule_notes)
    fallback, fallback_notes = _fallback(spec.get("fallback"), about)
    notes.extend(fallback_notes)
    if fallback is not None:
        rules["fallback"] = fallback
    known = {*SCALED_OBJECT_KEYS, "initialCooldownPeriod", "scaleTargetRef", "triggers"}
    for key in spec:
        if key not in known and key not in ("advanced", "fallback"):
            notes.append(Note(about, f"spec.{key}: not a ScaledObject key known here: left out"))
    draft = TargetDraft(
        source=about,
        name=obj.name,
        namespace=obj.namespace,
        scale_target_ref=ref,
        replicas=replicas,
        triggers=tuple(triggers),
        rules=rules,
    )
    return Mapped(draft, tuple(notes))


def _pause_notes(obj: KubeObject) -> list[Note]:
    metadata = obj.body.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if not isinstance(annotations, dict):
        return []
    notes = []
    for keda, ours in PAUSE_ANNOTATIONS.items():
        if keda in annotations:
            notes.append(
                Note(
                    obj.ref,
                    f"{keda} is set: the pause is the workload's here, annotate the "
                    f"{obj.namespace} workload with {ours} to keep it",
                )
            )
    for direction in ("paused-scale-in", "paused-scale-out"):
        if f"autoscaling.keda.sh/{direction}" in annotations:
            notes.append(Note(obj.ref, f"autoscaling.keda.sh/{direction}: not supported"))
    return notes


def _advanced(advanced: object, about: str) -> tuple[dict[str, Any], list[Note]]:
    if not isinstance(advanced, dict):
        return {}, []
    rules: dict[str, Any] = {}
    notes: list[Note] = []
    hpa = advanced.get("horizontalPodAutoscalerConfig")
    if isinstance(hpa, dict):
        behavior, behavior_notes = kube.behavior(
            hpa.get("behavior"), about, "advanced.horizontalPodAutoscalerConfig.behavior"
        )
        notes.extend(behavior_notes)
        if behavior is not None:
            rules["behavior"] = behavior
    modifiers = advanced.get("scalingModifiers")
    if isinstance(modifiers, dict) and modifiers:
        notes.append(
            Note(
                about,
                "advanced.scalingModifiers (a formula over the triggers) is not supported: "
                "the triggers are combined by max here (trigger_combination)",
            )
        )
    return rules, notes


def _fallback(fallback: object, about: str) -> tuple[dict[str, Any] | None, list[Note]]:
    if not isinstance(fallback, dict):
        return None, []
    behavior = fallback.get("behavior", "static")  # KEDA's default
    if behavior not in FALLBACK_BEHAVIORS:
        return None, [
            Note(
                about,
                f"fallback.behavior {behavior}: not supported: the fallback is left out "
                "(here a failing trigger then holds the current count)",
            )
        ]
    ours: dict[str, Any] = {"behavior": FALLBACK_BEHAVIORS[str(behavior)]}
    if "failureThreshold" in fallback:
        ours["failure_threshold"] = fallback["failureThreshold"]
    if "replicas" in fallback:
        ours["replicas"] = fallback["replicas"]
    return ours, []
