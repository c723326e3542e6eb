"""The imported objects put together as one config file: names given, connections shared,
placeholders for the secrets left out, and a header that says what to check.

Each ScaledObject or HPA is one target named as the object (``<namespace>-<name>`` when the
same name is used in several namespaces); equal Kafka connections (the same brokers in any
order, the same security) are one ``kafka_clusters`` entry, ``kafka``, ``kafka-2``...;
equal Prometheus servers one ``prometheus_servers`` entry. A second object scaling a
workload already taken is skipped (two targets would fight over its replicas). The file is
forecast-only (``dry_run: true``) and every target predicts with ``auto``, as
``config.example.yaml`` does.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import yaml

from autoscaler import __version__
from autoscaler.config import AutoscalerConfig, parse_config
from autoscaler.importer.drafts import (
    KafkaConnection,
    Mapped,
    Note,
    PrometheusConnection,
    TargetDraft,
    TriggerDraft,
)
from autoscaler.importer.hpa import map_hpa
from autoscaler.importer.keda import map_scaled_object
from autoscaler.importer.manifests import KubeObject
from autoscaler.output import Format, dumps

PREDICTOR = {"model": "auto"}
"""As config.example.yaml: choose among the models by their measured accuracy."""
USERNAME_PLACEHOLDER = "change-me"
KAFKA_SECRETS = "/var/run/secrets/kafka"
PROMETHEUS_SECRETS = "/var/run/secrets/prometheus"
"""Where deploy/ mounts the Secrets (deploy/secret.example.yaml)."""


@dataclass(frozen=True)
class ImportOptions:
    kafka_bootstrap_servers: tuple[str, ...] | None = None
    """The cluster an HPA's consumer-lag metric is read from (an HPA does not say)."""


@dataclass(frozen=True)
class Imported:
    """The config as data, which object each target came from, and every note."""

    document: dict[str, Any]
    sources: tuple[str, ...]
    """``sources[i]`` is the object ``targets[i]`` came from."""
    notes: tuple[Note, ...]
    objects: int
    """How many objects were read."""

    @property
    def skipped(self) -> int:
        return self.objects - len(self.sources)


def import_objects(objects: Sequence[KubeObject], options: ImportOptions) -> Imported:
    """Map every object, then name and share what the targets need."""
    notes: list[Note] = []
    drafts: list[TargetDraft] = []
    taken: dict[tuple[str, str, str], str] = {}
    for obj in objects:
        mapped = _map(obj, options)
        notes.extend(mapped.notes)
        draft = mapped.draft
        if draft is None:
            continue
        workload = (draft.namespace, draft.scale_target_ref["kind"], draft.scale_target_ref["name"])
        if workload in taken:
            kind, name = workload[1], workload[2]
            notes.append(
                Note(
                    draft.source,
                    f"{kind} {draft.namespace}/{name} is already scaled by {taken[workload]} "
                    "(two targets would fight over its replicas): skipped",
                )
            )
            continue
        taken[workload] = draft.source
        drafts.append(draft)
    clusters = _Registry[KafkaConnection]("kafka")
    servers = _Registry[PrometheusConnection]("prometheus")
    names = _target_names(drafts)
    targets = [
        _target(draft, name, clusters, servers) for draft, name in zip(drafts, names, strict=True)
    ]
    document: dict[str, Any] = {"dry_run": True}
    if clusters.entries:
        document["kafka_clusters"] = {
            name: _cluster(name, connection) for name, connection in clusters.entries.items()
        }
        notes.extend(
            note
            for name, connection in clusters.entries.items()
            for note in _cluster_notes(name, connection, clusters.users[name])
        )
    if servers.entries:
        document["prometheus_servers"] = {
            name: _server(name, connection) for name, connection in servers.entries.items()
        }
        notes.extend(
            note
            for name, connection in servers.entries.items()
            for note in _server_notes(name, connection, servers.users[name])
        )
    document["targets"] = targets
    return Imported(document, tuple(d.source for d in drafts), tuple(notes), len(objects))


def check(imported: Imported) -> AutoscalerConfig:
    """The config as the service would load it, from the very text written.

    Raises:
        ConfigError: what the loader says.
    """
    return parse_config(yaml.safe_load(dumps(imported.document, "yaml")), "the imported config")


def render(imported: Imported, form: Format) -> str:
    """The file: YAML under its header, or JSON (no comments: the notes are on stderr)."""
    if form == "json":
        return dumps(imported.document, "json")
    return header(imported) + "\n" + dumps(imported.document, "yaml")


def header(imported: Imported) -> str:
    """What the file is and what to check before it scales anything, as YAML comments."""
    count = len(imported.sources)
    objects = imported.objects
    skipped = f", {imported.skipped} skipped" if imported.skipped else ""
    intro = (
        f"predictive-autoscaler configuration written by `autoscaler import` (autoscaler "
        f"{__version__}) from KEDA ScaledObjects and HorizontalPodAutoscalers: {count} "
        f"target{'' if count == 1 else 's'} from {objects} object"
        f"{'' if objects == 1 else 's'}{skipped}."
    )
    lines = [
        *textwrap.wrap(intro, 92),
        "",
        "FORECAST-ONLY: dry_run is true, so nothing is patched until you set it to false.",
        "First check the file and replay a target on history:",
        "  autoscaler validate FILE",
        "  autoscaler replay --config FILE --target NAME --per-replica-throughput MSG_PER_S",
        "then run it beside KEDA or the HPA and compare its decisions (the scaling_decision",
        "log lines, /status). Delete a target's ScaledObject or HPA before switching dry_run",
        "off: while one scales the workload, this service never patches it.",
        "",
        "startup_seconds (default 60: how long a new pod takes to consume) and",
        "per_replica_throughput (learned online when unset) are this project's own: worth",
        "setting for each target.",
    ]
    if imported.notes:
        lines += ["", "To check (also printed on stderr by the import):"]
    text = "\n".join(f"# {line}" if line else "#" for line in lines)
    for note in imported.notes:
        wrapped = textwrap.wrap(str(note), 90, break_on_hyphens=False)
        text += "\n#   - " + "\n#     ".join(wrapped)
    return text + "\n"


# --------------------------------------------------------------------------- pieces


def _map(obj: KubeObject, options: ImportOptions) -> Mapped:
    group = obj.api_version.split("/", 1)[0]
    if obj.kind == "ScaledObject" and group == "keda.sh":
        return map_scaled_object(obj)
    if obj.kind == "HorizontalPodAutoscaler" and group == "autoscaling":
        return map_hpa(obj, options.kafka_bootstrap_servers)
    if obj.kind in ("TriggerAuthentication", "ClusterTriggerAuthentication"):
        why = "its secrets are never copied (the notes of the triggers using it say what to do)"
    elif obj.kind == "ScaledJob":
        why = "a ScaledJob starts Jobs; this project scales Deployments and StatefulSets"
    else:
        why = "not a KEDA ScaledObject or an autoscaling HorizontalPodAutoscaler"
    return Mapped(None, (Note(obj.ref, f"{why}: ignored"),))


_C = TypeVar("_C", KafkaConnection, PrometheusConnection)


class _Registry(Generic[_C]):
    """Equal connections under one name: ``kafka``, ``kafka-2``..."""

    def __init__(self, stem: str) -> None:
        self.stem = stem
        self.entries: dict[str, _C] = {}
        self.users: dict[str, list[str]] = {}
        self._by_key: dict[tuple[object, ...], str] = {}

    def name(self, connection: _C, user: str) -> str:
        name = self._by_key.get(connection.key)
        if name is None:
            count = len(self.entries) + 1
            name = self.stem if count == 1 else f"{self.stem}-{count}"
            self._by_key[connection.key] = name
            self.entries[name] = connection
            self.users[name] = []
        if user not in self.users[name]:
            self.users[name].append(user)
        return name


def _target_names(drafts: Sequence[TargetDraft]) -> list[str]:
    """The object's name, or ``<namespace>-<name>`` when several namespaces use it."""
    namespaces: dict[str, set[str]] = {}
    for draft in drafts:
        namespaces.setdefault(draft.name, set()).add(draft.namespace)
    names = [f"{d.namespace}-{d.name}" if len(namespaces[d.name]) > 1 else d.name for d in drafts]
    counts = Counter(names)
    seen: Counter[str] = Counter()
    unique = []
    for name in names:  # "a-b" in "default" and "b" in "a": rare, but never two alike
        seen[name] += 1
        unique.append(f"{name}-{seen[name]}" if counts[name] > 1 and seen[name] > 1 else name)
    return unique


def _target(
    draft: TargetDraft,
    name: str,
    clusters: _Registry[KafkaConnection],
    servers: _Registry[PrometheusConnection],
) -> dict[str, Any]:
    triggers = [_trigger(t, name, clusters, servers) for t in draft.triggers]
    return {
        "name": name,
        "namespace": draft.namespace,
        "scale_target_ref": draft.scale_target_ref,
        **draft.replicas,
        "triggers": triggers,
        "predictor": dict(PREDICTOR),
        **draft.rules,
    }


def _trigger(
    trigger: TriggerDraft,
    target: str,
    clusters: _Registry[KafkaConnection],
    servers: _Registry[PrometheusConnection],
) -> dict[str, Any]:
    body = dict(trigger.body)
    head: dict[str, Any] = {key: body.pop(key) for key in ("type", "name") if key in body}
    connection = trigger.connection
    if isinstance(connection, KafkaConnection):
        return {**head, "cluster": clusters.name(connection, target), **body}
    return {**head, "server": servers.name(connection, target), **body}


def _secret_file(folder: str, stem: str, name: str, key: str) -> str:
    """deploy/'s mount: the first entry's file is ``key``, the others' ``<name>-key``."""
    return f"{folder}/{key}" if name == stem else f"{folder}/{name}-{key}"


def _cluster(name: str, connection: KafkaConnection) -> dict[str, Any]:
    body: dict[str, Any] = {"bootstrap_servers": list(connection.bootstrap_servers)}
    if connection.security_protocol != "PLAINTEXT":
        body["security_protocol"] = connection.security_protocol
    if connection.sasl_mechanism is not None:
        body["sasl"] = {
            "mechanism": connection.sasl_mechanism,
            "username": USERNAME_PLACEHOLDER,
            "password_file": _secret_file(KAFKA_SECRETS, "kafka", name, "password"),
        }
    if connection.tls and connection.insecure_skip_verify:
        body["tls"] = {"insecure_skip_verify": True}
    return body


def _server(name: str, connection: PrometheusConnection) -> dict[str, Any]:
    body: dict[str, Any] = {"url": connection.url}
    if connection.bearer_token:
        token = _secret_file(PROMETHEUS_SECRETS, "prometheus", name, "token")
        body["bearer_token_file"] = token
    if connection.insecure_skip_verify:
        body["insecure_skip_verify"] = True
    if connection.timeout_seconds is not None:
        body["timeout_seconds"] = connection.timeout_seconds
    if connection.headers:
        body["headers"] = dict(connection.headers)
    return body


def _users(users: list[str]) -> str:
    shown = ", ".join(users[:3])
    return f"{shown} and {len(users) - 3} more" if len(users) > 3 else shown


def _cluster_notes(name: str, connection: KafkaConnection, users: list[str]) -> list[Note]:
    about = f"kafka_clusters.{name} (for {_users(users)})"
    auth = connection.authentication
    notes = []
    if not connection.security_known:
        notes.append(
            Note(
                about,
                "from --kafka-bootstrap-servers, PLAINTEXT as nothing says otherwise: add "
                "security_protocol, sasl and tls if the brokers need them",
            )
        )
    if connection.sasl_mechanism is not None:
        where = f"in {auth}" if auth else "in no TriggerAuthentication (KEDA needs one)"
        password = _secret_file(KAFKA_SECRETS, "kafka", name, "password")
        notes.append(
            Note(
                about,
                f"sasl: the username and password are {where} and never copied here: set "
                f"sasl.username (it says {USERNAME_PLACEHOLDER}) and put the password in "
                f"{password} (a mounted Secret, see deploy/secret.example.yaml), or name an "
                "environment variable with password_env instead",
            )
        )
    if connection.tls and auth:
        notes.append(
            Note(
                about,
                f"tls: a ca, cert and key in {auth} are not copied: mount them and set "
                "tls.ca_file (and cert_file, key_file for a client certificate); until "
                "then the system CAs are trusted",
            )
        )
    if auth and connection.sasl_mechanism is None and not connection.tls:
        notes.append(
            Note(
                about,
                f"{auth} may set sasl and tls (KEDA reads them there too): if it does, set "
                "security_protocol and the sasl or tls section",
            )
        )
    return notes


def _server_notes(name: str, connection: PrometheusConnection, users: list[str]) -> list[Note]:
    about = f"prometheus_servers.{name} (for {_users(users)})"
    auth = connection.authentication
    if connection.bearer_token:
        token = _secret_file(PROMETHEUS_SECRETS, "prometheus", name, "token")
        where = f"in {auth}" if auth else "in no TriggerAuthentication (KEDA needs one)"
        return [
            Note(
                about,
                f"bearer_token_file: the token is {where} and never copied here: put it in "
                f"{token} (a mounted Secret)",
            )
        ]
    if auth:
        return [Note(about, f"{auth}: its credentials are not copied: see header_files")]
    return []
