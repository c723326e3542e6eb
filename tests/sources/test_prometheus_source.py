"""``PrometheusSource`` against a real Prometheus holding backfilled history that ends a
minute or two before the module starts, and against small local servers for what a real
Prometheus cannot show (a server that never answers, the headers a request carries).

The fixtures live here, not in a conftest.py: tests/sources/conftest.py belongs to the
Kafka source's tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr
from servers.prometheus_server import PrometheusServer, Series
from structlog.testing import capture_logs

from autoscaler.config.model import PrometheusServerConfig, PrometheusTrigger
from autoscaler.config.promql import promql_problem
from autoscaler.decision.types import MetricObservation, Unavailable
from autoscaler.sources.prometheus import PrometheusSource

STEP = 60.0
TWO_DAYS = 2 * 1440  # samples at one minute
LAG = 'consumer_lag{group="orders"}'


def lag_value(index: int) -> float:
    """The backfilled lag at sample ``index``: a daily wave plus a ripple."""
    return round(1000.0 + 400.0 * math.sin(2 * math.pi * index / 1440) + 3.5 * (index % 5), 3)


def _minutes(end: float, count: int) -> list[float]:
    return [end - STEP * (count - 1 - i) for i in range(count)]


@pytest.fixture(scope="module")
def history_end() -> float:
    """The last sample's time: the last whole minute, one minute ago (within Prometheus's
    5-minute lookback for instant queries at its own now)."""
    return math.floor(time.time() / STEP) * STEP - STEP


@pytest.fixture(scope="module")
def lag_series(history_end: float) -> Series:
    times = _minutes(history_end, TWO_DAYS)
    return Series(
        "consumer_lag", {"group": "orders"}, [(t, lag_value(i)) for i, t in enumerate(times)]
    )


@pytest.fixture(scope="module")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, history_end: float, lag_series: Series
) -> Iterator[PrometheusServer]:
    recent = _minutes(history_end, 10)
    series = [
        lag_series,
        Series("shard_lag", {"shard": "a"}, [(t, 1.0) for t in recent]),
        Series("shard_lag", {"shard": "b"}, [(t, 2.0) for t in recent]),
        Series("shard_lag", {"shard": "c"}, [(t, 3.0) for t in recent]),
        Series("broken", {"kind": "nan"}, [(t, math.nan) for t in recent]),
        Series("broken", {"kind": "inf"}, [(t, math.inf) for t in recent]),
    ]
    with PrometheusServer(tmp_path_factory.mktemp("prometheus"), series) as server:
        yield server


def _config(url: str, **settings: Any) -> PrometheusServerConfig:
    return PrometheusServerConfig(url=url, **settings)


def _trigger(query: str, on_empty: str = "unavailable") -> PrometheusTrigger:
    settings = {
        "type": "prometheus",
        "server": "main",
        "query": query,
        "target_value": 10.0,
        "on_empty": on_empty,
    }
    if promql_problem(query) is not None:
        # The config refuses it at validate time; built unchecked here, as a query the
        # config's parser accepts but a server (another dialect, another version) refuses.
        return PrometheusTrigger.model_construct(**settings)  # type: ignore[arg-type]
    return PrometheusTrigger.model_validate(settings)


@pytest.fixture
async def source(prometheus: PrometheusServer) -> AsyncIterator[PrometheusSource]:
    one = PrometheusSource(_config(prometheus.url, timeout_seconds=5.0), name="main")
    yield one
    await one.aclose()


# --------------------------------------------------------------------------- instant


async def test_instant_value_is_the_last_backfilled_sample(
    source: PrometheusSource, lag_series: Series
) -> None:
    result = await source.instant(_trigger(LAG), now=1234.5)
    assert result == MetricObservation(1234.5, lag_series.samples[-1][1])


@pytest.mark.parametrize(
    ("query", "on_empty", "expected"),
    [
        pytest.param("sum(shard_lag)", "unavailable", 6.0, id="aggregated"),
        pytest.param("1 + 1", "unavailable", 2.0, id="scalar"),
        pytest.param("absent_metric", "zero", 0.0, id="empty-read-as-zero"),
        pytest.param(
            "absent_metric", "unavailable", "query returned no series", id="empty-unavailable"
        ),
        pytest.param(
            "shard_lag",
            "unavailable",
            "query returned 3 series; one expected: aggregate it, e.g. sum(...) (got "
            'shard_lag{shard="a"}, shard_lag{shard="b"}, shard_lag{shard="c"})',
            id="multi-series",
        ),
        pytest.param("shard_lag", "zero", "query returned 3 series", id="multi-series-never-zero"),
        pytest.param('broken{kind="nan"}', "zero", "value is NaN", id="nan"),
        pytest.param('broken{kind="inf"}', "zero", "value is +Inf", id="inf"),
        pytest.param(
            "sum(",
            "unavailable",
            'HTTP 400: bad_data: invalid parameter "query": '
            "1:5: parse error: unclosed left parenthesis",
            id="bad-promql",
        ),
        pytest.param('"text"', "unavailable", "the query returns a string", id="string-result"),
        pytest.param("shard_lag[5m]", "unavailable", "returns a matrix", id="range-vector"),
    ],
)
async def test_instant_outcomes(
    source: PrometheusSource, query: str, on_empty: str, expected: float | str
) -> None:
    result = await source.instant(_trigger(query, on_empty), now=100.0)
    if isinstance(expected, float):
        assert result == MetricObservation(100.0, expected)
    else:
        assert isinstance(result, Unavailable)
        assert result.observed_at == 100.0
        assert result.reason.startswith(f"prometheus {source.server}: ")
        assert expected in result.reason


async def test_unreachable_then_recovered_logging_once_per_change(
    tmp_path: Path, history_end: float
) -> None:
    series = Series("queue_depth", {}, [(t, 7.0) for t in _minutes(history_end, 5)])
    with PrometheusServer(tmp_path, [series]) as server:
        source = PrometheusSource(_config(server.url, timeout_seconds=2.0))
        trigger = _trigger("queue_depth")
        with capture_logs() as logs:
            assert await source.instant(trigger, 1.0) == MetricObservation(1.0, 7.0)
            server.stop()
            began = time.monotonic()
            down = [await source.instant(trigger, now) for now in (2.0, 3.0, 4.0)]
            assert time.monotonic() - began < 2.0
            server.start()
            assert await source.instant(trigger, 5.0) == MetricObservation(5.0, 7.0)
            assert await source.instant(trigger, 6.0) == MetricObservation(6.0, 7.0)
        await source.aclose()
        assert await source.instant(trigger, 7.0) == Unavailable(
            7.0, f"prometheus {source.server}: source closed"
        )
    assert all(isinstance(one, Unavailable) for one in down)
    assert [one.observed_at for one in down] == [2.0, 3.0, 4.0]
    assert isinstance(down[0], Unavailable)
    assert "cannot connect: connection refused" in down[0].reason
    # One line when it broke, one when it recovered: not one per poll.
    assert [(line["event"], line["log_level"]) for line in logs] == [
        ("prometheus_query_unavailable", "warning"),
        ("prometheus_query_recovered", "info"),
    ]
    assert logs[0]["query"] == "queue_depth"
    assert logs[0]["server"] == source.server
    assert "connection refused" in logs[0]["reason"]


# --------------------------------------------------------------------------- history


async def test_two_days_of_history_arrive_whole(
    source: PrometheusSource, lag_series: Series
) -> None:
    start, end = lag_series.samples[0][0], lag_series.samples[-1][0]
    result = await source.history(LAG, start, end, STEP)
    assert not isinstance(result, Unavailable)
    times, values = result
    assert len(times) == len(values) == TWO_DAYS
    np.testing.assert_array_equal(times, start + STEP * np.arange(TWO_DAYS))
    np.testing.assert_array_equal(values, [value for _, value in lag_series.samples])


async def test_history_in_chunks_at_a_fine_step(
    source: PrometheusSource, lag_series: Series
) -> None:
    """12 hours at 2 s is 21,601 points: three queries, none duplicated at the edges."""
    end = lag_series.samples[-1][0]
    start = end - 12 * 3600
    result = await source.history(LAG, start, end, 2.0)
    assert not isinstance(result, Unavailable)
    times, values = result
    assert len(times) == 21_601
    np.testing.assert_array_equal(np.diff(times), 2.0)
    assert values[-1] == lag_series.samples[-1][1]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("shard_lag", "query returned 3 series", id="multi-series"),
        pytest.param("sum(", "HTTP 400: bad_data", id="bad-promql"),
    ],
)
async def test_history_failures(
    source: PrometheusSource, history_end: float, query: str, expected: str
) -> None:
    result = await source.history(query, history_end - 3600, history_end, STEP)
    assert isinstance(result, Unavailable)
    assert result.observed_at == history_end
    assert expected in result.reason


async def test_history_empty_and_nan_only_are_no_points(
    source: PrometheusSource, history_end: float
) -> None:
    for query in ("absent_metric", 'broken{kind="nan"}'):
        result = await source.history(query, history_end - 3600, history_end, STEP)
        assert not isinstance(result, Unavailable)
        assert [len(part) for part in result] == [0, 0]


# --------------------------------------------------------------------------- slow servers


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A server that accepts connections (the kernel does) but never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


async def test_a_hung_server_delays_only_its_own_queries(
    prometheus: PrometheusServer, silent_url: str, lag_series: Series
) -> None:
    healthy = PrometheusSource(_config(prometheus.url, timeout_seconds=2.0))
    hung = PrometheusSource(_config(silent_url, timeout_seconds=2.0))
    began = time.monotonic()

    async def timed(source: PrometheusSource) -> tuple[object, float]:
        result = await source.instant(_trigger(LAG), now=1.0)
        return result, time.monotonic() - began

    (good, good_after), (bad, bad_after) = await asyncio.gather(timed(healthy), timed(hung))
    assert good == MetricObservation(1.0, lag_series.samples[-1][1])
    assert good_after < 1.0
    assert isinstance(bad, Unavailable)
    assert "no answer within 2 s" in bad.reason
    assert 1.9 < bad_after < 3.0
    await healthy.aclose()
    await hung.aclose()


# --------------------------------------------------------------------------- headers


class _Recorder(BaseHTTPRequestHandler):
    """Answers every instant query with one series of value 5 and keeps the headers."""

    seen: list[dict[str, str]]

    def do_GET(self) -> None:
        self.seen.append(dict(self.headers.items()))
        body = json.dumps(
            {
                "status": "success",
                "data": {
                    "resultType": "vector",
                    "result": [{"metric": {}, "value": [time.time(), "5"]}],
                },
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@contextlib.contextmanager
def _serve(tls: ssl.SSLContext | None = None) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A local HTTP(S) server answering like Prometheus; yields its url and the headers of
    every request it received."""
    seen: list[dict[str, str]] = []
    handler = type("Handler", (_Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if tls else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[dict[str, str]]]]:
    with _serve() as served:
        yield served


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        pytest.param({}, "TLS: self-signed certificate", id="unknown-ca"),
        pytest.param({"ca_file": "CERT"}, 5.0, id="ca-file"),
        pytest.param({"insecure_skip_verify": True}, 5.0, id="insecure"),
    ],
)
async def test_tls_settings(
    certificate: tuple[Path, Path], settings: dict[str, Any], expected: float | str
) -> None:
    cert, key = certificate
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    settings = {name: cert if value == "CERT" else value for name, value in settings.items()}
    with _serve(tls) as (url, _):
        source = PrometheusSource(_config(url, timeout_seconds=2.0, **settings))
        result = await source.instant(_trigger("up"), 1.0)
        await source.aclose()
    if isinstance(expected, float):
        assert result == MetricObservation(1.0, expected)
    else:
        assert isinstance(result, Unavailable)
        assert expected in result.reason


async def test_header_files_are_sent_reread_and_never_logged(
    tmp_path: Path, recorder: tuple[str, list[dict[str, str]]]
) -> None:
    url, seen = recorder
    key_file = tmp_path / "api-key"
    key_file.write_text("first-secret-key\n", encoding="utf-8")
    source = PrometheusSource(_config(url, header_files={"X-API-Key": key_file}))
    with capture_logs() as logs:
        assert await source.instant(_trigger("up"), 1.0) == MetricObservation(1.0, 5.0)
        rotated = tmp_path / "api-key.new"
        rotated.write_text("second-secret-key", encoding="utf-8")
        rotated.replace(key_file)
        assert await source.instant(_trigger("up"), 2.0) == MetricObservation(2.0, 5.0)
        key_file.unlink()
        missing = await source.instant(_trigger("up"), 3.0)
    await source.aclose()
    assert [headers["X-API-Key"] for headers in seen] == ["first-secret-key", "second-secret-key"]
    assert isinstance(missing, Unavailable)
    assert f"cannot read header_files.X-API-Key {key_file}" in missing.reason
    assert "secret" not in repr(logs) + missing.reason
    assert "prometheus_header_file_reloaded" in [line["event"] for line in logs]


async def test_bearer_token_reread_when_rotated_and_secrets_never_logged(
    tmp_path: Path, recorder: tuple[str, list[dict[str, str]]]
) -> None:
    url, seen = recorder
    token_file = tmp_path / "token"
    token_file.write_text("first-secret-token\n", encoding="utf-8")
    config = _config(
        url,
        bearer_token_file=token_file,
        headers={"X-Scope-OrgID": SecretStr("tenant-secret")},
    )
    source = PrometheusSource(config)
    with capture_logs() as logs:
        assert await source.instant(_trigger("up"), 1.0) == MetricObservation(1.0, 5.0)
        # A projected token is replaced by a new file behind a symlink.
        rotated = tmp_path / "token.new"
        rotated.write_text("second-secret-token", encoding="utf-8")
        rotated.replace(token_file)
        assert await source.instant(_trigger("up"), 2.0) == MetricObservation(2.0, 5.0)
        token_file.write_text("", encoding="utf-8")
        empty = await source.instant(_trigger("up"), 3.0)
    await source.aclose()
    assert [headers["Authorization"] for headers in seen] == [
        "Bearer first-secret-token",
        "Bearer second-secret-token",
    ]
    assert all(headers["X-Scope-OrgID"] == "tenant-secret" for headers in seen)
    assert isinstance(empty, Unavailable)
    assert f"bearer_token_file {token_file} is empty" in empty.reason
    logged = repr(logs) + repr(source) + empty.reason
    assert "secret" not in logged
    assert "prometheus_bearer_token_reloaded" in [line["event"] for line in logs]
