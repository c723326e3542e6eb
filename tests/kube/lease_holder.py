"""A leader elector in a process of its own, for ``kill -9`` fail-over tests.

    python lease_holder.py KUBECONFIG NAMESPACE IDENTITY LEASE RENEW RETRY

Campaigns for the ``predictive-autoscaler`` Lease with the given timings and prints
``leading`` once it holds it; runs until killed.
"""

from __future__ import annotations

import asyncio
import sys

import structlog
from kubernetes_asyncio import config as k8s_config

from autoscaler.config.model import LeaderElectionConfig
from autoscaler.live.leader import LeaderElector


async def main(kubeconfig: str, namespace: str, identity: str, *timings: str) -> None:
    lease, renew, retry = (float(value) for value in timings)
    config = LeaderElectionConfig(
        lease_namespace=namespace,
        lease_duration_seconds=lease,
        renew_deadline_seconds=renew,
        retry_period_seconds=retry,
    )
    client = await k8s_config.new_client_from_config(config_file=kubeconfig)
    elector = LeaderElector(client, config, identity=identity, request_timeout_seconds=1.0)
    stop = asyncio.Event()
    task = asyncio.create_task(elector.run(stop))
    await elector.wait_for(leader=True)
    print("leading", flush=True)
    await task


if __name__ == "__main__":
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout: ours
    asyncio.run(main(*sys.argv[1:]))
