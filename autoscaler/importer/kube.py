"""What a ScaledObject and an HPA share: the workload they scale and the HPA ``behavior``
(a ScaledObject's ``advanced.horizontalPodAutoscalerConfig.behavior`` is the HPA's own).

``behavior`` maps key by key onto ours, which follows the HPA's: a field left out stays
left out, and takes the HPA's default here as it did there.
"""

from __future__ import annotations

from typing import Any

from autoscaler.importer import values
from autoscaler.importer.drafts import Note

SCALABLE = ("Deployment", "StatefulSet")
"""The kinds whose scale subresource this project patches (``apps/v1``)."""

BEHAVIOR_DIRECTIONS = {"scaleUp": "scale_up", "scaleDown": "scale_down"}
BEHAVIOR_RULE_KEYS = {
    "stabilizationWindowSeconds": "stabilization_window_seconds",
    "selectPolicy": "select_policy",
    "policies": "policies",
    "tolerance": "tolerance",
}
POLICY_KEYS = {"type": "type", "value": "value", "periodSeconds": "period_seconds"}


def workload(ref: object) -> tuple[dict[str, str] | None, str | None]:
    """``({"kind": ..., "name": ...}, None)`` for an ``apps/v1`` Deployment or StatefulSet
    (KEDA's defaults: ``apps/v1``, ``Deployment``), else ``(None, why not)``."""
    if not isinstance(ref, dict) or not isinstance(ref.get("name"), str) or not ref["name"]:
        return None, "its scaleTargetRef names no workload"
    api_version = ref.get("apiVersion") or "apps/v1"
    kind = ref.get("kind") or "Deployment"
    if api_version != "apps/v1" or kind not in SCALABLE:
        return None, (
            f"it scales {api_version} {kind} {ref['name']}: only apps/v1 Deployments and "
            "StatefulSets are scaled here"
        )
    return {"kind": str(kind), "name": ref["name"]}, None


def behavior(raw: object, about: str, where: str) -> tuple[dict[str, Any] | None, list[Note]]:
    """An HPA ``behavior`` as ours (None when it sets nothing), and what was left out.

    ``where`` is the key path shown in notes (``spec.behavior``)."""
    if raw is None:
        return None, []
    if not isinstance(raw, dict):
        return None, [Note(about, f"{where} is not a mapping: not mapped")]
    ours: dict[str, Any] = {}
    notes: list[Note] = []
    for direction, rules in raw.items():
        here = f"{where}.{direction}"
        if direction not in BEHAVIOR_DIRECTIONS:
            notes.append(Note(about, f"{here}: not an HPA behavior key: not mapped"))
        elif isinstance(rules, dict):
            mapped, rule_notes = _rules(rules, about, here)
            notes.extend(rule_notes)
            if mapped:
                ours[BEHAVIOR_DIRECTIONS[direction]] = mapped
        elif rules is not None:
            notes.append(Note(about, f"{here} is not a mapping: not mapped"))
    return ours or None, notes


def _rules(rules: dict[str, Any], about: str, where: str) -> tuple[dict[str, Any], list[Note]]:
    ours: dict[str, Any] = {}
    notes: list[Note] = []
    for key, value in rules.items():
        if key not in BEHAVIOR_RULE_KEYS:
            notes.append(Note(about, f"{where}.{key}: not an HPA behavior key: not mapped"))
        elif key == "tolerance":  # a Quantity: "0.05", "50m"
            try:
                ours["tolerance"] = values.quantity(value)
            except values.BadValueError as problem:
                notes.append(Note(about, f"{where}.tolerance: {problem}: not mapped"))
        elif key == "policies" and isinstance(value, list):
            ours["policies"] = [_policy(policy) for policy in value]
        else:
            ours[BEHAVIOR_RULE_KEYS[key]] = value  # the loader checks types and ranges
    return ours, notes


def _policy(policy: object) -> object:
    if not isinstance(policy, dict):
        return policy  # the loader says what is wrong with it
    return {POLICY_KEYS.get(key, key): value for key, value in policy.items()}
