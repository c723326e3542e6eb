"""``autoscaler import``: KEDA ScaledObjects and HPAs in, a config that validates out, every
key mapped where it can be and a warning where it cannot, secrets never copied."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoscaler.cli import main
from autoscaler.config import AutoscalerConfig, load_config, parse_config
from autoscaler.importer import ImportOptions, import_objects, keda, parse_objects, triggers
from autoscaler.importer import values as keda_values

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "import"
BROKERS = "kafka-0.kafka.shop:9092,kafka-1.kafka.shop:9092"


def _import(
    capsys: pytest.CaptureFixture[str], *argv: str, stdin: str | None = None
) -> tuple[int, str, str]:
    if stdin is not None:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("sys.stdin", io.StringIO(stdin))
            code = main(["import", *argv])
    else:
        code = main(["import", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _warnings(err: str) -> list[str]:
    return [
        line.removeprefix("warning: ") for line in err.splitlines() if line.startswith("warning:")
    ]


def _imported(capsys: pytest.CaptureFixture[str], fixture: str, *extra: str) -> dict[str, Any]:
    code, out, err = _import(capsys, str(FIXTURES / fixture), *extra)
    assert code == 0, err
    document: dict[str, Any] = yaml.safe_load(out)
    return document


FIXTURE_TARGETS = {
    "kafka-scaledobject.yaml": ["orders-consumer"],
    "prometheus-scaledobject.yaml": ["invoice-renderer"],
    "list.yaml": ["emails-worker", "sms-worker"],
    "multi-doc.yaml": ["clickstream"],
    "hpa.yaml": ["payments-consumer"],
    "readme.yaml": ["orders-consumer"],
    "triggerauthentication.yaml": ["ledger"],
}
FIXTURE_FLAGS = {
    # sasl (and tls) come from a TriggerAuthentication of the input: the import needs them said.
    "multi-doc.yaml": ["--kafka-sasl", "plaintext"],
    "triggerauthentication.yaml": ["--kafka-sasl", "scram_sha512", "--kafka-tls", "enable"],
}


def test_every_fixture_has_its_expectation() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.yaml")) == sorted(FIXTURE_TARGETS)


@pytest.mark.parametrize("fixture", sorted(FIXTURE_TARGETS))
def test_every_fixture_imports_to_a_forecast_only_config_that_validates(
    fixture: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    written = tmp_path / "autoscaler.yaml"
    code, out, err = _import(
        capsys,
        str(FIXTURES / fixture),
        "--output",
        str(written),
        "--kafka-bootstrap-servers",
        BROKERS,
        *FIXTURE_FLAGS.get(fixture, []),
    )
    assert (code, out) == (0, ""), err
    assert err.splitlines()[-1].startswith(f"imported {len(FIXTURE_TARGETS[fixture])} target")
    config = load_config(written)
    assert [t.name for t in config.targets] == FIXTURE_TARGETS[fixture]
    assert config.dry_run is True
    assert all(t.dry_run and t.predictor.model == "auto" for t in config.targets)
    text = written.read_text(encoding="utf-8")
    assert text.startswith("# predictive-autoscaler configuration written by `autoscaler import`")
    assert "# FORECAST-ONLY: dry_run is true" in text
    comments = " ".join(
        " ".join(line.removeprefix("#").split()) for line in text.splitlines() if line[:1] == "#"
    )
    for warning in _warnings(err):  # every warning is in the header too, word for word
        assert " ".join(warning.split()) in comments
    assert main(["validate", str(written)]) == 0
    assert capsys.readouterr().out.endswith(
        f"config OK: {len(config.targets)} target{'' if len(config.targets) == 1 else 's'}\n"
    )


@pytest.mark.parametrize("fixture", sorted(FIXTURE_TARGETS))
def test_json_is_the_same_config(fixture: str, capsys: pytest.CaptureFixture[str]) -> None:
    flags = ["--kafka-bootstrap-servers", BROKERS, *FIXTURE_FLAGS.get(fixture, [])]
    as_yaml = _imported(capsys, fixture, *flags)
    code, out, _ = _import(capsys, str(FIXTURES / fixture), "-o", "json", *flags)
    assert code == 0
    assert json.loads(out) == as_yaml
    assert parse_config(json.loads(out)) == parse_config(as_yaml)


def test_kafka_scaledobject_maps_key_by_key(capsys: pytest.CaptureFixture[str]) -> None:
    document = _imported(capsys, "kafka-scaledobject.yaml")
    (target,) = document["targets"]
    assert {k: target[k] for k in ("name", "namespace", "scale_target_ref")} == {
        "name": "orders-consumer",
        "namespace": "shop",
        "scale_target_ref": {"kind": "Deployment", "name": "orders-consumer"},
    }
    assert {k: target[k] for k in ("min_replicas", "max_replicas", "cooldown_seconds")} == {
        "min_replicas": 1,
        "max_replicas": 24,
        "cooldown_seconds": 120,
    }
    assert target["poll_interval_seconds"] == 15
    assert target["triggers"] == [
        {
            "type": "kafka_lag",
            "name": "orders-lag",
            "cluster": "kafka",
            "consumer_group": "orders",
            "topics": ["orders"],
            "lag_threshold": 500,
            "activation_lag_threshold": 20,
            "offset_reset_policy": "earliest",
            "allow_idle_consumers": False,
            "exclude_persistent_lag": True,
            "scale_to_zero_on_invalid_offset": False,
            "limit_to_partitions_with_lag": False,
            "partition_limitation": "0-11",
            "ensure_even_distribution_of_partitions": True,
        }
    ]
    assert target["behavior"] == {
        "scale_up": {
            "stabilization_window_seconds": 0,
            "select_policy": "Max",
            "policies": [
                {"type": "Pods", "value": 6, "period_seconds": 30},
                {"type": "Percent", "value": 200, "period_seconds": 30},
            ],
        },
        "scale_down": {
            "stabilization_window_seconds": 600,
            "policies": [{"type": "Percent", "value": 25, "period_seconds": 60}],
        },
    }
    assert target["fallback"] == {
        "behavior": "current_replicas_if_higher",
        "failure_threshold": 5,
        "replicas": 6,
    }
    assert document["kafka_clusters"] == {
        "kafka": {
            "bootstrap_servers": [
                "kafka-0.kafka.kafka.svc:9093",
                "kafka-1.kafka.kafka.svc:9093",
                "kafka-2.kafka.kafka.svc:9093",
            ],
            "security_protocol": "SASL_SSL",
            "sasl": {
                "mechanism": "SCRAM-SHA-512",
                "username": "change-me",
                "password_file": "/var/run/secrets/kafka/password",
            },
        }
    }


def test_secrets_become_a_warning_naming_what_to_fill_in(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _import(capsys, str(FIXTURES / "kafka-scaledobject.yaml"))
    assert code == 0
    (sasl, tls) = [w for w in _warnings(err) if w.startswith("kafka_clusters.kafka")]
    assert "sasl: the username and password are in TriggerAuthentication shop/kafka-scram" in sasl
    assert "/var/run/secrets/kafka/password" in sasl
    assert "password_env" in sasl
    assert "tls.ca_file" in tls
    assert "#   - kafka_clusters.kafka (for orders-consumer): sasl: the username" in out


def test_prometheus_scaledobject_maps_key_by_key(capsys: pytest.CaptureFixture[str]) -> None:
    document = _imported(capsys, "prometheus-scaledobject.yaml")
    (target,) = document["targets"]
    assert target["triggers"] == [
        {
            "type": "prometheus",
            "server": "prometheus",
            "query": 'sum(invoice_queue_pending{namespace="billing"})',
            "target_value": 50.5,
            "activation_threshold": 2.0,
            "on_empty": "zero",
            "metric_type": "Value",
        }
    ]
    assert (target["min_replicas"], target["idle_replicas"], target["cooldown_seconds"]) == (
        1,
        0,
        600,
    )
    assert target["poll_interval_seconds"] == 30, "KEDA's default pollingInterval, written out"
    assert document["prometheus_servers"] == {
        "prometheus": {
            "url": "https://thanos-query.monitoring.svc:10902",
            "bearer_token_file": "/var/run/secrets/prometheus/token",
            "insecure_skip_verify": True,
            "timeout_seconds": 2.5,
            "headers": {"X-Scope-OrgID": "billing"},
        }
    }


def test_unsupported_triggers_are_skipped_naming_the_object_and_trigger(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _import(capsys, str(FIXTURES / "prometheus-scaledobject.yaml"))
    assert code == 0
    warnings = _warnings(err)
    assert (
        "ScaledObject billing/invoice-renderer, trigger 1 (cron): not supported here (this "
        "project scales on Kafka lag and Prometheus queries): skipped"
    ) in warnings
    credential = (
        "ScaledObject billing/invoice-renderer, trigger 0 (prometheus): customHeaders "
        "X-Api-Key: a credential is never written"
    )
    assert any(w.startswith(credential) for w in warnings)
    assert "do-not-copy" not in out + err, "a credential header's value is never copied"


def test_a_list_shares_one_cluster_and_names_targets_by_namespace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _import(capsys, str(FIXTURES / "list.yaml"))
    assert code == 0
    document = yaml.safe_load(out)
    assert list(document["kafka_clusters"]) == ["kafka"], "the same brokers in another order"
    assert [(t["name"], t["namespace"]) for t in document["targets"]] == [
        ("emails-worker", "emails"),
        ("sms-worker", "sms"),
    ]
    emails, sms = document["targets"]
    # KEDA's defaults where the object says nothing: min 0 (scale to zero), max 100 when
    # absent, polls every 30 s.
    assert (emails["min_replicas"], sms["min_replicas"], sms["poll_interval_seconds"]) == (0, 0, 30)
    assert _warnings(err) == [
        "ScaledObject shop/web, trigger 0 (cpu): CPU and memory scaling is not this project's "
        "job (it scales on Kafka lag and Prometheus queries; keep it in an HPA only for a "
        "workload this service does not scale): skipped",
        "ScaledObject shop/web: no trigger this project supports (kafka, apache-kafka, "
        "prometheus): skipped",
    ]


def test_multi_documents_skip_what_is_not_for_them(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _import(capsys, str(FIXTURES / "multi-doc.yaml"), "--kafka-sasl", "plaintext")
    assert code == 0
    (target,) = yaml.safe_load(out)["targets"]
    assert target["scale_target_ref"] == {"kind": "StatefulSet", "name": "clickstream-sink"}
    assert target["triggers"][0]["topics"] == ["clicks", "views"], "apache-kafka's topic list"
    warnings = "\n".join(_warnings(err))
    assert "keda-hpa-clickstream: KEDA made it for ScaledObject analytics/clickstream" in warnings
    assert "annotate the analytics workload with autoscaler.io/paused-replicas" in warnings
    assert "analytics/frontend: no metric this project can map: skipped" in warnings
    assert "Deployment analytics/clickstream-sink: not a KEDA ScaledObject" in warnings
    assert "may set" not in warnings
    assert (
        "TriggerAuthentication analytics/kafka-plain: read for ScaledObject analytics/clickstream: "
        "the names of its parameters, sasl, username, password from Secret kafka-credentials; "
        "their values are never copied"
    ) in warnings
    # Read, not skipped: 5 objects, 1 target, the two HPAs and the Deployment skipped.
    assert err.splitlines()[-1].startswith(
        "imported 1 target from 5 objects (1 TriggerAuthentication read for its parameters), "
        "3 skipped;"
    )
    cluster = yaml.safe_load(out)["kafka_clusters"]["kafka"]
    assert cluster["security_protocol"] == "SASL_PLAINTEXT"
    assert cluster["sasl"]["mechanism"] == "PLAIN"


def test_security_held_by_a_triggerauthentication_of_the_input_is_never_plaintext(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's case: sasl and tls as secretTargetRef parameters, not in the metadata.
    Their values are in the Secret: without the flags saying them, nothing is written and
    one line names the parameters and the TriggerAuthentication."""
    written = tmp_path / "autoscaler.yaml"
    fixture = str(FIXTURES / "triggerauthentication.yaml")
    code, out, err = _import(capsys, fixture, "--output", str(written))
    assert (code, out) == (2, "")
    assert not written.exists()
    assert err.splitlines() == [
        "import: ScaledObject payments/ledger, trigger 0 (kafka): sasl and tls come from "
        "TriggerAuthentication payments/kafka-mtls (Secret kafka-mtls) and their values are "
        "not read here: say what they are with --kafka-sasl "
        "none|plaintext|scram_sha256|scram_sha512 and --kafka-tls enable|disable (without, "
        "this file would connect in PLAINTEXT)",
        "import: nothing written: 1 problem above would make the config connect with less "
        "security than KEDA does",
    ]
    code, out, err = _import(capsys, fixture, "--kafka-sasl", "scram_sha512")
    assert code == 2
    assert "tls comes from TriggerAuthentication payments/kafka-mtls" in err
    assert "--kafka-tls enable|disable" in err
    assert "--kafka-sasl none" not in err, "sasl is said: only tls is asked for"


def test_what_a_triggerauthentication_of_the_input_holds_is_mapped_to_placeholders(
    capsys: pytest.CaptureFixture[str],
) -> None:
    document = _imported(
        capsys, "triggerauthentication.yaml", *FIXTURE_FLAGS["triggerauthentication.yaml"]
    )
    assert document["kafka_clusters"] == {
        "kafka": {
            "bootstrap_servers": ["kafka-0.kafka.payments.svc:9093"],
            "security_protocol": "SASL_SSL",
            "sasl": {
                "mechanism": "SCRAM-SHA-512",
                "username": "change-me",
                "password_file": "/var/run/secrets/kafka/password",
            },
            "tls": {
                "ca_file": "/var/run/secrets/kafka/ca.crt",
                "cert_file": "/var/run/secrets/kafka/tls.crt",
                "key_file": "/var/run/secrets/kafka/tls.key",
            },
        }
    }
    code, _, err = _import(
        capsys,
        str(FIXTURES / "triggerauthentication.yaml"),
        *FIXTURE_FLAGS["triggerauthentication.yaml"],
    )
    assert code == 0
    warnings = _warnings(err)
    assert (
        "TriggerAuthentication payments/kafka-mtls: read for ScaledObject payments/ledger: the "
        "names of its parameters, sasl, tls, username, password, ca, cert, key from Secret "
        "kafka-mtls; their values are never copied (the notes on the connection say what to "
        "fill in)"
    ) in warnings
    assert (
        "ClusterTriggerAuthentication shared-vault: no ScaledObject of the input uses it: ignored"
    ) in warnings
    assert any(
        w.startswith("kafka_clusters.kafka (for ledger): tls: the files in TriggerAuthentication "
                     "payments/kafka-mtls are not copied: put the ca in "
                     "/var/run/secrets/kafka/ca.crt, the cert in /var/run/secrets/kafka/tls.crt")
        for w in warnings
    )  # fmt: skip
    assert err.splitlines()[-1].startswith(
        "imported 1 target from 3 objects (1 TriggerAuthentication read for its parameters), "
        "1 skipped;"
    )


AUTHENTICATION = """apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {name: kafka-auth, namespace: shop}
spec:
  secretTargetRef: [PARAMETERS]
---
"""


def _authenticated(parameters: str, metadata: str = "topic: orders") -> str:
    body = _scaled_object(metadata).replace(
        "  triggers:\n    - type: kafka\n",
        "  triggers:\n    - type: kafka\n      authenticationRef: {name: kafka-auth}\n",
    )
    return AUTHENTICATION.replace("PARAMETERS", parameters) + body


@pytest.mark.parametrize(
    ("parameters", "metadata", "flags", "warning"),
    [
        pytest.param(
            "{parameter: sasl, name: s, key: sasl}",
            "topic: orders, sasl: plaintext",
            [],
            "sasl is set both in the trigger's metadata and in TriggerAuthentication "
            "shop/kafka-auth: skipped (KEDA refuses it too)",
            id="both-places",
        ),
        pytest.param(
            "{parameter: tls, name: s, key: tls}, {parameter: cert, name: s, key: c}",
            "topic: orders",
            ["--kafka-tls", "enable"],
            "TriggerAuthentication shop/kafka-auth holds one of cert and key: they go "
            "together: skipped (KEDA refuses it too)",
            id="cert-without-key",
        ),
        pytest.param(
            "{parameter: username, name: s, key: u}, {parameter: ca, name: s, key: c}",
            "topic: orders",
            [],
            "username in TriggerAuthentication shop/kafka-auth: KEDA uses them only with sasl: "
            "left out",
            id="unused-credentials",
        ),
        pytest.param(
            "{parameter: tls, name: s, key: t}, {parameter: keyPassword, name: s, key: p}",
            "topic: orders",
            ["--kafka-tls", "enable"],
            "keyPassword in TriggerAuthentication shop/kafka-auth: an encrypted client key is "
            "not supported: mount the key decrypted",
            id="key-password",
        ),
    ],
)
def test_what_a_triggerauthentication_gives_that_cannot_be_mapped_is_said(
    parameters: str,
    metadata: str,
    flags: list[str],
    warning: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, _, err = _import(capsys, "-", *flags, stdin=_authenticated(parameters, metadata))
    assert f"ScaledObject shop/orders, trigger 0 (kafka): {warning}" in _warnings(err), err


def test_the_flags_say_the_security_of_a_triggerauthentication_not_in_the_input(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = _scaled_object().replace(
        "  triggers:\n    - type: kafka\n",
        "  triggers:\n    - type: kafka\n      authenticationRef: {name: elsewhere}\n",
    )
    code, out, err = _import(capsys, "-", stdin=text)
    assert code == 0
    assert yaml.safe_load(out)["kafka_clusters"]["kafka"] == {"bootstrap_servers": ["kafka:9092"]}
    assert any(
        "TriggerAuthentication shop/elsewhere is not in the input, and KEDA reads sasl and "
        "tls there too: if it holds them, this file lacks them" in w
        for w in _warnings(err)
    )
    code, out, err = _import(
        capsys, "-", "--kafka-sasl", "scram_sha256", "--kafka-tls", "enable", stdin=text
    )
    assert code == 0
    cluster = yaml.safe_load(out)["kafka_clusters"]["kafka"]
    assert (cluster["security_protocol"], cluster["sasl"]["mechanism"]) == (
        "SASL_SSL",
        "SCRAM-SHA-256",
    )
    assert "is not in the input" not in err


def test_an_hpa_maps_replicas_behavior_and_its_lag_metric(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _import(
        capsys, str(FIXTURES / "hpa.yaml"), "--kafka-bootstrap-servers", BROKERS
    )
    assert code == 0
    document = yaml.safe_load(out)
    (target,) = document["targets"]
    assert (target["min_replicas"], target["max_replicas"]) == (2, 12)
    assert "poll_interval_seconds" not in target, "the HPA's sync period is our default"
    assert target["triggers"] == [
        {
            "type": "kafka_lag",
            "cluster": "kafka",
            "consumer_group": "payments",
            "topics": ["payments"],
            "lag_threshold": 1000,
        }
    ]
    assert target["behavior"]["scale_down"] == {
        "stabilization_window_seconds": 300,
        "select_policy": "Min",
        "policies": [
            {"type": "Pods", "value": 1, "period_seconds": 120},
            {"type": "Percent", "value": 10, "period_seconds": 120},
        ],
    }
    assert document["kafka_clusters"]["kafka"] == {"bootstrap_servers": BROKERS.split(",")}
    warnings = _warnings(err)
    assert any("metrics[1]: Resource metric cpu: CPU and memory scaling is not this "
               "project's job" in w for w in warnings)  # fmt: skip
    assert any("from --kafka-bootstrap-servers, PLAINTEXT" in w for w in warnings)


def test_an_hpa_without_the_cluster_is_no_target_and_says_what_to_pass(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _import(capsys, str(FIXTURES / "hpa.yaml"))
    assert (code, out) == (2, "")
    assert "pass --kafka-bootstrap-servers HOST:PORT,..." in err
    assert err.splitlines()[-1] == (
        f"import: no target: nothing in {FIXTURES / 'hpa.yaml'} could be imported (1 object "
        "read; the warnings above say why)"
    )


def test_stdin_as_kubectl_pipes_it(capsys: pytest.CaptureFixture[str]) -> None:
    text = (FIXTURES / "list.yaml").read_text(encoding="utf-8")
    code, out, _ = _import(capsys, "-", stdin=text)
    assert code == 0
    assert [t["name"] for t in yaml.safe_load(out)["targets"]] == ["emails-worker", "sms-worker"]


def test_replay_runs_on_an_imported_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    written = tmp_path / "imported.yaml"
    code, _, err = _import(
        capsys, str(FIXTURES / "kafka-scaledobject.yaml"), "--output", str(written)
    )
    assert code == 0, err
    code = main(
        [
            "replay", "--config", str(written), "--target", "orders-consumer",
            "--per-replica-throughput", "250", "--predictors", "none",
            "--poll-interval", "60", "--warmup-days", "1", "--span-days", "1",
            "--no-progress", "-o", "json",
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    runs = [row["predictor"] for row in json.loads(out)]
    assert runs[:2] == ["reactive", "none"]


# --------------------------------------------------------------------------- refusals

SCALED_OBJECT = """\
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: orders, namespace: shop}
spec:
  scaleTargetRef: {name: orders}
  triggers:
    - type: kafka
      metadata: {bootstrapServers: "kafka:9092", consumerGroup: orders, METADATA}
"""


def _scaled_object(metadata: str = "topic: orders", **spec: str) -> str:
    text = SCALED_OBJECT.replace("METADATA", metadata)
    for key, value in spec.items():
        text += f"  {key}: {value}\n"
    return text


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param("targets: [\n", "invalid YAML: expected the node content", id="not-yaml"),
        pytest.param(
            "a: &x [1]\nb: *x\n",
            "invalid YAML: an alias (*name): Kubernetes objects never use them (line 2, column 4)",
            id="alias",
        ),
        pytest.param("- 1\n- 2\n", "document 1: not a Kubernetes object", id="not-an-object"),
        pytest.param("", "no Kubernetes object in it", id="empty"),
        pytest.param("kind: List\nitems: 3\n", "List items must be a list", id="bad-list"),
        pytest.param(
            _scaled_object("topic: orders, lagThreshold: lots"),
            "lagThreshold: 'lots' is not an integer: skipped (KEDA refuses it too)",
            id="keda-refuses-it",
        ),
        pytest.param(
            _scaled_object(minReplicaCount="5", maxReplicaCount="2"),
            "  targets[0].max_replicas: must be at least min_replicas (5) (from ScaledObject "
            "shop/orders)",
            id="fails-validation",
        ),
    ],
)
def test_input_that_cannot_be_imported_exits_2_without_a_traceback(
    text: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in.yaml"
    path.write_text(text, encoding="utf-8")
    code, out, err = _import(capsys, str(path))
    assert (code, out) == (2, "")
    assert says in err
    assert "Traceback" not in err
    assert len(err.splitlines()) <= 3


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        pytest.param(["/no/such.yaml"], "import: /no/such.yaml: file not found", id="missing"),
        pytest.param(
            ["-", "--output", "yaml"],
            "import: --output yaml: --output names where to write; for the format, use -o yaml",
            id="output-is-not-the-format",
        ),
        pytest.param(
            ["-", "--kafka-bootstrap-servers", " , "],
            "import: --kafka-bootstrap-servers names no broker",
            id="no-broker",
        ),
    ],
)
def test_bad_arguments_are_one_line(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _import(capsys, *argv, stdin="")
    assert (code, out, err) == (2, "", says + "\n")


def test_a_workload_scaled_twice_is_imported_once(capsys: pytest.CaptureFixture[str]) -> None:
    second = _scaled_object().replace("name: orders, namespace", "name: orders-2, namespace")
    code, out, err = _import(capsys, "-", stdin=_scaled_object() + "---\n" + second)
    assert code == 0
    assert [t["name"] for t in yaml.safe_load(out)["targets"]] == ["orders"]
    assert (
        "ScaledObject shop/orders-2: Deployment shop/orders is already scaled by ScaledObject "
        "shop/orders (two targets would fight over its replicas): skipped"
    ) in _warnings(err)


@pytest.mark.parametrize(
    ("metadata", "warning"),
    [
        pytest.param(
            "topicFromEnv: KAFKA_TOPIC",
            "topic comes from the workload's environment variable KAFKA_TOPIC (topicFromEnv), "
            "which is not known here: write topic in the trigger's metadata: skipped",
            id="from-env",
        ),
        pytest.param(
            "topic: orders, sasl: gssapi",
            "sasl gssapi is not supported here (plaintext, scram_sha256 and scram_sha512 are): "
            "skipped",
            id="kerberos",
        ),
        pytest.param(
            "topic: orders, lagTreshold: '5'",
            "lagTreshold: not a key of KEDA's kafka scaler known here: left out",
            id="unknown-key",
        ),
        pytest.param(
            "topic: orders, awsRegion: eu-west-1",
            "awsRegion: AWS MSK IAM authentication is not supported: left out",
            id="unsupported-key",
        ),
    ],
)
def test_what_a_kafka_trigger_cannot_map_is_said(
    metadata: str, warning: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, err = _import(capsys, "-", stdin=_scaled_object(metadata))
    assert f"ScaledObject shop/orders, trigger 0 (kafka): {warning}" in _warnings(err)


def test_a_trigger_key_the_schema_lacks_is_not_supported_yet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The table is the extension point: a KEDA key mapped to a key the schema does not
    have (yet) is said, and the rest of the trigger imported."""
    monkeypatch.setitem(
        triggers.KAFKA_KEYS, "lagThreshold", triggers.Key("lag_per_replica", keda_values.integer)
    )
    objects = parse_objects(_scaled_object("topic: orders, lagThreshold: '7'"), "in")
    imported = import_objects(objects, ImportOptions())
    assert "lagThreshold: not supported yet: left out" in [n.message for n in imported.notes]
    (trigger,) = imported.document["targets"][0]["triggers"]
    assert "lag_threshold" not in trigger
    assert trigger["consumer_group"] == "orders"


def test_every_mapped_key_exists_in_the_schema() -> None:
    """What the tables promise is what the config has (else the notes above fire)."""
    from autoscaler.config.model import KafkaLagTrigger, PrometheusTrigger, TargetConfig

    assert {k.ours for k in triggers.KAFKA_KEYS.values()} <= set(KafkaLagTrigger.model_fields)
    assert {k.ours for k in triggers.PROMETHEUS_KEYS.values()} <= set(
        PrometheusTrigger.model_fields
    )
    assert set(keda.SCALED_OBJECT_KEYS.values()) <= set(TargetConfig.model_fields)


def test_a_prometheus_trigger_without_ignore_null_values_keeps_our_default_and_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = """\
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: api, namespace: web}
spec:
  scaleTargetRef: {name: api}
  triggers:
    - type: prometheus
      metadata:
        serverAddress: http://prometheus.monitoring:9090
        query: sum(rate(http_requests_total{job="api"}[2m]))
        threshold: "100"
"""
    code, out, err = _import(capsys, "-", stdin=text)
    assert code == 0
    (trigger,) = yaml.safe_load(out)["targets"][0]["triggers"]
    assert "on_empty" not in trigger
    assert any("set on_empty: zero if the query is empty" in w for w in _warnings(err))


@pytest.mark.parametrize(
    ("parse", "raw", "expected"),
    [
        pytest.param(keda_values.integer, "+42", 42, id="int-signed"),
        pytest.param(keda_values.integer, 7, 7, id="int-from-yaml"),
        pytest.param(keda_values.boolean, "T", True, id="go-bool"),
        pytest.param(keda_values.boolean, False, False, id="bool-from-yaml"),
        pytest.param(keda_values.number, "100.50", 100.5, id="float"),
        pytest.param(keda_values.duration_seconds, "2500", 2.5, id="milliseconds"),
        pytest.param(keda_values.duration_seconds, "1m30s", 90.0, id="go-duration"),
        pytest.param(keda_values.duration_seconds, "250ms", 0.25, id="go-ms"),
        pytest.param(keda_values.quantity, "1k", 1000.0, id="quantity-k"),
        pytest.param(keda_values.quantity, "500m", 0.5, id="quantity-milli"),
        pytest.param(keda_values.quantity, "1Ki", 1024.0, id="quantity-binary"),
        pytest.param(keda_values.quantity, "2e3", 2000.0, id="quantity-exponent"),
    ],
)
def test_values_are_read_as_their_owners_read_them(
    parse: Any, raw: object, expected: object
) -> None:
    assert parse(raw) == expected


@pytest.mark.parametrize(
    ("parse", "raw"),
    [
        pytest.param(keda_values.integer, "1.5", id="int"),
        pytest.param(keda_values.boolean, "yes", id="bool"),
        pytest.param(keda_values.number, "nan", id="nan"),
        pytest.param(keda_values.duration_seconds, "5 minutes", id="duration"),
        pytest.param(keda_values.quantity, "3x", id="quantity"),
    ],
)
def test_values_their_owners_refuse(parse: Any, raw: object) -> None:
    with pytest.raises(keda_values.BadValueError):
        parse(raw)


def test_imported_configs_describe_as_validate_does(capsys: pytest.CaptureFixture[str]) -> None:
    from autoscaler.cli import describe_target

    config: AutoscalerConfig = parse_config(_imported(capsys, "kafka-scaledobject.yaml"))
    assert describe_target(config.targets[0]) == (
        "orders-consumer: Deployment shop/orders-consumer, replicas 1..24, triggers "
        "kafka_lag(cluster=kafka, group=orders, topics=orders, lag_threshold=500), predictor "
        "auto (lead 90s, q0.9), SLO 60s, dry-run"
    )


def test_an_output_that_cannot_be_written_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "no-such-folder" / "autoscaler.yaml"
    code, out, err = _import(capsys, "-", "--output", str(target), stdin=_scaled_object())
    assert (code, out) == (2, "")
    assert err.splitlines()[-1] == (
        f"import: --output {target}: cannot write it (No such file or directory)"
    )
    assert not target.parent.exists()


def test_an_output_file_is_replaced_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "autoscaler.yaml"
    target.write_text("old\n")
    code, _, _ = _import(capsys, "-", "--output", str(target), stdin=_scaled_object())
    assert code == 0
    assert [t.name for t in load_config(target).targets] == ["orders"]
    assert [p.name for p in tmp_path.iterdir()] == ["autoscaler.yaml"], "no temporary left"


def test_the_readme_shows_what_its_example_imports_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Migrate from KEDA or an HPA", 1)[1].split("\n## ", 1)[0]
    shown_err = section.split("stderr says:\n\n```\n", 1)[1].split("```", 1)[0]
    shown_file = section.split("reads:\n\n```yaml\n", 1)[1].split("```", 1)[0]
    written = tmp_path / "autoscaler.yaml"
    code, _, err = _import(capsys, str(FIXTURES / "readme.yaml"), "--output", str(written))
    assert code == 0
    assert err == shown_err.replace("to autoscaler.yaml", f"to {written}")
    assert written.read_text(encoding="utf-8").split("\n\n", 1)[1].endswith(shown_file)
