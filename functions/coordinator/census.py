"""The census of workflows waiting for a person: what the dashboard and the approval alarm read.

A recurring EventBridge Scheduler schedule (every 5 minutes, ``infrastructure/coordinator.py``) puts
``Workflow Census Due`` on the bus; the coordinator calls the census on it (``Coordinator(census=...)``). The census
scans the RUNNING workflows that wait for an external agent (``WorkflowStore.waiting``) and emits, for every
coordinated workflow that has external agents (zero included, so that the alarm sees data, not silence):

- ``WorkflowsWaitingForPerson`` (Count): how many of its workflows wait for someone outside;
- ``OldestWaitSeconds`` (Seconds): how long the oldest of them has been waiting (0 when none waits).

Both with the dimensions ``service`` (the coordinator) and ``workflow``. Plain Python: the store and the metrics
sink are injected, a test hands in fakes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from functions.common.observability import NAMESPACE, emit_metric, logger
from functions.common.spec import Manifest
from functions.coordinator.logic import parse_iso

WAITING_METRIC = "WorkflowsWaitingForPerson"
OLDEST_WAIT_METRIC = "OldestWaitSeconds"
# Dimensions of both metrics (the dashboard and the alarm name them exactly).
SERVICE_DIMENSION = "service"
WORKFLOW_DIMENSION = "workflow"


class WaitingStore(Protocol):
    def waiting(self, workflow: str | None = None) -> list[dict[str, Any]]: ...


class CensusMetrics(Protocol):
    def waiting(self, workflow: str, count: int, oldest_wait_s: float) -> None: ...


@dataclass(frozen=True)
class WorkflowCensus:
    workflow: str
    waiting: int
    oldest_wait_s: float
    # The id of the workflow that has waited longest (None when none waits): the log names it for the runbook.
    oldest_id: str | None = None


class PowertoolsCensusMetrics:
    """One EMF metric per workflow and name: ``single_metric`` gives each its own ``workflow`` dimension without
    touching the coordinator's shared metric set."""

    def __init__(self, service: str = "coordinator", namespace: str = NAMESPACE) -> None:
        self.service = service
        self.namespace = namespace

    def waiting(self, workflow: str, count: int, oldest_wait_s: float) -> None:
        dimensions = {SERVICE_DIMENSION: self.service, WORKFLOW_DIMENSION: workflow}
        emit_metric(WAITING_METRIC, MetricUnit.Count, float(count), dimensions, self.namespace)
        emit_metric(OLDEST_WAIT_METRIC, MetricUnit.Seconds, oldest_wait_s, dimensions, self.namespace)


@dataclass
class Census:
    store: WaitingStore
    manifest: Manifest
    metrics: CensusMetrics = field(default_factory=PowertoolsCensusMetrics)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def __call__(self) -> None:
        """What the coordinator calls on ``Workflow Census Due``."""
        self.count()

    def count(self) -> list[WorkflowCensus]:
        """Count and measure the waits now; emit the metrics; return what was counted (tests, logs)."""
        now = self.clock()
        counted: list[WorkflowCensus] = []
        waiting = self.store.waiting()  # one scan for every workflow
        for workflow in self.manifest.coordinated:
            if not workflow.external:
                continue
            views = [view for view in waiting if view.get("workflow") == workflow.name]
            oldest_s, oldest_id = 0.0, None
            for view in views:
                for waited in view.get("waiting_for") or []:
                    asked = parse_iso(waited.get("asked_at"))
                    if asked is None:
                        continue
                    waited_s = max(0.0, (now - asked).total_seconds())
                    if waited_s >= oldest_s:
                        oldest_s, oldest_id = waited_s, str(view.get("workflow_id"))
            census = WorkflowCensus(workflow.name, len(views), round(oldest_s, 3), oldest_id)
            self.metrics.waiting(census.workflow, census.waiting, census.oldest_wait_s)
            counted.append(census)
        logger.info("census of workflows waiting for a person",
                    extra={"census": [c.__dict__ for c in counted]})
        return counted
