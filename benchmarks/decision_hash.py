"""Hash every decision of a few short replays: a speed change must leave them all equal.

Run from the repository root, before and after a change (the hashes must match)::

    python benchmarks/decision_hash.py [--days 2] [--poll 30]

Runs ``reactive``, ``linear/sized`` (the planner off) and ``linear`` (planned) of the
example's first target, as it is configured (its SLO budget included), over
``nab_twitter_amzn`` and ``nasa_http_5min`` from ``../shared/traces``: one day of warm-up,
then ``--days`` at ``--poll`` seconds. Every poll's result is folded into a SHA-256: the
decision (desired and raw replicas, bounds with their details, each trigger's
recommendation, plan and forecast) and the state the step returns (decision, throughput,
budget, start-up and effectiveness state, field by field, floats exactly), plus the
forecasts and the learned throughput the step reports. Only the fields named here count,
so a cache added to the state does not change a hash.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import hashlib
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoscaler.config import load_config  # noqa: E402 - after the path set-up above
from autoscaler.decision import PollResult  # noqa: E402
from autoscaler.replay import simulator  # noqa: E402
from autoscaler.replay.engine import ReplaySettings, prepare  # noqa: E402
from autoscaler.replay.runs import run_target  # noqa: E402
from autoscaler.traces import load_csv  # noqa: E402

DAY = 86400.0
TRACES = ROOT.parent / "shared" / "traces"
TRACE_NAMES = ("nab_twitter_amzn", "nasa_http_5min")
RUNS = ("reactive", "linear/sized", "linear")
STATE_FIELDS = ("decision", "throughput", "budget", "startup", "effectiveness")


def canonical(value: Any) -> Any:
    """A value as nested tuples of exact primitives (floats by ``float.hex``)."""
    if value is None or isinstance(value, (bool, int, str)):
        if isinstance(value, enum.Enum):
            return (type(value).__name__, value.value)
        return value
    if isinstance(value, float):
        return ("f", value.hex())
    if isinstance(value, np.ndarray):
        return ("nd", str(value.dtype), value.shape, value.tobytes())
    if isinstance(value, np.generic):
        return canonical(value.item())
    if isinstance(value, Mapping):
        return ("map", tuple(sorted((str(k), canonical(v)) for k, v in value.items())))
    if isinstance(value, (tuple, list)):
        return tuple(canonical(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            tuple((f.name, canonical(getattr(value, f.name))) for f in dataclasses.fields(value)),
        )
    raise TypeError(f"cannot hash a {type(value).__name__}")


def poll_record(result: PollResult) -> Any:
    """What one poll step decided and remembered (the state's named fields only)."""
    return (
        canonical(result.decision),
        tuple((name, canonical(getattr(result.state, name))) for name in STATE_FIELDS),
        canonical(result.forecasts),
        canonical(result.learned_throughput),
        canonical(result.refitted),
        canonical(result.lag_over_slo),
        canonical(result.startup_seconds),
    )


def hashed_run(trace_name: str, run: str, days: float, poll: float) -> tuple[str, int]:
    """The run's hash and its number of polls."""
    target = load_config(ROOT / "config.example.yaml").targets[0]
    trace = load_csv(TRACES / f"{trace_name}.csv", "count")
    settings = ReplaySettings(
        per_replica_throughput=250.0,
        startup_seconds=target.startup_seconds,
        poll_interval_seconds=poll,
        partitions=target.max_replicas,
        peak_replicas=target.max_replicas / 2,
        warmup_seconds=DAY,
        span_seconds=days * DAY,
        frontier=False,
    )
    job = prepare(target, trace, settings)
    config = run_target(job.run_config, run, 250.0)
    forecasters = job.forecasters(config, run)
    digest = hashlib.sha256()
    polls = 0
    original: Callable[..., PollResult] = simulator.poll_step

    def recording(*args: Any, **kwargs: Any) -> PollResult:
        nonlocal polls
        result = original(*args, **kwargs)
        digest.update(repr(poll_record(result)).encode())
        polls += 1
        return result

    simulator.poll_step = recording  # type: ignore[assignment]
    try:
        timeline = simulator.simulate(
            config, job.trigger_name, job.times, job.rates, poll, job.consumer, forecasters
        )
    finally:
        simulator.poll_step = original  # type: ignore[assignment]
    digest.update(repr(canonical(replace(timeline, plans=None))).encode())
    return digest.hexdigest()[:16], polls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=float, default=2.0)
    parser.add_argument("--poll", type=float, default=30.0)
    args = parser.parse_args()
    combined = hashlib.sha256()
    for trace_name in TRACE_NAMES:
        for run in RUNS:
            value, polls = hashed_run(trace_name, run, args.days, args.poll)
            combined.update(value.encode())
            print(f"{trace_name:<18}{run:<14}{polls:>7} polls  {value}")
    print(f"all {combined.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
