"""The workflow's outcome, built from its record: the ``WorkflowOutcome`` detail the finish stores and every
publication sends (``build_outcome``), its timings, what a projection sees of a finished workflow, and the fields a
final record gives again exactly, which the store therefore does not keep (``derived_outcome``)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal, cast

from functions.common.models import WorkflowOutcome
from functions.common.moments import iso_ms
from functions.common.projection import FinishedWorkflow
from functions.common.spec import Workflow
from functions.coordinator.record import (
    Decision,
    WorkflowRecord,
    missing_agents,
    public_quorum,
    quorum_state,
    reported_results,
)
from functions.coordinator.times import ms_between, parse_iso


def timings(record: WorkflowRecord, finished_at: datetime | None,
            workflow: Workflow | None = None) -> dict[str, Any]:
    """End to end (the parallel run) and per agent, with the chained alternative for comparison: over the results
    an outcome reports (``reported_results``)."""
    results = reported_results(record, workflow)
    starts = [parse_iso(record.trigger_received_at)]
    starts += [parse_iso(result.get("started_at")) for result in results.values()]
    known = [moment for moment in starts if moment is not None]
    started = min(known) if known else None
    agents = {name: _number(result.get("duration_ms")) for name, result in sorted(results.items())}
    values = list(agents.values())
    return {
        "started_at": iso_ms(started) if started else None,
        "trigger_received_at": record.trigger_received_at,
        "finished_at": iso_ms(finished_at) if finished_at else None,
        "duration_ms": ms_between(started, finished_at) if started and finished_at else None,
        "agents": agents,
        "agents_sum_ms": round(sum(values), 3),
        "slowest_agent_ms": max(values) if values else 0,
    }


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


OutcomeStatus = Literal["COMPLETED", "REJECTED", "TIMED_OUT", "CANCELLED"]  # WorkflowOutcome.status


def build_outcome(record: WorkflowRecord, workflow: Workflow, decision: Decision,
                  finished_at: datetime) -> dict[str, Any]:
    """The ``WorkflowOutcome`` detail the finish stores and every publication sends, unchanged. The
    workflow's own id field (``Trigger.id_field``) closes it, equal to ``workflow_id``."""
    outcome = WorkflowOutcome(
        workflow=workflow.name,
        workflow_id=record.workflow_id,
        status=cast(OutcomeStatus, decision.status.value),  # never RUNNING: a decision is final
        reason=decision.reason,
        results=dict(sorted(reported_results(record, workflow).items())),
        missing=list(decision.missing),
        timings=timings(record, finished_at, workflow),
        idempotency_key=f"{record.workflow_id}:{decision.status.value}",
    ).model_dump(mode="json")
    quorum = public_quorum(quorum_state(record, workflow))
    if quorum is not None:
        outcome["quorum"] = quorum
    outcome[workflow.id_field] = record.workflow_id
    return outcome


def finished_workflow(record: WorkflowRecord, workflow: Workflow) -> FinishedWorkflow:
    """What a projection sees: the stored record and its stored outcome, nothing else."""
    outcome = record.outcome or {}
    return FinishedWorkflow(
        workflow=workflow.name, workflow_id=record.workflow_id, id_field=workflow.id_field,
        status=record.status.value, reason=outcome.get("reason"), trigger=record.trigger,
        trigger_error=record.trigger_error, outcome=outcome, finished_at=record.finished_at,
    )


def derived_outcome(record: WorkflowRecord, workflow: Workflow | None) -> dict[str, Any]:
    """The outcome's fields a final record gives again, exactly as the finish built them: its status and reason,
    the counted results' names, the timings, the missing agents and the quorum. Only for a record whose trigger
    was in when it finished: its counted results and times cannot change any more (slots are written only while
    it runs, and the trigger's version and time once), so a field equal to this at the finish is not stored."""
    if not record.trigger_seen or not record.status.is_final or record.finished_at is None:
        return {}
    derived: dict[str, Any] = {"status": record.status.value, "reason": record.reason,
                               "results": sorted(reported_results(record, workflow)),
                               "timings": timings(record, parse_iso(record.finished_at), workflow)}
    if workflow is not None:
        derived["missing"] = missing_agents(record, workflow)
        quorum = public_quorum(quorum_state(record, workflow))
        if quorum is not None:
            derived["quorum"] = quorum
    return derived
