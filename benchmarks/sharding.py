"""Sharding across service processes against a real kube-apiserver v1.28.7 (issue #22's bars).

Run from the repository root (needs the control plane's binaries: ``KUBEBUILDER_ASSETS`` or
``../shared/k8s/bin``, and etcd)::

    python benchmarks/sharding.py [--targets 10000] [--processes 4] [--shards 12]

Protocol
--------
``--processes`` service processes (``autoscaler.live.service.run``, the code ``autoscaler
run`` runs) share ``--targets`` targets through ``--shards`` shard Leases on the real API
server, with the default timings (15 s lease, 10 s renew deadline, 2 s retry period) and
15 s polls. Load comes from in-process sources (a consumer group per target whose arrival
rate follows a 10-minute wave, its lag following the replicas the service sets) and an
in-memory scale API; the Leases and the state ConfigMaps are real. Each target has a
``linear`` predictor and a 1 % SLO budget (the budget's state is what must survive a
take-over); no history is warm-started, so forecasts come from the naive fallback and no
model is fitted during the run (refit costs are not measured here).

1. Start the processes; wait until every shard is held and they are balanced.
2. CPU per poll cycle of each process (``/proc``: user + system over each 15 s) and its
   resident memory, over 4 cycles.
3. ``kill -9`` one process: seconds from the last renewal of its shard Leases to every
   one of them held by another process (bound: lease + 1.2 x retry = 17.4 s, plus a
   request); how many of its targets got their learned state back (``shard_state_taken_over``).
4. A replacement starts (back to ``--processes``), then one more joins: the shards that
   moved when it joined (bar: at most ceil(shards / (processes + 1)) + 1).
5. SIGTERM to all; the audit of every process's decision log: a target's decisions made
   while driving it (``leader: true``) by two processes interleaved (one drove it after
   another had started): must be none; and every target driven at least once.

Figures go to ``benchmarks/results/sharding.txt`` and ``.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

RESULTS = ROOT / "benchmarks" / "results"
POLL = 15.0
LEASE, RENEW, RETRY = 15.0, 10.0, 2.0
THROUGHPUT = 250.0
PARTITIONS = 12
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# --------------------------------------------------------------------------- a process


def worker_config(targets: int, shards: int, namespace: str, kubeconfig: str) -> dict[str, Any]:
    return {
        "poll_interval_seconds": POLL,
        "dry_run": False,
        "logging": {"format": "json", "level": "info"},
        "leader_election": {
            "enabled": True,
            "lease_namespace": namespace,
            "lease_duration_seconds": LEASE,
            "renew_deadline_seconds": RENEW,
            "retry_period_seconds": RETRY,
        },
        "server": {"sharding": {"shards": shards}},
        "kubernetes": {"mode": "kubeconfig", "kubeconfig_path": kubeconfig},
        "kafka_clusters": {"main": {"bootstrap_servers": ["kafka-0.kafka:9092"]}},
        "targets": [
            {
                "name": f"consumer-{i:05d}",
                "namespace": f"team-{i % 50:02d}",
                "scale_target_ref": {"name": f"worker-{i:05d}"},
                "max_replicas": PARTITIONS,
                "predictor": {"model": "linear"},
                "slo": {"budget_percent": 1.0},
                "triggers": [
                    {
                        "type": "kafka_lag",
                        "cluster": "main",
                        "consumer_group": f"group-{i:05d}",
                        "topics": [f"events-{i:05d}"],
                        "lag_threshold": 625,
                        "per_replica_throughput": THROUGHPUT,
                    }
                ],
            }
            for i in range(targets)
        ],
    }


async def run_worker(args: argparse.Namespace) -> None:
    import numpy as np
    from kubernetes_asyncio import config as k8s_config

    from autoscaler.config import parse_config
    from autoscaler.config.model import TargetConfig
    from autoscaler.decision import KafkaLagObservation, Observation
    from autoscaler.live import service as service_module
    from autoscaler.live.actuator import ScaleResult, ScaleState
    from autoscaler.logs import configure_logging

    log = open(args.log, "w", buffering=1)  # noqa: SIM115 - open for the process's life
    configure_logging("json", "info", stream=log)
    config = parse_config(worker_config(args.targets, args.shards, args.namespace, args.kubeconfig))
    client = await k8s_config.new_client_from_config(config_file=args.kubeconfig)

    class MemoryScale:
        """The scale API in memory (the Leases and ConfigMaps are real: ``api_client``)."""

        def __init__(self) -> None:
            self.api_client = client
            self.replicas: dict[str, int] = {}
            self.version = 0

        async def read(self, target: TargetConfig) -> ScaleState:
            n = self.replicas.setdefault(target.name, 2)
            return ScaleState(spec_replicas=n, status_replicas=n, resource_version="1")

        async def scale(
            self, target: TargetConfig, replicas: int, *, expected_current: int | None = None
        ) -> ScaleResult:
            previous = self.replicas.get(target.name)
            self.version += 1
            self.replicas[target.name] = replicas
            return ScaleResult("scaled", replicas, previous, str(self.version), attempts=1)

        async def event(self, *args: Any, **kwargs: Any) -> None:
            return None

        async def aclose(self) -> None:
            await client.close()

    actuator = MemoryScale()

    class WaveLag:
        """A consumer group whose arrivals follow a 10-minute wave; its lag follows the
        replicas the service set (in this process)."""

        def __init__(self, index: int, name: str) -> None:
            rng = np.random.default_rng(index)
            self.name = name
            self.level = float(rng.uniform(200, 1500))
            self.phase = float(rng.uniform(0, 2 * math.pi))
            self.lag = 0.0
            self.last: float | None = None

        async def poll(self, now: float) -> Observation:
            rate = self.level * (1 + 0.6 * math.sin(2 * math.pi * now / 600 + self.phase))
            seconds = POLL if self.last is None else max(0.0, now - self.last)
            self.last = now
            capacity = actuator.replicas.get(self.name, 2) * THROUGHPUT * seconds
            backlog = self.lag + rate * seconds
            processed = min(capacity, backlog)
            self.lag = backlog - processed
            return KafkaLagObservation(
                observed_at=now,
                total_lag=int(self.lag),
                partition_count=PARTITIONS,
                partitions_with_lag=min(PARTITIONS, int(self.lag // 100)),
                arrival_rate=rate,
                processing_rate=processed / seconds if seconds else None,
            )

    index = {target.name: i for i, target in enumerate(config.targets)}
    original_controller = service_module.Service._controller

    async def controller(
        self: Any, target: Any, now: float, previous: Any, kept: Any = None
    ) -> Any:
        built = await original_controller(self, target, now, previous, kept or frozenset())
        (name,) = target.trigger_names
        built.sources = {name: WaveLag(index[target.name], target.name)}
        return built

    class NoSource:
        async def poll(self, now: float) -> Observation:
            raise AssertionError("never polled: replaced")

    service_module.Service._source = lambda self, trigger: NoSource()  # type: ignore[method-assign]
    service_module.Service._controller = controller  # type: ignore[method-assign]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await service_module.run(config, stop, actuator=actuator, serve_http=False)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the benchmark


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 2**20


class Bench:
    def __init__(self, args: argparse.Namespace, plane: Any, namespace: str, work: Path) -> None:
        self.args = args
        self.plane = plane
        self.namespace = namespace
        self.work = work
        self.kubeconfig = plane.admin_kubeconfig
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        env = {**os.environ, "HOSTNAME": name, "PYTHONPATH": str(ROOT)}
        self.procs[name] = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                "--targets",
                str(self.args.targets),
                "--shards",
                str(self.args.shards),
                "--namespace",
                self.namespace,
                "--kubeconfig",
                str(self.kubeconfig),
                "--log",
                str(self.work / f"{name}.log"),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.work / f"{name}.err", "w"),  # noqa: SIM115
        )

    def holders(self) -> dict[int, tuple[str, str]]:
        """Per shard: (the process holding it, its renewTime); expired or free: ("", ...)."""
        leases = self.plane.admin.request(
            "GET", f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"
        )["items"]
        out: dict[int, tuple[str, str]] = {}
        for lease in leases:
            labels = lease["metadata"].get("labels", {})
            if labels.get("autoscaler.io/lease-role") != "shard":
                continue
            holder = lease["spec"].get("holderIdentity") or ""
            out[int(labels["autoscaler.io/shard"])] = (
                holder.rsplit("_", 1)[0],
                lease["spec"].get("renewTime", ""),
            )
        return out

    def balanced(self, names: list[str]) -> bool:
        held = self.holders()
        counts = [sum(1 for h, _ in held.values() if h == n) for n in names]
        share = math.ceil(self.args.shards / len(names))
        return (
            len(held) == self.args.shards
            and all(h in names for h, _ in held.values())
            and all(share - 1 <= c <= share for c in counts)
        )

    async def wait_balanced(self, names: list[str], timeout: float) -> float:
        started = time.monotonic()
        while not self.balanced(names):
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"not balanced over {names} after {timeout} s")
            await asyncio.sleep(0.25)
        return time.monotonic() - started


async def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    from servers.kube_control_plane import KubeControlPlane, missing

    reason = missing()
    if reason:
        raise SystemExit(f"cannot run: {reason}")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {
        "targets": args.targets,
        "processes": args.processes,
        "shards": args.shards,
    }
    with KubeControlPlane() as plane:
        namespace = "sharding"
        plane.admin.create_namespace(namespace)
        bench = Bench(args, plane, namespace, work)
        names = [f"worker-{n}" for n in range(args.processes)]
        started = time.monotonic()
        for name in names:
            bench.start(name)
        figures["balanced_after_seconds"] = round(await bench.wait_balanced(names, 600), 1)
        print(f"balanced after {figures['balanced_after_seconds']} s", flush=True)
        await asyncio.sleep(3 * POLL)  # every target built and polling

        # CPU per cycle and memory, per process.
        pids = {name: bench.procs[name].pid for name in names}
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        cycles: dict[str, list[float]] = defaultdict(list)
        for _ in range(4):
            await asyncio.sleep(POLL)
            for name, pid in pids.items():
                now = cpu_seconds(pid)
                cycles[name].append(now - before[name])
                before[name] = now
        figures["cpu_per_cycle_seconds"] = {
            name: round(statistics.median(values), 3) for name, values in cycles.items()
        }
        figures["rss_mb"] = {name: round(rss_mb(pid)) for name, pid in pids.items()}
        print("cpu per cycle", figures["cpu_per_cycle_seconds"], "rss", figures["rss_mb"])

        # kill -9 one process.
        victim = names[0]
        held = {s for s, (h, _) in bench.holders().items() if h == victim}
        bench.procs[victim].send_signal(signal.SIGKILL)
        bench.procs[victim].wait(10)
        killed_at = time.time()
        last_renewal = max(
            _timestamp(renew) for s, (h, renew) in bench.holders().items() if s in held
        )
        survivors = names[1:]
        while True:
            now_held = bench.holders()
            if all(now_held[s][0] in survivors for s in held):
                break
            if time.time() - killed_at > 120:
                raise RuntimeError("the killed process's shards were not taken over")
            await asyncio.sleep(0.1)
        figures["takeover_after_last_renewal_seconds"] = round(time.time() - last_renewal, 1)
        figures["takeover_bound_seconds"] = LEASE + 1.2 * RETRY
        figures["killed_shards"] = sorted(held)
        print(f"take-over {figures['takeover_after_last_renewal_seconds']} s", flush=True)
        await asyncio.sleep(2 * POLL)

        # A replacement, then a fifth.
        bench.start("worker-r")
        current = [*survivors, "worker-r"]
        await bench.wait_balanced(current, 120)
        await asyncio.sleep(POLL)
        holders_before = {s: h for s, (h, _) in bench.holders().items()}
        bench.start("worker-x")
        joined = [*current, "worker-x"]
        figures["join_balanced_after_seconds"] = round(await bench.wait_balanced(joined, 120), 1)
        holders_after = {s: h for s, (h, _) in bench.holders().items()}
        moved = [s for s in holders_before if holders_before[s] != holders_after[s]]
        figures["moved_on_join"] = len(moved)
        figures["moved_on_join_bar"] = math.ceil(args.shards / len(joined)) + 1
        print(f"joined: {len(moved)} shards moved", flush=True)
        await asyncio.sleep(2 * POLL)

        for proc in bench.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in bench.procs.values():
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        figures["run_seconds"] = round(time.monotonic() - started)
    figures |= audit(work, args.targets, args.shards, held, killed_at)
    return figures


def _timestamp(text: str) -> float:
    import datetime

    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def audit(
    work: Path, targets: int, shards: int, killed_shards: set[int], killed_at: float
) -> dict[str, Any]:
    """Every process's decision log: who drove which target when."""
    from autoscaler.sharding.assignment import shard_of, target_key

    driven: dict[str, list[tuple[float, str]]] = defaultdict(list)
    restored = 0
    for log in sorted(work.glob("*.log")):
        worker = log.stem
        for line in log.open():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            event = entry.get("event")
            if event == "scaling_decision" and entry.get("leader"):
                driven[entry["target"]].append((_timestamp(entry["timestamp"]), worker))
            elif (
                event == "shard_state_taken_over"
                and _timestamp(entry["timestamp"]) > killed_at
                and entry.get("shard") in killed_shards
            ):
                restored += int(entry.get("targets", 0))
    interleaved = 0
    for decisions in driven.values():
        decisions.sort()
        seen_end: dict[str, float] = {}
        current = None
        for at, worker in decisions:
            if worker != current and worker in seen_end and current is not None:
                interleaved += 1  # back to a process after another had started driving
            seen_end[worker] = at
            current = worker
    return {
        "targets_driven": len(driven),
        "targets_never_driven": targets - len(driven),
        "interleaved_drivers": interleaved,
        "driven_decisions": sum(len(v) for v in driven.values()),
        "killed_targets_restored": restored,
        "killed_targets": sum(
            1
            for i in range(targets)
            if shard_of(target_key(f"team-{i % 50:02d}", "Deployment", f"worker-{i:05d}"), shards)
            in killed_shards
        ),
    }


def _verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def render(f: dict[str, Any]) -> str:
    cpu = f["cpu_per_cycle_seconds"]
    share = f["targets"] / f["processes"]
    per_1000 = {n: mb * 1000 / share for n, mb in f["rss_mb"].items()}
    memory = ", ".join(
        f"{n} {mb} MB ({per_1000[n]:.0f} MB per 1,000 targets)" for n, mb in f["rss_mb"].items()
    )
    takeover, bound = f["takeover_after_last_renewal_seconds"], f["takeover_bound_seconds"]
    moved, moved_bar = f["moved_on_join"], f["moved_on_join_bar"]
    lines = [
        f"sharding: {f['targets']:,} targets, {f['processes']} processes, {f['shards']} shards, "
        f"15 s polls, lease {LEASE:g} s / renew {RENEW:g} s / retry {RETRY:g} s, real "
        f"kube-apiserver; run took {f['run_seconds']} s",
        f"  balanced after start: {f['balanced_after_seconds']} s",
        "  CPU per cycle (median of 4), per process: "
        + ", ".join(f"{n} {v:.2f} s" for n, v in cpu.items())
        + f" (bar < 1 s: {_verdict(max(cpu.values()) < 1)})",
        f"  resident memory per process: {memory} "
        f"(bar <= 300 MB per 1,000: {_verdict(max(per_1000.values()) <= 300)})",
        f"  kill -9 of a process holding shards {f['killed_shards']}: taken over {takeover} s "
        f"after their last renewal (bound {bound:.1f} s + a request: "
        f"{_verdict(takeover <= bound + 1)}); {f['killed_targets_restored']} of its "
        f"{f['killed_targets']} targets got their learned state back",
        f"  a process joining {f['processes']}: {moved} shards moved (bar <= {moved_bar}: "
        f"{_verdict(moved <= moved_bar)}), balanced after {f['join_balanced_after_seconds']} s",
        f"  audit of {f['driven_decisions']:,} decisions made while driving: "
        f"{f['interleaved_drivers']} interleaved (bar 0: "
        f"{_verdict(f['interleaved_drivers'] == 0)}); {f['targets_driven']:,} targets driven, "
        f"{f['targets_never_driven']} never",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--shards", type=int, default=12)
    parser.add_argument("--work", default="/tmp/sharding-bench")
    parser.add_argument("--output", default=str(RESULTS / "sharding.txt"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--namespace", help=argparse.SUPPRESS)
    parser.add_argument("--kubeconfig", help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(run_worker(args))
        return
    figures = asyncio.run(run_benchmark(args))
    text = render(figures)
    print(text)
    output = Path(args.output)
    output.write_text(text)
    output.with_suffix(".json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
