"""Checks across sections, which no single pydantic model can make.

A trigger names a Kafka cluster or Prometheus server defined elsewhere in the file; two
targets must not share a name (it keys metrics, logs and state) nor scale the same workload
(two control loops fighting over one replica count, as two HPAs on one Deployment would).

These run on the raw parsed data, not on the validated model, so they report even when some
other part of the file fails validation: the user sees every problem in one go. Anything
malformed is skipped here; the schema validation reports it.
"""

from __future__ import annotations

from typing import Any

from autoscaler.config.errors import Finding, KeyPath

_TRIGGER_REFERENCES = {
    # trigger type: (the trigger's key, the top-level section it names an entry of)
    "kafka_lag": ("cluster", "kafka_clusters"),
    "prometheus": ("server", "prometheus_servers"),
}


def check_references(data: object) -> list[Finding]:
    """Undefined clusters/servers, duplicate target names and duplicate scale targets."""
    if not isinstance(data, dict):
        return []
    targets = data.get("targets")
    if not isinstance(targets, list):
        return []
    findings: list[Finding] = []
    undefined: dict[tuple[str, str], str] = {}  # one message per missing name, not per use
    for index, target in enumerate(targets):
        if isinstance(target, dict):
            findings.extend(_trigger_references(data, ("targets", index), target, undefined))
    findings.extend(_duplicate_names(targets))
    findings.extend(_duplicate_scale_targets(targets))
    return findings


def _trigger_references(
    data: dict[Any, Any],
    path: KeyPath,
    target: dict[Any, Any],
    messages: dict[tuple[str, str], str],
) -> list[Finding]:
    triggers = target.get("triggers")
    if not isinstance(triggers, list):
        return []
    findings = []
    for index, trigger in enumerate(triggers):
        if not isinstance(trigger, dict) or trigger.get("type") not in _TRIGGER_REFERENCES:
            continue
        key, section_name = _TRIGGER_REFERENCES[trigger["type"]]
        name = trigger.get(key)
        section = data.get(section_name, {})
        if not isinstance(name, str) or not isinstance(section, dict) or name in section:
            continue
        if (section_name, name) not in messages:
            messages[section_name, name] = _undefined(data, section_name, section, name)
        findings.append(Finding((*path, "triggers", index, key), messages[section_name, name]))
    return findings


def _undefined(data: dict[Any, Any], section_name: str, section: dict[Any, Any], name: str) -> str:
    """Why ``name`` is not an entry of ``section``, naming those that are."""
    if section:
        defined = ", ".join(f"'{defined}'" for defined in section)
        return f"'{name}' is not defined in {section_name} (defined: {defined})"
    if section_name in data:
        return f"'{name}' is not defined: {section_name} is empty"
    return f"'{name}' is not defined: there is no {section_name} section"


def _duplicate_names(targets: list[Any]) -> list[Finding]:
    findings = []
    first: dict[str, int] = {}
    for index, target in enumerate(targets):
        name = target.get("name") if isinstance(target, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            findings.append(
                Finding(
                    ("targets", index, "name"),
                    f"target name '{name}' is already used by targets[{first[name]}]",
                )
            )
        else:
            first[name] = index
    return findings


def _scale_target(target: object) -> tuple[str, str, str] | None:
    """(namespace, kind, name) with the schema's defaults, or None when malformed."""
    if not isinstance(target, dict):
        return None
    ref = target.get("scale_target_ref")
    if not isinstance(ref, dict):
        return None
    namespace = target.get("namespace", "default")
    kind = ref.get("kind", "Deployment")
    name = ref.get("name")
    if isinstance(namespace, str) and isinstance(kind, str) and isinstance(name, str):
        return (namespace, kind, name)
    return None


def _duplicate_scale_targets(targets: list[Any]) -> list[Finding]:
    findings = []
    first: dict[tuple[str, str, str], int] = {}
    for index, target in enumerate(targets):
        workload = _scale_target(target)
        if workload is None:
            continue
        if workload in first:
            namespace, kind, name = workload
            other = first[workload]
            message = (
                f"{kind} {namespace}/{name} is already scaled by targets[{other}]: "
                "two targets would fight over its replicas"
            )
            findings.append(Finding(("targets", index, "scale_target_ref"), message))
        else:
            first[workload] = index
    return findings
