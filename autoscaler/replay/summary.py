"""Scores of a run, computed only from its timeline (so the CSV files reproduce them).

* cost: replica-hours of the replicas running (ready or starting) at each step, and the
  efficiency: the work the run actually processed, in replica-hours (processed messages /
  throughput / 3600), over what it paid. A run that leaves a backlog did less work, so it
  cannot look more efficient than the work it did allows;
* work: messages arrived, processed, and the backlog left at the end;
* service: the steps whose lag would take longer than the SLO to drain at the ready
  capacity (lag / (ready x throughput) > SLO), and percentiles of that drain time;
* forecast error: MAE of the forecasts against the arrival rate that then came, and MASE
  against the seasonal-naive (daily) forecast of the same times (``predictors.metrics``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from autoscaler.replay.simulator import FloatArray, Timeline
from predictors import metrics

DAY = 86400.0


def work_arrived_hours(rates: FloatArray, step_seconds: float, throughput: float) -> float:
    """The work that arrived, in replica-hours of one replica's throughput (what a schedule
    that never idled would pay). Not a lower bound on a run's cost, which is the oracle's
    (``oracle_lower_bound_replica_hours``: start-ups and the SLO count too): one name for
    one bound."""
    return float(np.sum(rates) * step_seconds / throughput / 3600.0)


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def forecast_errors(
    timeline: Timeline, step_seconds: float, lead_seconds: float
) -> tuple[float | None, float | None]:
    """(MAE, MASE) of the forecasts made at each poll for ``lead`` seconds later.

    The actual is the arrival rate measured at the poll ``lead`` later (rounded to whole
    steps); the seasonal-naive reference forecasts it with the rate one day earlier. (The
    oracle forecasts the *highest* rate over the lead time, what sizing needs, so its MAE
    against the rate at the lead time is small but not zero.)
    """
    lead = max(1, round(lead_seconds / step_seconds))
    day = round(DAY / step_seconds)
    rates, forecast = timeline.arrival_rate, timeline.forecast
    n = len(rates)
    if n <= lead:
        return None, None
    made = np.arange(n - lead)
    target = made + lead
    has_forecast = np.isfinite(forecast[made])
    if not has_forecast.any():
        return None, None
    # Scored by predictors.metrics, which drops the points where a value is NaN: a poll
    # with no (finite) forecast, a time with no rate a day earlier.
    actual = rates[target]
    predicted = np.where(has_forecast, forecast[made], np.nan)
    mae = metrics.mae(actual, predicted)
    seasonal = target - day
    baseline = np.where(seasonal >= 0, rates[np.maximum(seasonal, 0)], np.nan)
    if not (has_forecast & (seasonal >= 0)).any():
        return mae, None
    reference = metrics.mae(actual, np.where(has_forecast, baseline, np.nan))
    # A seasonal-naive error within float noise of zero (an exactly periodic trace) makes
    # the ratio meaningless, not huge.
    if reference <= 1e-9 * max(float(np.mean(np.abs(rates))), 1e-12):
        return mae, None
    return mae, metrics.mase(actual, predicted, baseline)


def summarize(
    name: str,
    timeline: Timeline,
    step_seconds: float,
    throughput: float,
    slo_seconds: float,
    lead_seconds: float,
    runtime_seconds: float,
) -> dict[str, Any]:
    """One entry of ``summary.json``'s ``results``."""
    replica_hours = float(np.sum(timeline.replicas) * step_seconds / 3600.0)
    arrived = float(np.sum(timeline.arrival_rate) * step_seconds)
    processed = arrived if timeline.processed is None else float(np.sum(timeline.processed))
    backlog = float(timeline.lag_messages[-1]) if len(timeline.lag_messages) else 0.0
    work_done_hours = processed / throughput / 3600.0
    violations = int(np.count_nonzero(timeline.lag_seconds > slo_seconds))
    steps = len(timeline.lag_seconds)
    lag = timeline.lag_seconds
    mae, mase = forecast_errors(timeline, step_seconds, lead_seconds)
    return {
        "predictor": name,
        "replica_hours": replica_hours,
        "efficiency": work_done_hours / replica_hours if replica_hours > 0 else 0.0,
        "slo_violation_pct": 100.0 * violations / steps if steps else 0.0,
        "slo_violation_minutes": violations * step_seconds / 60.0,
        "lag_seconds_p50": _finite_or_none(float(np.percentile(lag, 50))) if steps else 0.0,
        "lag_seconds_p99": _finite_or_none(float(np.percentile(lag, 99))) if steps else 0.0,
        "lag_seconds_max": _finite_or_none(float(np.max(lag))) if steps else 0.0,
        "scale_events": timeline.scale_events,
        "forecast_mae": mae,
        "forecast_mase": mase,
        "runtime_seconds": runtime_seconds,
        "messages_arrived": arrived,
        "messages_processed": processed,
        "backlog_end_messages": backlog,
    }


def keda_points(
    frontier: list[dict[str, Any]], reactive: dict[str, Any] | None, lag_threshold: int
) -> list[dict[str, Any]]:
    """The KEDA frontier's points with reactive (KEDA at the target's own threshold) among
    them, once: it is a frontier point already when its threshold is in the sweep."""
    points = list(frontier)
    if reactive is not None and all(p["lag_threshold"] != lag_threshold for p in points):
        points.append({**reactive, "lag_threshold": lag_threshold})
    return points


def frontier_standing(run: dict[str, Any], frontier: list[dict[str, Any]]) -> dict[str, Any]:
    """Where ``run`` stands against the KEDA frontier (reactive over lag thresholds).

    ``beats_frontier``: every KEDA threshold that costs at least as many replica-hours
    violates the SLO for more minutes than the run, or as many at a higher cost (so a run
    with no violation beats a threshold with none that costs more); and at least one
    threshold costs that much (a run dearer than every threshold proves nothing).
    ``best_keda_costing_as_much``: the best of those thresholds. ``dominated_by``:
    thresholds that cost no more and violate no longer.
    """
    hours, minutes = float(run["replica_hours"]), float(run["slo_violation_minutes"])
    dearer = [p for p in frontier if p["replica_hours"] >= hours]
    best = min(dearer, key=lambda p: (p["slo_violation_minutes"], p["replica_hours"]), default=None)
    dominated_by = [
        p["lag_threshold"]
        for p in frontier
        if p["replica_hours"] <= hours
        and p["slo_violation_minutes"] <= minutes
        and (p["replica_hours"], p["slo_violation_minutes"]) != (hours, minutes)
    ]

    def beaten_by(point: dict[str, Any]) -> bool:
        violations = float(point["slo_violation_minutes"])
        return violations < minutes or (violations == minutes and point["replica_hours"] == hours)

    return {
        "beats_frontier": best is not None and not any(beaten_by(p) for p in dearer),
        "best_keda_costing_as_much": None
        if best is None
        else {
            "lag_threshold": best["lag_threshold"],
            "replica_hours": best["replica_hours"],
            "slo_violation_minutes": best["slo_violation_minutes"],
        },
        "dominated_by": sorted(dominated_by),
    }
