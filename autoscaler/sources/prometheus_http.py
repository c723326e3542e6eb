"""Pieces shared by every client of the Prometheus HTTP API (replay's range fetch and the
live source): exact millisecond chunking of range queries, and one-line error messages.

Messages name what went wrong in the user's terms (``HTTP 400: bad_data: <Prometheus's own
message>``, ``cannot connect: connection refused``, ``no answer within 10 s``) and never
show a header value, a token, or credentials embedded in the URL (``display_url``).
No I/O happens here: these functions read responses and exceptions handed to them.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "MAX_POINTS_PER_QUERY",
    "SHOWN_SERIES",
    "chunks_ms",
    "connection_problem",
    "display_url",
    "http_error",
    "iso_from_ms",
    "one_line",
    "seconds_param",
    "series_text",
    "shown_series",
    "to_ms",
]

MAX_POINTS_PER_QUERY = 10_000
"""Evaluation times per query: below Prometheus's limit of 11,000 points per series."""


# --------------------------------------------------------------------------- chunks


def chunks_ms(
    start_ms: int, end_ms: int, step_ms: int, max_points: int
) -> Iterator[tuple[int, int]]:
    if step_ms < 1 or max_points < 1:
        raise ValueError("step must be at least 1 ms and max_points at least 1")
    points = (end_ms - start_ms) // step_ms + 1
    for first in range(0, max(points, 0), max_points):
        last = min(first + max_points, points) - 1
        yield start_ms + first * step_ms, start_ms + last * step_ms


def to_ms(seconds: float) -> int:
    return round(seconds * 1000)


def seconds_param(milliseconds: int) -> str:
    """Exact decimal seconds for the API (no float formatting on the way)."""
    sign = "-" if milliseconds < 0 else ""
    whole, fraction = divmod(abs(milliseconds), 1000)
    return f"{sign}{whole}.{fraction:03d}"


# --------------------------------------------------------------------------- messages


def http_error(response: Any) -> str:
    """``HTTP 400: bad_data: <Prometheus's message>``, or the start of a non-JSON body."""
    status = f"HTTP {response.status_code}"
    try:
        body = response.json()
        kind, message = body.get("errorType"), body.get("error")
    except (ValueError, AttributeError):
        kind = message = None
    if message:
        return " ".join(f"{status}: {kind + ': ' if kind else ''}{message}".split())
    text = " ".join(str(response.text).split())
    if not text:
        text = str(response.reason or "no message")
    return f"{status}: {text[:200]}{'...' if len(text) > 200 else ''}"


def connection_problem(error: BaseException, url: str, timeout_seconds: float) -> str:
    """Why the server could not be asked, from the most telling error it wraps. (urllib3's
    connection errors subclass its connect-timeout error: only the socket's own timeout
    means a timeout.)"""
    causes = list(_causes(error))

    def first(kind: type[BaseException]) -> BaseException | None:
        return next((cause for cause in causes if isinstance(cause, kind)), None)

    if isinstance(cert := first(ssl.SSLCertVerificationError), ssl.SSLCertVerificationError):
        reason = cert.verify_message or "certificate verify failed"
        return f"TLS: {reason} (set ca_file, or insecure_skip_verify)"
    if isinstance(tls := first(ssl.SSLError), ssl.SSLError):
        reason = str(tls.reason or tls).lower().replace("_", " ")
        hint = " (does the server speak plain http?)" if "wrong version" in reason else ""
        return f"TLS: {reason}{hint}"
    if isinstance(dns := first(socket.gaierror), socket.gaierror):
        return f"cannot resolve host {urlsplit(url).hostname} ({dns.strerror})"
    if first(ConnectionRefusedError) is not None:
        return "cannot connect: connection refused"
    if first(TimeoutError) is not None:
        return f"no answer within {timeout_seconds:g} s"
    for cause in reversed(causes):
        if isinstance(cause, OSError) and cause.strerror:
            return f"cannot connect: {cause.strerror.lower()}"
    return f"cannot connect: {type(error).__name__}"


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and everything it wraps: causes, contexts, urllib3's ``reason`` and
    exceptions passed as arguments (requests wraps urllib3 that way)."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            pending.append(reason)
        pending.extend(c for c in (current.__cause__, current.__context__) if c is not None)


def display_url(url: str) -> str:
    """The url without credentials, query string or fragment (they may hold secrets)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{host}:{parts.port}" if parts.port is not None else host
    except ValueError:
        return "<invalid url>"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


SHOWN_SERIES = 3
"""Label sets quoted when a query returns several series."""


def one_line(text: str) -> str:
    """A query (or message) on one line, for log lines and error reasons."""
    return " ".join(text.split())


def shown_series(labels: list[tuple[tuple[str, str], ...]]) -> str:
    """The first few label sets of a multi-series answer, for an error message."""
    shown = ", ".join(series_text(one) for one in labels[:SHOWN_SERIES])
    return shown + (", ..." if len(labels) > SHOWN_SERIES else "")


def series_text(labels: tuple[tuple[str, str], ...]) -> str:
    metric = dict(labels)
    name = metric.pop("__name__", "")
    inner = ", ".join(f'{key}="{value}"' for key, value in metric.items())
    return f"{name}{{{inner}}}"


def iso_from_ms(milliseconds: int) -> str:
    moment = datetime.fromtimestamp(milliseconds / 1000, tz=UTC)
    if milliseconds % 1000:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
