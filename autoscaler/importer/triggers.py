"""KEDA triggers as ours, key by key: the tables are the whole mapping.

A trigger's metadata key is mapped onto a trigger key (``KAFKA_KEYS``, ``PROMETHEUS_KEYS``),
goes to the connection the trigger needs (``*_CONNECTION_KEYS``: a ``kafka_clusters`` or
``prometheus_servers`` entry), is left out because nothing here needs it (``*_NOT_NEEDED``),
or is left out with a note saying what is lost (``*_UNSUPPORTED``, and any key this
importer does not know). A trigger key the config schema does not have (yet) is noted as
"not supported yet", so a new key is one line in a table once the schema has it.

Values are read as KEDA reads them (``values``); one KEDA would refuse skips the trigger,
saying so. Secrets are never copied: a TriggerAuthentication's values stay where they are,
and the file's notes say which file or variable to fill in. The one default kept ours on
purpose: a Prometheus query's empty result, which KEDA reads as 0 unless told otherwise
(``ignoreNullValues`` defaults to true) and this project as missing data (never a
scale-down); without ``ignoreNullValues`` a note says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from autoscaler.config.model import KafkaLagTrigger, PrometheusServerConfig, PrometheusTrigger
from autoscaler.importer import values
from autoscaler.importer.auth import Authentication, trigger_reference
from autoscaler.importer.drafts import KafkaConnection, Note, PrometheusConnection, TriggerDraft

KAFKA_TYPES = ("kafka", "apache-kafka")
PROMETHEUS_TYPE = "prometheus"
RESOURCE_TYPES = ("cpu", "memory")
NOT_OUR_JOB = (
    "CPU and memory scaling is not this project's job (it scales on Kafka lag and "
    "Prometheus queries; keep it in an HPA only for a workload this service does not scale)"
)


@dataclass(frozen=True)
class Key:
    """A KEDA metadata key's trigger key here, and how its string is read."""

    ours: str
    parse: Callable[[object], object]


def _one_topic(value: object) -> list[str]:
    topic = values.text(value)
    return [topic] if topic else []


def _topic_list(value: object) -> list[str]:  # apache-kafka: comma-separated
    return [topic.strip() for topic in values.text(value).split(",") if topic.strip()]


def _on_empty(value: object) -> str:
    return "zero" if values.boolean(value) else "unavailable"


KAFKA_KEYS: dict[str, Key] = {
    "consumerGroup": Key("consumer_group", values.text),
    "topic": Key("topics", _one_topic),
    "partitionLimitation": Key("partition_limitation", values.text),
    "lagThreshold": Key("lag_threshold", values.integer),
    "activationLagThreshold": Key("activation_lag_threshold", values.integer),
    "offsetResetPolicy": Key("offset_reset_policy", values.text),
    "allowIdleConsumers": Key("allow_idle_consumers", values.boolean),
    "excludePersistentLag": Key("exclude_persistent_lag", values.boolean),
    "scaleToZeroOnInvalidOffset": Key("scale_to_zero_on_invalid_offset", values.boolean),
    "limitToPartitionsWithLag": Key("limit_to_partitions_with_lag", values.boolean),
    "ensureEvenDistributionOfPartitions": Key(
        "ensure_even_distribution_of_partitions", values.boolean
    ),
}
"""KEDA kafka (and apache-kafka) metadata -> ``kafka_lag`` trigger keys."""
KAFKA_CONNECTION_KEYS = ("bootstrapServers", "sasl", "tls", "unsafeSsl")
KAFKA_NOT_NEEDED = {
    "version": "the client negotiates the protocol version with the brokers",
    "fullMetadata": "only the group's topics are read",
}
KAFKA_UNSUPPORTED = {
    "saslTokenProvider": "SASL OAUTHBEARER and AWS MSK IAM are not supported",
    "awsRegion": "AWS MSK IAM authentication is not supported",
}
KAFKA_SASL = {
    "none": None,
    "plaintext": "PLAIN",
    "scram_sha256": "SCRAM-SHA-256",
    "scram_sha512": "SCRAM-SHA-512",
}
"""KEDA's ``sasl`` -> ``sasl.mechanism``; oauthbearer, gssapi and aws_msk_iam have none."""
KAFKA_TLS = ("enable", "disable")
KAFKA_AUTH_SECURITY = ("sasl", "tls")
"""TriggerAuthentication parameters that decide the connection's security: their values
are in a Secret this import does not read, so the user says them (``Context``)."""
KAFKA_AUTH_MAPPED = {
    "username": "sasl.username",
    "password": "sasl.password_file",
    "ca": "tls.ca_file",
    "cert": "tls.cert_file",
    "key": "tls.key_file",
}
"""TriggerAuthentication parameters that become a placeholder (the value is never copied)."""
_OAUTH = ("oauthTokenEndpointUri", "scopes", "oauthExtensions")
_KERBEROS = ("realm", "kerberosConfig", "keytab", "kerberosServiceName", "kerberosDisableFAST")
_MSK_IAM = ("awsRegion", "awsAccessKeyID", "awsSecretAccessKey", "awsSessionToken", "awsRoleArn")
KAFKA_AUTH_UNSUPPORTED = {
    "keyPassword": "an encrypted client key is not supported: mount the key decrypted",
    **dict.fromkeys(_OAUTH, "SASL OAUTHBEARER is not supported"),
    **dict.fromkeys(_KERBEROS, "SASL GSSAPI (Kerberos) is not supported"),
    **dict.fromkeys(_MSK_IAM, "AWS MSK IAM authentication is not supported"),
}
FLAGS = {
    "sasl": "--kafka-sasl none|plaintext|scram_sha256|scram_sha512",
    "tls": "--kafka-tls enable|disable",
}


@dataclass(frozen=True)
class Context:
    """What mapping a trigger needs beyond its own object."""

    authentications: Mapping[str, Authentication] = field(default_factory=dict)
    """The TriggerAuthentications of the input, by ``reference``."""
    kafka_sasl: str | None = None
    """``--kafka-sasl``: KEDA's ``sasl`` value where a TriggerAuthentication holds it."""
    kafka_tls: str | None = None
    """``--kafka-tls``: KEDA's ``tls`` value where a TriggerAuthentication holds it."""

    def flag(self, key: str) -> str | None:
        return self.kafka_sasl if key == "sasl" else self.kafka_tls


PROMETHEUS_KEYS: dict[str, Key] = {
    "query": Key("query", values.text),
    "threshold": Key("target_value", values.number),
    "activationThreshold": Key("activation_threshold", values.number),
    "ignoreNullValues": Key("on_empty", _on_empty),
}
"""KEDA prometheus metadata -> ``prometheus`` trigger keys (``metricType``, a trigger field
in KEDA, -> ``metric_type``)."""
PROMETHEUS_CONNECTION_KEYS = (
    "serverAddress",
    "unsafeSsl",
    "customHeaders",
    "cortexOrgID",
    "timeout",
    "authModes",
)
PROMETHEUS_NOT_NEEDED = {"metricName": "deprecated in KEDA; the trigger has its own name"}
PROMETHEUS_UNSUPPORTED = {
    "namespace": "Thanos' namespace query parameter is not supported: select the namespace "
    "in the query",
    "queryParameters": "extra query parameters are not supported",
    "awsRegion": "Amazon Managed Prometheus (SigV4) is not supported",
    "identityOwner": "workload identity is not supported",
}


def map_trigger(
    trigger: object, index: int, ref: str, namespace: str, context: Context | None = None
) -> tuple[TriggerDraft | None, list[Note]]:
    if not isinstance(trigger, dict):
        return None, [Note(f"{ref}, triggers[{index}]", "not a mapping: skipped")]
    kind = trigger.get("type")
    name = trigger.get("name")
    about = f"{ref}, trigger {name or index} ({kind})"
    metadata = trigger.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    if kind in KAFKA_TYPES:
        return _kafka(trigger, metadata, str(kind), about, namespace, context or Context())
    if kind == PROMETHEUS_TYPE:
        return _prometheus(trigger, metadata, about, namespace)
    if kind in RESOURCE_TYPES:
        return None, [Note(about, f"{NOT_OUR_JOB}: skipped")]
    return None, [
        Note(
            about,
            "not supported here (this project scales on Kafka lag and Prometheus queries): skipped",
        )
    ]


@dataclass(frozen=True)
class _Table:
    scaler: str
    keys: dict[str, Key]
    connection: tuple[str, ...]
    not_needed: dict[str, str]
    unsupported: dict[str, str]
    model: type[BaseModel]


def _mapped_keys(
    metadata: dict[str, Any], table: _Table, about: str
) -> tuple[dict[str, Any] | None, list[Note]]:
    """The trigger keys the metadata maps to, and notes; None when KEDA itself would
    refuse a value or a key needs what cannot be known here (the trigger is skipped)."""
    body: dict[str, Any] = {}
    notes: list[Note] = []
    for key, raw in metadata.items():
        if key in table.keys:
            mapping = table.keys[key]
            if mapping.ours not in table.model.model_fields:
                notes.append(Note(about, f"{key}: not supported yet: left out"))
                continue
            try:
                body[mapping.ours] = mapping.parse(raw)
            except values.BadValueError as problem:
                return None, [
                    *notes,
                    Note(about, f"{key}: {problem}: skipped (KEDA refuses it too)"),
                ]
        elif key.endswith("FromEnv") and key[: -len("FromEnv")] in (*table.keys, *table.connection):
            plain = key[: -len("FromEnv")]
            if plain not in metadata:  # KEDA reads the metadata first
                return None, [
                    *notes,
                    Note(
                        about,
                        f"{plain} comes from the workload's environment variable "
                        f"{values.text(raw)} ({key}), which is not known here: write "
                        f"{plain} in the trigger's metadata: skipped",
                    ),
                ]
        elif key in table.connection or key in table.not_needed:
            continue
        elif key in table.unsupported:
            notes.append(Note(about, f"{key}: {table.unsupported[key]}: left out"))
        else:
            notes.append(
                Note(
                    about, f"{key}: not a key of KEDA's {table.scaler} scaler known here: left out"
                )
            )
    return body, notes


def _kafka(
    trigger: dict[str, Any],
    metadata: dict[str, Any],
    scaler: str,
    about: str,
    namespace: str,
    context: Context,
) -> tuple[TriggerDraft | None, list[Note]]:
    keys = dict(KAFKA_KEYS)
    if scaler == "apache-kafka":
        keys["topic"] = Key("topics", _topic_list)
    table = _Table(
        scaler, keys, KAFKA_CONNECTION_KEYS, KAFKA_NOT_NEEDED, KAFKA_UNSUPPORTED, KafkaLagTrigger
    )
    body, notes = _mapped_keys(metadata, table, about)
    if body is None:
        return None, notes
    for required in ("bootstrapServers", "consumerGroup"):
        if required not in metadata and f"{required}FromEnv" not in metadata:
            return None, [*notes, Note(about, f"no {required} (KEDA needs it too): skipped")]
    metric_type = trigger.get("metricType") or "AverageValue"
    if metric_type != "AverageValue":
        return None, [
            *notes,
            Note(
                about,
                f"metricType {metric_type}: a kafka_lag trigger sizes per replica "
                "(lag_threshold, as AverageValue) only: skipped",
            ),
        ]
    reference = trigger_reference(trigger, namespace)
    auth = context.authentications.get(reference) if reference else None
    security, security_notes = _kafka_security(metadata, reference, auth, context, about)
    notes.extend(security_notes)
    if security is None:
        return None, notes
    try:
        servers = [s.strip() for s in values.text(metadata["bootstrapServers"]).split(",")]
        sasl = values.text(security["sasl"]).lower()
        tls = values.text(security["tls"]).lower()
        unsafe = values.boolean(metadata.get("unsafeSsl", False))
    except values.BadValueError as problem:
        return None, [*notes, Note(about, f"{problem}: skipped (KEDA refuses it too)")]
    if sasl not in KAFKA_SASL:
        return None, [
            *notes,
            Note(
                about,
                f"sasl {sasl} is not supported here (plaintext, scram_sha256 and "
                "scram_sha512 are): skipped",
            ),
        ]
    if tls not in KAFKA_TLS:
        return None, [*notes, Note(about, f"tls {tls!r} is not enable or disable: skipped")]
    if unsafe and tls != "enable":
        notes.append(Note(about, "unsafeSsl without tls: enable does nothing: left out"))
    held = auth.names if auth is not None else frozenset()
    if tls == "enable" and len(held & {"cert", "key"}) == 1:
        return None, [
            *notes,
            Note(
                about,
                f"{auth.ref if auth else ''} holds one of cert and key: they go together: "
                "skipped (KEDA refuses it too)",
            ),
        ]
    if auth is not None:
        notes.extend(_unused_parameters(auth, KAFKA_SASL[sasl] is not None, tls == "enable", about))
    connection = KafkaConnection(
        bootstrap_servers=tuple(dict.fromkeys(s for s in servers if s)),
        sasl_mechanism=KAFKA_SASL[sasl],
        tls=tls == "enable",
        insecure_skip_verify=unsafe and tls == "enable",
        authentication=reference,
        authentication_read=auth is not None,
        ca=tls == "enable" and "ca" in held,
        client_certificate=tls == "enable" and {"cert", "key"} <= held,
        secret_sources="" if auth is None else auth.sources(held & set(KAFKA_AUTH_MAPPED)),
    )
    return TriggerDraft(_named({"type": "kafka_lag"}, trigger, body), connection), notes


def _kafka_security(
    metadata: dict[str, Any],
    reference: str | None,
    auth: Authentication | None,
    context: Context,
    about: str,
) -> tuple[dict[str, object] | None, list[Note]]:
    """The trigger's ``sasl`` and ``tls`` as KEDA reads them: from the metadata, else from
    its TriggerAuthentication (KEDA refuses both at once). A TriggerAuthentication of the
    input that holds one has its value in a Secret not read here: the user says it
    (``--kafka-sasl``, ``--kafka-tls``), or the import fails, naming the parameters; never
    a PLAINTEXT connection that validates. One not in the input may hold them: the flags
    apply to it too, and without them the cluster's notes say so."""
    held = auth.names if auth is not None else frozenset()
    security: dict[str, object] = {}
    unknown = []
    for key, default in (("sasl", "none"), ("tls", "disable")):
        flag = context.flag(key)
        if key in metadata and key in held and auth is not None:
            return None, [
                Note(
                    about,
                    f"{key} is set both in the trigger's metadata and in {auth.ref}: skipped "
                    "(KEDA refuses it too)",
                )
            ]
        if key in metadata:
            security[key] = metadata[key]
        elif key in held:
            if flag is None:
                unknown.append(key)
            security[key] = flag or default
        elif reference is not None and auth is None and flag is not None:
            security[key] = flag
        else:
            security[key] = default
    if unknown and auth is not None:
        they = "its value is" if len(unknown) == 1 else "their values are"
        return None, [
            Note(
                about,
                f"{' and '.join(unknown)} {'comes' if len(unknown) == 1 else 'come'} from "
                f"{auth.ref} ({auth.sources(set(unknown))}) and {they} not read here: say "
                f"what {'it is' if len(unknown) == 1 else 'they are'} with "
                f"{' and '.join(FLAGS[key] for key in unknown)} (without, this file would "
                "connect in PLAINTEXT)",
                error=True,
            )
        ]
    return security, []


def _unused_parameters(auth: Authentication, sasl: bool, tls: bool, about: str) -> list[Note]:
    """Notes on a TriggerAuthentication's parameters that this connection does not use."""
    held = auth.names
    notes = []
    idle_sasl = sorted(held & {"username", "password"}) if not sasl else []
    idle_tls = sorted(held & {"ca", "cert", "key", "keyPassword"}) if not tls else []
    if idle_sasl:
        what = ", ".join(idle_sasl)
        notes.append(Note(about, f"{what} in {auth.ref}: KEDA uses them only with sasl: left out"))
    if idle_tls:
        what = ", ".join(idle_tls)
        notes.append(Note(about, f"{what} in {auth.ref}: KEDA uses them only with tls: left out"))
    known = {*KAFKA_AUTH_SECURITY, *KAFKA_AUTH_MAPPED, *KAFKA_AUTH_UNSUPPORTED}
    for name in sorted(held - known):
        unknown = f"{name} in {auth.ref}: not a parameter of KEDA's kafka scaler known here"
        notes.append(Note(about, f"{unknown}: left out"))
    for name in sorted(held & set(KAFKA_AUTH_UNSUPPORTED)):
        if name != "keyPassword" or tls:
            notes.append(Note(about, f"{name} in {auth.ref}: {KAFKA_AUTH_UNSUPPORTED[name]}"))
    return notes


def _prometheus(
    trigger: dict[str, Any], metadata: dict[str, Any], about: str, namespace: str
) -> tuple[TriggerDraft | None, list[Note]]:
    table = _Table(
        PROMETHEUS_TYPE,
        PROMETHEUS_KEYS,
        PROMETHEUS_CONNECTION_KEYS,
        PROMETHEUS_NOT_NEEDED,
        PROMETHEUS_UNSUPPORTED,
        PrometheusTrigger,
    )
    body, notes = _mapped_keys(metadata, table, about)
    if body is None:
        return None, notes
    for required in ("serverAddress", "query", "threshold"):
        if required not in metadata:
            return None, [*notes, Note(about, f"no {required} (KEDA needs it too): skipped")]
    metric_type = trigger.get("metricType") or "AverageValue"
    if metric_type not in ("AverageValue", "Value"):
        return None, [
            *notes,
            Note(about, f"metricType {metric_type}: only AverageValue and Value are: skipped"),
        ]
    if metric_type != "AverageValue":
        body["metric_type"] = metric_type
    if "ignoreNullValues" not in metadata:
        notes.append(
            Note(
                about,
                "an empty query result is missing data here (never a scale-down), where "
                "KEDA's default (ignoreNullValues true) reads it as 0: set on_empty: zero "
                "if the query is empty when there is no work",
            )
        )
    connection, connection_notes = _prometheus_connection(trigger, metadata, about, namespace)
    notes.extend(connection_notes)
    if connection is None:
        return None, notes
    return TriggerDraft(_named({"type": "prometheus"}, trigger, body), connection), notes


def _prometheus_connection(
    trigger: dict[str, Any], metadata: dict[str, Any], about: str, namespace: str
) -> tuple[PrometheusConnection | None, list[Note]]:
    notes: list[Note] = []
    try:
        url = values.text(metadata["serverAddress"])
        unsafe = values.boolean(metadata.get("unsafeSsl", False))
        timeout = values.duration_seconds(metadata["timeout"]) if "timeout" in metadata else None
        pairs = [
            item.split("=", 1)
            for item in values.text(metadata.get("customHeaders", "")).split(",")
            if item.strip()
        ]
        modes = {m.strip() for m in values.text(metadata.get("authModes", "")).split(",")}
    except values.BadValueError as problem:
        return None, [Note(about, f"{problem}: skipped (KEDA refuses it too)")]
    headers: dict[str, str] = {}
    if "cortexOrgID" in metadata:
        headers["X-Scope-OrgID"] = values.text(metadata["cortexOrgID"])
    for pair in pairs:
        if len(pair) != 2 or not pair[0].strip():
            return None, [Note(about, "customHeaders is not name=value,...: skipped")]
        name, value = pair[0].strip(), pair[1].strip()
        if _carries_a_credential(name):
            notes.append(
                Note(
                    about,
                    f"customHeaders {name}: a credential is never written in this file: put "
                    "its value in a file (a mounted Secret) and name it under header_files",
                )
            )
        else:
            headers[name] = value
    for mode in sorted(modes - {"", "bearer"}):
        notes.append(Note(about, f"authModes {mode}: {_AUTH_MODES.get(mode, _AUTH_UNKNOWN)}"))
    connection = PrometheusConnection(
        url=url,
        insecure_skip_verify=unsafe,
        headers=tuple(headers.items()),
        timeout_seconds=timeout,
        bearer_token="bearer" in modes,
        authentication=trigger_reference(trigger, namespace),
    )
    return connection, notes


_AUTH_MODES = {
    "basic": "put 'Basic ' and the base64 of user:password in a file (a mounted Secret) and "
    "name it under the server's header_files as Authorization",
    "custom": "put customAuthValue in a file (a mounted Secret) and name it under the "
    "server's header_files, as customAuthHeader",
    "tls": "client certificates are not supported (a CA is: ca_file)",
}
_AUTH_UNKNOWN = "not supported: left out"


def _carries_a_credential(header: str) -> bool:
    """Whether the config refuses ``header`` under ``headers`` (its own rule, asked)."""
    try:
        PrometheusServerConfig.model_validate({"url": "http://p", "headers": {header: "x"}})
    except ValidationError:
        return True
    return False


def _named(head: dict[str, Any], trigger: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """``type``, then KEDA's trigger name (ours must be unique too), then the keys."""
    name = trigger.get("name")
    return {**head, **({"name": name} if isinstance(name, str) and name else {}), **body}
