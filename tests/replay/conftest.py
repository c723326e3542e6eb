"""One real Prometheus for the replay tests, holding 30 days of known history.

Series (all at a 1-minute step, ending at the last whole minute before the session began,
so nothing falls outside any retention):

* ``kafka_topic_arrival_rate{topic="orders"}``: 30 days (43,200 samples), ``orders_rate(i)``;
* ``kafka_topic_arrival_rate{topic="gappy"}``: 2 hours, NaN every 10th sample;
* ``kafka_topic_arrival_rate{topic="broken"}``: 1 hour, NaN only;
* ``kafka_consumergroup_lag{topic="orders", partition="0" | "1"}``: 6 hours, two series.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:  # the shared test servers live in tests/servers
    sys.path.insert(0, str(TESTS))

from servers.prometheus_server import PrometheusServer, Series  # noqa: E402

if TYPE_CHECKING:
    from autoscaler.replay.engine import ReplayResult

STEP = 60.0
DAY_POINTS = 1440
ORDERS_POINTS = 30 * DAY_POINTS


def orders_rate(index: int) -> float:
    """Messages/s at sample ``index``: a daily wave, a weekly-ish ripple, never negative."""
    daily = 300.0 * math.sin(2 * math.pi * index / DAY_POINTS)
    return round(500.0 + daily + 7.25 * (index % 7), 3)


def _minutes(end: float, count: int) -> list[float]:
    return [end - STEP * (count - 1 - i) for i in range(count)]


@pytest.fixture(scope="session")
def history_end() -> float:
    """The time of every series' last sample: the last whole minute, one minute ago."""
    return math.floor(time.time() / STEP) * STEP - STEP


@pytest.fixture(scope="session")
def orders_series(history_end: float) -> Series:
    times = _minutes(history_end, ORDERS_POINTS)
    return Series(
        "kafka_topic_arrival_rate",
        {"topic": "orders"},
        [(t, orders_rate(i)) for i, t in enumerate(times)],
    )


@pytest.fixture(scope="session")
def gappy_series(history_end: float) -> Series:
    samples = [
        (t, math.nan if i % 10 == 3 else 100.0 + i)
        for i, t in enumerate(_minutes(history_end, 120))
    ]
    return Series("kafka_topic_arrival_rate", {"topic": "gappy"}, samples)


@pytest.fixture(scope="session")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory,
    history_end: float,
    orders_series: Series,
    gappy_series: Series,
) -> Iterator[PrometheusServer]:
    broken = Series(
        "kafka_topic_arrival_rate",
        {"topic": "broken"},
        [(t, math.nan) for t in _minutes(history_end, 60)],
    )
    lag = [
        Series(
            "kafka_consumergroup_lag",
            {"topic": "orders", "partition": str(partition)},
            [(t, 10.0 * (partition + 1)) for t in _minutes(history_end, 360)],
        )
        for partition in (0, 1)
    ]
    series = [orders_series, gappy_series, broken, *lag]
    with PrometheusServer(tmp_path_factory.mktemp("prometheus"), series) as server:
        yield server


@pytest.fixture(scope="session")
def eleven_runs() -> ReplayResult:
    """A real replay of eleven runs over a day and a half of a synthetic trace that goes
    quiet at night and bursts every 8 hours (under 10 s on two cores)."""
    import numpy as np
    from helpers import KAFKA, make_target

    from autoscaler.replay.engine import ReplaySettings, replay
    from autoscaler.traces import from_points

    minutes = np.arange(int(1.5 * DAY_POINTS))
    daily = np.maximum(0.0, 600.0 * np.sin(2 * np.pi * minutes / DAY_POINTS))
    bursts = 400.0 * (minutes % 480 < 10)
    noise = np.random.default_rng(7).uniform(0.0, 20.0, len(minutes))
    rates = np.where(daily > 0, daily + noise, 0.0) + bursts
    trace = from_points(
        1424986973.0 + STEP * minutes.astype(np.float64), rates, "rate", "synthetic", "test"
    )
    target = make_target(
        min_replicas=0,
        max_replicas=30,
        predictor={"model": "none", "lead_margin_seconds": 30.0},
        triggers=[{**KAFKA, "per_replica_throughput": 100.0}],
        actuation={"min_dwell_seconds": 120},
    )
    settings = ReplaySettings(
        per_replica_throughput=100.0,
        startup_seconds=120.0,
        poll_interval_seconds=STEP,
        partitions=24,
        warmup_seconds=DAY_POINTS * STEP / 2,
        frontier=False,
    )
    from report_runs import ELEVEN_RUNS

    return replay(target, trace, settings, ELEVEN_RUNS)
