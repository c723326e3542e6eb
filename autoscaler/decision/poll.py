"""The poll step: the only path from what one poll observed to a decision.

``poll_step(target, inputs, forecasters, state)`` runs, for one target at one poll:

1. the refits that are due (the retrain schedule, or a model waiting for its first fit),
   *before* the poll's value is absorbed, so the caller knows before the step whether it
   is heavy (the live controller then runs the step in a worker thread);
2. each forecaster absorbs its trigger's load (a consumer group's arrival rate, or the
   metric) and forecasts one lead time ahead, with the path over the planner's horizon
   when the target plans;
3. each Kafka trigger's throughput estimate learns from the poll (``throughput``);
4. with an SLO budget, the poll's lag is judged against the SLO and the quantile in force
   moves (``budget``); the forecasts' uppers are taken at that quantile;
5. the start-up after recent scale-ups is measured (``startup``; used where the config
   sets no ``startup_seconds``), and whether they raised the processing rate is judged
   (``effectiveness``; scale-ups are held where they did not);
6. ``decide`` plans or sizes, combines and bounds the replica count, with the forecasts
   and the learned throughput.

The live controller (``autoscaler.live.controller``) and replay's simulator
(``autoscaler.replay.simulator``) both call it and nothing else of that chain: each keeps
only its edge (gathering observations and patching the scale, or the physics). After the
caller really changed the replica count it calls ``scaled`` (the HPA records a scale event
only after a successful rescale).

No I/O, no clock reads, no globals: the time is ``inputs.at``. The state is a value, except
the forecasters, which the step feeds in place: a model's history is far too large to copy
every poll. Between polls only history is fed to them, never a poll's decision: the
service warm-starts them from Prometheus, replay from the warm-up span
(``replay.runs.run_forecasters``), and ``tune`` replays a recording of their answers
(``replay.recorded``); poll by poll, the step is what feeds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from autoscaler.config.model import TargetConfig
from autoscaler.decision import effectiveness, startup
from autoscaler.decision.budget import (
    QUANTILE_RANGE,
    BudgetState,
    lag_over_slo,
    track_budget,
    with_quantile,
)
from autoscaler.decision.compiled import CompiledTarget, compiled
from autoscaler.decision.core import decide, record_scale
from autoscaler.decision.effectiveness import EffectivenessState, GroupPoll
from autoscaler.decision.forecasters import Forecaster, load_series
from autoscaler.decision.startup import StartupState, StartupTiming
from autoscaler.decision.throughput import ThroughputEstimate, learn_throughput
from autoscaler.decision.types import (
    Decision,
    DecisionState,
    Forecast,
    ForecastPath,
    KafkaLagObservation,
    Observation,
    TargetInputs,
)

__all__ = ["PollInputs", "PollResult", "PollState", "poll_step", "refits_due", "scaled"]


@dataclass(frozen=True, slots=True)
class PollInputs:
    """What one poll observed of one target."""

    at: float
    """The poll's time (the caller's clock)."""
    observations: Mapping[str, Observation]
    """By trigger name; a trigger without an entry counts as unavailable."""
    current_replicas: int | None
    """``spec.replicas``; None when the scale could not be read: the forecasters and the
    throughput estimate still learn, but no decision is made."""
    ready_replicas: int | None = None
    """Replicas consuming now (the workload's ready pods); defaults to
    ``current_replicas``."""
    acting: bool = True
    """Whether the replicas running follow this target's decisions: false while the
    workload is paused or another instance leads (and, whatever this says, in dry_run).
    The SLO budget learns its quantile only from polls where they do."""
    startup_timings: tuple[StartupTiming, ...] = ()
    """Scale-ups the live shell timed since the previous poll, finer than polls can
    (``live.startup_probe``)."""


@dataclass(frozen=True, slots=True)
class PollState:
    """What the step remembers between polls of one target (besides the forecasters)."""

    decision: DecisionState = field(default_factory=DecisionState)
    throughput: Mapping[str, ThroughputEstimate] = field(default_factory=dict)
    """By Kafka trigger name."""
    budget: BudgetState = field(default_factory=BudgetState)
    """The SLO budget's quantile in force and realized violations (``slo.budget_percent``)."""
    startup: StartupState = field(default_factory=StartupState)
    """The start-up times measured after this target's scale-ups (``startup``)."""
    effectiveness: EffectivenessState = field(default_factory=EffectivenessState)
    """Whether its scale-ups raise the processing rate (``effectiveness``)."""


@dataclass(frozen=True, slots=True)
class PollResult:
    """The step's answer: the decision (None without a scale), what it rested on, and the
    state for the next poll."""

    decision: Decision | None
    forecasts: Mapping[str, Forecast]
    """By trigger name: the forecasts the decision used."""
    learned_throughput: Mapping[str, float]
    """By Kafka trigger name: the per-replica throughput learned so far (learned where
    ``learn_throughput`` is on, whether or not a value is configured, so a wrong one shows;
    used for sizing only where none is configured)."""
    state: PollState
    refitted: tuple[str, ...] = ()
    """Triggers whose model was refitted in this step."""
    lag_over_slo: bool | None = None
    """Whether this poll's lag was over the SLO, as the budget judged it (None: no budget,
    or it could not be judged)."""
    startup_seconds: float | None = None
    """The start-up the decision used: the configured one, else the measured one once
    known, else the default."""


def refits_due(forecasters: Mapping[str, Forecaster], now: float) -> bool:
    """Whether a step at ``now`` would refit a model (heavy: worth a worker thread)."""
    return any(forecaster.refit_due(now) for forecaster in forecasters.values())


def poll_step(
    target: TargetConfig,
    inputs: PollInputs,
    forecasters: Mapping[str, Forecaster],
    state: PollState,
    *,
    refit: bool = True,
) -> PollResult:
    """One poll of ``target``. ``refit=False`` postpones due refits to a later poll (the
    live service does so while every fit slot is busy; the current models forecast)."""
    now = inputs.at
    refitted: tuple[str, ...] = ()
    forecasts: dict[str, Forecast] = {}
    if forecasters:  # a run without a predictor skips all of this (replay's baselines)
        if refit:
            refitted = tuple(name for name, f in forecasters.items() if f.refit_due(now))
            for name in refitted:
                forecasters[name].refit(now)
        forecasts = _forecasts(inputs, forecasters, target.predictor.quantile)
    facts = compiled(target)
    throughput, learned, usable = _learned(facts, inputs, state.throughput)
    budget, violated = state.budget, None
    if target.slo.budget_percent is not None:
        ready = inputs.current_replicas if inputs.ready_replicas is None else inputs.ready_replicas
        if ready is not None:
            violated = lag_over_slo(target, inputs.observations, ready, learned)
        calibrated = all(forecast.ladder is not None for forecast in forecasts.values())
        ceiling = QUANTILE_RANGE[1] if calibrated else target.predictor.quantile
        budget = track_budget(budget, violated, target, acting=inputs.acting, ceiling=ceiling)
        if forecasts and budget.quantile is not None:
            configured = target.predictor.quantile
            forecasts = {
                name: with_quantile(forecast, budget.quantile, configured)
                for name, forecast in forecasts.items()
            }
    kafka = _fresh_kafka(facts, inputs)
    measured = state.startup
    if inputs.startup_timings:
        measured = startup.timed(measured, inputs.startup_timings)
    if measured.pending is not None:  # a scale-up being timed (else nothing to observe)
        measured = startup.observed(measured, now, inputs.ready_replicas, kafka)
    startup_seconds = startup_in_force(target, measured)
    ready_now = inputs.current_replicas if inputs.ready_replicas is None else inputs.ready_replicas
    checked = effectiveness.observed(
        state.effectiveness,
        target.scaling_effectiveness,
        now=now,
        poll_interval=target.poll_interval_seconds,
        startup_seconds=startup_seconds,
        ready=ready_now,
        group=GroupPoll.of(kafka),
    )
    decision: Decision | None = None
    decision_state = state.decision
    if inputs.current_replicas is not None:
        deciding = (
            target
            if startup_seconds == target.startup_seconds
            else target.model_copy(update={"startup_seconds": startup_seconds})
        )
        decision, decision_state = decide(
            deciding,
            TargetInputs(
                current_replicas=inputs.current_replicas,
                observations=inputs.observations,
                forecasts=forecasts,
                ready_replicas=inputs.ready_replicas,
                learned_throughput=usable,
                scale_up_hold=effectiveness.scale_up_hold(checked, target.scaling_effectiveness),
            ),
            state.decision,
            now,
        )
    return PollResult(
        decision=decision,
        forecasts=forecasts,
        learned_throughput=learned,
        state=PollState(decision_state, throughput, budget, measured, checked),
        refitted=refitted,
        lag_over_slo=violated,
        startup_seconds=startup_seconds,
    )


def startup_in_force(target: TargetConfig, measured: StartupState) -> float:
    """The start-up decisions use: ``startup_seconds`` where the config sets it, else the
    measured p90 once there is one, else the default."""
    if target.startup_configured:
        return target.startup_seconds
    value = measured.measured
    return target.startup_seconds if value is None else round(value, 1)


def _fresh_kafka(facts: CompiledTarget, inputs: PollInputs) -> list[KafkaLagObservation]:
    """The Kafka triggers' observations of this poll that are fresh (the start-up and
    effectiveness measurements read the group through them)."""
    fresh: list[KafkaLagObservation] = []
    for name, _ in facts.kafka:
        observation = inputs.observations.get(name)
        if (
            isinstance(observation, KafkaLagObservation)
            and inputs.at - observation.observed_at <= facts.stale_after
        ):
            fresh.append(observation)
    return fresh


def scaled(
    target: TargetConfig, state: PollState, old_replicas: int, new_replicas: int, now: float
) -> PollState:
    """The state after the replica count really changed from ``old`` to ``new`` at ``now``
    (the rate policies and the dwell time count real changes only)."""
    decision = record_scale(target, state.decision, old_replicas, new_replicas, now)
    return PollState(
        decision,
        state.throughput,
        state.budget,
        startup.started(state.startup, old_replicas, new_replicas, now),
        effectiveness.started(
            state.effectiveness, target.scaling_effectiveness, old_replicas, new_replicas, now
        ),
    )


def _forecasts(
    inputs: PollInputs, forecasters: Mapping[str, Forecaster], quantile: float
) -> dict[str, Forecast]:
    forecasts: dict[str, Forecast] = {}
    for name, forecaster in forecasters.items():
        value = load_series(inputs.observations.get(name))
        if value is not None:
            forecaster.observe(inputs.at, value)
        forecast = forecaster.forecast()
        if forecast is not None:
            path = forecast.path
            forecasts[name] = Forecast(
                horizon_seconds=forecast.horizon_seconds,
                point=forecast.point,
                upper=forecast.upper,
                model=forecast.model,
                note=forecast.note,
                ladder=forecast.ladder,
                path=None
                if path is None
                else ForecastPath(path.times, path.point, path.upper, path.ladder),
                quantile=quantile,
            )
    return forecasts


def _learned(
    facts: CompiledTarget, inputs: PollInputs, estimates: Mapping[str, ThroughputEstimate]
) -> tuple[Mapping[str, ThroughputEstimate], dict[str, float], dict[str, float]]:
    """Each learning Kafka trigger's estimate after this poll (unchanged where it saw
    nothing), the per-replica throughput learned so far, and the part of it sizing may use
    (the trigger configures none). A trigger with ``learn_throughput: false`` learns
    nothing: KEDA's formula needs no estimate."""
    updated: dict[str, ThroughputEstimate] | None = None
    learned: dict[str, float] = {}
    usable: dict[str, float] = {}
    if not facts.learning:  # KEDA's formula alone (replay's reactive runs)
        return estimates, learned, usable
    ready = inputs.ready_replicas if inputs.ready_replicas is not None else inputs.current_replicas
    for name, trigger in facts.learning:
        estimate = estimates.get(name)
        observation = inputs.observations.get(name)
        if isinstance(observation, KafkaLagObservation):
            estimate = learn_throughput(estimate or _NOTHING_LEARNED, observation, ready)
            if updated is None:
                updated = dict(estimates)
            updated[name] = estimate
        value = None if estimate is None else estimate.per_replica
        if value is not None:
            learned[name] = value
            if trigger.per_replica_throughput is None:
                usable[name] = value
    return (estimates if updated is None else updated), learned, usable


_NOTHING_LEARNED = ThroughputEstimate()
