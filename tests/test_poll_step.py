"""The poll step: refits, forecasts, the throughput estimate and the decision, in order."""

from __future__ import annotations

from helpers import KAFKA, UNBOUNDED, lag_observation, make_target

from autoscaler.decision import (
    KafkaLagObservation,
    PollInputs,
    PollState,
    Rule,
    Unavailable,
    poll_step,
    refits_due,
    scaled,
)
from predictors.forecaster import SeriesForecast


class Scripted:
    """A forecaster that records the calls the step makes, in order."""

    def __init__(self, due: bool = False, point: float = 900.0) -> None:
        self.calls: list[str] = []
        self.due = due
        self.point = point

    def observe(self, timestamp: float, value: float) -> None:
        self.calls.append(f"observe {value:g}")

    def refit_due(self, now: float) -> bool:
        return self.due

    def refit(self, now: float) -> None:
        self.calls.append("refit")
        self.due = False

    def forecast(self) -> SeriesForecast | None:
        self.calls.append("forecast")
        return SeriesForecast(self.point, self.point * 1.2, 90.0, "scripted")


def _lag(
    lag: int, rate: float = 400.0, processing: float = 400.0, at: float = 1000.0
) -> KafkaLagObservation:
    return lag_observation(lag, rate, processing, at)


def _inputs(observation: object, current: int | None = 4) -> PollInputs:
    at = getattr(observation, "observed_at", 1000.0)
    return PollInputs(at, {"kafka_lag": observation}, current, current)  # type: ignore[dict-item]


def test_a_due_refit_runs_before_the_poll_is_absorbed() -> None:
    target = make_target(behavior=UNBOUNDED)
    forecaster = Scripted(due=True)
    assert refits_due({"kafka_lag": forecaster}, 1000.0)
    result = poll_step(target, _inputs(_lag(0)), {"kafka_lag": forecaster}, PollState())
    assert forecaster.calls == ["refit", "observe 400", "forecast"]
    assert result.refitted == ("kafka_lag",)
    assert result.forecasts["kafka_lag"].model == "scripted"


def test_a_refit_can_wait_for_a_later_poll() -> None:
    target = make_target(behavior=UNBOUNDED)
    forecaster = Scripted(due=True)
    result = poll_step(
        target, _inputs(_lag(0)), {"kafka_lag": forecaster}, PollState(), refit=False
    )
    assert forecaster.calls == ["observe 400", "forecast"]
    assert result.refitted == ()
    assert result.decision is not None


def test_without_a_scale_the_step_learns_but_does_not_decide() -> None:
    target = make_target(behavior=UNBOUNDED)
    forecaster = Scripted()
    state = PollState()
    for lag, at in ((5000, 1000.0), (6000, 1060.0)):
        result = poll_step(
            target, _inputs(_lag(lag, at=at), None), {"kafka_lag": forecaster}, state
        )
        state = result.state
    assert result.decision is None
    assert forecaster.calls.count("observe 400") == 2
    assert result.learned_throughput == {"kafka_lag": 100.0}  # 400 msg/s over 4 members


def test_learned_throughput_sizes_for_capacity() -> None:
    target = make_target(behavior=UNBOUNDED, triggers=[{**KAFKA}])
    state = poll_step(target, _inputs(_lag(5000)), {}, PollState()).state
    result = poll_step(target, _inputs(_lag(6000, at=1060.0)), {}, state)
    assert result.decision is not None
    (trigger,) = result.decision.triggers
    assert trigger.rule is Rule.CAPACITY
    assert "(learned)" in trigger.detail


def test_learning_can_be_turned_off() -> None:
    target = make_target(behavior=UNBOUNDED, triggers=[{**KAFKA, "learn_throughput": False}])
    state = poll_step(target, _inputs(_lag(5000)), {}, PollState()).state
    result = poll_step(target, _inputs(_lag(6000, at=1060.0)), {}, state)
    assert result.learned_throughput == {}
    assert result.decision is not None
    assert "lag_threshold" in result.decision.triggers[0].detail  # KEDA's formula


def test_a_configured_throughput_is_checked_against_the_measured_one() -> None:
    """Learned beside a configured value (shown in /status and replay), never used."""
    target = make_target(behavior=UNBOUNDED, triggers=[{**KAFKA, "per_replica_throughput": 300.0}])
    state = poll_step(target, _inputs(_lag(5000)), {}, PollState()).state
    result = poll_step(target, _inputs(_lag(6000, at=1060.0)), {}, state)
    assert result.learned_throughput == {"kafka_lag": 100.0}
    assert result.decision is not None
    assert "300 msg/s per replica (configured)" in result.decision.triggers[0].detail


def test_a_configured_throughput_is_used_as_configured() -> None:
    target = make_target(behavior=UNBOUNDED, triggers=[{**KAFKA, "per_replica_throughput": 50.0}])
    state = poll_step(target, _inputs(_lag(5000)), {}, PollState()).state
    result = poll_step(target, _inputs(_lag(6000, at=1060.0)), {}, state)
    assert result.decision is not None
    assert "50 msg/s per replica (configured)" in result.decision.triggers[0].detail


def test_an_outage_keeps_what_was_learnt() -> None:
    target = make_target(behavior=UNBOUNDED)
    state = poll_step(target, _inputs(_lag(5000)), {}, PollState()).state
    state = poll_step(target, _inputs(_lag(6000, at=1060.0)), {}, state).state
    result = poll_step(target, _inputs(Unavailable(1120.0, "broker down")), {}, state)
    assert result.learned_throughput == {"kafka_lag": 100.0}
    assert result.decision is not None
    assert result.decision.desired_replicas >= 4  # missing data never scales down


def test_scaled_records_the_event_the_rate_policies_count() -> None:
    target = make_target(behavior=UNBOUNDED)
    state = scaled(target, PollState(), 4, 9, 1000.0)
    assert state.decision.last_scale_at == 1000.0
    assert [e.change for e in state.decision.scale_up_events] == [5]
