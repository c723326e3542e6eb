"""Scaling effectiveness: scale-ups that do not raise the processing rate stop, then retry."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import KAFKA, make_target

from autoscaler.config.model import ScalingEffectivenessConfig
from autoscaler.decision import Rule
from autoscaler.decision.effectiveness import (
    EffectivenessState,
    GroupPoll,
    observed,
    scale_up_hold,
    started,
)
from autoscaler.replay.simulator import Consumer, simulate

CONFIG = ScalingEffectivenessConfig()  # threshold 0.1, 2 in a row, 900 s cool-down, 30 s
STEP = 5.0
STARTUP = 10.0


class Group:
    """A sequence of polls of one group, fed through the tracker."""

    def __init__(self, config: ScalingEffectivenessConfig = CONFIG) -> None:
        self.config = config
        self.state = EffectivenessState()
        self.now = 0.0
        self.replicas = 2
        self.ready = 2

    def poll(self, rate: float, backlog: float = 10_000.0, seconds: float = STEP) -> None:
        """Polls for ``seconds``, processing ``rate`` messages/s with ``backlog`` waiting."""
        for _ in range(round(seconds / STEP)):
            self.now += STEP
            self.state = observed(
                self.state,
                self.config,
                now=self.now,
                poll_interval=STEP,
                startup_seconds=STARTUP,
                ready=self.ready,
                group=GroupPoll(backlog, rate, 12),
            )

    def scale(self, replicas: int) -> None:
        self.state = started(self.state, self.config, self.replicas, replicas, self.now)
        self.replicas = replicas

    def become_ready(self) -> None:
        self.ready = self.replicas

    @property
    def hold(self) -> str | None:
        return scale_up_hold(self.state, self.config)


def scale_up_and_run(group: Group, replicas: int, rate_after: float, backlog: float = 1e4) -> None:
    group.scale(replicas)
    group.poll(group.state.recent[-1][1] if group.state.recent else 0.0, seconds=STARTUP)
    group.become_ready()
    group.poll(rate_after, backlog, seconds=60)


def test_a_scale_up_that_raises_the_rate_is_effective() -> None:
    group = Group()
    group.poll(100.0, seconds=60)
    scale_up_and_run(group, 4, 200.0)
    assert group.state.verdict is not None
    assert group.state.verdict.effective
    assert (group.state.ineffective, group.hold) == (0, None)


def test_two_ineffective_scale_ups_stop_scale_ups_then_the_cooldown_retries() -> None:
    group = Group()
    group.poll(100.0, seconds=60)
    scale_up_and_run(group, 4, 102.0)  # +2% of an expected +100%: below 10% of it
    assert group.state.verdict is not None
    assert not group.state.verdict.effective
    assert group.state.ineffective == 1
    assert group.hold is None  # no check in flight: the next scale-up may happen
    group.scale(6)
    assert group.hold is not None  # on probation: no third until this one is judged
    assert "waiting" in group.hold
    group.poll(101.0, seconds=STARTUP)
    group.become_ready()
    group.poll(101.0, seconds=60)
    assert group.state.ineffective == 2
    assert group.state.stopped_at is not None
    assert group.hold is not None
    assert "did not raise" in group.hold
    group.poll(101.0, seconds=CONFIG.cooldown_seconds)
    assert group.state.stopped_at is None  # one more try, on probation
    assert group.state.ineffective == CONFIG.max_ineffective - 1
    assert group.hold is None
    scale_up_and_run(group, 9, 160.0)  # the bottleneck was lifted: +58% of an expected +50%
    assert group.state.verdict is not None
    assert group.state.verdict.effective
    assert (group.state.ineffective, group.hold) == (0, None)


def test_a_backlog_that_clears_makes_a_scale_up_effective() -> None:
    group = Group()
    group.poll(100.0, seconds=60)
    scale_up_and_run(group, 4, 100.0, backlog=0.0)
    assert group.state.verdict is not None
    assert group.state.verdict.effective


@pytest.mark.parametrize(
    ("backlog", "checked"),
    [
        pytest.param(10_000.0, True, id="saturated-checked"),
        pytest.param(500.0, False, id="keeping-up-not-checked"),  # 5 s of processing
    ],
)
def test_only_a_scale_up_of_a_saturated_group_is_checked(backlog: float, checked: bool) -> None:
    group = Group()
    group.poll(100.0, backlog, seconds=60)
    group.scale(4)
    assert (group.state.check is not None) == checked


def test_the_partition_count_caps_the_expected_rise() -> None:
    group = Group()
    group.poll(100.0, seconds=60)
    group.state = EffectivenessState(group.state.recent, group.now, partitions=2)
    scale_up_and_run(group, 4, 100.0)  # 2 partitions: 2 -> 4 replicas cannot add anything
    assert group.state.verdict is None
    assert group.state.check is None
    assert group.state.ineffective == 0


def test_a_second_scale_up_in_flight_is_checked_with_the_first() -> None:
    group = Group()
    group.poll(100.0, seconds=60)
    group.scale(4)
    group.poll(100.0)
    group.scale(8)
    assert group.state.check is not None
    assert (group.state.check.before, group.state.check.after) == (2, 8)
    assert group.state.check.rate_before == pytest.approx(100.0)


def test_a_scale_down_ends_the_check() -> None:
    group = Group()
    group.poll(100.0, seconds=60)
    group.scale(4)
    group.scale(3)
    assert group.state.check is None


def test_not_ready_replicas_are_not_judged() -> None:
    group = Group()
    group.poll(100.0, seconds=60)
    group.scale(4)
    group.poll(100.0, seconds=120)  # the new pods never get ready: no verdict
    assert group.state.verdict is None
    assert group.state.check is not None


def test_the_rate_before_is_the_capacity_of_the_count_scaled_from() -> None:
    """A scale-up made while the replicas of the one before were still joining would
    measure nothing of their capacity: the group waits for them (while saturated), and the
    next check starts from the rate they reached over a whole poll, not from the smaller
    group's."""
    group = Group()
    group.poll(50.0, backlog=200.0, seconds=60)  # keeping up: 2 -> 4 is not checked
    group.scale(4)
    group.poll(50.0, seconds=STARTUP)  # the backlog grows while the 2 new pods start
    assert group.hold is not None  # saturated: 4 must consume before a fifth is added
    assert "do not all consume yet" in group.hold
    group.become_ready()
    group.poll(120.0)  # the first poll with 4 consuming: part of it was with 2
    assert group.hold is not None
    group.poll(120.0)  # a whole poll at 4
    assert group.hold is None
    group.scale(6)
    assert group.state.check is not None
    assert group.state.check.before == 4
    assert group.state.check.rate_before == pytest.approx(120.0)


def test_a_group_that_keeps_up_is_not_held_while_new_replicas_start() -> None:
    group = Group()
    group.poll(100.0, backlog=200.0, seconds=60)  # 2 s of processing: keeping up
    group.scale(4)  # a forecast-driven scale-up
    assert group.hold is None


def test_replicas_that_never_consume_hold_scale_ups_for_two_start_ups_and_a_window() -> None:
    group = Group()
    group.poll(100.0, backlog=500.0, seconds=60)  # not saturated: 4 is not checked
    group.scale(4)
    group.poll(100.0)  # now saturated, the new pods Pending
    assert group.hold is not None
    window = max(CONFIG.evaluation_seconds, 2 * STEP)
    group.poll(100.0, seconds=2 * STARTUP + window)
    assert group.hold is None


def test_switched_off_it_tracks_nothing() -> None:
    group = Group(ScalingEffectivenessConfig(enabled=False))
    group.poll(100.0, seconds=60)
    scale_up_and_run(group, 4, 100.0)
    assert group.state == EffectivenessState()
    assert group.hold is None


# --------------------------------------------------------------------------- through replay


def _replay(cap: float | None, *, enabled: bool = True, minutes: float = 30) -> object:
    """A group of 100 msg/s replicas under 800 msg/s, through the poll step and the
    simulator; ``cap`` bounds the whole group's processing (a downstream bottleneck)."""
    target = make_target(
        triggers=[{**KAFKA, "per_replica_throughput": 100}],
        poll_interval_seconds=STEP,
        startup_seconds=STARTUP,
        max_replicas=40,
        scaling_effectiveness={"enabled": enabled, "cooldown_seconds": 600},
    )
    times = STEP * np.arange(int(minutes * 60 / STEP))
    rates = np.full(len(times), 800.0)
    rates[:12] = 150.0
    consumer = Consumer(100.0, STARTUP, 48, throughput_cap=cap)
    return simulate(target, "kafka_lag", times, rates, STEP, consumer)


def test_a_capped_group_stops_scaling_up_after_two_ineffective_scale_ups() -> None:
    """300 msg/s is all the group can do, whatever its size: scale-ups stop after the two
    that added nothing, and the one retried after the cool-down stops again."""
    capped = _replay(cap=300.0)
    unchecked = _replay(cap=300.0, enabled=False)
    # Without the check, the lag drives the group to max_replicas for nothing.
    assert int(unchecked.desired_replicas.max()) == 40  # type: ignore[attr-defined]
    desired = capped.desired_replicas  # type: ignore[attr-defined]
    times = capped.timestamps  # type: ignore[attr-defined]
    ups = times[1:][np.diff(desired) > 0]
    # 2 -> 6 (+100 msg/s: effective), 6 -> 11 (+0), 11 -> 14 (+0, on probation): stopped.
    before_retry = ups[ups < 600.0]
    assert len(before_retry) <= 3
    beyond = times[1:][(np.diff(desired) > 0) & (desired[:-1] >= 3) & (times[1:] < 600.0)]
    assert len(beyond) <= 2  # scale-ups from a size the cap already feeds fully
    assert int(desired[times < 600.0].max()) < 20
    # Each cool-down over, one more scale-up is tried; it adds nothing either: stopped again.
    after = ups[ups >= 600.0]
    assert len(after) == 2
    assert after[1] - after[0] >= 600.0


def test_an_uncapped_group_catches_up() -> None:
    timeline = _replay(cap=None)
    assert int(timeline.desired_replicas[-1]) >= 8  # type: ignore[attr-defined]
    assert float(timeline.lag_seconds[-1]) < 60  # type: ignore[attr-defined]


def test_the_hold_is_the_decisions_reason() -> None:
    from autoscaler.decision import KafkaLagObservation, PollInputs, PollState, poll_step

    target = make_target(triggers=[{**KAFKA, "per_replica_throughput": 100}])
    state = PollState(effectiveness=EffectivenessState(ineffective=2, stopped_at=0.0))
    busy = KafkaLagObservation(10.0, 50_000, 12, arrival_rate=800.0, processing_rate=200.0)
    result = poll_step(target, PollInputs(10.0, {"kafka_lag": busy}, 2, 2), {}, state)
    assert result.decision is not None
    assert result.decision.desired_replicas == 2
    assert result.decision.reason == Rule.SCALING_INEFFECTIVE


# --------------------------------------------------------------------------- the live shell


class _Workload:
    """The simulator's consumer group behind the controller's source and actuator: the
    I/O edges of a real deployment, the physics of replay (``throughput_cap`` 300)."""

    def __init__(self) -> None:
        from autoscaler.replay.simulator import ConsumerGroup

        self.group = ConsumerGroup(Consumer(100.0, STARTUP, 48, throughput_cap=300.0), STEP, 0.0)
        self.events: list[tuple[str, str, str]] = []

    async def poll(self, now: float) -> object:
        self.group.advance(now - STEP, 800.0)
        return self.group.observe(now)

    async def read(self, target: object) -> object:
        from autoscaler.live.actuator import ScaleState

        return ScaleState(
            self.group.current, self.group.current, "1", ready_replicas=self.group.ready
        )

    async def scale(
        self, target: object, replicas: int, *, expected_current: int | None = None
    ) -> object:
        from autoscaler.live.actuator import ScaleResult

        old = self.group.current
        self.group.scale(replicas, self._now)
        return ScaleResult("scaled", replicas, old, "1", attempts=1)

    async def event(self, target: object, reason: str, message: str, type: str = "Normal") -> None:
        self.events.append((reason, type, message))

    _now = 0.0


async def test_the_controller_warns_once_exports_and_reports_a_stop() -> None:
    from typing import cast

    from structlog.testing import capture_logs

    from autoscaler.live.actuator import ScaleActuator
    from autoscaler.live.controller import TargetController
    from autoscaler.live.service import _effectiveness_status, _startup_status
    from autoscaler.observability.metrics import ServiceMetrics

    target = make_target(
        triggers=[{**KAFKA, "per_replica_throughput": 100}],
        poll_interval_seconds=STEP,
        max_replicas=40,
        dry_run=False,
    )
    workload = _Workload()
    controller = TargetController(
        target,
        {"kafka_lag": workload},
        {},
        cast(ScaleActuator, workload),  # type: ignore[dict-item]
    )
    metrics = ServiceMetrics()
    with capture_logs() as logs:
        for k in range(1, 120):
            workload._now = STEP * k
            await controller.step(STEP * k)
            metrics.set_scaling_ineffective(
                target.name, controller.state.effectiveness.stopped_at is not None
            )
    warnings = [e for e in logs if e["event"] == "scaling_ineffective"]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"
    judged = [e for e in logs if e["event"] == "scale_up_judged"]
    assert [e["effective"] for e in judged][-2:] == [False, False]
    assert [(reason, kind) for reason, kind, _ in workload.events if kind == "Warning"] == [
        ("IneffectiveScaling", "Warning")
    ]
    assert workload.group.current < 20
    assert 'autoscaler_scaling_ineffective{target="orders"} 1.0' in metrics.render().decode()
    status = _effectiveness_status(controller)
    assert status["scale_ups_stopped"] is True
    assert status["ineffective_in_a_row"] == 2
    assert status["last_verdict"]["effective"] is False
    startup = _startup_status(controller)
    assert startup["configured"] is None
    assert startup["samples"] >= 3  # every scale-up timed: 10 s start-up at 5 s polls
    assert startup["in_force"] == startup["measured"]
    assert startup["measured"] == pytest.approx(STARTUP, abs=STEP)


def test_the_rate_is_judged_only_once_the_group_has_its_new_members() -> None:
    """A pod is ready before its consumer has partitions: the rate during the rebalance
    says nothing of the new size, so judging starts once the group settled."""
    group = Group()
    group.poll(100.0, seconds=60)
    group.scale(4)
    group.become_ready()
    for _ in range(4):  # ready, past the start-up, but the group is rebalancing
        group.now += STEP
        group.state = observed(
            group.state,
            CONFIG,
            now=group.now,
            poll_interval=STEP,
            startup_seconds=STARTUP,
            ready=4,
            group=GroupPoll(10_000.0, 0.0, 12, groups=((4, 12, True),)),
        )
    assert group.state.check is not None
    assert group.state.check.ready_at is None
    assert group.state.verdict is None
    assert group.hold is not None  # no further scale-up while the new ones settle
    group.poll(200.0, seconds=60)
    assert group.state.verdict is not None
    assert group.state.verdict.effective
