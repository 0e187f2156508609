"""The coordinator's logic: aggregate agent results per workflow and finalize each workflow exactly once.

Plain Python: the workflow store, the deadline scheduler, the publisher and the metrics are ports
injected by the handler (``handler.py``) or by a test. Correctness rests on the store's atomic
conditional writes, never on the order or uniqueness of deliveries:

- the trigger opens the record once (``attribute_not_exists(order)``): duplicates change nothing (fault 1);
- each agent's result fills its own slot once (``attribute_not_exists(result slot)``), before or after
  the trigger (fault 2);
- the finish is one conditional update ``status RUNNING -> final`` that also requires the record's
  ``version`` to be the one the decision was made on, and stores the whole outcome: exactly one
  invocation wins, and the outcome it stores matches the record it was decided from (faults 3, 9);
- the outcome is published from the stored record, by whoever holds the publication lease; a crash
  between the finish and the publish leaves a final, unpublished record that the next message for the
  workflow publishes again, the same stored detail with the same idempotency key (fault 5).
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from pydantic import ValidationError

from functions.common.consumer import validate
from functions.common.dead_letters import PoisonMessage
from functions.common.models import (
    AgentResult,
    BusEvent,
    DeadlineReached,
    OrderPlaced,
    WorkflowOutcome,
    describe_validation_error,
)
from functions.common.observability import logger
from functions.common.publisher import Event
from functions.manifest import (
    COORDINATOR_SOURCE,
    DEADLINE_DETAIL_TYPE,
    DEADLINE_SOURCE,
    MANIFEST,
    Manifest,
    Outcome,
    Workflow,
    WorkflowStatus,
)

DEADLINE_REASON = "deadline reached"
# How long the finisher (or a recovering invocation) owns the right to publish the outcome. A crashed
# invocation's message comes back after the queue's visibility timeout (6x the function timeout), by
# which time its lease has expired; an invocation that fails cleanly releases its lease at once.
PUBLISH_LEASE_S = 30
MAX_WORKFLOW_ID_BYTES = 1024  # DynamoDB allows 2048 bytes for a partition key; keep a margin
SCHEDULE_NAME_MAX = 64
_SCHEDULE_NAME_OK = re.compile(r"[0-9A-Za-z_.-]+")


# --- time -------------------------------------------------------------------------------------------

def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """``2026-11-26T11:07:08.123Z``: ISO-8601 UTC with milliseconds."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def ceil_to_second(moment: datetime) -> datetime:
    """Scheduler's ``at()`` has second precision: never fire before the deadline."""
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment


def _ms_between(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds() * 1000, 3)


# --- the record -------------------------------------------------------------------------------------

@dataclass
class WorkflowRecord:
    """One workflow as the store holds it (layout: ``store.py``)."""

    workflow_id: str
    workflow: str | None = None
    status: WorkflowStatus = WorkflowStatus.RUNNING
    version: int = 0
    order: dict[str, Any] | None = None
    order_error: str | None = None
    trigger_received_at: str | None = None
    trigger_event_id: str | None = None
    deadline_at: str | None = None
    schedule_name: str | None = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    late_results: dict[str, dict[str, Any]] = field(default_factory=dict)
    outcome: dict[str, Any] | None = None
    reason: str | None = None
    finished_at: str | None = None
    published: bool = False
    published_at: str | None = None

    @property
    def trigger_seen(self) -> bool:
        return self.order is not None


@dataclass(frozen=True)
class Decision:
    status: WorkflowStatus
    reason: str | None
    missing: tuple[str, ...]


def missing_agents(record: WorkflowRecord, workflow: Workflow) -> list[str]:
    return sorted(workflow.required_agents - set(record.results))


def decide(record: WorkflowRecord, workflow: Workflow, *, deadline_reached: bool = False) -> Decision | None:
    """The aggregation rule: what the record says the workflow's outcome is, or None while it is open.

    - an invalid trigger rejects the workflow (fault 7);
    - any failure result of a required agent rejects it, even before the trigger was seen;
    - the trigger plus a success result of every required agent completes it;
    - the deadline times out what is still open (``missing`` = required agents without a result).
    Results of optional agents (``required=False``) are recorded and reported but decide nothing.
    The order of these rules makes the decision a function of the record alone: a deadline that
    arrives after every result is in (but before the finish) still completes the workflow.
    """
    if record.status.is_final:
        return None
    missing = tuple(missing_agents(record, workflow))
    if record.trigger_seen and record.order_error:
        return Decision(WorkflowStatus.REJECTED, f"invalid order: {record.order_error}", missing)
    failures = sorted(
        (agent, result) for agent, result in record.results.items()
        if agent in workflow.required_agents and result.get("outcome") == Outcome.FAILURE.value
    )
    if failures:
        reason = "; ".join(
            f"{agent}: {result.get('reason') or result.get('detail_type') or 'failed'}" for agent, result in failures
        )
        return Decision(WorkflowStatus.REJECTED, reason, missing)
    if record.trigger_seen and not missing:
        return Decision(WorkflowStatus.COMPLETED, None, ())
    if deadline_reached:
        return Decision(WorkflowStatus.TIMED_OUT, DEADLINE_REASON, missing)
    return None


def timings(record: WorkflowRecord, finished_at: datetime | None) -> dict[str, Any]:
    """End to end (the parallel run) and per agent, with the chained alternative for comparison."""
    starts = [parse_iso(record.trigger_received_at)]
    starts += [parse_iso(result.get("started_at")) for result in record.results.values()]
    known = [moment for moment in starts if moment is not None]
    started = min(known) if known else None
    agents = {name: _number(result.get("duration_ms")) for name, result in sorted(record.results.items())}
    values = list(agents.values())
    out: dict[str, Any] = {
        "started_at": iso(started) if started else None,
        "trigger_received_at": record.trigger_received_at,
        "finished_at": iso(finished_at) if finished_at else None,
        "duration_ms": _ms_between(started, finished_at) if started and finished_at else None,
        "agents": agents,
        "agents_sum_ms": round(sum(values), 3),
        "slowest_agent_ms": max(values) if values else 0,
    }
    return out


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def build_outcome(record: WorkflowRecord, workflow: Workflow, decision: Decision, finished_at: datetime) -> dict:
    """The ``WorkflowOutcome`` detail the finish stores and every publication sends, unchanged."""
    outcome = WorkflowOutcome(
        workflow=workflow.name,
        workflow_id=record.workflow_id,
        order_id=record.workflow_id,
        status=decision.status.value,
        reason=decision.reason,
        results=dict(sorted(record.results.items())),
        missing=list(decision.missing),
        timings=timings(record, finished_at),
        idempotency_key=f"{record.workflow_id}:{decision.status.value}",
    )
    return outcome.model_dump(mode="json")


def order_record(record: WorkflowRecord) -> dict[str, Any]:
    """The order's final record in the orders table (the "main database"): a pure function of the record."""
    outcome = record.outcome or {}
    order = record.order or {}
    return {
        "order_id": record.workflow_id,
        "workflow": record.workflow,
        "status": record.status.value,
        "reason": outcome.get("reason"),
        "customer_id": order.get("customer_id"),
        "currency": order.get("currency"),
        "total": order_total(order),
        "items": order.get("items"),
        "shipping_address": order.get("shipping_address"),
        "results": {
            agent: {
                "detail_type": result.get("detail_type"),
                "outcome": result.get("outcome"),
                "reason": result.get("reason"),
                "duration_ms": result.get("duration_ms"),
            }
            for agent, result in sorted((outcome.get("results") or {}).items())
        },
        "missing": outcome.get("missing", []),
        "timings": outcome.get("timings"),
        "finished_at": record.finished_at,
        "idempotency_key": outcome.get("idempotency_key"),
    }


def order_total(order: dict[str, Any]) -> Decimal | None:
    """The order's total when its lines are numbers; None for an order that never validated."""
    try:
        return sum(
            (Decimal(str(line["unit_price"])) * int(line["quantity"]) for line in order.get("items") or []),
            Decimal("0"),
        ) if order.get("items") else None
    except (KeyError, TypeError, ValueError, InvalidOperation):
        return None


def schedule_name(workflow: str, workflow_id: str) -> str:
    """The deadline schedule's name: readable when it can be, hashed when the id is long or has odd characters."""
    candidate = f"{workflow}-{workflow_id}"
    if len(candidate) <= SCHEDULE_NAME_MAX and _SCHEDULE_NAME_OK.fullmatch(candidate):
        return candidate
    digest = hashlib.sha256(f"{workflow}\x00{workflow_id}".encode()).hexdigest()[:24]
    readable = re.sub(r"[^0-9A-Za-z_.-]+", "_", workflow_id)[: SCHEDULE_NAME_MAX - len(digest) - 1]
    return f"{readable}-{digest}"


# --- ports ------------------------------------------------------------------------------------------

class Store(Protocol):
    def open(self, workflow: str, workflow_id: str, *, order: dict[str, Any], order_error: str | None,
             received_at: str, event_id: str, deadline_at: str, schedule_name: str
             ) -> tuple[bool, WorkflowRecord]: ...
    def record_result(self, workflow: str, workflow_id: str, agent: str, result: dict[str, Any]
                      ) -> tuple[str, WorkflowRecord]: ...
    def finish(self, workflow_id: str, *, expected_version: int, status: WorkflowStatus, outcome: dict[str, Any],
               finished_at: str, lease_until_ms: int, lease_owner: str) -> WorkflowRecord | None: ...
    def claim_publication(self, workflow_id: str, *, now_ms: int, lease_until_ms: int,
                          lease_owner: str) -> WorkflowRecord | None: ...
    def release_publication(self, workflow_id: str, lease_owner: str) -> None: ...
    def mark_published(self, workflow_id: str, published_at: str) -> None: ...
    def put_order(self, item: dict[str, Any]) -> None: ...
    def load(self, workflow_id: str) -> WorkflowRecord | None: ...


class Deadlines(Protocol):
    def create(self, name: str, at: datetime, detail: dict[str, Any]) -> bool: ...
    def delete(self, name: str) -> bool: ...


class WorkflowMetrics(Protocol):
    def started(self, workflow: str) -> None: ...
    def finished(self, workflow: str, status: WorkflowStatus, duration_ms: float | None) -> None: ...


class NullMetrics:
    def started(self, workflow: str) -> None:
        pass

    def finished(self, workflow: str, status: WorkflowStatus, duration_ms: float | None) -> None:
        pass


# --- the coordinator --------------------------------------------------------------------------------

@dataclass
class Coordinator:
    store: Store
    deadlines: Deadlines
    publish: Callable[[Event], None]
    manifest: Manifest = MANIFEST
    deadline_seconds: int | None = None
    clock: Callable[[], datetime] = utc_now
    metrics: WorkflowMetrics = field(default_factory=NullMetrics)
    publish_lease_s: int = PUBLISH_LEASE_S

    def handle(self, event: BusEvent) -> None:
        """One delivered event: a workflow trigger, an agent result or a deadline."""
        workflow = self.manifest.workflow_for_trigger(event.source, event.detail_type)
        if workflow is not None:
            return self.on_trigger(workflow, event)
        if event.source == DEADLINE_SOURCE and event.detail_type == DEADLINE_DETAIL_TYPE:
            return self.on_deadline(event)
        if any(result.detail_type == event.detail_type for agent in self.manifest.agents for result in agent.results):
            return self.on_result(event)
        raise PoisonMessage(f"the coordinator does not handle {event.detail_type!r} from {event.source!r}")

    # triggers ---------------------------------------------------------------------------------------

    def on_trigger(self, workflow: Workflow, event: BusEvent) -> None:
        workflow_id = _workflow_id(event.detail, workflow.id_field)
        try:
            OrderPlaced.model_validate(event.detail)
            order_error = None
        except ValidationError as error:
            order_error = describe_validation_error(error)
        now = self.clock()
        deadline_s = self.deadline_seconds if self.deadline_seconds is not None else workflow.deadline_s
        name = schedule_name(workflow.name, workflow_id)
        created, record = self.store.open(
            workflow.name, workflow_id, order=event.detail, order_error=order_error, received_at=iso(now),
            event_id=event.id, deadline_at=iso(ceil_to_second(now + timedelta(seconds=deadline_s))),
            schedule_name=name,
        )
        if created:
            self.metrics.started(workflow.name)
            logger.info("workflow opened", extra={"workflow": workflow.name, "invalid": bool(order_error)})
        else:
            logger.info("duplicate trigger: the workflow is already open", extra={"status": record.status.value})
        if record.status.is_final and record.published:
            # Rejected by a failure result before the trigger came in: give the order's record its details.
            # On every delivery (the put is idempotent): a retry after a failure between the open and here
            # finds the record opened already, and must still fill the order in.
            self.store.put_order(order_record(record))
        deadline_reached = False
        if not record.status.is_final and not record.order_error and decide(record, workflow) is None:
            # Every delivery (re)creates the schedule: a crash between the open and here must not leave
            # the workflow without a deadline. A duplicate finds it there already.
            deadline_at = parse_iso(record.deadline_at) or now
            if deadline_at <= now:
                deadline_reached = True  # its time has passed while no schedule existed
            else:
                self.deadlines.create(
                    record.schedule_name or name, deadline_at,
                    DeadlineReached(workflow=workflow.name, workflow_id=workflow_id).model_dump(mode="json"),
                )
        self._advance(workflow, record, deadline_reached=deadline_reached)

    # results ----------------------------------------------------------------------------------------

    def on_result(self, event: BusEvent) -> None:
        match = self.manifest.workflow_for_result(event.source, event.detail_type)
        if match is None:
            emitters = [a.name for a in self.manifest.agents if any(r.detail_type == event.detail_type
                                                                    for r in a.results)]
            raise PoisonMessage(
                f"forged result: {event.detail_type!r} comes from agent {', '.join(emitters)}, "
                f"not from source {event.source!r}"
            )
        workflow, agent = match
        result: AgentResult = validate(AgentResult, event.detail)
        if result.agent != agent.name:
            raise PoisonMessage(
                f"forged result: {event.detail_type!r} from {event.source!r} is agent {agent.name!r}'s, "
                f"but its detail names agent {result.agent!r}"
            )
        if result.workflow != workflow.name:
            raise PoisonMessage(f"result for workflow {result.workflow!r}, but {event.detail_type!r} belongs to "
                                f"workflow {workflow.name!r}")
        expected = agent.result(event.detail_type).outcome.value
        if result.outcome != expected:
            raise PoisonMessage(f"inconsistent result: {event.detail_type!r} is a {expected}, "
                                f"but its detail says outcome {result.outcome!r}")
        slot = {
            **result.model_dump(mode="json"),
            "detail_type": event.detail_type,
            "event_id": event.id,
            "received_at": iso(self.clock()),
        }
        kind, record = self.store.record_result(workflow.name, result.workflow_id, agent.name, slot)
        if kind == "duplicate":
            logger.info("duplicate result: already counted", extra={"agent": agent.name})
        elif kind == "late":
            logger.info("late result on a finished workflow: kept, changes nothing",
                        extra={"agent": agent.name, "status": record.status.value})
        self._advance(workflow, record)

    # deadlines --------------------------------------------------------------------------------------

    def on_deadline(self, event: BusEvent) -> None:
        deadline: DeadlineReached = validate(DeadlineReached, event.detail)
        try:
            workflow = self.manifest.workflow(deadline.workflow)
        except KeyError:
            raise PoisonMessage(f"deadline for unknown workflow {deadline.workflow!r}") from None
        record = self.store.load(deadline.workflow_id)
        if record is None:
            logger.warning("deadline for a workflow that was never opened: nothing to time out")
            return
        self._advance(workflow, record, deadline_reached=True)

    # finishing --------------------------------------------------------------------------------------

    def _advance(self, workflow: Workflow, record: WorkflowRecord, *, deadline_reached: bool = False) -> None:
        """Finish the workflow if the record says so, then make sure its outcome is published."""
        while not record.status.is_final:
            decision = decide(record, workflow, deadline_reached=deadline_reached)
            if decision is None:
                return
            finished_at = self.clock()
            outcome = build_outcome(record, workflow, decision, finished_at)
            owner = uuid.uuid4().hex
            won = self.store.finish(
                record.workflow_id, expected_version=record.version, status=decision.status, outcome=outcome,
                finished_at=iso(finished_at), lease_until_ms=self._lease_until(finished_at), lease_owner=owner,
            )
            if won is not None:
                logger.info("workflow finished", extra={"status": decision.status.value, "reason": decision.reason})
                self.metrics.finished(workflow.name, decision.status, outcome["timings"].get("duration_ms"))
                self._publish(workflow, won, owner)
                return
            # Someone changed the record since it was read (a new result, or another finisher): look again.
            reloaded = self.store.load(record.workflow_id)
            if reloaded is None:
                raise RuntimeError(f"workflow {record.workflow_id!r} vanished while finishing")
            if reloaded.status.is_final:
                return  # another invocation won the finish; it publishes (or its retry will)
            record = reloaded
        if not record.published:
            self._recover_publication(workflow, record)

    def _recover_publication(self, workflow: Workflow, record: WorkflowRecord) -> None:
        """A final record whose outcome was never published (fault 5): publish the stored outcome."""
        now = self.clock()
        owner = uuid.uuid4().hex
        claimed = self.store.claim_publication(
            record.workflow_id, now_ms=epoch_ms(now), lease_until_ms=self._lease_until(now), lease_owner=owner
        )
        if claimed is None:
            logger.info("outcome already published, or being published by another invocation")
            return
        logger.warning("publishing the stored outcome of a workflow finished earlier",
                       extra={"status": claimed.status.value, "finished_at": claimed.finished_at})
        self._publish(workflow, claimed, owner)

    def _publish(self, workflow: Workflow, record: WorkflowRecord, owner: str) -> None:
        """Orders table, outcome event, deadline clean-up, ``published``: each step idempotent.

        The orders table first: whoever reacts to the outcome event finds the order's record. The deadline
        clean-up after the event: it is not on the way to the outcome (a schedule that fires for a finished
        workflow changes nothing), and a failure there retries the whole publication (same outcome again).
        """
        outcome = record.outcome
        if outcome is None:
            raise RuntimeError(f"final workflow {record.workflow_id!r} has no stored outcome")
        try:
            self.store.put_order(order_record(record))
            detail_type = workflow.terminal_detail_types[record.status]
            self.publish(Event(detail_type=detail_type, detail=outcome, source=COORDINATOR_SOURCE,
                               resources=()))
            self.deadlines.delete(record.schedule_name or schedule_name(workflow.name, record.workflow_id))
            self.store.mark_published(record.workflow_id, iso(self.clock()))
        except Exception:
            # Let the retry (or any later message for this workflow) publish at once.
            try:
                self.store.release_publication(record.workflow_id, owner)
            except Exception:  # noqa: BLE001 - the lease then simply expires
                logger.exception("could not release the publication lease")
            raise

    def _lease_until(self, now: datetime) -> int:
        return epoch_ms(now) + self.publish_lease_s * 1000


def _workflow_id(detail: dict[str, Any], id_field: str) -> str:
    value = detail.get(id_field)
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise PoisonMessage(f"trigger without a usable {id_field}: cannot tell which workflow it opens")
    workflow_id = str(value).strip()
    if len(workflow_id.encode()) > MAX_WORKFLOW_ID_BYTES:
        raise PoisonMessage(f"{id_field} is longer than {MAX_WORKFLOW_ID_BYTES} bytes")
    return workflow_id
