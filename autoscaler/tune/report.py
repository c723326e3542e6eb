"""What ``tune`` prints and writes: the split, the frontier, the baselines, the choice."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime
from typing import Any

import yaml

from autoscaler.report.tables import scaling_text
from autoscaler.tune.search import Scored, TuneResult
from autoscaler.tune.space import Setting


def fragment_yaml(setting: Setting, current_model: str | None = None) -> str:
    """The recommendation as YAML to paste under the target (``autoscaler validate``
    accepts the file it is pasted into)."""
    return yaml.safe_dump(setting.fragment(current_model), sort_keys=False).rstrip()


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _figures(part: dict[str, Any]) -> str:
    return (
        f"{part['replica_hours']:>10,.1f} {part['slo_violation_minutes']:>8,.1f} "
        f"{part['slo_violation_pct']:>6.2f} {part['scale_events']:>7,d}"
    )


HEADER = f"{'':<44}{'rep-h':>10} {'viol-min':>8} {'viol%':>6} {'events':>7}"


def render(result: TuneResult, tried: int) -> str:
    """The terminal report."""
    lines = [
        f"{result.trace}: {tried} settings; tuned on {result.tune_hours / 24:.1f} days up to "
        f"{_when(result.split_at)}, tested on the {result.test_hours / 24:.1f} days after; "
        f"{scaling_text(result.scale, result.peak_replicas)}; "
        f"budget: lag over the SLO at most {result.budget_pct:g}% of the time",
        "",
        "frontier on the tuning part (no other setting violates less for less), "
        "with each point's test-part figures:",
        f"{'setting':<44}{'tuning part':>33}   {'test part':>33}",
    ]
    chosen = result.recommended
    # The recommendation trades a little cost for fewer scale events, so it may sit just
    # off the frontier: it is listed with it, in cost order, always.
    shown = sorted(
        {id(s): s for s in [*result.frontier, *([chosen] if chosen else [])]}.values(),
        key=lambda s: (s.tune["replica_hours"], s.tune["slo_violation_minutes"]),
    )
    for scored in shown:
        mark = " *" if scored is chosen else ""
        lines.append(f"{scored.name + mark:<44}{_figures(scored.tune)}   {_figures(scored.test)}")
    lines += ["", "on the test part:", HEADER]
    for scored in [*result.baselines, *result.keda_frontier]:
        lines.append(f"{scored.name:<44}{_figures(scored.test)}")
    chosen = result.recommended
    lines.append("")
    kept = result.target_budget_percent
    eligible = len(result.eligible)
    if kept is not None and eligible < len(result.candidates):
        lines.append(
            f"the target sets slo.budget_percent {kept:g}: only the {eligible} of the "
            f"{len(result.candidates)} settings that keep an SLO budget (budget...%) can be "
            f"recommended; the other {len(result.candidates) - eligible} run without one (a "
            "fixed quantile, q..., or model none) and would switch it off"
        )
    if kept is not None and eligible == 0:
        lines.append(
            f"no setting tried keeps the target's slo.budget_percent ({kept:g}%): add a "
            "model besides none to --models, or remove slo.budget_percent from the target "
            "to tune without it"
        )
        return "\n".join(lines)
    if chosen is None:
        closest = result.closest
        lines.append(
            f"no setting kept the lag within the SLO {result.budget_pct:g}% of the time on "
            "the tuning part"
            + (
                ""
                if closest is None
                else f"; closest: {closest.name} at {closest.tune['slo_violation_pct']:.2f}%"
            )
        )
        return "\n".join(lines)
    reactive = next((b for b in result.baselines if b.name == "reactive"), None)
    met = chosen.test["slo_violation_pct"] <= result.budget_pct
    text = (
        f"recommended (*): {chosen.name}: on the test part {chosen.test['replica_hours']:,.1f} "
        f"replica-hours, {chosen.test['slo_violation_pct']:.2f}% of the time over the SLO "
        f"(budget {'met' if met else 'MISSED'} out of sample)"
    )
    if reactive is not None and reactive.test["replica_hours"] > 0:
        hours = 100.0 * (chosen.test["replica_hours"] / reactive.test["replica_hours"] - 1)
        text += (
            f"; vs reactive KEDA {hours:+.1f}% replica-hours, "
            f"{chosen.test['slo_violation_minutes']:,.1f} vs "
            f"{reactive.test['slo_violation_minutes']:,.1f} violation minutes, "
            f"{chosen.test['scale_events']:,d} vs {reactive.test['scale_events']:,d} scale events"
        )
    lines.append(text)
    change = budget_change(result, chosen)
    if change:
        lines.append(change)
    return "\n".join(lines)


def budget_change(result: TuneResult, chosen: Scored) -> str:
    """One line when applying ``chosen`` changes the target's ``slo.budget_percent``."""
    if chosen.setting is None or not chosen.setting.budget_percent:
        return ""
    new, old = chosen.setting.budget_percent, result.target_budget_percent
    if old is not None and math.isclose(new, old):
        return ""
    was = "the target sets none" if old is None else f"the target's is {old:g}"
    return (
        f"note: the recommendation sets slo.budget_percent {new:g} ({was}): the quantile "
        f"adapts to keep the lag over the SLO at most {new:g}% of the time, and /status, the "
        "slo_budget metrics and the budget alerts then report against it"
    )


def summary(result: TuneResult) -> dict[str, Any]:
    """``tune.json``: every setting's figures on both parts, the baselines, the choice."""

    def entry(scored: Scored) -> dict[str, Any]:
        return {
            "name": scored.name,
            "setting": None if scored.setting is None else dataclasses.asdict(scored.setting),
            "tune": scored.tune,
            "test": scored.test,
        }

    chosen = result.recommended
    return {
        "trace": result.trace,
        "budget_pct": result.budget_pct,
        "target_budget_percent": result.target_budget_percent,
        "split_at": result.split_at,
        "tune_hours": result.tune_hours,
        "test_hours": result.test_hours,
        "recommended": None if chosen is None else entry(chosen),
        "frontier": [s.name for s in result.frontier],
        "candidates": [entry(s) for s in result.candidates],
        "baselines": [entry(s) for s in result.baselines],
        "keda_frontier": [entry(s) for s in result.keda_frontier],
    }
