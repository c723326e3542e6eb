"""Shard Leases in a process of their own, for ``kill -9`` take-over tests.

    python shard_holder.py KUBECONFIG NAMESPACE IDENTITY SHARDS LEASE RENEW RETRY

Holds its share of ``SHARDS`` shard Leases with the given timings and prints the shards it
holds (``held 0,3,7``) whenever they change; runs until killed.
"""

from __future__ import annotations

import asyncio
import sys

import structlog
from kubernetes_asyncio import config as k8s_config

from autoscaler.config.model import LeaderElectionConfig
from autoscaler.live.shard_leases import ShardLeases


async def main(kubeconfig: str, namespace: str, identity: str, shards: str, *timings: str) -> None:
    lease, renew, retry = (float(value) for value in timings)
    config = LeaderElectionConfig(
        lease_namespace=namespace,
        lease_duration_seconds=lease,
        renew_deadline_seconds=renew,
        retry_period_seconds=retry,
    )
    client = await k8s_config.new_client_from_config(config_file=kubeconfig)
    leases = ShardLeases(
        client, config, int(shards), identity=identity, request_timeout_seconds=1.0
    )
    stop = asyncio.Event()
    task = asyncio.create_task(leases.run(stop))
    while True:
        changed = leases.changed
        print("held " + ",".join(str(s) for s in sorted(leases.held)), flush=True)
        await changed.wait()
        if task.done():
            break


if __name__ == "__main__":
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout: ours
    asyncio.run(main(*sys.argv[1:]))
