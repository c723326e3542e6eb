"""The worst incident shows the plan the run made just before it: what the planner expected
against what came. Built from a real planned replay over a burst no forecast saw."""

from __future__ import annotations

import numpy as np
from helpers import KAFKA, make_target

from autoscaler.replay.engine import ReplaySettings, replay
from autoscaler.report.charts import Limits, run_styles
from autoscaler.report.incident import incident_html, plan_before, worst_incident
from autoscaler.traces import from_points

STEP = 30.0


def test_the_incident_shows_the_plan_made_before_it() -> None:
    # Two days of a steady 500 msg/s, then a burst to 3,000 msg/s for ten minutes.
    times = 1_700_000_000.0 + STEP * np.arange(2 * 2880 + 240)
    rates = np.full(len(times), 500.0)
    burst = slice(len(times) - 120, len(times) - 100)
    rates[burst] = 3000.0
    trace = from_points(times, rates, "rate", "burst", "a test")
    target = make_target(
        triggers=[{**KAFKA, "per_replica_throughput": 100}],
        predictor={"model": "naive"},
        poll_interval_seconds=STEP,
        startup_seconds=60,
        max_replicas=50,
        slo={"max_lag_seconds": 60},
    )
    settings = ReplaySettings(
        per_replica_throughput=100.0,
        startup_seconds=60.0,
        poll_interval_seconds=STEP,
        partitions=None,
        warmup_seconds=86400.0,
        frontier=False,
    )
    result = replay(target, trace, settings, ["naive", "naive/sized"])
    planned, sized = result.timelines["naive"], result.timelines["naive/sized"]
    assert planned.plans is not None
    assert sized.plans is None  # planner: none records no plan
    assert (planned.plans.replicas[:, 0] >= 0).mean() > 0.9  # planned nearly every poll
    incident = worst_incident({"naive": planned}, 60.0)
    assert incident is not None
    index = plan_before(planned, incident)
    assert index == incident.start - 1
    # The plan expected the steady load: the burst outran it.
    expected = planned.plans.arrivals[index]
    assert np.nanmax(expected) < 1000.0
    html = incident_html(
        incident,
        {"naive": planned},
        run_styles(["naive"]),
        step=STEP,
        slo=60.0,
        throughput=100.0,
        limits=Limits(50, None),
    )
    assert "just before the incident: expected vs what came" in html
    assert 'class="planned"' in html
