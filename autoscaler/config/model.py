"""The typed schema of the one YAML file that configures the autoscaler.

Key names follow the vocabulary users already know from KEDA and the Kubernetes HPA
(``lag_threshold``, ``activation_lag_threshold``, ``stabilization_window_seconds``,
``select_policy``...), spelled in snake_case. Every section rejects unknown keys so that a
typo is an error naming its path, never a silently ignored setting.

Defaults that overlap the HPA equal the HPA's defaults (pkg/apis/autoscaling/v2/defaults.go);
defaults that overlap KEDA equal KEDA's (pkg/scalers/kafka_scaler.go, pkg/scaling/executor).

All models are frozen: a loaded configuration is a value, shared read-only by every target's
task, by the pure decision core and by replay.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    Strict,
    ValidationInfo,
    field_validator,
    model_validator,
)

from autoscaler.config.partitions import PartitionSet, parse_partition_limitation
from autoscaler.config.promql import promql_problem
from predictors.registry import model_parameters

# Kubernetes object names: DNS-1123 label (namespaces) and subdomain (workloads).
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
# Our own identifiers (target, trigger, cluster and server names) end up in metric labels,
# log fields and Kubernetes event messages: keep them to a safe, readable alphabet.
INT32_MAX = 2**31 - 1
"""Kubernetes replica counts are int32 (``spec.replicas``)."""
INT64_MAX = 2**63 - 1
"""Kafka offsets, so lags, are int64."""
_IDENTIFIER = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$")

PREDICTOR_MODELS = (
    "none",
    "naive",
    "seasonal_naive",
    "moving_average",
    "linear",
    "holt_winters",
    "seasonal_ridge",
    "quantile_gbm",
    "auto",
)
"""Predictor names selectable per target; ``none`` means purely reactive (no forecast)."""

PredictorModel = Literal[
    "none",
    "naive",
    "seasonal_naive",
    "moving_average",
    "linear",
    "holt_winters",
    "seasonal_ridge",
    "quantile_gbm",
    "auto",
]

FilePath = Annotated[Path, Strict(False)]
"""A file path, written as a plain string in YAML."""

_PARAMS_SET_ELSEWHERE = {
    "horizon_seconds": "startup_seconds + predictor.lead_margin_seconds",
    "quantile": "predictor.quantile",
    "step_seconds": "poll_interval_seconds",
    "window_seconds": "predictor.history_window_seconds",
}
"""Model parameters that come from the target's settings, never from ``predictor.params``."""

ParamValue = bool | int | float | str | list[int] | list[float] | list[str]


class Section(BaseModel):
    """Base of every config section: strict types, no unknown keys, immutable."""

    # allow_inf_nan=False: YAML's .inf is a float, and an infinite duration or replica count
    # would only fail much later (replay: "cannot convert float infinity to integer").
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


_CREDENTIAL_HEADER = re.compile(r"auth|token|key|secret|passw|cookie|session", re.IGNORECASE)
"""Header names that carry credentials (Authorization, X-API-Key, X-Auth-Token...)."""
_KAFKA_TOPIC = re.compile(r"^[A-Za-z0-9._-]+$")


def _kafka_topic_problem(topic: str) -> str | None:
    """Why Kafka would refuse ``topic`` as a name (its ``Topic.validate``), or None."""
    if topic in ("", ".", ".."):
        return "empty, '.' and '..' are not allowed"
    if len(topic) > 249:
        return f"{len(topic)} characters, at most 249"
    if not _KAFKA_TOPIC.match(topic):
        return "only ASCII letters, digits, '.', '_' and '-'"
    return None


def _check_identifier(value: str, what: str) -> str:
    if len(value) > 63 or not _IDENTIFIER.match(value):
        raise ValueError(
            f"{what} must be 1-63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return value


# --------------------------------------------------------------------------- global sections


class LoggingConfig(Section):
    """How log lines are written. ``auto``: JSON when stdout is not a TTY, console otherwise."""

    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


class ExternalScalerConfig(Section):
    """KEDA's external scaler gRPC protocol, served so that a ScaledObject with a trigger of
    ``type: external`` (or ``external-push``) and ``scalerAddress`` pointing here gets each
    target's decision, with KEDA actuating."""

    enabled: bool = False
    port: int = Field(6000, ge=1, le=65535)
    tls_cert_file: FilePath | None = None
    """With ``tls_key_file``: serve TLS (KEDA's ``enableTLS``); else plaintext."""
    tls_key_file: FilePath | None = None
    client_ca_file: FilePath | None = None
    """Require client certificates signed by this CA (KEDA's ``tlsClientCert``)."""
    cross_namespace: bool = False
    """Let a ScaledObject use a target of another namespace (``scalerMetadata.target``).
    Off: a ScaledObject only ever gets a target of its own namespace, so one tenant cannot
    read another's decisions, nor drive its own workload from them."""

    @model_validator(mode="after")
    def _tls_pair(self) -> ExternalScalerConfig:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("client_ca_file needs tls_cert_file and tls_key_file")
        return self


class ShardingConfig(Section):
    """Targets spread over the service's replicas: each target belongs to one of ``shards``
    shards (a stable hash of its workload), each shard is a Lease
    (``<leader_election.lease_name>-shard-<n>``), and only the replica holding a shard's
    Lease polls and patches its targets. 1: one leader drives every target
    (``leader_election``). The Leases use ``leader_election``'s namespace and timings."""

    shards: int = Field(1, ge=1, le=1024)


class ServerConfig(Section):
    """The service process: the HTTP endpoints it exposes (and, when enabled, the gRPC
    external scaler), how it shares targets with its replicas, where its refits run."""

    bind_address: str = "0.0.0.0"  # every interface: a pod must be reachable by its kubelet probes
    health_port: int = Field(8080, ge=1, le=65535)
    metrics_port: int = Field(9090, ge=1, le=65535)
    external_scaler: ExternalScalerConfig = Field(default_factory=ExternalScalerConfig)
    sharding: ShardingConfig = Field(default_factory=ShardingConfig)
    refit_workers: int | None = Field(None, ge=0, le=256)
    """Worker processes model refits run in (None: the pod's CPU limit; 0: a thread of
    the service's process, one fit at a time less than the CPUs)."""

    @model_validator(mode="after")
    def _distinct_ports(self) -> ServerConfig:
        ports = [self.health_port, self.metrics_port]
        if self.external_scaler.enabled:
            ports.append(self.external_scaler.port)
        if len(set(ports)) != len(ports):
            raise ValueError(
                "health_port, metrics_port and external_scaler.port (when enabled) must differ"
            )
        return self


class KubernetesConfig(Section):
    """How to reach the API server.

    ``auto`` uses the pod's service account when running in a cluster
    (KUBERNETES_SERVICE_HOST is set) and the kubeconfig otherwise.
    """

    mode: Literal["auto", "in_cluster", "kubeconfig"] = "auto"
    kubeconfig_path: FilePath | None = None
    context: str | None = None
    request_timeout_seconds: float = Field(10.0, gt=0, le=300)

    @model_validator(mode="after")
    def _kubeconfig_only_options(self) -> KubernetesConfig:
        if self.mode == "in_cluster" and (self.kubeconfig_path or self.context):
            raise ValueError("kubeconfig_path and context have no effect with mode: in_cluster")
        return self


class LeaderElectionConfig(Section):
    """A coordination.k8s.io/v1 Lease; only its holder patches replicas."""

    enabled: bool = True
    lease_name: str = "predictive-autoscaler"
    lease_namespace: str | None = None
    """None: the namespace the pod runs in (from its service account)."""
    lease_duration_seconds: float = Field(15.0, gt=0)
    renew_deadline_seconds: float = Field(10.0, gt=0)
    retry_period_seconds: float = Field(2.0, gt=0)

    @field_validator("lease_name")
    @classmethod
    def _lease_name(cls, value: str) -> str:
        if not _DNS1123_SUBDOMAIN.match(value) or len(value) > 253:
            raise ValueError("must be a valid Kubernetes object name (DNS-1123 subdomain)")
        return value

    @field_validator("lease_namespace")
    @classmethod
    def _lease_namespace(cls, value: str | None) -> str | None:
        if value is not None and (not _DNS1123_LABEL.match(value) or len(value) > 63):
            raise ValueError("must be a valid namespace name (DNS-1123 label)")
        return value

    @model_validator(mode="after")
    def _timings(self) -> LeaderElectionConfig:
        if self.renew_deadline_seconds >= self.lease_duration_seconds:
            raise ValueError("renew_deadline_seconds must be less than lease_duration_seconds")
        if self.retry_period_seconds >= self.renew_deadline_seconds:
            raise ValueError("retry_period_seconds must be less than renew_deadline_seconds")
        return self


# --------------------------------------------------------------------------- metric servers


class SaslConfig(Section):
    """SASL credentials. The password is never written in this file: it is read at start-up
    from an environment variable or a mounted file (a Kubernetes Secret)."""

    mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
    username: str = Field(min_length=1)
    password_env: str | None = None
    password_file: FilePath | None = None

    @model_validator(mode="after")
    def _one_password_source(self) -> SaslConfig:
        if (self.password_env is None) == (self.password_file is None):
            raise ValueError("set exactly one of password_env or password_file")
        return self


class TlsConfig(Section):
    """TLS settings for SSL and SASL_SSL listeners."""

    ca_file: FilePath | None = None
    cert_file: FilePath | None = None
    key_file: FilePath | None = None
    insecure_skip_verify: bool = False

    @model_validator(mode="after")
    def _client_cert_pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be set together")
        return self


class KafkaClusterConfig(Section):
    """One Kafka cluster; every target on it shares one set of connections."""

    bootstrap_servers: tuple[str, ...] = Field(min_length=1, strict=False)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl: SaslConfig | None = None
    tls: TlsConfig | None = None
    client_id: str = "predictive-autoscaler"
    request_timeout_seconds: float = Field(10.0, gt=0, le=300)

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_port(cls, servers: tuple[str, ...]) -> tuple[str, ...]:
        for server in servers:
            host, sep, port = server.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"'{server}' is not host:port")
        return servers

    @model_validator(mode="after")
    def _security(self) -> KafkaClusterConfig:
        uses_sasl = self.security_protocol.startswith("SASL_")
        uses_tls = self.security_protocol in ("SSL", "SASL_SSL")
        if uses_sasl and self.sasl is None:
            raise ValueError(f"security_protocol {self.security_protocol} needs a sasl section")
        if not uses_sasl and self.sasl is not None:
            raise ValueError(
                f"a sasl section needs security_protocol SASL_PLAINTEXT or SASL_SSL, "
                f"not {self.security_protocol}"
            )
        if not uses_tls and self.tls is not None:
            raise ValueError(
                f"a tls section needs security_protocol SSL or SASL_SSL, "
                f"not {self.security_protocol}"
            )
        return self


class PrometheusServerConfig(Section):
    """One Prometheus (or compatible) HTTP API endpoint."""

    url: str
    bearer_token_file: FilePath | None = None
    ca_file: FilePath | None = None
    insecure_skip_verify: bool = False
    timeout_seconds: float = Field(10.0, gt=0, le=300)
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    """Extra HTTP headers (e.g. a tenant id). Values are treated as secrets: never logged.
    A header that carries a credential (its name says auth, token, key, secret, password,
    cookie or session) is refused here: name its file under ``header_files``."""
    header_files: dict[str, FilePath] = Field(default_factory=dict)
    """HTTP headers whose value is read from a file (a mounted Secret), re-read when the
    file changes: for credentials, which never appear in this file."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not re.match(r"^https?://[^/\s]+", url):
            raise ValueError("must be an http:// or https:// URL")
        authority = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0]
        if "@" in authority:
            raise ValueError(
                "must not carry credentials (user:password@): secrets never appear in this "
                "file; use bearer_token_file, or an Authorization header under header_files"
            )
        return url.rstrip("/")

    @field_validator("headers")
    @classmethod
    def _no_inline_credentials(cls, headers: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name in headers:
            if _CREDENTIAL_HEADER.search(name):
                raise ValueError(
                    f"{name!r} carries a credential: secrets never appear in this file; put "
                    f"its value in a file (a mounted Secret) and name it under header_files"
                )
        return headers

    @model_validator(mode="after")
    def _one_authorization(self) -> PrometheusServerConfig:
        names = [key.lower() for key in [*self.headers, *self.header_files]]
        if self.bearer_token_file is not None and "authorization" in names:
            raise ValueError("both bearer_token_file and an Authorization header are set: use one")
        twice = sorted(name for name, count in Counter(names).items() if count > 1)
        if twice:
            raise ValueError(f"header {', '.join(twice)} is set twice (headers, header_files)")
        return self


# --------------------------------------------------------------------------- triggers


class KafkaLagTrigger(Section):
    """Consumer-group lag, as KEDA's Kafka scaler reads it (plus rates and capacity)."""

    type: Literal["kafka_lag"]
    name: str | None = None
    """Unique within the target; defaults to ``kafka_lag`` / ``kafka_lag-2``... by position."""
    cluster: str
    consumer_group: str = Field(min_length=1)
    topics: tuple[str, ...] = Field((), strict=False)
    """Empty: every topic the group has committed offsets for."""
    partition_limitation: str | None = None
    """KEDA ``partitionLimitation``: only these partitions of the listed topics count
    (``"1,2,10-20,31"``, syntax in ``autoscaler.config.partitions``); unset or blank: all."""
    lag_threshold: int = Field(10, gt=0, le=INT64_MAX)
    """KEDA ``lagThreshold``: the lag one replica is expected to handle."""
    activation_lag_threshold: int = Field(0, ge=0, le=INT64_MAX)
    offset_reset_policy: Literal["latest", "earliest"] = "latest"
    allow_idle_consumers: bool = False
    limit_to_partitions_with_lag: bool = False
    ensure_even_distribution_of_partitions: bool = False
    """KEDA ``ensureEvenDistributionOfPartitions``: the trigger asks for a count that divides
    the partitions evenly (the next one up), so each consumer gets as many partitions."""
    scale_to_zero_on_invalid_offset: bool = False
    exclude_persistent_lag: bool = False
    persistent_lag_polls: int = Field(3, ge=1, le=INT32_MAX)
    """A partition whose committed offset has not moved for this many polls, with lag, is stuck."""
    per_replica_throughput: float | None = Field(None, gt=0)
    """Messages/s one replica processes. None: learned online from the processing rate."""
    learn_throughput: bool = True
    """Learn the per-replica throughput from the processing rate while consumers are
    saturated (reported in ``/status`` beside a configured value, so a wrong one shows);
    without ``per_replica_throughput``, size for capacity with it once learned. False
    learns nothing and keeps KEDA's lag formula unless a throughput is configured."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else _check_identifier(value, "a trigger name")

    @field_validator("topics")
    @classmethod
    def _kafka_topic_names(cls, topics: tuple[str, ...]) -> tuple[str, ...]:
        for topic in topics:
            problem = _kafka_topic_problem(topic)
            if problem is not None:
                raise ValueError(f"{topic!r} is not a Kafka topic name: {problem}")
        return topics

    @field_validator("partition_limitation", mode="before")
    @classmethod
    def _one_partition_as_text(cls, value: object) -> object:
        # YAML reads a lone partition (partition_limitation: 3) as a number.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("partition_limitation")
    @classmethod
    def _partition_limitation(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or parse_partition_limitation(value) is None:
            return value
        if info.data.get("topics") == ():  # absent when the topics themselves failed
            # KEDA ignores it without a topic; here that would be a setting silently ignored.
            raise ValueError("needs topics: it names partitions of the listed topics")
        return value

    @field_validator("ensure_even_distribution_of_partitions")
    @classmethod
    def _even_distribution(cls, value: bool, info: ValidationInfo) -> bool:
        if not value:
            return value
        # Both as KEDA's Validate(); absent from info.data when they failed themselves.
        if info.data.get("topics") == ():
            raise ValueError(
                "needs topics: the partitions it divides are the listed topics' (KEDA needs "
                "a topic too)"
            )
        if info.data.get("limit_to_partitions_with_lag") is True:
            raise ValueError(
                "cannot be true with limit_to_partitions_with_lag (KEDA refuses it too)"
            )
        return value

    @property
    def limited_partitions(self) -> PartitionSet | None:
        """The partitions ``partition_limitation`` names; None when it limits nothing."""
        if self.partition_limitation is None:
            return None
        return parse_partition_limitation(self.partition_limitation)

    @model_validator(mode="after")
    def _keda_rules(self) -> KafkaLagTrigger:
        if self.allow_idle_consumers and self.limit_to_partitions_with_lag:
            raise ValueError(
                "allow_idle_consumers and limit_to_partitions_with_lag cannot both be true"
            )
        if len(set(self.topics)) != len(self.topics):
            raise ValueError("topics lists a topic twice")
        return self


class PrometheusTrigger(Section):
    """A PromQL query whose value drives replicas, as KEDA's Prometheus scaler."""

    type: Literal["prometheus"]
    name: str | None = None
    server: str
    query: str = Field(min_length=1)
    target_value: float = Field(gt=0)
    """Per replica (AverageValue) or in total (Value), as in an HPA External metric."""
    metric_type: Literal["AverageValue", "Value"] = "AverageValue"
    activation_threshold: float = Field(0.0, ge=0)
    on_empty: Literal["unavailable", "zero"] = "unavailable"
    """What an empty result means. ``unavailable`` (default) never scales down on it;
    ``zero`` is for queries that are legitimately empty when idle (KEDA ignoreNullValues)."""

    @field_validator("query")
    @classmethod
    def _valid_promql(cls, query: str) -> str:
        problem = promql_problem(query)
        if problem is not None:
            raise ValueError(f"is not valid PromQL: {problem}")
        return query

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else _check_identifier(value, "a trigger name")


Trigger = Annotated[KafkaLagTrigger | PrometheusTrigger, Field(discriminator="type")]


# --------------------------------------------------------------------------- target sections


class ScaleTargetRef(Section):
    """The workload whose ``scale`` subresource is patched (as HPA ``scaleTargetRef``)."""

    kind: Literal["Deployment", "StatefulSet"] = "Deployment"
    name: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _DNS1123_SUBDOMAIN.match(value) or len(value) > 253:
            raise ValueError("must be a valid Kubernetes object name (DNS-1123 subdomain)")
        return value


class ScalingPolicy(Section):
    """HPA ``HPAScalingPolicy``: change at most ``value`` pods or percent per period."""

    type: Literal["Pods", "Percent"]
    value: int = Field(gt=0, le=INT32_MAX)
    period_seconds: int = Field(gt=0, le=1800)


class _ScalingRules(Section):
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"
    tolerance: float = Field(0.1, ge=0)
    """No change while the usage ratio is within 1 ± tolerance (HPA default 0.1)."""


class ScaleUpRules(_ScalingRules):
    """HPA ``behavior.scaleUp``; unset fields take the HPA's defaults."""

    stabilization_window_seconds: int = Field(0, ge=0, le=3600)
    policies: tuple[ScalingPolicy, ...] = Field(
        default=(
            ScalingPolicy(type="Pods", value=4, period_seconds=15),
            ScalingPolicy(type="Percent", value=100, period_seconds=15),
        ),
        min_length=1,
        strict=False,
    )


class ScaleDownRules(_ScalingRules):
    """HPA ``behavior.scaleDown``; unset fields take the HPA's defaults."""

    stabilization_window_seconds: int = Field(300, ge=0, le=3600)
    policies: tuple[ScalingPolicy, ...] = Field(
        default=(ScalingPolicy(type="Percent", value=100, period_seconds=15),),
        min_length=1,
        strict=False,
    )


class BehaviorConfig(Section):
    """HPA v2 ``spec.behavior``."""

    scale_up: ScaleUpRules = Field(default_factory=ScaleUpRules)
    scale_down: ScaleDownRules = Field(default_factory=ScaleDownRules)

    @property
    def longest_policy_period(self) -> int:
        """How long scale events must be kept to evaluate every policy."""
        return max(p.period_seconds for p in (*self.scale_up.policies, *self.scale_down.policies))


class PredictorConfig(Section):
    """Which model forecasts this target's load, and how far ahead."""

    model: PredictorModel = "auto"
    params: dict[str, ParamValue] = Field(default_factory=dict)
    """Model parameters, by the model's own parameter names."""

    @field_validator("params")
    @classmethod
    def _params_of_the_model(
        cls, params: dict[str, ParamValue], info: ValidationInfo
    ) -> dict[str, ParamValue]:
        model = info.data.get("model")
        if model is None or model == "none" or not params:
            if model == "none" and params:
                raise ValueError("model none takes no params")
            return params
        accepted = set(model_parameters(model)) - set(_PARAMS_SET_ELSEWHERE)
        for name in params:
            if name in _PARAMS_SET_ELSEWHERE:
                raise ValueError(f"'{name}' is set by {_PARAMS_SET_ELSEWHERE[name]}, not params")
            if name not in accepted:
                hint = difflib.get_close_matches(name, sorted(accepted), n=1)
                did_you_mean = f"did you mean '{hint[0]}'? " if hint else ""
                raise ValueError(
                    f"model {model} has no parameter '{name}' "
                    f"({did_you_mean}parameters: {', '.join(sorted(accepted))})"
                )
        return params

    lead_margin_seconds: float = Field(30.0, ge=0)
    """Added to the target's startup_seconds: lead time = startup + margin."""
    history_window_seconds: float = Field(14 * 86400.0, gt=0)
    retrain_interval_seconds: float = Field(86400.0, gt=0)
    quantile: float = Field(0.9, ge=0.5, lt=1.0)
    """Size for this quantile of the forecast (0.5: the median, no headroom)."""


class SloConfig(Section):
    """The service level the capacity sizing aims for."""

    max_lag_seconds: float = Field(60.0, gt=0)
    """The longest acceptable time to drain the backlog at the current capacity."""
    target_utilization: float = Field(1.0, gt=0, le=1)
    """Flink's ``target.utilization``: capacity sizing keeps the arrival rate ahead at this
    share of the replicas' throughput, so bursts no forecast sees land on spare capacity.
    1.0 sizes for the forecast alone."""
    budget_percent: float | None = Field(None, gt=0, lt=100)
    """The share of time (percent) the lag may exceed ``max_lag_seconds``. Set, the forecast
    quantile sizing takes is adapted online (``predictor.quantile`` is only where it starts)
    so that the violations settle at this share at the least headroom. Unset, the quantile
    stays at ``predictor.quantile``."""


class FallbackConfig(Section):
    """What to do after ``failure_threshold`` consecutive failed polls of a trigger (KEDA).

    ``current_replicas`` (default) holds; ``static`` goes to ``replicas``;
    ``current_replicas_if_higher`` / ``_if_lower`` go to ``replicas`` only in that direction.
    ``static`` and ``current_replicas_if_lower`` are the only settings under which missing
    metrics can lower the replica count, and only because this file asks for it.
    """

    failure_threshold: int = Field(3, ge=1, le=INT32_MAX)
    behavior: Literal[
        "current_replicas", "static", "current_replicas_if_higher", "current_replicas_if_lower"
    ] = "current_replicas"
    replicas: int | None = Field(None, ge=0, le=INT32_MAX)

    @model_validator(mode="after")
    def _replicas_when_needed(self) -> FallbackConfig:
        if self.behavior != "current_replicas" and self.replicas is None:
            raise ValueError(f"behavior {self.behavior} needs replicas")
        return self


class ActuationConfig(Section):
    """Rebalance-aware actuation: every replica change rebalances the consumer group, so
    fewer, larger steps are cheaper than many small ones."""

    min_dwell_seconds: float = Field(0.0, ge=0)
    """No replica change within this long after the previous one."""
    min_step: int = Field(1, ge=1, le=INT32_MAX)
    """Ignore changes smaller than this, unless they reach a bound (min, max, partitions)."""


class ScalingEffectivenessConfig(Section):
    """Stop scaling up when scale-ups do not raise the group's processing rate (a
    downstream bottleneck, a shared limit, a stuck consumer), as Flink's autoscaler does
    (``autoscaler.decision.effectiveness``)."""

    enabled: bool = True
    threshold: float = Field(0.1, gt=0, le=1)
    """A scale-up is effective when the processing rate rose by at least this share of the
    rise its new replicas should bring (Flink's ``scaling.effectiveness.threshold``)."""
    max_ineffective: int = Field(2, ge=1, le=100)
    """Ineffective scale-ups in a row after which scale-ups stop."""
    cooldown_seconds: float = Field(900.0, ge=0)
    """How long scale-ups stay stopped before one is tried again."""
    evaluation_seconds: float = Field(30.0, gt=0, le=3600.0)
    """How long the processing rate is pooled over, before and after a scale-up (at least
    two polls): consumers commit every few seconds, so one poll's rate is noisy."""


class PlannerConfig(Section):
    """The receding-horizon planner (``autoscaler.decision.planner``): each poll, the
    cheapest replica schedule over the forecast path that keeps the predicted lag within
    ``slo.max_lag_seconds``; its first step is applied. ``planner: none`` (or ``enabled:
    false``) sizes one number per poll instead, as before the planner."""

    enabled: bool = True
    horizon_seconds: float = Field(1800.0, gt=0, le=6 * 3600.0)
    """How far ahead each plan looks. Never shorter than start-up plus the scale-down
    stabilization window plus two polls (a plan must see past the scale-downs it announces)."""
    scale_event_cost_seconds: float = Field(10.0, ge=0, le=3600.0)
    """What one replica change costs, in seconds of the whole group's processing (a
    rebalance stops every consumer for about this long): the plan holds replicas through a
    dip too short to pay for two changes."""


def _planner_none(value: Any) -> Any:
    """``planner: none`` is ``planner: {enabled: false}``."""
    if value == "none":
        return {"enabled": False}
    return value


class TargetConfig(Section):
    """One scaled workload and everything that decides its replica count."""

    name: str
    namespace: str = "default"
    scale_target_ref: ScaleTargetRef
    min_replicas: int = Field(1, ge=0, le=INT32_MAX)
    max_replicas: int = Field(100, ge=1, le=INT32_MAX)
    idle_replicas: int | None = Field(None, ge=0, le=INT32_MAX)
    """Replicas while every trigger is inactive (KEDA idleReplicaCount); 0 scales to zero.
    With min_replicas 0 and no idle_replicas, the idle count is 0."""
    cooldown_seconds: float = Field(300.0, ge=0)
    """How long all triggers must be inactive before going to the idle count."""
    startup_seconds: float = Field(60.0, ge=0)
    """Time from a replica being requested to it consuming: the forecast's lead time base.
    Left out of the config, the decisions use the start-up the service measures (the p90
    of its last scale-ups, ``autoscaler.decision.startup``) once it has; 60 s until then.
    The forecast's lead time stays this value."""
    poll_interval_seconds: float = Field(15.0, gt=0)
    stale_after_seconds: float | None = Field(None, gt=0)
    """An observation older than this counts as missing. None: 3 poll intervals."""
    dry_run: bool = True
    triggers: tuple[Trigger, ...] = Field(min_length=1, strict=False)
    trigger_combination: Literal["max", "min"] = "max"
    predictor: PredictorConfig = Field(default_factory=PredictorConfig)
    slo: SloConfig = Field(default_factory=SloConfig)
    behavior: BehaviorConfig = Field(default_factory=BehaviorConfig)
    fallback: FallbackConfig = Field(default_factory=FallbackConfig)
    actuation: ActuationConfig = Field(default_factory=ActuationConfig)
    planner: PlannerConfig = Field(default_factory=PlannerConfig)
    scaling_effectiveness: ScalingEffectivenessConfig = Field(
        default_factory=ScalingEffectivenessConfig
    )

    @field_validator("planner", mode="before")
    @classmethod
    def _planner_off(cls, value: Any) -> Any:
        return _planner_none(value)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_identifier(value, "a target name")

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not _DNS1123_LABEL.match(value) or len(value) > 63:
            raise ValueError("must be a valid namespace name (DNS-1123 label)")
        return value

    # Cross-field rules are field validators (reading earlier fields from ``info.data``), not
    # a model validator: pydantic skips model validators when any field fails, and every
    # problem of a file must be reported at once.

    @field_validator("max_replicas")
    @classmethod
    def _max_not_below_min(cls, value: int, info: ValidationInfo) -> int:
        min_replicas = info.data.get("min_replicas")
        if min_replicas is not None and min_replicas > value:
            raise ValueError(f"must be at least min_replicas ({min_replicas})")
        return value

    @field_validator("idle_replicas")
    @classmethod
    def _idle_below_min(cls, value: int | None, info: ValidationInfo) -> int | None:
        min_replicas = info.data.get("min_replicas")
        if value is not None and min_replicas is not None and value >= min_replicas:
            raise ValueError(f"must be less than min_replicas ({min_replicas})")
        return value

    @field_validator("triggers")
    @classmethod
    def _unique_trigger_names(cls, triggers: tuple[Trigger, ...]) -> tuple[Trigger, ...]:
        counts = Counter(_trigger_names(triggers))
        duplicates = sorted(name for name, count in counts.items() if count > 1)
        if duplicates:
            raise ValueError(f"trigger names must be unique: {', '.join(duplicates)} twice")
        return triggers

    @field_validator("slo")
    @classmethod
    def _budget_needs_lag_and_forecast(cls, value: SloConfig, info: ValidationInfo) -> SloConfig:
        if value.budget_percent is None:
            return value
        predictor = info.data.get("predictor")
        if predictor is not None and predictor.model == "none":
            raise ValueError(
                "budget_percent adapts the forecast quantile: set a predictor.model "
                "(it is none), or remove the budget"
            )
        triggers = info.data.get("triggers")
        if triggers is not None and not any(isinstance(t, KafkaLagTrigger) for t in triggers):
            raise ValueError(
                "budget_percent is a budget for consumer lag: the target needs a kafka_lag trigger"
            )
        return value

    @field_validator("fallback")
    @classmethod
    def _fallback_within_max(cls, value: FallbackConfig, info: ValidationInfo) -> FallbackConfig:
        max_replicas = info.data.get("max_replicas")
        if (
            value.replicas is not None
            and max_replicas is not None
            and value.replicas > max_replicas
        ):
            raise ValueError(
                f"replicas ({value.replicas}) must not exceed max_replicas ({max_replicas})"
            )
        return value

    @property
    def trigger_names(self) -> tuple[str, ...]:
        """Each trigger's name: its own, or its type numbered by position among that type."""
        return _trigger_names(self.triggers)

    @property
    def idle_replica_count(self) -> int | None:
        """The replica count while inactive, or None when scale-to-idle is off."""
        if self.idle_replicas is not None:
            return self.idle_replicas
        return 0 if self.min_replicas == 0 else None

    @property
    def active_min_replicas(self) -> int:
        """The floor while active: a target that scales to zero still runs one when active."""
        return max(self.min_replicas, 1)

    @property
    def startup_configured(self) -> bool:
        """Whether the config sets ``startup_seconds`` (else the measured one is used once
        known: ``decision.startup``)."""
        return "startup_seconds" in self.model_fields_set

    @property
    def lead_time_seconds(self) -> float:
        """How far ahead the forecast looks: pod start-up plus a margin."""
        return self.startup_seconds + self.predictor.lead_margin_seconds

    @property
    def planning(self) -> bool:
        """Whether decisions are planned over the forecast path: the planner is on and a
        model forecasts (without one there is no path to plan on)."""
        return self.planner.enabled and self.predictor.model != "none"

    @property
    def plan_horizon_seconds(self) -> float:
        """The planner's horizon: as configured, but at least start-up, the scale-down
        stabilization window and two polls."""
        floor = (
            self.startup_seconds
            + self.behavior.scale_up.stabilization_window_seconds
            + self.behavior.scale_down.stabilization_window_seconds
            + 2 * self.poll_interval_seconds
        )
        return max(self.planner.horizon_seconds, floor)

    @property
    def stale_after(self) -> float:
        """Age past which an observation counts as missing."""
        if self.stale_after_seconds is not None:
            return self.stale_after_seconds
        return 3 * self.poll_interval_seconds


class AutoscalerConfig(Section):
    """The whole file."""

    poll_interval_seconds: float = Field(15.0, gt=0)
    """Default for every target (a target may set its own)."""
    dry_run: bool = True
    """Forecast-only: decide and report, never patch. The default, until you trust it;
    a target may override it."""
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    kubernetes: KubernetesConfig = Field(default_factory=KubernetesConfig)
    leader_election: LeaderElectionConfig = Field(default_factory=LeaderElectionConfig)
    kafka_clusters: dict[str, KafkaClusterConfig] = Field(default_factory=dict)
    prometheus_servers: dict[str, PrometheusServerConfig] = Field(default_factory=dict)
    targets: tuple[TargetConfig, ...] = Field(min_length=1, strict=False)

    @model_validator(mode="before")
    @classmethod
    def _inherit_target_defaults(cls, data: Any) -> Any:
        """Targets inherit poll_interval_seconds and dry_run from the top level."""
        if not isinstance(data, dict) or not isinstance(data.get("targets"), list):
            return data
        inherited = {key: data[key] for key in ("poll_interval_seconds", "dry_run") if key in data}
        targets = [
            {**inherited, **target} if isinstance(target, dict) else target
            for target in data["targets"]
        ]
        return {**data, "targets": targets}

    @field_validator("kafka_clusters", "prometheus_servers")
    @classmethod
    def _server_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            _check_identifier(name, "a name")
        return value

    @model_validator(mode="after")
    def _sharding_needs_leases(self) -> AutoscalerConfig:
        if self.server.sharding.shards > 1 and not self.leader_election.enabled:
            raise ValueError(
                "server.sharding.shards > 1 needs leader_election.enabled: the shards are "
                "Leases, in its namespace and with its timings"
            )
        return self

    def target(self, name: str) -> TargetConfig:
        """The target called ``name``; KeyError naming the known ones otherwise."""
        for target in self.targets:
            if target.name == name:
                return target
        known = ", ".join(t.name for t in self.targets)
        raise KeyError(f"no target named '{name}' (known: {known})")


def _trigger_names(triggers: tuple[Trigger, ...]) -> tuple[str, ...]:
    names: list[str] = []
    seen: dict[str, int] = {}
    for trigger in triggers:
        seen[trigger.type] = seen.get(trigger.type, 0) + 1
        count = seen[trigger.type]
        default = trigger.type if count == 1 else f"{trigger.type}-{count}"
        names.append(trigger.name or default)
    return tuple(names)
