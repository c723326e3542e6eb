"""A Kafka consumer group simulated poll by poll, scaled by the live decision code.

Each step is one poll interval. The trace gives the topic's arrival rate; every *ready*
replica processes ``per_replica_throughput`` messages/s (replicas beyond the partition count
process nothing); the backlog carries over. A replica requested at ``t`` is ready at
``t + startup_seconds``; a removed one stops at once (not-yet-ready ones first, as a
Deployment removes unready pods first).

At the end of each step the decision core gets exactly what the live loop would see then:
the lag (including messages processed but not yet committed), the arrival and processing
rates measured over the last poll, the current and
ready replicas, and (for predictive runs) a forecast made from the past only. The forecast
source sees the arrival rate only after it happened: never the future (except the oracle,
which exists to show what perfect foresight would cost).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from autoscaler.config.model import TargetConfig
from autoscaler.decision import (
    DecisionState,
    Forecast,
    KafkaLagObservation,
    TargetInputs,
    decide,
    record_scale,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

ForecastSource = Callable[[int, float, float], Forecast | None]
"""(step index, time now, arrival rate just measured) -> a forecast, or None."""


@dataclass(frozen=True)
class Consumer:
    """What is simulated about the consumers (not configured on a live target)."""

    per_replica_throughput: float
    startup_seconds: float
    partitions: int | None
    initial_replicas: int = 1
    commit_interval_seconds: float = 5.0
    """Consumers commit offsets periodically (Kafka's auto.commit.interval.ms, 5 s by
    default), so the lag a poll observes includes, on average, half an interval of
    processed but uncommitted messages. KEDA's lag formula relies on that in-flight lag to
    hold a steady replica count; the SLO is measured on the real backlog."""


@dataclass(frozen=True)
class Timeline:
    """One run, step by step (row ``k`` describes the poll at the end of step ``k``)."""

    timestamps: FloatArray
    arrival_rate: FloatArray
    forecast: FloatArray
    """The forecast made at this poll, for ``lead`` seconds later (NaN: none)."""
    desired_replicas: IntArray
    """Replicas requested at this poll (what the decision set)."""
    replicas: IntArray
    """Replicas running (and billed) during the step, ready or starting."""
    ready_replicas: IntArray
    """Replicas consuming during the step."""
    lag_messages: FloatArray
    lag_seconds: FloatArray
    """Time to drain the lag at the consuming capacity: lag / (consumers x throughput), the
    consumers being the ready replicas capped at the partition count."""
    scale_events: int


def simulate(
    target: TargetConfig,
    trigger_name: str,
    times: FloatArray,
    rates: FloatArray,
    step_seconds: float,
    consumer: Consumer,
    forecast_source: ForecastSource | None = None,
) -> Timeline:
    """Run the decision core over ``rates`` (messages/s during each step from ``times``)."""
    n = len(times)
    throughput = consumer.per_replica_throughput
    # Replicas beyond the partition count get no partition: they consume nothing, whether
    # or not allow_idle_consumers lets the decision request them.
    consuming_cap = consumer.partitions
    partition_count = consumer.partitions if consumer.partitions is not None else 1 << 30

    forecasts = np.full(n, np.nan)
    desired_out = np.empty(n, dtype=np.int64)
    replicas_out = np.empty(n, dtype=np.int64)
    ready_out = np.empty(n, dtype=np.int64)
    lag_out = np.empty(n, dtype=np.float64)
    lag_seconds_out = np.empty(n, dtype=np.float64)

    current = consumer.initial_replicas
    ready = current
    starting: deque[float] = deque()  # ready times of starting replicas, oldest first
    lag = 0.0
    state = DecisionState()
    scale_events = 0
    for k in range(n):
        start = float(times[k])
        while starting and starting[0] <= start:
            starting.popleft()
            ready += 1
        consuming = ready if consuming_cap is None else min(ready, consuming_cap)
        arrived = float(rates[k]) * step_seconds
        processed = min(lag + arrived, consuming * throughput * step_seconds)
        lag += arrived - processed
        replicas_out[k] = current
        ready_out[k] = ready
        lag_out[k] = lag
        if lag <= 0.0:
            lag_seconds_out[k] = 0.0
        elif consuming == 0:
            lag_seconds_out[k] = math.inf
        else:
            lag_seconds_out[k] = lag / (consuming * throughput)

        now = start + step_seconds
        arrival_rate = arrived / step_seconds
        uncommitted = processed / step_seconds * consumer.commit_interval_seconds / 2
        observation = KafkaLagObservation(
            observed_at=now,
            total_lag=round(lag + uncommitted),
            partition_count=partition_count,
            arrival_rate=arrival_rate,
            processing_rate=processed / step_seconds,
        )
        forecast = None if forecast_source is None else forecast_source(k, now, arrival_rate)
        if forecast is not None:
            forecasts[k] = forecast.point
        inputs = TargetInputs(
            current_replicas=current,
            observations={trigger_name: observation},
            forecasts={} if forecast is None else {trigger_name: forecast},
            ready_replicas=ready,
        )
        decision, state = decide(target, inputs, state, now)
        desired = decision.desired_replicas
        desired_out[k] = desired
        if desired != current:
            if desired > current:
                starting.extend([now + consumer.startup_seconds] * (desired - current))
            else:
                remove = current - desired
                while remove and starting:  # unready replicas go first
                    starting.pop()
                    remove -= 1
                ready -= remove
            state = record_scale(target, state, current, desired, now)
            current = desired
            scale_events += 1
    return Timeline(
        timestamps=np.asarray(times, dtype=np.float64) + step_seconds,
        arrival_rate=np.asarray(rates, dtype=np.float64),
        forecast=forecasts,
        desired_replicas=desired_out,
        replicas=replicas_out,
        ready_replicas=ready_out,
        lag_messages=lag_out,
        lag_seconds=lag_seconds_out,
        scale_events=scale_events,
    )
