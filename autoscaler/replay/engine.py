"""Replay one target over one trace: every run through the same simulator, scored alike."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autoscaler.config.model import TargetConfig
from autoscaler.decision.forecasters import Forecaster
from autoscaler.replay.oracle import OracleSchedule, oracle_schedule
from autoscaler.replay.runs import (
    DEFAULT_SLO_BUDGET_PERCENT,
    ORACLE,
    ORACLE_BEHAVIOR,
    REACTIVE,
    frontier_thresholds,
    kafka_trigger,
    keda_run,
    keda_threshold,
    run_forecasters,
    run_settings,
    run_target,
)
from autoscaler.replay.simulator import (
    Consumer,
    FloatArray,
    Timeline,
    simulate,
    simulate_schedule,
)
from autoscaler.replay.summary import (
    frontier_standing,
    keda_points,
    summarize,
    work_arrived_hours,
)
from autoscaler.traces import Trace, TraceError

DAY = 86400.0
AUTO = "auto"
"""The model that fits every candidate: the slowest run by far."""


@dataclass(frozen=True)
class ReplaySettings:
    """What the replay simulates; each defaults to the target's configuration."""

    per_replica_throughput: float
    startup_seconds: float
    poll_interval_seconds: float
    partitions: int | None
    peak_replicas: float | None = None
    """Scale the trace so that its 99th percentile needs this many replicas (traces come in
    all units; None replays the values as messages/s)."""
    warmup_seconds: float = 7 * DAY
    """History before the replayed span, used to warm the predictors up, not scored. (The
    live service warms a Prometheus trigger's model up from its range history the same way;
    a Kafka trigger's model starts live from its first polls, naive until it has enough.)"""
    span_seconds: float | None = None
    """Replay at most this much after the warm-up (None: the rest of the trace)."""
    frontier: bool = True
    """Also replay the KEDA frontier (reactive over a sweep of lag thresholds)."""
    rebalance_seconds: float = 0.0
    """How long the whole group stops at each membership change (``Consumer``)."""


@dataclass
class ReplayResult:
    trace: str
    settings: ReplaySettings
    slo_seconds: float
    scale: float
    lead_seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    timelines: dict[str, Timeline] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    frontier: list[dict[str, Any]] = field(default_factory=list)
    """The KEDA frontier: one entry per lag threshold, scored like a run."""
    oracle: OracleSchedule | None = None
    throughput: dict[str, Any] = field(default_factory=dict)
    """What the target is told about the per-replica throughput, and the truth."""
    slo_budget_percent: float = DEFAULT_SLO_BUDGET_PERCENT
    """The share of time the lag may exceed the SLO: a run within it meets the SLO."""
    slo_budget_source: str = "default"
    """``slo.budget_percent`` when the target sets it, else ``default``."""

    def summary(self) -> dict[str, Any]:
        """``summary.json``: the keys reports and bars depend on, plus ``lead_seconds`` and
        ``trace_scale`` so that every number can be recomputed from the CSV files."""
        if not self.timelines:
            raise ValueError("no run was replayed")
        any_timeline = next(iter(self.timelines.values()))
        steps = len(any_timeline.timestamps)
        step = self.settings.poll_interval_seconds
        return {
            "trace": self.trace,
            "steps": steps,
            "step_seconds": step,
            "duration_hours": steps * step / 3600.0,
            "per_replica_throughput": self.settings.per_replica_throughput,
            "startup_seconds": self.settings.startup_seconds,
            "rebalance_seconds": self.settings.rebalance_seconds,
            "slo_max_lag_seconds": self.slo_seconds,
            "slo_budget_percent": self.slo_budget_percent,
            "slo_budget_source": self.slo_budget_source,
            "lead_seconds": self.lead_seconds,
            "trace_scale": self.scale,
            "work_arrived_replica_hours": work_arrived_hours(
                any_timeline.arrival_rate, step, self.settings.per_replica_throughput
            ),
            "oracle_lower_bound_replica_hours": None
            if self.oracle is None
            else self.oracle.lower_bound_replica_hours,
            "unavoidable_violation_minutes": None
            if self.oracle is None
            else self.oracle.unavoidable_violation_steps * step / 60.0,
            "throughput": self.throughput,
            "results": self.results,
            "keda_frontier": self.frontier,
        }


Progress = Callable[[str, int, int], None]


def replay(
    target: TargetConfig,
    trace: Trace,
    settings: ReplaySettings,
    runs: Sequence[str],
    progress: Progress | None = None,
    jobs: int = 1,
) -> ReplayResult:
    """Simulate ``target`` over ``trace`` for each run name (``reactive``, ``none``, a
    predictor name, ``oracle-behavior``, ``oracle``; the KEDA frontier besides), in up to
    ``jobs`` processes at once."""
    job = prepare(target, trace, settings)
    run_config, consumer, scale = job.run_config, job.consumer, job.scale
    slo = run_config.slo.max_lag_seconds
    warnings = list(job.warnings)
    _, _, trigger = kafka_trigger(run_config)
    true_throughput = settings.per_replica_throughput
    configured = trigger.per_replica_throughput
    result = ReplayResult(
        trace=trace.name,
        settings=settings,
        slo_seconds=slo,
        scale=scale,
        lead_seconds=run_config.lead_time_seconds,
        warnings=warnings,
        throughput={
            "true": true_throughput,
            "configured": configured,
            "known_as": "configured" if configured is not None else "learned",
        },
    )
    if run_config.slo.budget_percent is not None:
        result.slo_budget_percent = run_config.slo.budget_percent
        result.slo_budget_source = "slo.budget_percent"
    warnings.extend(_baseline_warnings(trigger.lag_threshold, true_throughput, slo, consumer))
    if configured is not None and not 0.5 <= configured / true_throughput <= 2:
        warnings.append(
            f"the target is told {configured:g} msg/s per replica (its per_replica_throughput) "
            f"while the simulated replicas process {true_throughput:g}: every run but the "
            "oracles sizes with the wrong figure; pass --assume-throughput "
            f"{true_throughput:g} to tell it the truth, or --assume-throughput learn"
        )
    frontier_runs = (
        [
            keda_run(t)
            for t in frontier_thresholds(true_throughput, consumer.commit_interval_seconds)
        ]
        if settings.frontier
        else []
    )
    # KEDA at the target's own threshold is the reactive run: replayed once, used for both.
    own = keda_run(trigger.lag_threshold) if REACTIVE in runs else None
    everything = [*runs, *(r for r in frontier_runs if r not in runs and r != own)]
    outcomes: dict[str, tuple[Timeline, dict[str, Any], OracleSchedule | None]] = {}
    if jobs <= 1 or len(everything) <= 1:
        for index, run in enumerate(everything):
            if progress is not None:
                progress(run, index, len(everything))
            outcomes[run] = run_one(job, run)
    else:
        # Runs are independent: spread them over processes (the GIL would serialize
        # threads). The slowest run bounds the wall time instead of the sum of all. The
        # slow ones go first (``auto`` before the other models and the oracle: started
        # last, it alone would outlast the rest), so that the quick frontier runs fill in.
        slow_first = sorted(everything, key=_slowness_rank)
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            pending = {pool.submit(run_one, job, run): run for run in slow_first}
            for done, future in enumerate(as_completed(pending)):
                if progress is not None:
                    progress(pending[future], done, len(everything))
                outcomes[pending[future]] = future.result()
    for run in runs:  # results in the order asked for, however they finished
        timeline, summary, schedule = outcomes[run]
        result.timelines[run] = timeline
        result.results.append(summary)
        if schedule is not None:
            result.oracle = schedule
    for run in frontier_runs:
        summary = outcomes[REACTIVE if run == own else run][1]
        result.frontier.append({**summary, "predictor": run, "lag_threshold": keda_threshold(run)})
    if result.frontier:
        reactive = next((r for r in result.results if r["predictor"] == REACTIVE), None)
        points = keda_points(result.frontier, reactive, trigger.lag_threshold)
        for summary in result.results:
            if summary["predictor"] not in (REACTIVE, ORACLE, ORACLE_BEHAVIOR):
                summary["keda_frontier"] = frontier_standing(summary, points)
    return result


def _slowness_rank(run: str) -> int:
    """0 for ``auto`` (it fits every candidate model), 1 for the other models and the
    oracle, 2 for the KEDA runs (no model at all)."""
    if keda_threshold(run) is not None or run == REACTIVE:
        return 2
    return 0 if run == AUTO else 1


def _baseline_warnings(
    lag_threshold: int, throughput: float, slo_seconds: float, consumer: Consumer
) -> list[str]:
    """One line when the target's own KEDA threshold cannot keep up with the throughput."""
    drain = lag_threshold / throughput
    if drain <= slo_seconds:
        return []
    fair = frontier_thresholds(throughput, consumer.commit_interval_seconds)
    return [
        f"reactive: lag_threshold {lag_threshold} is {_duration(drain)} of one replica's work "
        f"at {throughput:g} msg/s, over the {slo_seconds:g}s SLO: KEDA with it lets each "
        f"replica hold more lag than it drains within the SLO; compare with the KEDA "
        f"frontier (lag thresholds {fair[0]}..{fair[-1]})"
    ]


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def prepare(target: TargetConfig, trace: Trace, settings: ReplaySettings) -> ReplayJob:
    """What every run of a replay shares: the polls, the arrival rates (scaled), the
    warm-up history, the simulated consumers and the target at the replay's timing."""
    _, trigger_name, _ = kafka_trigger(target)
    step = settings.poll_interval_seconds
    warmup = min(settings.warmup_seconds, max(0.0, (trace.end - trace.start) / 2))
    warnings: list[str] = []
    if warmup < settings.warmup_seconds:
        warnings.append(
            f"{trace.name}: warm-up shortened to {warmup / 3600:.1f} h (the trace is short): "
            "predictors forecast naively until they have the history they need"
        )
    begin = trace.start + warmup
    end = trace.end
    if settings.span_seconds is not None:
        end = min(end, begin + settings.span_seconds)
    count = math.floor((end - begin) / step + 1e-9)
    times = begin + step * np.arange(count, dtype=np.float64)
    if len(times) < 2:
        raise TraceError(
            f"{trace.name}: too short to replay at a {step:g}s poll interval after "
            f"{warmup / 3600:.0f}h of warm-up"
        )
    scale = 1.0
    if settings.peak_replicas is not None:
        p99 = float(np.percentile(trace.rates, 99))
        if p99 <= 0:
            raise TraceError(f"{trace.name}: the trace is all zeros: nothing to scale for")
        scale = settings.peak_replicas * settings.per_replica_throughput / p99
    rates = trace.rate_at(times) * scale
    warmup_times = np.arange(trace.start, begin - step + 1e-9, step, dtype=np.float64)
    warmup_rates = trace.rate_at(warmup_times) * scale if len(warmup_times) else warmup_times

    # Replay simulates a target that acts on its decisions: forecast-only mode (dry_run) is
    # the live service's, where the replicas running are not the decisions' to answer for.
    run_config = target.model_copy(
        update={
            "startup_seconds": settings.startup_seconds,
            "poll_interval_seconds": step,
            "dry_run": False,
        }
    )
    initial = max(run_config.min_replicas, 1, math.ceil(rates[0] / settings.per_replica_throughput))
    consumer = Consumer(
        per_replica_throughput=settings.per_replica_throughput,
        startup_seconds=settings.startup_seconds,
        partitions=settings.partitions,
        initial_replicas=min(initial, run_config.max_replicas),
        rebalance_seconds=settings.rebalance_seconds,
    )
    return ReplayJob(
        target=target,
        run_config=run_config,
        trigger_name=trigger_name,
        times=times,
        rates=rates,
        warmup_times=warmup_times,
        warmup_rates=np.asarray(warmup_rates, dtype=np.float64),
        consumer=consumer,
        settings=settings,
        scale=scale,
        warnings=tuple(warnings),
    )


@dataclass(frozen=True)
class ReplayJob:
    """Everything one run needs (picklable: it crosses to a worker process)."""

    target: TargetConfig
    run_config: TargetConfig
    trigger_name: str
    times: FloatArray
    rates: FloatArray
    warmup_times: FloatArray
    warmup_rates: FloatArray
    consumer: Consumer
    settings: ReplaySettings
    scale: float = 1.0
    """The factor the trace's values were multiplied by."""
    warnings: tuple[str, ...] = ()

    def forecasters(self, config: TargetConfig, run: str) -> dict[str, Forecaster]:
        """``run``'s forecasters for this job's span, warmed up on its warm-up span (as
        replay, tune and the benchmarks build them)."""
        return run_forecasters(
            config,
            run,
            trigger_name=self.trigger_name,
            times=self.times,
            rates=self.rates,
            step_seconds=self.settings.poll_interval_seconds,
            warmup_times=self.warmup_times,
            warmup_rates=self.warmup_rates,
        )


def run_one(job: ReplayJob, run: str) -> tuple[Timeline, dict[str, Any], OracleSchedule | None]:
    """Simulate and score one run."""
    settings = job.settings
    step = settings.poll_interval_seconds
    true_throughput = settings.per_replica_throughput
    config = run_target(job.run_config, run, true_throughput)
    started = time.perf_counter()
    schedule: OracleSchedule | None = None
    if run == ORACLE:
        consumer = job.consumer
        max_ready = config.max_replicas
        if consumer.partitions is not None:
            max_ready = min(max_ready, consumer.partitions)
        schedule = oracle_schedule(
            job.rates,
            step,
            per_replica_throughput=true_throughput,
            startup_seconds=consumer.startup_seconds,
            slo_seconds=config.slo.max_lag_seconds,
            max_ready=max_ready,
            initial_replicas=consumer.initial_replicas,
        )
        timeline = simulate_schedule(job.times, job.rates, step, consumer, schedule.desired)
    else:
        forecasters = job.forecasters(config, run)
        timeline = simulate(
            config, job.trigger_name, job.times, job.rates, step, job.consumer, forecasters
        )
    elapsed = time.perf_counter() - started
    summary = summarize(
        run,
        timeline,
        step,
        true_throughput,
        job.run_config.slo.max_lag_seconds,
        config.lead_time_seconds,
        elapsed,
    )
    summary.update(_knowledge(config, run, timeline, step))
    summary["settings"] = run_settings(config, run)
    return timeline, summary, schedule


def _knowledge(
    config: TargetConfig, run: str, timeline: Timeline, step_seconds: float
) -> dict[str, Any]:
    """What a run knew of the per-replica throughput: configured, learned (and when), or
    nothing (KEDA's formula needs none; the oracle knows the truth)."""
    _, _, trigger = kafka_trigger(config)
    learned = timeline.learned_throughput
    known = learned is not None and bool(np.isfinite(learned).any())
    first = int(np.argmax(np.isfinite(learned))) if learned is not None and known else None
    if run in (ORACLE, ORACLE_BEHAVIOR):
        source = "true"
    elif trigger.per_replica_throughput is not None:
        source = "configured"
    elif not trigger.learn_throughput:  # reactive and the frontier run_target turns it off
        source = "unused"  # KEDA's lag formula throughout
    else:
        source = "learned" if known else "not learned"
    return {
        "throughput_source": source,
        "throughput_used": trigger.per_replica_throughput,
        "throughput_learned_final": float(learned[np.isfinite(learned)][-1])
        if learned is not None and known
        else None,
        "throughput_learned_after_hours": None
        if first is None
        else (first + 1) * step_seconds / 3600.0,
    }


def default_runs(predictors: Sequence[str]) -> list[str]:
    """``reactive``, then the predictors asked for, then ``oracle-behavior`` and ``oracle``."""
    middle = [p for p in predictors if p not in (REACTIVE, ORACLE, ORACLE_BEHAVIOR)]
    return [REACTIVE, *middle, ORACLE_BEHAVIOR, ORACLE]
