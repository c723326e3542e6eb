"""The shard Leases: which of the service's replicas drives which targets.

With ``server.sharding.shards: N > 1`` every target belongs to one of N shards
(``autoscaler.sharding.shard_of``), and each shard is a coordination.k8s.io/v1 Lease,
``<lease_name>-shard-<n>``. Only the replica holding a shard's Lease polls and patches its
targets. Each replica also renews a *member* Lease of its own,
``<lease_name>-member-<identity>``: the live members are what the shards are balanced
over (``autoscaler.sharding.plan``: each holds about N / members, and never more than
``hold_limit``).

Every round (each ``retry_period``) a replica makes one list call for the group's Leases
(by label), renews its member Lease, and then, from the live members and the shard
holders it read: releases the shards another live member should hold, renews the ones it
keeps and acquires the free ones the assignment gives it. As in client-go's leader election
(``autoscaler.live.leader``), a Lease is another's until its record has not changed for its
``leaseDurationSeconds`` *on our own clock*, and every write carries the
``resourceVersion`` it read, so of two racing replicas one gets 409.

**Fencing.** A replica drives a shard only while its last successful write of that shard's
Lease was *sent* less than ``renew_deadline`` ago. Another replica takes the Lease over only
``lease_duration`` after it *saw* that write, which is later than it was sent; since
``renew_deadline < lease_duration``, the old holder has stopped before the new one starts,
with no clock shared. A release stops driving first, waits for the shard's patches in
flight (``patching``), and only then clears the holder.

**Hand-over.** A shard's new holder builds its targets' controllers as a config reload
builds a new target (the service's ``rebalance``): forecasters warm-start from Prometheus
history, and the learned state the workload carries comes with it.

API errors never end ``run()``: they are logged (an outage once, then a summary every few
minutes) and the round is tried again; the fencing stops the patches meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from autoscaler.config.model import LeaderElectionConfig
from autoscaler.live.leader import default_identity, lease_namespace
from autoscaler.live.lease_records import LeaseRecord, lease_record, micro_time, sleep_or_stop
from autoscaler.observability.repeats import RepeatedFailure
from autoscaler.sharding.assignment import hold_limit, plan, shard_of

__all__ = ["GROUP_LABEL", "ROLE_LABEL", "ShardLeases", "member_lease_name", "shard_lease_name"]

_log = structlog.get_logger(__name__)

GROUP_LABEL = "autoscaler.io/shard-group"
"""On every Lease of one sharded service: its ``lease_name`` (what the list selects by)."""
ROLE_LABEL = "autoscaler.io/lease-role"
"""``member`` (a replica's liveness) or ``shard`` (who drives a shard's targets)."""
SHARD_LABEL = "autoscaler.io/shard"
_NAME_LIMIT = 253
_WAKE_AFTER_EXPIRY = 0.01
"""Seconds past an expiry a round wakes at, so that the loop's clock has passed it."""


def shard_lease_name(prefix: str, shard: int) -> str:
    return f"{prefix}-shard-{shard}"


def member_lease_name(prefix: str, identity: str) -> str:
    """A member Lease's name: the identity made a valid object name (lower case, ``-`` for
    anything else; the identity itself is the Lease's holder, unchanged)."""
    slug = re.sub(r"[^a-z0-9.-]+", "-", identity.lower()).strip("-.") or "member"
    return f"{prefix}-member-{slug}"[:_NAME_LIMIT].rstrip("-.")


@dataclass
class _Seen:
    """A Lease as last read, and when (our clock) its record last changed."""

    name: str
    record: LeaseRecord
    changed_at: float
    role: str
    shard: int | None

    def alive(self, now: float) -> bool:
        """Held, and renewed within its lease duration as we saw it."""
        return bool(self.record.holder) and now < self.changed_at + max(
            1, self.record.lease_duration_seconds
        )


class ShardLeases:
    """Holds this replica's share of the shard Leases until ``stop`` is set.

    ``drives(shard)`` says whether this replica may poll and patch the shard's targets now
    (fenced: see the module); ``held`` is the set of such shards; ``changed`` is an
    ``asyncio.Event`` set (and replaced) whenever ``assigned`` (the shards whose targets it
    runs) changes, for the service to rebalance its targets.
    """

    def __init__(
        self,
        api_client: Any,
        config: LeaderElectionConfig,
        shards: int,
        *,
        identity: str | None = None,
        namespace: str | None = None,
        request_timeout_seconds: float = 10.0,
        owner: dict[str, str] | None = None,
    ) -> None:
        if shards < 1:
            raise ValueError(f"shards must be at least 1, got {shards}")
        self._api = k8s.CoordinationV1Api(api_client)
        self._config = config
        self.shards = shards
        self.identity = identity or default_identity()
        self.prefix = config.lease_name
        self.namespace = namespace or lease_namespace(config.lease_namespace)
        self.member_name = member_lease_name(self.prefix, self.identity)
        self._timeout = request_timeout_seconds
        self._lease_seconds = max(1, math.ceil(config.lease_duration_seconds))
        self._owner = owner
        """The pod this replica runs in (``name``, ``uid``): the member Lease's owner, so
        that the garbage collector deletes it with the pod."""
        self._seen: dict[str, _Seen] = {}
        self._renewed: dict[int, float] = {}
        """Per shard held: when its last successful write was sent (our clock)."""
        self._ours: set[int] = set()
        """The shards whose Lease names us as its holder, as we last wrote or read it
        (driven or not: a fence that lapsed in an API outage keeps the targets, which
        resume if the Lease is still ours when the server is back)."""
        self._patching: dict[int, int] = {}
        self._idle: dict[int, asyncio.Event] = {}
        self._outage = RepeatedFailure()
        self.live_members: tuple[str, ...] = ()
        self.before_release: Callable[[int], Awaitable[None]] | None = None
        """Called with a shard about to be released, once its patches are done and before
        the holder is cleared (the service saves the shard's learned state)."""
        self.changed = asyncio.Event()
        self._announced: frozenset[int] = frozenset()

    # ------------------------------------------------------------------ state

    def _deadline(self) -> float:
        return self._config.renew_deadline_seconds

    def drives(self, shard: int, now: float | None = None) -> bool:
        """Whether this replica may poll and patch ``shard``'s targets now."""
        sent = self._renewed.get(shard)
        if sent is None:
            return False
        now = asyncio.get_running_loop().time() if now is None else now
        return now - sent < self._deadline()

    def drives_key(self, key: str) -> bool:
        """``drives`` for the shard of a target key (``autoscaler.sharding.target_key``)."""
        return self.drives(shard_of(key, self.shards))

    @property
    def assigned(self) -> frozenset[int]:
        """The shards whose targets this replica runs (see ``_ours``); ``changed`` is set
        when this changes. Patches also need ``drives``."""
        return frozenset(self._ours)

    @property
    def held(self) -> frozenset[int]:
        now = asyncio.get_running_loop().time()
        return frozenset(shard for shard in self._renewed if self.drives(shard, now))

    @contextlib.asynccontextmanager
    async def patching(self, key: str) -> AsyncIterator[bool]:
        """Around one patch of a target: yields whether it may go ahead (the shard is
        driven), and keeps the shard from being released until it is done."""
        shard = shard_of(key, self.shards)
        if not self.drives(shard):
            yield False
            return
        self._patching[shard] = self._patching.get(shard, 0) + 1
        self._idle.setdefault(shard, asyncio.Event()).clear()
        try:
            yield True
        finally:
            self._patching[shard] -= 1
            if self._patching[shard] == 0:
                self._idle[shard].set()

    def status(self) -> dict[str, Any]:
        """For ``/status``: the shards this replica holds and the members it sees."""
        return {
            "identity": self.identity,
            "shards": self.shards,
            "held": sorted(self.assigned),
            "driven": sorted(self.held),
            "live_members": list(self.live_members),
            "hold_limit": hold_limit(self.shards, max(1, len(self.live_members))),
        }

    def _announce(self) -> None:
        held = self.assigned
        if held == self._announced:
            return
        gained, lost = sorted(held - self._announced), sorted(self._announced - held)
        self._announced = held
        _log.info(
            "shards_changed",
            held=sorted(held),
            gained=gained,
            lost=lost,
            identity=self.identity,
            live_members=len(self.live_members),
        )
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()

    # ------------------------------------------------------------------ loop

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds every ``retry_period`` until ``stop``; then releases every shard Lease and
        the member Lease (another replica takes the shards at its next round)."""
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                started = loop.time()
                await self._round_logged(started)
                self._announce()
                delay = self._config.retry_period_seconds - (loop.time() - started)
                expiry = self._next_expiry(loop.time())
                if expiry is not None:  # wake right when another's record expires
                    delay = min(delay, expiry - loop.time() + _WAKE_AFTER_EXPIRY)
                if self._renewed:  # wake before a held shard's fence ends, to say so
                    fence = min(self._renewed.values()) + self._deadline() - loop.time()
                    delay = min(delay, max(0.0, fence) + 0.01)
                await sleep_or_stop(stop, delay)
        finally:
            await self._release_all()
            self._announce()

    async def _round_logged(self, now: float) -> None:
        try:
            await self._round(now)
        except asyncio.CancelledError:
            raise
        except ApiException as error:
            self._answered(now)
            _log.warning(
                "shard_lease_api_error",
                status=error.status,
                error=self._explain(error),
                identity=self.identity,
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            text = f"{type(error).__name__}: {error}"
            how = self._outage.failed(text, now)
            if how is not None:
                _log.warning(
                    "shard_lease_api_unavailable",
                    error=text,
                    held=sorted(self._renewed),
                    identity=self.identity,
                )
        except Exception as error:  # the loop must survive anything the client raises
            _log.error(
                "shard_lease_round_failed",
                error=f"{type(error).__name__}: {error}",
                identity=self.identity,
            )
        else:
            self._answered(now)

    def _answered(self, now: float) -> None:
        ended = self._outage.recovered(now)
        if ended is not None:
            _log.info(
                "shard_lease_api_available_again",
                after_seconds=round(ended[2]),
                attempts_failed=ended[1],
                identity=self.identity,
            )

    def _explain(self, error: ApiException) -> str:
        if error.status == 403:
            return (
                f"forbidden: the service account needs list, create and update on "
                f"leases.coordination.k8s.io in namespace {self.namespace} "
                "(deploy/overlays/sharded/rbac-shards.yaml)"
            )
        return str(error.reason)

    async def _round(self, now: float) -> None:
        loop = asyncio.get_running_loop()
        # A fence that ended is no hold: forget it (the Lease may still be retaken, if it
        # is still exactly what we wrote: nobody can have held it since).
        self._renewed = {s: t for s, t in self._renewed.items() if self.drives(s, now)}
        listed = await self._call(
            self._api.list_namespaced_lease,
            self.namespace,
            label_selector=f"{GROUP_LABEL}={self.prefix}",
        )
        read_at = loop.time()
        self._observe(listed.items, read_at)
        await self._renew_member(read_at)
        members = {
            seen.record.holder
            for seen in self._seen.values()
            if seen.role == "member" and seen.alive(read_at)
        }
        members.add(self.identity)
        self.live_members = tuple(sorted(members))
        holders: dict[int, str | None] = {}
        for seen in self._seen.values():
            if seen.role != "shard" or seen.shard is None:
                continue
            if seen.record.holder == self.identity:
                holders[seen.shard] = self.identity if self.drives(seen.shard) else None
            else:
                holders[seen.shard] = seen.record.holder if seen.alive(read_at) else None
        # A shard the list no longer shows as ours (taken over, deleted): not ours.
        for shard in list(self._ours):
            lease = self._seen.get(shard_lease_name(self.prefix, shard))
            if lease is None or lease.record.holder != self.identity:
                self._ours.discard(shard)
                self._renewed.pop(shard, None)
        wanted = plan(self.identity, self.shards, members, holders)
        limit = hold_limit(self.shards, len(members))
        for shard in wanted.release:
            await self._release(shard)
        kept = await asyncio.gather(*(self._write(shard, take=False) for shard in wanted.keep))
        room = limit - sum(kept)
        taking = [shard for shard in wanted.acquire if self._free(shard, read_at)][: max(0, room)]
        await asyncio.gather(*(self._write(shard, take=True) for shard in taking))

    def _observe(self, leases: Iterable[Any], at: float) -> None:
        present: set[str] = set()
        for lease in leases:
            metadata = lease.metadata
            name = str(metadata.name)
            labels = metadata.labels or {}
            role = labels.get(ROLE_LABEL, "")
            shard: int | None = None
            if role == "shard":
                try:
                    shard = int(labels.get(SHARD_LABEL, ""))
                except ValueError:
                    continue
                if not 0 <= shard < self.shards or name != shard_lease_name(self.prefix, shard):
                    continue  # another shard count's Lease (a resize): not ours to read
            record = lease_record(lease)
            present.add(name)
            seen = self._seen.get(name)
            if seen is None or seen.record != record:
                self._seen[name] = _Seen(name, record, at, role, shard)
        for name in list(self._seen):
            if name not in present:
                del self._seen[name]

    def _next_expiry(self, now: float) -> float | None:
        """When the soonest record held by another replica expires, if it has not yet: a
        round then sees the member gone or the shard free without waiting a whole retry
        period (a take-over after a crash: at most lease + retry after its last renewal)."""
        expiries = [
            seen.changed_at + max(1, seen.record.lease_duration_seconds)
            for seen in self._seen.values()
            if seen.record.holder and seen.record.holder != self.identity and seen.alive(now)
        ]
        return min(expiries, default=None)

    def _free(self, shard: int, now: float) -> bool:
        seen = self._seen.get(shard_lease_name(self.prefix, shard))
        return seen is None or not seen.alive(now) or seen.record.holder == self.identity

    # ------------------------------------------------------------------ writes

    async def _renew_member(self, now: float) -> None:
        seen = self._seen.get(self.member_name)
        body = self._body(
            self.member_name,
            {ROLE_LABEL: "member"},
            holder=self.identity,
            record=None if seen is None else seen.record,
            take=seen is None or seen.record.holder != self.identity,
        )
        if self._owner is not None:
            body["metadata"]["ownerReferences"] = [
                {"apiVersion": "v1", "kind": "Pod", **self._owner, "controller": False}
            ]
        await self._put(self.member_name, body, create=seen is None)

    async def _write(self, shard: int, *, take: bool) -> bool:
        """Renew (``take`` False) or take ``shard``'s Lease; whether we hold it after."""
        loop = asyncio.get_running_loop()
        name = shard_lease_name(self.prefix, shard)
        seen = self._seen.get(name)
        body = self._body(
            name,
            {ROLE_LABEL: "shard", SHARD_LABEL: str(shard)},
            holder=self.identity,
            record=None if seen is None else seen.record,
            take=take and (seen is None or seen.record.holder != self.identity),
        )
        sent = loop.time()
        try:
            await self._put(name, body, create=seen is None)
        except ApiException as error:
            if error.status not in (404, 409):
                raise
            # Someone else wrote it first (or it went away): not ours until read again.
            self._renewed.pop(shard, None)
            self._ours.discard(shard)
            _log.info(
                "shard_lease_lost_race" if take else "shard_lease_lost",
                shard=shard,
                status=error.status,
                identity=self.identity,
            )
            return False
        if take:
            previous = "" if seen is None else seen.record.holder
            _log.info(
                "shard_acquired", shard=shard, previous_holder=previous, identity=self.identity
            )
        self._renewed[shard] = sent
        self._ours.add(shard)
        return True

    async def _release(self, shard: int, *, wait_seconds: float | None = None) -> None:
        """Stop driving ``shard``, let its patches in flight finish, then clear the holder
        (another replica takes it at its next round, not after the lease duration)."""
        self._renewed.pop(shard, None)
        self._ours.discard(shard)
        self._announce()
        idle = self._idle.get(shard)
        if idle is not None and self._patching.get(shard, 0) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(idle.wait(), wait_seconds or self._timeout)
        name = shard_lease_name(self.prefix, shard)
        seen = self._seen.get(name)
        if seen is None or seen.record.holder != self.identity:
            return
        if self.before_release is not None:
            try:
                await self.before_release(shard)
            except Exception as error:  # the next holder then starts from the last sync
                _log.warning("shard_state_not_saved", shard=shard, error=repr(error))
        body = self._body(
            name, {ROLE_LABEL: "shard", SHARD_LABEL: str(shard)}, holder="", record=seen.record
        )
        body["spec"]["leaseDurationSeconds"] = 1
        try:
            await self._put(name, body, create=False)
        except ApiException as error:
            if error.status not in (404, 409):
                raise
            return
        _log.info("shard_released", shard=shard, identity=self.identity)

    async def _release_all(self) -> None:
        """On stop: every shard, then the member Lease (errors only logged: the Leases
        then expire on their own)."""
        for shard in sorted(self._ours):
            try:
                await self._release(shard)
            except Exception as error:
                _log.warning("shard_not_released", shard=shard, error=repr(error))
        self._renewed.clear()
        self._ours.clear()
        seen = self._seen.get(self.member_name)
        if seen is None or seen.record.holder != self.identity:
            return
        body = self._body(self.member_name, {ROLE_LABEL: "member"}, holder="", record=seen.record)
        body["spec"]["leaseDurationSeconds"] = 1
        with contextlib.suppress(Exception):
            await self._put(self.member_name, body, create=False)

    def _body(
        self,
        name: str,
        labels: dict[str, str],
        *,
        holder: str,
        record: LeaseRecord | None,
        take: bool = False,
    ) -> dict[str, Any]:
        wall = micro_time()
        metadata: dict[str, Any] = {
            "name": name,
            "namespace": self.namespace,
            "labels": {GROUP_LABEL: self.prefix, **labels},
        }
        transitions = 0
        acquire_time = wall
        if record is not None:
            metadata["resourceVersion"] = record.resource_version
            transitions = record.transitions + (1 if take and record.holder else 0)
            if not take and record.acquire_time:
                acquire_time = record.acquire_time
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                "holderIdentity": holder,
                "leaseDurationSeconds": self._lease_seconds,
                "acquireTime": acquire_time,
                "renewTime": wall,
                "leaseTransitions": transitions,
            },
        }

    async def _put(self, name: str, body: dict[str, Any], *, create: bool) -> None:
        loop = asyncio.get_running_loop()
        if create:
            written = await self._call(self._api.create_namespaced_lease, self.namespace, body)
        else:
            written = await self._call(
                self._api.replace_namespaced_lease, name, self.namespace, body
            )
        role = body["metadata"]["labels"].get(ROLE_LABEL, "")
        shard_text = body["metadata"]["labels"].get(SHARD_LABEL)
        shard = None if shard_text is None else int(shard_text)
        self._seen[name] = _Seen(name, lease_record(written), loop.time(), role, shard)

    async def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        """One API call, bounded by the request timeout and, while holding shards, by the
        fence of the one held longest (a hung call must not outlast the right to patch)."""
        timeout = self._timeout
        now = asyncio.get_running_loop().time()
        fences = [sent + self._deadline() - now for sent in self._renewed.values()]
        driven = [left for left in fences if left > 0]
        if driven:
            timeout = max(0.05, min(timeout, min(driven)))
        async with asyncio.timeout(timeout):
            return await method(*args, _request_timeout=timeout, **kwargs)
