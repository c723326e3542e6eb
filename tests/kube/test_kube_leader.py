"""Leader election on a real coordination.k8s.io/v1 Lease, with the deploy/ ServiceAccount.

The electors hold exactly deploy/'s lease rules (create; get and update on the one Lease
name), so the Lease calls are checked by the real RBAC. Fail-over is measured here with a
leader in its own process killed with SIGKILL, and an outage is the API server stopped
(SIGSTOP) and continued: requests hang until the client gives up, as in a real one.

The timings are short (a 2 s lease, 1 s retry) so a test takes seconds; the bounds asserted
are those ``autoscaler/live/leader.py`` promises, with a fixed allowance for one request.
``benchmarks/failover.py`` measures the same with the default 15 s lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from kube_rbac import install_rbac, remove_rule
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from servers.kube_control_plane import Kube

from autoscaler.config.model import LeaderElectionConfig
from autoscaler.live.leader import LeaderElector

HERE = Path(__file__).resolve().parent
LEASE = "predictive-autoscaler"  # the name deploy/'s Role grants get and update on
LEASE_SECONDS, RENEW_SECONDS, RETRY_SECONDS = 2.0, 1.5, 1.0
ALLOWANCE = 0.5
"""Seconds for one request and the scheduler of a loaded 2-core machine."""


def _config(
    namespace: str,
    lease: float = LEASE_SECONDS,
    renew: float = RENEW_SECONDS,
    retry: float = RETRY_SECONDS,
) -> LeaderElectionConfig:
    return LeaderElectionConfig(
        lease_namespace=namespace,
        lease_duration_seconds=lease,
        renew_deadline_seconds=renew,
        retry_period_seconds=retry,
    )


class Electors:
    """In-process candidates, each with its own client, stopped (and released) at the end."""

    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.config = _config(namespace)
        self.electors: list[LeaderElector] = []
        self.stops: list[asyncio.Event] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.clients: list[k8s.ApiClient] = []

    async def start(self, identity: str) -> LeaderElector:
        client = await k8s_config.new_client_from_config(config_file=str(self.kubeconfig))
        elector = LeaderElector(client, self.config, identity=identity, request_timeout_seconds=1.0)
        stop = asyncio.Event()
        self.clients.append(client)
        self.electors.append(elector)
        self.stops.append(stop)
        self.tasks.append(asyncio.create_task(elector.run(stop)))
        return elector

    async def stop(self, elector: LeaderElector) -> None:
        """Stop one candidate as SIGTERM does: it releases the Lease if it holds it."""
        index = self.electors.index(elector)
        self.stops[index].set()
        await asyncio.wait_for(self.tasks[index], 5)

    def leaders(self) -> list[str]:
        return [e.identity for e in self.electors if e.is_leader]

    async def close(self) -> None:
        for stop in self.stops:
            stop.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), 15)
        for client in self.clients:
            await client.close()


@pytest.fixture
def service_account(kube: Kube) -> Path:
    return install_rbac(kube)


@pytest.fixture
async def electors(kube: Kube, service_account: Path) -> AsyncIterator[Electors]:
    group = Electors(service_account, kube.namespace)
    yield group
    await group.close()


@contextlib.contextmanager
def _paused(kube: Kube) -> Iterator[None]:
    kube.plane.pause()
    try:
        yield
    finally:
        kube.plane.resume()


def _renew_time(lease: dict[str, Any]) -> float:
    text = lease["spec"]["renewTime"]
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def _watch_at_most_one(group: Electors, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert len(group.leaders()) <= 1, group.leaders()
        await asyncio.sleep(0.01)


async def test_acquire_renew_and_release_on_a_real_lease(kube: Kube, electors: Electors) -> None:
    elector = await electors.start("pod-a_1")
    await asyncio.wait_for(elector.wait_for(leader=True), 5)
    lease = kube.admin.lease(kube.namespace, LEASE)
    assert lease is not None
    spec = lease["spec"]
    assert (spec["holderIdentity"], spec["leaseDurationSeconds"]) == ("pod-a_1", 2)
    first = _renew_time(lease)
    await asyncio.sleep(RETRY_SECONDS * 2.5)
    renewed = kube.admin.lease(kube.namespace, LEASE)
    assert renewed is not None
    assert _renew_time(renewed) > first
    assert renewed["spec"]["leaseTransitions"] == 0
    await electors.close()
    released = kube.admin.lease(kube.namespace, LEASE)
    assert released is not None
    assert released["spec"]["holderIdentity"] == ""


async def test_two_candidates_one_leader_and_a_prompt_handover_on_release(
    kube: Kube, electors: Electors
) -> None:
    a = await electors.start("pod-a_1")
    await asyncio.wait_for(a.wait_for(leader=True), 5)
    b = await electors.start("pod-b_2")
    await _watch_at_most_one(electors, RETRY_SECONDS * 2)
    assert electors.leaders() == ["pod-a_1"]
    await electors.stop(a)  # a rolling update: a releases, b takes over at its next read
    released = time.monotonic()
    await asyncio.wait_for(b.wait_for(leader=True), 5)
    assert time.monotonic() - released <= RETRY_SECONDS * 1.2 + ALLOWANCE
    lease = kube.admin.lease(kube.namespace, LEASE)
    assert lease is not None
    assert (lease["spec"]["holderIdentity"], lease["spec"]["leaseTransitions"]) == ("pod-b_2", 1)


async def test_two_candidates_racing_for_a_missing_lease_give_one_leader(
    kube: Kube, electors: Electors
) -> None:
    first, second = await electors.start("pod-a_1"), await electors.start("pod-b_2")
    await asyncio.wait_for(
        asyncio.wait(
            [asyncio.ensure_future(e.wait_for(leader=True)) for e in (first, second)],
            return_when=asyncio.FIRST_COMPLETED,
        ),
        5,
    )
    await _watch_at_most_one(electors, RETRY_SECONDS * 3)
    assert len(electors.leaders()) == 1


async def test_a_killed_leader_is_replaced_within_the_lease_and_one_retry(
    kube: Kube, electors: Electors, service_account: Path
) -> None:
    """A retry period close to the lease makes the bound bite: client-go's schedule (a
    120% jitter, then a whole retry after the expiry) would take up to 11.8 s here."""
    duration, renew, retry = 3.0, 2.5, 2.0
    electors.config = _config(kube.namespace, lease=duration, renew=renew, retry=retry)
    holder = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "lease_holder.py"),
            str(service_account),
            kube.namespace,
            "pod-a_1",
            str(duration),
            str(renew),
            str(retry),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(HERE.parents[1])},  # this checkout's autoscaler/
    )
    try:
        assert holder.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(holder.stdout.readline), 30)
        assert line.strip() == "leading"
        follower = await electors.start("pod-b_2")
        await asyncio.sleep(retry * 2)  # the follower has seen the leader renew
        assert not follower.is_leader
    finally:
        holder.kill()  # kill -9: no release, the Lease must expire
        holder.wait(10)
    lease = kube.admin.lease(kube.namespace, LEASE)
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == "pod-a_1"
    last_renewal = _renew_time(lease)
    await asyncio.wait_for(follower.wait_for(leader=True), 20)
    taken_over_after = time.time() - last_renewal
    assert taken_over_after >= duration - ALLOWANCE  # not before the lease expired
    assert taken_over_after <= duration + 1.2 * retry + ALLOWANCE
    lease = kube.admin.lease(kube.namespace, LEASE)
    assert lease is not None
    assert (lease["spec"]["holderIdentity"], lease["spec"]["leaseTransitions"]) == ("pod-b_2", 1)


async def test_after_an_api_outage_the_leader_takes_its_own_lease_straight_back(
    kube: Kube, electors: Electors
) -> None:
    """Longer than the renew deadline, shorter than the lease: the leader steps down (it
    cannot know whether it still holds the Lease), and when the server is back it takes
    the Lease again at once instead of waiting out a lease nobody else held. (A lease of
    6 s and a deadline of 2 s leave the follower no right to take over in between.)"""
    retry = 0.5
    electors.config = _config(kube.namespace, lease=6.0, renew=2.0, retry=retry)
    a = await electors.start("pod-a_1")
    await asyncio.wait_for(a.wait_for(leader=True), 5)
    b = await electors.start("pod-b_2")
    await asyncio.sleep(retry * 3)
    with _paused(kube):
        await asyncio.wait_for(a.wait_for(leader=False), 2.0 + ALLOWANCE + 1.0)
        assert not b.is_leader
    back = time.monotonic()
    await asyncio.wait_for(a.wait_for(leader=True), 10)
    assert time.monotonic() - back <= retry * 1.2 + 1.0 + ALLOWANCE  # + a hung request
    await _watch_at_most_one(electors, retry * 4)
    assert electors.leaders() == ["pod-a_1"]
    lease = kube.admin.lease(kube.namespace, LEASE)
    assert lease is not None
    assert (lease["spec"]["holderIdentity"], lease["spec"]["leaseTransitions"]) == ("pod-a_1", 0)


async def test_a_long_outage_never_gives_two_leaders(kube: Kube, electors: Electors) -> None:
    """Past the lease duration both candidates may try when the server is back; the
    resourceVersion on every write leaves exactly one leader."""
    a = await electors.start("pod-a_1")
    await asyncio.wait_for(a.wait_for(leader=True), 5)
    await electors.start("pod-b_2")
    await asyncio.sleep(RETRY_SECONDS * 1.5)
    with _paused(kube):
        await asyncio.sleep(LEASE_SECONDS + 1.0)
        assert electors.leaders() == []
    back = time.monotonic()
    while not electors.leaders():
        assert time.monotonic() - back < 10, "nobody leads after the outage"
        await asyncio.sleep(0.02)
    await _watch_at_most_one(electors, RETRY_SECONDS * 3)
    assert len(electors.leaders()) == 1


async def test_a_lease_the_role_does_not_allow_is_logged_with_verb_resource_and_namespace(
    kube: Kube, electors: Electors
) -> None:
    a = await electors.start("pod-a_1")
    await asyncio.wait_for(a.wait_for(leader=True), 5)
    with structlog.testing.capture_logs() as logs:
        remove_rule(kube, "predictive-autoscaler-leader-election", "leases", "update")
        await asyncio.wait_for(a.wait_for(leader=False), RENEW_SECONDS + 3)
    errors = [entry for entry in logs if entry["event"] == "lease_api_error"]
    assert errors, logs
    request = f"update leases.coordination.k8s.io/{LEASE} in namespace {kube.namespace}"
    assert errors[0]["status"] == 403
    assert errors[0]["request"] == request
    assert errors[0]["error"].startswith(f"forbidden: {request}")
    assert errors[0]["error"].endswith("(deploy/base/rbac-leader-election.yaml)")
