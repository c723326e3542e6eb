"""Leader fail-over against a real kube-apiserver v1.28.7, with the default timings
(15 s lease, 10 s renew deadline, 2 s retry period), against client-go's schedule measured
in the same run.

Run from the repository root (needs the control plane's binaries: ``KUBEBUILDER_ASSETS`` or
``../shared/k8s/bin``, and etcd)::

    python benchmarks/failover.py [--trials 3]

Protocol
--------
* **Crash**: a leader in its own process holds the Lease; a follower in this process has
  seen it renew; at a random moment of the renew cycle the leader is killed with SIGKILL
  (no release). Figure: seconds from the Lease's last ``renewTime`` to the follower leading.
  Bound promised by ``autoscaler/live/leader.py``: lease + 1.2 x retry = 17.4 s (+ a request).
* **Outage**: leader and follower in this process; the API server is stopped (SIGSTOP) for
  12 s (past the renew deadline, within the lease) and continued. Figures: seconds from the
  server's return to a leader again, and whether the Lease changed hands.
* **Baseline**: the same elector with client-go's schedule: a follower's retry jittered by
  up to 120% and no wake-up at the expiry; a leader that stepped down waits out its own
  Lease like any candidate.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import structlog  # noqa: E402
from kubernetes_asyncio import config as k8s_config  # noqa: E402
from servers.kube_control_plane import KubeControlPlane, missing  # noqa: E402

from autoscaler.config.model import LeaderElectionConfig  # noqa: E402
from autoscaler.live import leader  # noqa: E402

LEASE, RENEW, RETRY = 15.0, 10.0, 2.0
OUTAGE = 12.0
HOLDER = ROOT / "tests" / "kube" / "lease_holder.py"
RESULTS = ROOT / "benchmarks" / "results"


class ClientGoSchedule(leader.LeaderElector):
    """The baseline: client-go's follower schedule, and no reclaim after stepping down."""

    def _follower_delay(self, now: float) -> float:
        return self._config.retry_period_seconds * (1 + random.random() * 1.2)

    def _step_down(self, reason: str) -> None:
        self._written = None
        super()._step_down(reason)


def _renew_time(lease: dict[str, Any]) -> float:
    text = lease["spec"]["renewTime"].replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(text).timestamp()


async def _elector(
    plane: KubeControlPlane, namespace: str, identity: str, kind: type[leader.LeaderElector]
) -> tuple[leader.LeaderElector, Any]:
    config = LeaderElectionConfig(
        lease_namespace=namespace,
        lease_duration_seconds=LEASE,
        renew_deadline_seconds=RENEW,
        retry_period_seconds=RETRY,
    )
    client = await k8s_config.new_client_from_config(config_file=str(plane.admin_kubeconfig))
    return kind(client, config, identity=identity, request_timeout_seconds=2.0), client


async def crash_trial(plane: KubeControlPlane, namespace: str, kind: type[Any]) -> float:
    plane.admin.create_namespace(namespace)
    holder = subprocess.Popen(
        [
            sys.executable,
            str(HOLDER),
            str(plane.admin_kubeconfig),
            namespace,
            "pod-a",
            str(LEASE),
            str(RENEW),
            str(RETRY),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert holder.stdout is not None
    line = await asyncio.to_thread(holder.stdout.readline)
    assert line.strip() == "leading", line
    follower, client = await _elector(plane, namespace, "pod-b", kind)
    stop = asyncio.Event()
    task = asyncio.create_task(follower.run(stop))
    await asyncio.sleep(RETRY * 3 + random.random() * RETRY)  # a random phase of the cycle
    holder.kill()
    holder.wait()
    lease = plane.admin.lease(namespace, "predictive-autoscaler")
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == "pod-a"
    last_renewal = _renew_time(lease)
    await follower.wait_for(leader=True)
    delay = time.time() - last_renewal
    stop.set()
    await task
    await client.close()
    return delay


async def outage_trial(
    plane: KubeControlPlane, namespace: str, kind: type[Any]
) -> tuple[float, bool]:
    plane.admin.create_namespace(namespace)
    stop = asyncio.Event()
    a, a_client = await _elector(plane, namespace, "pod-a", kind)
    a_task = asyncio.create_task(a.run(stop))
    await a.wait_for(leader=True)
    b, b_client = await _elector(plane, namespace, "pod-b", kind)
    b_task = asyncio.create_task(b.run(stop))
    await asyncio.sleep(RETRY * 3 + random.random() * RETRY)
    plane.pause()
    await asyncio.sleep(OUTAGE)
    plane.resume()
    back = time.monotonic()
    while not (a.is_leader or b.is_leader):
        await asyncio.sleep(0.01)
    without_leader = time.monotonic() - back
    changed_hands = b.is_leader
    stop.set()
    await asyncio.gather(a_task, b_task)
    await a_client.close()
    await b_client.close()
    return without_leader, changed_hands


def _describe(values: list[float]) -> str:
    return (
        f"mean {statistics.mean(values):5.1f} s, max {max(values):5.1f} s "
        f"({', '.join(f'{v:.1f}' for v in values)})"
    )


async def main(trials: int) -> int:
    reason = missing()
    if reason is not None:
        print(f"failover benchmark skipped: {reason}")
        return 2
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(40)  # errors only
    )
    results: dict[str, Any] = {"lease": LEASE, "renew": RENEW, "retry": RETRY, "runs": {}}
    lines = []
    with KubeControlPlane() as plane:
        for label, kind in (("ours", leader.LeaderElector), ("client-go", ClientGoSchedule)):
            crashes = [
                await crash_trial(plane, f"crash-{label.replace('-', '')}-{i}", kind)
                for i in range(trials)
            ]
            outages = [
                await outage_trial(plane, f"outage-{label.replace('-', '')}-{i}", kind)
                for i in range(trials)
            ]
            results["runs"][label] = {"crash": crashes, "outage": outages}
            lines.append(
                f"{label:>9}: kill -9 to take-over after the last renewal: {_describe(crashes)}"
            )
            lines.append(
                f"{'':>9}  API back after a {OUTAGE:.0f} s outage to a leader again: "
                f"{_describe([o[0] for o in outages])}; the Lease changed hands in "
                f"{sum(o[1] for o in outages)} of {trials}"
            )
    ours, base = results["runs"]["ours"], results["runs"]["client-go"]
    crash_ratio = statistics.mean(ours["crash"]) / statistics.mean(base["crash"])
    outage_ratio = statistics.mean(o[0] for o in ours["outage"]) / statistics.mean(
        o[0] for o in base["outage"]
    )
    bound = LEASE + 1.2 * RETRY
    lines.append(
        f"take-over: {crash_ratio:.2f}x client-go's mean; worst {max(ours['crash']):.1f} s "
        f"against the promised {bound:.1f} s + one request"
    )
    lines.append(f"leaderless after an outage: {outage_ratio:.2f}x client-go's mean")
    text = (
        f"Leader fail-over, real kube-apiserver, lease {LEASE:.0f} s / renew {RENEW:.0f} s / "
        f"retry {RETRY:.0f} s, {trials} trials each\n" + "\n".join(lines) + "\n"
    )
    print(text, end="")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "failover.txt").write_text(text)
    (RESULTS / "failover.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=3)
    sys.exit(asyncio.run(main(parser.parse_args().trials)))
