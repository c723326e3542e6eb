"""The live Prometheus source: one instant query per trigger and poll, range queries for
warm start.

One ``PrometheusSource`` per configured server, shared by every trigger that names it.
``instant`` answers a trigger's query at a poll; ``history`` fills a predictor's history at
start-up (chunked like replay's fetch: at most ``MAX_POINTS_PER_QUERY`` points per request),
so that a restarted autoscaler forecasts at once instead of waiting days for history.

The HTTP client (requests) is synchronous: every request runs in a worker thread
(``asyncio.to_thread``) under ``asyncio.wait_for(timeout_seconds)``, so a slow or hung
Prometheus delays only the triggers that use it, never the event loop or other targets.
Queries are evaluated at Prometheus's own "now"; the ``now`` passed in is only the time
stamped on the result (it may come from any clock the caller uses).

Failures never raise into the caller; each outcome is defined here:

=====================================  ====================================================
Prometheus answers / what happens       ``instant`` returns
=====================================  ====================================================
one series (or a scalar), finite value  ``MetricObservation(now, value)``
no series, trigger ``on_empty: zero``   ``MetricObservation(now, 0.0)`` (for queries that are
                                        legitimately empty when idle)
no series, ``on_empty: unavailable``    ``Unavailable``: "query returned no series"
                                        (the default: an outage never reads as 0, keda#3065)
several series                          ``Unavailable`` naming the count and a few label
                                        sets: aggregate the query, e.g. ``sum(...)``
NaN, +Inf or -Inf                       ``Unavailable``: "value is NaN" (no number to scale on)
a string or range-vector result         ``Unavailable``: the result type is named
HTTP error (bad PromQL, 4xx, 5xx)       ``Unavailable`` with Prometheus's own message, e.g.
                                        "HTTP 400: bad_data: 1:5: parse error: ..."
not a Prometheus API answer             ``Unavailable``: "the answer is not a Prometheus API
                                        response (is the url right?)"
connection refused, DNS, TLS            ``Unavailable``: "cannot connect: ...", "TLS: ..."
no answer within ``timeout_seconds``    ``Unavailable``: "no answer within N s"
bearer token file unreadable or empty   ``Unavailable`` naming the file (never its content)
the source was closed                   ``Unavailable``: "source closed"
=====================================  ====================================================

``history(query, start, end, step)`` returns ``(times, values)`` (numpy float64 arrays,
Unix seconds) of the one series the query returns; NaN and infinite points are dropped
(gaps), an empty result is two empty arrays (no history: the predictor starts cold), and
several series or any failure of any chunk are an ``Unavailable`` as above, naming the span.

Logging (structlog), for ``instant``: one line per *change* of a query's outcome, not per
poll: ``prometheus_query_unavailable`` (warning, with the reason) when a query starts
failing or fails for a new reason, ``prometheus_query_recovered`` (info) when it answers
again, ``prometheus_query_empty_read_as_zero`` (info) when an empty result starts being read
as 0. Every line names the server (without credentials) and the query. Header values and
the bearer token are never logged, nor put in a reason.

The bearer token file is re-read whenever it changes (projected service-account tokens are
rotated by the kubelet, which swaps a symlink: the file's identity, size and mtime are
compared before each request).
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import threading
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
import requests  # type: ignore[import-untyped, unused-ignore]
import structlog
from urllib3.exceptions import InsecureRequestWarning

from autoscaler.config.model import PrometheusServerConfig, PrometheusTrigger
from autoscaler.decision.types import MetricObservation, Unavailable
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

__all__ = ["FloatArray", "PrometheusSource"]

FloatArray = npt.NDArray[np.float64]
"""Times (Unix seconds) or values of a warm-start history."""

_T = TypeVar("_T")
_Labels = tuple[tuple[str, str], ...]
_OK = "ok"
_ZERO = "empty read as zero"

log = structlog.get_logger(__name__)


class _QueryError(Exception):
    """Why one request produced no usable answer (the ``Unavailable`` reason)."""


class _TokenFile:
    """A bearer token (or header value) file, re-read when its identity, size or mtime
    changes."""

    def __init__(self, path: Path, what: str = "bearer_token_file") -> None:
        self._path = path
        self._what = what
        self._lock = threading.Lock()  # requests of one source run in several threads
        self._key: tuple[int, int, int, int] | None = None
        self._token = ""

    def token(self) -> str:
        path = self._path
        try:
            with self._lock:
                info = os.stat(path)
                key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
                if key != self._key:
                    token = path.read_text(encoding="utf-8").strip()
                    changed = self._key is not None
                    self._key, self._token = key, token
                    if changed:
                        event = (
                            "prometheus_bearer_token_reloaded"
                            if self._what == "bearer_token_file"
                            else "prometheus_header_file_reloaded"
                        )
                        log.info(event, file=str(path))
                token = self._token
        except OSError as error:
            raise _QueryError(
                f"cannot read {self._what} {path}: {error.strerror or error}"
            ) from None
        except UnicodeDecodeError:
            raise _QueryError(f"cannot read {self._what} {path}: not a UTF-8 text file") from None
        if not token:
            raise _QueryError(f"{self._what} {path} is empty")
        return token


class PrometheusSource:
    """Queries one Prometheus server for every trigger that names it.

    Args:
        config: the server's settings (url, credentials, TLS, timeout, headers).
        name: the server's name in the configuration, for log lines.

    A ``bearer_token_file`` beside an ``Authorization`` header is refused by the config
    model, with the key's path, before any source is built.
    """

    def __init__(self, config: PrometheusServerConfig, name: str = "prometheus") -> None:
        self.name = name
        self.server = display_url(config.url)
        self._url = config.url.rstrip("/")
        self._timeout = config.timeout_seconds
        self._headers = {key: value.get_secret_value() for key, value in config.headers.items()}
        self._token = (
            None if config.bearer_token_file is None else _TokenFile(config.bearer_token_file)
        )
        self._header_files = {
            name: _TokenFile(path, f"header_files.{name}")
            for name, path in config.header_files.items()
        }
        self._session = requests.Session()
        # Passed with every request: a Session's own ``verify`` loses to REQUESTS_CA_BUNDLE
        # and CURL_CA_BUNDLE from the environment (psf/requests#3829).
        self._verify: bool | str = True
        if config.insecure_skip_verify:
            self._verify = False
            host = urlsplit(self._url).hostname or ""
            # Asked for: no warning on every request, and only for this host.
            warnings.filterwarnings(
                "ignore",
                message=f"Unverified HTTPS request is being made to host '{re.escape(host)}'",
                category=InsecureRequestWarning,
            )
            if self._url.startswith("https:"):
                log.warning("prometheus_tls_verification_disabled", server=self.server)
        elif config.ca_file is not None:
            self._verify = str(config.ca_file)
        self._states: dict[tuple[str, str], str] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"PrometheusSource({self.name!r}, {self.server!r})"

    # ------------------------------------------------------------------ public

    async def instant(
        self, trigger: PrometheusTrigger, now: float
    ) -> MetricObservation | Unavailable:
        """The trigger's query evaluated now, or why there is no value (see the module's
        table). Never raises (cancellation aside)."""
        try:
            data = await self._request("/api/v1/query", {"query": trigger.query})
            if trigger.on_empty == "zero" and _is_empty_vector(data):
                self._note(trigger, _ZERO)
                return MetricObservation(now, 0.0)
            result = _instant_value(data)
        except _QueryError as failure:
            result = str(failure)
        except Exception as error:  # never into the caller: the poll goes on
            result = f"unexpected error: {type(error).__name__}: {error}"
        if isinstance(result, str):
            self._note(trigger, result)
            return Unavailable(now, f"prometheus {self.server}: {result}")
        self._note(trigger, _OK)
        return MetricObservation(now, result)

    async def history(
        self, query: str, start: float, end: float, step: float
    ) -> tuple[FloatArray, FloatArray] | Unavailable:
        """``query`` evaluated at ``start, start + step, ...`` up to ``end`` (inclusive,
        Unix seconds), asked in chunks, for warm start. Never raises (cancellation aside).

        Returns:
            The times and values of the one series (NaN and infinite points dropped; two
            empty arrays when the query returns nothing), or ``Unavailable`` stamped
            ``end``.
        """
        where = f"prometheus {self.server}"
        try:
            times, values = await self._history(query, start, end, step)
        except _QueryError as failure:
            reason = f"{where}: {failure}"
        except Exception as error:  # never into the caller: start cold instead
            reason = f"{where}: unexpected error: {type(error).__name__}: {error}"
        else:
            log.info(
                "prometheus_history_loaded",
                server=self.server,
                query=one_line(query),
                points=len(times),
            )
            return times, values
        log.warning(
            "prometheus_history_unavailable",
            server=self.server,
            query=one_line(query),
            reason=reason,
        )
        return Unavailable(end, reason)

    async def aclose(self) -> None:
        """Close the connections; later queries return ``Unavailable``. Idempotent."""
        self._closed = True
        self._session.close()

    # ------------------------------------------------------------------ internals

    async def _history(
        self, query: str, start: float, end: float, step: float
    ) -> tuple[FloatArray, FloatArray]:
        for label, value in (("start", start), ("end", end), ("step", step)):
            if not math.isfinite(value):
                raise _QueryError(f"{label} must be a finite number, not {value}")
        start_ms, end_ms, step_ms = to_ms(start), to_ms(end), to_ms(step)
        if step_ms < 1:
            raise _QueryError(f"step must be at least 1 ms, not {step}")
        if end_ms <= start_ms:
            raise _QueryError(
                f"end {iso_from_ms(end_ms)} is not after start {iso_from_ms(start_ms)}"
            )
        series: dict[_Labels, tuple[list[int], list[float]]] = {}
        for first, last in chunks_ms(start_ms, end_ms, step_ms, MAX_POINTS_PER_QUERY):
            params = {
                "query": query,
                "start": seconds_param(first),
                "end": seconds_param(last),
                "step": seconds_param(step_ms),
            }
            try:
                data = await self._request("/api/v1/query_range", params)
            except _QueryError as failure:
                span = f"{iso_from_ms(first)} to {iso_from_ms(last)}"
                raise _QueryError(f"{failure} (range {span})") from None
            _collect_matrix(data, series)
        if len(series) > 1:
            raise _QueryError(_several_series(list(series)))
        times_ms, values = next(iter(series.values()), ([], []))
        return (
            np.array(times_ms, dtype=np.float64) / 1000,
            np.array(values, dtype=np.float64),
        )

    async def _request(self, path: str, params: Mapping[str, str]) -> Any:
        """The ``data`` of one API answer, from a worker thread, within the timeout."""
        if self._closed:
            raise _QueryError("source closed")
        try:
            return await _in_thread(lambda: self._get(path, params), self._timeout)
        except TimeoutError:
            raise _QueryError(f"no answer within {self._timeout:g} s") from None

    def _get(self, path: str, params: Mapping[str, str]) -> Any:
        """One blocking request (runs in a worker thread)."""
        headers = dict(self._headers)
        for name, source in self._header_files.items():
            headers[name] = source.token()
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.token()}"
        try:
            response = self._session.get(
                self._url + path,
                params=dict(params),
                headers=headers,
                verify=self._verify,
                timeout=(self._timeout, self._timeout),
            )
        except (requests.RequestException, OSError) as error:
            raise _QueryError(connection_problem(error, self._url, self._timeout)) from None
        if response.status_code != 200:
            raise _QueryError(http_error(response))
        try:
            body = response.json()
            if body["status"] != "success":
                raise _QueryError(http_error(response))
            return body["data"]
        except (ValueError, KeyError, TypeError):
            raise _QueryError(
                "the answer is not a Prometheus API response (is the url right?)"
            ) from None

    def _note(self, trigger: PrometheusTrigger, state: str) -> None:
        """Log a query's outcome when it differs from the previous poll's."""
        key = (trigger.name or "", trigger.query)
        previous = self._states.get(key)
        if previous == state:
            return
        self._states[key] = state
        fields: dict[str, Any] = {"server": self.server, "query": one_line(trigger.query)}
        if trigger.name:
            fields["trigger"] = trigger.name
        if state == _OK:
            if previous is not None and previous != _ZERO:
                log.info("prometheus_query_recovered", previously=previous, **fields)
        elif state == _ZERO:
            log.info("prometheus_query_empty_read_as_zero", **fields)
        else:
            log.warning("prometheus_query_unavailable", reason=state, **fields)


async def _in_thread(call: Callable[[], _T], timeout: float) -> _T:
    """``call()`` in a worker thread; ``TimeoutError`` after ``timeout`` seconds (the thread
    then ends on its own, bounded by the HTTP client's own timeout)."""
    return await asyncio.wait_for(asyncio.to_thread(call), timeout)


def _instant_value(data: Any) -> float | str:
    """The one finite value of an instant query's ``data``, or the reason there is none."""
    try:
        kind = data["resultType"]
        if kind == "scalar":
            samples: list[tuple[_Labels, Any]] = [((), data["result"][1])]
        elif kind == "vector":
            samples = [(_labels(item["metric"]), item["value"][1]) for item in data["result"]]
        else:
            return f"the query returns a {kind}, not an instant vector or a scalar"
    except (KeyError, TypeError, IndexError, AttributeError):
        return "unexpected answer: not an instant-query result"
    if not samples:
        return "query returned no series (on_empty: unavailable)"
    if len(samples) > 1:
        return _several_series([labels for labels, _ in samples])
    text = samples[0][1]
    try:
        value = float(text)
    except (TypeError, ValueError):
        return f"value {text!r} is not a number"
    if not math.isfinite(value):
        return f"value is {text}"
    return value


def _is_empty_vector(data: Any) -> bool:
    try:
        return data["resultType"] == "vector" and not data["result"]
    except (KeyError, TypeError):
        return False


def _collect_matrix(data: Any, series: dict[_Labels, tuple[list[int], list[float]]]) -> None:
    """Add one chunk's matrix to ``series``, dropping NaN, infinite and non-numeric points."""
    try:
        if data["resultType"] != "matrix":
            raise _QueryError(f"the range query returned a {data['resultType']}, not a matrix")
        for item in data["result"]:
            times_ms, values = series.setdefault(_labels(item["metric"]), ([], []))
            for timestamp, text in item["values"]:
                try:
                    value = float(text)
                except (TypeError, ValueError):
                    continue
                if math.isfinite(value):
                    times_ms.append(to_ms(float(timestamp)))
                    values.append(value)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise _QueryError("unexpected answer: not a range-query matrix") from None


def _labels(metric: Mapping[str, Any]) -> _Labels:
    return tuple(sorted((str(key), str(value)) for key, value in metric.items()))


def _several_series(labels: list[_Labels]) -> str:
    return (
        f"query returned {len(labels)} series; one expected: aggregate it, "
        f"e.g. sum(...) (got {shown_series(labels)})"
    )
