"""The config loader: the example file loads, and every bad file gets exactly the right words.

Each bad case is a real file in tmp_path and the exact ``path: message`` lines the user would
read, so a change to any message is a visible, reviewed change here.
"""

from __future__ import annotations

import functools
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from autoscaler.config import (
    AutoscalerConfig,
    ConfigError,
    KafkaLagTrigger,
    Problem,
    PrometheusTrigger,
    load_config,
    parse_config,
)
from autoscaler.config import source as config_source
from autoscaler.config.model import BehaviorConfig, FallbackConfig
from autoscaler.config.source import parse_yaml

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.yaml"

# Shared by most cases: one Kafka cluster and one Prometheus server, both called "main".
SERVERS = """\
kafka_clusters:
  main:
    bootstrap_servers: [kafka:9092]
prometheus_servers:
  main:
    url: http://prometheus:9090
"""

# A valid target, for cases about something else.
TARGET = """\
  - name: orders
    scale_target_ref: {name: orders}
    triggers:
      - type: kafka_lag
        cluster: main
        consumer_group: orders
"""


def _write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _problems(path: Path) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def _lines(problems: list[Problem]) -> list[str]:
    return [f"{problem.path}: {problem.message}" for problem in problems]


def _target(body: str) -> str:
    """A config whose only target is ``body`` (target keys, indented by four spaces)."""
    return SERVERS + "targets:\n  - name: orders\n" + textwrap.indent(textwrap.dedent(body), "    ")


def _trigger(body: str) -> str:
    """A config whose only target has the one trigger ``body`` (trigger keys)."""
    return _target(
        "scale_target_ref: {name: orders}\ntriggers:\n  - "
        + textwrap.indent(textwrap.dedent(body), "    ").lstrip()
    )


REF = "scale_target_ref: {name: orders}\n"
LIMITED = "type: kafka_lag\ncluster: main\nconsumer_group: g\ntopics: [orders]\n"
TRIGGERS = "triggers: [{type: kafka_lag, cluster: main, consumer_group: orders}]\n"


# --------------------------------------------------------------------------- the example


def test_example_loads_and_round_trips() -> None:
    config = load_config(EXAMPLE)

    assert config.dry_run is True
    assert config.poll_interval_seconds == 15
    main = config.kafka_clusters["main"]
    assert main.security_protocol == "SASL_SSL"
    assert main.sasl is not None
    assert main.sasl.mechanism == "SCRAM-SHA-512"
    assert main.sasl.password_file == Path("/var/run/secrets/kafka/password")
    assert main.sasl.password_env is None
    assert config.prometheus_servers["main"].url == "http://prometheus-operated.monitoring.svc:9090"

    orders, invoices = config.targets
    assert (orders.name, orders.namespace, orders.scale_target_ref.kind) == (
        "orders-consumer",
        "shop",
        "Deployment",
    )
    assert (orders.min_replicas, orders.max_replicas, orders.idle_replica_count) == (1, 50, None)
    (lag,) = orders.triggers
    assert isinstance(lag, KafkaLagTrigger)
    assert (lag.cluster, lag.consumer_group, lag.topics) == ("main", "orders", ("orders",))
    assert (lag.lag_threshold, lag.per_replica_throughput) == (625, 250)
    assert orders.predictor.model == "auto"
    assert orders.lead_time_seconds == 90
    assert orders.slo.max_lag_seconds == 60
    # The behavior is written out with the HPA's defaults: it must equal them.
    assert orders.behavior == BehaviorConfig()
    assert orders.fallback == FallbackConfig()
    assert (orders.actuation.min_dwell_seconds, orders.actuation.min_step) == (60, 2)

    assert invoices.min_replicas == 0
    assert invoices.idle_replica_count == 0
    (query,) = invoices.triggers
    assert isinstance(query, PrometheusTrigger)
    assert (query.server, query.target_value, query.on_empty) == ("main", 50, "zero")


def _schema_keys(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    """Every key name of ``model`` and of the sections below it."""
    if model in seen:
        return set()
    seen.add(model)
    keys = set(model.model_fields)
    for field in model.model_fields.values():
        stack: list[Any] = [field.annotation]
        while stack:
            annotation = stack.pop()
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                keys |= _schema_keys(annotation, seen)
            elif get_origin(annotation) is not None:  # X | None, tuple[X, ...], dict[str, X]
                stack.extend(get_args(annotation))
    return keys


def test_example_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    keys = _schema_keys(AutoscalerConfig, set())
    undocumented = sorted(
        key for key in keys if not re.search(rf"^\s*(#\s*)?(- )?{key}:", text, re.MULTILINE)
    )
    assert undocumented == []
    assert len(keys) > 80


# --------------------------------------------------------------------------- bad values

VALUE_CASES = [
    pytest.param(
        _target(REF + TRIGGERS + "min_replicas: two\n"),
        ["targets[0].min_replicas: must be an integer"],
        id="int-given-a-string",
    ),
    pytest.param(
        _target(REF + TRIGGERS + "max_replicas: 2.5\n"),
        ["targets[0].max_replicas: must be an integer"],
        id="int-given-a-float",
    ),
    pytest.param(
        _target(REF + TRIGGERS + "cooldown_seconds: soon\n"),
        ["targets[0].cooldown_seconds: must be a number"],
        id="number-given-a-string",
    ),
    pytest.param(
        _target(REF + TRIGGERS + "dry_run: maybe\n"),
        ["targets[0].dry_run: must be true or false"],
        id="bool-given-a-string",
    ),
    pytest.param(
        _trigger("type: kafka_lag\ncluster: main\nconsumer_group: 42\n"),
        ["targets[0].triggers[0].consumer_group: must be a string"],
        id="string-given-a-number",
    ),
    pytest.param(
        _trigger("type: kafka_lag\ncluster: main\nconsumer_group: ''\n"),
        ["targets[0].triggers[0].consumer_group: must not be empty"],
        id="empty-string",
    ),
    pytest.param(
        _target("scale_target_ref: {kind: Job, name: orders}\n" + TRIGGERS),
        ["targets[0].scale_target_ref.kind: must be one of: 'Deployment', 'StatefulSet'"],
        id="not-one-of",
    ),
    pytest.param(
        _target("scale_target_ref: {kind: deployment, name: orders}\n" + TRIGGERS),
        [
            "targets[0].scale_target_ref.kind: must be one of: 'Deployment', 'StatefulSet' "
            "(did you mean 'Deployment'?)"
        ],
        id="not-one-of-near-miss",
    ),
    pytest.param(
        _target(REF + TRIGGERS + "min_replicas: 5\nmax_replicas: 2\n"),
        ["targets[0].max_replicas: must be at least min_replicas (5)"],
        id="min-above-max",
    ),
    pytest.param(
        _target(REF + TRIGGERS + "min_replicas: 5\nmax_replicas: 2\ncooldown_seconds: -1\n"),
        [
            "targets[0].max_replicas: must be at least min_replicas (5)",
            "targets[0].cooldown_seconds: must be >= 0",
        ],
        id="min-above-max-reported-with-other-errors",
    ),
    pytest.param(
        _target(REF + TRIGGERS + "min_replicas: 2\nidle_replicas: 2\n"),
        ["targets[0].idle_replicas: must be less than min_replicas (2)"],
        id="idle-not-below-min",
    ),
    pytest.param(
        _target(
            REF
            + "triggers:\n"
            + "  - {type: kafka_lag, cluster: main, consumer_group: a, name: lag}\n"
            + "  - {type: kafka_lag, cluster: main, consumer_group: b, name: lag}\n"
        ),
        ["targets[0].triggers: trigger names must be unique: lag twice"],
        id="duplicate-trigger-names",
    ),
    pytest.param(
        _target(REF + TRIGGERS + "max_replicas: 5\nfallback: {behavior: static, replicas: 9}\n"),
        ["targets[0].fallback: replicas (9) must not exceed max_replicas (5)"],
        id="fallback-above-max",
    ),
    pytest.param(
        _target(
            REF
            + TRIGGERS
            + "behavior:\n  scale_down:\n    policies:\n"
            + "      - {type: Pods, value: 1, period_seconds: 0}\n"
        ),
        ["targets[0].behavior.scale_down.policies[0].period_seconds: must be > 0"],
        id="zero-period",
    ),
    pytest.param(
        _target(
            REF
            + TRIGGERS
            + "behavior:\n  scale_up:\n    policies:\n"
            + "      - {type: Percent, value: 100, period_seconds: 3600}\n"
        ),
        ["targets[0].behavior.scale_up.policies[0].period_seconds: must be <= 1800"],
        id="period-above-hpa-limit",
    ),
    pytest.param(
        _target(REF + TRIGGERS + "cooldown_seconds: -1\n"),
        ["targets[0].cooldown_seconds: must be >= 0"],
        id="negative-duration",
    ),
    pytest.param(
        _trigger("type: kafka_lag\ncluster: main\nconsumer_group: g\nlag_threshold: 0\n"),
        ["targets[0].triggers[0].lag_threshold: must be > 0"],
        id="zero-lag-threshold",
    ),
    pytest.param(
        _target(REF + TRIGGERS + "predictor: {quantile: 1.0}\n"),
        ["targets[0].predictor.quantile: must be < 1"],
        id="quantile-of-one",
    ),
    pytest.param(
        _target(REF + TRIGGERS + "behavior: {scale_down: {policies: []}}\n"),
        ["targets[0].behavior.scale_down.policies: must have at least 1 item"],
        id="no-policies",
    ),
    pytest.param(
        _target(REF + "triggers: []\n"),
        ["targets[0].triggers: must have at least 1 item"],
        id="no-triggers",
    ),
    pytest.param(
        SERVERS + "targets: []\n",
        ["targets: must have at least 1 item"],
        id="no-targets",
    ),
    pytest.param(
        SERVERS,
        ["targets: is required"],
        id="targets-missing",
    ),
    pytest.param(
        SERVERS + "targets:\n  - triggers: []\n",
        [
            "targets[0].name: is required",
            "targets[0].scale_target_ref: is required",
            "targets[0].triggers: must have at least 1 item",
        ],
        id="target-keys-missing",
    ),
    pytest.param(
        _trigger("type: kafka_lag\nconsumer_group: orders\nlag_threshold: 0\n"),
        [
            "targets[0].triggers[0].cluster: is required",
            "targets[0].triggers[0].lag_threshold: must be > 0",
        ],
        # Only the item's errors: not also "triggers: must have at least 1 item", which
        # pydantic adds for a list whose items all failed.
        id="failed-item-not-also-an-empty-list",
    ),
    pytest.param(
        SERVERS + "logging: loud\ntargets:\n" + TARGET,
        ["logging: must be a mapping of keys to values"],
        id="section-not-a-mapping",
    ),
    pytest.param(
        "kafka_clusters:\n  main:\n    bootstrap_servers: kafka:9092\ntargets:\n" + TARGET,
        ["kafka_clusters.main.bootstrap_servers: must be a list"],
        id="list-given-a-string",
    ),
    pytest.param(
        "kafka_clusters:\n  main:\n    bootstrap_servers: [kafka]\ntargets:\n" + TARGET,
        ["kafka_clusters.main.bootstrap_servers: 'kafka' is not host:port"],
        id="custom-validator-message",
    ),
    pytest.param(
        "kafka_clusters:\n  main:\n    bootstrap_servers: [k:9092]\n"
        "    security_protocol: SASL_SSL\n"
        "    sasl: {mechanism: PLAIN, username: me}\n"
        "targets:\n" + TARGET,
        ["kafka_clusters.main.sasl: set exactly one of password_env or password_file"],
        id="section-validator",
    ),
    pytest.param(
        "kafka_clusters:\n  main cluster:\n    bootstrap_servers: [k:9092]\ntargets:\n" + TARGET,
        [
            "kafka_clusters['main cluster']: a name must be 1-63 letters, digits, '-', '_' or "
            "'.', starting and ending with a letter or digit",
            "targets[0].triggers[0].cluster: 'main' is not defined in kafka_clusters "
            "(defined: 'main cluster')",
        ],
        id="bad-cluster-name",
    ),
    pytest.param(
        "dry_run: maybe\n" + SERVERS + "targets:\n" + TARGET + TARGET.replace("orders", "refunds"),
        ["dry_run: must be true or false"],
        # Targets inherit dry_run: the bad value is reported where it was written, once.
        id="inherited-value-reported-once",
    ),
    pytest.param(
        _target(REF + TRIGGERS + "predictor:\n  params: {window: {size: 3}, lags: [1, x]}\n"),
        [
            "targets[0].predictor.params.window: must be a boolean, a number, a string, "
            "a list of numbers or a list of strings",
            "targets[0].predictor.params.lags: must be a boolean, a number, a string, "
            "a list of numbers or a list of strings",
        ],
        id="union-value-one-problem",
    ),
    pytest.param(
        _trigger("type: kafka\ncluster: main\nconsumer_group: orders\n"),
        ["targets[0].triggers[0].type: unknown trigger type 'kafka' (did you mean 'kafka_lag'?)"],
        id="unknown-trigger-type",
    ),
    pytest.param(
        _trigger("type: cpu\n"),
        [
            "targets[0].triggers[0].type: unknown trigger type 'cpu'; "
            "must be one of: 'kafka_lag', 'prometheus'"
        ],
        id="unknown-trigger-type-no-hint",
    ),
    pytest.param(
        _trigger("cluster: main\nconsumer_group: orders\n"),
        ["targets[0].triggers[0].type: is required (one of: 'kafka_lag', 'prometheus')"],
        id="trigger-type-missing",
    ),
    pytest.param(
        _target(REF + "triggers: [orders]\n"),
        ["targets[0].triggers[0]: must be a mapping of keys to values"],
        id="trigger-not-a-mapping",
    ),
    # Finite and in range: .inf would only fail far later (replay: "cannot convert float
    # infinity to integer"), a replica count past int32 at the API server.
    pytest.param(
        _target(REF + TRIGGERS + "startup_seconds: .inf\ncooldown_seconds: -.inf\n"),
        [
            "targets[0].startup_seconds: must be a finite number (not .inf or .nan)",
            "targets[0].cooldown_seconds: must be a finite number (not .inf or .nan)",
        ],
        id="infinite-durations",
    ),
    pytest.param(
        _target(REF + TRIGGERS + "poll_interval_seconds: .nan\n"),
        ["targets[0].poll_interval_seconds: must be a finite number (not .inf or .nan)"],
        id="nan-interval",
    ),
    pytest.param(
        _trigger("type: kafka_lag\ncluster: main\nconsumer_group: g\ntopics: [my orders]\n"),
        [
            "targets[0].triggers[0].topics: 'my orders' is not a Kafka topic name: only ASCII "
            "letters, digits, '.', '_' and '-'"
        ],
        id="topic-with-a-space",
    ),
    pytest.param(
        _trigger(
            "type: kafka_lag\ncluster: main\nconsumer_group: g\ntopics: [" + "t" * 250 + "]\n"
        ),
        [
            "targets[0].triggers[0].topics: '" + "t" * 250 + "' is not a Kafka topic name: "
            "250 characters, at most 249"
        ],
        id="topic-too-long",
    ),
    pytest.param(
        _trigger("type: kafka_lag\ncluster: main\nconsumer_group: g\ntopics: [..]\n"),
        [
            "targets[0].triggers[0].topics: '..' is not a Kafka topic name: empty, '.' and "
            "'..' are not allowed"
        ],
        id="topic-dots",
    ),
    pytest.param(
        _trigger(LIMITED + "partition_limitation: 1,x,3\n"),
        [
            "targets[0].triggers[0].partition_limitation: 'x' is not a partition number or "
            "range (e.g. 1,2,10-20,31)"
        ],
        id="partition-limitation-unparsable",
    ),
    pytest.param(
        _trigger(LIMITED + "partition_limitation: '-1'\n"),
        [
            "targets[0].triggers[0].partition_limitation: '-1' is negative: partitions are "
            "numbered from 0"
        ],
        id="partition-limitation-negative",
    ),
    pytest.param(
        _trigger(LIMITED + "partition_limitation: -1\n"),
        [
            "targets[0].triggers[0].partition_limitation: '-1' is negative: partitions are "
            "numbered from 0"
        ],
        id="partition-limitation-negative-yaml-number",
    ),
    pytest.param(
        _trigger(LIMITED + "partition_limitation: 0, 20-10\n"),
        ["targets[0].triggers[0].partition_limitation: '20-10' is a reversed range: write 10-20"],
        id="partition-limitation-reversed-range",
    ),
    pytest.param(
        _trigger(LIMITED + "partition_limitation: 1-2-3\n"),
        [
            "targets[0].triggers[0].partition_limitation: '1-2-3' is not a range like 10-20 "
            "(e.g. 1,2,10-20,31)"
        ],
        id="partition-limitation-two-dashes",
    ),
    pytest.param(
        _trigger(LIMITED + "partition_limitation: 1,,2\n"),
        [
            "targets[0].triggers[0].partition_limitation: has an empty item: a stray comma? "
            "(e.g. 1,2,10-20,31)"
        ],
        id="partition-limitation-empty-item",
    ),
    pytest.param(
        _trigger(LIMITED + "partition_limitation: 0-2147483648\n"),
        [
            "targets[0].triggers[0].partition_limitation: '0-2147483648' is above the largest "
            "partition number, 2147483647"
        ],
        id="partition-limitation-past-int32",
    ),
    pytest.param(
        _trigger(LIMITED + "partition_limitation: [1, 2]\n"),
        ["targets[0].triggers[0].partition_limitation: must be a string"],
        id="partition-limitation-a-list",
    ),
    pytest.param(
        _trigger("type: kafka_lag\ncluster: main\nconsumer_group: g\npartition_limitation: 1\n"),
        [
            "targets[0].triggers[0].partition_limitation: needs topics: it names partitions "
            "of the listed topics"
        ],
        # KEDA ignores it without a topic: a setting silently ignored.
        id="partition-limitation-without-topics",
    ),
    pytest.param(
        _trigger(
            "type: kafka_lag\ncluster: main\nconsumer_group: g\n"
            "ensure_even_distribution_of_partitions: true\n"
        ),
        [
            "targets[0].triggers[0].ensure_even_distribution_of_partitions: needs topics: the "
            "partitions it divides are the listed topics' (KEDA needs a topic too)"
        ],
        id="even-distribution-without-topics",
    ),
    pytest.param(
        _trigger(
            LIMITED
            + "ensure_even_distribution_of_partitions: true\nlimit_to_partitions_with_lag: true\n"
        ),
        [
            "targets[0].triggers[0].ensure_even_distribution_of_partitions: cannot be true "
            "with limit_to_partitions_with_lag (KEDA refuses it too)"
        ],
        id="even-distribution-with-limit-to-partitions-with-lag",
    ),
    pytest.param(
        _trigger("type: prometheus\nserver: main\nquery: sum(rate(x[5m])\ntarget_value: 1\n"),
        ["targets[0].triggers[0].query: is not valid PromQL: unclosed left parenthesis"],
        id="promql-syntax",
    ),
    pytest.param(
        _trigger("type: prometheus\nserver: main\nquery: rate(x)\ntarget_value: 1\n"),
        [
            "targets[0].triggers[0].query: is not valid PromQL: expected type matrix in call "
            "to function 'rate', got vector"
        ],
        id="promql-types",
    ),
    pytest.param(
        _target(REF + TRIGGERS + "max_replicas: 100000000000000000000000000\n"),
        ["targets[0].max_replicas: must be <= 2147483647"],
        id="replicas-past-int32",
    ),
]


@pytest.mark.parametrize(("text", "expected"), VALUE_CASES)
def test_bad_values(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert _lines(_problems(_write(tmp_path, text))) == expected


# --------------------------------------------------------------------------- unknown keys

UNKNOWN_KEY_CASES = [
    pytest.param(
        _trigger("type: kafka_lag\ncluster: main\nconsumer_group: g\nlag_treshold: 5\n"),
        ["targets[0].triggers[0]: unknown key 'lag_treshold' (did you mean 'lag_threshold'?)"],
        id="typo",
    ),
    pytest.param(
        _trigger("type: kafka_lag\ncluster: main\nconsumer_group: g\nlagThreshold: 5\n"),
        ["targets[0].triggers[0]: unknown key 'lagThreshold' (did you mean 'lag_threshold'?)"],
        id="keda-camel-case",
    ),
    pytest.param(
        _target(REF + TRIGGERS + "behavior:\n  scale_down:\n    stabilizationWindowSeconds: 60\n"),
        [
            "targets[0].behavior.scale_down: unknown key 'stabilizationWindowSeconds' "
            "(did you mean 'stabilization_window_seconds'?)"
        ],
        id="hpa-camel-case",
    ),
    pytest.param(
        _target(REF + TRIGGERS + "behavior:\n  scaleDown: {}\n"),
        ["targets[0].behavior: unknown key 'scaleDown' (did you mean 'scale_down'?)"],
        id="hpa-camel-case-section",
    ),
    pytest.param(
        _target(REF + TRIGGERS + "minReplicaCount: 0\n"),
        ["targets[0]: unknown key 'minReplicaCount' (did you mean 'min_replicas'?)"],
        id="keda-name-we-call-differently",
    ),
    pytest.param(
        _target(REF + TRIGGERS + "cooldownPeriod: 30\n"),
        ["targets[0]: unknown key 'cooldownPeriod' (did you mean 'cooldown_seconds'?)"],
        id="keda-cooldown-period",
    ),
    pytest.param(
        SERVERS + "colour: blue\ntargets:\n" + TARGET,
        ["<top level>: unknown key 'colour'"],
        id="no-close-match",
    ),
    pytest.param(
        "kafka_clusters:\n  main:\n    bootstrap_servers: [k:9092]\n"
        "    security_protocol: SASL_SSL\n"
        "    sasl: {mechanism: PLAIN, username: me, password_fil: /p}\n"
        "targets:\n" + TARGET,
        ["kafka_clusters.main.sasl: unknown key 'password_fil' (did you mean 'password_file'?)"],
        id="inside-a-user-named-entry",
    ),
]


@pytest.mark.parametrize(("text", "expected"), UNKNOWN_KEY_CASES)
def test_unknown_keys(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert _lines(_problems(_write(tmp_path, text))) == expected


# --------------------------------------------------------------------------- references

REFERENCE_CASES = [
    pytest.param(
        _trigger("type: kafka_lag\ncluster: mian\nconsumer_group: orders\n"),
        [
            "targets[0].triggers[0].cluster: 'mian' is not defined in kafka_clusters "
            "(defined: 'main')"
        ],
        id="undefined-cluster",
    ),
    pytest.param(
        _trigger("type: prometheus\nserver: thanos\nquery: up\ntarget_value: 1\n"),
        [
            "targets[0].triggers[0].server: 'thanos' is not defined in prometheus_servers "
            "(defined: 'main')"
        ],
        id="undefined-server",
    ),
    pytest.param(
        "targets:\n" + TARGET,
        [
            "targets[0].triggers[0].cluster: 'main' is not defined: "
            "there is no kafka_clusters section"
        ],
        id="no-clusters-section",
    ),
    pytest.param(
        SERVERS + "targets:\n" + TARGET + TARGET.replace("{name: orders}", "{name: other}"),
        ["targets[1].name: target name 'orders' is already used by targets[0]"],
        id="duplicate-target-name",
    ),
    pytest.param(
        SERVERS + "targets:\n" + TARGET + TARGET.replace("name: orders", "name: orders-2", 1),
        [
            "targets[1].scale_target_ref: Deployment default/orders is already scaled by "
            "targets[0]: two targets would fight over its replicas"
        ],
        id="duplicate-scale-target",
    ),
    pytest.param(
        SERVERS
        + "targets:\n"
        + TARGET
        + TARGET.replace("name: orders", "name: orders-2\n    namespace: shop", 1)
        + TARGET.replace("name: orders", "name: orders-3", 1).replace(
            "{name: orders}", "{kind: StatefulSet, name: orders}"
        )
        + "  - name: orders-4\n    scale_target_ref: {name: orders}\n    triggers: oops\n",
        [
            "targets[3].scale_target_ref: Deployment default/orders is already scaled by "
            "targets[0]: two targets would fight over its replicas",
            "targets[3].triggers: must be a list",
        ],
        # Another namespace or kind is another workload; a malformed target is still
        # checked for what can be checked.
        id="same-name-other-workload",
    ),
    pytest.param(
        SERVERS + "targets:\n  - 1\n  - [x]\n  - name: orders\n    triggers: [1, {type: 3}]\n",
        [
            "targets[0]: must be a mapping of keys to values",
            "targets[1]: must be a mapping of keys to values",
            "targets[2].scale_target_ref: is required",
            "targets[2].triggers[0]: must be a mapping of keys to values",
            "targets[2].triggers[1].type: unknown trigger type '3'; "
            "must be one of: 'kafka_lag', 'prometheus'",
        ],
        id="malformed-targets",
    ),
]


@pytest.mark.parametrize(("text", "expected"), REFERENCE_CASES)
def test_references(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert _lines(_problems(_write(tmp_path, text))) == expected


# --------------------------------------------------------------------------- the file

FILE_CASES = [
    pytest.param(
        SERVERS + "targets:\n  - name: orders\n    min_replicas: 1\n    min_replicas: 2\n",
        [
            # A missing key is located where its mapping starts.
            "targets[0].scale_target_ref: is required (line 8, column 5)",
            "targets[0].triggers: is required (line 8, column 5)",
            "targets[0]: duplicate key 'min_replicas', first set on line 9 (line 10, column 5)",
        ],
        id="duplicate-key",
    ),
    pytest.param(
        "dry_run: true\ndry_run: false\n" + SERVERS + "targets:\n" + TARGET,
        ["<top level>: duplicate key 'dry_run', first set on line 1 (line 2, column 1)"],
        id="duplicate-top-level-key",
    ),
    pytest.param(
        "defaults: &defaults {max_replicas: 5}\n",
        [
            "targets: is required (line 1, column 1)",
            "<top level>: unknown key 'defaults' (line 1, column 1)",
        ],
        id="anchor-kept-apart",
    ),
    pytest.param(
        "targets:\n  - name: orders\n    scale_target_ref: {name: orders\n",
        [
            "<file>: invalid YAML: expected ',' or '}', but got '<stream end>' "
            "(while parsing a flow mapping at line 3) (line 4, column 1)"
        ],
        id="unclosed-flow-mapping",
    ),
    pytest.param(
        "targets:\n  - name: orders\n   bad: indent\n",
        [
            "<file>: invalid YAML: expected <block end>, but found '<block mapping start>' "
            "(while parsing a block collection at line 2) (line 3, column 4)"
        ],
        id="bad-indentation",
    ),
    pytest.param(
        "targets: []\nname: x: y\n",
        ["<file>: invalid YAML: mapping values are not allowed here (line 2, column 8)"],
        id="colon-in-plain-value",
    ),
    pytest.param(
        "a: 1\n---\nb: 2\n",
        [
            "<file>: invalid YAML: expected a single document in the stream, "
            "but found another document (line 2, column 1)"
        ],
        id="two-documents",
    ),
    pytest.param(
        "targets: !!python/object/apply:os.system [ls]\n",
        [
            "<file>: invalid YAML: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object/apply:os.system' (line 1, column 10)"
        ],
        id="unsafe-tag",
    ),
    pytest.param("", ["<file>: the file is empty"], id="empty"),
    pytest.param("# nothing yet\n\n", ["<file>: the file is empty"], id="only-comments"),
    pytest.param(
        "- name: orders\n",
        [
            "<file>: the top level must be a mapping of keys to values, not a list "
            "(line 1, column 1)"
        ],
        id="top-level-list",
    ),
    pytest.param(
        "just words\n",
        [
            "<file>: the top level must be a mapping of keys to values, not a string "
            "(line 1, column 1)"
        ],
        id="top-level-string",
    ),
    pytest.param(
        "~\n",
        ["<file>: the top level must be a mapping of keys to values, not null (line 1, column 1)"],
        id="top-level-null",
    ),
    pytest.param(
        SERVERS + "on: 1\ntargets:\n" + TARGET,
        [
            "<top level>: key True is not a string: quote it "
            "(YAML reads on, off, yes and no as booleans) (line 7, column 1)"
        ],
        id="boolean-key",
    ),
]


@pytest.mark.parametrize(("text", "expected"), FILE_CASES)
def test_file_problems(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert [str(problem) for problem in _problems(_write(tmp_path, text))] == expected


def test_missing_file(tmp_path: Path) -> None:
    assert [str(p) for p in _problems(tmp_path / "nope.yaml")] == ["<file>: file not found"]


def test_directory(tmp_path: Path) -> None:
    assert [str(p) for p in _problems(tmp_path)] == ["<file>: is a directory, not a file"]


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("targets:\n  - name: café\n".encode("latin-1"))
    assert [str(p) for p in _problems(path)] == [
        "<file>: the file is not UTF-8 text (save it as UTF-8) (line 2, column 14)"
    ]


def test_control_character(tmp_path: Path) -> None:
    path = tmp_path / "ctrl.yaml"
    path.write_text("targets:\n  - name: a\x07b\n", encoding="utf-8")
    assert [str(p) for p in _problems(path)] == [
        "<file>: invalid YAML: special characters are not allowed (line 2, column 12)"
    ]


def test_utf8_byte_order_mark_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + (SERVERS + "targets:\n" + TARGET).encode())
    assert load_config(path).targets[0].name == "orders"


# --------------------------------------------------------------------------- all at once


def test_every_problem_reported_at_once_in_file_order(tmp_path: Path) -> None:
    text = """\
        poll_interval_seconds: 0
        kafka_clusters:
          main:
            bootstrap_servers: [kafka:9092]
        targets:
          - name: orders
            min_replicas: -1
            scale_target_ref: {name: orders}
            triggers:
              - type: kafka_lag
                cluster: mian
                consumer_group: orders
                lagThreshold: 100
            behavior:
              scale_down:
                policies:
                  - type: Percent
                    value: 100
                    period_seconds: 0
          - name: orders
            scale_target_ref: {name: orders}
            triggers:
              - type: prometheus
                server: main
                query: up
                target_value: 1
        """
    problems = _problems(_write(tmp_path, text))
    assert [str(problem) for problem in problems] == [
        "poll_interval_seconds: must be > 0 (line 1, column 24)",
        "targets[0].min_replicas: must be >= 0 (line 7, column 19)",
        "targets[0].triggers[0].cluster: 'mian' is not defined in kafka_clusters "
        "(defined: 'main') (line 11, column 18)",
        "targets[0].triggers[0]: unknown key 'lagThreshold' (did you mean 'lag_threshold'?) "
        "(line 13, column 9)",
        "targets[0].behavior.scale_down.policies[0].period_seconds: must be > 0 "
        "(line 19, column 29)",
        "targets[1].name: target name 'orders' is already used by targets[0] (line 20, column 11)",
        "targets[1].scale_target_ref: Deployment default/orders is already scaled by targets[0]: "
        "two targets would fight over its replicas (line 21, column 23)",
        "targets[1].triggers[0].server: 'main' is not defined: there is no prometheus_servers "
        "section (line 24, column 17)",
    ]


def test_error_text_is_one_line_per_problem(tmp_path: Path) -> None:
    path = _write(tmp_path, _target(REF + TRIGGERS + "min_replicas: x\nmax_replicas: y\n"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    error = caught.value
    assert str(error) == error.format() == "\n".join(str(p) for p in error.problems)
    assert error.summary() == f"{path}: 2 problems"
    assert error.source == str(path)
    assert len(str(error).splitlines()) == 2


def test_line_numbers(tmp_path: Path) -> None:
    text = """\
        targets:
          - name: orders
            scale_target_ref:
              kind: Deployment
            triggers:
              - type: kafka_lag
                cluster: main
                consumer_group: orders
                persistent_lag_polls: 0
                colour: red
        """
    problems = {p.path: (p.line, p.column) for p in _problems(_write(tmp_path, text))}
    assert problems == {
        # A missing key: where the mapping it belongs in starts.
        "targets[0].scale_target_ref.name": (4, 7),
        # A bad value: the value itself.
        "targets[0].triggers[0].persistent_lag_polls": (9, 31),
        # An unknown key: the key.
        "targets[0].triggers[0]": (10, 9),
        "targets[0].triggers[0].cluster": (7, 18),
    }


# --------------------------------------------------------------------------- secrets


def test_secret_values_never_appear(tmp_path: Path) -> None:
    secrets = ["hunter2-sasl-password", "tenant-token-s3cr3t", "bearer-abc123xyz", "Zm9vYmFy"]
    text = f"""\
        kafka_clusters:
          main:
            bootstrap_servers: [kafka:9092]
            security_protocol: SASL_PLAINTEXT
            sasl:
              mechanism: SCRAM-SHA-999
              username: {secrets[3]}
              password: {secrets[0]}
              password_env: [{secrets[0]}]
        prometheus_servers:
          main:
            url: not-a-url
            headers:
              X-Scope-OrgID: [{secrets[1]}]
              Authorization: {{bearer: {secrets[2]}}}
              X-Ok: fine
            token: {secrets[2]}
        targets:
          - name: orders
            scale_target_ref: {{name: orders}}
            triggers:
              - type: prometheus
                server: main
                query: up
                target_value: {secrets[1]}
        """
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text))
    shown = [str(caught.value), caught.value.summary(), *map(repr, caught.value.problems)]
    assert len(caught.value.problems) >= 7
    for secret in secrets:
        assert all(secret not in text for text in shown), secret


def test_secrets_scrubbed_even_from_a_validator_that_echoes(tmp_path: Path) -> None:
    # The host:port check quotes its input; a password pasted there is still not shown.
    text = """\
        kafka_clusters:
          main:
            bootstrap_servers: [hunter2-password]
            security_protocol: SASL_PLAINTEXT
            sasl: {mechanism: PLAIN, username: me, password_env: hunter2-password}
        targets:
          - name: orders
            scale_target_ref: {name: orders}
            triggers: [{type: kafka_lag, cluster: main, consumer_group: g}]
        """
    (problem,) = _problems(_write(tmp_path, text))
    assert str(problem) == (
        "kafka_clusters.main.bootstrap_servers: '<redacted>' is not host:port (line 3, column 24)"
    )


# --------------------------------------------------------------------------- parse_config

PARSE_CASES = [
    pytest.param([], ["<top level>: must be a mapping of keys to values"], id="not-a-mapping"),
    pytest.param(None, ["<top level>: must be a mapping of keys to values"], id="none"),
    pytest.param({}, ["targets: is required"], id="empty"),
    pytest.param(
        {"targets": [{"name": "a", "scale_target_ref": {"name": "a"}, "triggers": None}]},
        ["targets[0].triggers: must be a list"],
        id="null-list",
    ),
    pytest.param(
        {"targets": "all", "kafka_clusters": []},
        ["kafka_clusters: must be a mapping of keys to values", "targets: must be a list"],
        id="wrong-containers",
    ),
]


@pytest.mark.parametrize(("data", "expected"), PARSE_CASES)
def test_parse_config_problems(data: object, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, source="test")
    assert _lines(caught.value.problems) == expected
    assert all(problem.line is None for problem in caught.value.problems)
    assert caught.value.source == "test"


def test_parse_config_valid() -> None:
    config = parse_config(
        {
            "dry_run": False,
            "kafka_clusters": {"main": {"bootstrap_servers": ["k:9092"]}},
            "targets": [
                {
                    "name": "a",
                    "scale_target_ref": {"name": "a"},
                    "triggers": [{"type": "kafka_lag", "cluster": "main", "consumer_group": "g"}],
                }
            ],
        }
    )
    assert config.targets[0].dry_run is False  # inherited from the top level


# --------------------------------------------------------------------------- Problem

PROBLEM_CASES = [
    pytest.param(Problem("a.b", "is required"), "a.b: is required", id="no-position"),
    pytest.param(Problem("a", "bad", 3), "a: bad (line 3)", id="line-only"),
    pytest.param(Problem("a", "bad", 3, 7), "a: bad (line 3, column 7)", id="line-and-column"),
]


@pytest.mark.parametrize(("problem", "text"), PROBLEM_CASES)
def test_problem_text(problem: Problem, text: str) -> None:
    assert str(problem) == text


# --------------------------------------------------------------------------- any input

# Keys the schema knows, so that generated data reaches deep into it.
_KEYS = st.sampled_from(
    [
        "targets",
        "triggers",
        "type",
        "name",
        "cluster",
        "server",
        "scale_target_ref",
        "namespace",
        "kind",
        "kafka_clusters",
        "prometheus_servers",
        "behavior",
        "scale_down",
        "policies",
        "predictor",
        "params",
        "sasl",
        "headers",
        "dry_run",
    ]
) | st.text(max_size=4)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=6)
    | st.sampled_from(["kafka_lag", "prometheus", "main", "Pods"])
)
_DATA = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=25,
)


def _problems_or_none(load: Callable[[], object]) -> list[Problem] | None:
    """The problems ``load`` raised, or None when it succeeded."""
    try:
        load()
    except ConfigError as error:
        return error.problems
    return None


@settings(max_examples=300, deadline=None)
@given(data=_DATA)
def test_any_data_gives_a_config_or_located_problems(data: object) -> None:
    """Malformed data of any shape is reported, never raised as something else."""
    problems = _problems_or_none(lambda: parse_config(data))
    assert problems is None or problems
    assert all(problem.path and problem.message for problem in problems or [])


@settings(max_examples=100, deadline=None)
@given(data=st.dictionaries(_KEYS, _DATA, max_size=4))
def test_any_yaml_mapping_gets_lines(
    tmp_path_factory: pytest.TempPathFactory, data: object
) -> None:
    path = tmp_path_factory.mktemp("yaml") / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    problems = _problems_or_none(lambda: load_config(path))
    assert all(problem.line is not None for problem in problems or [])


def test_a_token_file_beside_an_authorization_header_is_a_config_error(tmp_path: Path) -> None:
    text = """\
        prometheus_servers:
          main:
            url: http://prometheus:9090
            bearer_token_file: /dev/null
            header_files: {authorization: /dev/null}
        targets:
          - name: orders
            scale_target_ref: {name: orders}
            triggers: [{type: prometheus, server: main, query: up, target_value: 1}]
        """
    (problem,) = _problems(_write(tmp_path, text))
    assert problem.path == "prometheus_servers.main"
    assert problem.message == (
        "both bearer_token_file and an Authorization header are set: use one"
    )


@pytest.mark.parametrize(
    ("server", "path", "message"),
    [
        (
            "headers: {Authorization: Basic abc}",
            "prometheus_servers.main.headers",
            "'Authorization' carries a credential: secrets never appear in this file",
        ),
        (
            "headers: {X-API-Key: abc}",
            "prometheus_servers.main.headers",
            "'X-API-Key' carries a credential",
        ),
        (
            "url: https://user:Basic abc@prometheus:9090",
            "prometheus_servers.main.url",
            "must not carry credentials (user:password@)",
        ),
    ],
)
def test_credentials_written_inline_are_refused_with_advice(
    tmp_path: Path, server: str, path: str, message: str
) -> None:
    url = "" if server.startswith("url:") else "url: http://prometheus:9090\n            "
    text = f"""\
        prometheus_servers:
          main:
            {url}{server}
        targets:
          - name: orders
            scale_target_ref: {{name: orders}}
            triggers: [{{type: prometheus, server: main, query: up, target_value: 1}}]
        """
    (problem,) = _problems(_write(tmp_path, text))
    assert problem.path == path
    assert message in problem.message
    assert "Basic abc" not in str(problem)
    assert "abc@" not in str(problem)


def test_a_tenant_header_is_fine_inline(tmp_path: Path) -> None:
    text = """\
        prometheus_servers:
          main:
            url: http://prometheus:9090
            headers: {X-Scope-OrgID: shop}
        targets:
          - name: orders
            scale_target_ref: {name: orders}
            triggers: [{type: prometheus, server: main, query: up, target_value: 1}]
        """
    config = load_config(_write(tmp_path, text))
    assert "X-Scope-OrgID" in config.prometheus_servers["main"].headers


def test_an_alias_bomb_is_refused_from_its_nodes_quickly(tmp_path: Path) -> None:
    import time

    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = _write(tmp_path, "\n".join([*lines, "targets: [*a9]", ""]))
    started = time.perf_counter()
    (problem,) = _problems(path)
    assert time.perf_counter() - started < 5  # 9**10 values if expanded: hours
    assert "aliases (*name) expand to more than 1,000,000 values" in problem.message


def test_a_recursive_alias_and_an_oversized_file_are_one_line(tmp_path: Path) -> None:
    (problem,) = _problems(_write(tmp_path, "a: &a [*a]\ntargets: []\n"))
    assert "an alias refers to a section it is inside of" in problem.message
    huge = _write(tmp_path, "# " + "x" * (33 * 2**20) + "\n", name="huge.yaml")
    (problem,) = _problems(huge)
    assert "a config may be at most 32 MiB" in problem.message


def test_the_alias_limit_counts_what_aliases_add_not_what_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file of many targets written out is bounded by its size alone (1,000,000 values
    once refused 20,000 targets with no alias at all); aliases may add at most the limit."""
    monkeypatch.setattr(config_source, "MAX_ALIASED_VALUES", 100)
    written = _write(tmp_path, f"a: [{', '.join(['x'] * 500)}]\n", name="written.yaml")
    assert parse_yaml(written.read_text()).data["a"] == ["x"] * 500
    for uses, refused in [(9, False), (10, True)]:  # each *l adds 11 values: a list of 10
        text = f"l: &l [{', '.join(['x'] * 10)}]\nm: [{', '.join(['*l'] * uses)}]\n"
        problems = _problems_or_none(functools.partial(parse_yaml, text))
        assert (problems is not None) == refused, uses
    assert problems is not None
    assert "aliases (*name) expand to more than 100 values beyond those written" in str(problems)


def test_aliases_used_as_intended_still_load(tmp_path: Path) -> None:
    text = SERVERS + textwrap.dedent(
        """\
        targets:
          - &orders
            name: orders
            scale_target_ref: {name: orders}
            triggers: [{type: kafka_lag, cluster: main, consumer_group: orders}]
          - <<: *orders
            name: payments
            scale_target_ref: {name: payments}
        """
    )
    config = load_config(_write(tmp_path, text))
    assert [t.name for t in config.targets] == ["orders", "payments"]
