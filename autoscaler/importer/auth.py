"""KEDA TriggerAuthentications in the input: which parameters each holds, and where from.

A TriggerAuthentication (or ClusterTriggerAuthentication) gives a trigger parameters from
a Secret, a ConfigMap, the workload's environment or a secret manager. Their *values* are
never read (they are not in the input, and a secret is never copied), but their *names*
are: a Kafka trigger whose ``sasl`` or ``tls`` comes from one connects with security this
file must have, so the import maps what it can (placeholders where deploy/ mounts the
Secret) and refuses to guess the rest (``triggers``); every parameter read is reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from autoscaler.importer.manifests import KubeObject

KINDS = ("TriggerAuthentication", "ClusterTriggerAuthentication")

SECRET_MANAGERS = {
    "hashiCorpVault": "HashiCorp Vault",
    "azureKeyVault": "Azure Key Vault",
    "awsSecretManager": "AWS Secrets Manager",
    "gcpSecretManager": "GCP Secret Manager",
}
"""``spec.<key>.secrets[]``: each entry names a ``parameter``."""


@dataclass(frozen=True)
class Parameter:
    name: str
    """KEDA's parameter name: ``sasl``, ``username``, ``ca``..."""
    source: str
    """Where KEDA reads its value: ``Secret kafka-credentials``, ``env KAFKA_SASL``..."""


@dataclass(frozen=True)
class Authentication:
    """One TriggerAuthentication of the input."""

    ref: str
    """``TriggerAuthentication shop/kafka-auth`` (``ClusterTriggerAuthentication name``)."""
    parameters: tuple[Parameter, ...]

    @property
    def names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.parameters)

    def sources(self, names: set[str] | frozenset[str]) -> str:
        """``Secret a, env B``: where the named parameters come from, each source once."""
        found = [p.source for p in self.parameters if p.name in names]
        return ", ".join(dict.fromkeys(found)) or "nowhere"


def reference(kind: str, name: str, namespace: str) -> str:
    """How notes name a TriggerAuthentication; a ClusterTriggerAuthentication has no
    namespace."""
    if kind == "ClusterTriggerAuthentication":
        return f"{kind} {name}"
    return f"{kind} {namespace}/{name}"


def trigger_reference(trigger: Mapping[str, object], namespace: str) -> str | None:
    """The TriggerAuthentication a trigger's ``authenticationRef`` names, or None."""
    ref = trigger.get("authenticationRef")
    if not isinstance(ref, dict) or not ref.get("name"):
        return None
    return reference(str(ref.get("kind") or "TriggerAuthentication"), str(ref["name"]), namespace)


def read(obj: KubeObject) -> Authentication:
    """The parameters ``obj`` holds (entries without a parameter name are ignored: KEDA
    refuses them)."""
    spec = obj.body.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    found: list[Parameter] = []
    for entry in _entries(spec.get("secretTargetRef")):
        found.append(Parameter(str(entry["parameter"]), f"Secret {entry.get('name', '?')}"))
    for entry in _entries(spec.get("configMapTargetRef")):
        found.append(Parameter(str(entry["parameter"]), f"ConfigMap {entry.get('name', '?')}"))
    for entry in _entries(spec.get("env")):
        found.append(Parameter(str(entry["parameter"]), f"env {entry.get('name', '?')}"))
    for key, shown in SECRET_MANAGERS.items():
        manager = spec.get(key)
        if isinstance(manager, dict):
            for entry in _entries(manager.get("secrets")):
                found.append(Parameter(str(entry["parameter"]), shown))
    for entry in _entries(spec.get("boundServiceAccountToken")):
        found.append(Parameter(str(entry["parameter"]), "a service account token"))
    return Authentication(reference(obj.kind, obj.name, obj.namespace), tuple(found))


def _entries(value: object) -> list[dict[str, object]]:
    if not isinstance(value, list):
        return []
    return [e for e in value if isinstance(e, dict) and isinstance(e.get("parameter"), str)]
