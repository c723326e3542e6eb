"""Every upstream HPA test case (tests/vectors, copied from shared/vectors) as a table row.

A user moving from the HPA expects the same answer in the same situation: rate policies,
stabilization, tolerance and float rounding are checked against the values the Kubernetes
test suite asserts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from autoscaler.decision import hpa

VECTORS = Path(__file__).parent / "vectors"
SHARED_VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors"
NOW = 1_000_000.0


def _load(name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((VECTORS / name).read_text())
    return data


BEHAVIOR = _load("hpa_behavior.json")
TOLERANCE = _load("hpa_tolerance.json")


def _rows(vectors: list[dict[str, Any]], *functions: str) -> list[Any]:
    rows = [pytest.param(v, id=v["id"]) for v in vectors if v["function"] in functions]
    assert rows, f"no vectors for {functions}"
    return rows


@dataclass(frozen=True)
class Policy:
    type: Literal["Pods", "Percent"]
    value: int
    period_seconds: int


@dataclass(frozen=True)
class Rules:
    select_policy: Literal["Max", "Min", "Disabled"]
    policies: tuple[Policy, ...]
    stabilization_window_seconds: int | None = None


def _rules(raw: dict[str, Any]) -> Rules:
    return Rules(
        select_policy=raw["select_policy"],
        policies=tuple(Policy(p["type"], p["value"], p["period_seconds"]) for p in raw["policies"]),
        stabilization_window_seconds=raw.get("stabilization_window_seconds"),
    )


def _events(raw: list[dict[str, Any]]) -> tuple[hpa.ScaleEvent, ...]:
    return tuple(hpa.ScaleEvent(at=NOW - e["seconds_ago"], change=e["replica_change"]) for e in raw)


def _recommendations(raw: list[dict[str, Any]]) -> tuple[hpa.TimedRecommendation, ...]:
    return tuple(
        hpa.TimedRecommendation(at=NOW - r["seconds_ago"], replicas=r["replicas"]) for r in raw
    )


def test_vectors_match_shared_copy() -> None:
    """The copy in tests/ is what shared/ holds, when shared/ is beside the checkout."""
    if not SHARED_VECTORS.is_dir():
        pytest.skip("shared/vectors is not beside this checkout")
    for name in ("hpa_behavior.json", "hpa_tolerance.json"):
        assert (VECTORS / name).read_bytes() == (SHARED_VECTORS / name).read_bytes(), name


def test_every_vector_is_exercised() -> None:
    handled = {
        "convert_desired_replicas_with_behavior_rate",
        "calculate_scale_up_limit",
        "calculate_scale_down_limit",
        "stabilize_recommendation_with_behaviors",
        "stabilize_recommendation_legacy",
        "convert_desired_replicas_with_rules_legacy",
        "normalize_desired_replicas_legacy",
        "store_scale_event",
    }
    assert {v["function"] for v in BEHAVIOR} <= handled
    assert len(BEHAVIOR) == 75
    assert len(TOLERANCE) == 28


@pytest.mark.parametrize("v", _rows(BEHAVIOR, "convert_desired_replicas_with_behavior_rate"))
def test_behavior_rate(v: dict[str, Any]) -> None:
    effective = v["behavior_effective"]
    replicas, reason = hpa.limit_by_behavior_rate(
        current_replicas=v["current_replicas"],
        desired_replicas=v["desired_replicas"],
        min_replicas=v["min_replicas"],
        max_replicas=v["max_replicas"],
        scale_up_rules=_rules(effective["scale_up"]),
        scale_down_rules=_rules(effective["scale_down"]),
        scale_up_events=_events(v["scale_up_events"]),
        scale_down_events=_events(v["scale_down_events"]),
        now=NOW,
    )
    assert replicas == v["expected"]["replicas"]
    assert reason == v["expected"]["scaling_limited_reason"]


@pytest.mark.parametrize("v", _rows(BEHAVIOR, "calculate_scale_up_limit"))
def test_scale_up_limit(v: dict[str, Any]) -> None:
    limit = hpa.scale_up_limit(
        v["current_replicas"],
        _events(v["scale_up_events"]),
        _events(v["scale_down_events"]),
        _rules(v["rules"]),
        NOW,
    )
    assert limit == v["expected"]["limit"]


@pytest.mark.parametrize("v", _rows(BEHAVIOR, "calculate_scale_down_limit"))
def test_scale_down_limit(v: dict[str, Any]) -> None:
    limit = hpa.scale_down_limit(
        v["current_replicas"],
        _events(v["scale_up_events"]),
        _events(v["scale_down_events"]),
        _rules(v["rules"]),
        NOW,
    )
    assert limit == v["expected"]["limit"]


@pytest.mark.parametrize("v", _rows(BEHAVIOR, "stabilize_recommendation_with_behaviors"))
def test_stabilize_with_behaviors(v: dict[str, Any]) -> None:
    replicas, reason, after = hpa.stabilize_recommendation(
        current_replicas=v["current_replicas"],
        desired_replicas=v["desired_replicas"],
        recommendations=_recommendations(v["recommendations"]),
        scale_up_window=v["scale_up_stabilization_window_seconds"] or 0,
        scale_down_window=v["scale_down_stabilization_window_seconds"] or 0,
        now=NOW,
    )
    assert replicas == v["expected"]["replicas"]
    expected_after = v["expected"].get(
        "recommendations_after", v["derived"]["recommendations_after"]
    )
    assert [r.replicas for r in after] == expected_after
    assert reason == v["derived"]["stabilize_reason"]


@pytest.mark.parametrize("v", _rows(BEHAVIOR, "stabilize_recommendation_legacy"))
def test_stabilize_legacy(v: dict[str, Any]) -> None:
    replicas, after = hpa.stabilize_recommendation_legacy(
        v["desired_replicas"],
        _recommendations(v["recommendations"]),
        v["downscale_stabilization_window_seconds"],
        NOW,
    )
    assert replicas == v["expected"]["replicas"]
    assert len(after) == v["expected"]["recommendations_after_length"]
    assert [r.replicas for r in after] == v["derived"]["recommendations_after"]


@pytest.mark.parametrize("v", _rows(BEHAVIOR, "convert_desired_replicas_with_rules_legacy"))
def test_rules_legacy(v: dict[str, Any]) -> None:
    args = (v["current_replicas"], v["desired_replicas"], v["min_replicas"], v["max_replicas"])
    replicas, reason = hpa.limit_by_rules_legacy(
        *args,
        scale_up_limit_factor=v["scale_up_limit_factor"],
        scale_up_limit_minimum=v["scale_up_limit_minimum"],
    )
    assert (replicas, reason) == (
        v["expected"]["replicas"],
        v["expected"]["scaling_limited_reason"],
    )
    production = v["derived"]["with_production_factor_2"]
    assert hpa.limit_by_rules_legacy(*args) == (
        production["replicas"],
        production["scaling_limited_reason"],
    )


@pytest.mark.parametrize("v", _rows(BEHAVIOR, "normalize_desired_replicas_legacy"))
def test_normalize_legacy(v: dict[str, Any]) -> None:
    stabilized, _ = hpa.stabilize_recommendation_legacy(
        v["desired_replicas"],
        _recommendations(v["recommendations"]),
        v["downscale_stabilization_window_seconds"],
        NOW,
    )
    replicas, reason = hpa.limit_by_rules_legacy(
        v["current_replicas"], stabilized, v["min_replicas"], v["max_replicas"]
    )
    assert stabilized == v["derived"]["stabilized_replicas"]
    assert replicas == v["expected"]["replicas"]
    assert reason == v["derived"]["scaling_limited_reason"]
    able = "ScaleDownStabilized" if stabilized != v["desired_replicas"] else "ReadyForNewScale"
    assert able == v["expected"]["able_to_scale_reason"]


@pytest.mark.parametrize("v", _rows(BEHAVIOR, "store_scale_event"))
def test_store_scale_event(v: dict[str, Any]) -> None:
    previous = tuple(
        hpa.ScaleEvent(NOW - e["seconds_ago"], e["replica_change"], e["outdated"])
        for e in v["previous_events"]
    )
    assert (
        hpa.replicas_changed_in_period(60, previous, NOW)
        == v["expected"]["replicas_change_in_last_60s_before_store"]
    )
    if v["behavior_is_nil"]:
        # Upstream stores nothing without a behavior; our targets always have one.
        after = previous
    else:
        longest = max(p["period_seconds"] for p in v["rules"]["policies"])
        after = hpa.store_scale_event(previous, v["replica_change"], longest, NOW)
    assert [{"replica_change": e.change, "outdated": e.outdated} for e in after] == v["expected"][
        "events_after"
    ]


# --------------------------------------------------------------------------- tolerance


def _tolerances(v: dict[str, Any]) -> hpa.Tolerances:
    return hpa.Tolerances(scale_down=v["tolerance_scale_down"], scale_up=v["tolerance_scale_up"])


def _usage_ratio_and_replicas(v: dict[str, Any]) -> tuple[float, int]:
    """The replica calculator of each metric type, built from our tolerance primitives."""
    tol = _tolerances(v)
    kind = (v["metric_source_type"], v["target_type"])
    total, target = v.get("metric_total_milli", 0), v.get("target_milli", 0)
    current = v["current_replicas"]
    if kind in (("External", "AverageValue"), ("Object", "AverageValue")):
        replicas, ratio = hpa.external_average_value_replicas(total, target, current, tol)
        return ratio, replicas
    if kind in (("External", "Value"), ("Object", "Value")):
        ratio = total / target
        return ratio, hpa.replicas_for_usage_ratio(current, ratio, v["ready_pod_count"], tol)
    if kind == ("Pods", "AverageValue"):
        ratio = (total // len(v["metric_values_milli"])) / target
        return ratio, hpa.replicas_for_usage_ratio(current, ratio, v["ready_pod_count"], tol)
    if kind == ("Resource", "Utilization"):
        utilization = sum(v["pod_usage_milli"]) * 100 // sum(v["pod_request_milli"])
        ratio = utilization / v["target_utilization_percent"]
        return ratio, hpa.replicas_for_usage_ratio(current, ratio, v["ready_pod_count"], tol)
    raise AssertionError(f"unhandled metric kind {kind}")


@pytest.mark.parametrize("v", _rows(TOLERANCE, *{v["function"] for v in TOLERANCE}))
def test_tolerance(v: dict[str, Any]) -> None:
    ratio, replicas = _usage_ratio_and_replicas(v)
    if len(repr(v["usage_ratio"])) > 8:
        assert ratio == v["usage_ratio"]  # full-precision ratios must match bit for bit
    else:
        assert math.isclose(ratio, v["usage_ratio"], abs_tol=5e-5)  # printed rounded upstream
    assert _tolerances(v).is_within(ratio) == v["within_tolerance"]
    if v["function"].startswith("reconcile"):
        stabilized, _ = hpa.stabilize_recommendation_legacy(replicas, (), 300, NOW)
        replicas, _ = hpa.limit_by_rules_legacy(
            v["current_replicas"], stabilized, v["min_replicas"], v["max_replicas"]
        )
    assert replicas == v["expected"]["replicas"]


def test_tolerance_band_is_inclusive_at_both_ends() -> None:
    tol = hpa.Tolerances(0.1, 0.1)
    assert tol.is_within(1.0 - 0.1)
    assert tol.is_within(1.0 + 0.1)
    assert not tol.is_within(math.nextafter(1.1, 2.0))
    assert not tol.is_within(math.nan)


def test_external_average_value_from_zero_replicas_ignores_tolerance() -> None:
    tol = hpa.Tolerances()
    assert hpa.external_average_value_replicas(25.0, 10.0, 0, tol)[0] == 3
    assert hpa.external_average_value_replicas(0.0, 10.0, 0, tol)[0] == 0
