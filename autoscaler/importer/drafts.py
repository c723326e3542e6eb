"""What one ScaledObject or HPA maps to, before names are given and the file is put together.

A draft target holds its config keys as plain data (what the YAML file will say), and each
trigger the connection it needs (a Kafka cluster, a Prometheus server) as a value: equal
connections become one named entry of ``kafka_clusters`` or ``prometheus_servers``, so
targets on one cluster share its connections, as the service intends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Note:
    """Something the user must know or do: a key not mapped, a secret left out."""

    about: str
    """``ScaledObject shop/orders``, ``..., trigger 0 (kafka)``, ``kafka_clusters.kafka``."""
    message: str
    error: bool = False
    """Nothing is written while any note is an error: the file would be wrong (a
    connection without the security its TriggerAuthentication gives it), not incomplete."""

    def __str__(self) -> str:
        return f"{self.about}: {self.message}"


@dataclass(frozen=True)
class KafkaConnection:
    """How a trigger reaches its brokers; equal ones are one cluster."""

    bootstrap_servers: tuple[str, ...]
    """In the order first written (duplicates dropped)."""
    sasl_mechanism: str | None = None
    """PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; None: no SASL."""
    tls: bool = False
    insecure_skip_verify: bool = False
    authentication: str | None = None
    """The TriggerAuthentication holding the credentials (never copied), as
    ``TriggerAuthentication shop/kafka-auth``."""
    security_known: bool = True
    """False when the source does not say how to reach Kafka (an HPA's lag metric)."""
    authentication_read: bool = False
    """The TriggerAuthentication was in the input: its parameters are known."""
    ca: bool = False
    """It holds a CA (``ca``) for TLS: ``tls.ca_file`` gets a placeholder."""
    client_certificate: bool = False
    """It holds a client certificate and key (``cert``, ``key``): ``tls.cert_file`` and
    ``tls.key_file`` get placeholders."""
    secret_sources: str = ""
    """Where its credentials come from (``Secret kafka-credentials``), for the notes."""

    @property
    def key(self) -> tuple[object, ...]:
        """Identity: the same brokers in any order, with the same security."""
        return (
            tuple(sorted(self.bootstrap_servers)),
            self.sasl_mechanism,
            self.tls,
            self.insecure_skip_verify,
            self.authentication,
            self.security_known,
            self.authentication_read,
            self.ca,
            self.client_certificate,
        )

    @property
    def security_protocol(self) -> str:
        if self.sasl_mechanism is not None:
            return "SASL_SSL" if self.tls else "SASL_PLAINTEXT"
        return "SSL" if self.tls else "PLAINTEXT"


@dataclass(frozen=True)
class PrometheusConnection:
    """How a trigger reaches its Prometheus; equal ones are one server."""

    url: str
    insecure_skip_verify: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    timeout_seconds: float | None = None
    bearer_token: bool = False
    """KEDA ``authModes: bearer``: the token is in the TriggerAuthentication."""
    authentication: str | None = None

    @property
    def key(self) -> tuple[object, ...]:
        return (
            self.url.rstrip("/"),
            self.insecure_skip_verify,
            tuple(sorted(self.headers)),
            self.timeout_seconds,
            self.bearer_token,
            self.authentication,
        )


Connection = KafkaConnection | PrometheusConnection


@dataclass(frozen=True)
class TriggerDraft:
    """A trigger's keys (``cluster`` / ``server`` are filled in when the file is built)."""

    body: dict[str, Any]
    connection: Connection


@dataclass(frozen=True)
class TargetDraft:
    """A target's keys but its name, and its triggers."""

    source: str
    """The object it came from: ``ScaledObject shop/orders``."""
    name: str
    namespace: str
    scale_target_ref: dict[str, str]
    replicas: dict[str, Any]
    """``min_replicas``... ``poll_interval_seconds``: written before the triggers."""
    triggers: tuple[TriggerDraft, ...]
    rules: dict[str, Any] = field(default_factory=dict)
    """``behavior``, ``fallback``: written after the triggers and the predictor."""


@dataclass(frozen=True)
class Mapped:
    """One object's outcome: a draft (None when skipped) and what to tell the user."""

    draft: TargetDraft | None
    notes: tuple[Note, ...] = ()


def skipped(about: str, why: str, notes: tuple[Note, ...] = ()) -> Mapped:
    """An object that becomes no target, saying why (after any notes already made)."""
    return Mapped(None, (*notes, Note(about, f"{why}: skipped")))
