"""Replay = live: the live controller and ``replay`` over the same trace agree at every poll.

The live side is the real ``TargetController`` (observe, read the scale, run the poll step,
patch), with an in-memory source and actuator fed by the simulator's physics
(``ConsumerGroup``): the source reports what the physics' offsets say, the actuator reads
and sets its replica count. The replay side is ``replay()`` itself. Both start from the
same forecasters (built from the target, warmed up on the same history) and neither is told
the per-replica throughput, so both must learn it. Any drift in either chain (a forecast
glued differently, a learning rule in one place only, a scale event recorded differently)
shows up as a poll where the two differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np
import pytest
from helpers import KAFKA, make_target

from autoscaler.config.model import TargetConfig
from autoscaler.decision import KafkaLagObservation, forecasters_for
from autoscaler.decision.types import Rule
from autoscaler.live.actuator import ScaleActuator, ScaleResult, ScaleState
from autoscaler.live.controller import TargetController
from autoscaler.replay.engine import ReplaySettings, prepare, replay
from autoscaler.replay.runs import run_target
from autoscaler.replay.simulator import ConsumerGroup
from autoscaler.traces import load_csv

EMBEDDED = Path(__file__).resolve().parents[2] / "autoscaler" / "data" / "nab_twitter_amzn.csv"
DAY = 86400.0
THROUGHPUT = 100.0
RUN = "linear"


class PhysicsSource:
    """The live source's answer, from the simulated group's offsets."""

    def __init__(self, group: ConsumerGroup) -> None:
        self.group = group

    async def poll(self, now: float) -> KafkaLagObservation:
        return self.group.observe(now)


class PhysicsActuator:
    """The scale subresource of the simulated Deployment."""

    def __init__(self, group: ConsumerGroup) -> None:
        self.group = group
        self.now = 0.0

    async def read(self, target: TargetConfig) -> ScaleState:
        # As the API server reports it: the scale's status counts every pod (starting ones
        # too), the workload's readyReplicas those that consume.
        return ScaleState(
            self.group.current,
            self.group.current,
            resource_version="1",
            ready_replicas=self.group.ready,
        )

    async def scale(
        self, target: TargetConfig, replicas: int, *, expected_current: int | None = None
    ) -> ScaleResult:
        previous = self.group.current
        self.group.scale(replicas, self.now)
        return ScaleResult("scaled", replicas, previous, "1", attempts=1)

    async def event(
        self, target: TargetConfig, reason: str, message: str, type: str = "Normal"
    ) -> None:
        return None


def _target(planner: str | dict[str, object]) -> TargetConfig:
    return make_target(
        # The planner plans over each forecast's path once the throughput is learned (before,
        # it sizes on KEDA's formula and says why): both chains must plan alike.
        planner=planner,
        triggers=[{**KAFKA, "lag_threshold": 250}],  # no per_replica_throughput: learned
        max_replicas=40,
        min_replicas=1,
        dry_run=False,
        startup_seconds=60,
        poll_interval_seconds=60,
        # An SLO budget: the quantile in force (so each forecast's upper) moves with the
        # violations each side judges.
        slo={"max_lag_seconds": 60, "budget_percent": 2},
        predictor={"model": RUN, "retrain_interval_seconds": 6 * 3600},
        # Rate policies and a dwell time that remember past scale events: a scale event
        # recorded differently (or not at all) on either side changes later decisions.
        behavior={"scale_up": {"policies": [{"type": "Pods", "value": 3, "period_seconds": 180}]}},
        actuation={"min_dwell_seconds": 120, "min_step": 1},
    )


@pytest.mark.parametrize(
    "planner",
    [
        pytest.param({"scale_event_cost_seconds": 10}, id="planned"),
        pytest.param("none", id="sized"),
    ],
)
async def test_live_controller_and_replay_agree_at_every_poll(
    planner: str | dict[str, object],
) -> None:
    target = _target(planner)
    trace = load_csv(EMBEDDED, "count")
    settings = ReplaySettings(
        per_replica_throughput=THROUGHPUT,
        startup_seconds=60.0,
        poll_interval_seconds=60.0,
        partitions=40,
        peak_replicas=12,
        warmup_seconds=2 * DAY,
        span_seconds=2 * DAY,
        frontier=False,
    )
    replayed = replay(target, trace, settings, [RUN]).timelines[RUN]

    job = prepare(target, trace, settings)
    config = run_target(job.run_config, RUN, THROUGHPUT)
    forecasters = forecasters_for(config)
    forecasters["kafka_lag"].warm_start(job.warmup_times, job.warmup_rates)
    group = ConsumerGroup(job.consumer, 60.0, float(job.times[0]))
    actuator = PhysicsActuator(group)
    controller = TargetController(
        config,
        {"kafka_lag": PhysicsSource(group)},
        forecasters,
        cast(ScaleActuator, actuator),
    )
    n = len(job.times)
    desired = np.empty(n, dtype=np.int64)
    planned = 0
    point, upper, learned = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    for k in range(n):
        group.advance(float(job.times[k]), float(job.rates[k]))
        now = float(job.times[k]) + 60.0
        actuator.now = now
        outcome = await controller.step(now)
        assert outcome.decision is not None
        desired[k] = outcome.decision.desired_replicas
        planned += any(t.rule is Rule.PLANNED for t in outcome.decision.triggers)
        forecast = outcome.forecasts.get("kafka_lag")
        if forecast is not None:
            point[k] = forecast.point
            upper[k] = forecast.point if forecast.upper is None else forecast.upper
        assert controller.last_result is not None
        learned[k] = controller.last_result.learned_throughput.get("kafka_lag", np.nan)

    assert n == 2880
    np.testing.assert_array_equal(desired, replayed.desired_replicas)
    np.testing.assert_array_equal(point, replayed.forecast)
    np.testing.assert_array_equal(upper, replayed.forecast_upper)
    np.testing.assert_array_equal(learned, replayed.learned_throughput)
    # Not vacuous: the run forecast, learned the throughput (close to the truth) and scaled.
    assert np.isfinite(point).all()
    assert np.isfinite(learned).any()
    assert learned[-1] == pytest.approx(THROUGHPUT, rel=0.05)
    assert len(set(desired.tolist())) > 3
    if planner == "none":
        assert planned == 0
    else:  # planned from soon after the throughput was learned to the end
        assert planned > n * 0.8
    budget = controller.state.budget
    assert budget.judged_polls > n / 2
    assert budget.quantile != config.predictor.quantile
