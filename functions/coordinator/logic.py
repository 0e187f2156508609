"""The coordinator's logic: aggregate agent results per workflow and finalize each workflow exactly once.

Generic: it reads every workflow's trigger model, required agents, deadline, terminal detail-types and
projection from the manifest, and names none. Plain Python: the workflow store, the deadline scheduler and the
metrics are ports (``ports.py``), the publisher a callable, all injected by the handler (``handler.py``) or by a
test. This
module is the use case, ``Coordinator``: what each delivery does to the record. The rules it applies are pure
functions of the record (``record.py``: what counts, ``decide``; ``outcome.py``: the outcome built from it).
Correctness rests on the store's atomic conditional writes, never on the order or uniqueness of deliveries:

- a record is keyed by (workflow id, workflow name): two workflows may use the same id;
- the first trigger stores its detail and its *version* (``trigger_digest``, ``functions.common.digest``)
  once (``attribute_not_exists``): an identical duplicate changes nothing (fault 1); another version with the
  same id is refused, kept in the record (``refused``) and dead-lettered with a reason naming both versions;
- each agent's result fills its own slot once, before or after the trigger (fault 2); only results stamped
  with the stored trigger's version count toward the outcome, so the outcome, the main-table row and every
  result counted toward them refer to one version of the request (a slot filled before the trigger by
  another version may be overwritten by a result of the stored version);
- nothing is decided before the trigger is in, except the deadline ("the trigger never arrived");
- whatever opens a record (a trigger, or a result that came first) gives it its deadline at once, counted
  from when the request was placed (the trigger event's ``time``, never later than its arrival); a deadline
  that fires early (Scheduler fires within the minute) is not obeyed: a new schedule fires it again;
- the finish is one conditional update ``status RUNNING -> final`` that also requires the record's
  ``version`` to be the one the decision was made on, and stores the whole outcome: exactly one
  invocation wins, and the outcome it stores matches the record it was decided from (faults 3, 9). A write
  returns the header alone (``WorkflowRecord.complete`` False: result summaries, enough to decide); before
  building an outcome the coordinator loads the whole record and decides again on it (``layout.py``: a header
  and an item per result, so that a write's cost does not grow with the results before it);
- the outcome is published from the stored record, by whoever holds the publication lease (the coordinator's
  timeout plus a margin: it outlasts the invocation holding it, ``publish_lease_s``); a crash
  between the finish and the publish leaves a final, unpublished record that the next message for the
  workflow publishes again, the same stored detail with the same idempotency key (fault 5).

People in the loop, cancels and k of n (issue 13) keep the rule "the decision is a function of the record":

- **external agents** (``Workflow.external``: a person approving) answer with an ``ExternalResult`` from the
  source the manifest names; from any other source the answer is refused (dead-lettered with the reason).
  Their answer fills their slot like any result: the first counts; another answer (a second approval, a
  decline racing an approval) is kept aside as *late* with the reason, and so is any answer after the finish
  (deadline, cancel);
- **results that ask for more**: a counted result's ``asks_for`` (only agents its ``ResultType.may_ask_for``
  declares) adds those agents to the required set; an asked external agent moves the deadline out to at least
  ``asked_at + wait_s`` (the deadline the coordinator obeys is computed from the record, so a crash before the
  schedule is moved cannot time the workflow out early);
- **cancel**: a ``Workflow Cancel Requested`` from one of the workflow's ``cancel_sources`` is written into the
  record once (bumping ``version``) while it runs, and decides ``CANCELLED`` before anything else; a cancel
  racing the finish loses or wins through the same conditional finish, so there is one terminal outcome; a
  cancel of a finished workflow is kept as late and changes nothing;
- **k of n** (``Workflow.quorum``): complete when at least k of the group succeeded (and every other required
  agent did), reject as soon as k is out of reach; the outcome names who agreed and who did not.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from functions.common.dead_letters import PoisonMessage, keep_visibility
from functions.common.digest import trigger_digest
from functions.common.ids import check_workflow_id, result_idempotency_key
from functions.common.models import (
    MAX_REASON_CHARS,
    AgentResult,
    BusEvent,
    CancelRequested,
    DeadlineReached,
    ExternalResult,
    shortened,
    validate,
)
from functions.common.moments import iso_ms, utc_now
from functions.common.observability import logger
from functions.common.publisher import Event
from functions.common.spec import (
    CANCEL_DETAIL_TYPE,
    CENSUS_DETAIL_TYPE,
    COORDINATOR_SOURCE,
    DEADLINE_DETAIL_TYPE,
    DEADLINE_SOURCE,
    ExternalAgent,
    Manifest,
    Outcome,
    Workflow,
    coordinator_consumer,
    resolve,
)
from functions.coordinator.deadlines import schedule_name
from functions.coordinator.layout import per_version
from functions.coordinator.outcome import build_outcome, finished_workflow
from functions.coordinator.ports import Deadlines, KeptAsideFull, NullMetrics, RowRefused, Store, WorkflowMetrics
from functions.coordinator.record import (
    WorkflowRecord,
    after_finish_of,
    asked_for,
    bounded_result,
    decide,
    effective_deadline,
    trigger_problems,
)
from functions.coordinator.times import (
    ceil_to_second,
    epoch_ms,
    ms_between,
    parse_iso,
    placed_at,
    start_of_next_minute,
)

# How long the finisher (or a recovering invocation) owns the right to publish the outcome: the coordinator's
# timeout plus this margin (``publish_lease_s``). The lease is taken inside an invocation, which Lambda ends at
# its timeout, so a live publisher, however slow, never outlives its lease and no second invocation publishes
# beside it; the margin covers the clocks of two invocations (the lease is an epoch time). A crashed invocation's
# message comes back after the queue's visibility timeout (6x the function timeout: at least timeout + 5 s for
# any timeout of 1 s or more), by which time its lease has expired; an invocation that fails cleanly releases its
# lease at once (its record then comes back after a short back-off), or, if it cannot, keeps that visibility
# timeout (``keep_visibility``).
PUBLISH_LEASE_MARGIN_S = 5


class RequestNotInYet(Exception):
    """A person's answer or a cancel for a request whose trigger has not reached the coordinator: sent right after
    the request, it may have overtaken it. Not poison: the record fails, SQS delivers it again after its back-off
    (about 30 s over its receives on AWS), and only on its last receive is it dead-lettered with this reason. Each
    delivery used to be dead-lettered at once, so a duplicate read once the request was in could count while its
    twin's letter said it was refused (black-box pass 12B, F1)."""


def publish_lease_s(timeout_s: int) -> int:
    """The publication lease of a coordinator whose function timeout is ``timeout_s``: outlasts its invocation."""
    return timeout_s + PUBLISH_LEASE_MARGIN_S


# The lease of the coordinator's default timeout (a manifest may set another: ``coordinator_settings``).
PUBLISH_LEASE_S = publish_lease_s(coordinator_consumer().timeout_s)


def replayed_reason(event: BusEvent) -> str:
    """Why a replayed answer or cancel decides nothing (black-box pass 10A, F1): one refused when first sent (it
    came before its request) would otherwise count when an archive replay puts it back while the request runs;
    one that counted is a duplicate. A replay changes no workflow."""
    return (f"replayed ({event.replay_name}): an answer or a cancel counts only when it is first sent, never when "
            "a replay puts it back on the bus")


def replayed_once(event: BusEvent) -> str:
    """What every replayed copy of one archived event shares, for ``store.keep_late`` to keep it aside once: its
    source, detail-type, time and detail. Each copy has an id of its own (EventBridge's replay, and moto's, give
    it a new one), so kept once per event id, every replay of a window added one more entry per answer and cancel
    in it, until the record was full and the rest were dead-lettered (black-box pass 21A, F1)."""
    return "replay " + trigger_digest({"source": event.source, "detail-type": event.detail_type,
                                       "time": event.time, "detail": event.detail})


def _same_answer(counted: dict[str, Any], replayed: dict[str, Any],
                 fields: tuple[str, ...] = ("detail_type", "data", "trigger_digest")) -> bool:
    """Whether a replayed answer (or cancel, on its ``by`` and ``reason``) is taken for a copy of the one that
    counted: the same event id, or, as a replayed copy has an id of its own, the same content (the same decision,
    by, note and version). Another event with that same content, replayed, is taken for it too: it would have
    been a duplicate of the counted one when first sent, and a replay decides nothing either way."""
    if not counted:
        return False
    return counted.get("event_id") == replayed.get("event_id") or all(
        counted.get(name) == replayed.get(name) for name in fields)


# How far ahead of this function's clock a deadline event's time (Scheduler's clock) is believed (``on_deadline``).
MAX_CLOCK_AHEAD = timedelta(minutes=5)


@dataclass
class Coordinator:
    store: Store
    deadlines: Deadlines
    publish: Callable[[Event], None]
    manifest: Manifest
    deadline_seconds: int | None = None
    clock: Callable[[], datetime] = utc_now
    metrics: WorkflowMetrics = field(default_factory=NullMetrics)
    # None: ``publish_lease_s`` of the manifest's coordinator timeout, so that the lease outlasts the invocation.
    publish_lease_s: int | None = None
    # Overrides every external agent's wait_s (EXTERNAL_WAIT_SECONDS: shorter locally than a day).
    external_wait_seconds: int | None = None
    # Counts the workflows waiting for a person (metrics), on the recurring census event.
    census: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        if self.publish_lease_s is None:
            coordinator = self.manifest.coordinator
            self.publish_lease_s = publish_lease_s(coordinator.timeout_s) if coordinator else PUBLISH_LEASE_S

    def schedule_name(self, workflow: str, workflow_id: str) -> str:
        """The workflow's deadline schedule, named apart from every other workflow's of the manifest."""
        return schedule_name(workflow, workflow_id, (w.name for w in self.manifest.workflows))

    def _schedule_of(self, record: WorkflowRecord) -> str:
        """The record's deadline schedule: as stored, or (a record built without it) the derived name."""
        return record.schedule_name or self.schedule_name(record.workflow, record.workflow_id)

    def handle(self, event: BusEvent) -> None:
        """One delivered event: a workflow trigger, an agent's or external agent's result, a cancel request, a
        deadline or a census. An entry the record cannot keep aside any more is dead-lettered (``KeptAsideFull``),
        after the record it found is moved on as any delivery moves it (a cancel applied, an outcome published)."""
        try:
            return self._dispatch(event)
        except KeptAsideFull as full:
            if full.record is not None:
                with contextlib.suppress(KeyError):  # a workflow no longer in the manifest is not moved on
                    self._advance(self.manifest.workflow(full.record.workflow), full.record)
            raise

    def _dispatch(self, event: BusEvent) -> None:
        workflow = self.manifest.workflow_for_trigger(event.source, event.detail_type)
        if workflow is not None:
            return self.on_trigger(workflow, event)
        if event.source == DEADLINE_SOURCE and event.detail_type == DEADLINE_DETAIL_TYPE:
            return self.on_deadline(event)
        if event.source == DEADLINE_SOURCE and event.detail_type == CENSUS_DETAIL_TYPE:
            if self.census is None:
                logger.warning("census requested, but this coordinator has no census configured")
                return None
            return self.census()
        if event.detail_type == CANCEL_DETAIL_TYPE:
            return self.on_cancel(event)
        if any(result.detail_type == event.detail_type
               for w in self.manifest.coordinated for agent in w.participants for result in agent.results):
            return self.on_result(event)
        raise PoisonMessage(f"the coordinator does not handle {event.detail_type!r} from {event.source!r}")

    def on_unresolvable(self, event: BusEvent, error: Exception) -> None:
        """An event whose claim-check reference can never be resolved (a missing object, a malformed reference,
        a trigger that put the reserved ``claim_check`` field itself): a trigger of a workflow opens its record
        as an invalid trigger, so the request still ends REJECTED with the reason; anything else is poison."""
        workflow = self.manifest.workflow_for_trigger(event.source, event.detail_type)
        if workflow is None or not isinstance(event.detail.get(workflow.id_field), str):
            raise PoisonMessage(str(error))
        return self.on_trigger(workflow, event, problem=f"{error}")

    def deadline_s(self, workflow: Workflow) -> int:
        return self.deadline_seconds if self.deadline_seconds is not None else workflow.deadline_s

    def due(self, workflow: Workflow, record: WorkflowRecord) -> datetime | None:
        return effective_deadline(record, workflow, self.external_wait_seconds)

    def deadline_detail(self, workflow: Workflow, workflow_id: str) -> dict[str, Any]:
        return DeadlineReached(workflow=workflow.name, workflow_id=workflow_id).model_dump(mode="json")

    # triggers ---------------------------------------------------------------------------------------

    def on_trigger(self, workflow: Workflow, event: BusEvent, problem: str | None = None) -> None:
        """Open the workflow (once per version); ``problem``: why the trigger cannot be read, which makes it
        invalid whatever its fields say."""
        workflow_id = _workflow_id(event.detail, workflow.id_field)
        digest = trigger_digest(event.detail)
        error = problem or trigger_problems(workflow, event.detail)
        now = self.clock()
        placed = placed_at(event, now)
        name = self.schedule_name(workflow.name, workflow_id)
        created, record = self.store.open(
            workflow.name, workflow_id, trigger=event.detail, digest=digest, error=error, received_at=iso_ms(now),
            event_id=event.id, placed_at=iso_ms(placed),
            deadline_at=iso_ms(ceil_to_second(placed + timedelta(seconds=self.deadline_s(workflow)))),
            schedule_name=name,
        )
        conflict = record.trigger_digest != digest
        if created:
            self.metrics.started(workflow.name)
            logger.info("workflow opened", extra={"workflow": workflow.name, "invalid": bool(error)})
        elif conflict:
            self.store.refuse(workflow.name, workflow_id, {"trigger_digest": digest, "event_id": event.id,
                                                            "received_at": iso_ms(now)})
        else:
            logger.info("duplicate trigger (a redelivery or a replay): the workflow's record exists already",
                        extra={"status": record.status.value})
        if record.status.is_final and record.published and not conflict:
            # Finished before the trigger came in (its deadline passed first): give the main table's row the
            # trigger's details. On every delivery (the put is idempotent): a retry after a failure between
            # the open and here finds the record opened already, and must still fill the row in.
            problem = self._project(workflow, record if record.complete else self._load(workflow, workflow_id))
            if problem is not None:
                self.store.note_projection_error(workflow.name, workflow_id, problem)
        deadline_reached = self._ensure_deadline(workflow, record, now)
        self._advance(workflow, record, deadline_reached=deadline_reached)
        if conflict:
            raise PoisonMessage(
                f"conflicting version of {workflow.name} {workflow_id!r}: the workflow holds trigger version "
                f"{record.trigger_digest} (event {record.trigger_event_id}), this event {event.id} is version "
                f"{digest} with other contents; refused, nothing done for it"
            )

    def _ensure_deadline(self, workflow: Workflow, record: WorkflowRecord, now: datetime) -> bool:
        """Every delivery that finds an open record (re)creates its schedule: a crash between the open and
        here must not leave the workflow without a deadline (a duplicate finds it there already). True when
        the deadline has passed already (while no schedule existed)."""
        if record.status.is_final or decide(record, workflow) is not None:
            return False
        deadline_at = self.due(workflow, record) or now
        if deadline_at <= now:
            return True
        self.deadlines.create(self._schedule_of(record),
                              deadline_at, self.deadline_detail(workflow, record.workflow_id))
        return False

    # results ----------------------------------------------------------------------------------------

    def on_result(self, event: BusEvent) -> None:
        match = self.manifest.workflow_for_result(event.source, event.detail_type)
        if match is None:
            emitters = [a.name for w in self.manifest.coordinated for a in w.participants
                        if any(r.detail_type == event.detail_type for r in a.results)]
            raise PoisonMessage(
                f"forged result: {event.detail_type!r} comes from agent {', '.join(emitters)}, "
                f"not from source {event.source!r}"
            )
        workflow, participant = match
        if isinstance(participant, ExternalAgent):
            return self.on_external_result(workflow, participant, event)
        agent = participant
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
        if not result.trigger_digest:
            raise PoisonMessage("result without trigger_digest: it does not say which version of the request "
                                "it acted on, so it cannot count toward any")
        undeclared = sorted(set(result.asks_for) - workflow.may_ask_for(agent.name, event.detail_type))
        if undeclared:
            raise PoisonMessage(f"{event.detail_type!r} asks for {', '.join(undeclared)}, which the manifest does not "
                                f"let it ask for (ResultType.may_ask_for)")
        workflow_id = _workflow_id({"workflow_id": result.workflow_id}, "workflow_id")
        now = self.clock()
        slot = {
            **bounded_result(result.model_dump(mode="json", exclude={"asks_for"} if not result.asks_for else None),
                             event.claim_check),
            "detail_type": event.detail_type,
            "event_id": event.id,
            "received_at": iso_ms(now),
        }
        # A result that opens the record gives it its deadline (from when the result was published).
        deadline_at = iso_ms(ceil_to_second(placed_at(event, now) + timedelta(seconds=self.deadline_s(workflow))))
        kind, record = self.store.record_result(workflow.name, workflow_id, agent.name, slot, deadline_at,
                                                late_once_per_version=True)
        if kind == "duplicate":
            logger.info("duplicate result: already counted", extra={"agent": agent.name})
        elif kind == "late":
            logger.info("late result on a finished workflow: kept, changes nothing",
                        extra={"agent": agent.name, "status": record.status.value})
        elif kind == "other-version":
            self.store.keep_late(workflow.name, workflow_id, agent.name, slot,
                                 f"result for another version of the request ({result.trigger_digest}) than the "
                                 f"one the workflow holds ({record.trigger_digest}): not counted",
                                 once=per_version(result.trigger_digest))
            logger.warning("result for another version of the trigger: kept aside, not counted",
                           extra={"agent": agent.name, "result_version": result.trigger_digest,
                                  "workflow_version": record.trigger_digest})
        deadline_reached = self._ensure_deadline(workflow, record, now) if not record.trigger_seen else False
        if result.asks_for and not record.status.is_final:
            self._give_time(workflow, record)
        self._advance(workflow, record, deadline_reached=deadline_reached)

    def _give_time(self, workflow: Workflow, record: WorkflowRecord) -> None:
        """An external agent was asked for: move the stored deadline and its schedule out to its wait (the
        deadline obeyed is computed from the record anyway: this keeps the schedule and ``status`` in step)."""
        due = self.due(workflow, record)
        stored = parse_iso(record.deadline_at)
        if due is None or (stored is not None and due <= stored):
            return
        self.store.extend_deadline(workflow.name, record.workflow_id, iso_ms(due))
        self.deadlines.rearm(self._schedule_of(record), due,
                             self.deadline_detail(workflow, record.workflow_id))
        logger.info("waiting for an external agent: deadline moved", extra={"deadline_at": iso_ms(due)})

    def on_external_result(self, workflow: Workflow, agent: ExternalAgent, event: BusEvent) -> None:
        """A person's (or another system's) answer: it counts for the version of the request it names, or the
        one the workflow holds; a second answer is kept as late with the reason, never counted."""
        answer: ExternalResult = validate(ExternalResult, event.detail)
        if answer.agent != agent.name or answer.workflow != workflow.name:
            raise PoisonMessage(f"{event.detail_type!r} from {event.source!r} is {workflow.name} agent "
                                f"{agent.name!r}'s answer, but its detail names {answer.workflow} agent "
                                f"{answer.agent!r}")
        workflow_id = _workflow_id({"workflow_id": answer.workflow_id}, "workflow_id")
        record = self.store.load(workflow.name, workflow_id)
        if record is None:
            raise RequestNotInYet(f"{event.detail_type!r} by {answer.by} for {workflow.name} {workflow_id!r}: "
                                  "no such workflow (never opened), nothing to answer")
        digest = answer.trigger_digest or record.trigger_digest
        if not digest:
            raise RequestNotInYet(f"{event.detail_type!r} by {answer.by} for {workflow.name} {workflow_id!r}: "
                                  "the request has not arrived yet, so there is nothing to answer")
        now = self.clock()
        if self._deadline_first(workflow, record, event, now):
            record = self._load(workflow, workflow_id)
        asked_at = asked_for(record, workflow).get(agent.name) or record.trigger_received_at or iso_ms(now)
        started = parse_iso(asked_at) or now
        result_type = agent.result(event.detail_type)
        verb = "approved" if result_type.outcome is Outcome.SUCCESS else "declined"
        slot = {
            "workflow": workflow.name, "workflow_id": workflow_id, "agent": agent.name,
            "outcome": result_type.outcome.value,
            # A result's reason is at most MAX_REASON_CHARS, as is the note, but not both with a name before it:
            # cut like any result's (the whole note stays in data).
            "reason": shortened(f"{verb} by {answer.by}" + (f": {answer.note}" if answer.note else "")),
            "data": {"by": answer.by, **({"note": answer.note} if answer.note else {})},
            "started_at": iso_ms(started), "finished_at": iso_ms(now),
            "duration_ms": max(0.0, ms_between(started, now)),
            "idempotency_key": result_idempotency_key(workflow_id, agent.name, digest), "trigger_digest": digest,
            "detail_type": event.detail_type, "event_id": event.id, "received_at": iso_ms(now),
        }
        if event.replay_name:
            # Nothing new when it copies the answer that counted or one kept aside (when first sent, or by an
            # earlier replay): a late answer replayed used a second of the record's MAX_LATE entries (21E).
            seen = [record.results.get(agent.name) or {},
                    *(entry for entry in record.late_results.values() if entry.get("agent") == agent.name)]
            if not any(_same_answer(earlier, slot) for earlier in seen):
                self.store.keep_late(workflow.name, workflow_id, agent.name, slot, replayed_reason(event),
                                     once=replayed_once(event))
            return
        kind, record = self.store.record_result(workflow.name, workflow_id, agent.name, slot,
                                                record.deadline_at or iso_ms(now))
        if kind == "duplicate":
            counted = record.results.get(agent.name) or {}
            if counted.get("event_id") != event.id:
                # Fault 21: a second answer (an approval twice, a decline racing an approval): the first counts.
                # None counted: answers read together for a finished record found each other's item (black-box
                # pass 20A, F2: "another answer already counted: None by None").
                reason = (f"another answer already counted: {counted.get('detail_type')} by "
                          f"{(counted.get('data') or {}).get('by')} (event {counted.get('event_id')})"
                          if counted else after_finish_of(record))
                self.store.keep_late(workflow.name, workflow_id, agent.name, slot, reason)
                logger.info("second answer of an external agent: kept as late", extra={"agent": agent.name})
        elif kind == "late":
            logger.info("answer after the finish: kept, changes nothing", extra={"status": record.status.value})
        elif kind == "other-version":
            self.store.keep_late(workflow.name, workflow_id, agent.name, slot,
                                 f"answer for another version of the request ({digest}) than the one the workflow "
                                 f"holds ({record.trigger_digest}): not counted; answer again for what "
                                 "`agentbus status` shows")
            logger.warning("answer for another version of the request: kept aside, not counted",
                           extra={"answer_version": digest, "workflow_version": record.trigger_digest})
        self._advance(workflow, record)

    def _deadline_first(self, workflow: Workflow, record: WorkflowRecord | None, event: BusEvent,
                        now: datetime) -> bool:
        """A cancel or a person's answer sent after the workflow's deadline had passed finds it still RUNNING when
        the coordinator is behind (a backlog, or paused): the deadline came first, so it times the workflow out
        before the cancel or answer is written, which is then kept as late. Before, the outcome hung on the
        queue's order: the cancel won when it was read before the queued deadline (black-box pass 9C, F2). True
        when it finished the workflow."""
        if record is None or record.status.is_final:
            return False
        due = self.due(workflow, record)
        if due is None or placed_at(event, now) < due:
            return False
        logger.info("sent after the deadline: the workflow is timed out first", extra={"deadline_at": iso_ms(due)})
        self._advance(workflow, record, deadline_reached=True)
        return True

    # cancels ----------------------------------------------------------------------------------------

    def on_cancel(self, event: BusEvent) -> None:
        request: CancelRequested = validate(CancelRequested, event.detail)
        try:
            workflow = self.manifest.workflow(request.workflow)
        except KeyError:
            raise PoisonMessage(f"cancel for unknown workflow {request.workflow!r}") from None
        if not workflow.cancellable:
            raise PoisonMessage(f"workflow {workflow.name!r} cannot be cancelled (its manifest names no "
                                "cancelled outcome)")
        if event.source not in workflow.cancel_sources:
            raise PoisonMessage(f"forged cancel: source {event.source!r} may not cancel {workflow.name} "
                                f"(allowed: {', '.join(workflow.cancel_sources)})")
        workflow_id = _workflow_id({"workflow_id": request.workflow_id}, "workflow_id")
        now = self.clock()
        cancel = {"by": request.by, "reason": request.reason, "event_id": event.id, "received_at": iso_ms(now)}
        if event.replay_name:
            record = self.store.load(workflow.name, workflow_id)
            if record is None:
                raise PoisonMessage(f"replayed cancel by {request.by} for {workflow.name} {workflow_id!r}: no such "
                                    "workflow (never opened), nothing to cancel")
            seen = [record.cancel or {},
                    *(entry for entry in record.late_results.values() if entry.get("agent") is None)]
            if not any(_same_answer(earlier, cancel, ("by", "reason")) for earlier in seen):
                self.store.keep_late(workflow.name, workflow_id, None, {k: v for k, v in cancel.items()
                                                                        if v is not None}, replayed_reason(event),
                                     once=replayed_once(event))
            return
        self._deadline_first(workflow, self.store.load(workflow.name, workflow_id), event, now)
        kind, record = self.store.request_cancel(workflow.name, workflow_id, {k: v for k, v in cancel.items()
                                                                             if v is not None})
        if kind == "missing":
            raise RequestNotInYet(f"cancel by {request.by} for {workflow.name} {workflow_id!r}: no such workflow "
                                  "(never opened), nothing to cancel")
        if kind == "late":
            logger.info("cancel of a finished workflow: kept, changes nothing", extra={"status": record.status.value})
        self._advance(workflow, record)

    # deadlines --------------------------------------------------------------------------------------

    def on_deadline(self, event: BusEvent) -> None:
        deadline: DeadlineReached = validate(DeadlineReached, event.detail)
        try:
            workflow = self.manifest.workflow(deadline.workflow)
        except KeyError:
            raise PoisonMessage(f"deadline for unknown workflow {deadline.workflow!r}: it is not in the deployed "
                                "manifest (removed or renamed while this request was open: it cannot be finished; "
                                "drain a workflow before removing it)") from None
        if not workflow.coordinated:
            raise PoisonMessage(f"deadline for standalone workflow {workflow.name!r}, which has none")
        record = self.store.load(workflow.name, deadline.workflow_id)
        if record is None:
            logger.warning("deadline for a workflow that was never opened: nothing to time out")
            return
        due = self.due(workflow, record)
        now = self.clock()
        if not record.status.is_final and due is not None and now < due:
            # EventBridge Scheduler fires a one-time schedule within its minute: up to 59 s early. Not yet. Re-armed
            # for a minute that has not started: what Scheduler does with a schedule for the minute already running
            # is not documented (black-box pass 10C, F5); at worst the deadline is obeyed a minute late.
            # Strictly after the minute this firing came in, by the event's time (Scheduler's clock, not this
            # function's): a refire for that minute would be named as the schedule that just fired, which exists
            # until Scheduler deletes it, so none would be made (review rev20d, L3). A clock's skew is seconds: an
            # event time further ahead than MAX_CLOCK_AHEAD is not believed (it would put the deadline off).
            fired = min(parse_iso(event.time) or now, now + MAX_CLOCK_AHEAD)
            at = max(due, start_of_next_minute(max(now, fired)))
            logger.info("deadline fired early (or moved out); fires again",
                        extra={"deadline_at": iso_ms(due), "fires_at": iso_ms(at)})
            self.deadlines.refire(self._schedule_of(record), at,
                                  self.deadline_detail(workflow, record.workflow_id))
            self._advance(workflow, record)
            return
        self._advance(workflow, record, deadline_reached=True)

    # finishing --------------------------------------------------------------------------------------

    def _advance(self, workflow: Workflow, record: WorkflowRecord, *, deadline_reached: bool = False) -> None:
        """Finish the workflow if the record says so, then make sure its outcome is published."""
        while not record.status.is_final:
            decision = decide(record, workflow, deadline_reached=deadline_reached)
            if decision is None:
                return
            if not record.complete:
                # Decided on the header's summaries: the outcome is built from the whole record, decided again.
                record = self._load(workflow, record.workflow_id)
                deadline_reached = self._deadline_still_reached(workflow, record, deadline_reached)
                continue
            # To the millisecond, as stored: the outcome's timings are computed again from the record on reading.
            now = self.clock()
            finished_at = now.replace(microsecond=now.microsecond // 1000 * 1000)
            outcome = build_outcome(record, workflow, decision, finished_at)
            owner = _lease_owner()
            won = self.store.finish(
                workflow.name, record.workflow_id, base=record, status=decision.status,
                outcome=outcome, finished_at=iso_ms(finished_at), lease_until_ms=self._lease_until(finished_at),
                lease_owner=owner,
            )
            if won is not None:
                logger.info("workflow finished", extra={"status": decision.status.value, "reason": decision.reason})
                self.metrics.finished(workflow.name, decision.status, outcome["timings"].get("duration_ms"))
                self._publish(workflow, won, owner)
                return
            # Someone changed the record since it was read (a new result, or another finisher): look again.
            reloaded = self._load(workflow, record.workflow_id)
            if reloaded.status.is_final:
                return  # another invocation won the finish; it publishes (or its retry will)
            record = reloaded
            deadline_reached = self._deadline_still_reached(workflow, record, deadline_reached)
        if not record.published:
            self._recover_publication(workflow, record)

    def _deadline_still_reached(self, workflow: Workflow, record: WorkflowRecord, deadline_reached: bool) -> bool:
        """Whether a deadline judged reached on an earlier read of the record still is on ``record``, read again: a
        result counted meanwhile may have asked for a person, which moves the deadline out to the person's time
        (a coordinator that caught up with a backlog longer than the deadline timed such a request out at once,
        the person never asked). When it moved out, its schedule is (re)created for the new time."""
        if not deadline_reached:
            return False
        now = self.clock()
        due = self.due(workflow, record)
        if due is None or due <= now:
            return True
        self._ensure_deadline(workflow, record, now)
        return False

    def _load(self, workflow: Workflow, workflow_id: str) -> WorkflowRecord:
        record = self.store.load(workflow.name, workflow_id)
        if record is None:
            raise RuntimeError(f"workflow {workflow_id!r} vanished while finishing")
        return record

    def _recover_publication(self, workflow: Workflow, record: WorkflowRecord) -> None:
        """A final record whose outcome was never published (fault 5): publish the stored outcome."""
        now = self.clock()
        owner = _lease_owner()
        claimed = self.store.claim_publication(
            workflow.name, record.workflow_id, now_ms=epoch_ms(now), lease_until_ms=self._lease_until(now),
            lease_owner=owner,
        )
        if claimed is None:
            logger.info("outcome already published, or being published by another invocation")
            return
        logger.warning("publishing the stored outcome of a workflow finished earlier",
                       extra={"status": claimed.status.value, "finished_at": claimed.finished_at})
        self._publish(workflow, claimed if claimed.complete else self._load(workflow, record.workflow_id), owner)

    def _project(self, workflow: Workflow, record: WorkflowRecord) -> str | None:
        """The workflow's row in its main table (the manifest's projection), if it has one. None when it is
        written (or there is none to write); why not, when it can never be: the projection function fails on
        this record, or DynamoDB refuses its row (over 400 KB, a value it cannot hold). The same record fails
        the same way on every retry, so that must not hold up the outcome: it is published, and the record
        says why its row is missing (``projection_error``). A transient failure of the write still raises."""
        if workflow.projection is None or record.outcome is None:
            return None
        try:
            item = resolve(workflow.projection.function)(finished_workflow(record, workflow))
        except Exception as error:  # noqa: BLE001 - the manifest's function: deterministic on a stored record
            problem = f"the projection {workflow.projection.function} failed: {type(error).__name__}: {error}"
        else:
            try:
                self.store.put_projection(workflow.projection.table, item)
                return None
            except RowRefused as error:
                problem = str(error)
        problem = shortened(problem, MAX_REASON_CHARS)
        logger.error("the main table's row cannot be written; the outcome is published without it",
                     extra={"table": workflow.projection.table, "projection_error": problem})
        return problem

    def _publish(self, workflow: Workflow, record: WorkflowRecord, owner: str) -> None:
        """Main table, outcome event, deadline clean-up, ``published``: each step idempotent.

        The main table first: whoever reacts to the outcome event finds the workflow's row. The deadline
        clean-up after the event: it is not on the way to the outcome (a schedule that fires for a finished
        workflow changes nothing), and a failure there retries the whole publication (same outcome again).
        """
        outcome = record.outcome
        if outcome is None:
            raise RuntimeError(f"final workflow {record.workflow_id!r} has no stored outcome")
        try:
            projection_error = self._project(workflow, record)
            detail_type = workflow.terminal_detail_types[record.status]
            self.publish(Event(detail_type=detail_type, detail=outcome, source=COORDINATOR_SOURCE,
                               resources=()))
            self.deadlines.delete(self._schedule_of(record))
            self.store.mark_published(workflow.name, record.workflow_id, iso_ms(self.clock()), projection_error)
        except Exception as error:
            # Let the retry (or any later message for this workflow) publish at once.
            try:
                self.store.release_publication(workflow.name, record.workflow_id, owner)
            except Exception:  # noqa: BLE001 - the lease then simply expires
                logger.exception("could not release the publication lease")
                # Its retry must come after the lease expired, as after a crash (the visibility timeout is longer
                # than the lease), not after a back-off: within the lease, it would find the outcome "being
                # published by another invocation" and be acknowledged, the outcome left unpublished.
                keep_visibility(error)
            raise

    def _lease_until(self, now: datetime) -> int:
        assert self.publish_lease_s is not None  # set by __post_init__
        return epoch_ms(now) + self.publish_lease_s * 1000


def _lease_owner() -> str:
    """Who holds a publication lease: random, and short because it is stored in the header."""
    return uuid.uuid4().hex[:12]


def _workflow_id(detail: dict[str, Any], id_field: str) -> str:
    if id_field not in detail:  # worded as the agents' trigger model words it
        raise PoisonMessage(f"cannot tell which workflow this is: {id_field}: Field required")
    try:
        return check_workflow_id(detail[id_field], id_field)
    except ValueError as error:
        raise PoisonMessage(f"cannot tell which workflow this is: {error}") from None
