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
from autoscaler.replay.runs import (
    NO_FORECAST,
    ORACLE,
    REACTIVE,
    OracleSource,
    PredictorSource,
    kafka_trigger,
    run_target,
)
from autoscaler.replay.simulator import Consumer, FloatArray, Timeline, simulate
from autoscaler.replay.summary import summarize, work_lower_bound_hours
from autoscaler.replay.trace import Trace, TraceError

DAY = 86400.0


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
    """History before the replayed span, used to warm the predictors up (as the live
    service warms up from Prometheus), not scored."""
    span_seconds: float | None = None
    """Replay at most this much after the warm-up (None: the rest of the trace)."""


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
            "slo_max_lag_seconds": self.slo_seconds,
            "lead_seconds": self.lead_seconds,
            "trace_scale": self.scale,
            "work_lower_bound_replica_hours": work_lower_bound_hours(
                any_timeline.arrival_rate, step, self.settings.per_replica_throughput
            ),
            "results": self.results,
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
    predictor name, ``oracle``), in up to ``jobs`` processes at once."""
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

    run_config = target.model_copy(
        update={"startup_seconds": settings.startup_seconds, "poll_interval_seconds": step}
    )
    slo = run_config.slo.max_lag_seconds
    initial = max(run_config.min_replicas, 1, math.ceil(rates[0] / settings.per_replica_throughput))
    consumer = Consumer(
        per_replica_throughput=settings.per_replica_throughput,
        startup_seconds=settings.startup_seconds,
        partitions=settings.partitions,
        initial_replicas=min(initial, run_config.max_replicas),
    )
    result = ReplayResult(
        trace=trace.name,
        settings=settings,
        slo_seconds=slo,
        scale=scale,
        lead_seconds=run_config.lead_time_seconds,
        warnings=warnings,
    )
    job = _Job(
        target=target,
        run_config=run_config,
        trigger_name=trigger_name,
        times=times,
        rates=rates,
        warmup_times=warmup_times,
        warmup_rates=np.asarray(warmup_rates, dtype=np.float64),
        consumer=consumer,
        settings=settings,
    )
    outcomes: dict[str, tuple[Timeline, dict[str, Any]]] = {}
    if jobs <= 1 or len(runs) <= 1:
        for index, run in enumerate(runs):
            if progress is not None:
                progress(run, index, len(runs))
            outcomes[run] = _run_one(job, run)
    else:
        # Runs are independent: spread them over processes (the GIL would serialize
        # threads). The slowest run bounds the wall time instead of the sum of all.
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            pending = {pool.submit(_run_one, job, run): run for run in runs}
            for done, future in enumerate(as_completed(pending)):
                if progress is not None:
                    progress(pending[future], done, len(runs))
                outcomes[pending[future]] = future.result()
    for run in runs:  # results in the order asked for, however they finished
        timeline, summary = outcomes[run]
        result.timelines[run] = timeline
        result.results.append(summary)
    return result


@dataclass(frozen=True)
class _Job:
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


def _run_one(job: _Job, run: str) -> tuple[Timeline, dict[str, Any]]:
    """Simulate and score one run."""
    settings = job.settings
    step = settings.poll_interval_seconds
    config = run_target(job.run_config, run, settings.per_replica_throughput)
    started = time.perf_counter()
    source: Any = None
    if run == ORACLE:
        source = OracleSource.build(job.rates, step, config.lead_time_seconds)
    elif run not in (REACTIVE, NO_FORECAST):
        params = dict(job.target.predictor.params) if run == job.target.predictor.model else {}
        source = PredictorSource.build(
            config, run, params, step, job.warmup_times, job.warmup_rates
        )
    timeline = simulate(config, job.trigger_name, job.times, job.rates, step, job.consumer, source)
    elapsed = time.perf_counter() - started
    summary = summarize(
        run,
        timeline,
        step,
        settings.per_replica_throughput,
        job.run_config.slo.max_lag_seconds,
        config.lead_time_seconds,
        elapsed,
    )
    return timeline, summary


def default_runs(predictors: Sequence[str]) -> list[str]:
    """``reactive``, then the predictors asked for, then ``oracle``."""
    middle = [p for p in predictors if p not in (REACTIVE, ORACLE)]
    return [REACTIVE, *middle, ORACLE]
