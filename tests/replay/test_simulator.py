"""The simulator's bookkeeping: what it reports must add up."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import KAFKA, make_target

from autoscaler.replay.runs import future_peaks, perfect_foresight
from autoscaler.replay.simulator import Consumer, ConsumerGroup, simulate
from predictors.forecaster import SeriesForecast

STEP = 60.0
FAST_UP = {
    "scale_up": {"policies": [{"type": "Percent", "value": 1000, "period_seconds": 15}]},
    "scale_down": {"stabilization_window_seconds": 0},
}


def _run(
    rates: list[float] | np.ndarray,
    throughput: float = 100.0,
    startup: float = 120.0,
    partitions: int | None = None,
    initial: int = 1,
    **target: object,
) -> tuple[np.ndarray, object]:
    config = make_target(
        triggers=[{**KAFKA, "per_replica_throughput": throughput}],
        behavior=FAST_UP,
        max_replicas=50,
        startup_seconds=startup,
        poll_interval_seconds=STEP,
        **target,
    )
    times = STEP * np.arange(len(rates))
    consumer = Consumer(throughput, startup, partitions, initial_replicas=initial)
    timeline = simulate(config, "kafka_lag", times, np.asarray(rates, float), STEP, consumer)
    return times, timeline


def test_lag_is_conserved() -> None:
    """arrivals = processed + change in lag, at every step."""
    rng = np.random.default_rng(3)
    rates = rng.uniform(0, 900, 500)
    _, timeline = _run(rates)
    arrived = rates * STEP
    lag = timeline.lag_messages  # type: ignore[attr-defined]
    previous = np.concatenate(([0.0], lag[:-1]))
    processed = arrived - (lag - previous)
    ready = timeline.ready_replicas  # type: ignore[attr-defined]
    assert np.all(processed >= -1e-6)
    assert np.all(processed <= ready * 100.0 * STEP + 1e-6)  # never more than the capacity
    # A step that ends with lag used all of its capacity.
    busy = lag > 1e-6
    np.testing.assert_allclose(processed[busy], ready[busy] * 100.0 * STEP)
    assert np.isclose(arrived.sum(), processed.sum() + lag[-1])


def test_added_replicas_are_ready_after_startup() -> None:
    rates = [50.0] * 3 + [1000.0] * 10
    _, timeline = _run(rates, startup=180.0)
    desired, ready = timeline.desired_replicas, timeline.ready_replicas  # type: ignore[attr-defined]
    first_up = int(np.argmax(desired > 1))  # the poll that asked for more
    assert ready[first_up + 1] == 1  # requested at the end of step k: not ready in k+1..k+3
    assert ready[first_up + 3] == 1
    assert ready[first_up + 4] == desired[first_up]  # ready 180 s after the request


def test_removed_replicas_stop_at_once_unready_first() -> None:
    rates = [1000.0] * 2 + [0.0] * 20
    _, timeline = _run(rates, startup=600.0, initial=10)
    replicas, ready = timeline.replicas, timeline.ready_replicas  # type: ignore[attr-defined]
    assert np.all(ready <= replicas)
    assert replicas[-1] == 1
    assert ready[-1] == 1


@pytest.mark.parametrize(
    ("partitions", "idle_ok", "most_replicas", "capacity_replicas"),
    [
        pytest.param(4, False, 4, 4, id="capped-at-partitions"),
        pytest.param(4, True, 10, 4, id="idle-consumers-requested-but-do-nothing"),
    ],
)
def test_partition_cap(
    partitions: int, idle_ok: bool, most_replicas: int, capacity_replicas: int
) -> None:
    config = make_target(
        triggers=[{**KAFKA, "per_replica_throughput": 100.0, "allow_idle_consumers": idle_ok}],
        behavior=FAST_UP,
        max_replicas=10,
        poll_interval_seconds=STEP,
    )
    rates = np.full(30, 2000.0)
    consumer = Consumer(100.0, 60.0, partitions)
    timeline = simulate(config, "kafka_lag", STEP * np.arange(30), rates, STEP, consumer)
    assert timeline.replicas.max() == most_replicas
    lag = timeline.lag_messages
    # Processing never exceeds the partitions' worth of consumers.
    drained = rates[1:] * STEP - np.diff(lag)
    assert drained.max() <= capacity_replicas * 100.0 * STEP + 1e-6


def test_lag_seconds_is_lag_over_ready_capacity() -> None:
    _, timeline = _run([500.0] * 10)
    lag, ready = timeline.lag_messages, timeline.ready_replicas  # type: ignore[attr-defined]
    expected = np.where(lag > 0, lag / (ready * 100.0), 0.0)
    np.testing.assert_allclose(timeline.lag_seconds, expected)  # type: ignore[attr-defined]


def test_perfect_foresight_sees_the_highest_rate_over_the_lead() -> None:
    rates = np.array([1.0, 2.0, 9.0, 3.0, 4.0])
    polls = 60.0 * np.arange(1, 6)
    assert future_peaks(rates, 60.0, 120.0).tolist() == [9.0, 9.0, 4.0, 4.0, 4.0]
    oracle = perfect_foresight(polls, rates, step_seconds=60.0, lead_seconds=120.0)
    oracle.observe(60.0, 1.0)
    forecast = oracle.forecast()
    assert isinstance(forecast, SeriesForecast)
    assert forecast.point == forecast.upper == 9.0
    oracle.observe(180.0, 9.0)
    assert oracle.forecast().point == 4.0  # type: ignore[union-attr]


class _Recording:
    """A forecaster that only records what it is shown."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, float]] = []

    def observe(self, timestamp: float, value: float) -> None:
        self.seen.append((timestamp, value))

    def refit_due(self, now: float) -> bool:
        return False

    def refit(self, now: float) -> None:
        raise AssertionError("never due")

    def forecast(self) -> SeriesForecast | None:
        return None


def test_forecasters_see_only_the_past() -> None:
    config = make_target(triggers=[{**KAFKA, "per_replica_throughput": 100.0}])
    rates = np.arange(5, dtype=float) * 60.0
    recording = _Recording()
    consumer = Consumer(100.0, 60.0, None)
    simulate(
        config, "kafka_lag", STEP * np.arange(5), rates, STEP, consumer, {"kafka_lag": recording}
    )
    # At the poll ending step k the forecaster gets the rate of step k, never a later one
    # (measured, as live, from the growth of the end offsets).
    assert recording.seen == [(STEP * (k + 1), float(k) * 60.0) for k in range(5)]


def test_offsets_are_what_the_live_source_would_see() -> None:
    """End offsets grow by the arrivals; committed offsets trail the processing by half a
    commit interval; the lag observed is their difference (the real backlog plus what is
    processed but not yet committed), in whole messages."""
    consumer = Consumer(100.0, 60.0, 8, initial_replicas=2, commit_interval_seconds=10.0)
    group = ConsumerGroup(consumer, STEP, start=0.0)
    group.advance(0.0, 150.0)  # 9,000 arrive; 2 replicas process all of it
    first = group.observe(60.0)
    assert first.arrival_rate == 150.0
    # 9,000 processed over the step, committed up to 5 s before the poll: 8,250.
    assert first.processing_rate == 8250.0 / STEP
    assert first.total_lag == 750
    assert (first.members, first.partition_count) == (2, 8)
    group.advance(60.0, 300.0)  # 18,000 arrive, 12,000 processed: a backlog of 6,000
    second = group.observe(120.0)
    assert group.lag == 6000.0
    assert second.total_lag == 6000 + 1000  # 5 s of the 200 msg/s processed is in flight
    assert second.processing_rate == (20000 - 8250) / STEP


def test_work_is_accounted() -> None:
    rng = np.random.default_rng(5)
    rates = rng.uniform(0, 900, 300)
    _, timeline = _run(rates)
    processed = timeline.processed  # type: ignore[attr-defined]
    assert processed is not None
    assert np.isclose(rates.sum() * STEP, processed.sum() + timeline.lag_messages[-1])  # type: ignore[attr-defined]


def test_a_rebalance_stops_the_whole_group_at_each_membership_change() -> None:
    """Kafka's eager rebalance: when a replica gets ready, and when one leaves, nobody
    processes for ``rebalance_seconds``."""
    consumer = Consumer(100.0, 0.0, None, initial_replicas=2, rebalance_seconds=20.0)
    group = ConsumerGroup(consumer, 60.0, 0.0)
    group.advance(0.0, 0.0)
    group.lag = 100_000.0
    group.advance(60.0, 0.0)
    assert group.processed_in_step == 2 * 100.0 * 60.0  # no change: no pause
    group.scale(3, 120.0)  # ready at the next step's start (no start-up)
    group.advance(120.0, 0.0)
    assert group.processed_in_step == pytest.approx(3 * 100.0 * 40.0)  # 20 s of 60 lost
    group.advance(180.0, 0.0)
    assert group.processed_in_step == pytest.approx(3 * 100.0 * 60.0)
    group.scale(2, 240.0)
    group.advance(240.0, 0.0)
    assert group.processed_in_step == pytest.approx(2 * 100.0 * 40.0)


def test_free_rebalances_are_the_default() -> None:
    assert Consumer(100.0, 0.0, None).rebalance_seconds == 0.0
