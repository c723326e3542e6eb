"""Calibration of the forecast paths' quantile ladder on the real traces, walked as live.

Run from the repository root::

    python benchmarks/calibration.py [--models a,b] [--traces x,y] [--days 7]
                                     [--poll-interval 60] [--jobs 1] [--output stem]

Protocol (the live service's poll loop, replayed)
-------------------------------------------------
* Each trace (``autoscaler.traces.load_csv``: events/s on the trace's grid, gaps filled by
  linear interpolation) is polled every ``--poll-interval`` seconds, reading the rate in
  force at the poll (``Trace.rate_at``), as replay does.
* One ``SeriesForecaster`` per trace and model, built as ``forecaster_for`` builds it for a
  target with the config defaults and the planner on: lead 90 s (start-up 60 s + margin
  30 s), quantile 0.9, a 14-day window, daily retrains, a 1800 s path (the planner's
  horizon), phase 0 (one series). It is ``warm_start``-ed on the first ``--warmup-days``
  (7) of polls, then for ``--days`` (7) every poll does what the poll step does:
  ``refit`` when ``refit_due``, ``observe`` the rate, ``forecast()``, and the path is read.
* At 5, 15 and 30 minutes after the poll the path is read at q0.5, q0.9 and q0.99 as the
  planner reads it: ``path_at_quantile`` on a ``ForecastPath`` of the path (interpolated in
  the ladder, or between the point and the upper for a model with its own upper), then
  ``np.interp`` at that time and floored at 0 (as ``arrivals_on_steps``).
* The actual is the trace's rate at that time on the poll grid, to the 7 significant digits
  forecasts are given in (an exact forecast then covers its actual: float32 history must
  not decide a tie); a time in a gap of the trace (an interpolated row) or past its end is
  not scored. A poll without a path (no
  forecast at all) scores NaN and lowers ``avail``.
* Scores (``predictors.metrics``, the project's one scorer): coverage at each quantile
  (share of actuals at or below the forecast: 0.5 / 0.9 / 0.99 when calibrated), and the
  pinball loss of the q0.9 reading, in events/s and over the mean actual (comparable
  across traces).
* Cost: CPU (``time.process_time``) of each poll's refit + observe + forecast + reading,
  in the process that walks; refits are shown apart (one a day, the heavy part).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this folder comes first on sys.path and ``benchmarks/predictors.py``
# would shadow the ``predictors`` package: put the repository root there instead.
_HERE = str(ROOT / "benchmarks")
while _HERE in sys.path:
    sys.path.remove(_HERE)
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from autoscaler.decision.planning import path_at_quantile  # noqa: E402
from autoscaler.decision.types import ForecastPath  # noqa: E402
from autoscaler.traces import Trace, load_csv  # noqa: E402
from benchmarks.predictors import format_table  # noqa: E402
from benchmarks.traces import traces_dir  # noqa: E402
from predictors.forecaster import FORECAST_DIGITS, SeriesForecast, SeriesForecaster  # noqa: E402
from predictors.metrics import coverage, pinball_loss  # noqa: E402
from predictors.registry import model_class  # noqa: E402

DAY = 86400.0
MODELS = ("naive", "linear", "holt_winters", "seasonal_ridge", "quantile_gbm", "auto")
HORIZONS_SECONDS = (300.0, 900.0, 1800.0)
QUANTILES = (0.5, 0.9, 0.99)
SCORED_QUANTILE = 0.9
"""The quantile whose pinball loss is shown (the configured one)."""


@dataclass(frozen=True)
class Setup:
    """How the forecaster is built and walked (the config defaults, planner on)."""

    poll_interval_seconds: float = 60.0
    warmup_days: float = 7.0
    days: float = 7.0
    lead_seconds: float = 90.0
    quantile: float = 0.9
    window_seconds: float = 14 * DAY
    retrain_seconds: float = DAY
    path_seconds: float = 1800.0


@dataclass(frozen=True)
class Walk:
    """One trace and model walked forward: what the planner would have read, and its cost."""

    trace: str
    model: str
    poll_times: np.ndarray
    readings: np.ndarray
    """Per poll, horizon and quantile (``HORIZONS_SECONDS`` x ``QUANTILES``): the forecast
    read off the path; NaN where the poll had no path."""
    actuals: np.ndarray
    """Per poll and horizon: the trace's rate then; NaN in a gap or past the trace."""
    poll_cpu: np.ndarray
    """CPU seconds of each poll (refit included when one ran)."""
    refit_cpu: float
    refits: int
    warm_start_cpu: float
    answered_by: dict[str, int]
    """Polls answered by each model name (``naive`` when the model fell back)."""


def forecaster(model: str, setup: Setup) -> SeriesForecaster:
    """A forecaster as ``forecaster_for`` builds it for the defaults with the planner on."""
    return SeriesForecaster(
        model,
        {},
        horizon_seconds=setup.lead_seconds,
        quantile=setup.quantile,
        step_seconds=setup.poll_interval_seconds,
        window_seconds=setup.window_seconds,
        retrain_interval_seconds=setup.retrain_seconds,
        path_seconds=setup.path_seconds,
    )


def actual_rates(trace: Trace, times: np.ndarray) -> np.ndarray:
    """The trace's rate at each time, at the precision forecasts are given in
    (``FORECAST_DIGITS``); NaN past its end or on a row it does not have.

    The models store history in float32 and give forecasts to 7 significant digits: a
    forecast that is exactly right (a flat stretch, a naive forecast within a trace row)
    equals the actual at that precision, where in float64 the eighth digit would decide
    whether it covers it."""
    index = np.floor((times - trace.start) / trace.step).astype(np.int64)
    inside = (index >= 0) & (index < len(trace.rates))
    rates = np.full(times.shape, np.nan)
    kept = index[inside]
    rates[inside] = np.where(trace.observed[kept], trace.rates[kept], np.nan)
    rounded = [float(f"{v:.{FORECAST_DIGITS}g}") for v in rates.ravel().tolist()]
    return np.asarray(rounded, dtype=np.float64).reshape(rates.shape)


def read_path(path: ForecastPath, times: np.ndarray, configured: float) -> np.ndarray:
    """The path at each of ``QUANTILES`` (columns) at each time (rows), as the planner
    reads it: ``path_at_quantile``, then interpolated at the time and floored at 0."""
    return np.stack(
        [
            np.maximum(np.interp(times, path.times, path_at_quantile(path, q, configured)), 0.0)
            for q in QUANTILES
        ],
        axis=1,
    )


def walk(trace: Trace, model: str, setup: Setup) -> Walk:
    """Warm up on the first days of ``trace``, then poll it as the live loop would."""
    step = setup.poll_interval_seconds
    begin = trace.start + setup.warmup_days * DAY
    end = min(trace.end, begin + setup.days * DAY)
    count = math.floor((end - begin) / step + 1e-9)
    if count < 1:
        raise ValueError(f"{trace.name}: too short for {setup.warmup_days:g} days of warm-up")
    times = begin + step * np.arange(count, dtype=np.float64)
    rates = trace.rate_at(times)
    warmup_times = np.arange(trace.start, begin - step + 1e-9, step, dtype=np.float64)
    horizons = np.asarray(HORIZONS_SECONDS)
    actuals = actual_rates(trace, times[:, None] + horizons[None, :])

    series = forecaster(model, setup)
    started = time.process_time()
    series.warm_start(warmup_times, trace.rate_at(warmup_times))
    warm_start_cpu = time.process_time() - started

    readings = np.full((count, len(horizons), len(QUANTILES)), np.nan)
    poll_cpu = np.empty(count)
    refit_cpu, refits = 0.0, 0
    answered: Counter[str] = Counter()
    for i, (now, rate) in enumerate(zip(times.tolist(), rates.tolist(), strict=True)):
        started = time.process_time()
        if series.refit_due(now):
            series.refit(now)
            refits += 1
            refit_cpu += time.process_time() - started
        series.observe(now, rate)
        forecast = series.forecast()
        path = None if forecast is None else forecast.path
        if path is not None:
            planned = ForecastPath(path.times, path.point, path.upper, path.ladder)
            readings[i] = read_path(planned, now + horizons, setup.quantile)
        poll_cpu[i] = time.process_time() - started
        answered[_answered_by(series, forecast)] += 1
    return Walk(
        trace=trace.name,
        model=model,
        poll_times=times,
        readings=readings,
        actuals=actuals,
        poll_cpu=poll_cpu,
        refit_cpu=refit_cpu,
        refits=refits,
        warm_start_cpu=warm_start_cpu,
        answered_by=dict(answered),
    )


def _answered_by(series: SeriesForecaster, forecast: SeriesForecast | None) -> str:
    """Which model gave the forecast: ``naive`` on a fallback; auto's choice with it."""
    if forecast is None:
        return "none"
    chosen = getattr(series.model, "chosen_", None) if forecast.model == "auto" else None
    return forecast.model if chosen is None else f"auto:{chosen}"


def score(result: Walk) -> list[dict[str, Any]]:
    """Per horizon: coverage at each quantile and the pinball loss at ``SCORED_QUANTILE``."""
    rows = []
    column = QUANTILES.index(SCORED_QUANTILE)
    for h, horizon in enumerate(HORIZONS_SECONDS):
        actual = result.actuals[:, h]
        readings = result.readings[:, h, :]
        scored = int(np.sum(~np.isnan(actual) & ~np.isnan(readings[:, column])))
        pinball = pinball_loss(actual, readings[:, column], SCORED_QUANTILE)
        mean_actual = float(np.nanmean(actual)) if np.any(~np.isnan(actual)) else math.nan
        row: dict[str, Any] = {
            "trace": result.trace,
            "model": result.model,
            "horizon_s": horizon,
            "horizon": f"{horizon / 60:g}m",
            "scored": scored,
            "avail": float(np.mean(~np.isnan(readings[:, column]))),
            "pinball": pinball,
            "pinball_rel": pinball / mean_actual if mean_actual > 0 else math.nan,
        }
        for q, quantile in enumerate(QUANTILES):
            row[f"cov_{quantile:g}"] = coverage(actual, readings[:, q])
        rows.append(row)
    return rows


def cost(result: Walk) -> dict[str, Any]:
    """What the walk cost, per poll (refits apart) and in all."""
    polls = len(result.poll_cpu)
    return {
        "trace": result.trace,
        "model": result.model,
        "polls": polls,
        "cpu_per_poll_ms": 1e3 * float(np.mean(result.poll_cpu)),
        "cpu_per_poll_median_ms": 1e3 * float(np.median(result.poll_cpu)),
        "cpu_per_poll_p99_ms": 1e3 * float(np.percentile(result.poll_cpu, 99)),
        "cpu_per_poll_max_ms": 1e3 * float(np.max(result.poll_cpu)),
        "cpu_no_refit_ms": 1e3 * (float(np.sum(result.poll_cpu)) - result.refit_cpu) / polls,
        "refits": result.refits,
        "refit_cpu_s": result.refit_cpu,
        "warm_start_cpu_s": result.warm_start_cpu,
        "total_cpu_s": float(np.sum(result.poll_cpu)) + result.warm_start_cpu,
        "answered_by": ", ".join(
            f"{name} {count / polls:.0%}" for name, count in sorted(result.answered_by.items())
        ),
    }


def run_one(path: str, model: str, setup: Setup) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One trace (by file) and model: its score rows and its cost row (picklable)."""
    trace = load_csv(path)
    result = walk(trace, model, setup)
    return score(result), cost(result)


def run(
    paths: Sequence[Path], models: Sequence[str], setup: Setup, jobs: int = 1
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every trace x model, in ``jobs`` processes; rows in trace, model order."""
    tasks = [(str(path), model) for path in paths for model in models]
    if jobs <= 1:
        done = [run_one(path, model, setup) for path, model in tasks]
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(run_one, path, model, setup) for path, model in tasks]
            done = [future.result() for future in futures]
    rows = [row for scores, _ in done for row in scores]
    costs = [walk_cost for _, walk_cost in done]
    return rows, costs


def summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model and horizon: the coverages and relative pinball loss, averaged over the
    traces (each trace counts once)."""
    keys = ["cov_0.5", "cov_0.9", "cov_0.99", "pinball_rel"]
    out = []
    models = list(dict.fromkeys(r["model"] for r in rows))
    for model in models:
        for horizon in HORIZONS_SECONDS:
            mine = [r for r in rows if r["model"] == model and r["horizon_s"] == horizon]
            out.append(
                {
                    "trace": f"mean of {len(mine)}",
                    "model": model,
                    "horizon": f"{horizon / 60:g}m",
                    **{k: float(np.nanmean([r[k] for r in mine])) for k in keys},
                }
            )
    return out


SCORE_COLUMNS = [
    ("trace", "trace", "s"),
    ("model", "model", "s"),
    ("ahead", "horizon", "s"),
    ("cov.5", "cov_0.5", ".3f"),
    ("cov.9", "cov_0.9", ".3f"),
    ("cov.99", "cov_0.99", ".3f"),
    ("pinb.9/s", "pinball", ".4g"),
    ("pinb.9/mean", "pinball_rel", ".4f"),
    ("scored", "scored", "d"),
    ("avail", "avail", ".1%"),
]
SUMMARY_COLUMNS = [c for c in SCORE_COLUMNS if c[1] not in ("pinball", "scored", "avail")]
COST_COLUMNS = [
    ("trace", "trace", "s"),
    ("model", "model", "s"),
    ("polls", "polls", "d"),
    ("CPU/poll ms", "cpu_per_poll_ms", ".3f"),
    ("median ms", "cpu_per_poll_median_ms", ".3f"),
    ("p99 ms", "cpu_per_poll_p99_ms", ".3f"),
    ("max ms", "cpu_per_poll_max_ms", ".1f"),
    ("w/o refits ms", "cpu_no_refit_ms", ".3f"),
    ("refits", "refits", "d"),
    ("refit s", "refit_cpu_s", ".2f"),
    ("warm s", "warm_start_cpu_s", ".2f"),
    ("total s", "total_cpu_s", ".1f"),
    ("answered by", "answered_by", "s"),
]


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--models", help=f"comma-separated (default: {','.join(MODELS)})")
    parser.add_argument("--traces", help="comma-separated trace names (default: all)")
    parser.add_argument("--days", type=float, default=Setup.days, help="scored span")
    parser.add_argument("--warmup-days", type=float, default=Setup.warmup_days)
    parser.add_argument("--poll-interval", type=float, default=Setup.poll_interval_seconds)
    parser.add_argument("--jobs", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--note", action="append", default=[], help="a line for the header")
    parser.add_argument(
        "--output",
        default=str(ROOT / "benchmarks" / "results" / "calibration"),
        help="results path stem: <stem>.txt and <stem>.json",
    )
    args = parser.parse_args(argv)

    models = args.models.split(",") if args.models else list(MODELS)
    for name in models:
        model_class(name)  # KeyError naming the known models
    folder = traces_dir()
    paths = sorted(folder.glob("*.csv"))
    if args.traces:
        wanted = args.traces.split(",")
        paths = [p for p in paths if p.stem in wanted]
        missing = sorted(set(wanted) - {p.stem for p in paths})
        if missing:
            parser.error(f"no trace {', '.join(missing)} in {folder}")
    if not paths:
        parser.error(f"no trace CSV in {folder}")
    setup = replace(
        Setup(),
        days=args.days,
        warmup_days=args.warmup_days,
        poll_interval_seconds=args.poll_interval,
    )
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    rows, costs = run(paths, models, setup, jobs=args.jobs)
    wall = time.perf_counter() - started_wall
    walk_cpu = sum(c["total_cpu_s"] for c in costs)

    report = [
        "Calibration of the forecast paths' quantile ladder (benchmarks/calibration.py)",
        "",
        f"Walk: {setup.warmup_days:g} days of warm-up (warm_start), then {setup.days:g} days "
        f"of polls every {setup.poll_interval_seconds:g} s: refit when due (daily), observe, "
        "forecast().path.",
        f"Forecaster: lead {setup.lead_seconds:g} s, quantile {setup.quantile:g}, window "
        f"{setup.window_seconds / DAY:g} d, path {setup.path_seconds:g} s (as forecaster_for "
        "with the config defaults and the planner on).",
        "Read at 5/15/30 min after each poll as the planner does (path_at_quantile, np.interp); "
        "actual: the trace's rate then (gap rows not scored).",
        "cov.q: share of actuals <= the q reading (calibrated: q). pinb.9: pinball loss of "
        "the q0.9 reading, events/s and over the mean actual.",
        "A model with an upper of its own and no ladder (quantile_gbm, and auto when it "
        "chooses it) is read at q0.99 as at its upper, q0.9: path_at_quantile never reads "
        "above the upper.",
        "nab_nyc_taxi has 30-minute rows polled every minute: a forecast within a row is "
        "often exact, and an exact forecast covers its actual (high cov.5 at 5 and 15 min).",
        *args.note,
        "",
        format_table(SCORE_COLUMNS, rows),
        "",
        "Mean over the traces:",
        "",
        format_table(SUMMARY_COLUMNS, summary(rows)),
        "",
        "Cost of the walk (CPU, process_time, in the walking process; a poll with a refit "
        "includes it):",
        "",
        format_table(COST_COLUMNS, costs),
        "",
        f"Run: {len(paths)} traces x {len(models)} models, {walk_cpu:.0f} s CPU in the walks, "
        f"{wall:.0f} s wall, {args.jobs} job(s), load average "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} at the end.",
    ]
    text = "\n".join(report)
    print(text)
    stem = Path(args.output)
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".txt").write_text(text + "\n")
    payload = {
        "setup": asdict(setup),
        "horizons_s": list(HORIZONS_SECONDS),
        "quantiles": list(QUANTILES),
        "models": models,
        "traces": [p.stem for p in paths],
        "notes": args.note,
        "rows": rows,
        "summary": summary(rows),
        "cost": costs,
        "run": {
            "walk_cpu_s": walk_cpu,
            "wall_s": wall,
            "main_cpu_s": time.process_time() - started_cpu,
            "jobs": args.jobs,
        },
    }
    stem.with_suffix(".json").write_text(json.dumps(_json_safe(payload), indent=1) + "\n")
    print(f"written to {stem.with_suffix('.txt')} and {stem.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
