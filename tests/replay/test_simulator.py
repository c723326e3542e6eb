"""The simulator's bookkeeping: what it reports must add up."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import KAFKA, make_target

from autoscaler.decision import Forecast
from autoscaler.replay.runs import OracleSource
from autoscaler.replay.simulator import Consumer, simulate

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


def test_oracle_sees_the_highest_rate_over_the_lead() -> None:
    rates = np.array([1.0, 2.0, 9.0, 3.0, 4.0])
    oracle = OracleSource.build(rates, step_seconds=60.0, lead_seconds=120.0)
    assert oracle.future_max.tolist() == [9.0, 9.0, 4.0, 4.0, 4.0]
    forecast = oracle(0, 60.0, 1.0)
    assert isinstance(forecast, Forecast)
    assert forecast.point == forecast.upper == 9.0


def test_forecast_source_sees_only_the_past() -> None:
    seen: list[tuple[float, float]] = []

    def source(step: int, now: float, rate: float) -> Forecast | None:
        seen.append((now, rate))
        return None

    config = make_target(triggers=[{**KAFKA, "per_replica_throughput": 100.0}])
    rates = np.arange(5, dtype=float)
    simulate(
        config, "kafka_lag", STEP * np.arange(5), rates, STEP, Consumer(100.0, 60.0, None), source
    )
    # At the poll ending step k the source gets the rate of step k, never a later one.
    assert seen == [(STEP * (k + 1), float(k)) for k in range(5)]
