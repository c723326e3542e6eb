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


def log_decision(target: str, decision: Decision, *, dry_run: bool, **extra: Any) -> None:
    """Log ``decision`` for ``target``: warning when data was missing, info otherwise."""
    fields = decision.log_fields()
    missing = any(t.replicas is None for t in decision.triggers)
    method = _log.warning if missing else _log.info
    method(
        "scaling_decision",
        target=target,
        dry_run=dry_run,
        changed=decision.changed,
        **fields,
        **extra,
    )
