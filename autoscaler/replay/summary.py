"""Scores of a run, computed only from its timeline (so the CSV files reproduce them).

* cost: replica-hours of the replicas running (ready or starting) at each step, and the
  efficiency against the work lower bound (total arrivals / throughput / 3600 h: no
  schedule can cost less);
* service: the steps whose lag would take longer than the SLO to drain at the ready
  capacity (lag / (ready x throughput) > SLO), and percentiles of that drain time;
* forecast error: MAE of the forecasts against the arrival rate that then came, and MASE
  against the seasonal-naive (daily) forecast of the same times.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from autoscaler.replay.simulator import FloatArray, Timeline

DAY = 86400.0


def work_lower_bound_hours(rates: FloatArray, step_seconds: float, throughput: float) -> float:
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
    error = np.abs(forecast[made] - rates[target])[has_forecast]
    mae = float(np.mean(error))
    seasonal = target - day
    usable = has_forecast & (seasonal >= 0)
    if not usable.any():
        return mae, None
    reference = float(np.mean(np.abs(rates[seasonal[usable]] - rates[target[usable]])))
    model = float(np.mean(np.abs(forecast[made][usable] - rates[target[usable]])))
    # A seasonal-naive error within float noise of zero (an exactly periodic trace) makes
    # the ratio meaningless, not huge.
    if reference <= 1e-9 * max(float(np.mean(np.abs(rates))), 1e-12):
        return mae, None
    return mae, model / reference


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
    lower = work_lower_bound_hours(timeline.arrival_rate, step_seconds, throughput)
    violations = int(np.count_nonzero(timeline.lag_seconds > slo_seconds))
    steps = len(timeline.lag_seconds)
    lag = timeline.lag_seconds
    mae, mase = forecast_errors(timeline, step_seconds, lead_seconds)
    return {
        "predictor": name,
        "replica_hours": replica_hours,
        "efficiency": lower / replica_hours if replica_hours > 0 else 0.0,
        "slo_violation_pct": 100.0 * violations / steps if steps else 0.0,
        "slo_violation_minutes": violations * step_seconds / 60.0,
        "lag_seconds_p50": _finite_or_none(float(np.percentile(lag, 50))) if steps else 0.0,
        "lag_seconds_p99": _finite_or_none(float(np.percentile(lag, 99))) if steps else 0.0,
        "lag_seconds_max": _finite_or_none(float(np.max(lag))) if steps else 0.0,
        "scale_events": timeline.scale_events,
        "forecast_mae": mae,
        "forecast_mase": mase,
        "runtime_seconds": runtime_seconds,
    }
