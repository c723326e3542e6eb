"""Sharding: targets to shards by rendezvous hashing, shards to replicas balanced and
sticky, and the per-replica plan that makes the Leases converge to it."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections import Counter

import pytest

from autoscaler.sharding.assignment import (
    assignment,
    fair_share,
    hold_limit,
    plan,
    shard_of,
    target_key,
)

KEYS = [target_key(f"team-{i % 50}", "Deployment", f"consumer-{i}") for i in range(10_000)]


def test_every_target_has_one_shard_spread_evenly() -> None:
    shards = [shard_of(key, 12) for key in KEYS]
    counts = Counter(shards)
    assert set(counts) == set(range(12))
    mean = len(KEYS) / 12
    assert all(abs(count - mean) < 0.15 * mean for count in counts.values())


def test_one_more_shard_moves_only_the_targets_it_wins() -> None:
    before = [shard_of(key, 12) for key in KEYS]
    after = [shard_of(key, 13) for key in KEYS]
    moved = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert all(b == 12 for _, b in moved)  # nothing moves between the old shards
    assert 0.5 / 13 < len(moved) / len(KEYS) < 1.5 / 13


def test_the_shard_of_a_target_is_the_same_in_every_process() -> None:
    """Python's hash() differs per process; two replicas must agree on every target."""
    here = [shard_of(key, 12) for key in KEYS[:200]]
    code = (
        "from autoscaler.sharding.assignment import shard_of, target_key;"
        "print(','.join(str(shard_of(target_key(f'team-{i % 50}', 'Deployment', "
        "f'consumer-{i}'), 12)) for i in range(200)))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert other.stdout.strip() == ",".join(map(str, here))


def test_shards_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        shard_of("a/b/c", 0)


@pytest.mark.parametrize("replicas", range(1, 13))
def test_the_assignment_is_balanced_and_the_same_whatever_the_order(replicas: int) -> None:
    live = [f"autoscaler-{i}" for i in range(replicas)]
    owners = assignment(12, live)
    assert sorted(owners) == list(range(12))
    counts = Counter(owners.values())
    assert max(counts.values()) == fair_share(12, replicas)
    assert max(counts.values()) - min(counts.values()) <= 1
    assert assignment(12, list(reversed(live))) == owners


@pytest.mark.parametrize("replicas", range(1, 12))
def test_a_replica_joining_moves_at_most_its_share(replicas: int) -> None:
    live = [f"autoscaler-{i}" for i in range(replicas)]
    before = assignment(12, live)
    after = assignment(12, [*live, "autoscaler-new"], before)
    moved = [shard for shard in before if before[shard] != after[shard]]
    assert all(after[shard] == "autoscaler-new" for shard in moved)
    assert len(moved) == Counter(after.values())["autoscaler-new"]
    assert len(moved) <= math.ceil(12 / (replicas + 1)) + 1  # issue 22's bar


def test_a_replica_leaving_moves_only_its_shards() -> None:
    live = [f"autoscaler-{i}" for i in range(5)]
    before = assignment(12, live)
    after = assignment(12, live[1:], before)
    moved = {shard for shard in before if before[shard] != after[shard]}
    assert moved == {shard for shard, owner in before.items() if owner == "autoscaler-0"}


def test_no_live_replica_no_assignment() -> None:
    assert assignment(12, []) == {}


def test_a_plan_takes_its_free_shards_and_hands_over_the_others() -> None:
    holders: dict[int, str | None] = dict.fromkeys(range(12), "a")  # a held them all
    joined = plan("b", 12, {"a", "b"}, holders)
    assert joined.release == ()
    assert joined.keep == ()
    assert joined.acquire == ()  # nothing is free: a must let go first
    handing = plan("a", 12, {"a", "b"}, holders)
    assert len(handing.release) == 6
    assert len(handing.keep) == 6
    for shard in handing.release:
        holders[shard] = None
    taking = plan("b", 12, {"a", "b"}, holders)
    assert taking.acquire == handing.release


def test_a_dead_replicas_shards_are_taken_by_the_live_ones() -> None:
    holders: dict[int, str | None] = {s: ("a", "b", "c")[s % 3] for s in range(12)}
    # c stopped renewing; once its member Lease expired, a and b no longer see it live.
    taken = [plan(me, 12, {"a", "b"}, holders) for me in ("a", "b")]
    acquired = sorted(s for p in taken for s in p.acquire)
    assert acquired == [s for s in range(12) if holders[s] == "c"]
    assert set(taken[0].acquire).isdisjoint(taken[1].acquire)
    assert all(p.release == () for p in taken)


def _converge(replicas: list[str], holders: dict[int, str | None], rounds: int = 4) -> None:
    """Every replica plans and acts in turn: releases, then acquires what is free (a Lease
    can only be taken when nobody holds it)."""
    for _ in range(rounds):
        for me in replicas:
            step = plan(me, 12, replicas, holders)
            for shard in step.release:
                assert holders[shard] == me
                holders[shard] = None
            for shard in step.acquire:
                if holders.get(shard) is None:
                    holders[shard] = me
            held = sum(1 for holder in holders.values() if holder == me)
            assert held <= hold_limit(12, len(replicas))


def test_replicas_coming_and_going_converge_to_every_shard_held_once() -> None:
    holders: dict[int, str | None] = dict.fromkeys(range(12))
    live = ["r0", "r1", "r2", "r3"]
    _converge(live, holders)
    assert all(holders[s] is not None for s in range(12))
    assert Counter(holders.values()) == Counter(dict.fromkeys(live, 3))
    before = dict(holders)
    live.append("r4")  # a fifth: at most ceil(12/5) + 1 shards move
    _converge(live, holders)
    moved = [s for s in range(12) if holders[s] != before[s]]
    assert 0 < len(moved) <= math.ceil(12 / 5) + 1
    assert all(holders[s] is not None for s in range(12))
    live.remove("r1")  # one dies: its Leases expire, the rest take them
    for shard, holder in holders.items():
        if holder == "r1":
            holders[shard] = None
    _converge(live, holders)
    assert all(holders[s] in live for s in range(12))
    assert max(Counter(holders.values()).values()) == fair_share(12, 4)
