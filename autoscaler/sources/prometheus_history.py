"""Metric history for replay from a Prometheus range query (``/api/v1/query_range``).

``fetch_range`` turns one PromQL query over ``[start, end]`` into a ``Trace``. Prometheus
answers at most 11,000 points per series and query, so a long range is asked in chunks of
at most ``MAX_POINTS_PER_QUERY`` evaluation times each (30 days at 1-minute steps is 43,201
points: five queries). Range bounds are inclusive on both ends, so chunk ``k + 1`` starts
one step after chunk ``k`` ends; times are computed in whole milliseconds (Prometheus's own
resolution) so that no point is duplicated or dropped at a boundary.

Every failure is a ``TraceError`` of one line naming the server and the query, never a
header value or a token: unreachable server, an HTTP error with Prometheus's own message,
no series, several series (replay needs one), or no numeric value. NaN points are dropped
without comment; the gaps they leave are filled like any other gap (``from_points``).

The client (prometheus-api-client, over requests) is synchronous: fine for the replay
command, which fetches once before simulating. Never call it from the live event loop.
"""

from __future__ import annotations

import contextlib
import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import numpy as np
import requests  # type: ignore[import-untyped, unused-ignore]
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.exceptions import InsecureRequestWarning
from urllib3.util.retry import Retry

from autoscaler.sources.prometheus_http import (
    MAX_POINTS_PER_QUERY,
    chunks_ms,
    connection_problem,
    display_url,
    http_error,
    iso_from_ms,
    one_line,
    seconds_param,
    shown_series,
    to_ms,
)
from autoscaler.traces import Trace, TraceError, from_points, parse_timestamp

__all__ = [
    "MAX_POINTS_PER_QUERY",
    "TimeSyntaxError",
    "fetch_fleet",
    "fetch_range",
    "parse_duration",
    "parse_time",
    "range_chunks",
]

_RETRYABLE_STATUS = (429, 502, 503, 504)
"""Answers worth asking again (rate limiting, a proxy or a restarting server); never 4xx
errors of the query itself, and never connection failures (a replay is run by hand)."""

_DURATION_UNITS_MS = {
    "y": 365 * 86_400_000,
    "w": 7 * 86_400_000,
    "d": 86_400_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1_000,
    "ms": 1,
}
# Prometheus's duration syntax (model.ParseDuration): units in this order, each at most once.
_DURATION = re.compile(
    r"^(?:(?P<y>\d+)y)?(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?"
    r"(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?(?:(?P<ms>\d+)ms)?$"
)
_RELATIVE = re.compile(r"^(?i:now)\s*(?:(?P<sign>[+-])\s*(?P<duration>\S+))?$")


# --------------------------------------------------------------------------- parsing


class TimeSyntaxError(TraceError, ValueError):
    """A time or duration that cannot be read. Both a ``TraceError`` (the replay command
    reports it in one line like any bad input) and a ``ValueError`` (what a parser raises)."""


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration: ``90s``, ``5m``, ``1h30m``, ``2d``, ``1w``, ``1y``
    (units ``ms s m h d w y``, largest first, ``y`` = 365 d), or a plain number of seconds
    (``60``, ``0.5``). ``TimeSyntaxError`` (a ValueError) otherwise."""
    stripped = text.strip()
    try:
        seconds = float(stripped)
    except ValueError:
        match = _DURATION.match(stripped)
        if not stripped or match is None:
            raise TimeSyntaxError(
                f"'{text}' is not a duration: use a number of seconds or units "
                "ms, s, m, h, d, w, y, largest first (e.g. 90s, 5m, 1h30m, 30d)"
            ) from None
        milliseconds = sum(
            int(count) * _DURATION_UNITS_MS[unit]
            for unit, count in match.groupdict().items()
            if count is not None
        )
        return milliseconds / 1000
    if not math.isfinite(seconds) or seconds < 0:
        raise TimeSyntaxError(f"'{text}' is not a duration: must be a finite number >= 0")
    return seconds


def parse_time(text: str, *, now: float | None = None) -> float:
    """Unix seconds from any of:

    - ISO-8601: ``2024-05-01T12:00:00Z``, ``2024-05-01T12:00:00+02:00``, ``2024-05-01``
      (no zone means UTC);
    - Unix seconds: ``1714564800`` or ``1714564800.5``;
    - ``now``, ``now-30d``, ``now+1h``, ``now - 1h30m`` (Prometheus durations);
    - a bare duration, meaning that long ago: ``30d`` is ``now-30d``. A bare *number* is
      Unix seconds, not a duration: ``30`` is 1970-01-01T00:00:30Z.

    ``now`` defaults to the wall clock (pass it to make relative times reproducible).
    ``TimeSyntaxError`` (a ValueError) with one line otherwise.
    """
    stripped = text.strip()
    with contextlib.suppress(ValueError):
        moment = parse_timestamp(stripped)
        if math.isfinite(moment):  # float() also reads "nan" and "inf"
            return moment
    reference = _wall_clock() if now is None else now
    relative = _RELATIVE.match(stripped)
    with contextlib.suppress(ValueError):
        if relative is None and stripped[:1].isdigit():
            return reference - parse_duration(stripped)
        if relative is not None and relative["sign"] is None:
            return reference
        if relative is not None:
            offset = parse_duration(relative["duration"])
            return reference - offset if relative["sign"] == "-" else reference + offset
    raise TimeSyntaxError(
        f"'{text}' is not a time: use ISO-8601 (2024-05-01T12:00:00Z), Unix seconds, "
        "now, now-30d, or a duration ago (30d)"
    )


def _wall_clock() -> float:
    return datetime.now(tz=UTC).timestamp()


# --------------------------------------------------------------------------- chunks


def range_chunks(
    start: float, end: float, step: float, max_points: int = MAX_POINTS_PER_QUERY
) -> list[tuple[float, float]]:
    """The ``(start, end)`` of each query that together evaluate ``start, start + step, ...``
    up to ``end`` (inclusive), each at most ``max_points`` times, none twice.

    Times are rounded to whole milliseconds first, so the arithmetic is exact: chunk ``k``
    covers points ``k * max_points`` to ``(k + 1) * max_points - 1``, and the next chunk
    starts one step after the previous one's (inclusive) end.
    """
    return [
        (first / 1000, last / 1000)
        for first, last in chunks_ms(to_ms(start), to_ms(end), to_ms(step), max_points)
    ]


# --------------------------------------------------------------------------- fetch


def fetch_range(
    url: str,
    query: str,
    start: float,
    end: float,
    step: float,
    *,
    value_kind: Literal["rate", "count"] = "rate",
    timeout_seconds: float = 30,
    bearer_token_file: Path | None = None,
    ca_file: Path | None = None,
    insecure_skip_verify: bool = False,
    headers: Mapping[str, str] | None = None,
    name: str | None = None,
) -> Trace:
    """Evaluate ``query`` at ``start, start + step, ...`` up to ``end`` (Unix seconds,
    inclusive) and return it as a trace.

    Args:
        url: the Prometheus (or compatible) base URL, e.g. ``http://prometheus:9090``.
        query: PromQL returning exactly one series (aggregate it, e.g. ``sum(...)``).
        value_kind: ``rate`` (messages/s, e.g. ``sum(rate(...[5m]))``) or ``count``
            (messages per step, e.g. ``sum(increase(...[1m]))`` at a 1-minute step).
        timeout_seconds: per HTTP request (one chunk), connect and read.
        bearer_token_file: sent as ``Authorization: Bearer <contents>``, read now.
        ca_file: PEM bundle to verify the server's certificate with.
        insecure_skip_verify: do not verify the server's certificate at all.
        headers: extra HTTP headers (e.g. a tenant id); their values are never shown.
        name: the trace's name; default the query on one line.

    Raises:
        TraceError: one line naming the server and the query.
    """
    access = _Access(timeout_seconds, bearer_token_file, ca_file, insecure_skip_verify, headers)
    series, where = _fetch_series(url, query, start, end, step, access)
    if len(series) > 1:
        raise TraceError(
            f"{where}: query returned {len(series)} series; replay needs one: "
            f"aggregate it, e.g. sum(...), or replay them as a fleet (--fleet-label) "
            f"(got {shown_series(list(series))})"
        )
    ((times, values),) = series.values()
    return from_points(times, values, value_kind, name or one_line(query), where)


def fetch_fleet(
    url: str,
    query: str,
    start: float,
    end: float,
    step: float,
    label: str,
    *,
    value_kind: Literal["rate", "count"] = "rate",
    timeout_seconds: float = 30,
    bearer_token_file: Path | None = None,
    ca_file: Path | None = None,
    insecure_skip_verify: bool = False,
    headers: Mapping[str, str] | None = None,
) -> list[tuple[str, Trace | TraceError]]:
    """One trace per series of ``query`` (e.g. ``sum by (consumergroup) (...)``), by the
    value of its ``label`` (e.g. the consumer group), sorted by it. Same arguments as
    ``fetch_range``. A series that is no trace (only NaN, or too few points) comes as its
    ``TraceError`` (a fleet reports it and goes on); a series without the label, two with
    the same value, a negative value, or a query that fails is a ``TraceError`` raised."""
    access = _Access(timeout_seconds, bearer_token_file, ca_file, insecure_skip_verify, headers)
    series, where = _fetch_series(url, query, start, end, step, access, allow_empty=True)
    named: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for labels, points in series.items():
        value = dict(labels).get(label)
        if value is None:
            raise TraceError(
                f"{where}: a series has no label '{label}' to name its workload by "
                f"({shown_series([labels])}); aggregate by it, e.g. sum by ({label}) (...)"
            )
        if value in named:
            raise TraceError(
                f"{where}: two series have {label}={value!r}; aggregate by {label}, "
                f"e.g. sum by ({label}) (...)"
            )
        named[value] = points
    traces: list[tuple[str, Trace | TraceError]] = []
    for name, (times, values) in sorted(named.items()):
        one = f"{where}, {label}={name!r}"
        try:
            if not len(times):
                raise TraceError(f"{one}: no numeric value, only NaN")
            traces.append((name, from_points(times, values, value_kind, name, one)))
        except TraceError as error:
            traces.append((name, error))
    return traces


@dataclass(frozen=True)
class _Access:
    """How to reach the server (``fetch_range``'s keyword arguments)."""

    timeout_seconds: float
    bearer_token_file: Path | None
    ca_file: Path | None
    insecure_skip_verify: bool
    headers: Mapping[str, str] | None


def _fetch_series(
    url: str,
    query: str,
    start: float,
    end: float,
    step: float,
    access: _Access,
    *,
    allow_empty: bool = False,
) -> tuple[dict[tuple[tuple[str, str], ...], tuple[np.ndarray, np.ndarray]], str]:
    """Every series of the query, by label set, as (times in seconds, values); at least
    one, each with at least one numeric value unless ``allow_empty``. Also the ``where``
    errors begin with."""
    timeout_seconds, bearer_token_file = access.timeout_seconds, access.bearer_token_file
    headers, ca_file = access.headers, access.ca_file
    insecure_skip_verify = access.insecure_skip_verify
    server = display_url(url)
    one_line_query = one_line(query)
    where = f"Prometheus {server}, query '{one_line_query}'"
    start_ms, end_ms, step_ms = _check_range(where, start, end, step, timeout_seconds)
    request_headers = _request_headers(where, headers, bearer_token_file)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise TraceError(f"{where}: the url must start with http:// or https://")
    if parts.query or parts.fragment:
        raise TraceError(f"{where}: the url must be a base URL, without '?...' or '#...'")

    verify: bool | str = False if insecure_skip_verify else str(ca_file) if ca_file else True
    series: dict[tuple[tuple[str, str], ...], tuple[list[int], list[float]]] = {}
    with _RangeClient(url, where, timeout_seconds, request_headers, verify) as client:
        for chunk in chunks_ms(start_ms, end_ms, step_ms, MAX_POINTS_PER_QUERY):
            _collect(client.query(query, *chunk, step_ms), series, where)

    span = f"between {iso_from_ms(start_ms)} and {iso_from_ms(end_ms)}"
    if not series:
        raise TraceError(f"{where}: query returned no series {span}")
    arrays = {}
    for labels, (times_ms, values) in series.items():
        if not times_ms and not allow_empty:
            raise TraceError(f"{where}: query returned no numeric value {span}, only NaN")
        arrays[labels] = (
            np.array(times_ms, dtype=np.float64) / 1000,
            np.array(values, dtype=np.float64),
        )
    return arrays, where


def _check_range(
    where: str, start: float, end: float, step: float, timeout_seconds: float
) -> tuple[int, int, int]:
    for label, value in (("start", start), ("end", end), ("step", step)):
        if not math.isfinite(value):
            raise TraceError(f"{where}: {label} must be a finite number, not {value}")
    if not timeout_seconds > 0:
        raise TraceError(f"{where}: timeout_seconds must be > 0, not {timeout_seconds}")
    start_ms, end_ms, step_ms = to_ms(start), to_ms(end), to_ms(step)
    if step_ms < 1:
        raise TraceError(f"{where}: step must be at least 1 ms, not {step}")
    if end_ms <= start_ms:
        raise TraceError(
            f"{where}: end {iso_from_ms(end_ms)} is not after start {iso_from_ms(start_ms)}"
        )
    return start_ms, end_ms, step_ms


def _request_headers(
    where: str, headers: Mapping[str, str] | None, bearer_token_file: Path | None
) -> dict[str, str]:
    merged = dict(headers or {})
    if bearer_token_file is None:
        return merged
    if any(key.lower() == "authorization" for key in merged):
        raise TraceError(f"{where}: both bearer_token_file and an Authorization header: use one")
    try:
        token = Path(bearer_token_file).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not a UTF-8 text file"
        raise TraceError(
            f"{where}: cannot read bearer_token_file {bearer_token_file}: {reason}"
        ) from None
    if not token:
        raise TraceError(f"{where}: bearer_token_file {bearer_token_file} is empty")
    merged["Authorization"] = f"Bearer {token}"
    return merged


class _RangeClient:
    """``PrometheusConnect`` over a session of our own: certificate settings, retries only
    where a retry can help, and the last HTTP answer kept for its error message (the
    library's exception carries only a repr of the body)."""

    def __init__(
        self,
        url: str,
        where: str,
        timeout_seconds: float,
        headers: dict[str, str],
        verify: bool | str,
    ) -> None:
        self._url = url.rstrip("/")
        self._where = where
        self._timeout_seconds = timeout_seconds
        self._insecure = verify is False
        self._last_response: Any = None
        self._session = requests.Session()
        self._session.verify = verify
        self._session.hooks["response"].append(self._remember)
        self._client = PrometheusConnect(
            url=self._url,
            headers=headers,
            retry=Retry(
                total=2,
                connect=0,
                read=0,
                other=0,
                status=2,
                backoff_factor=1,
                status_forcelist=_RETRYABLE_STATUS,
                raise_on_status=False,
            ),
            session=self._session,
            timeout=timeout_seconds,
        )

    def __enter__(self) -> _RangeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._session.close()

    def _remember(self, response: Any, **_: Any) -> None:
        self._last_response = response

    def query(self, query: str, start_ms: int, end_ms: int, step_ms: int) -> Any:
        """One ``query_range`` call. The client rounds its datetime bounds to whole
        seconds: ``params`` override them with the exact millisecond values."""
        where = self._where
        try:
            with warnings.catch_warnings():
                if self._insecure:  # asked for: no warning on every chunk
                    warnings.simplefilter("ignore", InsecureRequestWarning)
                return self._client.custom_query_range(
                    query=query,
                    start_time=datetime.fromtimestamp(start_ms / 1000, tz=UTC),
                    end_time=datetime.fromtimestamp(end_ms / 1000, tz=UTC),
                    step=f"{step_ms}ms",
                    params={"start": seconds_param(start_ms), "end": seconds_param(end_ms)},
                )
        except PrometheusApiClientException:
            raise TraceError(f"{where}: {http_error(self._last_response)}") from None
        except (requests.JSONDecodeError, KeyError, TypeError):  # not JSON, or no data.result
            raise TraceError(
                f"{where}: the answer is not a Prometheus API response (is the url right?)"
            ) from None
        except (requests.RequestException, OSError) as error:
            problem = connection_problem(error, self._url, self._timeout_seconds)
            raise TraceError(f"{where}: {problem}") from None


def _collect(
    result: Any,
    series: dict[tuple[tuple[str, str], ...], tuple[list[int], list[float]]],
    where: str,
) -> None:
    """Add one chunk's matrix to ``series`` (keyed by label set), dropping NaN and other
    non-numeric values."""
    try:
        for item in result:
            labels = tuple(sorted((str(k), str(v)) for k, v in item["metric"].items()))
            times_ms, values = series.setdefault(labels, ([], []))
            for timestamp, text in item["values"]:
                try:
                    value = float(text)
                except (TypeError, ValueError):
                    continue
                if not math.isfinite(value):
                    continue
                if value < 0:
                    at = iso_from_ms(to_ms(float(timestamp)))
                    raise TraceError(
                        f"{where}: value {text} at {at} is negative; "
                        "replay needs an arrival rate >= 0"
                    )
                times_ms.append(to_ms(float(timestamp)))
                values.append(value)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise TraceError(f"{where}: unexpected answer: not a range-query matrix") from None
