"""The one structured line per decision: ``scaling_decision``.

Every decision is logged once, with its inputs (per-trigger sizing and the formula behind
it), the forecast, the result and every rule that bounded it, and the target's name, so
that ``kubectl logs | jq 'select(.target == "orders")'`` explains any replica change.
The live controller calls it for every decision of the poll step (replay scores its
decisions from the timeline instead of logging each one).
"""

from __future__ import annotations

from typing import Any

import structlog

from autoscaler.decision import Decision

_log = structlog.get_logger("autoscaler.decision")


def missing_data(decision: Decision) -> frozenset[str]:
    """The triggers whose data ``decision`` had to do without (missing or stale, and not in
    fallback yet)."""
    return frozenset(t.trigger for t in decision.triggers if t.replicas is None)


def log_decision(
    target: str,
    decision: Decision,
    *,
    dry_run: bool,
    missing_before: frozenset[str] = frozenset(),
    **extra: Any,
) -> None:
    """Log ``decision`` for ``target``: warning when data went missing, info otherwise.

    ``missing_before`` is :func:`missing_data` of the target's previous decision: a trigger
    whose data stays missing poll after poll (a broker outage) is warned about once, at the
    first decision without it; the decisions after are still logged, at info, each saying
    the same in its trigger's ``detail``. The outage itself is the source's to report.
    """
    fields = decision.log_fields()
    newly_missing = missing_data(decision) - missing_before
    method = _log.warning if newly_missing else _log.info
    method(
        "scaling_decision",
        target=target,
        dry_run=dry_run,
        changed=decision.changed,
        **fields,
        **extra,
    )
