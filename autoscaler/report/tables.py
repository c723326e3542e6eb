"""The replay's comparison as text: the table ``replay`` prints, its columns (which the
page's table shares), and the lines around it (the KEDA frontier, what the autoscaler was
told, the verdict). Formatting only: the numbers are the summary's (``ReplayResult.summary``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from autoscaler.replay.runs import ORACLE, ORACLE_BEHAVIOR, REACTIVE


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    short: str
    spec: str
    better: Literal["min", "max"] | None
    none_is_infinite: bool = False
    """The summary writes None for a non-finite number: for lag, that is an infinite one."""
    cost: bool = False
    """Best on cost is best among the runs that meet the SLO only: a run that saves by
    violating it is not a saving."""


COLUMNS = (
    Column("predictor", "predictor", "predictor", "", None),
    Column("replica_hours", "replica-hours (vs reactive)", "rep-h", ",.1f", "min", cost=True),
    Column("efficiency", "efficiency", "eff", ".3f", "max", cost=True),
    Column(
        "slo_violation_minutes", "SLO-violation minutes (vs reactive)", "SLO min", ",.1f", "min"
    ),
    Column("slo_violation_pct", "SLO violation %", "SLO %", ".2f", "min"),
    Column("lag_seconds_p50", "lag p50 (s)", "p50 s", ",.1f", "min", True),
    Column("lag_seconds_p99", "lag p99 (s)", "p99 s", ",.1f", "min", True),
    Column("lag_seconds_max", "lag max (s)", "max s", ",.1f", "min", True),
    Column("scale_events", "scale events", "events", ",d", "min"),
    Column("forecast_mae", "forecast MAE (msg/s)", "MAE", ",.2f", "min"),
    Column("forecast_mase", "forecast MASE", "MASE", ".3f", "min"),
    Column("runtime_seconds", "runtime (s)", "run s", ",.2f", None),
)
"""The comparison, in the order of both tables. Runtime is not ranked: the runs without a
model are always fastest, which says nothing about them."""


def iso_utc(timestamp: float) -> str:
    """``2015-02-26T21:42:53Z``; microseconds only when the time is not whole seconds."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0") + "Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def scaling_text(scale: float, peak_replicas: float | None) -> str:
    """How the history's values were read: as recorded, or scaled (``--peak-replicas``);
    ``replay``'s headline and ``tune``'s first line say it alike."""
    if scale == 1 or peak_replicas is None:
        return "arrival rate as recorded"
    factor = f"{scale:,.0f}" if scale >= 100 else f"{scale:.4g}"
    return (
        f"arrival rate scaled x{factor} so that its 99th percentile needs "
        f"{peak_replicas:g} replicas (--peak-replicas)"
    )


# --------------------------------------------------------------------------- the tables


def comparison_table(summary: dict[str, Any]) -> str:
    """The terminal table: one aligned row per run, then each run's change vs reactive."""
    results: list[dict[str, Any]] = summary["results"]
    rows = [[c.short for c in COLUMNS]]
    rows += [[cell_text(c, r.get(c.key), ascii_only=True) for c in COLUMNS] for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    changes = changes_vs_reactive(results)
    return "\n".join(lines + ([""] if changes else []) + changes + frontier_lines(summary))


def table_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The terminal table as data (``replay -o json|yaml``): one row per run, the table's
    columns by their summary.json names, numbers unrounded (None where not finite)."""
    return [{c.key: run.get(c.key) for c in COLUMNS} for run in summary["results"]]


def frontier_lines(summary: dict[str, Any]) -> list[str]:
    """The KEDA frontier as a small table, then where each run stands against it."""
    frontier: list[dict[str, Any]] = summary.get("keda_frontier") or []
    if not frontier:
        return []
    lines = [
        "",
        "KEDA frontier: reactive at other lag thresholds (lag per replica; "
        f"{_in_flight(summary):g} is one saturated replica's in-flight lag)",
    ]
    rows = [["lag_threshold", "rep-h", "SLO min", "SLO %", "events"]] + [
        [
            str(p["lag_threshold"]),
            f"{p['replica_hours']:,.1f}",
            f"{p['slo_violation_minutes']:,.1f}",
            f"{p['slo_violation_pct']:.2f}",
            f"{p['scale_events']:,d}",
        ]
        for p in frontier
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines += ["  " + "  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    standings = frontier_standings(summary)
    if standings:
        lines.append("against the KEDA frontier (the same formula at every lag threshold above):")
        lines += [f"  {line}" for line in standings]
    weak = weak_keda_line(summary)
    if weak:
        lines.append(weak)
    return lines


def _names(names: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _saving_range(runs: Sequence[dict[str, Any]], hours: float) -> str:
    """``costs 45% less`` / ``cost 40% to 45% less`` than ``hours``."""
    savings = sorted(100.0 * (1 - float(r["replica_hours"]) / hours) for r in runs)
    verb = "costs" if len(runs) == 1 else "cost"
    low, high = f"{savings[0]:.0f}%", f"{savings[-1]:.0f}%"
    return f"{verb} {low} less" if low == high else f"{verb} {low} to {high} less"


def frontier_standings(summary: dict[str, Any]) -> list[str]:
    """Where the runs stand against the KEDA frontier, said once for the runs alike, in
    plain words: ahead of it; cheaper than the best threshold costing as much, which
    violates no longer (saving replica-hours, not violations); behind it (a threshold
    costs no more and violates no longer); or dearer than every threshold."""
    ahead: list[str] = []
    dearer: list[str] = []
    behind: dict[tuple[int, ...], list[str]] = {}
    cheaper: dict[int, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for run in summary["results"]:
        standing = run.get("keda_frontier")
        if standing is None:
            continue
        best = standing["best_keda_costing_as_much"]
        if standing["dominated_by"]:
            behind.setdefault(tuple(standing["dominated_by"]), []).append(run["predictor"])
        elif best is None:
            dearer.append(run["predictor"])
        elif standing["beats_frontier"]:
            ahead.append(run["predictor"])
        else:
            cheaper.setdefault(best["lag_threshold"], (best, []))[1].append(run)
    lines = []
    if ahead:
        lines.append(
            f"ahead: {_names(ahead)}: every lag threshold costing as much or more violates "
            "the SLO longer, or as long for more"
        )
    for threshold, (best, runs) in cheaper.items():
        runs_named = _names([r["predictor"] for r in runs])
        lines.append(
            f"cheaper, not better: {runs_named} {_saving_range(runs, best['replica_hours'])} than "
            f"lag threshold {threshold} ({best['replica_hours']:,.1f} rep-h), which violates "
            f"no longer ({best['slo_violation_minutes']:,.1f} min): against KEDA "
            f"{'it saves' if len(runs) == 1 else 'they save'} replica-hours, not violations"
        )
    for thresholds, names in behind.items():
        them = "it" if len(names) == 1 else "them"
        plural = len(thresholds) > 1
        lines.append(
            f"behind: {_names(names)}: lag threshold{'s' if plural else ''} "
            f"{_names([str(t) for t in thresholds])} {'cost' if plural else 'costs'} no more "
            f"and {'violate' if plural else 'violates'} no longer than {them}"
        )
    if dearer:
        lines.append(
            f"dearer than every lag threshold: {_names(dearer)} (the frontier cannot judge "
            f"{'it' if len(dearer) == 1 else 'them'})"
        )
    return lines


def keda_dominating_reactive(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The KEDA frontier's thresholds that cost no more than reactive (KEDA at the
    target's own lag_threshold) and violate no longer, one of them strictly: fewest
    violations first."""
    base = next((r for r in summary["results"] if r["predictor"] == REACTIVE), None)
    if base is None:
        return []
    hours, minutes = float(base["replica_hours"]), float(base["slo_violation_minutes"])
    better = [
        p
        for p in summary.get("keda_frontier") or []
        if p["replica_hours"] <= hours
        and p["slo_violation_minutes"] <= minutes
        and (p["replica_hours"], p["slo_violation_minutes"]) != (hours, minutes)
    ]
    return sorted(better, key=lambda p: (p["slo_violation_minutes"], p["replica_hours"]))


def weak_keda_line(summary: dict[str, Any]) -> str:
    """One line when the target's own lag_threshold is beaten by another threshold: the
    "vs reactive" figures then compare with a KEDA setting nobody should keep."""
    better = keda_dominating_reactive(summary)
    if not better:
        return ""
    base = next(r for r in summary["results"] if r["predictor"] == REACTIVE)
    own = (base.get("settings") or {}).get("lag_threshold")
    which = f"reactive's lag_threshold {own}" if own is not None else "reactive's lag_threshold"
    figures = "; ".join(
        f"{p['lag_threshold']}: {p['replica_hours']:,.1f} rep-h, "
        f"{p['slo_violation_minutes']:,.1f} min"
        for p in better
    )
    thresholds = _names([str(p["lag_threshold"]) for p in better])
    plural = len(better) > 1
    return (
        f"note: {which} is a weak KEDA setting here: lag threshold{'s' if plural else ''} "
        f"{thresholds} {'each do' if plural else 'does'} as well or better on both cost and "
        f"violations ({figures}; reactive: {base['replica_hours']:,.1f} rep-h, "
        f"{base['slo_violation_minutes']:,.1f} min), so the changes vs reactive flatter every "
        "run: compare with the frontier"
    )


def standing_text(standing: dict[str, Any]) -> str:
    best = standing["best_keda_costing_as_much"]
    if best is None:
        verdict = "costs more than every lag threshold"
    else:
        threshold = best["lag_threshold"]
        minutes, hours = best["slo_violation_minutes"], best["replica_hours"]
        verdict = (
            "ahead: no lag threshold costing as much or more does as well (the best of them, "
            f"{threshold}: {minutes:,.1f} min at {hours:,.1f} rep-h)"
            if standing["beats_frontier"]
            else f"not ahead: lag threshold {threshold}, costing as much or more "
            f"({hours:,.1f} rep-h), violates no longer ({minutes:,.1f} min)"
        )
    dominated = standing["dominated_by"]
    if dominated:
        verdict += f"; dominated by lag threshold {', '.join(map(str, dominated))}"
    return verdict


def _in_flight(summary: dict[str, Any]) -> float:
    frontier = summary["keda_frontier"]
    return float(sorted(p["lag_threshold"] for p in frontier)[len(frontier) // 2])


def knowledge_line(summary: dict[str, Any]) -> str:
    """What the replayed target knew of the per-replica throughput, against the truth."""
    info = summary.get("throughput") or {}
    true = info.get("true")
    configured = info.get("configured")
    if configured is not None:
        told = f"configured {configured:g} msg/s"
        if true is not None and configured != true:
            told += f" ({100.0 * (configured - true) / true:+.0f}% off the truth)"
        return (
            f"per-replica throughput: true {true:g} msg/s (simulated); the target uses the {told}"
        )
    learned = [
        f"{r['predictor']} {r['throughput_learned_final']:.4g} after "
        f"{r['throughput_learned_after_hours']:.1f} h"
        for r in summary["results"]
        if r.get("throughput_source") == "learned" and r.get("throughput_learned_final")
    ]
    not_learned = [
        r["predictor"] for r in summary["results"] if r.get("throughput_source") == "not learned"
    ]
    text = (
        f"per-replica throughput: true {true:g} msg/s (simulated); the target configures none "
        "and learns it as live (KEDA's lag formula until then)"
    )
    if learned:
        text += f": learned {'; '.join(learned)}"
    if not_learned:
        text += f"; never saturated, so never learned: {', '.join(not_learned)}"
    return text


LEGEND = (
    "rep-h: replica-hours paid; eff: work done / capacity paid; SLO min, SLO %: time the lag "
    "took longer than the SLO to drain; p50/p99/max s: that drain time; events: replica "
    "changes (each a consumer-group rebalance); MAE, MASE: forecast error (MASE < 1 beats "
    "repeating the last value); run s: seconds the run took to replay; reactive: KEDA's lag "
    "formula at the target's lag_threshold; none: our decision without a forecast; a model's "
    "row: the target's settings with that model, planned over its forecast path (the "
    "planner block); <model>/sized: the same with planner: none, one number per poll; "
    "oracle-behavior: our decision with a perfect forecast; oracle: the cheapest schedule "
    "meeting the SLO with perfect foresight, a floor no autoscaler reaches"
)


def verdict(summary: dict[str, Any]) -> str:
    """One line: which run to prefer here, and at what cost, against reactive KEDA."""
    results: list[dict[str, Any]] = summary["results"]
    base = next((r for r in results if r["predictor"] == REACTIVE), None)
    candidates = [r for r in results if r["predictor"] not in (REACTIVE, ORACLE, ORACLE_BEHAVIOR)]
    if base is None or not candidates:
        return ""
    no_worse = [
        r for r in candidates if r["slo_violation_minutes"] <= base["slo_violation_minutes"]
    ]
    if no_worse:
        best = min(no_worse, key=lambda r: (r["replica_hours"], r["slo_violation_minutes"]))
        hours = percent_change(best["replica_hours"], base["replica_hours"]) or "n/a"
        text = (
            f"verdict: {best['predictor']} is the cheapest run that violates the SLO no longer "
            f"than reactive KEDA: {hours} replica-hours, {best['slo_violation_minutes']:,.1f} "
            f"vs {base['slo_violation_minutes']:,.1f} SLO-violation minutes"
        )
        strong = keda_dominating_reactive(summary)
        if strong:
            keda = strong[0]
            against = percent_change(best["replica_hours"], keda["replica_hours"]) or "n/a"
            text += (
                f"; against lag threshold {keda['lag_threshold']}, the best KEDA that costs "
                f"no more than reactive: {against} replica-hours, "
                f"{best['slo_violation_minutes']:,.1f} vs "
                f"{keda['slo_violation_minutes']:,.1f} minutes"
            )
        calmer = _much_fewer_violations(best, candidates)
        if calmer is not None:
            more = 100.0 * (calmer["replica_hours"] / best["replica_hours"] - 1)
            text += (
                f"; {calmer['predictor']} violates much less "
                f"({calmer['slo_violation_minutes']:,.1f} vs "
                f"{best['slo_violation_minutes']:,.1f} minutes) for {more:.1f}% more "
                "replica-hours"
            )
        return text
    least = min(candidates, key=lambda r: (r["slo_violation_minutes"], r["replica_hours"]))
    return (
        f"verdict: every run violates the SLO longer than reactive KEDA here; the least is "
        f"{least['predictor']} ({least['slo_violation_minutes']:,.1f} vs "
        f"{base['slo_violation_minutes']:,.1f} minutes): try more spare capacity "
        "(slo.target_utilization) or autoscaler tune"
    )


NEAR_COST = 0.10
"""A run costing at most this share more than the verdict's is worth naming beside it when
it violates the SLO at most half as long."""


def _much_fewer_violations(
    best: dict[str, Any], candidates: Sequence[dict[str, Any]]
) -> dict[str, Any] | None:
    """The run that violates least among those at most ``NEAR_COST`` dearer than ``best``
    that violate at most half as long; None when there is none (or ``best`` has none)."""
    minutes = float(best["slo_violation_minutes"])
    near = [
        r
        for r in candidates
        if r is not best
        and float(r["slo_violation_minutes"]) <= minutes / 2
        and best["replica_hours"] <= r["replica_hours"] <= best["replica_hours"] * (1 + NEAR_COST)
    ]
    if minutes <= 0 or not near:
        return None
    return min(near, key=lambda r: (r["slo_violation_minutes"], r["replica_hours"]))


NEXT_STEPS = (
    "next: --output DIR writes report.html (charts), summary.json and a CSV per run; "
    "--history your.csv or --prometheus-url URL --query 'sum(rate(...))' replays your own "
    "history; autoscaler tune finds the cheapest settings within an SLO budget"
)


def changes_vs_reactive(results: Sequence[dict[str, Any]]) -> list[str]:
    """One line per run other than ``reactive``: the SLO gained for the replicas paid."""
    base = next((r for r in results if r["predictor"] == REACTIVE), None)
    if base is None:
        return []
    lines = []
    for run in results:
        if run is base:
            continue
        hours = percent_change(run["replica_hours"], base["replica_hours"])
        minutes = percent_change(run["slo_violation_minutes"], base["slo_violation_minutes"])
        slo = (
            f"SLO-violation minutes {minutes} vs reactive"
            if minutes is not None
            else f"{run['slo_violation_minutes']:,.1f} SLO-violation minutes (reactive: 0)"
        )
        cost = f"{hours} replica-hours" if hours is not None else "n/a replica-hours"
        lines.append(f"{run['predictor']}: {slo} at {cost}")
    return lines


def percent_change(value: float | None, base: float | None) -> str | None:
    """``-53%``/``+2.6%`` (one decimal under 10%); None when the base is zero or missing."""
    if value is None or base is None or base == 0:
        return "0%" if value == 0 and base == 0 else None
    change = 100.0 * (value - base) / base
    text = f"{change:+.1f}%" if abs(change) < 10 else f"{change:+.0f}%"
    return "0%" if text in ("+0.0%", "-0.0%") else text


def cell_text(column: Column, value: Any, ascii_only: bool = False) -> str:
    if column.key == "predictor":
        return str(value)
    if value is None:
        if column.none_is_infinite:
            return "inf" if ascii_only else "∞"
        return "-" if ascii_only else "–"
    return format(value, column.spec)
