"""The coordinator's ports: what it needs from the outside, injected by the handler (``handler.py``) or a test."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from functions.common.dead_letters import PoisonMessage
from functions.common.spec import WorkflowStatus
from functions.coordinator.record import WorkflowRecord


class RowRefused(Exception):
    """A main table refused a row for what it holds (DynamoDB's ValidationException): every retry would too."""


class KeptAsideFull(PoisonMessage):
    """An entry that counts for nothing (a late result, answer or cancel), for a record that holds ``MAX_LATE``
    entries aside already: dead-lettered with its reason instead, so that nothing is dropped silently (black-box
    pass 20A, F1: the 21st late answer was acknowledged and kept nowhere). ``record``: the record as read."""

    def __init__(self, reason: str, record: WorkflowRecord | None) -> None:
        super().__init__(f"{reason}; the record keeps no more entries aside")
        self.record = record


class Store(Protocol):
    def open(self, workflow: str, workflow_id: str, *, trigger: dict[str, Any] | None, digest: str,
             error: str | None, received_at: str, event_id: str, placed_at: str, deadline_at: str,
             schedule_name: str) -> tuple[bool, WorkflowRecord]: ...
    def refuse(self, workflow: str, workflow_id: str, refusal: dict[str, Any]) -> bool: ...
    def record_result(self, workflow: str, workflow_id: str, agent: str, result: dict[str, Any],
                      deadline_at: str, *, late_once_per_version: bool = False) -> tuple[str, WorkflowRecord]: ...
    def keep_late(self, workflow: str, workflow_id: str, agent: str | None, entry: dict[str, Any],
                  reason: str, *, once: str | None = None) -> WorkflowRecord | None: ...
    def request_cancel(self, workflow: str, workflow_id: str, cancel: dict[str, Any]) -> tuple[str, WorkflowRecord]: ...
    def extend_deadline(self, workflow: str, workflow_id: str, deadline_at: str) -> None: ...
    def finish(self, workflow: str, workflow_id: str, *, base: WorkflowRecord, status: WorkflowStatus,
               outcome: dict[str, Any], finished_at: str, lease_until_ms: int,
               lease_owner: str) -> WorkflowRecord | None: ...
    def claim_publication(self, workflow: str, workflow_id: str, *, now_ms: int, lease_until_ms: int,
                          lease_owner: str) -> WorkflowRecord | None: ...
    def release_publication(self, workflow: str, workflow_id: str, lease_owner: str) -> None: ...
    def mark_published(self, workflow: str, workflow_id: str, published_at: str,
                       projection_error: str | None = None) -> None: ...
    def note_projection_error(self, workflow: str, workflow_id: str, problem: str) -> None: ...
    def put_projection(self, table: str, item: dict[str, Any]) -> None: ...
    def load(self, workflow: str, workflow_id: str) -> WorkflowRecord | None: ...


class Deadlines(Protocol):
    def create(self, name: str, at: datetime, detail: dict[str, Any]) -> bool: ...
    def rearm(self, name: str, at: datetime, detail: dict[str, Any]) -> None: ...
    def refire(self, name: str, at: datetime, detail: dict[str, Any]) -> str: ...
    def delete(self, name: str) -> bool: ...


class WorkflowMetrics(Protocol):
    def started(self, workflow: str) -> None: ...
    def finished(self, workflow: str, status: WorkflowStatus, duration_ms: float | None) -> None: ...


class NullMetrics:
    def started(self, workflow: str) -> None:
        pass

    def finished(self, workflow: str, status: WorkflowStatus, duration_ms: float | None) -> None:
        pass
