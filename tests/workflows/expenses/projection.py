"""An expense claim's row in the expense-claims table."""

from __future__ import annotations

from typing import Any

from functions.common.projection import FinishedWorkflow


def claim_item(finished: FinishedWorkflow) -> dict[str, Any]:
    claim = finished.trigger or {}
    return {
        "claim_id": finished.workflow_id,
        "status": finished.status,
        "reason": finished.reason,
        "employee_id": claim.get("employee_id"),
        "category": claim.get("category"),
        "amount": claim.get("amount"),
        **finished.summary(),
    }
