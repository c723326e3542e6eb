"""Forecast accuracy and speed of every registered model on the real traces, rolling origin.

Run from the repository root::

    python benchmarks/predictors.py [--models a,b] [--traces x,y] [--quick] [--jobs N]

Protocol (a rolling origin: a forecast only ever sees the past)
---------------------------------------------------------------
* Each trace (``benchmarks/traces.py``: events/s, missing rows stay missing) is replayed row by
  row. The model is first fitted on the first 14 days, or on the first third of the trace
  when that is shorter (at least two thirds of every trace are then evaluated).
* Then it walks forward one row at a time. At each origin ``t`` (the newest row it has seen)
  it forecasts ``t + h`` grid steps, then absorbs the next row with ``update``, as the live
  loop does at each poll. Rows missing from the trace are simply not delivered (the model's
  history fills the gap); a forecast whose target row is missing is not scored.
* ``refit()`` once per **7 days** of trace time by default (``--refit-days``). The live loop
  retrains daily, but with daily refits the default run took 25 minutes on this 2-core
  machine (``auto`` refits all its candidates twice, ``quantile_gbm`` two boosted models, on
  every trace and lead; the NYC taxi trace alone is 200 days), against about 5 with weekly
  refits. So evaluation stays complete and the refits are thinned: every origin is still
  forecast and scored, and between refits the models keep absorbing every row with the
  cheap ``update``, as they would live between retrains. This could handicap the models
  that learn in ``fit`` (ridge, gbm, auto's choice); measured on these traces, daily instead
  of weekly refits moved no MASE by more than 0.05, mostly in favour of weekly, and changed
  no bar (``results/predictors_refit1d.txt``). ``--refit-days 1`` runs the live protocol.
* Leads of 5 and 15 minutes: ``h = max(1, ceil(lead / step))`` grid steps. On a 30-minute
  trace both leads round up to one step (30 minutes ahead), so both rows are the same run.
* One model instance per lead, built by the registry with its defaults, ``quantile=0.9`` and,
  when the model has that parameter, ``horizon_seconds = h * step`` (what the live config
  sets from the lead time): each instance is asked one lead, as it would be live.
* The scores, per trace, model and lead (``predictors/metrics.py``; unscored points: the
  target row is missing, or the model had no forecast, see ``avail``):
  - MAE of the point forecast, in events/s;
  - MASE: that MAE over the MAE of the seasonal-naive (daily) forecast at the same horizon on
    exactly the same points (< 1: beats seasonal naive). The seasonal-naive model is always
    run, as the reference, through the same protocol;
  - pinball loss of the upper forecast at q = 0.9, and its coverage (share of actuals at or
    below it; 0.9 when calibrated);
  - fit time (initial fit and daily refits: total and mean), mean time of one ``predict``
    (one timestamp) and of one ``update``. With ``--jobs 2`` (the default on 2 cores) two
    runs share the machine, each limited to one BLAS/OpenMP thread, so these times are
    indicative; the speed table below is measured alone.

Speed (the issue's bar c): each model is fitted on 14 days of 1-minute history (20 160
points) built from the NASA trace: its first 15 days of 5-minute rates linearly interpolated
onto a 1-minute grid (that stretch has no gap). The 15th day is then streamed point by point:
``update`` (timed: the amortized cost of absorbing a point) then one ``predict`` 5 minutes
ahead (timed). Fit time is the median of 3 fits (1 when a fit takes over 5 s). Measured in
the main process, alone, with the libraries' default threads, next to ``naive`` for scale.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this folder comes first on sys.path and this very file would shadow the
# ``predictors`` package: put the repository root there instead.
_HERE = str(ROOT / "benchmarks")
while _HERE in sys.path:
    sys.path.remove(_HERE)
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.traces import Trace, load_traces  # noqa: E402
from predictors.metrics import coverage, mae, mase, pinball_loss, rmse, smape  # noqa: E402
from predictors.registry import make_predictor, model_class, model_parameters  # noqa: E402

DAY = 86400.0
REFERENCE = "seasonal_naive"
DEFAULT_MODELS = (
    "naive",
    "seasonal_naive",
    "moving_average",
    "linear",
    "holt_winters",
    "seasonal_ridge",
    "quantile_gbm",
    "auto",
)
SPEED_POINTS = 14 * 1440
SPEED_STEP = 60.0
BARS = {"fit_s": 2.0, "predict_ms": 5.0, "update_ms": 1.0}


@dataclass(frozen=True)
class Setup:
    """The evaluation protocol (see the module docstring)."""

    leads_seconds: tuple[float, ...] = (300.0, 900.0)
    quantile: float = 0.9
    initial_days: float = 14.0
    refit_days: float = 7.0
    eval_days: float | None = None
    """Evaluate only this many days after the initial fit (``--quick``); None: to the end."""


def horizon_steps(lead_seconds: float, step_seconds: float) -> int:
    """Grid steps ahead for a lead time: ``max(1, ceil(lead / step))``."""
    return max(1, math.ceil(lead_seconds / step_seconds - 1e-9))


def build(model: str, quantile: float, horizon_seconds: float) -> Any:
    """The registry's model with its defaults, the quantile and the lead where it has one."""
    known = model_parameters(model)
    params: dict[str, Any] = {}
    if "quantile" in known:
        params["quantile"] = quantile
    if "horizon_seconds" in known:
        params["horizon_seconds"] = horizon_seconds
    return make_predictor(model, **params)


@dataclass
class Walk:
    """One model's rolling-origin run over one trace at one horizon."""

    trace: str
    model: str
    horizon: int
    target_times: np.ndarray
    point: np.ndarray
    upper: np.ndarray
    fit_seconds: list[float] = field(default_factory=list)
    predict_seconds: float = 0.0
    update_seconds: float = 0.0
    updates: int = 0
    warnings: dict[str, int] = field(default_factory=dict)
    error: str | None = None


def _split(trace: Trace, setup: Setup) -> tuple[int, int]:
    """Rows used for the initial fit, and rows delivered in total (fit + walk)."""
    ts = trace.timestamps
    span = float(ts[-1] - ts[0])
    train_end = ts[0] + min(setup.initial_days * DAY, span / 3)
    n_init = max(2, int(np.searchsorted(ts, train_end, side="left")))
    n_end = len(ts)
    if setup.eval_days is not None:
        limit = ts[n_init - 1] + setup.eval_days * DAY
        n_end = int(np.searchsorted(ts, limit, side="right"))
    return n_init, n_end


def walk_forward(trace: Trace, model: str, horizon: int, setup: Setup) -> Walk:
    """Fit on the first rows, then forecast ``horizon`` steps ahead and absorb, row by row."""
    ts, vs, step = trace.timestamps, trace.values, trace.step_seconds
    n_init, n_end = _split(trace, setup)
    origins = np.arange(n_init - 1, n_end)
    walk = Walk(
        trace=trace.name,
        model=model,
        horizon=horizon,
        target_times=ts[origins] + horizon * step,
        point=np.full(len(origins), np.nan),
        upper=np.full(len(origins), np.nan),
    )
    seen: Counter[str] = Counter()

    def count(message: Any, category: Any, *_: Any, **__: Any) -> None:
        seen[f"{category.__name__}: {str(message)[:120]}"] += 1

    clock = time.perf_counter
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = count
        try:
            predictor = build(model, setup.quantile, horizon * step)
            started = clock()
            predictor.fit(ts[:n_init], vs[:n_init])
            walk.fit_seconds.append(clock() - started)
            last_refit = ts[n_init - 1]
            predict_total = update_total = 0.0
            for k, row in enumerate(origins.tolist()):
                if k > 0:
                    started = clock()
                    predictor.update(ts[row], vs[row])
                    update_total += clock() - started
                    if ts[row] - last_refit >= setup.refit_days * DAY:
                        started = clock()
                        predictor.refit()
                        walk.fit_seconds.append(clock() - started)
                        last_refit = ts[row]
                started = clock()
                forecast = predictor.predict(walk.target_times[k : k + 1])
                predict_total += clock() - started
                if forecast.available:
                    walk.point[k] = forecast.point[0]
                    if forecast.upper is not None:
                        walk.upper[k] = forecast.upper[0]
            walk.predict_seconds = predict_total
            walk.update_seconds = update_total
            walk.updates = len(origins) - 1
        except Exception as error:  # a broken model must not stop the benchmark
            walk.error = f"{type(error).__name__}: {error}"
    walk.warnings = dict(seen.most_common(5))
    return walk


def _actuals(trace: Trace, target_times: np.ndarray) -> np.ndarray:
    """The trace's value at each target time; NaN where the row is missing or past the end."""
    grid, values = trace.on_grid()
    slots = np.rint((target_times - grid[0]) / trace.step_seconds).astype(np.int64)
    inside = (slots >= 0) & (slots < len(values))
    out = np.full(len(slots), np.nan)
    out[inside] = values[slots[inside]]
    return out


def score(trace: Trace, walk: Walk, reference: Walk, lead: float, setup: Setup) -> dict[str, Any]:
    """One row of the table: accuracy against the actuals, timing, availability."""
    actual = _actuals(trace, walk.target_times)
    has_target = ~np.isnan(actual)
    scored = has_target & ~np.isnan(walk.point)
    fits = walk.fit_seconds
    return {
        "trace": trace.name,
        "model": walk.model,
        "lead_s": lead,
        "h": walk.horizon,
        "step_s": trace.step_seconds,
        "origins": len(actual),
        "scored": int(scored.sum()),
        "avail": float(scored.sum() / max(1, has_target.sum())),
        "mae": mae(actual, walk.point),
        "rmse": rmse(actual, walk.point),
        "smape": smape(actual, walk.point),
        "mase": mase(actual, walk.point, reference.point),
        "pinball": pinball_loss(actual, walk.upper, setup.quantile),
        "coverage": coverage(actual, walk.upper),
        "fits": len(fits),
        "fit_total_s": float(sum(fits)),
        "fit_mean_s": float(np.mean(fits)) if fits else float("nan"),
        "predict_ms": 1e3 * walk.predict_seconds / max(1, len(actual)),
        "update_ms": 1e3 * walk.update_seconds / max(1, walk.updates),
        "error": walk.error,
        "warnings": walk.warnings,
    }


def _limit_threads() -> None:
    """Worker processes: one BLAS/OpenMP thread each, so that two runs share two cores."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # only timing is affected
        pass


def _walk_job(job: tuple[Trace, str, int, Setup]) -> Walk:
    return walk_forward(*job)


def run(
    traces: Sequence[Trace],
    models: Sequence[str],
    setup: Setup,
    jobs: int = 1,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Every model on every trace at every lead: one row each (the seasonal-naive reference
    is always run, and listed)."""
    names = list(dict.fromkeys([*models, REFERENCE]))
    work: list[tuple[Trace, str, int, Setup]] = []
    for trace in traces:
        horizons = {horizon_steps(lead, trace.step_seconds) for lead in setup.leads_seconds}
        work += [(trace, name, h, setup) for name in names for h in sorted(horizons)]
    # Longest first (the longest trace, the slowest models), for a balanced pool.
    cost = {name: i for i, name in enumerate(DEFAULT_MODELS)}
    work.sort(key=lambda j: (-len(j[0].timestamps) * (1 + cost.get(j[1], 99)), j[0].name))
    walks: dict[tuple[str, str, int], Walk] = {}
    if jobs > 1:
        with ProcessPoolExecutor(jobs, initializer=_limit_threads) as pool:
            for walk in pool.map(_walk_job, work):
                walks[walk.trace, walk.model, walk.horizon] = walk
                if progress:
                    progress(f"{walk.trace} {walk.model} h={walk.horizon}")
    else:
        for job in work:
            walk = walk_forward(*job)
            walks[walk.trace, walk.model, walk.horizon] = walk
            if progress:
                progress(f"{walk.trace} {walk.model} h={walk.horizon}")
    rows = []
    for trace in traces:
        for name in names:
            for lead in setup.leads_seconds:
                h = horizon_steps(lead, trace.step_seconds)
                reference = walks[trace.name, REFERENCE, h]
                rows.append(score(trace, walks[trace.name, name, h], reference, lead, setup))
    return rows


# ----------------------------------------------------------------------------- speed (bar c)


def speed_history(nasa: Trace) -> tuple[np.ndarray, np.ndarray]:
    """15 days of 1-minute rates: the NASA trace's first 15 days, interpolated."""
    start = nasa.timestamps[0]
    grid = start + SPEED_STEP * np.arange(SPEED_POINTS + 1440, dtype=np.float64)
    return grid, np.interp(grid, nasa.timestamps, nasa.values)


def speed(model: str, grid: np.ndarray, values: np.ndarray, stream: int) -> dict[str, Any]:
    """Fit on 20 160 points; then ``stream`` times: update one point, predict 5 min ahead."""
    clock = time.perf_counter
    lead = 300.0
    fit_times: list[float] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            while len(fit_times) < 3 and (not fit_times or fit_times[0] <= 5.0):
                predictor = build(model, 0.9, lead)
                started = clock()
                predictor.fit(grid[:SPEED_POINTS], values[:SPEED_POINTS])
                fit_times.append(clock() - started)
            ready = bool(getattr(predictor, "ready_", False))
            update_total = predict_total = 0.0
            available = 0
            for i in range(SPEED_POINTS, SPEED_POINTS + stream):
                started = clock()
                predictor.update(grid[i], values[i])
                update_total += clock() - started
                started = clock()
                forecast = predictor.predict([grid[i] + lead])
                predict_total += clock() - started
                available += forecast.available
    except Exception as error:
        return {"model": model, "error": f"{type(error).__name__}: {error}"}
    return {
        "model": model,
        "points": SPEED_POINTS,
        "fit_s": float(np.median(fit_times)),
        "fits_timed": len(fit_times),
        "predict_ms": 1e3 * predict_total / stream,
        "update_ms": 1e3 * update_total / stream,
        "ready": ready,
        "available": available / stream,
        "error": None,
    }


def speed_table(models: Sequence[str], nasa: Trace, stream: int) -> list[dict[str, Any]]:
    grid, values = speed_history(nasa)
    names = list(dict.fromkeys(["naive", *models]))
    rows = [speed(name, grid, values, stream) for name in names]
    base = rows[0]
    for row in rows:
        if row["error"] is None and base["error"] is None:
            for key, bar in BARS.items():
                row[f"{key}_x_naive"] = row[key] / base[key] if base[key] > 0 else float("nan")
                row[f"{key}_ok"] = bool(row[key] < bar)
    return rows


# ----------------------------------------------------------------------------- reporting


def _fmt(value: Any, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a" if math.isnan(value) else "inf"
    return format(value, spec)


def format_table(columns: Sequence[tuple[str, str, str]], rows: Iterable[dict[str, Any]]) -> str:
    """Plain text, aligned: ``columns`` are (header, row key, format spec)."""
    cells = [[header for header, _, _ in columns]]
    cells += [[_fmt(row.get(key), spec) for _, key, spec in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = []
    for n, line in enumerate(cells):
        text = [
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        lines.append("  ".join(text).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


ACCURACY_COLUMNS = [
    ("trace", "trace", "s"),
    ("model", "model", "s"),
    ("lead", "lead_min", "s"),
    ("h", "h", "d"),
    ("MAE/s", "mae", ".4g"),
    ("MASE", "mase", ".3f"),
    ("pinb.9", "pinball", ".4g"),
    ("cover", "coverage", ".3f"),
    ("avail", "avail", ".1%"),
    ("fits", "fits", "d"),
    ("fit tot s", "fit_total_s", ".2f"),
    ("fit mean ms", "fit_mean_ms", ".1f"),
    ("predict ms", "predict_ms", ".3f"),
    ("update ms", "update_ms", ".3f"),
]
SPEED_COLUMNS = [
    ("model", "model", "s"),
    ("fit s", "fit_s", ".3f"),
    ("x naive", "fit_s_x_naive", ".0f"),
    ("<2 s", "fit_s_ok", "s"),
    ("predict ms", "predict_ms", ".3f"),
    ("x naive", "predict_ms_x_naive", ".1f"),
    ("<5 ms", "predict_ms_ok", "s"),
    ("update ms", "update_ms", ".4f"),
    ("x naive", "update_ms_x_naive", ".1f"),
    ("<1 ms", "update_ms_ok", "s"),
    ("error", "error", "s"),
]


def accuracy_table(rows: Sequence[dict[str, Any]]) -> str:
    shown = []
    for row in rows:
        lead = f"{row['lead_s'] / 60:g}m"
        if row["h"] * row["step_s"] != row["lead_s"]:
            lead += f"->{row['h'] * row['step_s'] / 60:g}m"
        fit_mean = row["fit_mean_s"] * 1e3
        shown.append({**row, "lead_min": lead, "fit_mean_ms": fit_mean})
    return format_table(ACCURACY_COLUMNS, shown)


def _yes_no(row: dict[str, Any]) -> dict[str, Any]:
    return {k: ("yes" if v else "NO") if isinstance(v, bool) else v for k, v in row.items()}


def bars(rows: Sequence[dict[str, Any]], speed_rows: Sequence[dict[str, Any]]) -> list[str]:
    """The issue's acceptance bars, each with the figures and whether it is met."""
    by = {(r["trace"], r["model"], r["lead_s"]): r["mase"] for r in rows if r["error"] is None}
    traces = list(dict.fromkeys(r["trace"] for r in rows))
    leads = list(dict.fromkeys(r["lead_s"] for r in rows))
    lines = []

    def mase_of(trace: str, model: str, lead: float) -> float:
        value = by.get((trace, model, lead), float("nan"))
        return float(value) if value is not None else float("nan")

    present = {r["model"] for r in rows if r["error"] is None}
    missing = [m for m in ("auto", "linear", "holt_winters") if m not in present]
    if missing:
        lines.append(f"(a) auto beats linear and holt_winters: NOT EVALUATED (missing: {missing})")
    else:
        verdicts = []
        for lead in leads:
            wins = [
                t
                for t in traces
                if mase_of(t, "auto", lead)
                < min(mase_of(t, "linear", lead), mase_of(t, "holt_winters", lead))
            ]
            share = len(wins) / len(traces)
            verdicts.append(share >= 0.8)
            lines.append(
                f"(a) lead {lead / 60:g} min: auto MASE < min(linear, holt_winters) on "
                f"{len(wins)}/{len(traces)} traces ({share:.0%}; bar >= 80%)"
            )
        lines.append(f"(a) MET: {'yes' if all(verdicts) else 'NO'}")
    if "auto" not in present:
        lines.append("(b) auto MASE < 1 on most traces: NOT EVALUATED (auto missing)")
    else:
        verdicts = []
        for lead in leads:
            below = [t for t in traces if mase_of(t, "auto", lead) < 1]
            verdicts.append(len(below) > len(traces) / 2)
            lines.append(
                f"(b) lead {lead / 60:g} min: auto MASE < 1 on {len(below)}/{len(traces)} traces "
                "(bar: more than half)"
            )
        lines.append(f"(b) MET: {'yes' if all(verdicts) else 'NO'}")
    if speed_rows:
        failing = [
            f"{r['model']}:{key}"
            for r in speed_rows
            for key in BARS
            if r.get("error") is not None or not r.get(f"{key}_ok", False)
        ]
        lines.append(
            "(c) every model: fit(20 160 pts) < 2 s, predict < 5 ms, update < 1 ms amortized: "
            + ("MET: yes" if not failing else f"MET: NO ({', '.join(failing)})")
        )
    else:
        lines.append("(c) speed: NOT MEASURED")
    return lines


def protocol_text(setup: Setup, traces: Sequence[Trace], jobs: int) -> list[str]:
    leads = ", ".join(f"{lead / 60:g} min" for lead in setup.leads_seconds)
    lines = [
        "Rolling origin: fit on the first "
        f"min({setup.initial_days:g} days, 1/3 of the trace), then at every row: forecast "
        "t+h, absorb the next row (update), refit() every "
        f"{setup.refit_days:g} day(s) of trace time (live: daily, --refit-days 1; weekly "
        "keeps the run short); every origin evaluated"
        + (f" for {setup.eval_days:g} days (--quick)" if setup.eval_days is not None else "")
        + ".",
        f"Leads {leads}: h = max(1, ceil(lead / step)); q = {setup.quantile}. MASE = MAE / MAE "
        "of seasonal naive (daily) on the same points at the same h. Values in events/s.",
        f"Timings: {jobs} worker process(es), 1 BLAS/OpenMP thread each when > 1; predict = "
        "one call for one timestamp; fit = initial fit + refits.",
    ]
    for trace in traces:
        rounded = [
            lead
            for lead in setup.leads_seconds
            if horizon_steps(lead, trace.step_seconds) * trace.step_seconds != lead
        ]
        if rounded:
            h = [horizon_steps(lead, trace.step_seconds) for lead in rounded]
            lines.append(
                f"Note: {trace.name} has a {trace.step_seconds / 60:g}-minute step: lead(s) "
                + ", ".join(f"{lead / 60:g} min" for lead in rounded)
                + f" round up to {sorted(set(h))} step(s) "
                f"({max(h) * trace.step_seconds / 60:g} min ahead); those rows are one run."
            )
    return lines


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
    parser.add_argument("--models", help="comma-separated (default: every default model)")
    parser.add_argument("--traces", help="comma-separated trace names (default: all)")
    parser.add_argument("--quick", action="store_true", help="2 evaluated days, short speed run")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--refit-days", type=float, default=Setup.refit_days)
    parser.add_argument("--no-speed", action="store_true", help="skip the speed table")
    parser.add_argument("--output", help="results path stem (default benchmarks/results/...)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    wanted = args.models.split(",") if args.models else list(DEFAULT_MODELS)
    models, skipped = [], {}
    for name in wanted:
        try:
            model_class(name)
            models.append(name)
        except Exception as error:
            skipped[name] = f"{type(error).__name__}: {error}"
            print(f"warning: skipping model {name}: {skipped[name]}", file=sys.stderr)
    traces = load_traces(args.traces.split(",") if args.traces else None)
    setup = Setup(refit_days=args.refit_days)
    if args.quick:
        setup = replace(setup, eval_days=2.0)

    def progress(message: str) -> None:
        print(f"  [{time.perf_counter() - started:6.0f}s] done {message}", file=sys.stderr)

    rows = run(traces, models, setup, jobs=args.jobs, progress=progress)
    walk_seconds = time.perf_counter() - started
    speed_rows: list[dict[str, Any]] = []
    if not args.no_speed:
        nasa = next((t for t in load_traces() if t.name == "nasa_http_5min"), None)
        if nasa is not None:
            speed_rows = speed_table(models, nasa, stream=100 if args.quick else 1440)
    total_seconds = time.perf_counter() - started

    report = ["Predictor benchmark (benchmarks/predictors.py)", ""]
    report += protocol_text(setup, traces, args.jobs)
    if skipped:
        report += [
            f"Skipped (unknown or failed to import): {name}: {why}" for name, why in skipped.items()
        ]
    errors = [f"{r['trace']}/{r['model']}/{r['lead_s']:g}s: {r['error']}" for r in rows]
    report += [f"ERROR {e}" for e in errors if not e.endswith(": None")]
    report += [
        f"Warnings {r['trace']}/{r['model']}/{r['lead_s']:g}s: {r['warnings']}"
        for r in rows
        if r["warnings"]
    ]
    report += ["", accuracy_table(rows), ""]
    if speed_rows:
        report += [
            f"Speed: fit on {SPEED_POINTS} 1-minute points (NASA, 5-min rates interpolated), "
            "then update + predict(5 min ahead) on the next "
            f"{100 if args.quick else 1440} points; alone in this process.",
            "",
            format_table(SPEED_COLUMNS, [_yes_no(r) for r in speed_rows]),
            "",
        ]
    report += ["Bars:", *bars(rows, speed_rows), ""]
    report.append(
        f"Run time: {total_seconds:.0f} s (rolling origin {walk_seconds:.0f} s, speed "
        f"{total_seconds - walk_seconds:.0f} s), {args.jobs} job(s)."
    )
    text = "\n".join(report)
    print(text)

    stem = Path(args.output) if args.output else ROOT / "benchmarks" / "results" / "predictors"
    if args.quick and not args.output:
        stem = stem.with_name(stem.name + "_quick")
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".txt").write_text(text + "\n")
    payload = {
        "protocol": {**asdict(setup), "jobs": args.jobs, "reference": REFERENCE},
        "models": models,
        "skipped": skipped,
        "traces": {t.name: {"rows": len(t.timestamps), "step_s": t.step_seconds} for t in traces},
        "rows": rows,
        "speed": speed_rows,
        "bars": bars(rows, speed_rows),
        "run_seconds": {"total": total_seconds, "rolling_origin": walk_seconds},
    }
    stem.with_suffix(".json").write_text(json.dumps(_json_safe(payload), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
