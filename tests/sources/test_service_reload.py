"""``autoscaler run`` in-process against tansu and the Kubernetes API fake: config reload
from disk, readiness from the sources' failure budget, and the per-poll metrics and
``/status`` served over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes_asyncio.client as k8s
import pytest
import yaml
from servers.kafka_broker import TansuBroker
from servers.kafka_data import KafkaData
from servers.kube_api import KubeApiServer
from servers.process import free_port

from autoscaler.config import AutoscalerConfig, load_config
from autoscaler.config.overrides import RunOverrides
from autoscaler.live import service
from autoscaler.live.actuator import ScaleActuator
from autoscaler.logs import configure_logging

TOPIC = "orders"


def _target(name: str, group: str, *, cluster: str = "main", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": "shop",
        "scale_target_ref": {"name": name},
        "max_replicas": 10,
        "predictor": {"model": "naive"},
        "triggers": [
            {
                "type": "kafka_lag",
                "cluster": cluster,
                "consumer_group": group,
                "topics": [TOPIC],
                "lag_threshold": 50,
            }
        ],
        **extra,
    }


def _document(
    broker: TansuBroker, *, dry_run: bool, targets: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "poll_interval_seconds": 0.3,
        "dry_run": dry_run,
        "leader_election": {"enabled": False},
        "server": {"health_port": free_port(), "metrics_port": free_port()},
        "kafka_clusters": {
            "main": {"bootstrap_servers": [broker.bootstrap_server], "request_timeout_seconds": 2}
        },
        "targets": targets,
    }


def _write(path: Path, document: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


@pytest.fixture
async def api() -> AsyncIterator[KubeApiServer]:
    async with KubeApiServer() as server:
        server.add_workload("Deployment", "shop", "orders", replicas=1)
        server.add_workload("Deployment", "shop", "payments", replicas=1)
        yield server


class Running:
    """The service task, the ``Service`` it built, and its HTTP endpoints."""

    def __init__(
        self,
        path: Path,
        api: KubeApiServer,
        load: Callable[[str], AutoscalerConfig] = load_config,
    ) -> None:
        self.path = path
        self.load = load
        self.config = load(str(path))
        self.api = api
        self.stop = asyncio.Event()
        self.service: service.Service | None = None
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Running:
        client = k8s.ApiClient(k8s.Configuration(host=self.api.url))
        actuator = ScaleActuator(client, request_timeout_seconds=5, owns_client=True)

        def built(svc: service.Service) -> None:
            self.service = svc

        self.task = asyncio.create_task(
            service.run(
                self.config,
                self.stop,
                actuator=actuator,
                config_path=str(self.path),
                config_check_seconds=0.1,
                on_built=built,
                load=self.load,
            )
        )
        await self.until(lambda: self.service is not None, 10)
        return self

    async def __aexit__(self, *_: object) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)

    @property
    def svc(self) -> service.Service:
        assert self.service is not None
        return self.service

    async def until(self, condition: Callable[[], bool], seconds: float) -> None:
        async with asyncio.timeout(seconds):
            while not condition():
                assert self.task is not None
                if self.task.done():
                    self.task.result()  # raises what stopped the service
                    raise AssertionError("the service stopped")
                await asyncio.sleep(0.05)

    async def get(self, path: str, port: int | None = None) -> tuple[int, str]:
        port = port or self.config.server.health_port
        url = f"http://127.0.0.1:{port}{path}"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status, await response.text()


async def _burst(kafka: KafkaData) -> None:
    await kafka.create_topic(TOPIC, 4)
    for group in ("orders", "payments"):
        await kafka.commit(group, TOPIC, dict.fromkeys(range(4), 0))
    await kafka.produce(TOPIC, [50, 50, 50, 50])  # lag 200: 4 replicas at 50 per replica


async def test_switching_dry_run_off_on_disk_starts_acting_and_keeps_what_was_learnt(
    kafka: KafkaData, broker: TansuBroker, api: KubeApiServer, tmp_path: Path
) -> None:
    await _burst(kafka)
    path = tmp_path / "config.yaml"
    document = _document(broker, dry_run=True, targets=[_target("orders", "orders")])
    _write(path, document)
    async with Running(path, api) as running:
        await running.until(lambda: running.svc.controllers["orders"].last is not None, 5)
        await asyncio.sleep(0.7)  # a few dry-run polls
        assert api.patches() == []
        before = running.svc.controllers["orders"]
        forecaster = before.forecasters["kafka_lag"]
        learnt = before.state.decision

        _write(path, document | {"dry_run": False})
        workload = api.workload("Deployment", "shop", "orders")
        await running.until(lambda: workload.replicas == 4, 5)

        after = running.svc.controllers["orders"]
        assert after is not before, "the changed target runs with its new settings"
        assert after.target.dry_run is False
        assert after.forecasters["kafka_lag"] is forecaster, "no relearning for a dry_run switch"
        assert after.state.decision.recommendations is not None
        assert learnt.recommendations is not None
        assert after.state.decision.recommendations[: len(learnt.recommendations)] == (
            learnt.recommendations
        ), "stabilization keeps its history over the reload"
        assert running.svc.reload.last_result == "applied"


async def test_a_dry_run_flag_holds_over_a_reload_that_switches_dry_run_off(
    kafka: KafkaData, broker: TansuBroker, api: KubeApiServer, tmp_path: Path
) -> None:
    """``autoscaler run --dry-run``: the service reads every reload through the flags, so
    a file that later says ``dry_run: false`` is applied (its other changes too) and still
    patches nothing."""
    await _burst(kafka)
    path = tmp_path / "config.yaml"
    document = _document(broker, dry_run=False, targets=[_target("orders", "orders")])
    _write(path, document)
    flags = RunOverrides(dry_run=True)

    def load(where: str) -> AutoscalerConfig:
        return flags.apply(load_config(where), where)

    async with Running(path, api, load) as running:
        await running.until(lambda: running.svc.controllers["orders"].last is not None, 5)
        changed = _target("orders", "orders", max_replicas=9, dry_run=False)
        _write(path, document | {"targets": [changed]})
        await running.until(lambda: running.svc.controllers["orders"].target.max_replicas == 9, 5)
        await asyncio.sleep(1.0)  # a few polls that would patch 1 -> 4 if acting
        assert running.svc.reload.last_result == "applied"
        assert running.svc.reload.restart_required == []
        assert running.svc.controllers["orders"].target.dry_run is True
        assert api.patches() == []


async def test_an_invalid_config_on_disk_is_rejected_and_the_old_one_keeps_running(
    kafka: KafkaData, broker: TansuBroker, api: KubeApiServer, tmp_path: Path
) -> None:
    await _burst(kafka)
    path = tmp_path / "config.yaml"
    document = _document(broker, dry_run=True, targets=[_target("orders", "orders")])
    _write(path, document)
    async with Running(path, api) as running:
        await running.until(lambda: running.svc.controllers["orders"].last is not None, 5)
        controller = running.svc.controllers["orders"]
        bad = document | {"dry_run": False, "poll_interval_secs": 5}  # a typo: unknown key
        bad["targets"] = [_target("orders", "orders", max_replicas=0)]  # and an invalid value
        _write(path, bad)
        await running.until(lambda: running.svc.reload.last_result == "rejected", 5)

        errors = " ".join(running.svc.reload.errors)
        assert "poll_interval_secs" in errors
        assert "max_replicas" in errors
        assert running.svc.controllers["orders"] is controller, "the old config keeps running"
        polls = controller.last
        await running.until(lambda: controller.last is not polls, 3)  # still polling
        assert api.patches() == [], "the rejected dry_run: false was not applied"

        status, body = await running.get("/status")
        assert status == 200
        reported = json.loads(body)["config"]
        assert reported["last_result"] == "rejected"
        assert any("poll_interval_secs" in e for e in reported["errors"])
        _, metrics = await running.get("/metrics", running.config.server.metrics_port)
        assert 'autoscaler_config_reloads_total{result="rejected"} 1.0' in metrics
        assert "autoscaler_config_last_reload_successful 0.0" in metrics

        _write(path, document | {"dry_run": False})  # fixed: applied, and acts
        workload = api.workload("Deployment", "shop", "orders")
        await running.until(lambda: workload.replicas == 4, 5)
        assert running.svc.reload.errors == []


async def test_an_alias_bomb_on_disk_is_rejected_while_the_service_keeps_answering(
    kafka: KafkaData, broker: TansuBroker, api: KubeApiServer, tmp_path: Path
) -> None:
    """Ten lines of nested aliases once froze /healthz and grew the process to gigabytes:
    the reload is parsed off the event loop and the bomb refused from its node graph."""
    await _burst(kafka)
    path = tmp_path / "config.yaml"
    _write(path, _document(broker, dry_run=True, targets=[_target("orders", "orders")]))
    async with Running(path, api) as running:
        await running.until(lambda: running.svc.controllers["orders"].last is not None, 5)
        lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
        path.write_text("\n".join([*lines, "targets: [*a8]", ""]), encoding="utf-8")
        await running.until(lambda: running.svc.reload.last_result == "rejected", 10)
        assert "aliases (*name) expand to more than" in " ".join(running.svc.reload.errors)
        status, _ = await running.get("/healthz")
        assert status == 200
        assert "orders" in running.svc.controllers  # the old config runs on


async def test_targets_added_and_removed_on_disk_start_and_stop(
    kafka: KafkaData, broker: TansuBroker, api: KubeApiServer, tmp_path: Path
) -> None:
    await _burst(kafka)
    path = tmp_path / "config.yaml"
    document = _document(broker, dry_run=False, targets=[_target("orders", "orders")])
    _write(path, document)
    async with Running(path, api) as running:
        orders = api.workload("Deployment", "shop", "orders")
        await running.until(lambda: orders.replicas == 4, 5)
        _, metrics = await running.get("/metrics", running.config.server.metrics_port)
        assert 'autoscaler_desired_replicas{target="orders"} 4.0' in metrics

        changed_port = document["server"] | {"health_port": free_port()}
        _write(
            path,
            document | {"server": changed_port, "targets": [_target("payments", "payments")]},
        )
        payments = api.workload("Deployment", "shop", "payments")
        await running.until(lambda: payments.replicas == 4, 5)
        assert list(running.svc.controllers) == ["payments"]
        assert running.svc.reload.restart_required == ["server"]
        # The ports are bound at start: the running ones stay, and say so.
        status, _ = await running.get("/healthz")
        assert status == 200
        _, metrics = await running.get("/metrics", running.config.server.metrics_port)
        assert 'target="orders"' not in metrics, "a removed target's series are dropped"
        assert 'autoscaler_desired_replicas{target="payments"} 4.0' in metrics
        replicas_before = orders.replicas
        await asyncio.sleep(0.7)
        assert orders.replicas == replicas_before, "the removed target is no longer scaled"


async def test_metrics_and_status_report_each_poll(
    kafka: KafkaData, broker: TansuBroker, api: KubeApiServer, tmp_path: Path
) -> None:
    await _burst(kafka)
    path = tmp_path / "config.yaml"
    # Forecasts 0.6 s ahead (start-up 0 + margin), so past ones are scored within the test.
    quick = _target(
        "orders",
        "orders",
        startup_seconds=0,
        predictor={"model": "naive", "lead_margin_seconds": 0.6},
    )
    _write(path, _document(broker, dry_run=True, targets=[quick]))
    async with Running(path, api) as running:
        await running.until(
            lambda: (
                (acc := running.svc.metrics.accuracy("orders", "kafka_lag")) is not None
                and acc.count > 0
            ),
            10,
        )
        _, metrics = await running.get("/metrics", running.config.server.metrics_port)
        labels = '{target="orders",trigger="kafka_lag"}'
        for series in (
            f"autoscaler_observed_lag_messages{labels} 200.0",
            f"autoscaler_arrival_rate_messages_per_second{labels} 0.0",
            f"autoscaler_forecast_point{labels}",
            f"autoscaler_forecast_mae{labels}",
            f"autoscaler_forecast_pinball_loss{labels}",
            "autoscaler_decisions_total{reason=",
            'autoscaler_loop_duration_seconds_count{target="orders"}',
            "autoscaler_leader 1.0",
        ):
            assert series in metrics, series
        status, body = await running.get("/status")
        assert status == 200
        target = json.loads(body)["targets"]["orders"]
        assert target["observations"]["kafka_lag"]["total_lag"] == 200
        assert target["forecasts"]["kafka_lag"]["model"]
        assert target["decision"]["desired_replicas"] == 4
        assert target["held_because"] == "dry-run"
        assert target["forecast_accuracy"]["kafka_lag"]["count"] > 0
        throughput = target["throughput"]["kafka_lag"]
        configured = quick["triggers"][0].get("per_replica_throughput")
        assert throughput["configured"] == configured
        assert throughput["learning"] is True
        assert throughput["used"] == (configured or throughput["learned"])
        status, body = await running.get("/readyz")
        assert (status, json.loads(body)["ready"]) == (200, True)


async def test_the_slo_budget_is_in_status_metrics_and_decision_log(
    kafka: KafkaData,
    broker: TansuBroker,
    api: KubeApiServer,
    tmp_path: Path,
) -> None:
    """200 messages of lag at 1 replica of 10 msg/s take 20 s: over a 5 s SLO at every
    poll, so the quantile in force climbs from the configured 0.6 (and the decision log
    says so)."""
    await _burst(kafka)
    path = tmp_path / "config.yaml"
    budgeted = _target(
        "orders",
        "orders",
        predictor={"model": "naive", "quantile": 0.6},
        slo={"max_lag_seconds": 5, "budget_percent": 5},
    )
    budgeted["triggers"][0]["per_replica_throughput"] = 10
    # Acting (not forecast-only): in dry_run the quantile would not move.
    _write(path, _document(broker, dry_run=False, targets=[budgeted]))
    logged = io.StringIO()
    configure_logging("json", "info", stream=logged)
    async with Running(path, api) as running:
        await running.until(
            lambda: running.svc.controllers["orders"].state.budget.judged_polls >= 2, 10
        )
        _status, body = await running.get("/status")
        budget = json.loads(body)["targets"]["orders"]["slo_budget"]
        assert budget["budget_percent"] == 5
        assert budget["adapting"] is True
        assert budget["violation_percent"] == 100.0
        assert budget["quantile"] >= 0.6  # a step per poll: 0.3 s polls move it little
        in_force = running.svc.controllers["orders"].state.budget.quantile
        assert in_force is not None
        assert in_force > 0.6
        _, metrics = await running.get("/metrics", running.config.server.metrics_port)
        for series in (
            'autoscaler_slo_budget_quantile{target="orders"}',
            'autoscaler_slo_budget_ratio{target="orders"} 0.05',
            'autoscaler_slo_violation_ratio{target="orders"}',
            'autoscaler_slo_budget_at_limit{target="orders"}',
        ):
            assert series in metrics, series
    decisions = [
        json.loads(line) for line in logged.getvalue().splitlines() if "scaling_decision" in line
    ]
    assert decisions
    assert decisions[-1]["slo_budget"]["budget_percent"] == 5


async def test_readiness_fails_past_the_failure_budget_and_other_targets_run(
    kafka: KafkaData, broker: TansuBroker, api: KubeApiServer, tmp_path: Path
) -> None:
    await _burst(kafka)
    path = tmp_path / "config.yaml"
    document = _document(
        broker,
        dry_run=False,
        targets=[
            _target("orders", "orders"),
            _target("payments", "payments", cluster="secured", fallback={"failure_threshold": 2}),
        ],
    )
    # A cluster whose Secret is not mounted: its target holds, the other one acts.
    document["kafka_clusters"]["secured"] = {
        "bootstrap_servers": [broker.bootstrap_server],
        "security_protocol": "SASL_PLAINTEXT",
        "sasl": {
            "mechanism": "PLAIN",
            "username": "u",
            "password_file": str(tmp_path / "missing-password"),
        },
    }
    _write(path, document)
    async with Running(path, api) as running:
        orders = api.workload("Deployment", "shop", "orders")
        await running.until(lambda: orders.replicas == 4, 5)
        payments = running.svc.controllers["payments"]
        await running.until(lambda: payments.state.decision.failures.get("kafka_lag", 0) >= 2, 5)
        status, body = await running.get("/readyz")
        detail = json.loads(body)["detail"]
        assert status == 503
        assert "payments/kafka_lag" in detail
        assert "missing-password" in detail
        assert api.workload("Deployment", "shop", "payments").replicas == 1
        assert all("payments" not in p.path for p in api.patches())
        _, metrics = await running.get("/metrics", running.config.server.metrics_port)
        assert 'autoscaler_source_errors_total{target="payments",trigger="kafka_lag"}' in metrics


async def test_a_service_stops_promptly_while_the_config_watch_runs(
    broker: TansuBroker, api: KubeApiServer, tmp_path: Path
) -> None:
    path = tmp_path / "config.yaml"
    _write(path, _document(broker, dry_run=True, targets=[_target("orders", "orders")]))
    running = Running(path, api)
    async with running:
        pass
    assert running.task is not None
    assert running.task.done()
    with contextlib.suppress(asyncio.CancelledError):
        assert running.task.exception() is None


async def test_a_target_moved_to_another_workload_starts_its_history_afresh(
    kafka: KafkaData, broker: TansuBroker, api: KubeApiServer, tmp_path: Path
) -> None:
    await _burst(kafka)
    path = tmp_path / "config.yaml"
    document = _document(broker, dry_run=True, targets=[_target("orders", "orders")])
    _write(path, document)
    async with Running(path, api) as running:
        await running.until(lambda: running.svc.controllers["orders"].last is not None, 5)
        before = running.svc.controllers["orders"]
        moved = _target("orders", "orders") | {"scale_target_ref": {"name": "payments"}}
        _write(path, document | {"targets": [moved]})
        await running.until(lambda: running.svc.controllers["orders"] is not before, 5)
        after = running.svc.controllers["orders"]
        assert after.target.scale_target_ref.name == "payments"
        await running.until(lambda: after.last is not None, 5)
        assert before.state.decision.recommendations is not None
        assert after.state.decision.recommendations is not None
        last_before = max(r.at for r in before.state.decision.recommendations)
        assert min(r.at for r in after.state.decision.recommendations) > last_before, (
            "no stabilization history of another workload"
        )
        assert after.forecasters["kafka_lag"] is before.forecasters["kafka_lag"], (
            "the same series: what the forecaster learnt is kept"
        )
