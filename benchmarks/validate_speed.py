"""How ``autoscaler validate`` scales with the number of targets: it must be linear.

Run from the repository root::

    python benchmarks/validate_speed.py [--sizes 1000 5000 20000 50000]
        [--baseline ../main] [--profile 20000]

It writes one config per size: the example's Kafka cluster and Prometheus server, then that
many kafka_lag targets like config.example.yaml's first one (a dozen keys, each target with
its own name, workload, consumer group and topic, over five namespaces). Each is loaded
as ``autoscaler validate`` loads it (``cli._load``: ``load_config``, i.e. read, parse,
size and alias guards, schema, checks across targets, and the problems printed) in a fresh
child process, which reports the CPU seconds of that call, its wall time and the process's
peak memory; then one ``python -m autoscaler validate`` of the largest file runs
as a user runs it (start-up and one printed line per target included). Every config is
also timed invalid: each target with a key copied from KEDA (``lagThreshold``), every tenth
with no triggers and every tenth another's name and workload, so that the code that finds,
words, places and redacts problems runs once per target.

Each figure is the best of ``--repeats`` runs (3), or of as many as fit in 30 s of CPU:
the smallest sizes, which set the ratios, are the noisiest on a busy machine.

Linear validation costs the same per target at every size: each size's CPU per target is
printed as a ratio to the smallest size's, which stays near 1 when linear and grows with the
size when not (quadratic work: 50x at 50 times the targets). ``--baseline DIR`` times
another checkout of the project (e.g. ``git worktree add ../main main``) in the same run,
each size's child processes alternating between the two trees; its size guards are lifted
(an 8 MiB and 1,000,000-value limit refused these files outright). ``--profile N`` prints
where the time goes at N targets (cProfile), to find what is not linear. Timings are this
machine's, so no test asserts them; the figures go to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "validate_speed.txt"
NAMESPACES = ("shop", "billing", "search", "payments", "logistics")

HEADER = """\
poll_interval_seconds: 15
dry_run: true
logging:
  format: auto
  level: info
kubernetes:
  mode: auto
  request_timeout_seconds: 10
leader_election:
  enabled: true
  lease_name: predictive-autoscaler
kafka_clusters:
  main:
    bootstrap_servers:
      - kafka-0.kafka-brokers.kafka.svc:9093
      - kafka-1.kafka-brokers.kafka.svc:9093
      - kafka-2.kafka-brokers.kafka.svc:9093
    security_protocol: SASL_SSL
    sasl:
      mechanism: SCRAM-SHA-512
      username: predictive-autoscaler
      password_file: /var/run/secrets/kafka/password
    tls:
      ca_file: /var/run/secrets/kafka/ca.crt
    client_id: predictive-autoscaler
    request_timeout_seconds: 10
prometheus_servers:
  main:
    url: http://prometheus-operated.monitoring.svc:9090
    timeout_seconds: 10
targets:
"""

TARGET = """\
  - name: {name}
    namespace: {namespace}
    scale_target_ref:
      kind: Deployment
      name: {name}
    min_replicas: 1
    max_replicas: 50
    startup_seconds: 60
    triggers:{triggers}
    predictor:
      model: auto
      quantile: 0.9
    slo:
      max_lag_seconds: 60
    actuation:
      min_dwell_seconds: 60
      min_step: 2
"""

TRIGGER = """
      - type: kafka_lag
        cluster: main
        consumer_group: {name}
        topics: [{name}]
        {threshold_key}: 625
        per_replica_throughput: 250"""


def config_text(targets: int, *, invalid: bool = False) -> str:
    """A config of ``targets`` kafka_lag targets, all distinct (valid), or each with a
    mistake (``invalid``, as the module docstring says)."""
    parts = [HEADER]
    for index in range(targets):
        name = f"orders-consumer-{index:05d}"
        if invalid and index % 10 == 5:
            name = f"orders-consumer-{index - 1:05d}"  # the previous target's name and workload
        key = "lagThreshold" if invalid else "lag_threshold"
        triggers = TRIGGER.format(name=name, threshold_key=key)
        if invalid and index % 10 == 7:
            triggers = " []"
        namespace = NAMESPACES[index % len(NAMESPACES)]
        if invalid and index % 10 == 5:
            namespace = NAMESPACES[(index - 1) % len(NAMESPACES)]
        parts.append(TARGET.format(name=name, namespace=namespace, triggers=triggers))
    return "".join(parts)


# --------------------------------------------------------------------------- child process


def child(path: str) -> None:
    """Load ``path`` with the ``autoscaler`` on this process's path; print the figures."""
    del sys.path[0]  # this script's folder, whose predictors.py would shadow the package
    from autoscaler import cli
    from autoscaler.config import source as config_source

    if os.environ.get("VALIDATE_SPEED_LIFT_GUARDS"):  # the baseline's, which refuse the file
        for name in ("MAX_DOCUMENT_CHARACTERS", "MAX_EXPANDED_NODES", "MAX_ALIASED_VALUES"):
            if hasattr(config_source, name):
                setattr(config_source, name, 2**62)
    printed = io.StringIO()
    cpu, wall = time.process_time(), time.perf_counter()
    config = cli._load(path, printed)  # what ``validate`` does before printing the targets
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    # "<file>: N problems", then one line per problem
    problems = 0 if config is not None else int(printed.getvalue().split("\n")[0].split()[-2])
    print(json.dumps({"cpu": cpu, "wall": wall, "peak_bytes": _peak_bytes(), "problems": problems}))


def _peak_bytes() -> int:
    """This process's peak resident memory. Not ``ru_maxrss``: on Linux it survives
    ``exec``, so a child would report at least its parent's size at the fork."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def measure(tree: Path, path: Path, *, lift_guards: bool) -> dict[str, float]:
    """One load of ``path`` by the code in ``tree``, in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    if lift_guards:
        env["VALIDATE_SPEED_LIFT_GUARDS"] = "1"
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", str(path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tree,
        check=True,
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def time_cli(path: Path) -> tuple[float, int, str]:
    """Wall time, exit code and last output line of ``python -m autoscaler validate``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "autoscaler", "validate", str(path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    elapsed = time.perf_counter() - start
    output = (done.stdout or done.stderr).strip().splitlines()
    return elapsed, done.returncode, output[-1] if output else ""


def profile(targets: int, folder: Path) -> None:
    sys.path.insert(0, str(ROOT))  # before this folder, whose predictors.py is not the package
    from autoscaler.config import load_config

    path = folder / f"targets-{targets}.yaml"
    path.write_text(config_text(targets))
    profiler = cProfile.Profile()
    profiler.enable()
    load_config(path)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


# --------------------------------------------------------------------------- report


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000, 50000])
    parser.add_argument("--baseline", type=Path, help="another checkout to time alongside")
    parser.add_argument("--no-invalid", action="store_true", help="time valid configs only")
    parser.add_argument(
        "--repeats", type=int, default=3, help="best of N loads per size, while under 30 s"
    )
    parser.add_argument("--profile", type=int, metavar="N", help="profile the load of N targets")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return 0

    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    say(f"$ python benchmarks/validate_speed.py {' '.join(sys.argv[1:])}".rstrip())
    say(f"{os.cpu_count()} cores; load average at start {os.getloadavg()[0]:.2f}")
    sizes = sorted(set(args.sizes))
    trees = {"this tree": ROOT}
    if args.baseline is not None:
        trees = {"baseline": args.baseline.resolve(), **trees}
        say(f"baseline: {trees['baseline']} (size guards lifted); this tree: {ROOT}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.profile:
            profile(args.profile, folder)
            return 0
        kinds = ["valid"] if args.no_invalid else ["valid", "invalid"]
        files = {}
        for kind in kinds:
            for size in sizes:
                path = folder / f"{kind}-{size}.yaml"
                path.write_text(config_text(size, invalid=kind == "invalid"))
                files[kind, size] = path
        results: dict[tuple[str, str, int], dict[str, float]] = {}
        for kind in kinds:
            for size in sizes:  # the trees alternate at each size: same machine state
                for name, tree in trees.items():
                    runs: list[dict[str, float]] = []
                    while len(runs) < args.repeats and sum(r["cpu"] for r in runs) < 30:
                        lift = name == "baseline"
                        runs.append(measure(tree, files[kind, size], lift_guards=lift))
                        print(f"  {name} {kind} {size}: {runs[-1]}", file=sys.stderr, flush=True)
                    results[name, kind, size] = min(runs, key=lambda r: r["cpu"])
        for kind in kinds:
            say()
            say(
                f"{kind} configs: validate's load (cli._load) in a fresh process, CPU seconds "
                f"(best of {args.repeats}, or of the runs that fit in 30 s)"
            )
            header = f"  {'targets':>8} {'MiB':>5} {'problems':>8}"
            for name in trees:
                header += f" | {name:>10}: {'s':>7} {'ms/target':>9} {'ratio':>6} {'peak MB':>7}"
            say(header)
            smallest = sizes[0]
            for size in sizes:
                mib = files[kind, size].stat().st_size / 2**20
                problems = int(results["this tree", kind, size]["problems"])
                row = f"  {size:>8,} {mib:>5.1f} {problems:>8,}"
                for name in trees:
                    figures = results[name, kind, size]
                    per_target = figures["cpu"] / size
                    base = results[name, kind, smallest]["cpu"] / smallest
                    row += (
                        f" | {'':>10}  {figures['cpu']:>7.2f} {per_target * 1e3:>9.3f} "
                        f"{per_target / base:>5.2f}x {figures['peak_bytes'] / 1e6:>7.0f}"
                    )
                say(row)
            largest = sizes[-1]
            for name in trees:
                ratio = results[name, kind, largest]["cpu"] / (
                    results[name, kind, smallest]["cpu"] * largest / smallest
                )
                say(
                    f"  {name}: {largest:,} targets took {ratio:.2f}x the {smallest:,}-target "
                    f"time x {largest // smallest} (1.00x is linear)"
                )
            if "baseline" in trees:
                for size in sizes:
                    speedup = results["baseline", kind, size]["cpu"] / max(
                        results["this tree", kind, size]["cpu"], 1e-9
                    )
                    say(f"  {size:,} targets: baseline / this tree = {speedup:.1f}x")
        say()
        largest = sizes[-1]
        elapsed, code, last = time_cli(files["valid", largest])
        say(
            f"python -m autoscaler validate <{largest:,} valid targets>: {elapsed:.1f} s wall, "
            f"exit {code}: {last}"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines) + "\n")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
