"""``autoscaler run``: build everything from the config, run one supervised task per target
until SIGTERM, and apply config changes from disk without a restart.

The pieces (each tested on its own): sources (one ``KafkaCluster`` per cluster and one
``PrometheusSource`` per server, shared by the targets that name them), a forecaster per
trigger (warm-started from Prometheus where the trigger is a Prometheus query), a
``TargetController`` per target, the Kubernetes ``ScaleActuator``, the metrics and the
health/status endpoints. Leader election (a Lease), when enabled, decides who patches;
followers keep observing and forecasting, so a fail-over needs no relearning.

A reload (``Service.apply``) changes only what changed: an unchanged target keeps running
untouched; a changed one is rebuilt but keeps its decision state (stabilization window,
rate-policy history) and every forecaster whose series and settings did not change, so
switching ``dry_run`` off or tuning a policy costs no relearning. Settings the process
binds at start (HTTP ports, API server connection, leader election, logging) need a
restart: a reload that changes them says so and keeps the running values.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from autoscaler.config import ConfigError, Problem, load_config
from autoscaler.config.model import (
    AutoscalerConfig,
    KafkaLagTrigger,
    PrometheusTrigger,
    TargetConfig,
    Trigger,
)
from autoscaler.decision import (
    Forecaster,
    PollState,
    ThroughputEstimate,
    Unavailable,
    forecaster_for,
    forecaster_settings,
    handover,
)
from autoscaler.decision.budget import BudgetState, budget_report, with_quantile
from autoscaler.decision.effectiveness import scale_up_hold
from autoscaler.decision.poll import startup_in_force
from autoscaler.live.actuator import ScaleActuator
from autoscaler.live.conflicts import ConflictChecker
from autoscaler.live.controller import (
    PrometheusTriggerSource,
    StepOutcome,
    TargetController,
    TriggerSource,
)
from autoscaler.live.external_scaler import ExternalScalerServer, TargetAnswer
from autoscaler.live.fit_pool import FitPool, cpu_limit
from autoscaler.live.leader import LeaderElector
from autoscaler.live.memory import release_free_memory
from autoscaler.live.shard_leases import ShardLeases
from autoscaler.live.shard_state import SYNC_SECONDS, ShardStateStore
from autoscaler.live.supervisor import Step, TargetTasks
from autoscaler.observability import ServiceMetrics
from autoscaler.observability import start as start_http
from autoscaler.sharding.assignment import shard_of, target_key
from autoscaler.sources.kafka import ConsumerGroupLag, KafkaCluster
from autoscaler.sources.prometheus import PrometheusSource
from predictors.forecaster import SeriesForecaster

_log = structlog.get_logger("autoscaler.live.service")
RELOAD_DEADLINE_SECONDS = 30.0
"""How long a changed config file may take to parse and validate before the reload is
rejected (the running config is kept)."""

WARM_START_SECONDS = 14 * 86400.0
CONFIG_CHECK_SECONDS = 5.0
"""How often the config file is checked for changes (a mounted ConfigMap changes in place)."""
DEFAULT_MAX_REFIT_WORKERS = 4
"""``server.refit_workers`` unset: the pod's CPU limit, but no more than this. A pod without
a CPU limit on a 64-core node would otherwise start 64 workers (each ~150 MB)."""
REFIT_CONCURRENCY = max(1, (os.cpu_count() or 2) - 1)
"""Model fits running at once: one core stays free for the polls."""
WARM_START_CONCURRENCY = 8
"""Warm starts in flight at once: a restart with many Prometheus targets must not take
minutes, nor hit Prometheus with hundreds of range queries at once."""
_RESTART_SECTIONS = ("server", "kubernetes", "leader_election", "logging")


def _connection(trigger: Trigger) -> tuple[str, str]:
    """The shared connection a trigger polls through: a Kafka cluster or Prometheus server."""
    if isinstance(trigger, KafkaLagTrigger):
        return ("kafka", trigger.cluster)
    return ("prometheus", trigger.server)


@dataclass
class ReloadStatus:
    """The last reload attempt, for ``/status`` and the logs."""

    path: str | None = None
    digest: str | None = None
    loaded_at: float | None = None
    last_attempt_at: float | None = None
    last_result: str = "initial"
    errors: list[str] = field(default_factory=list)
    restart_required: list[str] = field(default_factory=list)


def _carried_state(previous: TargetController, target: TargetConfig) -> PollState:
    """The poll state a rebuilt controller of the same workload starts from: the decision
    history, the throughput learned for each trigger that still reads the same consumer
    group (the estimate belongs to the group's consumers, not to the sizing settings), and
    the SLO budget's quantile while the budget, the SLO, the model and its quantile stay the
    same (a new ``predictor.quantile`` or budget starts the budget afresh)."""
    old = dict(zip(previous.target.trigger_names, previous.target.triggers, strict=True))
    new = dict(zip(target.trigger_names, target.triggers, strict=True))
    throughput = {
        name: estimate
        for name, estimate in previous.state.throughput.items()
        if name in new
        and handover.consumer_group(new[name]) is not None
        and handover.consumer_group(old.get(name)) == handover.consumer_group(new[name])
    }
    budget = previous.state.budget
    if handover.budget_settings(previous.target) != handover.budget_settings(target):
        budget = BudgetState()
    return dataclasses.replace(previous.state, throughput=throughput, budget=budget)


def _throughput_status(controller: TargetController) -> dict[str, Any]:
    """Per Kafka trigger: the per-replica throughput sizing uses, and where it comes from."""
    status: dict[str, Any] = {}
    for name, trigger in zip(
        controller.target.trigger_names, controller.target.triggers, strict=True
    ):
        if not isinstance(trigger, KafkaLagTrigger):
            continue
        estimate = controller.state.throughput.get(name, ThroughputEstimate())
        status[name] = {
            "configured": trigger.per_replica_throughput,
            "learned": estimate.per_replica,
            "learned_samples": estimate.samples,
            "learning": trigger.learn_throughput,
            "used": trigger.per_replica_throughput or estimate.per_replica,
        }
    return status


def _startup_status(controller: TargetController) -> dict[str, Any]:
    """The start-up: configured, measured (and its samples), and the one decisions use."""
    target = controller.target
    measured = controller.state.startup
    return {
        "configured": target.startup_seconds if target.startup_configured else None,
        "measured": measured.measured,
        "measured_ready": measured.measured_ready,
        "samples": len(measured.consuming_samples),
        "in_force": startup_in_force(target, measured),
    }


def _effectiveness_status(controller: TargetController) -> dict[str, Any]:
    """Whether scale-ups raise the processing rate, and what holds them if they do not."""
    target = controller.target
    state = controller.state.effectiveness
    verdict = state.verdict
    return {
        "enabled": target.scaling_effectiveness.enabled,
        "scale_ups_stopped": state.stopped_at is not None,
        "ineffective_in_a_row": state.ineffective,
        "holding_scale_ups": scale_up_hold(state, target.scaling_effectiveness),
        "checking": state.check is not None,
        "last_verdict": None
        if verdict is None
        else {"at": verdict.at, "effective": verdict.effective, "detail": verdict.detail},
    }


class Service:
    """Sources, forecasters and controllers built from a config, and their tasks.

    ``build`` creates everything for a first config, ``start`` runs one supervised task per
    target, ``apply`` moves to a new config, ``stop`` ends the tasks (in-flight polls
    finish), ``aclose`` closes the connections.
    """

    def __init__(
        self,
        config: AutoscalerConfig,
        actuator: ScaleActuator,
        is_leader: Callable[[], bool] = lambda: True,
        *,
        metrics: ServiceMetrics | None = None,
        grace_seconds: float = 5.0,
        load: Callable[[str], AutoscalerConfig] = load_config,
        shards: ShardLeases | None = None,
    ) -> None:
        self.config = config
        self.shards = shards
        """With sharding: the shard Leases; only the targets of the shards this replica
        holds run here (``owns``), and ``rebalance`` follows their changes."""
        self.shard_state: ShardStateStore | None = None
        """With sharding: where each shard's learned state is kept for the next holder."""
        self._loaded_shards: set[int] = set()
        self._handed: dict[str, PollState] = {}
        """Targets of a shard just taken: the state their previous holder learned."""
        self._applying = asyncio.Lock()
        self.load = load
        """How a changed file is read: the loader, with the command line's overrides."""
        self.actuator = actuator
        self.is_leader = is_leader
        self.metrics = metrics or ServiceMetrics()
        self.grace_seconds = grace_seconds
        self.clusters: dict[str, KafkaCluster] = {}
        self.servers: dict[str, PrometheusSource] = {}
        self.controllers: dict[str, TargetController] = {}
        self.reload = ReloadStatus()
        self.built = False
        self._tasks = TargetTasks(grace_seconds=grace_seconds)
        self._warm_starts = asyncio.Semaphore(WARM_START_CONCURRENCY)
        workers = config.server.refit_workers
        if workers is None:
            workers = min(cpu_limit(), DEFAULT_MAX_REFIT_WORKERS)
        self.fit_pool = FitPool(workers) if workers else None
        """Where refits run: worker processes (``server.refit_workers``), or None: threads."""
        self._refits = asyncio.Semaphore(workers if workers else REFIT_CONCURRENCY)
        client = getattr(actuator, "api_client", None)
        self.conflicts = (
            None
            if client is None
            else ConflictChecker(
                client, request_timeout_seconds=config.kubernetes.request_timeout_seconds
            )
        )
        """Shared by every target: one cached list of HPAs and ScaledObjects per namespace
        (None with an actuator that has no API client: the benchmarks' in-memory one)."""
        self._polled = asyncio.Event()

    # ------------------------------------------------------------------ building

    async def build(self, now: float) -> None:
        """Sources, warm-started forecasters and one controller per target."""
        self.clusters = {n: KafkaCluster(n, c) for n, c in self.config.kafka_clusters.items()}
        self.servers = {
            n: PrometheusSource(s, n) for n, s in self.config.prometheus_servers.items()
        }
        built = await asyncio.gather(
            *(
                self._controller(target, now, previous=None)
                for target in self.config.targets
                if self.owns(target)
            )
        )
        self.controllers = {c.target.name: c for c in built}
        self.built = True

    def owns(self, target: TargetConfig) -> bool:
        """Whether ``target`` runs in this replica: always, unless sharded; then when its
        shard's Lease is this replica's."""
        if self.shards is None:
            return True
        return self._shard(target) in self.shards.assigned

    def _shard(self, target: TargetConfig) -> int:
        """The shard ``target`` belongs to (sharded only)."""
        assert self.shards is not None
        return shard_of(_shard_key(target), self.shards.shards)

    def drives_any(self) -> bool:
        """Whether this replica drives targets now: it leads, or it holds a shard."""
        return self.is_leader() if self.shards is None else bool(self.shards.held)

    def targets_per_shard(self) -> dict[int, int]:
        """The targets running here, per shard held (sharded only; else empty)."""
        if self.shards is None:
            return {}
        per_shard: dict[int, int] = dict.fromkeys(sorted(self.shards.assigned), 0)
        for controller in self.controllers.values():
            shard = self._shard(controller.target)
            per_shard[shard] = per_shard.get(shard, 0) + 1
        return per_shard

    def _source(self, trigger: Trigger) -> TriggerSource:
        if isinstance(trigger, KafkaLagTrigger):
            return ConsumerGroupLag(self.clusters[trigger.cluster], trigger)
        return PrometheusTriggerSource(self.servers[trigger.server], trigger)

    async def _controller(
        self,
        target: TargetConfig,
        now: float,
        previous: TargetController | None,
        kept_connections: frozenset[tuple[str, str]] = frozenset(),
    ) -> TargetController:
        """A controller for ``target``, reusing what ``previous`` had where nothing it
        depends on changed (``kept_connections``: clusters and servers not rebuilt)."""
        sources: dict[str, TriggerSource] = {}
        forecasters: dict[str, Forecaster] = {}
        old_triggers: dict[str, Trigger] = {}
        old_sources: dict[str, TriggerSource] = {}
        old_forecasters: dict[str, Forecaster] = {}
        if previous is not None:
            old = previous.target
            old_triggers = dict(zip(old.trigger_names, old.triggers, strict=True))
            old_sources = previous.sources
            if forecaster_settings(old) == forecaster_settings(target):
                old_forecasters = previous.forecasters
        for name, trigger in zip(target.trigger_names, target.triggers, strict=True):
            same_series = (
                old_triggers.get(name) == trigger and _connection(trigger) in kept_connections
            )
            # The same series: the source keeps its offsets (rates need two polls) and the
            # forecaster what it learnt.
            old_source = old_sources.get(name) if same_series else None
            sources[name] = old_source if old_source is not None else self._source(trigger)
            if same_series and name in old_forecasters:
                forecasters[name] = old_forecasters[name]
                continue
            forecaster = forecaster_for(target, name)
            if forecaster is None:
                continue
            if isinstance(trigger, PrometheusTrigger):
                await self._warm_start(forecaster, trigger, target, now)
            forecasters[name] = forecaster
        is_leader = self.is_leader
        guard: Callable[[], contextlib.AbstractAsyncContextManager[bool]] | None = None
        if self.shards is not None:
            key, shards = _shard_key(target), self.shards

            def is_leader() -> bool:
                return shards.drives_key(key)

            def guard() -> contextlib.AbstractAsyncContextManager[bool]:
                return shards.patching(key)

        return TargetController(
            target,
            sources,
            forecasters,
            self.actuator,
            is_leader,
            patch_guard=guard,
            refits=self._refits,
            fit_pool=self.fit_pool,
            conflicts=self.conflicts,
            # Against a real API (not the benchmarks' in-memory actuator on a simulated
            # clock), scale-ups are timed between polls: about ten reads per poll interval,
            # at most one a second, only while a scale-up starts.
            startup_probe_interval=None
            if self.conflicts is None
            else min(max(1.0, target.poll_interval_seconds / 10), target.poll_interval_seconds),
        )

    async def _warm_start(
        self,
        forecaster: SeriesForecaster,
        trigger: PrometheusTrigger,
        target: TargetConfig,
        now: float,
    ) -> None:
        """Fill the forecaster from Prometheus, so a restart forecasts at once."""
        span = min(WARM_START_SECONDS, target.predictor.history_window_seconds)
        async with self._warm_starts:
            server = self.servers[trigger.server]
            history = await server.history(
                trigger.query, now - span, now, target.poll_interval_seconds
            )
            if isinstance(history, Unavailable):
                _log.warning("warm_start_failed", target=target.name, reason=history.reason)
                return
            times, values = history
            if len(times):
                await self._warm(forecaster, times, values)
                _log.info("warm_started", target=target.name, points=int(np.size(times)))

    async def _warm(
        self, forecaster: SeriesForecaster, times: np.ndarray, values: np.ndarray
    ) -> None:
        """A warm start's fit, off the event loop: in the fit pool (a take-over warms every
        target of a shard at once), else in a thread; a pool that cannot, in a thread."""
        if self.fit_pool is not None:
            try:
                await self.fit_pool.warm_start(forecaster, times, values)
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                _log.warning("warm_start_in_pool_failed", error=repr(error))
        await asyncio.to_thread(forecaster.warm_start, times, values)

    # ------------------------------------------------------------------ running

    def start(self) -> None:
        """One supervised task per target not yet running."""
        for name, controller in self.controllers.items():
            if name not in self._tasks:
                self._start(controller)

    def _start(self, controller: TargetController) -> None:
        target = controller.target
        self._tasks.start(target.name, self._step(controller), target.poll_interval_seconds)

    async def stop(self) -> None:
        await self._tasks.stop()
        # A fit cut short by the stop runs on in its thread: give it the grace period, no
        # more (the process exits after it anyway).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(c.settle() for c in self.controllers.values())),
                self.grace_seconds,
            )
        await asyncio.gather(*(c.aclose() for c in self.controllers.values()))
        if self.fit_pool is not None:
            self.fit_pool.shutdown()

    def _step(self, controller: TargetController) -> Step:
        metrics = self.metrics

        async def step(now: float) -> None:
            started = time.perf_counter()
            outcome = await controller.step(now)
            self._export(controller.target, outcome, now)
            metrics.observe_budget(
                controller.target.name, budget_report(controller.target, controller.state.budget)
            )
            learned = _startup_status(controller)
            metrics.observe_startup(
                controller.target.name,
                {key: learned[key] for key in ("configured", "measured", "in_force")},
            )
            metrics.set_scaling_ineffective(
                controller.target.name, controller.state.effectiveness.stopped_at is not None
            )
            metrics.observe_loop_duration(controller.target.name, time.perf_counter() - started)
            polled, self._polled = self._polled, asyncio.Event()
            polled.set()

        return step

    def _export(self, target: TargetConfig, outcome: StepOutcome, now: float) -> None:
        """One poll's figures as metrics. Observations first: an actual scores the forecasts
        made one horizon ago before this poll's forecast is recorded."""
        metrics = self.metrics
        name = target.name
        metrics.set_leader(self.drives_any())
        for trigger, observation in outcome.observations.items():
            metrics.observe_observation(name, trigger, observation)
        configured = target.predictor.quantile
        for trigger, forecast in outcome.forecasts.items():
            # Scored at the configured quantile (what the accuracy gauges are about), not
            # at the one an SLO budget holds in force.
            scored = forecast
            if target.slo.budget_percent is not None:
                scored = with_quantile(forecast, configured, configured)
            metrics.observe_forecast(
                name,
                trigger,
                now,
                scored,
                quantile=target.predictor.quantile,
                poll_interval_seconds=target.poll_interval_seconds,
            )
        if outcome.decision is not None:
            metrics.observe_decision(name, outcome.decision)
        if outcome.api_error is not None:
            metrics.patch_error(name, outcome.api_error)
        metrics.set_conflict(name, outcome.conflict is not None)

    # ------------------------------------------------------------------ reloading

    async def rebalance(self, now: float) -> dict[str, list[str]]:
        """Follow the shards this replica holds: start the targets of a shard it took (as a
        reload starts a new target: warm-started forecasters), stop those of one it gave
        up. Returns what changed, as ``apply``."""
        if self.shards is not None and self.shard_state is not None:
            await self._take_over_state()
        changes = await self.apply(self.config, now)
        if self.shards is not None:
            self.metrics.set_shards(
                self.shards.shards, len(self.shards.held), self.targets_per_shard()
            )
        if changes["added"] or changes["removed"]:
            _log.info(
                "targets_rebalanced",
                started=len(changes["added"]),
                stopped=len(changes["removed"]),
                running=len(self.controllers),
            )
        return changes

    async def _take_over_state(self) -> None:
        """Read the learned state of the shards just taken, for their targets' controllers
        (a shard whose state cannot be read starts afresh: said, never fatal)."""
        assert self.shards is not None
        assert self.shard_state is not None
        assigned = self.shards.assigned
        self._loaded_shards &= assigned
        for shard in sorted(assigned - self._loaded_shards):
            try:
                documents = await self.shard_state.read(shard)
            except Exception as error:
                _log.warning("shard_state_unreadable", shard=shard, error=repr(error))
                documents = {}
            self._loaded_shards.add(shard)
            restored_targets = 0
            for target in self.config.targets:
                key = _shard_key(target)
                if self._shard(target) != shard or key not in documents:
                    continue
                if target.name in self.controllers:
                    continue  # running already (taken back after an outage): keep it
                try:
                    self._handed[target.name] = handover.restored(target, documents[key])
                    restored_targets += 1
                except ValueError as error:
                    _log.warning("shard_state_skipped", target=target.name, error=str(error))
            _log.info("shard_state_taken_over", shard=shard, targets=restored_targets)

    def learned_state(self, shard: int) -> dict[str, Any]:
        """What the targets of ``shard`` running here learned, by target key."""
        assert self.shards is not None
        documents: dict[str, Any] = {}
        for controller in self.controllers.values():
            target = controller.target
            if self._shard(target) == shard:
                documents[_shard_key(target)] = handover.learned(target, controller.state)
        return documents

    async def save_shard(self, shard: int) -> None:
        """Write ``shard``'s learned state (on release; and every ``SYNC_SECONDS`` by
        ``sync_shard_state``) while this replica still drives it."""
        if self.shard_state is None or self.shards is None:
            return
        await self.shard_state.write(shard, self.learned_state(shard))

    async def apply(self, new: AutoscalerConfig, now: float) -> dict[str, list[str]]:
        """Move the running service to ``new`` (only the targets it ``owns``); returns what
        changed, by kind. One at a time: a reload and a rebalance never interleave."""
        async with self._applying:
            return await self._apply(new, now)

    async def _apply(self, new: AutoscalerConfig, now: float) -> dict[str, list[str]]:
        old = self.config
        restart = [s for s in _RESTART_SECTIONS if getattr(old, s) != getattr(new, s)]
        if restart:
            # Bound at start: keep the running values, say a restart is needed.
            new = new.model_copy(update={s: getattr(old, s) for s in restart})
        changed_clusters = {
            n for n, c in new.kafka_clusters.items() if old.kafka_clusters.get(n) != c
        }
        changed_servers = {
            n for n, s in new.prometheus_servers.items() if old.prometheus_servers.get(n) != s
        }
        kept = frozenset(
            {("kafka", n) for n in set(new.kafka_clusters) - changed_clusters}
            | {("prometheus", n) for n in set(new.prometheus_servers) - changed_servers}
        )
        # Retired connections are closed once no running target uses them (at the end).
        retired_clusters = [
            self.clusters.pop(n) for n in list(self.clusters) if ("kafka", n) not in kept
        ]
        retired_servers = [
            self.servers.pop(n) for n in list(self.servers) if ("prometheus", n) not in kept
        ]
        self.clusters.update((n, KafkaCluster(n, new.kafka_clusters[n])) for n in changed_clusters)
        self.servers.update(
            (n, PrometheusSource(new.prometheus_servers[n], n)) for n in changed_servers
        )

        changes: dict[str, list[str]] = {"added": [], "changed": [], "removed": []}
        if restart:
            changes["restart_required"] = restart
        self.config = new
        running = [t for t in new.targets if self.owns(t)]
        new_names = {t.name for t in running}
        removed = [n for n in self.controllers if n not in new_names]
        await self._tasks.stop(removed)
        for name in removed:
            await self.controllers[name].aclose()
            del self.controllers[name]
            self.metrics.forget(name)
            changes["removed"].append(name)

        for target in running:
            previous = self.controllers.get(target.name)
            uses = {_connection(t) for t in target.triggers}
            if previous is not None and previous.target == target and uses <= kept:
                continue
            # Build first (a warm start may take a while), while the old one keeps polling.
            controller = await self._controller(target, now, previous, kept)
            if previous is not None:
                await self._tasks.stop([target.name])
                await previous.settle()  # a fit cut short by the stop still runs: let it end
                await previous.aclose()
                if (previous.target.namespace, previous.target.scale_target_ref) == (
                    target.namespace,
                    target.scale_target_ref,
                ):
                    # The same workload: stabilization and rate policies keep their history
                    # (taken after the stop: the old task's polls during the build count),
                    # and each unchanged trigger its learned throughput.
                    controller.state = _carried_state(previous, target)
                    controller.last = previous.last
                changes["changed"].append(target.name)
            else:
                changes["added"].append(target.name)
                handed = self._handed.pop(target.name, None)
                if handed is not None:  # its shard's previous holder learned this
                    controller.state = handed
            self.controllers[target.name] = controller
            self._start(controller)

        for cluster in retired_clusters:
            await cluster.close()
        for server in retired_servers:
            await server.aclose()
        return changes

    async def reload_from(self, path: str, digest: str, now: float) -> bool:
        """Load ``path`` and apply it; an invalid config is logged and changes nothing."""
        self.reload.last_attempt_at = now
        try:
            # Parsed and validated in a worker thread, within a deadline: a huge or hostile
            # file must not stall /healthz and every target's polls on the event loop.
            loading = asyncio.to_thread(self.load, path)
            try:
                config = await asyncio.wait_for(loading, RELOAD_DEADLINE_SECONDS)
            except TimeoutError:
                raise ConfigError(
                    [
                        Problem(
                            "<file>",
                            f"not validated within {RELOAD_DEADLINE_SECONDS:g} s: "
                            "the running config is kept",
                        )
                    ],
                    path,
                ) from None
            changes = await self.apply(config, now)
        except ConfigError as error:
            summary, problems = error.summary(), [str(p) for p in error.problems]
            self.reload.last_result = "rejected"
            self.reload.errors = [summary, *problems]
            self.metrics.config_reload(success=False)
            _log.error(
                "config_rejected",
                path=path,
                summary=summary,
                problems=problems,
                note="the running config is kept",
            )
            return False
        self.reload = ReloadStatus(
            path=path,
            digest=digest,
            loaded_at=now,
            last_attempt_at=now,
            last_result="applied",
            restart_required=changes.get("restart_required", []),
        )
        self.metrics.config_reload(success=True)
        _log.info("config_reloaded", path=path, **changes)
        if changes.get("restart_required"):
            _log.warning(
                "config_restart_required",
                sections=changes["restart_required"],
                note="these sections keep their running values until the process restarts",
            )
        return True

    # ------------------------------------------------------------------ reporting

    def ready(self) -> tuple[bool, str]:
        """Ready once built, while every trigger's source is within its failure budget
        (the target's ``fallback.failure_threshold`` consecutive failed polls), and no
        target's scale has been forbidden or its credentials rejected that many polls in a
        row. (An API server that is down is not a reason: it is temporary, and an unready
        pod under the PodDisruptionBudget would block node drains.)"""
        if not self.built:
            return False, "starting: building targets and warm-starting forecasters"
        failing = []
        for name, controller in self.controllers.items():
            budget = controller.target.fallback.failure_threshold
            last = controller.last
            for trigger, failures in controller.state.decision.failures.items():
                if failures >= budget:
                    reason = ""
                    if last is not None and isinstance(last.observations.get(trigger), Unavailable):
                        observation = last.observations[trigger]
                        assert isinstance(observation, Unavailable)
                        reason = f": {observation.reason}"
                    failing.append(
                        f"{name}/{trigger}: {failures} failed polls in a row "
                        f"(budget {budget}){reason}"
                    )
            for call, (error, count) in controller.kubernetes_failures().items():
                if count >= budget:
                    failing.append(
                        f"{name}: the scale {call} failed {count} polls in a row: {error}"
                    )
        if failing:
            return False, "failing: " + "; ".join(failing)
        count = len(self.controllers)
        return True, f"{count} target{'' if count == 1 else 's'} running"

    async def wait_polled(self) -> None:
        """Return after the next poll of any target (the external scaler's streams)."""
        await self._polled.wait()

    def answers(self) -> dict[str, TargetAnswer]:
        """Every target's last decision, for KEDA's external scaler protocol."""
        return {
            name: TargetAnswer(
                controller.target,
                None if controller.last is None else controller.last.decision,
            )
            for name, controller in self.controllers.items()
        }

    def status(self) -> dict[str, Any]:
        """``/status``: per target, its last observation, forecast, decision and reason."""
        ready, detail = self.ready()
        targets: dict[str, Any] = {}
        for name, controller in self.controllers.items():
            target = controller.target
            last = controller.last
            targets[name] = {
                "workload": {
                    "namespace": target.namespace,
                    "kind": target.scale_target_ref.kind,
                    "name": target.scale_target_ref.name,
                },
                "dry_run": target.dry_run,
                "predictor": target.predictor.model,
                "poll_interval_seconds": target.poll_interval_seconds,
                "last_poll_at": None if last is None else last.at,
                "observations": {} if last is None else dict(last.observations),
                "forecasts": {} if last is None else dict(last.forecasts),
                "decision": None if last is None else last.decision,
                "patched": None if last is None else last.patched,
                "held_because": None if last is None else last.held_because,
                "api_error": None if last is None else last.api_error,
                "conflict": None if last is None else last.conflict,
                "failed_polls_in_a_row": dict(controller.state.decision.failures),
                "throughput": _throughput_status(controller),
                "slo_budget": budget_report(target, controller.state.budget) or None,
                "startup_seconds": _startup_status(controller),
                "scaling_effectiveness": _effectiveness_status(controller),
                "forecast_accuracy": {
                    trigger: tracker.summary()
                    for trigger in target.trigger_names
                    if (tracker := self.metrics.accuracy(name, trigger)) is not None
                },
            }
        sharding: dict[str, Any] | None = None
        if self.shards is not None:
            sharding = {**self.shards.status(), "targets_per_shard": self.targets_per_shard()}
        return {
            "leader": self.drives_any(),
            "sharding": sharding,
            "ready": ready,
            "ready_detail": detail,
            "config": self.reload,
            "targets": targets,
        }

    async def aclose(self) -> None:
        await self.stop()
        for cluster in self.clusters.values():
            await cluster.close()
        for server in self.servers.values():
            await server.aclose()
        await self.actuator.aclose()


def _shard_key(target: TargetConfig) -> str:
    ref = target.scale_target_ref
    return target_key(target.namespace, ref.kind, ref.name)


def file_digest(path: str) -> str | None:
    """The file's content hash, or None when it cannot be read (kept running as is)."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


async def watch_config(
    service: Service, path: str, stop: asyncio.Event, interval: float = CONFIG_CHECK_SECONDS
) -> None:
    """Reload ``path`` whenever its content changes (by hash: a ConfigMap volume swaps a
    symlink, so modification times are not reliable), until ``stop``."""
    seen = service.reload.digest or file_digest(path)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
        if stop.is_set():
            return
        digest = file_digest(path)
        if digest is None or digest == seen:
            continue
        seen = digest
        try:
            await service.reload_from(path, digest, time.time())
        except Exception as error:  # a reload must never take the service down
            _log.error("config_reload_failed", path=path, error=repr(error))


async def follow_shards(service: Service, shards: ShardLeases, stop: asyncio.Event) -> None:
    """Rebalance the service's targets whenever the shards it holds change (and once at
    the start, for what was taken before the service was built). A failed rebalance is
    logged and tried again at the next change or after a retry period."""
    retry = service.config.leader_election.retry_period_seconds
    pending = True
    while not stop.is_set():
        changed = shards.changed
        if pending:
            try:
                await service.rebalance(time.time())
                pending = False
            except Exception as error:  # a rebalance must never take the service down
                _log.error("rebalance_failed", error=repr(error))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), retry)
            pending = True


async def sync_shard_state(service: Service, shards: ShardLeases, stop: asyncio.Event) -> None:
    """Every ``SYNC_SECONDS``, write the learned state of each shard this replica drives
    (what a crash loses is at most that old); failures are logged and tried next time."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SYNC_SECONDS)
        if stop.is_set():
            return
        for shard in sorted(shards.held):
            try:
                await service.save_shard(shard)
            except Exception as error:
                _log.warning("shard_state_not_saved", shard=shard, error=repr(error))


def _pod_owner() -> dict[str, str] | None:
    """This pod (``POD_NAME`` and ``POD_UID``, from the downward API in deploy/), as the
    owner of its member Lease; None outside a pod."""
    name, uid = os.environ.get("POD_NAME"), os.environ.get("POD_UID")
    return {"name": name, "uid": uid} if name and uid else None


async def run(
    config: AutoscalerConfig,
    stop: asyncio.Event,
    *,
    actuator: ScaleActuator | None = None,
    serve_http: bool = True,
    config_path: str | None = None,
    config_check_seconds: float = CONFIG_CHECK_SECONDS,
    on_built: Callable[[Service], None] | None = None,
    load: Callable[[str], AutoscalerConfig] = load_config,
) -> None:
    """Run until ``stop`` is set; everything built here is closed on the way out.

    ``config_path``: the file ``config`` came from; watched for changes when given, and
    read again by ``load`` (``autoscaler run`` passes the loader with its flags applied,
    so that a reload keeps them).
    ``on_built``: called with the service once its targets run (tests inspect it).
    """
    actuator = actuator or await ScaleActuator.connect(config.kubernetes)
    elector: LeaderElector | None = None
    elector_task: asyncio.Task[None] | None = None
    shards: ShardLeases | None = None
    if config.leader_election.enabled and config.server.sharding.shards > 1:
        shards = ShardLeases(
            actuator.api_client,
            config.leader_election,
            config.server.sharding.shards,
            request_timeout_seconds=config.kubernetes.request_timeout_seconds,
            owner=_pod_owner(),
        )
        elector_task = asyncio.create_task(shards.run(stop), name="shard-leases")
    elif config.leader_election.enabled:
        elector = LeaderElector(
            actuator.api_client,
            config.leader_election,
            request_timeout_seconds=config.kubernetes.request_timeout_seconds,
        )
        elector_task = asyncio.create_task(elector.run(stop), name="leader-election")
    leading = elector
    service = Service(
        config,
        actuator,
        (lambda: leading.is_leader) if leading else (lambda: True),
        load=load,
        shards=shards,
    )
    if shards is not None:
        service.shard_state = ShardStateStore(
            actuator.api_client,
            shards.namespace,
            shards.prefix,
            request_timeout_seconds=config.kubernetes.request_timeout_seconds,
        )
        shards.before_release = service.save_shard
    if config_path is not None:
        service.reload = ReloadStatus(
            path=config_path, digest=file_digest(config_path), loaded_at=time.time()
        )
    http = None
    scaler: ExternalScalerServer | None = None
    watcher: asyncio.Task[None] | None = None
    rebalancer: asyncio.Task[None] | None = None
    syncer: asyncio.Task[None] | None = None
    try:
        if serve_http:
            # Up before the (possibly long) warm start: liveness holds, readiness waits.
            http = await start_http(
                config.server,
                metrics=service.metrics,
                ready=service.ready,
                status=service.status,
            )
        if config.server.external_scaler.enabled:
            # Up early too: KEDA gets UNAVAILABLE (its fallback) until the first decisions.
            scaler = ExternalScalerServer(
                service.answers,
                service.wait_polled,
                cross_namespace=config.server.external_scaler.cross_namespace,
            )
            await scaler.start(config.server)
        await service.build(time.time())
        # What was built lives as long as the process: out of the collector's sight, so
        # its full collections stop walking hundreds of targets' state every few polls.
        gc.collect()
        gc.freeze()
        release_free_memory()  # the warm-start fits' temporaries
        service.start()
        if shards is not None:
            rebalancer = asyncio.create_task(follow_shards(service, shards, stop), name="shards")
            syncer = asyncio.create_task(sync_shard_state(service, shards, stop), name="sync")
        if config_path is not None:
            watcher = asyncio.create_task(
                watch_config(service, config_path, stop, config_check_seconds),
                name="config-watch",
            )
        _log.info("started", targets=len(service.controllers))
        if on_built is not None:
            on_built(service)
        await stop.wait()
    finally:
        for task in (watcher, rebalancer, syncer):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await service.stop()
        if scaler is not None:
            await scaler.stop()
        if http is not None:
            await http.stop()
        if elector_task is not None:  # it releases the lease once ``stop`` is set
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(elector_task, config.kubernetes.request_timeout_seconds)
        await service.aclose()
        _log.info("stopped")


__all__ = [
    "ReloadStatus",
    "Service",
    "file_digest",
    "run",
    "watch_config",
]
