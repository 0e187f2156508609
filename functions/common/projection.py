"""Projections: what a finished workflow writes into its own main table (the manifest's ``Projection``).

The coordinator hands the projection function a ``FinishedWorkflow`` built from the stored record and its
stored outcome only, so writing the row again (a retried publication) writes the same item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FinishedWorkflow:
    workflow: str
    workflow_id: str
    id_field: str
    status: str
    reason: str | None
    # The trigger's detail as stored (None when the trigger never arrived).
    trigger: dict[str, Any] | None
    trigger_error: str | None
    outcome: dict[str, Any]
    finished_at: str | None

    def summary(self) -> dict[str, Any]:
        """The fields every projection may carry: each agent's result in brief, what was missing, timings."""
        return {
            "results": {
                agent: {
                    "detail_type": result.get("detail_type"),
                    "outcome": result.get("outcome"),
                    "reason": result.get("reason"),
                    "duration_ms": result.get("duration_ms"),
                }
                for agent, result in sorted((self.outcome.get("results") or {}).items())
            },
            "missing": self.outcome.get("missing", []),
            "timings": self.outcome.get("timings"),
            "finished_at": self.finished_at,
            "idempotency_key": self.outcome.get("idempotency_key"),
        }

