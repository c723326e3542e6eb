"""Forecast accuracy by hand-computed tables; metrics rendered from real decisions; the HTTP
endpoints served by a real aiohttp server on loopback."""

from __future__ import annotations

import math
import random
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from helpers import UNBOUNDED, make_target, step
from prometheus_client.parser import text_string_to_metric_families

from autoscaler.config.model import ServerConfig
from autoscaler.decision import (
    Decision,
    Forecast,
    KafkaLagObservation,
    MetricObservation,
    Unavailable,
)
from autoscaler.observability import (
    CONTENT_TYPE,
    ForecastAccuracy,
    ServiceMetrics,
    jsonable,
    pinball_loss,
    start,
)

NOW = 1000.0

# --------------------------------------------------------------------------- accuracy

Event = tuple[str, float, float, float | None]  # ("f", at, point, upper) | ("a", at, value, None)


def forecast(at: float, point: float, upper: float | None = None) -> Event:
    return ("f", at, point, upper)


def actual(at: float, value: float) -> Event:
    return ("a", at, value, None)


@pytest.mark.parametrize(
    ("quantile", "window", "events", "count", "mae", "pinball", "coverage"),
    [
        pytest.param(
            0.9,
            288,
            # due 60: |110-100| = 10, pinball(110, 120) = 0.1*10 = 1, covered
            # due 90: |160-100| = 60, pinball(160, 150) = 0.9*10 = 9, not covered
            [forecast(0, 100, 120), forecast(30, 100, 150), actual(60, 110), actual(90, 160)],
            2,
            35.0,
            5.0,
            0.5,
            id="two-matched-with-upper",
        ),
        pytest.param(
            0.5,
            288,
            # due 60: actuals at 50 (10 away), 58 (2 away), 65 (5 away): 58 is closest.
            [forecast(0, 0), actual(50, 1), actual(58, 2), actual(65, 3)],
            1,
            2.0,
            1.0,
            0.0,
            id="closest-actual-wins-point-as-quantile",
        ),
        pytest.param(
            0.9,
            288,
            # due 60, tolerance 15: nothing observed in [45, 75].
            [forecast(0, 100, 120), actual(40, 100), actual(80, 100)],
            0,
            None,
            None,
            None,
            id="unmatched-forecast-ignored",
        ),
        pytest.param(
            0.9,
            288,
            # the second forecast (due 160) has no actual yet: still pending, not scored.
            [forecast(0, 10, 10), forecast(100, 10, 10), actual(60, 10)],
            1,
            0.0,
            0.0,
            1.0,
            id="future-forecast-pending",
        ),
        pytest.param(
            0.9,
            2,
            # errors 1, 2, 3: the window of 2 keeps the last two.
            [
                forecast(0, 10),
                forecast(30, 10),
                forecast(60, 10),
                actual(60, 11),
                actual(90, 12),
                actual(120, 13),
            ],
            2,
            2.5,
            # under-forecasts by 2 and 3: 0.9 * 2.5
            2.25,
            0.0,
            id="window-slides",
        ),
        pytest.param(
            0.9,
            288,
            [actual(0, 5), forecast(0, 10, 20), actual(60, math.nan), actual(61, 15)],
            1,
            5.0,
            0.5,
            1.0,
            id="actual-before-forecast-and-nan-ignored",
        ),
    ],
)
def test_forecast_accuracy(
    quantile: float,
    window: int,
    events: list[Event],
    count: int,
    mae: float | None,
    pinball: float | None,
    coverage: float | None,
) -> None:
    accuracy = ForecastAccuracy(60, quantile, window, poll_interval_seconds=30)
    for kind, at, value, upper in events:
        if kind == "f":
            accuracy.record_forecast(at, value, upper)
        else:
            accuracy.record_actual(at, value)
    assert accuracy.count == count
    assert accuracy.mae == pytest.approx(mae)
    assert accuracy.pinball == pytest.approx(pinball)
    assert accuracy.coverage == pytest.approx(coverage)


def test_forecast_accuracy_settles_and_drains() -> None:
    accuracy = ForecastAccuracy(60, 0.9, tolerance_seconds=5)
    accuracy.record_forecast(0, 10)
    assert accuracy.record_actual(57, 10) == 0  # within tolerance, but a closer one may come
    assert accuracy.pending == 1
    assert accuracy.record_actual(64, 12) == 1  # past due and farther: 57 is final
    assert accuracy.pending == 0
    assert accuracy.mae == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"horizon_seconds": -1, "quantile": 0.9}, "horizon", id="negative-horizon"),
        pytest.param({"horizon_seconds": 60, "quantile": 1.0}, "quantile", id="quantile-one"),
        pytest.param({"horizon_seconds": 60, "quantile": 0.9, "window": 0}, "window", id="window"),
    ],
)
def test_forecast_accuracy_rejects_bad_parameters(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ForecastAccuracy(**kwargs)


@pytest.mark.parametrize(
    ("actual_value", "predicted", "quantile", "expected"),
    [
        pytest.param(110, 100, 0.9, 9.0, id="under-forecast"),
        pytest.param(90, 100, 0.9, 1.0, id="over-forecast"),
        pytest.param(100, 100, 0.9, 0.0, id="exact"),
    ],
)
def test_pinball_loss(
    actual_value: float, predicted: float, quantile: float, expected: float
) -> None:
    assert pinball_loss(actual_value, predicted, quantile) == pytest.approx(expected)


# --------------------------------------------------------------------------- metrics


def samples(text: bytes | str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text exposition, by name and label set."""
    if isinstance(text, bytes):
        text = text.decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    parsed: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    return parsed.get((name, frozenset(labels.items())))


def lag_observation(total: int, at: float = NOW, **extra: Any) -> KafkaLagObservation:
    return KafkaLagObservation(observed_at=at, total_lag=total, partition_count=50, **extra)


def kafka_decision() -> Decision:
    """A real decision: lag 1000 at threshold 100 sizes 2 replicas up to 10."""
    decision, _ = step(make_target(behavior=UNBOUNDED), 2, {"kafka_lag": lag_observation(1000)})
    return decision


def test_observe_decision_renders_replicas_and_reason() -> None:
    metrics = ServiceMetrics()
    decision = kafka_decision()
    assert (decision.desired_replicas, str(decision.reason)) == (10, "KafkaLagPerReplica")
    metrics.observe_decision("orders", decision)
    metrics.observe_decision("orders", decision)
    metrics.set_leader(True)

    parsed = samples(metrics.render())
    assert value(parsed, "autoscaler_current_replicas", target="orders") == 2
    assert value(parsed, "autoscaler_desired_replicas", target="orders") == 10
    assert (
        value(parsed, "autoscaler_decisions_total", target="orders", reason="KafkaLagPerReplica")
        == 2
    )
    assert value(parsed, "autoscaler_leader") == 1


def test_observations_forecasts_errors_and_accuracy() -> None:
    metrics = ServiceMetrics()
    forecast_made = Forecast(horizon_seconds=60, point=400.0, upper=500.0)
    metrics.observe_forecast(
        "orders", "lag", NOW, forecast_made, quantile=0.9, poll_interval_seconds=30
    )
    metrics.observe_observation(
        "orders", "lag", lag_observation(300, NOW + 60, arrival_rate=450.0, processing_rate=420.0)
    )
    metrics.observe_observation("orders", "cpu", MetricObservation(observed_at=NOW, value=0.7))
    metrics.observe_observation("orders", "lag", Unavailable(observed_at=NOW + 90, reason="down"))
    metrics.patch_error("orders", "conflict")
    metrics.observe_loop_duration("orders", 0.2)

    parsed = samples(metrics.render())
    lag = {"target": "orders", "trigger": "lag"}
    assert value(parsed, "autoscaler_forecast_point", **lag) == 400
    assert value(parsed, "autoscaler_forecast_upper", **lag) == 500
    assert value(parsed, "autoscaler_observed_lag_messages", **lag) == 300
    assert value(parsed, "autoscaler_arrival_rate_messages_per_second", **lag) == 450
    assert value(parsed, "autoscaler_processing_rate_messages_per_second", **lag) == 420
    assert value(parsed, "autoscaler_observed_metric_value", target="orders", trigger="cpu") == 0.7
    assert value(parsed, "autoscaler_source_errors_total", **lag) == 1
    assert value(parsed, "autoscaler_patch_errors_total", target="orders", kind="conflict") == 1
    assert value(parsed, "autoscaler_loop_duration_seconds_count", target="orders") == 1
    # |450 - 400| = 50; pinball(450, 500) at 0.9 = 0.1 * 50 = 5; 450 <= 500 covered.
    assert value(parsed, "autoscaler_forecast_mae", **lag) == 50
    assert value(parsed, "autoscaler_forecast_pinball_loss", **lag) == pytest.approx(5)
    assert value(parsed, "autoscaler_forecast_coverage_ratio", **lag) == 1
    assert value(parsed, "autoscaler_forecast_accuracy_samples", **lag) == 1


def test_forget_removes_only_that_target() -> None:
    metrics = ServiceMetrics()
    decision = kafka_decision()
    for target in ("orders", "payments"):
        metrics.observe_decision(target, decision)
        metrics.observe_forecast(
            target, "lag", NOW, Forecast(60, 1.0), quantile=0.9, poll_interval_seconds=30
        )
        metrics.source_error(target, "lag")
    metrics.forget("orders")

    text = metrics.render().decode()
    assert 'target="orders"' not in text
    assert 'target="payments"' in text
    assert metrics.accuracy("orders", "lag") is None
    assert metrics.accuracy("payments", "lag") is not None


def test_instances_do_not_collide() -> None:
    first, second = ServiceMetrics(), ServiceMetrics()
    first.set_leader(True)
    assert value(samples(second.render()), "autoscaler_leader") == 0


# --------------------------------------------------------------------------- http


def test_jsonable_turns_non_finite_to_null() -> None:
    decision = kafka_decision()
    body = jsonable({"a": math.nan, "b": [math.inf, 1.5], "d": decision, "o": lag_observation(1)})
    assert body["a"] is None
    assert body["b"] == [None, 1.5]
    assert body["d"]["reason"] == "KafkaLagPerReplica"
    assert body["o"]["total_lag"] == 1


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class Service:
    """What the endpoints read, changeable by a test."""

    def __init__(self) -> None:
        self.ready: tuple[bool, str] = (False, "waiting for the first poll")
        self.metrics = ServiceMetrics()
        decision = kafka_decision()
        self.metrics.observe_decision("orders", decision)
        self.status: dict[str, Any] = {
            "targets": {
                "orders": {
                    "observation": lag_observation(1000, arrival_rate=math.nan),
                    "forecast": Forecast(60, point=math.inf, upper=None),
                    "decision": decision,
                    "reason": decision.reason,
                }
            }
        }


@pytest.fixture
async def served() -> AsyncIterator[tuple[Service, str, str]]:
    health_port, metrics_port = free_ports(2)
    config = ServerConfig(
        bind_address="127.0.0.1", health_port=health_port, metrics_port=metrics_port
    )
    service = Service()
    handle = await start(
        config,
        metrics=service.metrics,
        ready=lambda: service.ready,
        status=lambda: service.status,
    )
    try:
        yield service, f"http://127.0.0.1:{health_port}", f"http://127.0.0.1:{metrics_port}"
    finally:
        await handle.stop()


async def test_healthz(served: tuple[Service, str, str]) -> None:
    _, health, _ = served
    async with aiohttp.ClientSession() as session, session.get(f"{health}/healthz") as response:
        assert response.status == 200
        assert await response.text() == "ok"


async def test_readyz_follows_the_check(served: tuple[Service, str, str]) -> None:
    service, health, _ = served
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{health}/readyz") as response:
            assert response.status == 503
            assert await response.json() == {
                "ready": False,
                "detail": "waiting for the first poll",
            }
        service.ready = (True, "leader; 1 target polled")
        async with session.get(f"{health}/readyz") as response:
            assert response.status == 200
            assert (await response.json())["ready"] is True


async def test_status_is_json_with_nan_as_null(served: tuple[Service, str, str]) -> None:
    _, health, _ = served
    async with aiohttp.ClientSession() as session, session.get(f"{health}/status") as response:
        assert response.status == 200
        body = await response.json()
    orders = body["targets"]["orders"]
    assert orders["observation"]["arrival_rate"] is None
    assert orders["forecast"]["point"] is None
    assert orders["decision"]["desired_replicas"] == 10
    assert orders["reason"] == "KafkaLagPerReplica"


async def test_metrics_endpoint_is_parseable(served: tuple[Service, str, str]) -> None:
    _, health, scrape = served
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{scrape}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == CONTENT_TYPE
            text = await response.text()
        async with session.get(f"{health}/metrics") as response:
            assert response.status == 404  # metrics live on their own port
    assert value(samples(text), "autoscaler_desired_replicas", target="orders") == 10


async def test_start_fails_cleanly_when_a_port_is_taken() -> None:
    health_port, metrics_port = free_ports(2)
    config = ServerConfig(
        bind_address="127.0.0.1", health_port=health_port, metrics_port=metrics_port
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", metrics_port))
        taken.listen()
        with pytest.raises(OSError, match=str(metrics_port)):
            await start(config, metrics=ServiceMetrics(), ready=lambda: (True, ""), status=dict)
    # The health listener was closed: its port can be bound again.
    with socket.socket() as again:
        again.bind(("127.0.0.1", health_port))


def test_accuracy_totals_stay_exact_over_a_sliding_window() -> None:
    rng = random.Random(7)
    accuracy = ForecastAccuracy(horizon_seconds=10, quantile=0.9, window=5, tolerance_seconds=1)
    errors: list[tuple[float, float, bool]] = []
    for k in range(23):
        point, upper, actual = rng.uniform(0, 100), rng.uniform(0, 150), rng.uniform(0, 100)
        upper = max(upper, point)
        accuracy.record_forecast(10.0 * k, point, upper)
        accuracy.record_actual(10.0 * k + 10, actual)
        errors.append((abs(actual - point), pinball_loss(actual, upper, 0.9), actual <= upper))
    last = errors[-5:]
    assert accuracy.count == 5
    assert accuracy.mae == pytest.approx(sum(e[0] for e in last) / 5, rel=1e-12)
    assert accuracy.pinball == pytest.approx(sum(e[1] for e in last) / 5, rel=1e-12)
    assert accuracy.coverage == sum(e[2] for e in last) / 5
