"""What a coordination.k8s.io/v1 Lease says, as read, and the small helpers every Lease
user shares (the leader elector and the shard Leases).

A record is compared whole: any renewal changes its ``resourceVersion``, so "the record
changed" is how a reader notices that the holder is alive, timed on the reader's own clock
(never trusting the ``renewTime`` another machine wrote)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from dataclasses import dataclass
from typing import Any

__all__ = ["LeaseRecord", "lease_record", "micro_time", "sleep_or_stop"]


def micro_time(now: datetime.datetime | None = None) -> str:
    """RFC3339 with microseconds, as metav1.MicroTime serializes: 2006-01-02T15:04:05.000000Z."""
    now = now or datetime.datetime.now(datetime.UTC)
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LeaseRecord:
    """What a Lease says, as read; compared whole to notice that its holder renewed it."""

    holder: str
    lease_duration_seconds: int
    acquire_time: str
    renew_time: str
    transitions: int
    resource_version: str


def lease_record(lease: Any) -> LeaseRecord:
    """The record of a kubernetes-asyncio ``V1Lease``."""
    spec = lease.spec
    metadata = lease.metadata
    return LeaseRecord(
        holder=str((spec.holder_identity if spec else None) or ""),
        lease_duration_seconds=int((spec.lease_duration_seconds if spec else None) or 0),
        acquire_time=_time_text(spec.acquire_time if spec else None),
        renew_time=_time_text(spec.renew_time if spec else None),
        transitions=int((spec.lease_transitions if spec else None) or 0),
        resource_version=str((metadata.resource_version if metadata else None) or ""),
    )


def _time_text(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return micro_time(value)
    return str(value or "")


async def sleep_or_stop(stop: asyncio.Event, delay: float) -> None:
    """Sleep ``delay`` seconds, or less when ``stop`` is set."""
    if delay <= 0:
        await asyncio.sleep(0)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)
