"""Lambda `coordinator`: gathers results per workflow and finalizes each exactly once (logic: ``logic.py``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from functions.common.clients import Clients
from functions.common.consumer import consume
from functions.common.dead_letters import DeadLetterSink
from functions.common.entry import lambda_handler
from functions.common.observability import metrics
from functions.common.publisher import Event, EventPublisher
from functions.common.settings import Settings
from functions.coordinator.deadlines import DeadlineScheduler
from functions.coordinator.logic import Coordinator
from functions.coordinator.store import WorkflowStore
from functions.manifest import MANIFEST, WorkflowStatus

FINISHED_METRIC = {
    WorkflowStatus.COMPLETED: "WorkflowsCompleted",
    WorkflowStatus.REJECTED: "WorkflowsRejected",
    WorkflowStatus.TIMED_OUT: "WorkflowsTimedOut",
}


class PowertoolsWorkflowMetrics:
    """EMF metrics through the shared Powertools ``Metrics``; a lock because several built handlers may
    record from several threads into the one shared metric set."""

    _lock = threading.Lock()

    def started(self, workflow: str) -> None:
        with self._lock:
            metrics.add_metric(name="WorkflowsStarted", unit=MetricUnit.Count, value=1)

    def finished(self, workflow: str, status: WorkflowStatus, duration_ms: float | None) -> None:
        with self._lock:
            metrics.add_metric(name=FINISHED_METRIC[status], unit=MetricUnit.Count, value=1)
            if duration_ms is not None:
                metrics.add_metric(name="WorkflowDuration", unit=MetricUnit.Milliseconds, value=duration_ms)


def build(settings: Settings, clients: Clients) -> Callable[[dict, Any], dict]:
    """Wire the adapters into the logic; returns a Lambda-style ``(event, context) -> batch response``."""
    store = WorkflowStore(clients.dynamodb, settings.workflow_table, settings.orders_table)
    bus_arn = settings.event_bus_arn or (
        lambda: clients.events.describe_event_bus(Name=settings.event_bus_name)["Arn"]
    )
    deadlines = DeadlineScheduler(clients.scheduler, settings.schedule_group, bus_arn, settings.scheduler_role_arn)
    publisher = EventPublisher(clients.events, settings.event_bus_name)

    def publish(event: Event) -> None:
        publisher.publish([event])

    coordinator = Coordinator(
        store=store, deadlines=deadlines, publish=publish, manifest=MANIFEST,
        deadline_seconds=settings.deadline_seconds, metrics=PowertoolsWorkflowMetrics(),
    )
    dead_letters = (
        DeadLetterSink(clients.sqs, settings.dead_letter_queue_url, MANIFEST.coordinator.name)
        if settings.dead_letter_queue_url else None
    )

    def handle(event: dict, context: Any) -> dict:
        return consume(event, context, coordinator.handle, dead_letters, concurrency=settings.record_concurrency)

    return handle


handler = lambda_handler(build)
