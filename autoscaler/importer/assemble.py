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
from autoscaler.importer import auth
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
from autoscaler.importer.triggers import Context
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
    kafka_sasl: str | None = None
    """KEDA's ``sasl`` value where a Kafka trigger's TriggerAuthentication holds it."""
    kafka_tls: str | None = None
    """KEDA's ``tls`` value where a Kafka trigger's TriggerAuthentication holds it."""


@dataclass(frozen=True)
class Imported:
    """The config as data, which object each target came from, and every note."""

    document: dict[str, Any]
    sources: tuple[str, ...]
    """``sources[i]`` is the object ``targets[i]`` came from."""
    notes: tuple[Note, ...]
    objects: int
    """How many objects were read."""
    authentications_read: int = 0
    """TriggerAuthentications of the input that the imported triggers' objects use: read
    for their parameters' names (never their values), so not skipped."""

    @property
    def skipped(self) -> int:
        return self.objects - len(self.sources) - self.authentications_read

    @property
    def problems(self) -> tuple[Note, ...]:
        """Notes that stop the import: nothing is written while there is one."""
        return tuple(note for note in self.notes if note.error)

    def counts(self) -> str:
        """``2 objects (1 TriggerAuthentication read for its parameters), 1 skipped``."""
        objects = self.objects
        text = f"{objects} object{'' if objects == 1 else 's'}"
        read = self.authentications_read
        if read:
            text += (
                f" ({read} TriggerAuthentication{'' if read == 1 else 's'} read for "
                f"{'its' if read == 1 else 'their'} parameters)"
            )
        return text + (f", {self.skipped} skipped" if self.skipped else "")


def import_objects(objects: Sequence[KubeObject], options: ImportOptions) -> Imported:
    """Map every object, then name and share what the targets need."""
    notes: list[Note] = []
    drafts: list[TargetDraft] = []
    taken: dict[tuple[str, str, str], str] = {}
    authentications = {a.ref: a for a in (auth.read(o) for o in objects if _is_authentication(o))}
    context = Context(authentications, options.kafka_sasl, options.kafka_tls)
    for obj in objects:
        mapped = _map(obj, options, context)
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
    users = _authentication_users(objects)
    for authentication in authentications.values():
        notes.append(_read_note(authentication, users.get(authentication.ref, [])))
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
            for note in _cluster_notes(
                name, connection, clusters.users[name], said=_security_said(options)
            )
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
    read = sum(1 for ref in authentications if users.get(ref))
    return Imported(document, tuple(d.source for d in drafts), tuple(notes), len(objects), read)


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
    intro = (
        f"predictive-autoscaler configuration written by `autoscaler import` (autoscaler "
        f"{__version__}) from KEDA ScaledObjects and HorizontalPodAutoscalers: {count} "
        f"target{'' if count == 1 else 's'} from {imported.counts()}."
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


def _is_authentication(obj: KubeObject) -> bool:
    return obj.kind in auth.KINDS and obj.api_version.split("/", 1)[0] == "keda.sh"


def _authentication_users(objects: Sequence[KubeObject]) -> dict[str, list[str]]:
    """The ScaledObjects each TriggerAuthentication is named by (a trigger's
    ``authenticationRef``), in input order."""
    users: dict[str, list[str]] = {}
    for obj in objects:
        spec = obj.body.get("spec")
        if obj.kind != "ScaledObject" or not isinstance(spec, dict):
            continue
        triggers = spec.get("triggers")
        for trigger in triggers if isinstance(triggers, list) else []:
            if not isinstance(trigger, dict):
                continue
            ref = auth.trigger_reference(trigger, obj.namespace)
            if ref is not None and obj.ref not in users.setdefault(ref, []):
                users[ref].append(obj.ref)
    return users


def _read_note(authentication: auth.Authentication, users: list[str]) -> Note:
    """What was read from a TriggerAuthentication of the input, in plain words."""
    if not users:
        return Note(authentication.ref, "no ScaledObject of the input uses it: ignored")
    by_source: dict[str, list[str]] = {}
    for parameter in authentication.parameters:
        by_source.setdefault(parameter.source, []).append(parameter.name)
    held = "; ".join(f"{', '.join(names)} from {source}" for source, names in by_source.items())
    return Note(
        authentication.ref,
        f"read for {_users(users)}: the names of its parameters, "
        f"{held or 'none (no secretTargetRef, env or secret manager)'}; their values are "
        "never copied (the notes on the connection say what to fill in)",
    )


def _map(obj: KubeObject, options: ImportOptions, context: Context) -> Mapped:
    group = obj.api_version.split("/", 1)[0]
    if obj.kind == "ScaledObject" and group == "keda.sh":
        return map_scaled_object(obj, context)
    if obj.kind == "HorizontalPodAutoscaler" and group == "autoscaling":
        return map_hpa(obj, options.kafka_bootstrap_servers)
    if _is_authentication(obj):
        return Mapped(None)  # reported once every object is mapped (_read_note)
    if obj.kind == "ScaledJob":
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
    tls: dict[str, Any] = {}
    if connection.ca:
        tls["ca_file"] = _secret_file(KAFKA_SECRETS, "kafka", name, "ca.crt")
    if connection.client_certificate:
        tls["cert_file"] = _secret_file(KAFKA_SECRETS, "kafka", name, "tls.crt")
        tls["key_file"] = _secret_file(KAFKA_SECRETS, "kafka", name, "tls.key")
    if connection.tls and connection.insecure_skip_verify:
        tls["insecure_skip_verify"] = True
    if tls:
        body["tls"] = tls
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


def _security_said(options: ImportOptions) -> bool:
    return options.kafka_sasl is not None and options.kafka_tls is not None


def _cluster_notes(
    name: str, connection: KafkaConnection, users: list[str], *, said: bool = False
) -> list[Note]:
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
        if auth and connection.secret_sources:
            where += f" ({connection.secret_sources})"
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
    if connection.tls and auth and connection.authentication_read:
        files = []
        if connection.ca:
            files.append(f"the ca in {_secret_file(KAFKA_SECRETS, 'kafka', name, 'ca.crt')}")
        if connection.client_certificate:
            cert = _secret_file(KAFKA_SECRETS, "kafka", name, "tls.crt")
            key = _secret_file(KAFKA_SECRETS, "kafka", name, "tls.key")
            files.append(f"the cert in {cert} and the key in {key}")
        if files:
            notes.append(
                Note(
                    about,
                    f"tls: the files in {auth} are not copied: put {', '.join(files)} (a "
                    "mounted Secret, see deploy/secret.example.yaml), where the tls section "
                    "points",
                )
            )
    elif connection.tls and auth:
        notes.append(
            Note(
                about,
                f"tls: a ca, cert and key in {auth} are not copied: mount them and set "
                "tls.ca_file (and cert_file, key_file for a client certificate); until "
                "then the system CAs are trusted",
            )
        )
    unread = auth and not connection.authentication_read and not said
    if unread and (connection.sasl_mechanism is None or not connection.tls):
        notes.append(
            Note(
                about,
                f"{auth} is not in the input, and KEDA reads sasl and tls there too: if it "
                "holds them, this file lacks them; import it with the ScaledObject (kubectl "
                "get scaledobject,triggerauthentication -o yaml) or say them with "
                "--kafka-sasl and --kafka-tls",
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
