"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics.

Only the holder of the Lease patches replicas, so two replicas of the autoscaler never fight
over a workload. As in client-go (``tools/leaderelection``):

* a candidate reads the Lease and creates it when missing; it takes the Lease over only when
  the holder is empty (released) or the record has not changed for ``leaseDurationSeconds``
  *as measured on our own clock* since we last saw it change (no trust in other clocks);
  a takeover increments ``leaseTransitions``;
* the leader renews every ``retry_period``; every write carries the ``resourceVersion`` it
  read, so of two racing candidates one gets 409 and stays a follower;
* a leader that could not renew for ``renew_deadline`` steps down (``is_leader`` False)
  before anyone else may take over (``renew_deadline < lease_duration``);
* on stop the leader releases the Lease (empty ``holderIdentity``) so another candidate
  takes over at its next retry instead of waiting for expiry.

Two bounds go beyond client-go, because a fail-over is minutes of nobody scaling:

* **take-over after a crash**: a follower reads the Lease every ``retry_period`` (jittered
  by at most 20%, not client-go's 120%: with a handful of candidates the jitter only has to
  break ties, and 409 settles any race), and once it has seen the holder's last renewal it
  wakes exactly when that record expires. A leader killed with ``kill -9`` is replaced at
  most ``lease_duration + 1.2 x retry_period`` (plus one request) after its last renewal;
* **our own Lease after an outage**: a leader that stepped down because the API server was
  away takes its Lease straight back when the server returns, if the Lease is still exactly
  the record it last wrote (same holder, same ``resourceVersion``: nobody else can have
  held it since). The write carries that version, so a candidate racing it gets 409. It
  does not wait out a lease it never lost.

All scheduling uses the event loop's clock; ``renewTime``/``acquireTime`` are written as
RFC3339 MicroTime strings (wall clock, for humans and other clients), as the real API does.
API errors never end ``run()``: they are logged and retried.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import secrets
import socket
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from autoscaler.config.model import LeaderElectionConfig
from autoscaler.live.lease_records import LeaseRecord, lease_record, micro_time, sleep_or_stop
from autoscaler.observability.repeats import RepeatedFailure

__all__ = ["SERVICE_ACCOUNT_NAMESPACE", "LeaderElector", "default_identity", "lease_namespace"]

_log = structlog.get_logger(__name__)

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
_JITTER_FACTOR = 0.2
"""How much a follower's retry period is stretched at random (client-go uses 1.2): enough to
keep candidates from reading in lock step, small enough to bound the take-over."""
_WAKE_AFTER_EXPIRY = 0.01
"""Seconds past the expiry a follower wakes at, so that the loop's clock has passed it."""


def default_identity() -> str:
    """The pod name (``HOSTNAME``) plus a random suffix: unique even across restarts."""
    host = os.environ.get("HOSTNAME") or socket.gethostname() or "autoscaler"
    return f"{host}_{secrets.token_hex(4)}"


_VERBS = (("read_", "get"), ("create_", "create"), ("replace_", "update"), ("patch_", "patch"))
"""The Kubernetes verb of each client method the elector calls (what RBAC grants)."""


def lease_namespace(configured: str | None, path: Path = SERVICE_ACCOUNT_NAMESPACE) -> str:
    """The configured namespace, else the pod's (service account file), else ``default``
    (said once in the log: outside a pod, a Lease in ``default`` is rarely what was meant)."""
    if configured:
        return configured
    try:
        namespace = path.read_text().strip()
    except OSError:
        namespace = ""
    if not namespace:
        _log.warning(
            "lease_namespace_defaulted",
            namespace="default",
            why=f"no leader_election.lease_namespace and no {path} (not in a pod)",
        )
        return "default"
    return namespace


class LeaderElector:
    """Campaigns for a Lease until ``stop`` is set; ``is_leader`` says whether we hold it.

    Wait for changes with ``wait_changed()`` / ``wait_for(leader=...)``, or use ``leading``,
    an ``asyncio.Event`` set exactly while this process leads.

    Args:
        api_client: a kubernetes-asyncio ``ApiClient`` (not closed here).
        config: lease name, namespace and timings.
        identity: defaults to ``default_identity()``.
        namespace: overrides ``config.lease_namespace`` (else the pod's namespace).
        request_timeout_seconds: upper bound for one API call (also bounded by the renew
            deadline while leading).
    """

    def __init__(
        self,
        api_client: Any,
        config: LeaderElectionConfig,
        *,
        identity: str | None = None,
        namespace: str | None = None,
        request_timeout_seconds: float = 10.0,
    ) -> None:
        self._api = k8s.CoordinationV1Api(api_client)
        self._config = config
        self.identity = identity or default_identity()
        self.name = config.lease_name
        self.namespace = namespace or lease_namespace(config.lease_namespace)
        self._outage = RepeatedFailure()
        self._timeout = request_timeout_seconds
        self._lease_seconds = max(1, math.ceil(config.lease_duration_seconds))
        self._is_leader = False
        self.leading = asyncio.Event()
        self._changed = asyncio.Event()
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        self._expires_at: float | None = None
        self._written: LeaseRecord | None = None
        """The record our last successful write produced: while the Lease still equals it,
        nobody else has held the Lease since."""
        self._last_renew = 0.0

    # ------------------------------------------------------------------ state

    @property
    def is_leader(self) -> bool:
        return self._is_leader

    async def wait_changed(self) -> bool:
        """Wait for the next change of ``is_leader``; return the new value."""
        await self._changed.wait()
        return self._is_leader

    async def wait_for(self, *, leader: bool = True) -> None:
        """Return once ``is_leader == leader`` (at once if it already is)."""
        while self._is_leader != leader:
            await self.wait_changed()

    def _set_leader(self, value: bool, reason: str) -> None:
        if value == self._is_leader:
            return
        self._is_leader = value
        if value:
            self.leading.set()
            _log.info("leader_elected", lease=self.name, namespace=self.namespace, **self._ids())
        else:
            self.leading.clear()
            log = _log.info if reason == "stopped" else _log.warning
            log(
                "leader_lost",
                lease=self.name,
                namespace=self.namespace,
                reason=reason,
                **self._ids(),
            )
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _ids(self) -> dict[str, str]:
        return {"identity": self.identity}

    # ------------------------------------------------------------------ loop

    async def run(self, stop: asyncio.Event) -> None:
        """Acquire, then renew; step down when renewal fails for the renew deadline.

        Returns after ``stop`` is set, having released the Lease if it held it.
        """
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                if not self._is_leader:
                    if await self._attempt(loop.time()):
                        self._set_leader(True, "acquired")
                        delay = self._config.retry_period_seconds
                    else:
                        delay = self._follower_delay(loop.time())
                else:
                    started = loop.time()
                    renewed = await self._attempt(started)
                    if not renewed and loop.time() - self._last_renew >= self._deadline():
                        self._step_down("renew_deadline_exceeded")
                    delay = self._config.retry_period_seconds
                    if self._is_leader:
                        # never sleep past the deadline: step down on time even when idle
                        remaining = self._last_renew + self._deadline() - loop.time()
                        delay = max(0.0, min(delay, remaining))
                await sleep_or_stop(stop, delay)
        finally:
            if self._is_leader:
                self._set_leader(False, "stopped")
                await self._release()

    def _deadline(self) -> float:
        return self._config.renew_deadline_seconds

    def _follower_delay(self, now: float) -> float:
        """The retry period, jittered; or less, to try right when the holder's record
        expires (a take-over then waits no extra retry period)."""
        delay = self._config.retry_period_seconds * (1 + random.random() * _JITTER_FACTOR)
        if self._expires_at is not None:
            until = self._expires_at - now
            if 0 < until < delay:
                delay = until + _WAKE_AFTER_EXPIRY
        return delay

    def _step_down(self, reason: str) -> None:
        # What we wrote may still be read as ours: forget it, and wait like any candidate
        # for the record to expire before taking the Lease again.
        self._observed = None
        self._set_leader(False, reason)

    def _answered(self, now: float) -> None:
        """The API server answered: an outage, if there was one, is over (said once)."""
        ended = self._outage.recovered(now)
        if ended is not None:
            _log.info(
                "lease_api_available_again",
                lease=self.name,
                after_seconds=round(ended[2]),
                attempts_failed=ended[1],
                **self._ids(),
            )

    async def _attempt(self, now: float) -> bool:
        """One tryAcquireOrRenew; API errors are logged and count as a failed attempt."""
        try:
            result = await self._try_acquire_or_renew(now)
        except asyncio.CancelledError:
            raise
        except ApiException as exc:
            self._answered(now)  # the server answered: it is reachable again
            level = "info" if exc.status == 409 else "warning"
            verb = getattr(self, "_verb", "?")
            request = f"{verb} leases.coordination.k8s.io/{self.name} in namespace {self.namespace}"
            error = str(exc.reason)
            if exc.status == 403:
                error = (
                    f"forbidden: {request}: the service account needs get, create and update "
                    "on this Lease (deploy/base/rbac-leader-election.yaml)"
                )
            getattr(_log, level)(
                "lease_api_error",
                lease=self.name,
                namespace=self.namespace,
                status=exc.status,
                request=request,
                error=error,
                leader=self._is_leader,
                **self._ids(),
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            # Said when the outage starts or changes, then every few minutes (an attempt
            # runs every retry period: an outage would otherwise be a line every 2 s).
            error = f"{type(exc).__name__}: {exc}"
            how = self._outage.failed(error, now)
            if how is not None:
                extra = (
                    {"still_failing_for_seconds": round(now - self._outage.since)}
                    if how == "summary"
                    else {}
                )
                _log.warning(
                    "lease_api_unavailable",
                    lease=self.name,
                    namespace=self.namespace,
                    error=error,
                    leader=self._is_leader,
                    **extra,
                    **self._ids(),
                )
        except Exception as exc:  # the loop must survive anything the client raises
            _log.error(
                "lease_attempt_failed",
                lease=self.name,
                namespace=self.namespace,
                error=f"{type(exc).__name__}: {exc}",
                **self._ids(),
            )
        else:
            self._answered(now)
            return result
        return False

    async def _try_acquire_or_renew(self, now: float) -> bool:
        loop = asyncio.get_running_loop()
        wall = micro_time()
        try:
            lease = await self._call(self._api.read_namespaced_lease, self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            if self._is_leader:
                _log.warning("lease_deleted", lease=self.name, **self._ids())
            body = self._body(
                acquire_time=wall, renew_time=wall, transitions=0, resource_version=None
            )
            created = await self._call(self._api.create_namespaced_lease, self.namespace, body)
            self._wrote(lease_record(created), loop.time())
            self._last_renew = now
            return True

        record = lease_record(lease)
        if record != self._observed:
            self._observe(record, loop.time())
        if self._is_leader and record.holder != self.identity:
            self._set_leader(False, f"lease_held_by:{record.holder or '<nobody>'}")
        reclaimed = not self._is_leader and record == self._written
        ours = (record.holder == self.identity and self._is_leader) or reclaimed
        self._expires_at = None
        if not ours and record.holder:
            expires = self._observed_at + record.lease_duration_seconds
            if loop.time() < expires:
                self._expires_at = expires
                return False
        if ours:
            acquire_time, transitions = record.acquire_time or wall, record.transitions
        else:
            acquire_time, transitions = wall, record.transitions + 1
        body = self._body(
            acquire_time=acquire_time,
            renew_time=wall,
            transitions=transitions,
            resource_version=record.resource_version,
        )
        updated = await self._call(
            self._api.replace_namespaced_lease, self.name, self.namespace, body
        )
        self._wrote(lease_record(updated), loop.time())
        self._last_renew = now
        if reclaimed:
            _log.info(
                "lease_reclaimed",
                lease=self.name,
                why="the Lease was still the record this instance last wrote",
                **self._ids(),
            )
        elif not ours:
            _log.info(
                "lease_taken_over",
                lease=self.name,
                previous_holder=record.holder,
                transitions=transitions,
                **self._ids(),
            )
        return True

    def _observe(self, record: LeaseRecord, at: float) -> None:
        self._observed, self._observed_at = record, at

    def _wrote(self, record: LeaseRecord, at: float) -> None:
        self._observe(record, at)
        self._written = record

    async def _release(self) -> None:
        """Clear ``holderIdentity`` if the Lease is still ours (client-go ReleaseOnCancel)."""
        try:
            lease = await self._call(self._api.read_namespaced_lease, self.name, self.namespace)
            record = lease_record(lease)
            if record.holder != self.identity:
                return
            now = micro_time()
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": self.name,
                    "namespace": self.namespace,
                    "resourceVersion": record.resource_version,
                },
                "spec": {
                    "holderIdentity": "",
                    "leaseDurationSeconds": 1,
                    "acquireTime": now,
                    "renewTime": now,
                    "leaseTransitions": record.transitions,
                },
            }
            await self._call(self._api.replace_namespaced_lease, self.name, self.namespace, body)
            self._written = None
            _log.info("lease_released", lease=self.name, namespace=self.namespace, **self._ids())
        except Exception as exc:  # the lease then simply expires
            _log.warning(
                "lease_not_released",
                lease=self.name,
                namespace=self.namespace,
                error=f"{type(exc).__name__}: {exc}",
                **self._ids(),
            )

    # ------------------------------------------------------------------ plumbing

    def _body(
        self,
        *,
        acquire_time: str,
        renew_time: str,
        transitions: int,
        resource_version: str | None,
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if resource_version:
            metadata["resourceVersion"] = resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self._lease_seconds,
                "acquireTime": acquire_time,
                "renewTime": renew_time,
                "leaseTransitions": transitions,
            },
        }

    async def _call(self, method: Any, *args: Any) -> Any:
        """One API call, bounded by the request timeout and, while leading, the deadline."""
        name = getattr(method, "__name__", "")
        self._verb = next((verb for prefix, verb in _VERBS if name.startswith(prefix)), name)
        timeout = self._timeout
        if self._is_leader:
            left = self._last_renew + self._deadline() - asyncio.get_running_loop().time()
            timeout = max(0.05, min(timeout, left))
        async with asyncio.timeout(timeout):
            return await method(*args, _request_timeout=timeout)
