"""Logging: JSON lines a pipeline can parse, every line of a target's task carrying its name."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import structlog

from autoscaler.logs import LogFormat, configure_logging

LIBRARIES = ("aiokafka", "kubernetes_asyncio")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Logging is process-global: put back what the test changed."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    library_levels = {name: logging.getLogger(name).level for name in LIBRARIES}
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    for name, library_level in library_levels.items():
        logging.getLogger(name).setLevel(library_level)
    logging.captureWarnings(False)


def _json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.parametrize(
    "log_format", [pytest.param("json", id="json"), pytest.param("auto", id="auto-not-a-tty")]
)
def test_json_lines_carry_the_bound_target(log_format: LogFormat) -> None:
    stream = io.StringIO()
    configure_logging(log_format, "info", stream=stream)
    log = structlog.get_logger("autoscaler.test")

    with structlog.contextvars.bound_contextvars(target="orders-consumer"):
        log.info("scaling_decision", current=3, desired=5, reason="ScaleUpLimit")
    log.warning("no_target_bound")

    first, second = _json_lines(stream)
    assert list(first)[:3] == ["timestamp", "level", "event"]
    assert first["event"] == "scaling_decision"
    assert first["level"] == "info"
    assert first["target"] == "orders-consumer"
    assert (first["current"], first["desired"], first["reason"]) == (3, 5, "ScaleUpLimit")
    assert datetime.fromisoformat(first["timestamp"]).tzinfo is not None
    assert second["event"] == "no_target_bound"
    assert "target" not in second


def test_libraries_logs_use_the_same_renderer_at_warning() -> None:
    stream = io.StringIO()
    configure_logging("json", "debug", stream=stream)

    with structlog.contextvars.bound_contextvars(target="orders-consumer"):
        logging.getLogger("aiokafka.conn").info("connected to %s", "kafka-0")
        logging.getLogger("kubernetes_asyncio.client").warning("retrying %s", "PATCH")

    (line,) = _json_lines(stream)
    assert line["event"] == "retrying PATCH"
    assert line["level"] == "warning"
    assert line["logger"] == "kubernetes_asyncio.client"
    assert line["target"] == "orders-consumer"


def _library_record(name: str, msg: str, args: tuple[object, ...], at: float) -> None:
    """A record logged by library logger ``name`` at wall-clock time ``at``."""
    record = logging.getLogger(name).makeRecord(name, logging.ERROR, "x.py", 1, msg, args, None)
    record.created = at
    logging.getLogger(name).handle(record)


def test_a_librarys_repeated_errors_are_held_back_and_counted() -> None:
    """aiokafka logs each failed connection attempt at ERROR: during an outage, the first
    of each message passes, then one every 5 minutes with how many were held back, and a
    message quiet for 5 minutes passes again at its next occurrence (a new outage)."""
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    refused = "Unable connect to node with id %s: %s"
    for second in range(0, 600, 10):  # every 10 s for 10 minutes, two brokers
        _library_record("aiokafka", refused, (1, "Connect call failed"), 1000.0 + second)
        _library_record("aiokafka", refused, (2, "Connect call failed"), 1000.0 + second)
        _library_record("aiokafka", "Unable to update metadata from %s", ([1, 2],), 1000.0 + second)
    _library_record("aiokafka", refused, (1, "Connect call failed"), 1000.0 + 600 + 300)
    structlog.get_logger("autoscaler.test").error("ours is never held back")
    structlog.get_logger("autoscaler.test").error("ours is never held back")
    _library_record("kubernetes_asyncio.client", "retrying %s", ("PATCH",), 1000.0)
    _library_record("kubernetes_asyncio.client", "retrying %s", ("PATCH",), 1001.0)

    events = [line["event"] for line in _json_lines(stream)]
    assert events == [
        "Unable connect to node with id 1: Connect call failed",
        "Unable to update metadata from [1, 2]",
        "Unable connect to node with id 1: Connect call failed "
        "(and 59 more like it in the last 300 s)",
        "Unable to update metadata from [1, 2] (and 29 more like it in the last 300 s)",
        "Unable connect to node with id 1: Connect call failed",  # after 5 quiet minutes
        "ours is never held back",
        "ours is never held back",
        "retrying PATCH",  # only the libraries that log every retry are held back
        "retrying PATCH",
    ]


def test_level_filters_our_lines() -> None:
    stream = io.StringIO()
    configure_logging("json", "warning", stream=stream)
    log = structlog.get_logger("autoscaler.test")

    log.info("dropped")
    log.error("kept")

    assert [line["event"] for line in _json_lines(stream)] == ["kept"]


def test_exceptions_are_one_json_line() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    try:
        raise RuntimeError("broker gone")
    except RuntimeError:
        structlog.get_logger("autoscaler.test").exception("poll_failed")

    (line,) = _json_lines(stream)
    assert line["event"] == "poll_failed"
    assert "RuntimeError: broker gone" in line["exception"]


def test_configuring_twice_writes_each_line_once() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("json", "info", stream=first)
    configure_logging("json", "info", stream=second)

    structlog.get_logger("autoscaler.test").info("once")
    logging.getLogger("aiokafka").warning("once too")

    assert first.getvalue() == ""
    assert [line["event"] for line in _json_lines(second)] == ["once", "once too"]


def test_console_renders_for_people() -> None:
    stream = io.StringIO()
    configure_logging("console", "info", stream=stream)

    with structlog.contextvars.bound_contextvars(target="orders-consumer"):
        structlog.get_logger("autoscaler.test").info("scaling_decision", desired=5)

    (line,) = stream.getvalue().splitlines()
    assert "scaling_decision" in line
    assert "target=orders-consumer" in line
    assert "desired=5" in line
    assert "\x1b[" not in line  # no colour codes when the stream is not a terminal
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_unknown_level() -> None:
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        configure_logging("json", "loud", stream=io.StringIO())


def test_each_decision_is_one_json_line_with_its_target_inputs_and_reason() -> None:
    from helpers import make_target, step

    from autoscaler.decision import KafkaLagObservation, Unavailable
    from autoscaler.observability.decision_log import log_decision, missing_data

    stream = io.StringIO()
    configure_logging("json", "info", stream)
    target = make_target()
    decision, _ = step(target, 2, {"kafka_lag": KafkaLagObservation(1000.0, 900, 8)})
    log_decision("orders", decision, dry_run=True)
    missing, _ = step(target, 2, {"kafka_lag": Unavailable(1000.0, "broker down")})
    log_decision("orders", missing, dry_run=False)
    # The poll after: the same trigger still without data is still logged, at info.
    log_decision("orders", missing, dry_run=False, missing_before=missing_data(missing))
    first, second, third = _json_lines(stream)
    assert first["event"] == "scaling_decision"
    assert first["target"] == "orders"
    assert first["level"] == "info"
    assert (first["current_replicas"], first["desired_replicas"]) == (2, 6)
    assert first["reason"] == "ScaleUpLimit"
    assert first["triggers"][0]["detail"].startswith("lag 900 / lag_threshold 100")
    assert first["dry_run"] is True
    assert second["level"] == "warning"
    assert second["reason"] == "MissingData"
    assert "broker down" in second["triggers"][0]["detail"]
    assert (third["level"], third["reason"]) == ("info", "MissingData")
