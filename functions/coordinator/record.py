"""The workflow record and what it says: the decision is a function of the record.

``WorkflowRecord`` is one workflow as the store holds it; every function here is pure and reads it alone: which
results count (the stored trigger's version), which agents are required (from the start, or asked for by a counted
result), the quorum, the external agents waited for, the deadline the coordinator obeys, and ``decide``, the
aggregation rule. Also what a record keeps of a result (``bounded_result``) and of a trigger (``trigger_problems``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from functions.common.digest import integral_floats_as_ints
from functions.common.models import MAX_OUTCOME_REASON_CHARS, describe_validation_error, shortened
from functions.common.spec import Outcome, Workflow, WorkflowStatus
from functions.common.storable import problems as storable_problems
from functions.coordinator.times import ceil_to_second, parse_iso

DEADLINE_REASON = "deadline reached"
NO_TRIGGER_REASON = "deadline reached: the trigger never arrived"
# A result's data kept in the workflow record (the record holds every agent's result and the trigger).
MAX_RESULT_DATA_BYTES = 16 * 1024


@dataclass
class WorkflowRecord:
    """One workflow as the store holds it (layout: ``layout.py``)."""

    workflow_id: str
    workflow: str
    status: WorkflowStatus = WorkflowStatus.RUNNING
    version: int = 0
    # The trigger's detail as received; None when it never arrived or was too large to keep.
    trigger: dict[str, Any] | None = None
    # The version of the trigger this workflow is about (set once, by the first trigger).
    trigger_digest: str | None = None
    trigger_error: str | None = None
    trigger_received_at: str | None = None
    trigger_event_id: str | None = None
    placed_at: str | None = None
    deadline_at: str | None = None
    schedule_name: str | None = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Results received before the trigger for another version than their agent's slot holds: (agent, version).
    alternatives: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # Kept aside, decided nothing: results (and cancels) after the finish, competing answers of an external
    # agent. Keyed by the store (agent and event); each names its ``agent`` and its ``late_reason``.
    late_results: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The cancel request written into the record while it ran: {by, reason, event_id, received_at}.
    cancel: dict[str, Any] | None = None
    # Other versions of the trigger, refused: [{trigger_digest, event_id, received_at}].
    refused: list[dict[str, Any]] = field(default_factory=list)
    outcome: dict[str, Any] | None = None
    reason: str | None = None
    finished_at: str | None = None
    published: bool = False
    published_at: str | None = None
    # Why the main table's row could not be written (the outcome was published without it); None normally.
    projection_error: str | None = None
    # False for a record read from the header item alone (a write's returned attributes, or the waiting headers
    # ``WorkflowStore.waiting`` reads in bulk): its result slots hold summaries (enough to decide), not the results,
    # and a large trigger may be absent. ``Store.load`` gives the whole record, which an outcome, a projection and
    # ``status`` are built from.
    complete: bool = True

    @property
    def trigger_seen(self) -> bool:
        return self.trigger_digest is not None

    @property
    def counted_results(self) -> dict[str, dict[str, Any]]:
        """The results that count: those stamped with the stored trigger's version (none before it)."""
        if not self.trigger_seen:
            return {}
        counted = {agent: result for agent, result in self.results.items()
                   if result.get("trigger_digest") == self.trigger_digest}
        for (agent, version), result in sorted(self.alternatives.items()):
            if version == self.trigger_digest and agent not in counted:
                counted[agent] = result
        return dict(sorted(counted.items()))


@dataclass(frozen=True)
class Decision:
    status: WorkflowStatus
    reason: str | None
    missing: tuple[str, ...]


def asked_for(record: WorkflowRecord, workflow: Workflow) -> dict[str, str]:
    """Agents added to the required set by counted results (``asks_for``, as their result type allows) ->
    when they were first asked (the asking result's ``received_at``)."""
    asked: dict[str, str] = {}
    for agent, result in sorted(record.counted_results.items(), key=lambda item: str(item[1].get("received_at"))):
        allowed = workflow.may_ask_for(agent, str(result.get("detail_type")))
        for name in result.get("asks_for") or ():
            if name in allowed and name not in asked:
                asked[name] = str(result.get("received_at") or record.trigger_received_at or "")
    return asked


def required_agents(record: WorkflowRecord, workflow: Workflow) -> frozenset[str]:
    """Required from the start, plus those counted results asked for."""
    return workflow.required_agents | frozenset(asked_for(record, workflow))


UNASKED_REASON = ("answered before anything asked for this agent, and nothing did by the finish: decided nothing, "
                  "not part of the outcome")
UNASKED_WHILE_RUNNING = ("answered before anything asked for this agent: counts if a result asks for it before the "
                         "finish")


def unasked_answers(record: WorkflowRecord, workflow: Workflow) -> frozenset[str]:
    """External agents whose counted answer the workflow never waited for: not required from the start, in no
    quorum, and asked for by no counted result. Such an answer (a manager's early decline of a request that
    turned out low-risk) is kept in the record, in case a result asks later, but decides nothing, so the
    outcome does not report it as one of its results (``status`` shows it aside, ``UNASKED_REASON``)."""
    waited = required_agents(record, workflow) | (set(workflow.quorum.agents) if workflow.quorum else set())
    return frozenset(agent.name for agent in workflow.external
                     if agent.name in record.counted_results and agent.name not in waited)


def reported_results(record: WorkflowRecord, workflow: Workflow | None) -> dict[str, dict[str, Any]]:
    """The counted results an outcome reports: all of them but the answers nobody asked for (every counted one
    for a workflow the manifest does not know)."""
    unasked = unasked_answers(record, workflow) if workflow is not None else frozenset()
    return {agent: result for agent, result in record.counted_results.items() if agent not in unasked}


def missing_agents(record: WorkflowRecord, workflow: Workflow) -> list[str]:
    """Required agents without a counted result, and a quorum's silent members while it is neither met nor
    out of reach."""
    missing = set(required_agents(record, workflow)) - set(record.counted_results)
    quorum = quorum_state(record, workflow)
    if quorum is not None and not quorum["met"] and not quorum["out_of_reach"]:
        missing |= set(quorum["pending"])
    return sorted(missing)


def quorum_state(record: WorkflowRecord, workflow: Workflow) -> dict[str, Any] | None:
    """Who of the quorum's group agreed (succeeded), who did not, who has not answered; None without one."""
    if workflow.quorum is None:
        return None
    counted = record.counted_results
    group = list(dict.fromkeys(workflow.quorum.agents))
    agreed = [a for a in group if a in counted and counted[a].get("outcome") == Outcome.SUCCESS.value]
    disagreed = [a for a in group if a in counted and counted[a].get("outcome") == Outcome.FAILURE.value]
    pending = [a for a in group if a not in counted]
    needed = workflow.quorum.at_least
    return {"needed": needed, "agents": group, "agreed": agreed, "disagreed": disagreed, "pending": pending,
            "met": len(agreed) >= needed, "out_of_reach": len(agreed) + len(pending) < needed}


def public_quorum(state: dict[str, Any] | None) -> dict[str, Any] | None:
    """A quorum's state as the outcome and ``status`` show it (without the derived ``met`` / ``out_of_reach``)."""
    if state is None:
        return None
    return {key: state[key] for key in ("needed", "agents", "agreed", "disagreed", "pending")}


@dataclass(frozen=True)
class Wait:
    """An external agent the workflow waits for: who, and since when (it waits until the record's deadline)."""

    agent: str
    kind: str
    asked_at: str | None


def waits(record: WorkflowRecord, workflow: Workflow) -> list[Wait]:
    """The external agents a running workflow waits for (asked, or required from the start, and not answered)."""
    if record.status.is_final or not record.trigger_seen:
        return []
    asked = asked_for(record, workflow)
    return [Wait(agent.name, agent.kind, asked.get(agent.name) or record.trigger_received_at)
            for agent in workflow.external
            if agent.name not in record.counted_results and (agent.required or agent.name in asked)]


def effective_deadline(record: WorkflowRecord, workflow: Workflow,
                       wait_override_s: int | None = None) -> datetime | None:
    """The deadline the coordinator obeys: the record's, moved out by every external agent asked for (to at
    least ``asked_at + wait_s``), so that asking a person for an answer gives them their time."""
    due = parse_iso(record.deadline_at)
    asked = asked_for(record, workflow)
    for agent in workflow.external:
        since = parse_iso(asked.get(agent.name) or (record.trigger_received_at if agent.required else None))
        if since is None:
            continue
        until = ceil_to_second(since + timedelta(seconds=wait_override_s if wait_override_s is not None
                                                 else agent.wait_s))
        due = until if due is None or until > due else due
    return due


def decide(record: WorkflowRecord, workflow: Workflow, *, deadline_reached: bool = False) -> Decision | None:
    """The aggregation rule: what the record says the workflow's outcome is, or None while it is open.

    - a cancel in the record cancels it, whatever else is there;
    - before the trigger is in, nothing else is decided but the deadline ("the trigger never arrived");
    - an invalid trigger rejects the workflow (fault 7);
    - a failure result of a required agent (required from the start, or asked for by a counted result), for
      the stored version, rejects it; so does a quorum out of reach;
    - a success result of every required agent, for the stored version, and a quorum met complete it;
    - the deadline times out what is still open (``missing`` = required agents without a counted result).
    Results of optional agents (``required=False``, not asked for) are recorded and reported but decide nothing.
    The order of these rules makes the decision a function of the record alone: a deadline that
    arrives after every result is in (but before the finish) still completes the workflow.
    """
    if record.status.is_final:
        return None
    missing = tuple(missing_agents(record, workflow))
    if record.cancel is not None:
        by = record.cancel.get("by") or "someone"
        why = record.cancel.get("reason")
        return Decision(WorkflowStatus.CANCELLED, f"cancelled by {by}" + (f": {why}" if why else ""), missing)
    if not record.trigger_seen:
        if deadline_reached:
            return Decision(WorkflowStatus.TIMED_OUT, NO_TRIGGER_REASON, tuple(sorted(workflow.required_agents)))
        return None
    if record.trigger_error:
        return Decision(WorkflowStatus.REJECTED, f"invalid {trigger_name(workflow)}: {record.trigger_error}", missing)
    required = required_agents(record, workflow)
    failures = sorted(
        (agent, result) for agent, result in record.counted_results.items()
        if agent in required and result.get("outcome") == Outcome.FAILURE.value
    )
    if failures:
        reason = shortened("; ".join(
            f"{agent}: {result.get('reason') or result.get('detail_type') or 'failed'}" for agent, result in failures
        ), MAX_OUTCOME_REASON_CHARS)
        return Decision(WorkflowStatus.REJECTED, reason, missing)
    quorum = quorum_state(record, workflow)
    if quorum is not None and quorum["out_of_reach"]:
        return Decision(WorkflowStatus.REJECTED, quorum_reason(quorum), missing)
    if not missing and (quorum is None or quorum["met"]):
        return Decision(WorkflowStatus.COMPLETED, None, ())
    if deadline_reached:
        return Decision(WorkflowStatus.TIMED_OUT, deadline_reason(record), missing)
    return None


def deadline_reason(record: WorkflowRecord) -> str:
    """Why a workflow timed out; says so when its deadline had passed before the request even arrived (the
    deadline counts from the event's time: an old ``Time``, e.g. an outbox drained after an outage)."""
    received, due = parse_iso(record.trigger_received_at), parse_iso(record.deadline_at)
    if received is not None and due is not None and received >= due:
        return (f"{DEADLINE_REASON}: it had passed when the request arrived ({record.trigger_received_at}); the "
                f"deadline counts from the event's time ({record.placed_at})")
    return DEADLINE_REASON


def after_finish(status: WorkflowStatus) -> str:
    """Why an entry that came after the finish (a result, an answer, a cancel) counts for nothing."""
    return {WorkflowStatus.CANCELLED: "arrived after the workflow was cancelled",
            WorkflowStatus.TIMED_OUT: "reached the coordinator after the deadline: the workflow had timed out"}.get(
        status, f"arrived after the workflow had finished ({status.value})")


def after_finish_of(record: WorkflowRecord) -> str:
    """``after_finish`` of how the record ended, or ends: a cancel written into it ends it cancelled."""
    return after_finish(WorkflowStatus.CANCELLED if record.cancel is not None else record.status)


def trigger_after_finish(record: WorkflowRecord) -> bool:
    """Whether the workflow finished before its trigger reached the coordinator (its deadline passed with only
    results in: "the trigger never arrived"; or a cancel) and the trigger came in afterwards. Its outcome was
    built without the trigger, so it names no ``trigger_received_at``; it stays as published (one outcome per
    workflow), and the results received before the trigger decided nothing, although the trigger's version now
    matches theirs. The stored outcome says it exactly: the clocks of the finish and of the trigger's arrival are
    two invocations' (the trigger's may be read before the finish and written after it)."""
    if not record.trigger_seen or not record.status.is_final or record.outcome is None:
        return False
    return (record.outcome.get("timings") or {}).get("trigger_received_at") is None


def before_trigger_reason(record: WorkflowRecord) -> str:
    """Why a result received before the trigger is not part of an outcome decided before the trigger came in."""
    return (f"reached the coordinator before its trigger, and the workflow had finished ({record.status.value}, "
            f"{record.finished_at}) before the trigger came in ({record.trigger_received_at}): decided nothing, "
            "not part of the outcome")


def quorum_reason(quorum: dict[str, Any]) -> str:
    def named(agents: list[str]) -> str:
        return f" ({', '.join(agents)})" if agents else ""

    return (f"quorum out of reach: {quorum['needed']} of {len(quorum['agents'])} needed; "
            f"{len(quorum['agreed'])} agreed{named(quorum['agreed'])}, "
            f"{len(quorum['disagreed'])} did not{named(quorum['disagreed'])}, "
            f"{len(quorum['pending'])} not answered{named(quorum['pending'])}")


def trigger_name(workflow: Workflow) -> str:
    return workflow.trigger.subscription.detail_types[0]


def bounded_result(result: dict[str, Any], claim_check: dict[str, Any] | None = None) -> dict[str, Any]:
    """A result as its slot keeps it: its ``data`` left out when larger than ``MAX_RESULT_DATA_BYTES``, so
    that a record holding every agent's result stays far below DynamoDB's 400 KB item limit whatever the agents
    answer. In its place: the claim-check reference the result event came with (``{"claim_check": {...}}``, the
    whole result detail in S3, which ``agentbus status`` resolves), or else a note. The published result event
    keeps its data."""
    data = result.get("data")
    size = len(json.dumps(data, ensure_ascii=False, default=str).encode("utf-8")) if data else 0
    if size <= MAX_RESULT_DATA_BYTES:
        return result
    if claim_check is not None:
        return {**result, "data": {"claim_check": claim_check}}
    return {**result, "data": {"omitted": f"{size} bytes of data, more than the {MAX_RESULT_DATA_BYTES} a workflow "
                                          "record keeps per result; see the published result event"}}


def trigger_problems(workflow: Workflow, detail: dict[str, Any]) -> str | None:
    """Why the trigger's detail cannot be processed (its model, or what a record cannot store), or None."""
    try:
        workflow.trigger_model.model_validate(integral_floats_as_ints(detail))  # as models.validate_trigger
        invalid = None
    except ValidationError as error:
        invalid = describe_validation_error(error)
    unstorable = storable_problems(detail)
    found = [part for part in (invalid, "; ".join(unstorable) if unstorable else None) if part]
    return "; ".join(found)[:2048] if found else None
