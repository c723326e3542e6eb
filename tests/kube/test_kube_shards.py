"""Shard Leases on a real API server, with the sharded overlay's Role for the ServiceAccount.

Several replicas' ``ShardLeases`` run in this process (each with its own client), so one
clock samples them all: the audit asserts that no shard is ever driven by two at once, and
that every shard is driven once they settle. A replica in its own process is killed with
SIGKILL for the take-over bound, and the API server is paused (SIGSTOP) for the fencing.

Short timings (a 2 s lease, 1.5 s renew deadline, 1 s retry) keep each test to seconds; the
bounds asserted are those ``autoscaler/live/shard_leases.py`` promises, with an allowance
for one request on a loaded 2-core machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from servers.kube_control_plane import Kube
from servers.kube_rbac import install_rbac

from autoscaler.config.model import LeaderElectionConfig
from autoscaler.live.shard_leases import ShardLeases, shard_lease_name
from autoscaler.sharding.assignment import hold_limit

HERE = Path(__file__).resolve().parent
PREFIX = "predictive-autoscaler"
SHARDS = 12
LEASE_SECONDS, RENEW_SECONDS, RETRY_SECONDS = 2.0, 1.5, 1.0
ALLOWANCE = 1.0
"""Seconds for a request or two and the scheduler of a loaded 2-core machine."""


def _config(namespace: str) -> LeaderElectionConfig:
    return LeaderElectionConfig(
        lease_namespace=namespace,
        lease_duration_seconds=LEASE_SECONDS,
        renew_deadline_seconds=RENEW_SECONDS,
        retry_period_seconds=RETRY_SECONDS,
    )


class Replicas:
    """In-process replicas' shard Leases, sampled by an audit task every 10 ms."""

    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.members: list[ShardLeases] = []
        self.stops: list[asyncio.Event] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.clients: list[k8s.ApiClient] = []
        self.overlaps: list[tuple[int, list[str]]] = []
        self._audit = asyncio.create_task(self._watch())

    async def start(self, identity: str) -> ShardLeases:
        client = await k8s_config.new_client_from_config(config_file=str(self.kubeconfig))
        member = ShardLeases(
            client,
            _config(self.namespace),
            SHARDS,
            identity=identity,
            request_timeout_seconds=1.0,
        )
        stop = asyncio.Event()
        self.clients.append(client)
        self.members.append(member)
        self.stops.append(stop)
        self.tasks.append(asyncio.create_task(member.run(stop)))
        return member

    async def stop(self, member: ShardLeases) -> None:
        """As SIGTERM: it releases its shards and its member Lease."""
        index = self.members.index(member)
        self.stops[index].set()
        await asyncio.wait_for(self.tasks[index], 10)

    def running(self) -> list[ShardLeases]:
        return [m for m, s in zip(self.members, self.stops, strict=True) if not s.is_set()]

    def drivers(self) -> dict[int, list[str]]:
        now = asyncio.get_running_loop().time()
        return {
            shard: [m.identity for m in self.members if m.drives(shard, now)]
            for shard in range(SHARDS)
        }

    async def _watch(self) -> None:
        while True:
            for shard, drivers in self.drivers().items():
                if len(drivers) > 1:
                    self.overlaps.append((shard, drivers))
            await asyncio.sleep(0.01)

    async def settled(self, members: int, timeout: float) -> float:
        """Seconds until every shard is driven by one of ``members`` running replicas, each
        holding its fair share or one fewer (balanced)."""
        started = time.monotonic()
        while True:
            drivers = self.drivers()
            counts = [len(m.held) for m in self.running()]
            share = math.ceil(SHARDS / members)
            if (
                all(len(d) == 1 for d in drivers.values())
                and len(counts) == members
                and all(share - 1 <= c <= share for c in counts)
            ):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise AssertionError(f"not settled after {timeout} s: {drivers}, {counts}")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        self._audit.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._audit
        for stop in self.stops:
            stop.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), 15)
        for client in self.clients:
            await client.close()


@pytest.fixture
def service_account(kube: Kube) -> Path:
    return install_rbac(kube, sharded=True)


@pytest.fixture
async def replicas(kube: Kube, service_account: Path) -> AsyncIterator[Replicas]:
    group = Replicas(service_account, kube.namespace)
    yield group
    await group.close()


@contextlib.contextmanager
def _paused(kube: Kube) -> Iterator[None]:
    kube.plane.pause()
    try:
        yield
    finally:
        kube.plane.resume()


async def test_three_replicas_share_twelve_shards_each_driven_once(
    kube: Kube, replicas: Replicas
) -> None:
    for name in ("pod-a_1", "pod-b_2", "pod-c_3"):
        await replicas.start(name)
    # Each newcomer is seen within a round, and its share handed over within the next.
    await replicas.settled(3, timeout=6 * RETRY_SECONDS + ALLOWANCE)
    assert sorted(len(m.held) for m in replicas.members) == [4, 4, 4]
    for shard in range(SHARDS):
        lease = kube.admin.lease(kube.namespace, shard_lease_name(PREFIX, shard))
        assert lease is not None
        (driver,) = replicas.drivers()[shard]
        assert lease["spec"]["holderIdentity"] == driver
        labels = lease["metadata"]["labels"]
        assert labels["autoscaler.io/shard-group"] == PREFIX
        assert labels["autoscaler.io/shard"] == str(shard)
    assert replicas.overlaps == []


async def test_a_fourth_replica_takes_its_share_moving_no_more_than_the_bar(
    kube: Kube, replicas: Replicas
) -> None:
    for name in ("pod-a_1", "pod-b_2", "pod-c_3"):
        await replicas.start(name)
    await replicas.settled(3, timeout=6 * RETRY_SECONDS + ALLOWANCE)
    before = {shard: d[0] for shard, d in replicas.drivers().items()}
    await replicas.start("pod-d_4")
    # The new replica has its share within two renew periods of being seen (one to release,
    # one to acquire), plus a round to be seen.
    took = await replicas.settled(4, timeout=3 * RETRY_SECONDS * 1.2 + ALLOWANCE)
    assert took <= 3 * RETRY_SECONDS * 1.2 + ALLOWANCE
    after = {shard: d[0] for shard, d in replicas.drivers().items()}
    moved = [shard for shard in range(SHARDS) if before[shard] != after[shard]]
    assert len(moved) <= math.ceil(SHARDS / 4) + 1
    assert all(after[shard] == "pod-d_4" for shard in moved)
    assert replicas.overlaps == []


async def test_a_stopped_replica_hands_its_shards_over_at_the_next_round(
    kube: Kube, replicas: Replicas
) -> None:
    a = await replicas.start("pod-a_1")
    await replicas.start("pod-b_2")
    await replicas.start("pod-c_3")
    await replicas.settled(3, timeout=6 * RETRY_SECONDS + ALLOWANCE)
    await replicas.stop(a)  # a rolling update: it releases, the others take over at once
    took = await replicas.settled(2, timeout=3 * RETRY_SECONDS * 1.2 + ALLOWANCE)
    assert took <= 2 * RETRY_SECONDS * 1.2 + ALLOWANCE  # no lease duration waited out
    assert sorted(len(m.held) for m in replicas.running()) == [6, 6]
    assert a.held == frozenset()
    assert replicas.overlaps == []


async def test_a_killed_replica_s_shards_are_taken_over_within_lease_and_retry(
    kube: Kube, replicas: Replicas, service_account: Path
) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "shard_holder.py"),
            str(service_account),
            kube.namespace,
            "pod-a_1",
            str(SHARDS),
            str(LEASE_SECONDS),
            str(RENEW_SECONDS),
            str(RETRY_SECONDS),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(HERE.parents[1])},  # this checkout's autoscaler/
    )
    try:
        assert holder.stdout is not None
        line = ""
        while not line.startswith("held ") or line.strip() == "held":
            line = await asyncio.wait_for(asyncio.to_thread(holder.stdout.readline), 30)
        b = await replicas.start("pod-b_2")
        await asyncio.sleep(RETRY_SECONDS * 4)  # balanced: a holds half
        held_by_a = {
            shard
            for shard in range(SHARDS)
            if (lease := kube.admin.lease(kube.namespace, shard_lease_name(PREFIX, shard)))
            and lease["spec"]["holderIdentity"] == "pod-a_1"
        }
        assert len(held_by_a) == SHARDS // 2
        assert b.held == frozenset(range(SHARDS)) - held_by_a
    finally:
        holder.kill()  # kill -9: nothing released, the Leases must expire
        holder.wait(10)
    killed = time.monotonic()
    while b.held != frozenset(range(SHARDS)):
        assert time.monotonic() - killed < LEASE_SECONDS + 1.2 * RETRY_SECONDS + 2 * ALLOWANCE
        await asyncio.sleep(0.02)
    took = time.monotonic() - killed
    # Not before the Leases expired (a's last renewal was at most one retry before the kill).
    assert took >= LEASE_SECONDS - RETRY_SECONDS - 0.2
    assert took <= LEASE_SECONDS + 1.2 * RETRY_SECONDS + ALLOWANCE
    assert len(b.held) <= hold_limit(SHARDS, 1)


async def test_replicas_that_cannot_renew_stop_driving_within_the_renew_deadline(
    kube: Kube, replicas: Replicas
) -> None:
    """Fencing: with the API server paused, every holder stops driving its shards within
    the renew deadline of its last renewal (before any other could take them), and takes
    them back when it returns."""
    for name in ("pod-a_1", "pod-b_2"):
        await replicas.start(name)
    await replicas.settled(2, timeout=6 * RETRY_SECONDS + ALLOWANCE)
    with _paused(kube):
        paused = time.monotonic()
        while any(m.held for m in replicas.members):
            # The last renewal was at most one retry period before the pause.
            assert time.monotonic() - paused < RETRY_SECONDS + RENEW_SECONDS + 0.2
            await asyncio.sleep(0.01)
        stopped = time.monotonic() - paused
    assert stopped <= RETRY_SECONDS + RENEW_SECONDS + 0.2
    await replicas.settled(2, timeout=LEASE_SECONDS + 4 * RETRY_SECONDS + 2 * ALLOWANCE)
    assert replicas.overlaps == []
