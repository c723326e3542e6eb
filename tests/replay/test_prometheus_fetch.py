"""``fetch_range`` against a real Prometheus (see conftest.py for the history it holds),
and the pure helpers (chunk plan, time and duration parsing) as tables."""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from servers.prometheus_server import PrometheusServer, PrometheusServerError, Series

from autoscaler.sources.prometheus_history import (
    MAX_POINTS_PER_QUERY,
    fetch_fleet,
    fetch_range,
    parse_duration,
    parse_time,
    range_chunks,
)
from autoscaler.traces import TraceError

ORDERS = 'kafka_topic_arrival_rate{topic="orders"}'
STEP = 60.0  # the step of every backfilled series


def _values(series: Series) -> np.ndarray:
    return np.array([value for _, value in series.samples], dtype=np.float64)


def _start(series: Series) -> float:
    return series.samples[0][0]


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel does) but never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


# --------------------------------------------------------------------------- whole and exact


def test_thirty_days_at_one_minute_arrive_whole(
    prometheus: PrometheusServer, orders_series: Series
) -> None:
    start, end = _start(orders_series), orders_series.samples[-1][0]
    trace = fetch_range(prometheus.url, ORDERS, start, end, STEP)
    assert len(trace.rates) == len(orders_series.samples) == 43_200
    assert trace.start == start
    assert trace.step == STEP
    # Every minute once, none missing at the four chunk boundaries, values exact.
    assert trace.observed.all()
    assert trace.warnings == ()
    np.testing.assert_array_equal(trace.timestamps, start + STEP * np.arange(43_200))
    np.testing.assert_array_equal(trace.rates, _values(orders_series))
    assert trace.name == ORDERS


@pytest.mark.parametrize(
    ("steps", "chunks"),
    [
        pytest.param(MAX_POINTS_PER_QUERY - 1, 1, id="10000-points-one-query"),
        pytest.param(MAX_POINTS_PER_QUERY, 2, id="10001-points-last-alone"),
        pytest.param(2 * MAX_POINTS_PER_QUERY, 3, id="20001-points"),
    ],
)
def test_inclusive_bounds_at_chunk_edges(
    prometheus: PrometheusServer, orders_series: Series, steps: int, chunks: int
) -> None:
    """``end`` is evaluated too, once: ``steps + 1`` points from ``chunks`` queries."""
    start = _start(orders_series)
    end = start + steps * STEP
    assert len(range_chunks(start, end, STEP)) == chunks
    trace = fetch_range(prometheus.url, ORDERS, start, end, STEP)
    assert len(trace.rates) == steps + 1
    assert trace.observed.all()
    np.testing.assert_array_equal(trace.rates, _values(orders_series)[: steps + 1])


def test_sub_second_start_is_kept_to_the_millisecond(
    prometheus: PrometheusServer, orders_series: Series
) -> None:
    """Evaluation times between samples see the sample before (the client alone would
    round each chunk's bounds to whole seconds)."""
    start = _start(orders_series) + 30.25
    points = MAX_POINTS_PER_QUERY + 500
    trace = fetch_range(prometheus.url, ORDERS, start, start + (points - 1) * STEP, STEP)
    assert len(trace.rates) == points
    assert trace.start == pytest.approx(start, abs=1e-6)
    assert trace.observed.all()
    np.testing.assert_array_equal(trace.rates, _values(orders_series)[:points])


def test_short_range_coarser_step_and_counts(
    prometheus: PrometheusServer, orders_series: Series
) -> None:
    values = _values(orders_series)
    start = orders_series.samples[-121][0]  # the last two hours: 121 samples
    end = orders_series.samples[-1][0]
    trace = fetch_range(prometheus.url, ORDERS, start, end, parse_duration("5m"), name="orders")
    assert trace.name == "orders"
    assert (trace.step, len(trace.rates)) == (300.0, 25)
    np.testing.assert_array_equal(trace.rates, values[-121::5])

    counts = fetch_range(prometheus.url, ORDERS, start, end, STEP, value_kind="count")
    np.testing.assert_allclose(counts.rates, values[-121:] / STEP)


def test_nan_points_are_dropped_and_filled(
    prometheus: PrometheusServer, gappy_series: Series
) -> None:
    start, end = _start(gappy_series), gappy_series.samples[-1][0]
    trace = fetch_range(prometheus.url, 'kafka_topic_arrival_rate{topic="gappy"}', start, end, 60)
    nan = np.isnan(_values(gappy_series))
    assert len(trace.rates) == 120
    np.testing.assert_array_equal(trace.observed, ~nan)
    np.testing.assert_array_equal(trace.rates[~nan], _values(gappy_series)[~nan])
    # A NaN between 100+i-1 and 100+i+1 becomes 100+i (linear interpolation)...
    np.testing.assert_array_equal(trace.rates[nan], 100.0 + np.flatnonzero(nan))
    # ... and the only word about it is the trace's own gap warning.
    assert len(trace.warnings) == 1
    assert "12 missing rows of 120" in trace.warnings[0]


def test_auth_settings_reach_the_server_and_stay_secret(
    prometheus: PrometheusServer, orders_series: Series, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("tok-3f9a-secret\n")
    start = orders_series.samples[-10][0]
    end = orders_series.samples[-1][0]
    headers = {"X-Scope-OrgID": "tenant-7c1e"}
    trace = fetch_range(
        prometheus.url, ORDERS, start, end, STEP, bearer_token_file=token, headers=headers
    )
    assert len(trace.rates) == 10

    userinfo = prometheus.url.replace("http://", "http://admin:pw-91b2@")
    with pytest.raises(TraceError) as caught:
        fetch_range(userinfo, "sum(", start, end, STEP, bearer_token_file=token, headers=headers)
    message = str(caught.value)
    assert message.startswith(f"Prometheus {prometheus.url}, query 'sum(': HTTP 400")
    for secret in ("tok-3f9a", "tenant-7c1e", "pw-91b2", "admin"):
        assert secret not in message


# --------------------------------------------------------------------------- errors


def test_no_series(prometheus: PrometheusServer, orders_series: Series) -> None:
    start, end = _start(orders_series), orders_series.samples[-1][0]
    query = 'kafka_topic_arrival_rate{topic="payments"}'
    with pytest.raises(TraceError) as caught:
        fetch_range(prometheus.url, query, start, end, STEP)
    assert str(caught.value) == (
        f"Prometheus {prometheus.url}, query '{query}': "
        f"query returned no series between {_iso(start)} and {_iso(end)}"
    )


def test_several_series(prometheus: PrometheusServer, history_end: float) -> None:
    start = history_end - 3600
    with pytest.raises(TraceError) as caught:
        fetch_range(prometheus.url, "kafka_consumergroup_lag", start, history_end, STEP)
    assert str(caught.value) == (
        f"Prometheus {prometheus.url}, query 'kafka_consumergroup_lag': query returned 2 "
        "series; replay needs one: aggregate it, e.g. sum(...), or replay them as a fleet "
        "(--fleet-label) (got "
        'kafka_consumergroup_lag{partition="0", topic="orders"}, '
        'kafka_consumergroup_lag{partition="1", topic="orders"})'
    )
    summed = fetch_range(prometheus.url, "sum(kafka_consumergroup_lag)", start, history_end, 60)
    np.testing.assert_array_equal(summed.rates, np.full(61, 30.0))


def test_a_fleet_is_one_trace_per_value_of_its_label(
    prometheus: PrometheusServer, history_end: float
) -> None:
    start = history_end - 3600
    fleet = fetch_fleet(
        prometheus.url, "kafka_consumergroup_lag", start, history_end, STEP, "partition"
    )
    assert [name for name, _ in fleet] == ["0", "1"]
    traces = [trace for _, trace in fleet if not isinstance(trace, TraceError)]
    assert [trace.name for trace in traces] == ["0", "1"]
    assert [len(trace.rates) for trace in traces] == [61, 61]
    summed = traces[0].rates + traces[1].rates
    np.testing.assert_array_equal(summed, np.full(61, 30.0))
    with pytest.raises(TraceError) as caught:
        fetch_fleet(prometheus.url, "kafka_consumergroup_lag", start, history_end, STEP, "group")
    assert "a series has no label 'group' to name its workload by" in str(caught.value)
    with pytest.raises(TraceError) as caught:
        fetch_fleet(prometheus.url, "kafka_consumergroup_lag", start, history_end, STEP, "topic")
    assert "two series have topic='orders'; aggregate by topic" in str(caught.value)
    # A series of only NaN is one workload that fails, not a fleet that does.
    mixed = 'kafka_topic_arrival_rate{topic=~"broken|orders"}'
    (broken, error), (orders, trace) = fetch_fleet(
        prometheus.url, mixed, start, history_end, STEP, "topic"
    )
    assert (broken, orders) == ("broken", "orders")
    assert isinstance(error, TraceError)
    assert "topic='broken': no numeric value, only NaN" in str(error)
    assert not isinstance(trace, TraceError)
    assert len(trace.rates) == 61


def test_bad_promql(prometheus: PrometheusServer, history_end: float) -> None:
    with pytest.raises(TraceError) as caught:
        fetch_range(prometheus.url, "sum(rate(x[5m])", history_end - 600, history_end, 60)
    assert str(caught.value) == (
        f"Prometheus {prometheus.url}, query 'sum(rate(x[5m])': "
        "HTTP 400: bad_data: 1:16: parse error: unclosed left parenthesis"
    )


def test_only_nan(prometheus: PrometheusServer, history_end: float) -> None:
    query = 'kafka_topic_arrival_rate{topic="broken"}'
    start = history_end - 1800
    with pytest.raises(TraceError) as caught:
        fetch_range(prometheus.url, query, start, history_end, 60)
    assert str(caught.value) == (
        f"Prometheus {prometheus.url}, query '{query}': query returned no numeric value "
        f"between {_iso(start)} and {_iso(history_end)}, only NaN"
    )


def test_negative_values(prometheus: PrometheusServer, history_end: float) -> None:
    query = "-sum(kafka_consumergroup_lag)"
    with pytest.raises(TraceError) as caught:
        fetch_range(prometheus.url, query, history_end - 600, history_end, 60)
    assert str(caught.value) == (
        f"Prometheus {prometheus.url}, query '{query}': value -30 at "
        f"{_iso(history_end - 600)} is negative; replay needs an arrival rate >= 0"
    )


def test_not_a_prometheus_path(prometheus: PrometheusServer, history_end: float) -> None:
    with pytest.raises(TraceError) as caught:
        fetch_range(f"{prometheus.url}/nope/", "up", history_end - 600, history_end, 60)
    assert str(caught.value) == (
        f"Prometheus {prometheus.url}/nope, query 'up': HTTP 404: 404 page not found"
    )


def test_unreachable_server(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    with pytest.raises(TraceError) as caught:
        fetch_range(url, "sum(up)", 1_700_000_000, 1_700_003_600, 60)
    assert str(caught.value) == (
        f"Prometheus {url}, query 'sum(up)': cannot connect: connection refused"
    )


def test_server_that_never_answers(silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}"
    with pytest.raises(TraceError) as caught:
        fetch_range(url, "sum(up)", 1_700_000_000, 1_700_003_600, 60, timeout_seconds=0.2)
    assert str(caught.value) == f"Prometheus {url}, query 'sum(up)': no answer within 0.2 s"


def test_outage_then_recovery(prometheus: PrometheusServer, orders_series: Series) -> None:
    start, end = orders_series.samples[-60][0], orders_series.samples[-1][0]
    prometheus.stop()
    try:
        with pytest.raises(TraceError, match=r"cannot connect: connection refused$"):
            fetch_range(prometheus.url, ORDERS, start, end, STEP)
    finally:
        prometheus.start()
    assert len(fetch_range(prometheus.url, ORDERS, start, end, STEP).rates) == 60


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        pytest.param({"end": 1000.0}, "end 1970-01-01T00:16:40Z is not after start", id="end"),
        pytest.param({"step": 0.0}, "step must be at least 1 ms, not 0.0", id="step-zero"),
        pytest.param({"step": math.nan}, "step must be a finite number, not nan", id="step-nan"),
        pytest.param({"url": "127.0.0.1:9090"}, "must start with http:// or https://", id="url"),
        pytest.param({"url": "http://p:9090/?token=t-31f4"}, "must be a base URL", id="url-query"),
        pytest.param(
            {"bearer_token_file": Path("/nonexistent/token")},
            "cannot read bearer_token_file /nonexistent/token: No such file or directory",
            id="token-file",
        ),
        pytest.param(
            {"bearer_token_file": Path("/dev/null"), "headers": {"authorization": "x"}},
            "both bearer_token_file and an Authorization header: use one",
            id="token-twice",
        ),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], error: str) -> None:
    arguments: dict[str, object] = {
        "url": "http://127.0.0.1:9",
        "query": "sum(up)",
        "start": 1000.0,
        "end": 2000.0,
        "step": 60.0,
        **kwargs,
    }
    with pytest.raises(TraceError) as caught:
        fetch_range(**arguments)  # type: ignore[arg-type]
    assert error in str(caught.value)
    assert "\n" not in str(caught.value)
    assert "t-31f4" not in str(caught.value)


# --------------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    ("start", "end", "step", "expected"),
    [
        pytest.param(0, 0, 1, [(0, 0)], id="one-point"),
        pytest.param(0, 9, 1, [(0, 4), (5, 9)], id="exact-split"),
        pytest.param(0, 10, 1, [(0, 4), (5, 9), (10, 10)], id="end-alone"),
        pytest.param(0, 10.5, 1, [(0, 4), (5, 9), (10, 10)], id="end-between-steps"),
        pytest.param(0.5, 3.0, 0.5, [(0.5, 2.5), (3.0, 3.0)], id="fractions"),
        pytest.param(5, 4, 1, [], id="empty"),
    ],
)
def test_range_chunks(
    start: float, end: float, step: float, expected: list[tuple[float, float]]
) -> None:
    assert range_chunks(start, end, step, max_points=5) == expected


def test_range_chunks_tile_thirty_days() -> None:
    start = 1_700_000_000.0
    chunks = range_chunks(start, start + 30 * 86_400, 60)
    assert len(chunks) == 5
    points = [np.arange(first, last + 30, 60) for first, last in chunks]
    assert max(len(p) for p in points) == MAX_POINTS_PER_QUERY
    np.testing.assert_array_equal(np.concatenate(points), start + 60 * np.arange(43_201))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("60", 60.0, id="number"),
        pytest.param("0.5", 0.5, id="fraction"),
        pytest.param("250ms", 0.25, id="ms"),
        pytest.param("90s", 90.0, id="s"),
        pytest.param("1m", 60.0, id="m"),
        pytest.param("2h", 7200.0, id="h"),
        pytest.param("1h30m", 5400.0, id="compound"),
        pytest.param("30d", 2_592_000.0, id="d"),
        pytest.param("1w", 604_800.0, id="w"),
        pytest.param("1y", 31_536_000.0, id="y-is-365d"),
        pytest.param("1m500ms", 60.5, id="m-then-ms"),
        pytest.param(" 5m ", 300.0, id="spaces"),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("m5", id="unit-first"),
        pytest.param("30m1h", id="wrong-order"),
        pytest.param("1.5h", id="fractional-unit"),
        pytest.param("5 m", id="inner-space"),
        pytest.param("-5", id="negative"),
        pytest.param("inf", id="infinite"),
        pytest.param("5M", id="capital"),
    ],
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


NOW = 1_714_564_800.0  # 2024-05-01T12:00:00Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2024-05-01T12:00:00Z", NOW, id="iso-z"),
        pytest.param("2024-05-01T14:00:00+02:00", NOW, id="iso-offset"),
        pytest.param("2024-05-01T12:00:00", NOW, id="iso-no-zone-is-utc"),
        pytest.param("2024-05-01", NOW - 43_200, id="date"),
        pytest.param("1714564800", NOW, id="unix"),
        pytest.param("1714564800.5", NOW + 0.5, id="unix-fraction"),
        pytest.param("30", 30.0, id="bare-number-is-unix"),
        pytest.param("now", NOW, id="now"),
        pytest.param("NOW", NOW, id="now-any-case"),
        pytest.param("now-30d", NOW - 2_592_000, id="now-minus"),
        pytest.param("now+1h", NOW + 3600, id="now-plus"),
        pytest.param("now - 1h30m", NOW - 5400, id="now-spaces"),
        pytest.param("Now-2h", NOW - 7200, id="now-capitalised"),
        pytest.param("30d", NOW - 2_592_000, id="bare-duration-is-ago"),
        pytest.param("90m", NOW - 5400, id="bare-minutes"),
    ],
)
def test_parse_time(text: str, expected: float) -> None:
    assert parse_time(text, now=NOW) == expected


@pytest.mark.parametrize(
    "text",
    ["", "yesterday", "now-", "now-30x", "now-5M", "now*2", "2024-13-01", "-30d", "d30", "nan"],
)
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not a time: use ISO-8601") as caught:
        parse_time(text, now=NOW)
    assert isinstance(caught.value, TraceError)  # the replay command reports it in one line


def test_parse_time_defaults_to_the_wall_clock() -> None:
    assert abs(parse_time("now-1h") - (time.time() - 3600)) < 5


# --------------------------------------------------------------------------- the test server


def test_server_without_binaries_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PrometheusServerError, match=r"run `bash \.ci/install`"):
        PrometheusServer(tmp_path).start()


def test_server_that_cannot_start_shows_its_log(tmp_path: Path) -> None:
    server = PrometheusServer(tmp_path, extra_args=["--no-such-flag"])
    with pytest.raises(PrometheusServerError) as caught:
        server.start()
    assert "prometheus exited with code" in str(caught.value)
    assert "no-such-flag" in str(caught.value)
    assert not server.running
