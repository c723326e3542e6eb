"""Structured logging: one configuration for our structlog lines and the libraries' stdlib ones.

In a cluster, logs are JSON lines (``timestamp``, ``level``, ``event`` and fields) that a log
pipeline can index; at a terminal they are rendered for people. Each target runs in its own
task that binds ``structlog.contextvars.bound_contextvars(target=name)``, so every line that
task writes, down to the shared decision and source code, says which target it is about
without passing a logger around.

Libraries (aiokafka, kubernetes_asyncio) log through the standard library; their records go
through the same renderer, so that a broker warning is a JSON line like any other, and are
held at WARNING because their INFO chatter (every connection, every rebalance) drowns ours.
aiokafka also logs every failed connection attempt at ERROR (its clients retry metadata
every 100 ms): during a broker outage the same few messages repeat for as long as it lasts.
Its repeats are held back (:class:`LibraryRepeats`): the first of each message passes, then
one every few minutes saying how many were held back. The outage itself is told by our own
lines (``kafka_cluster_connection_failed``, ``kafka_cluster_still_failing``,
``kafka_cluster_reconnected``).
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

import structlog
from structlog.typing import Processor

from autoscaler.observability.repeats import SUMMARY_SECONDS

LogFormat = Literal["auto", "json", "console"]

_LIBRARIES = ("aiokafka", "kafka", "kubernetes_asyncio", "urllib3", "asyncio")
_REPEATING_LIBRARIES = ("aiokafka", "kafka")
"""Libraries that log each retry of a failure: their repeats are held back."""

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


class LibraryRepeats(logging.Filter):
    """Holds back a library's repeated messages: the first passes, then one per
    ``summary_seconds`` while they go on, saying how many were held back since the last.

    A message is its logger and its text before formatting (aiokafka's ``"Unable connect to
    node with id %s: %s"``): one cause, whatever node and error fill it in. Once a message
    has not been seen for ``summary_seconds``, its next occurrence passes as a first one
    (a new outage). Only the loggers named in ``libraries`` are held back; time is the
    record's own (``created``).
    """

    def __init__(
        self, libraries: tuple[str, ...], summary_seconds: float = SUMMARY_SECONDS
    ) -> None:
        super().__init__()
        self.libraries = libraries
        self.summary_seconds = summary_seconds
        self._seen: dict[tuple[str, str], tuple[float, float, int]] = {}
        """Per message: when it last passed, when it was last seen, how many held back."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.split(".", 1)[0] not in self.libraries:
            return True
        key = (record.name, str(record.msg))
        now = record.created
        passed, seen, held = self._seen.get(key, (now, now, 0))
        if key not in self._seen or now - seen >= self.summary_seconds:
            self._seen[key] = (now, now, 0)
            return True
        if now - passed < self.summary_seconds:
            self._seen[key] = (passed, now, held + 1)
            return False
        self._seen[key] = (now, now, 0)
        record.msg = (
            f"{record.getMessage()} (and {held} more like it in the last {now - passed:.0f} s)"
        )
        record.args = ()
        return True


class _Handler(logging.StreamHandler[TextIO]):
    """Our root handler, a class of its own so a second configure call can find and replace it
    rather than add a second one (which would write every line twice)."""


def _level(level: str) -> int:
    try:
        return _LEVELS[level.lower()]
    except KeyError:
        known = ", ".join(_LEVELS)
        raise ValueError(f"unknown log level {level!r} (known: {known})") from None


def _leading_fields(
    logger: object, method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """Put ``timestamp``, ``level`` and ``event`` first: JSON lines are read by people too."""
    lead = {key: event.pop(key) for key in ("timestamp", "level", "event") if key in event}
    return {**lead, **event}


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except ValueError:  # a closed stream
        return False


def configure_logging(
    format: LogFormat = "auto",
    level: str = "info",
    stream: TextIO | None = None,
) -> None:
    """Configure structlog and the standard library's root logger; safe to call again.

    Args:
        format: ``json`` for JSON lines, ``console`` for people, ``auto`` for JSON unless
            ``stream`` is a terminal.
        level: the lowest level written (``debug``... ``critical``), for our own loggers;
            libraries stay at WARNING or above.
        stream: where lines go; the current ``sys.stdout`` by default, where container
            runtimes collect them.

    Raises:
        ValueError: for an unknown level.
    """
    threshold = _level(level)
    output: TextIO = stream if stream is not None else sys.stdout
    tty = _is_tty(output)
    as_json = format == "json" or (format == "auto" and not tty)

    # Applied to every event, ours and the libraries' alike, before rendering.
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: Processor
    if as_json:
        renderer = structlog.processors.JSONRenderer()
        shared += [structlog.processors.format_exc_info, _leading_fields]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=tty)

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = _Handler(output)
    handler.setFormatter(formatter)
    handler.addFilter(LibraryRepeats(_REPEATING_LIBRARIES))

    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(threshold)
    for name in _LIBRARIES:
        logging.getLogger(name).setLevel(max(threshold, logging.WARNING))
    logging.captureWarnings(True)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: a module-level ``log = structlog.get_logger()`` must follow a later
        # reconfiguration (tests, or the config file's level once it is read).
        cache_logger_on_first_use=False,
    )
