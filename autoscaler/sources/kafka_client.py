"""One set of Kafka connections per configured cluster, shared by every target on it.

``KafkaCluster`` owns an admin client (metadata, group descriptions, committed offsets) and a
group-less consumer (log start and end offsets). It starts them lazily, bounds every request
with a timeout, and after a connection-level failure closes them and waits an exponentially
growing delay before connecting again, so that a broker outage costs one quick
``Unavailable`` per poll rather than a pile of hung requests.

Time comes from the callers (``now``, the same clock the polls use), so backoff is testable.
The SASL password is read once, when the cluster object is built, and never logged.

An outage is logged as a state, not per attempt (``RepeatedFailure``): one warning when it
starts (``kafka_cluster_connection_failed``) or its cause changes (a refused login after a
broker that was down), one every ``summary_seconds`` while it lasts
(``kafka_cluster_still_failing``, for how long and after how many connection attempts),
and one info line when it ends (``kafka_cluster_reconnected``, likewise). Every failure to
connect counts as one state, whatever it said (refused, timed out, node not ready).
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.helpers import create_ssl_context

from autoscaler.config.model import KafkaClusterConfig, SaslConfig, TlsConfig
from autoscaler.observability.repeats import SUMMARY_SECONDS, RepeatedFailure

__all__ = [
    "GroupDescription",
    "KafkaAuthenticationError",
    "KafkaCluster",
    "KafkaConfigError",
    "KafkaUnreachableError",
    "is_connection_failure",
]

_log = structlog.get_logger(__name__)
_T = TypeVar("_T")

Partition = tuple[str, int]
"""A ``(topic, partition)`` pair: our own key, free of aiokafka types."""


class KafkaConfigError(ValueError):
    """The cluster cannot be configured (e.g. the SASL password source is missing)."""


class KafkaAuthenticationError(RuntimeError):
    """The broker refused the SASL login (user, password or mechanism); the message says why."""


class KafkaUnreachableError(RuntimeError):
    """The cluster is in backoff after a connection failure; the message says why."""


@dataclass(frozen=True, slots=True)
class GroupDescription:
    """What DescribeGroups says about a consumer group."""

    state: str
    """``Stable``, ``Empty``, ``Dead`` (Kafka's answer for an unknown group)..."""
    members: int


def is_connection_failure(error: BaseException) -> bool:
    """True for failures that a reconnect may cure (broker down, timeout, coordinator moving);
    False for answers that will not change by retrying (authorization, bad request)."""
    if isinstance(error, TimeoutError | OSError | KafkaUnreachableError):
        return True
    if isinstance(error, KafkaError):
        name = type(error).__name__
        return bool(getattr(error, "retriable", False)) or name == "KafkaTimeoutError"
    return False


def _sasl_refusal(error: BaseException) -> str | None:
    """Why the broker refused the SASL login, if ``error`` says it did; else None."""
    from aiokafka import errors

    if isinstance(
        error,
        errors.SaslAuthenticationFailed
        | errors.AuthenticationFailedError
        | errors.UnsupportedSaslMechanismError
        | errors.IllegalSaslStateError,
    ):
        return _describe(error)
    # aiokafka 0.14's SCRAM client expects "v=<signature>" in the server-final message; an
    # RFC 5802 refusal "e=<reason>" (tansu: e=unknown-user, e=invalid-proof) ends as
    # KeyError('v') raised in ScramAuthenticator.process_server_final_message.
    if isinstance(error, KeyError | ValueError):
        tb = error.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is not None and tb.tb_frame.f_code.co_name.startswith("process_server_"):
            answer = tb.tb_frame.f_locals.get("server_final") or tb.tb_frame.f_locals.get(
                "server_first"
            )
            if isinstance(answer, str) and answer.startswith("e="):
                return f"server answered {answer}"
            return f"unexpected SCRAM answer ({_describe(error)})"
    return None


def _read_password(sasl: SaslConfig) -> str:
    if sasl.password_env is not None:
        value = os.environ.get(sasl.password_env)
        if value is None:
            raise KafkaConfigError(
                f"sasl.password_env: environment variable {sasl.password_env} is not set"
            )
        return value
    assert sasl.password_file is not None  # the config model enforces one source
    try:
        return sasl.password_file.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as error:
        raise KafkaConfigError(
            f"sasl.password_file: cannot read {sasl.password_file}: {error.strerror}"
        ) from None


def _ssl_context(tls: TlsConfig | None) -> ssl.SSLContext:
    if tls is None:
        default: ssl.SSLContext = create_ssl_context()
        return default
    context: ssl.SSLContext = create_ssl_context(
        cafile=tls.ca_file, certfile=tls.cert_file, keyfile=tls.key_file
    )
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class KafkaCluster:
    """The connections to one Kafka cluster.

    Args:
        name: the cluster's name in the configuration (for logs and reasons).
        config: how to reach it.
        backoff_initial: seconds to wait before the first reconnect after a failure.
        backoff_max: the longest wait between reconnects.
        backoff_factor: growth of the wait after each further failure.
        summary_seconds: how often an outage that lasts is logged again.

    The SASL password is read at each connect, not here: a missing or unreadable password
    is a failed connection (polls answer ``Unavailable`` with the reason and retry with
    backoff), so one cluster's missing Secret never stops the others' targets.
    """

    def __init__(
        self,
        name: str,
        config: KafkaClusterConfig,
        *,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        backoff_factor: float = 2.0,
        summary_seconds: float = SUMMARY_SECONDS,
    ) -> None:
        self.name = name
        self.config = config
        self._timeout = config.request_timeout_seconds
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._backoff_factor = backoff_factor
        self._admin: Any = None
        self._consumer: Any = None
        self._lock = asyncio.Lock()
        self._failures = 0
        self._retry_at: float | None = None
        self._last_error: str | None = None
        self._outage = RepeatedFailure(summary_seconds)
        self._fetch_all_offsets_works = True
        """False once OffsetFetch for "all partitions" failed where the explicit form worked."""

    # ------------------------------------------------------------------ lifecycle

    def _client_options(self) -> dict[str, Any]:
        config = self.config
        options: dict[str, Any] = {
            "bootstrap_servers": list(config.bootstrap_servers),
            "client_id": config.client_id,
            "request_timeout_ms": int(config.request_timeout_seconds * 1000),
            "security_protocol": config.security_protocol,
        }
        if config.security_protocol in ("SSL", "SASL_SSL"):
            options["ssl_context"] = _ssl_context(config.tls)
        if config.sasl is not None:
            options["sasl_mechanism"] = config.sasl.mechanism
            options["sasl_plain_username"] = config.sasl.username
            # Read at every connect: a rotated Secret is picked up on reconnection, and a
            # Secret mounted later ends the outage without a restart.
            options["sasl_plain_password"] = _read_password(config.sasl)
        return options

    async def _connect(self, now: float) -> None:
        """Start the clients unless they run, or we are waiting out a backoff."""
        async with self._lock:
            if self._admin is not None:
                return
            if self._retry_at is not None and now < self._retry_at:
                if self._last_error and self._last_error.startswith("KafkaAuthenticationError: "):
                    raise KafkaAuthenticationError(
                        self._last_error.removeprefix("KafkaAuthenticationError: ")
                    )
                raise KafkaUnreachableError(
                    f"kafka cluster '{self.name}' unreachable: {self._last_error}"
                )
            try:
                options = self._client_options()
            except (KafkaConfigError, OSError, ssl.SSLError) as error:
                self._record_failure(now, error)
                raise
            admin = AIOKafkaAdminClient(**options)
            consumer = AIOKafkaConsumer(enable_auto_commit=False, **options)
            try:
                await self._timed(admin.start(), "connecting (admin client)")
                await self._timed(consumer.start(), "connecting (consumer)")
            except BaseException as error:
                await _close_quietly(admin, consumer, self._timeout)
                if not isinstance(error, Exception):
                    raise
                refusal = _sasl_refusal(error) if self.config.sasl is not None else None
                if refusal is None:
                    self._record_failure(now, error)
                    raise
                sasl = self.config.sasl
                assert sasl is not None
                refused = KafkaAuthenticationError(
                    f"kafka cluster '{self.name}': SASL authentication failed "
                    f"({sasl.mechanism}, user '{sasl.username}'): {refusal}"
                )
                self._record_failure(now, refused)
                raise refused from None
            self._admin, self._consumer = admin, consumer
            ended = self._outage.recovered(now)
            if ended is not None:
                _, attempts, seconds = ended
                _log.info(
                    "kafka_cluster_reconnected",
                    cluster=self.name,
                    after_seconds=round(seconds),
                    failed_attempts=attempts,
                    last_error=self._last_error,
                )
            self._failures = 0
            self._retry_at = None
            self._last_error = None

    def _record_failure(self, now: float, error: BaseException) -> None:
        described = _describe(error)
        delay = min(self._backoff_max, self._backoff_initial * self._backoff_factor**self._failures)
        state = "unreachable" if is_connection_failure(error) else described
        how = self._outage.failed(state, now)
        if how == "new":
            _log.warning(
                "kafka_cluster_connection_failed",
                cluster=self.name,
                error=described,
                retry_in_seconds=round(delay, 3),
            )
        elif how == "summary":
            _log.warning(
                "kafka_cluster_still_failing",
                cluster=self.name,
                error=described,
                for_seconds=round(now - self._outage.since),
                failed_attempts=self._outage.count,
                retry_in_seconds=round(delay, 3),
            )
        else:
            _log.debug("kafka_cluster_reconnect_failed", cluster=self.name, error=described)
        self._failures += 1
        self._retry_at = now + delay
        self._last_error = described

    async def connection_failed(self, now: float, error: BaseException) -> None:
        """Close the clients after a connection-level failure; the next use after the
        backoff reconnects."""
        async with self._lock:
            if self._admin is None and self._retry_at is not None:
                return  # already recorded (another target on this cluster saw it first)
            admin, consumer, self._admin, self._consumer = self._admin, self._consumer, None, None
            self._record_failure(now, error)
        await _close_quietly(admin, consumer, self._timeout)

    async def close(self) -> None:
        """Close the clients; safe to call twice, never raises."""
        async with self._lock:
            admin, consumer, self._admin, self._consumer = self._admin, self._consumer, None, None
        await _close_quietly(admin, consumer, self._timeout)

    async def _timed(self, awaitable: Awaitable[_T], what: str) -> _T:
        try:
            return await asyncio.wait_for(awaitable, self._timeout)
        except TimeoutError:
            raise TimeoutError(f"{what} timed out after {self._timeout:g} s") from None

    # ------------------------------------------------------------------ requests

    async def topic_partitions(self, now: float) -> dict[str, int]:
        """Every non-internal topic and its partition count. Asks for *all* topics: a
        Metadata request naming a topic may create it on brokers with auto-creation on."""
        await self._connect(now)
        topics = await self._timed(self._admin.describe_topics(), "listing topics")
        counts: dict[str, int] = {}
        for topic in topics:
            if topic.get("is_internal") or topic.get("error_code", 0) != 0:
                continue
            counts[topic["topic"]] = len(topic["partitions"])
        return counts

    async def describe_group(self, now: float, group: str) -> GroupDescription:
        await self._connect(now)
        responses = await self._timed(
            self._admin.describe_consumer_groups([group]), f"describing group '{group}'"
        )
        for response in responses:
            for described in response.to_object()["groups"]:
                if described["group"] != group:
                    continue
                if described["error_code"] != 0:
                    raise _kafka_error(described["error_code"], f"describing group '{group}'")
                return GroupDescription(described["state"], len(described["members"]))
        return GroupDescription("Dead", 0)

    async def committed_offsets(
        self, now: float, group: str, partitions: Sequence[Partition] | None
    ) -> dict[Partition, int | None]:
        """The group's committed offsets (``None``: no commit). ``partitions=None``: every
        partition the group committed to."""
        await self._connect(now)
        if partitions is None and self._fetch_all_offsets_works:
            try:
                return await self._fetch_committed(group, None)
            except Exception as error:
                # Some Kafka-protocol brokers cannot answer OffsetFetch for "all partitions";
                # asking for every partition of every topic is valid everywhere, only larger.
                fallback = await self._fetch_all_by_topics(now, group, error)
                self._fetch_all_offsets_works = False
                _log.info("kafka_offset_fetch_all_unsupported", cluster=self.name)
                return fallback
        if partitions is None:
            return await self._fetch_all_by_topics(now, group, None)
        return await self._fetch_committed(group, partitions)

    async def _fetch_all_by_topics(
        self, now: float, group: str, first_error: Exception | None
    ) -> dict[Partition, int | None]:
        try:
            counts = await self.topic_partitions(now)
            every = [(topic, p) for topic, count in counts.items() for p in range(count)]
            found = await self._fetch_committed(group, every) if every else {}
        except Exception:
            if first_error is not None:
                raise first_error from None
            raise
        return {tp: offset for tp, offset in found.items() if offset is not None}

    async def _fetch_committed(
        self, group: str, partitions: Sequence[Partition] | None
    ) -> dict[Partition, int | None]:
        request = None if partitions is None else [TopicPartition(t, p) for t, p in partitions]
        answer: Mapping[Any, Any] = await self._timed(
            self._admin.list_consumer_group_offsets(group, partitions=request),
            f"fetching committed offsets of group '{group}'",
        )
        result: dict[Partition, int | None] = dict.fromkeys(partitions or ())
        for tp, meta in answer.items():
            result[(tp.topic, tp.partition)] = meta.offset if meta.offset >= 0 else None
        return result

    async def end_offsets(
        self, now: float, partitions: Sequence[Partition]
    ) -> dict[Partition, int]:
        """Log end offsets (high watermarks)."""
        await self._connect(now)
        return await self._list_offsets(self._consumer.end_offsets, partitions, "end offsets")

    async def start_offsets(
        self, now: float, partitions: Sequence[Partition]
    ) -> dict[Partition, int]:
        """Log start offsets (the earliest offset still held)."""
        await self._connect(now)
        return await self._list_offsets(
            self._consumer.beginning_offsets, partitions, "log start offsets"
        )

    async def _list_offsets(
        self, method: Any, partitions: Sequence[Partition], what: str
    ) -> dict[Partition, int]:
        if not partitions:
            return {}
        answer: Mapping[Any, int] = await self._timed(
            method([TopicPartition(t, p) for t, p in partitions]), f"fetching {what}"
        )
        return {(tp.topic, tp.partition): int(offset) for tp, offset in answer.items()}


def _kafka_error(code: int, what: str) -> KafkaError:
    from aiokafka.errors import for_code

    error_type = for_code(code)
    error: KafkaError = error_type(f"{what}: error code {code}")
    return error


def _describe(error: BaseException) -> str:
    text = str(error)
    name = type(error).__name__
    if not text:
        return name
    return text if text.startswith(name) else f"{name}: {text}"


async def _close_quietly(admin: Any, consumer: Any, timeout: float) -> None:
    for client, method in ((consumer, "stop"), (admin, "close")):
        if client is None:
            continue
        try:
            await asyncio.wait_for(getattr(client, method)(), timeout)
        except Exception as error:  # closing a broken client: nothing more to do
            _log.debug("kafka_client_close_failed", error=_describe(error))
