"""The census of workflows waiting for a person: what the dashboard and the approval alarm read.

A recurring EventBridge Scheduler schedule (every 5 minutes, ``infrastructure/coordinator.py``) puts
``Workflow Census Due`` on the bus; the coordinator calls the census on it (``Coordinator(census=...)``). The census
reads the RUNNING workflows that wait for an external agent (``WorkflowStore.waiting``: a Query of the waiting index
per workflow, then their headers in bulk) and emits, for every coordinated workflow that has external agents (zero
included, so that the alarm sees data, not silence):

- ``WorkflowsWaitingForPerson`` (Count): how many of its workflows wait for someone outside;
- ``OldestWaitSeconds`` (Seconds): how long the oldest of them has been waiting (0 when none waits).

Both with the dimensions ``service`` (the coordinator) and ``workflow``.

The census runs inside a coordinator invocation, beside the other records of its batch: a timeout would fail them
all. So it reads for at most ``budget_s`` (by default ``CENSUS_SHARE`` of the coordinator's timeout). When the time
runs out it stops reading and emits what it counted: for a workflow read in part, its figures are lower bounds (at
least that many wait, the oldest at least that long); one cut short before any wait of it was found gets no figures
(missing data, which the alarm treats as not breaching, rather than a false zero). The budget runs from the census'
start, not the invocation's (the time of the batch's records handled before it is not deducted). ``CensusPartial``
(Count, dimension ``service``) says how many workflows the census could not read to the end (0 normally), and a
warning log names them. The next census, 5 minutes later, starts again.

Plain Python: the store and the metrics sink are injected, a test hands in fakes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from functions.common.observability import NAMESPACE, emit_metric, logger
from functions.common.spec import Manifest
from functions.coordinator.times import parse_iso

WAITING_METRIC = "WorkflowsWaitingForPerson"
OLDEST_WAIT_METRIC = "OldestWaitSeconds"
PARTIAL_METRIC = "CensusPartial"
# The share of the coordinator's timeout a census may spend reading: the rest is for the other records of its batch
# (it may start after some of them) and for emitting the figures.
CENSUS_SHARE = 0.5
# Dimensions of both metrics (the dashboard and the alarm name them exactly).
SERVICE_DIMENSION = "service"
WORKFLOW_DIMENSION = "workflow"


class WaitingStore(Protocol):
    def waiting(self, workflow: str | None = None, *,
                out_of_time: Callable[[], bool] | None = None) -> list[dict[str, Any]]: ...


class CensusMetrics(Protocol):
    def waiting(self, workflow: str, count: int, oldest_wait_s: float) -> None: ...

    def partial(self, unfinished: int) -> None: ...


@dataclass(frozen=True)
class WorkflowCensus:
    workflow: str
    waiting: int
    oldest_wait_s: float
    # The id of the workflow that has waited longest (None when none waits): the log names it for the runbook.
    oldest_id: str | None = None
    # False when the time ran out before all its waiting workflows were read: the figures are lower bounds.
    complete: bool = True


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

    def partial(self, unfinished: int) -> None:
        emit_metric(PARTIAL_METRIC, MetricUnit.Count, float(unfinished), {SERVICE_DIMENSION: self.service},
                    self.namespace)


@dataclass
class Census:
    store: WaitingStore
    manifest: Manifest
    metrics: CensusMetrics = field(default_factory=PowertoolsCensusMetrics)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # How long a census may read (seconds); None: ``CENSUS_SHARE`` of the manifest's coordinator timeout.
    budget_s: float | None = None
    monotonic: Callable[[], float] = time.monotonic

    def __call__(self) -> None:
        """What the coordinator calls on ``Workflow Census Due``."""
        self.count()

    def _budget_s(self) -> float | None:
        if self.budget_s is not None:
            return self.budget_s
        coordinator = self.manifest.coordinator
        return coordinator.timeout_s * CENSUS_SHARE if coordinator is not None else None

    def count(self) -> list[WorkflowCensus]:
        """Count and measure the waits now; emit the metrics; return what was counted (tests, logs)."""
        now = self.clock()
        budget_s = self._budget_s()
        stop_at = None if budget_s is None else self.monotonic() + budget_s
        counted: list[WorkflowCensus] = []
        # One Query of the waiting index per workflow with external agents, and their headers in bulk.
        waiting = self.store.waiting(out_of_time=None if stop_at is None else lambda: self.monotonic() >= stop_at)
        unfinished = set(getattr(waiting, "unfinished", ()))
        for workflow in self.manifest.coordinated:
            if not workflow.external:
                continue
            views = [view for view in waiting if view.get("workflow") == workflow.name]
            complete = workflow.name not in unfinished
            if not complete and not views:
                continue  # cut short before any wait was found: no figure rather than a false zero
            oldest_s, oldest_id = 0.0, None
            for view in views:
                for waited in view.get("waiting_for") or []:
                    asked = parse_iso(waited.get("asked_at"))
                    if asked is None:
                        continue
                    waited_s = max(0.0, (now - asked).total_seconds())
                    if waited_s >= oldest_s:
                        oldest_s, oldest_id = waited_s, str(view.get("workflow_id"))
            census = WorkflowCensus(workflow.name, len(views), round(oldest_s, 3), oldest_id, complete)
            self.metrics.waiting(census.workflow, census.waiting, census.oldest_wait_s)
            counted.append(census)
        if any(workflow.external for workflow in self.manifest.coordinated):
            self.metrics.partial(len(unfinished))
        if unfinished:
            logger.warning("census partial: the time ran out before every waiting workflow was read; the figures "
                           "of the workflows named are lower bounds (none for those where no wait was found yet)",
                           extra={"budget_s": budget_s, "unfinished": sorted(unfinished)})
        logger.info("census of workflows waiting for a person",
                    extra={"census": [c.__dict__ for c in counted]})
        return counted
