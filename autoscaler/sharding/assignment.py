"""Which shard a target is in, and which replica should hold each shard.

Two mappings, both stable so that a change moves as little as it must:

* **target -> shard**: rendezvous (highest-random-weight) hashing of the target's key over
  the shard numbers. Going from N to N + 1 shards moves only the targets the new shard
  wins, about 1/(N + 1) of them; every process computes the same answer with no shared
  state (a keyed BLAKE2b digest, never Python's per-process ``hash``).
* **shard -> replica**: every replica computes the same *balanced* assignment from the
  same live replicas and the same current holders (the Leases): each keeps what it holds up
  to its quota (shards // replicas, one more for some), and the rest go by rendezvous
  ranking to replicas under quota. A replica joining or leaving moves about shards /
  replicas of them, and nobody holds more than the fair share once the hand-over is done
  (``hold_limit`` allows one more while a hand-over is under way and two replicas' views
  of the Leases differ).

The Leases themselves (acquire, renew, release, fencing) are the live shell's; this module
only says what each replica wants.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass


def target_key(namespace: str, kind: str, name: str) -> str:
    """The key a target is sharded by: its workload, so that two config entries for the
    same workload (never allowed to both drive it) land in the same shard."""
    return f"{namespace}/{kind}/{name}"


def _weight(item: str, bucket: str) -> int:
    digest = hashlib.blake2b(f"{bucket}\x00{item}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@functools.lru_cache(maxsize=1 << 16)
def shard_of(key: str, shards: int) -> int:
    """The shard (0 .. shards - 1) that ``key`` belongs to.

    Remembered (a bounded cache of a pure function of two immutable values: no state
    anyone can see): the service asks for every target's shard at each rebalance, each
    state sync and each status page, and a key costs ``shards`` digests."""
    if shards < 1:
        raise ValueError(f"shards must be at least 1, got {shards}")
    return max(range(shards), key=lambda shard: _weight(key, str(shard)))


def fair_share(shards: int, replicas: int) -> int:
    """The most shards one of ``replicas`` live replicas holds once balanced."""
    return math.ceil(shards / max(1, replicas))


def hold_limit(shards: int, replicas: int) -> int:
    """The most shards a replica may hold at any time: the fair share, plus one while a
    hand-over is under way."""
    return fair_share(shards, replicas) + 1


def assignment(
    shards: int, replicas: Collection[str], holders: Mapping[int, str | None] | None = None
) -> dict[int, str]:
    """The balanced assignment of every shard to one of the live ``replicas`` (their
    identities), as sticky to the current ``holders`` as balance allows; empty without a
    live replica. Every replica that sees the same Leases computes the same one.

    Each replica gets ``shards // replicas`` shards, and ``shards % replicas`` of them one
    more: those that hold the most now (then by identity), so that a change moves as few
    shards as balance needs (4 -> 5 replicas of 12 shards: 2 move). A replica keeps the
    shards it holds that rank highest for it; the rest, and shards without a live holder,
    go to the highest-ranking replica still under its quota."""
    live = sorted(set(replicas))
    if not live:
        return {}
    current = {
        shard: holder
        for shard, holder in (holders or {}).items()
        if 0 <= shard < shards and holder in live
    }
    held: dict[str, list[int]] = {replica: [] for replica in live}
    for shard, holder in sorted(current.items()):
        assert holder is not None
        held[holder].append(shard)
    base, extra = divmod(shards, len(live))
    by_holding = sorted(live, key=lambda replica: (-len(held[replica]), replica))
    quota = {replica: base + (1 if rank < extra else 0) for rank, replica in enumerate(by_holding)}
    owners: dict[int, str] = {}
    for replica in live:
        ranked = sorted(held[replica], key=lambda shard: -_weight(replica, f"shard-{shard}"))
        for shard in ranked[: quota[replica]]:
            owners[shard] = replica
    counts = dict.fromkeys(live, 0)
    for owner in owners.values():
        counts[owner] += 1
    for shard in range(shards):
        if shard in owners:
            continue
        candidates = sorted(
            live, key=lambda replica: (-_weight(replica, f"shard-{shard}"), replica)
        )
        owner = next(replica for replica in candidates if counts[replica] < quota[replica])
        owners[shard] = owner
        counts[owner] += 1
    return owners


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """What one replica should do with the shard Leases this round."""

    acquire: tuple[int, ...]
    """Free shards (no live holder) the assignment gives it: try to take them."""
    release: tuple[int, ...]
    """Shards it holds that another live replica should hold: let go, so that one can take
    them."""
    keep: tuple[int, ...]
    """Shards it holds and keeps (renews)."""


def plan(
    identity: str,
    shards: int,
    live: Collection[str],
    holders: Mapping[int, str | None],
) -> ShardPlan:
    """What ``identity`` should do, given the live replicas (itself included, whatever
    ``live`` says) and each shard's current holder (None or missing: free, or its Lease
    expired).

    It keeps the shards the assignment gives it, releases the ones it holds that the
    assignment gives another live replica (that one cannot take them before), and tries to
    acquire the free ones the assignment gives it. A shard held by a replica that is not
    live counts as free: its Lease is about to expire, and its new holder waits for that."""
    replicas = set(live) | {identity}
    current = {shard: holder for shard, holder in holders.items() if holder in replicas}
    owners = assignment(shards, replicas, current)
    held = sorted(shard for shard in range(shards) if current.get(shard) == identity)
    keep = tuple(shard for shard in held if owners[shard] == identity)
    release = tuple(shard for shard in held if owners[shard] != identity)
    acquire = tuple(
        shard for shard in range(shards) if owners[shard] == identity and current.get(shard) is None
    )
    return ShardPlan(acquire, release, keep)
