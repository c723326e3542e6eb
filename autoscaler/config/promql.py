"""PromQL syntax, checked before a query is ever sent.

An invalid query passes YAML and schema checks, and at run time looks like an outage: every
poll gets an HTTP 400, the trigger goes to its fallback. ``promql-parser`` (Python bindings
of the parser GreptimeDB maintains, which follows Prometheus's grammar and type rules) finds
it at ``validate`` time instead, with the parser's reason.
"""

from __future__ import annotations

__all__ = ["promql_problem"]


def promql_problem(query: str) -> str | None:
    """Why ``query`` is not valid PromQL, or None when it is."""
    import promql_parser

    try:
        promql_parser.parse(query)
    except ValueError as error:
        reason = str(error).strip() or "invalid PromQL"
        return reason.splitlines()[0][:200]
    return None
