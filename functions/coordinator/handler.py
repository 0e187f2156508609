"""Lambda `coordinator`: gathers results per workflow and finalizes each exactly once (logic: ``logic.py``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from functions.common.claim_check import ClaimCheckStore
from functions.common.clients import Clients
from functions.common.consumer import QueueConsumer, RetryBackoff, correlation_of
from functions.common.dead_letters import DeadLetterSink
from functions.common.entry import lambda_handler
from functions.common.moments import utc_now
from functions.common.observability import SERVICE, emit_metric, metrics
from functions.common.publisher import Event, EventPublisher
from functions.common.settings import Settings
from functions.common.spec import DEADLINE_DETAIL_TYPE, DEADLINE_SOURCE, WORKFLOW_TABLE, WorkflowStatus
from functions.coordinator.census import SERVICE_DIMENSION, WORKFLOW_DIMENSION, Census, PowertoolsCensusMetrics
from functions.coordinator.deadlines import DeadlineScheduler
from functions.coordinator.logic import Coordinator
from functions.coordinator.store import WorkflowStore

FINISHED_METRIC = {
    WorkflowStatus.COMPLETED: "WorkflowsCompleted",
    WorkflowStatus.REJECTED: "WorkflowsRejected",
    WorkflowStatus.TIMED_OUT: "WorkflowsTimedOut",
    WorkflowStatus.CANCELLED: "WorkflowsCancelled",
}


class PowertoolsWorkflowMetrics:
    """Each metric twice: in the shared Powertools ``Metrics`` set (dimension ``service``: every workflow summed, what
    the timed-out alarm reads) and on its own with ``service`` and ``workflow``, so the dashboard tells one
    workflow timing out from another completing, and a day-long wait for a person does not hide in the others'
    durations.
    A lock because several built handlers may record from several threads into the one shared set."""

    _lock = threading.Lock()

    def __init__(self, service: str = SERVICE) -> None:
        self.service = service

    def started(self, workflow: str) -> None:
        self._add(workflow, "WorkflowsStarted", MetricUnit.Count, 1)

    def finished(self, workflow: str, status: WorkflowStatus, duration_ms: float | None) -> None:
        self._add(workflow, FINISHED_METRIC[status], MetricUnit.Count, 1)
        if duration_ms is not None:
            self._add(workflow, "WorkflowDuration", MetricUnit.Milliseconds, duration_ms)

    def _add(self, workflow: str, name: str, unit: MetricUnit, value: float) -> None:
        with self._lock:
            metrics.add_metric(name=name, unit=unit, value=value)
        emit_metric(name, unit, value, {SERVICE_DIMENSION: self.service, WORKFLOW_DIMENSION: workflow})


def build(settings: Settings, clients: Clients,
          clock: Callable[[], datetime] = utc_now) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """Wire the adapters into the logic; returns a Lambda-style ``(event, context) -> batch response``
    (``clock``: tests run it at another time)."""
    manifest = settings.manifest
    for workflow in manifest.coordinated:
        workflow.trigger_model  # noqa: B018 - ValueError at cold start: an id_field that is not a field of its model
    store = WorkflowStore(clients.dynamodb, settings.table(WORKFLOW_TABLE), manifest, settings.tables)
    deadlines = DeadlineScheduler(clients.scheduler, settings.require("schedule_group"),
                                  settings.require("event_bus_arn"), settings.require("scheduler_role_arn"),
                                  dead_letter_arn=settings.schedule_dead_letter_arn)
    # Results are resolved from their claim checks before the logic sees them; a big outcome is offloaded.
    claim_checks = ClaimCheckStore.for_function(settings, clients.s3)
    publisher = EventPublisher(clients.events, settings.event_bus_name, claim_checks=claim_checks)

    def publish(event: Event) -> None:
        publisher.publish([event])

    coordinator = Coordinator(
        store=store, deadlines=deadlines, publish=publish, manifest=manifest,
        deadline_seconds=settings.deadline_seconds, metrics=PowertoolsWorkflowMetrics(service=settings.function),
        clock=clock,
        external_wait_seconds=settings.external_wait_seconds,
        # On "Workflow Census Due" (every 5 min): who waits for a person, and for how long (metrics, alarm).
        census=Census(store, manifest, PowertoolsCensusMetrics(service=settings.function), clock=clock),
    )
    dead_letters = (
        DeadLetterSink(clients.sqs, settings.dead_letter_queue_url, settings.function)
        if settings.dead_letter_queue_url else None
    )

    backoff = RetryBackoff(clients.sqs)  # a failed record comes back in seconds, not after 6 x the timeout
    correlation = correlation_of(manifest)

    consumer = QueueConsumer(coordinator.handle, dead_letters, concurrency=settings.record_concurrency,
                             max_receive_count=settings.max_receive_count, claim_checks=claim_checks,
                             unresolvable=coordinator.on_unresolvable, last=is_deadline, backoff=backoff,
                             correlation=correlation)

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return consumer.consume(event, context)

    return handle


def is_deadline(body: str) -> bool:
    """A deadline's event (``Workflow Deadline Reached`` from the scheduler), by its envelope: handled after the
    batch's other records, so that what was sent before the deadline and read with it counts first."""
    event = json.loads(body)
    return bool(event.get("detail-type") == DEADLINE_DETAIL_TYPE and event.get("source") == DEADLINE_SOURCE)


handler = lambda_handler(build)
