"""An access request's row in the access-requests table: a pure function of the finished workflow."""

from __future__ import annotations

from typing import Any

from functions.common.projection import FinishedWorkflow

DECISIONS = {"COMPLETED": "GRANTED", "REJECTED": "DENIED", "TIMED_OUT": "TIMED_OUT"}


def request_item(finished: FinishedWorkflow) -> dict[str, Any]:
    request = finished.trigger or {}
    return {
        "request_id": finished.workflow_id,
        "workflow": finished.workflow,
        "status": finished.status,
        "decision": DECISIONS.get(finished.status, finished.status),
        "reason": finished.reason,
        "employee_id": request.get("employee_id"),
        "resource": request.get("resource"),
        "access_level": request.get("access_level"),
        "requested_at": request.get("requested_at"),
        **finished.summary(),
    }
