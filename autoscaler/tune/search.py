"""Search settings on a history, out of sample: tune on the earlier part, score on the later.

Every setting runs through the same simulator and poll step as ``replay`` over the whole
replayed span (models learn online from the past only); its figures are then taken
separately over the *tuning* part (the first ``tune_share`` of the span) and the *test*
part (the rest). The recommendation is chosen on the tuning part alone (the cheapest
setting whose SLO violations stay within the budget there) and reported on the test part,
beside reactive KEDA, the KEDA frontier and the oracle over the same test part.

Forecasts depend only on the model, its quantile and the lead time, never on the
replicas, so each model is run once and recorded (``autoscaler.replay.recorded``), then
replayed for every setting that shares it.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autoscaler.config.model import TargetConfig
from autoscaler.decision import Forecaster
from autoscaler.replay.engine import ReplayJob, ReplaySettings, prepare, run_one
from autoscaler.replay.recorded import (
    RecordedForecasts,
    at_quantile,
    observed_arrival_rates,
    record,
)
from autoscaler.replay.runs import (
    ORACLE,
    REACTIVE,
    frontier_thresholds,
    kafka_trigger,
    keda_run,
)
from autoscaler.replay.simulator import Timeline, simulate
from autoscaler.replay.summary import summarize
from autoscaler.traces import Trace, TraceError
from autoscaler.tune.space import Setting, apply

MIN_PART_SECONDS = 86400.0
"""Each part of the split must hold at least a day: a daily cycle to tune on and to test."""

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Scored:
    """One setting (or baseline), scored on the tuning and the test part."""

    name: str
    tune: dict[str, Any]
    test: dict[str, Any]
    setting: Setting | None = None


CHURN_SLACK = 0.02
"""How much more than the cheapest setting within budget (a share of its replica-hours)
the recommendation may cost to change the replica count less often."""


@dataclass
class TuneResult:
    trace: str
    budget_pct: float
    split_at: float
    tune_hours: float
    test_hours: float
    candidates: list[Scored] = field(default_factory=list)
    baselines: list[Scored] = field(default_factory=list)
    keda_frontier: list[Scored] = field(default_factory=list)
    scale: float = 1.0
    """The factor the history's values were multiplied by (``--peak-replicas``)."""
    peak_replicas: float | None = None
    """What the scaled history's 99th percentile needs; None: replayed as recorded."""
    target_budget_percent: float | None = None
    """The target's own ``slo.budget_percent``: set, only the settings that keep a budget
    can be recommended (``keeps_budget``)."""

    def keeps_budget(self, scored: Scored) -> bool:
        """Whether ``scored`` can be applied without switching off the target's budget.

        A budget the user set is never dropped: besides adapting the quantile, it is what
        ``/status``, the ``slo_budget_*`` metrics and the budget alerts report against. A
        setting with a fixed quantile runs without one (the quantile would adapt with it),
        and model ``none`` cannot have one (no forecast to adapt: the config refuses it), so
        with a target budget neither is recommended; both still show on the frontier."""
        if self.target_budget_percent is None or scored.setting is None:
            return True
        return scored.setting.budget_percent > 0

    @property
    def eligible(self) -> list[Scored]:
        """The candidates the recommendation is chosen among (``keeps_budget``)."""
        return [s for s in self.candidates if self.keeps_budget(s)]

    @property
    def frontier(self) -> list[Scored]:
        """The Pareto frontier on the tuning part: no other setting violates less for less."""
        ranked = sorted(
            self.candidates,
            key=lambda s: (s.tune["replica_hours"], s.tune["slo_violation_minutes"]),
        )
        best = math.inf
        kept = []
        for scored in ranked:
            if scored.tune["slo_violation_minutes"] < best:
                kept.append(scored)
                best = scored.tune["slo_violation_minutes"]
        return kept

    @property
    def recommended(self) -> Scored | None:
        """The setting to use: within the budget on the tuning part, and among those costing
        at most ``CHURN_SLACK`` more than the cheapest, the one that changes the replica
        count least often (each change is a consumer-group rebalance: a pause for every
        consumer). Only settings that keep the target's own budget (``keeps_budget``).
        None: no such setting is within the budget."""
        within = [s for s in self.eligible if s.tune["slo_violation_pct"] <= self.budget_pct]
        if not within:
            return None
        cheapest = min(s.tune["replica_hours"] for s in within)
        close = [s for s in within if s.tune["replica_hours"] <= cheapest * (1 + CHURN_SLACK)]
        return min(
            close,
            key=lambda s: (
                s.tune["scale_events"],
                s.tune["replica_hours"],
                s.tune["slo_violation_minutes"],
            ),
        )

    @property
    def closest(self) -> Scored | None:
        """With no setting within the budget: the one that violates least (of those that
        keep the target's budget)."""
        return min(
            self.eligible,
            key=lambda s: (s.tune["slo_violation_pct"], s.tune["replica_hours"]),
            default=None,
        )


def split_index(n: int, step_seconds: float, tune_share: float, trace: str) -> int:
    """Where the tuning part ends; a ``TraceError`` saying how long the history must be."""
    split = round(n * tune_share)
    shortest = min(split, n - split) * step_seconds
    if shortest < MIN_PART_SECONDS:
        need = MIN_PART_SECONDS / min(tune_share, 1 - tune_share) / 86400.0
        raise TraceError(
            f"{trace}: {n * step_seconds / 86400.0:.1f} days to replay after the warm-up is "
            f"too short to split into tuning and test parts of at least a day each: "
            f"tune needs at least {need:.1f} days after the warm-up"
        )
    return split


def check_needs_scaling(job: ReplayJob, trace: str) -> None:
    """A ``TraceError`` when the arrival rate never exceeds what ``min_replicas`` (at least
    one replica) process: every setting would then run the same schedule, and a
    recommendation would be meaningless (the embedded trace's tweet counts as messages/s,
    or a history in the wrong unit)."""
    floor = max(job.run_config.min_replicas, 1)
    throughput = job.settings.per_replica_throughput
    peak = float(np.max(job.rates)) if len(job.rates) else 0.0
    if peak <= floor * throughput:
        replicas = f"{floor} replica{'' if floor == 1 else 's'}"
        raise TraceError(
            f"{trace}: the arrival rate never exceeds {peak:.4g} msg/s, which {replicas} "
            f"(min_replicas {job.run_config.min_replicas}) process at {throughput:g} msg/s "
            "each: every setting would sit at min_replicas, so there is nothing to tune; "
            "scale the history with --peak-replicas N (the replicas its 99th percentile "
            "needs), or check --value-kind and --per-replica-throughput"
        )


def check_not_all_the_same(result: TuneResult) -> None:
    """A ``TraceError`` when every setting, reactive KEDA and the KEDA frontier ran the same
    schedule: nothing told them apart, so no setting can be recommended over another."""
    reactive = [b for b in result.baselines if b.name == REACTIVE]
    runs = [*result.candidates, *reactive, *result.keda_frontier]

    def figures(scored: Scored) -> tuple[object, ...]:
        return tuple(
            (part["replica_hours"], part["scale_events"], part["slo_violation_minutes"])
            for part in (scored.tune, scored.test)
        )

    if len(runs) > 1 and len({figures(s) for s in runs}) == 1:
        part = runs[0].tune
        raise TraceError(
            f"{result.trace}: every one of the {len(result.candidates)} settings, reactive "
            "KEDA and the KEDA frontier ran the same schedule "
            f"({part['replica_hours']:,.1f} replica-hours and {part['scale_events']:,d} "
            "scale events on the tuning part): the history never asked them to decide "
            "differently, so there is nothing to tune; scale it with --peak-replicas N"
        )


def window(timeline: Timeline, start: int, stop: int) -> Timeline:
    """Steps ``start`` to ``stop`` of a run, as a run of their own (for scoring)."""

    def cut(values: Any) -> Any:
        return None if values is None else values[start:stop]

    return dataclasses.replace(
        timeline,
        timestamps=timeline.timestamps[start:stop],
        arrival_rate=timeline.arrival_rate[start:stop],
        forecast=timeline.forecast[start:stop],
        desired_replicas=timeline.desired_replicas[start:stop],
        replicas=timeline.replicas[start:stop],
        ready_replicas=timeline.ready_replicas[start:stop],
        lag_messages=timeline.lag_messages[start:stop],
        lag_seconds=timeline.lag_seconds[start:stop],
        scale_events=int(
            np.count_nonzero(timeline.desired_replicas[start:stop] != timeline.replicas[start:stop])
        ),
        processed=cut(timeline.processed),
        forecast_upper=cut(timeline.forecast_upper),
        learned_throughput=cut(timeline.learned_throughput),
    )


@dataclass(frozen=True)
class _Work:
    """One worker's share: the settings of one forecast key (picklable)."""

    job: ReplayJob
    settings: tuple[Setting, ...]
    split: int


def _score(
    job: ReplayJob, name: str, timeline: Timeline, split: int, config: TargetConfig
) -> tuple[dict[str, Any], dict[str, Any]]:
    step = job.settings.poll_interval_seconds
    n = len(timeline.timestamps)
    args = (
        step,
        job.settings.per_replica_throughput,
        job.run_config.slo.max_lag_seconds,
        config.lead_time_seconds,
        0.0,
    )
    return (
        summarize(name, window(timeline, 0, split), *args),
        summarize(name, window(timeline, split, n), *args),
    )


def _run_settings(work: _Work) -> list[Scored]:
    """Record the shared forecasts once, then replay every setting with them."""
    job = work.job
    step = job.settings.poll_interval_seconds
    first = apply(job.run_config, work.settings[0])
    # Recorded with the forecast path whether or not the first setting plans: the settings
    # that share these forecasts may (those that do not ignore the path).
    first = first.model_copy(update={"planner": first.planner.model_copy(update={"enabled": True})})
    # Built and warmed up as replay builds a predictor run's, then recorded once.
    built = job.forecasters(first, first.predictor.model)
    recorded: RecordedForecasts | None = None
    if job.trigger_name in built:
        observed = observed_arrival_rates(job.times, job.rates, step, job.consumer)
        recorded = record(built[job.trigger_name], job.times + step, observed)
    by_quantile: dict[float, RecordedForecasts] = {}
    scored = []
    for setting in work.settings:
        config = apply(job.run_config, setting)
        forecasters: dict[str, Forecaster] = {}
        if recorded is not None:
            shared = recorded
            if not setting.budget_percent and setting.forecast_key[1] == 0.0:
                # Calibrated quantiles: this setting's upper, off the one recording's ladder.
                q = setting.quantile
                if q not in by_quantile:
                    by_quantile[q] = at_quantile(recorded, q)
                shared = by_quantile[q]
            forecasters = {job.trigger_name: shared}
        timeline = simulate(
            config, job.trigger_name, job.times, job.rates, step, job.consumer, forecasters
        )
        tune, test = _score(job, setting.label, timeline, work.split, config)
        scored.append(Scored(setting.label, tune, test, setting))
    return scored


def _run_baseline(job: ReplayJob, run: str, split: int) -> Scored:
    timeline, _, _ = run_one(job, run)
    tune, test = _score(job, run, timeline, split, job.run_config)
    return Scored(run, tune, test)


def tune(
    target: TargetConfig,
    trace: Trace,
    settings: ReplaySettings,
    candidates: Sequence[Setting],
    budget_pct: float,
    *,
    tune_share: float = 2 / 3,
    jobs: int = 1,
    progress: Progress | None = None,
) -> TuneResult:
    """Score every candidate setting and the baselines on ``trace``; see the module."""
    if not candidates:
        raise ValueError("no setting to tune")
    job = prepare(target, trace, dataclasses.replace(settings, frontier=False))
    step = settings.poll_interval_seconds
    n = len(job.times)
    split = split_index(n, step, tune_share, trace.name)
    check_needs_scaling(job, trace.name)
    result = TuneResult(
        trace=trace.name,
        budget_pct=budget_pct,
        split_at=float(job.times[split]),
        tune_hours=split * step / 3600.0,
        test_hours=(n - split) * step / 3600.0,
        scale=job.scale,
        peak_replicas=settings.peak_replicas,
        target_budget_percent=target.slo.budget_percent,
    )
    groups: dict[tuple[str, float, float], list[Setting]] = defaultdict(list)
    for setting in candidates:
        groups[setting.forecast_key].append(setting)
    # Slow groups (models to record) first, so the quick ones fill in at the end.
    works = [
        _Work(job, tuple(group), split)
        for _, group in sorted(groups.items(), key=lambda kv: kv[0][0] == "none")
    ]
    # KEDA at the target's own threshold is the reactive run: replayed once, used for both.
    own = keda_run(kafka_trigger(job.run_config)[2].lag_threshold)
    thresholds = frontier_thresholds(
        settings.per_replica_throughput, job.consumer.commit_interval_seconds
    )
    frontier_runs = [keda_run(t) for t in thresholds]
    baseline_runs = [REACTIVE, ORACLE] + [r for r in frontier_runs if r != own]
    total = len(works) + len(baseline_runs)
    done = 0
    if jobs <= 1:
        outcomes = []
        for work in works:
            outcomes.append(_run_settings(work))
            done += 1
            if progress is not None:
                progress(done, total)
        baselines = [_run_baseline(job, run, split) for run in baseline_runs]
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            setting_futures = [pool.submit(_run_settings, w) for w in works]
            baseline_futures = [
                pool.submit(_run_baseline, job, run, split) for run in baseline_runs
            ]
            every: list[Future[Any]] = [*setting_futures, *baseline_futures]
            for _ in as_completed(every):
                done += 1
                if progress is not None:
                    progress(done, total)
            outcomes = [f.result() for f in setting_futures]
            baselines = [f.result() for f in baseline_futures]
    for scored in outcomes:
        result.candidates.extend(scored)
    by_name = {baseline.name: baseline for baseline in baselines}
    result.baselines = [by_name[REACTIVE], by_name[ORACLE]]
    for run in frontier_runs:
        shared = by_name.get(run) or by_name[REACTIVE]
        result.keda_frontier.append(dataclasses.replace(shared, name=run))
    check_not_all_the_same(result)
    return result
