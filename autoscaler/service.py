"""``autoscaler run``: build everything from the config and run one supervised task per
target until SIGTERM.

The pieces (each tested on its own): sources (one ``KafkaCluster`` per cluster and one
``PrometheusSource`` per server, shared by the targets that name them), a forecaster per
trigger (warm-started from Prometheus where the trigger is a Prometheus query), a
``TargetController`` per target, the Kubernetes ``ScaleActuator``, the metrics and the
health/status endpoints. Leader election (a Lease), when enabled, decides who patches;
followers keep observing and forecasting, so a fail-over needs no relearning.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import structlog

from autoscaler.actuator import ScaleActuator
from autoscaler.config.model import (
    AutoscalerConfig,
    KafkaLagTrigger,
    PrometheusTrigger,
    TargetConfig,
)
from autoscaler.controller import PrometheusTriggerSource, TargetController, TriggerSource
from autoscaler.decision import Unavailable
from autoscaler.leader import LeaderElector
from autoscaler.observability import ServiceMetrics
from autoscaler.observability import start as start_http
from autoscaler.sources.kafka import ConsumerGroupLag, KafkaCluster
from autoscaler.sources.prometheus import PrometheusSource
from autoscaler.supervisor import run_targets
from predictors.forecaster import SeriesForecaster

_log = structlog.get_logger("autoscaler.service")

WARM_START_SECONDS = 14 * 86400.0


@dataclass
class Service:
    """Everything ``run`` builds, so that it can be closed in one place."""

    config: AutoscalerConfig
    actuator: ScaleActuator
    clusters: dict[str, KafkaCluster] = field(default_factory=dict)
    servers: dict[str, PrometheusSource] = field(default_factory=dict)
    controllers: dict[str, TargetController] = field(default_factory=dict)
    metrics: ServiceMetrics = field(default_factory=ServiceMetrics)
    is_leader: Callable[[], bool] = lambda: True

    async def aclose(self) -> None:
        for cluster in self.clusters.values():
            await cluster.close()
        for server in self.servers.values():
            await server.aclose()
        await self.actuator.aclose()


def _forecaster(target: TargetConfig) -> SeriesForecaster | None:
    predictor = target.predictor
    if predictor.model == "none":
        return None
    return SeriesForecaster(
        predictor.model,
        dict(predictor.params),
        horizon_seconds=target.lead_time_seconds,
        quantile=predictor.quantile,
        step_seconds=target.poll_interval_seconds,
        window_seconds=predictor.history_window_seconds,
        retrain_interval_seconds=predictor.retrain_interval_seconds,
    )


async def build(
    config: AutoscalerConfig, actuator: ScaleActuator, is_leader: Callable[[], bool]
) -> Service:
    """Sources, forecasters (warm-started) and one controller per target."""
    service = Service(config=config, actuator=actuator, is_leader=is_leader)
    now = time.time()
    for target in config.targets:
        sources: dict[str, TriggerSource] = {}
        forecasters: dict[str, SeriesForecaster] = {}
        for name, trigger in zip(target.trigger_names, target.triggers, strict=True):
            if isinstance(trigger, KafkaLagTrigger):
                cluster = service.clusters.get(trigger.cluster)
                if cluster is None:
                    cluster = KafkaCluster(trigger.cluster, config.kafka_clusters[trigger.cluster])
                    service.clusters[trigger.cluster] = cluster
                sources[name] = ConsumerGroupLag(cluster, trigger)
            else:
                server = service.servers.get(trigger.server)
                if server is None:
                    server_config = config.prometheus_servers[trigger.server]
                    server = PrometheusSource(server_config, trigger.server)
                    service.servers[trigger.server] = server
                sources[name] = PrometheusTriggerSource(server, trigger)
            forecaster = _forecaster(target)
            if forecaster is not None:
                if isinstance(trigger, PrometheusTrigger):
                    await _warm_start(
                        forecaster, service.servers[trigger.server], trigger, target, now
                    )
                forecasters[name] = forecaster
        service.controllers[target.name] = TargetController(
            target, sources, forecasters, actuator, is_leader
        )
    return service


async def _warm_start(
    forecaster: SeriesForecaster,
    server: PrometheusSource,
    trigger: PrometheusTrigger,
    target: TargetConfig,
    now: float,
) -> None:
    """Fill the forecaster from Prometheus, so a restart forecasts at once."""
    span = min(WARM_START_SECONDS, target.predictor.history_window_seconds)
    history = await server.history(trigger.query, now - span, now, target.poll_interval_seconds)
    if isinstance(history, Unavailable):
        _log.warning("warm_start_failed", target=target.name, reason=history.reason)
        return
    times, values = history
    if len(times):
        await asyncio.to_thread(forecaster.warm_start, times, values)
        _log.info("warm_started", target=target.name, points=int(np.size(times)))


def _status(service: Service) -> dict[str, Any]:
    status: dict[str, Any] = {"leader": service.is_leader(), "targets": {}}
    for name, controller in service.controllers.items():
        last = controller.last
        status["targets"][name] = {
            "dry_run": controller.target.dry_run,
            "decision": None if last is None else last.decision,
            "patched": None if last is None else last.patched,
            "held_because": None if last is None else last.held_because,
        }
    return status


def _step(service: Service, controller: TargetController) -> Callable[[float], Any]:
    metrics = service.metrics

    async def step(now: float) -> None:
        started = time.perf_counter()
        outcome = await controller.step(now)
        metrics.observe_loop_duration(controller.target.name, time.perf_counter() - started)
        metrics.set_leader(service.is_leader())
        if outcome.decision is not None:
            metrics.observe_decision(controller.target.name, outcome.decision)
        elif outcome.held_because:
            metrics.patch_error(controller.target.name, "read")

    return step


async def run(
    config: AutoscalerConfig,
    stop: asyncio.Event,
    *,
    actuator: ScaleActuator | None = None,
    serve_http: bool = True,
) -> None:
    """Run until ``stop`` is set; everything built here is closed on the way out."""
    actuator = actuator or await ScaleActuator.connect(config.kubernetes)
    elector: LeaderElector | None = None
    elector_task: asyncio.Task[None] | None = None
    if config.leader_election.enabled:
        elector = LeaderElector(
            actuator.api_client,
            config.leader_election,
            request_timeout_seconds=config.kubernetes.request_timeout_seconds,
        )
        elector_task = asyncio.create_task(elector.run(stop), name="leader-election")
    leading = elector
    service = await build(
        config, actuator, is_leader=(lambda: leading.is_leader) if leading else (lambda: True)
    )
    http = None
    try:
        if serve_http:
            http = await start_http(
                config.server,
                metrics=service.metrics,
                ready=lambda: (True, "running"),
                status=lambda: _status(service),
            )
        steps = {
            name: (_step(service, controller), controller.target.poll_interval_seconds)
            for name, controller in service.controllers.items()
        }
        _log.info("started", targets=len(steps))
        await run_targets(steps, stop)
    finally:
        if http is not None:
            await http.stop()
        if elector_task is not None:  # it releases the lease once ``stop`` is set
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(elector_task, config.kubernetes.request_timeout_seconds)
        await service.aclose()
        _log.info("stopped")
