"""Many targets in one process: CPU of a poll cycle (forecast + decide) and resident memory.

Run from the repository root::

    python benchmarks/service.py [--targets 500] [--cycles 1000] [--model auto] [--quick]

Protocol
--------
* ``--targets`` Kafka-lag targets on one cluster, built through the real config model
  (``parse_config``): distinct names, namespaces, workloads and consumer groups; the config's
  defaults elsewhere (poll interval 15 s, ``predictor.model`` auto unless ``--model``), not
  dry-run, so the patch path runs too.
* The service's own pieces: a ``TargetController`` per target with its ``SeriesForecaster``
  (``autoscaler.decision.forecaster_for``), each poll run through ``autoscaler.live.service._step``
  (the controller plus the Prometheus metrics the service updates). Only the I/O is faked:
  a source answering ``KafkaLagObservation`` from a precomputed synthetic arrival rate
  (daily and weekly cycles, noise, bursts; a seed per target; the lag follows the replicas
  the fake actuator holds), and an in-memory actuator with the real ``ScaleState`` /
  ``ScaleResult`` values.
* Warm start: ``--warm-days`` (7) of history at the poll interval through
  ``SeriesForecaster.warm_start``, as the service does at start-up. ``auto`` runs its model
  contest there (seconds per target), so by default ``--shapes`` (16) traffic shapes are
  warm-started for real and timed, and each target starts from a copy of its shape's fitted
  forecaster (``--warm-start each`` fits every target: about 500 x the per-shape time).
  A copy has every buffer page touched, so memory is at its steady state from cycle 0.
* Cycles: a simulated clock, ``now += poll interval``; every target's poll per cycle (one
  ``asyncio.gather``, as if all ticked together). CPU per cycle by ``time.process_time``
  (threads included: refits run in ``asyncio.to_thread``), wall by ``perf_counter``.
* Logging: the ``scaling_decision`` line of every poll is rendered as JSON by the project's
  ``configure_logging`` into /dev/null, so the serialization production pays is counted.
  A few cycles with structlog dropping every line show what logging costs.
* Baseline, same run: the same targets with ``predictor.model: none`` (decide alone).
* Bars (issue #6): a cycle < 1 s CPU; resident memory < 400 MB after the cycles; growth
  between cycle 100 and the last < 5 %.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import cProfile
import gc
import io
import logging
import os
import pstats
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import structlog

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from autoscaler.config import parse_config  # noqa: E402
from autoscaler.config.model import AutoscalerConfig, TargetConfig  # noqa: E402
from autoscaler.decision import KafkaLagObservation, Observation, forecaster_for  # noqa: E402
from autoscaler.live import service as service_module  # noqa: E402 - after the path set-up above
from autoscaler.live.actuator import ScaleActuator, ScaleResult, ScaleState  # noqa: E402
from autoscaler.live.controller import TargetController  # noqa: E402
from autoscaler.live.memory import release_free_memory  # noqa: E402
from autoscaler.logs import configure_logging  # noqa: E402
from predictors.forecaster import SeriesForecaster  # noqa: E402

DAY = 86400.0
T0 = 1_700_000_000.0 - (1_700_000_000.0 % DAY)  # a midnight, so that the shapes line up
THROUGHPUT = 250.0  # msg/s per replica, as in config.example.yaml
PARTITIONS = 50
RESULTS = ROOT / "benchmarks" / "results" / "service.txt"
PAGE = os.sysconf("SC_PAGE_SIZE")


# --------------------------------------------------------------------------- synthetic load


@dataclass(frozen=True)
class Shape:
    """One target's traffic: a daily and weekly cycle around a level, noise and bursts."""

    level: float
    daily: float
    weekly: float
    noise: float
    phase: float
    burst_rate: float
    burst_size: float
    burst_polls: int


def shape(seed: int) -> Shape:
    rng = np.random.default_rng(seed)
    return Shape(
        level=float(rng.uniform(300, 4000)),
        daily=float(rng.uniform(0.1, 0.8)),
        weekly=float(rng.uniform(0.0, 0.3)),
        noise=float(rng.uniform(0.02, 0.2)),
        phase=float(rng.uniform(0, 2 * np.pi)),
        burst_rate=float(rng.uniform(0.0005, 0.005)),
        burst_size=float(rng.uniform(0.5, 3.0)),
        burst_polls=int(rng.integers(4, 40)),
    )


def arrival_rates(s: Shape, times: np.ndarray, seed: int) -> np.ndarray:
    """Messages/s at ``times``: deterministic for a shape and seed."""
    rng = np.random.default_rng(seed)
    day = 2 * np.pi * times / DAY
    week = np.where(((times // DAY) % 7) >= 5, 1.0 - s.weekly, 1.0)
    base = s.level * (1.0 + s.daily * np.sin(day + s.phase)) * week
    starts = (rng.random(len(times)) < s.burst_rate).astype(np.float64)
    bursts = np.convolve(starts, np.ones(s.burst_polls))[: len(times)] > 0
    rates = base * (1.0 + s.burst_size * bursts) * (1.0 + s.noise * rng.standard_normal(len(times)))
    return np.maximum(rates, 0.0)


class MemoryActuator:
    """``ScaleActuator``'s calls the controller makes, against a dict of replica counts."""

    def __init__(self) -> None:
        self.replicas: dict[str, int] = {}
        self.version = 0
        self.patches = 0
        self.events = 0

    async def read(self, target: TargetConfig) -> ScaleState:
        n = self.replicas.setdefault(target.name, target.min_replicas)
        return ScaleState(spec_replicas=n, status_replicas=n, resource_version=str(self.version))

    async def scale(
        self, target: TargetConfig, replicas: int, *, expected_current: int | None = None
    ) -> ScaleResult:
        previous = self.replicas.get(target.name)
        self.version += 1
        self.patches += 1
        self.replicas[target.name] = replicas
        return ScaleResult("scaled", replicas, previous, str(self.version), attempts=1)

    async def event(
        self, target: TargetConfig, reason: str, message: str, type: str = "Normal"
    ) -> None:
        self.events += 1

    async def aclose(self) -> None:
        return None


class FakeLagSource:
    """A consumer group's poll from precomputed arrival rates; the lag follows the replicas."""

    def __init__(self, name: str, rates: np.ndarray, actuator: MemoryActuator, step: float):
        self.name = name
        self.rates = rates.tolist()  # Python floats: a poll costs a list index
        self.actuator = actuator
        self.step = step
        self.lag = 0.0

    async def poll(self, now: float) -> Observation:
        rate = self.rates[round((now - T0) / self.step) % len(self.rates)]
        capacity = self.actuator.replicas.get(self.name, 1) * THROUGHPUT * self.step
        backlog = self.lag + rate * self.step
        processed = min(capacity, backlog)
        self.lag = backlog - processed
        return KafkaLagObservation(
            observed_at=now,
            total_lag=int(self.lag),
            partition_count=PARTITIONS,
            partitions_with_lag=min(PARTITIONS, int(self.lag // 100)),
            arrival_rate=rate,
            processing_rate=processed / self.step,
        )


# --------------------------------------------------------------------------- the service


def build_config(targets: int, model: str | None, planner: str | None = None) -> AutoscalerConfig:
    predictor: dict[str, Any] = {} if model is None else {"predictor": {"model": model}}
    if planner is not None:
        predictor["planner"] = planner
    return parse_config(
        {
            "dry_run": False,
            "leader_election": {"enabled": False},
            "kafka_clusters": {"main": {"bootstrap_servers": ["kafka-0.kafka:9092"]}},
            "targets": [
                {
                    "name": f"consumer-{i:04d}",
                    "namespace": f"team-{i % 50:02d}",
                    "scale_target_ref": {"name": f"worker-{i:04d}"},
                    "max_replicas": PARTITIONS,
                    **predictor,
                    "triggers": [
                        {
                            "type": "kafka_lag",
                            "cluster": "main",
                            "consumer_group": f"group-{i:04d}",
                            "topics": [f"events-{i:04d}"],
                            "lag_threshold": 625,
                            "per_replica_throughput": THROUGHPUT,
                        }
                    ],
                }
                for i in range(targets)
            ],
        }
    )


def service_step(service: Any, controller: TargetController) -> Callable[[float], Awaitable[Any]]:
    """The service's own poll (the controller, then the metrics it exports), or the
    controller alone if this version of the service has none."""
    method = getattr(service, "_step", None)
    if callable(method):
        return cast(Callable[[float], Awaitable[Any]], method(controller))
    return controller.step


@dataclass
class Fleet:
    service: Any
    controllers: list[TargetController]
    steps: list[Callable[[float], Awaitable[Any]]]
    actuator: MemoryActuator
    warm_cpu: float = 0.0
    warm_wall: float = 0.0
    warm_mb: float = 0.0
    copy_wall: float = 0.0
    shapes_fitted: int = 0


def build_fleet(
    config: AutoscalerConfig, horizon_polls: int, warm_days: float, shapes: int | None
) -> Fleet:
    """Controllers, sources and warm-started forecasters; ``shapes`` None fits every target."""
    actuator = MemoryActuator()
    service = service_module.Service(config, cast(ScaleActuator, actuator))
    step = config.targets[0].poll_interval_seconds
    history = T0 - step * np.arange(round(warm_days * DAY / step), 0, -1)
    live = T0 + step * np.arange(horizon_polls)
    kinds = len(config.targets) if shapes is None else min(shapes, len(config.targets))
    fitted: list[SeriesForecaster | None] = []
    warm_cpu = warm_wall = 0.0
    rss_before = rss_mb()
    for k in range(kinds):
        target = config.targets[k]
        forecaster = forecaster_for(target, target.trigger_names[0])
        if forecaster is not None:
            cpu, wall = time.process_time(), time.perf_counter()
            forecaster.warm_start(history, arrival_rates(shape(k), history, seed=k))
            warm_cpu += time.process_time() - cpu
            warm_wall += time.perf_counter() - wall
        fitted.append(forecaster)
    warm_mb = rss_mb() - rss_before
    started = time.perf_counter()
    controllers, steps = [], []
    for i, target in enumerate(config.targets):
        k = i % kinds
        (name,) = target.trigger_names
        source = FakeLagSource(
            target.name, arrival_rates(shape(k), live, seed=10_000 + i), actuator, step
        )
        forecaster = fitted[k] if kinds == len(config.targets) else copy.deepcopy(fitted[k])
        peak = shape(k).level * (1 + shape(k).daily)
        actuator.replicas[target.name] = max(1, min(PARTITIONS, int(np.ceil(peak / THROUGHPUT))))
        controller = TargetController(
            target,
            {name: source},
            {} if forecaster is None else {name: forecaster},
            cast(ScaleActuator, actuator),
            refits=getattr(service, "_refits", None),  # the service's cap on fits at once
        )
        service.controllers[target.name] = controller
        controllers.append(controller)
        steps.append(service_step(service, controller))
    copy_wall = time.perf_counter() - started if kinds < len(config.targets) else 0.0
    return Fleet(
        service, controllers, steps, actuator, warm_cpu, warm_wall, warm_mb, copy_wall, kinds
    )


# --------------------------------------------------------------------------- measuring


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 2**20


def rss_split_mb() -> tuple[float, float]:
    """Anonymous (heap, arrays) and file-backed (shared libraries) resident memory."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile"):
                fields[key] = int(value.split()[0]) / 1024
    return fields.get("RssAnon", float("nan")), fields.get("RssFile", float("nan"))


def history_buffers(controllers: Sequence[TargetController]) -> tuple[int, float]:
    """How many ``SeriesBuffer`` histories the forecasters hold, and their arrays' MB."""
    count, size = 0, 0
    seen: set[int] = set()
    for controller in controllers:
        for forecaster in controller.forecasters.values():
            model = forecaster.model
            for holder in (forecaster.fallback, model, getattr(model, "model_", None)):
                buffer = getattr(holder, "history_", None)
                if buffer is not None and id(buffer) not in seen:  # auto shares its winner's
                    seen.add(id(buffer))
                    count += 1
                    size += buffer._values.nbytes + buffer._observed.nbytes
    return count, size / 2**20


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Cycles:
    cpu: list[float]
    wall: list[float]
    refit_cycles: list[int]
    rss: dict[int, tuple[float, float, float, float]]

    def ordinary_cpu(self) -> np.ndarray:
        refits = set(self.refit_cycles)
        return np.array([c for i, c in enumerate(self.cpu) if i not in refits])


async def run_cycles(
    fleet: Fleet, first: int, count: int, checkpoints: Sequence[int] = (), progress: int = 0
) -> Cycles:
    step = fleet.controllers[0].target.poll_interval_seconds
    forecasters = [f for c in fleet.controllers for f in c.forecasters.values()]
    result = Cycles([], [], [], {})
    if 0 in checkpoints:
        result.rss[0] = (rss_mb(), maxrss_mb(), *rss_split_mb())
    for c in range(count):
        now = T0 + step * (first + c)
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(s(now) for s in fleet.steps))
        result.cpu.append(time.process_time() - cpu)
        result.wall.append(time.perf_counter() - wall)
        if any(f.last_fit_at == now for f in forecasters):
            result.refit_cycles.append(c)
        if progress and (c + 1) % progress == 0:
            print(f"  ... cycle {c + 1}/{count}", file=sys.stderr, flush=True)
        if c + 1 in checkpoints:
            result.rss[c + 1] = (rss_mb(), maxrss_mb(), *rss_split_mb())
    return result


def figures(values: Sequence[float] | np.ndarray) -> str:
    a = np.asarray(values, dtype=np.float64)
    if not len(a):
        return "none"
    return (
        f"median {np.median(a) * 1000:7.1f} ms  p95 {np.percentile(a, 95) * 1000:7.1f} ms  "
        f"max {a.max() * 1000:7.1f} ms"
    )


def json_logs() -> None:
    configure_logging("json", "info", stream=open(os.devnull, "w"))  # noqa: SIM115 - kept open


def dropped_logs() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


# --------------------------------------------------------------------------- the run


async def bench(args: argparse.Namespace, say: Callable[[str], None]) -> bool:
    n, cycles, compare = args.targets, args.cycles, args.compare_cycles
    horizon = cycles + 2 * compare + args.refit_cycles + 2
    shapes = None if args.warm_start == "each" else args.shapes
    json_logs()
    say(f"resident memory after imports {rss_mb():.0f} MB")

    # Baseline: the same targets without forecasts (decide alone), logs as in production.
    base = build_fleet(build_config(n, "none"), horizon, args.warm_days, shapes=None)
    await run_cycles(base, 0, 2)  # first polls: imports, caches
    baseline = await run_cycles(base, 2, compare)
    dropped_logs()
    baseline_quiet = await run_cycles(base, 2 + compare, compare)
    json_logs()
    del base
    gc.collect()

    config = build_config(n, args.model, args.planner)
    target = config.targets[0]
    model = target.predictor.model
    origin = "config default" if args.model is None else "--model"
    step = target.poll_interval_seconds
    rss_before = rss_mb()
    started = time.perf_counter()
    fleet = build_fleet(config, horizon, args.warm_days, shapes)
    build_wall = time.perf_counter() - started
    gc.collect()
    gc.freeze()  # as autoscaler run does once its targets are built
    release_free_memory()
    chosen: dict[str, int] = {}
    for controller in fleet.controllers:
        for forecaster in controller.forecasters.values():
            name = getattr(forecaster.model, "chosen_", forecaster.model_name)
            chosen[name] = chosen.get(name, 0) + 1

    say(
        f"{n} targets, predictor.model {model} ({origin}), "
        f"poll {target.poll_interval_seconds:g} s, lead {target.lead_time_seconds:g} s, "
        f"window {target.predictor.history_window_seconds / DAY:g} d, "
        f"retrain every {target.predictor.retrain_interval_seconds:g} s, not dry-run"
    )
    say("")
    say(
        f"warm start (one-off, at start-up): {args.warm_days:g} days at "
        f"{step:g} s = {round(args.warm_days * DAY / step)} points per target"
    )
    if fleet.shapes_fitted:
        per = fleet.warm_cpu / fleet.shapes_fitted
        say(
            f"  {fleet.shapes_fitted} forecasters fitted for real: {fleet.warm_cpu:.1f} s CPU, "
            f"{fleet.warm_wall:.1f} s wall, {per:.3f} s CPU each -> {n} targets ~ "
            f"{per * n:.0f} s CPU ({per * n / 60:.1f} min on one core); resident memory "
            f"+{fleet.warm_mb / fleet.shapes_fitted:.2f} MB each just after the fit"
        )
    if fleet.shapes_fitted < n:
        say(
            f"  the other targets start from a copy of one of the {fleet.shapes_fitted} fitted "
            f"shapes (deepcopy, {fleet.copy_wall:.1f} s); each then polls its own series; a "
            "copy touches every page of its history buffers, which a fresh fit only does "
            "after a window of polls: memory is at its steady state"
        )
    say(f"  models in use: {', '.join(f'{k} {v}' for k, v in sorted(chosen.items()))}")
    say(
        f"  resident memory: {rss_before:.0f} MB before, {rss_mb():.0f} MB after "
        f"({(rss_mb() - rss_before) / n:.2f} MB per target), built in {build_wall:.1f} s"
    )

    checkpoints = sorted({0, min(100, cycles), min(500, cycles), cycles} | {max(1, cycles // 10)})
    main = await run_cycles(fleet, 0, cycles, checkpoints, progress=100)
    quiet = await run_cycles(fleet, cycles, compare)
    json_logs()
    for controller in fleet.controllers:  # every target's refit is due at the next poll
        for forecaster in controller.forecasters.values():
            forecaster.last_fit_at = -np.inf
    refit = await run_cycles(fleet, cycles + compare, args.refit_cycles)
    refits_done = sum(
        f.last_fit_at is not None and np.isfinite(f.last_fit_at)
        for c in fleet.controllers
        for f in c.forecasters.values()
    )

    ordinary = main.ordinary_cpu()
    say("")
    say(
        f"{cycles} cycles of {n} polls (forecast + decide + log + metrics), JSON logs to /dev/null:"
    )
    say(f"  CPU per cycle  {figures(ordinary)}   ({len(ordinary)} cycles without a refit)")
    say(f"  wall per cycle {figures(main.wall)}")
    tenth = max(1, cycles // 10)
    say(
        f"  drift: median CPU of the first {tenth} cycles "
        f"{np.median(main.cpu[:tenth]) * 1000:.1f} ms, of the last {tenth} "
        f"{np.median(main.cpu[-tenth:]) * 1000:.1f} ms"
    )
    say(
        f"  cycles with a scheduled refit: {len(main.refit_cycles)}"
        + (
            f", CPU {figures([main.cpu[i] for i in main.refit_cycles])}"
            if main.refit_cycles
            else f" (retrain every {target.predictor.retrain_interval_seconds:g} s = "
            f"{target.predictor.retrain_interval_seconds / target.poll_interval_seconds:g} cycles)"
        )
    )
    per_cycle = refits_done / max(1, args.refit_cycles)
    say(
        f"  all {n} refits due at once (forced; targets started together are due together), "
        f"{args.refit_cycles} cycles: {refits_done} refits done "
        f"({per_cycle:.1f} per cycle, at most {getattr(service_module, 'REFIT_CONCURRENCY', '?')} "
        f"at once -> {n / max(per_cycle, 1e-9):.0f} cycles to refit all)"
    )
    say(f"    CPU per cycle {figures(refit.cpu)}")
    say(f"    wall per cycle {figures(refit.wall)}")
    say(f"  the same, structlog dropping every line ({compare} cycles): CPU {figures(quiet.cpu)}")
    say(
        f"  patches {fleet.actuator.patches}, events {fleet.actuator.events} "
        f"({fleet.actuator.patches / ((cycles + compare + args.refit_cycles) * n):.1%} "
        "of polls scaled)"
    )
    say("")
    say(f"baseline, same run: predictor.model none (decide alone), {compare} cycles:")
    say(f"  CPU per cycle  {figures(baseline.cpu)}   JSON logs")
    say(f"  CPU per cycle  {figures(baseline_quiet.cpu)}   logs dropped")
    ratio = float(np.median(ordinary) / np.median(baseline.cpu))
    ratio_quiet = float(np.median(quiet.cpu) / np.median(baseline_quiet.cpu))
    say(
        f"  forecast + decide / decide alone (median CPU): {ratio:.1f}x with JSON logs, "
        f"{ratio_quiet:.1f}x with logs dropped"
    )
    say("")
    say("resident memory, MB: current (anonymous + file-backed) / peak")
    for at, (now_mb, peak_mb, anon, files) in sorted(main.rss.items()):
        say(f"  after cycle {at:>5}: {now_mb:7.0f} ({anon:.0f} + {files:.0f}) / {peak_mb:7.0f}")
    buffers, buffer_mb = history_buffers(fleet.controllers)
    say(
        f"  of which forecast histories: {buffers} buffers ({buffers / n:g} per target: the "
        f"model's (shared with auto's winner) and the naive fallback's), {buffer_mb:.0f} MB "
        "allocated "
        f"({buffer_mb / n:.2f} MB per target)"
    )
    first = min(100, cycles)
    growth = (main.rss[cycles][0] - main.rss[first][0]) / main.rss[first][0]
    say(f"  growth from cycle {first} to {cycles}: {growth:+.1%}")

    worst = float(np.max(ordinary))
    final = main.rss[cycles][0]
    bars = [
        (
            f"CPU per cycle < 1 s (max without refit {worst:.3f} s, median "
            f"{np.median(ordinary):.3f} s, p95 {np.percentile(ordinary, 95):.3f} s)",
            worst < 1.0,
        ),
        (f"resident memory after {cycles} cycles < 400 MB ({final:.0f} MB)", final < 400),
        (f"growth cycle {first} -> {cycles} < 5 % ({growth:+.1%})", growth < 0.05),
    ]
    say("")
    for text, ok in bars:
        say(f"{'PASS' if ok else 'FAIL'}  {text}")
    if args.profile:
        say("")
        say(await profile(fleet, cycles + compare + args.refit_cycles, args.profile))
    return all(ok for _, ok in bars)


async def profile(fleet: Fleet, first: int, count: int) -> str:
    """cProfile of ``count`` ordinary cycles: where a cycle's time goes."""
    profiler = cProfile.Profile()
    profiler.enable()
    await run_cycles(fleet, first, count)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)
    return f"profile of {count} cycles (by own time, then cumulative):\n" + out.getvalue()


def main(argv: Sequence[str] | None = None) -> bool:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=int, default=500)
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--model", help="predictor.model for every target (default: config's)")
    parser.add_argument(
        "--planner", choices=("none",), help="planner: none (default: the planner on)"
    )
    parser.add_argument("--warm-days", type=float, default=7.0)
    parser.add_argument("--warm-start", choices=("shapes", "each"), default="shapes")
    parser.add_argument("--shapes", type=int, default=16, help="traffic shapes fitted for real")
    parser.add_argument("--compare-cycles", type=int, default=50, help="baseline, quiet logs")
    parser.add_argument("--refit-cycles", type=int, default=20, help="cycles with refits due")
    parser.add_argument("--profile", type=int, default=0, metavar="CYCLES")
    parser.add_argument("--quick", action="store_true", help="20 targets, 20 cycles, 1/4 day")
    args = parser.parse_args(argv)
    defaults = not args.quick and args.targets == 500 and args.cycles == 1000
    if args.quick:
        args.targets, args.cycles, args.warm_days = 20, 20, 0.25
        args.compare_cycles, args.warm_start, args.refit_cycles = 5, "each", 3
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    say(f"$ python benchmarks/service.py {' '.join(argv or sys.argv[1:])}".rstrip())
    say(
        f"{os.cpu_count()} cores; load average at start {os.getloadavg()[0]:.2f} "
        f"{os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (other work on the machine)"
    )
    started = time.perf_counter()
    met = asyncio.run(bench(args, say))
    load = os.getloadavg()
    say(
        f"\nload average at end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"benchmark ran {time.perf_counter() - started:.0f} s"
    )
    if defaults:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text("\n".join(lines) + "\n")
    return met


if __name__ == "__main__":
    main()
