"""The fleet's summary: its workloads ranked by what the autoscaler saves on each, and the
ones that need a look (no setting meets the budget, more violations than reactive, a
history that could not be read)."""

from __future__ import annotations

from typing import Any

__all__ = ["rank_replays", "rank_tunes", "render_ranking"]

REACTIVE = "reactive"


def rank_replays(
    outcomes: list[dict[str, Any]], run: str, budget_pct: float | None
) -> list[dict[str, Any]]:
    """Per workload: ``run`` (the target's configured model) against reactive KEDA, the
    largest saving of replica-hours first; failed workloads last."""
    rows = []
    for outcome in outcomes:
        if outcome.get("error"):
            rows.append({"workload": outcome["workload"], "error": outcome["error"]})
            continue
        results = {r["predictor"]: r for r in outcome["summary"]["results"]}
        ours, reactive = results[run], results[REACTIVE]
        flags = []
        if budget_pct is not None and ours["slo_violation_pct"] > budget_pct:
            flags.append(f"over the {budget_pct:g}% budget")
        if ours["slo_violation_minutes"] > reactive["slo_violation_minutes"]:
            flags.append("violates longer than reactive")
        rows.append(_row(outcome["workload"], run, ours, reactive, flags))
    return _ranked(rows)


def rank_tunes(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per workload: the recommended setting against reactive KEDA, both on the test part
    (out of sample); workloads where no setting meets the budget say so, with the closest."""
    rows = []
    for outcome in outcomes:
        if outcome.get("error"):
            rows.append({"workload": outcome["workload"], "error": outcome["error"]})
            continue
        tuned = outcome["tune"]
        reactive = next(b for b in tuned["baselines"] if b["name"] == REACTIVE)["test"]
        chosen = tuned["recommended"]
        flags = []
        if chosen is None:
            chosen = min(
                tuned["candidates"],
                key=lambda c: (c["tune"]["slo_violation_pct"], c["tune"]["replica_hours"]),
            )
            flags.append(f"no setting meets the {tuned['budget_pct']:g}% budget: the closest")
        elif chosen["test"]["slo_violation_pct"] > tuned["budget_pct"]:
            flags.append("budget missed out of sample")
        rows.append(_row(outcome["workload"], chosen["name"], chosen["test"], reactive, flags))
    return _ranked(rows)


def _row(
    workload: str,
    setting: str,
    ours: dict[str, Any],
    reactive: dict[str, Any],
    flags: list[str],
) -> dict[str, Any]:
    saved = reactive["replica_hours"] - ours["replica_hours"]
    base = reactive["replica_hours"]
    return {
        "workload": workload,
        "setting": setting,
        "replica_hours": ours["replica_hours"],
        "reactive_replica_hours": reactive["replica_hours"],
        "saved_replica_hours": saved,
        "saved_pct": 100.0 * saved / base if base else 0.0,
        "slo_violation_minutes": ours["slo_violation_minutes"],
        "reactive_slo_violation_minutes": reactive["slo_violation_minutes"],
        "scale_events": ours["scale_events"],
        "reactive_scale_events": reactive["scale_events"],
        "flags": flags,
        "error": None,
    }


def _ranked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ok = sorted(
        (r for r in rows if r["error"] is None),
        key=lambda r: (-r["saved_replica_hours"], r["workload"]),
    )
    failed = sorted((r for r in rows if r["error"] is not None), key=lambda r: r["workload"])
    return ok + failed


def render_ranking(rows: list[dict[str, Any]], title: str) -> str:
    """The terminal table: one line per workload, then the flags and failures."""
    lines = [
        title,
        f"  {'workload':<24}{'setting':<34}{'rep-h':>9}{'reactive':>9}{'saved':>8}"
        f"{'viol-min':>9}{'reactive':>9}{'events':>7}{'reactive':>9}",
    ]
    total_ours = total_reactive = 0.0
    for row in rows:
        if row["error"] is not None:
            continue
        total_ours += row["replica_hours"]
        total_reactive += row["reactive_replica_hours"]
        mark = " !" if row["flags"] else ""
        lines.append(
            f"  {row['workload'][:23]:<24}{row['setting'][:33]:<34}"
            f"{row['replica_hours']:>9,.0f}{row['reactive_replica_hours']:>9,.0f}"
            f"{row['saved_pct']:>7.1f}%{row['slo_violation_minutes']:>9,.0f}"
            f"{row['reactive_slo_violation_minutes']:>9,.0f}{row['scale_events']:>7,d}"
            f"{row['reactive_scale_events']:>9,d}{mark}"
        )
    if total_reactive:
        saved = 100.0 * (total_reactive - total_ours) / total_reactive
        lines.append(
            f"  fleet: {total_ours:,.0f} replica-hours against reactive's "
            f"{total_reactive:,.0f} ({saved:.1f}% saved)"
        )
    for row in rows:
        if row["error"] is None and row["flags"]:
            lines.append(f"  ! {row['workload']}: {'; '.join(row['flags'])}")
        elif row["error"] is not None:
            lines.append(f"  failed {row['workload']}: {row['error']}")
    return "\n".join(lines)
