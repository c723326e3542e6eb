"""What the dashboard's and the alerts' PromQL may name, and what it names."""

from __future__ import annotations

from typing import Any

import promql_parser

from autoscaler.observability.metrics import ServiceMetrics

__all__ = ["exported_metric_names", "selector_names"]


def exported_metric_names() -> set[str]:
    """Every series name the service's registry can expose (counters with ``_total``...)."""
    suffixes = {
        "counter": ("_total",),
        "gauge": ("",),
        "histogram": ("_bucket", "_count", "_sum"),
    }
    return {
        family.name + suffix
        for family in ServiceMetrics().registry.collect()
        for suffix in suffixes[family.type]
    }


def selector_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects; raises ValueError when it is not valid PromQL."""
    names: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names
