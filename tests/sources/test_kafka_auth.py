"""The Kafka lag source against a tansu broker that requires SASL: a refused login is an
``Unavailable`` with a reason, on every poll, never an exception.

tansu 0.6 cannot hold a user across the restart that turns authentication on (see
``tests/servers/kafka_broker.py``), so every login here is refused; a successful SASL login is
not tested against a real broker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from servers.kafka_broker import TansuBroker

from autoscaler.config.model import KafkaClusterConfig, KafkaLagTrigger
from autoscaler.decision.types import Unavailable
from autoscaler.sources.kafka import ConsumerGroupLag, KafkaCluster

PASSWORD_ENV = "AUTOSCALER_TEST_KAFKA_PASSWORD"
WRONG_PASSWORD = "not-the-password"


@pytest.fixture
def secure_broker() -> Iterator[TansuBroker]:
    with TansuBroker(authentication=True) as server:
        yield server


def _cluster(
    broker: TansuBroker, mechanism: str, *, password_file: Path | None = None
) -> KafkaCluster:
    sasl: dict[str, object] = {"mechanism": mechanism, "username": "autoscaler"}
    if password_file is None:
        sasl["password_env"] = PASSWORD_ENV
    else:
        sasl["password_file"] = str(password_file)
    config = KafkaClusterConfig.model_validate(
        {
            "bootstrap_servers": [broker.bootstrap_server],
            "security_protocol": "SASL_PLAINTEXT",
            "sasl": sasl,
            "request_timeout_seconds": 2.0,
        },
        strict=False,
    )
    return KafkaCluster("main", config, backoff_initial=1.0, backoff_max=4.0)


def _source(cluster: KafkaCluster) -> ConsumerGroupLag:
    trigger = KafkaLagTrigger.model_validate(
        {"type": "kafka_lag", "cluster": "main", "consumer_group": "g-auth", "topics": ["t"]},
        strict=False,
    )
    return ConsumerGroupLag(cluster, trigger)


@pytest.fixture
async def scram_cluster(
    secure_broker: TansuBroker, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[KafkaCluster]:
    monkeypatch.setenv(PASSWORD_ENV, WRONG_PASSWORD)
    cluster = _cluster(secure_broker, "SCRAM-SHA-256")
    yield cluster
    await cluster.close()


def _unavailable(result: object) -> Unavailable:
    assert isinstance(result, Unavailable), result
    return result


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"])
@pytest.mark.parametrize("password_from", ["env", "file"])
async def test_refused_login_is_unavailable_on_every_poll(
    secure_broker: TansuBroker,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    mechanism: str,
    password_from: str,
) -> None:
    password_file = None
    if password_from == "env":
        monkeypatch.setenv(PASSWORD_ENV, WRONG_PASSWORD)
    else:
        password_file = tmp_path / "password"
        password_file.write_text(WRONG_PASSWORD + "\n", encoding="utf-8")
    cluster = _cluster(secure_broker, mechanism, password_file=password_file)
    source = _source(cluster)
    try:
        # The failed login, a poll during the backoff, and a reconnect after it.
        for now in (100.0, 100.5, 110.0):
            unavailable = _unavailable(await source.poll(now))
            assert unavailable.observed_at == now
            assert unavailable.reason
            assert WRONG_PASSWORD not in unavailable.reason
    finally:
        await cluster.close()
    assert secure_broker.running


async def test_refused_login_reason_names_the_cause(scram_cluster: KafkaCluster) -> None:
    first = _unavailable(await _source(scram_cluster).poll(100.0))
    assert "'main'" in first.reason or "'g-auth'" in first.reason


async def test_refused_login_reason_says_authentication(scram_cluster: KafkaCluster) -> None:
    """The same clear reason at the login and during the backoff (so it is logged once)."""
    source = _source(scram_cluster)
    first = _unavailable(await source.poll(100.0))
    in_backoff = _unavailable(await source.poll(100.5))
    assert "SASL authentication failed" in first.reason, first.reason
    assert "e=unknown-user" in first.reason
    assert in_backoff.reason == first.reason


async def test_reason_in_backoff_names_the_cluster_once(scram_cluster: KafkaCluster) -> None:
    source = _source(scram_cluster)
    _unavailable(await source.poll(100.0))
    in_backoff = _unavailable(await source.poll(100.5))
    assert in_backoff.reason.count("kafka cluster 'main'") == 1, in_backoff.reason
