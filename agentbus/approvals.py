"""People in the loop, from the CLI: answer what a workflow waits for (`agentbus approve` / `decline`), cancel a
running workflow (`agentbus cancel`), list what waits for a person (`agentbus pending`), and say it in
`agentbus status`.

Every verb reads the workflow's record first and refuses (``Refused``: one line, exit code 1) what would change
nothing: an unknown id, a finished workflow (naming its status), an answer already given or not asked for. A
usage error (an invalid id, an unknown workflow or agent, an invalid ``--by``, note or reason: those checked before
the record is read) is an ``OperationError`` (exit code 2).
What it sends is the same event anyone of the account may put with `aws events put-events` (samples:
``events/access-approved.json``, ``events/workflow-cancel-requested.json``): the coordinator decides, the CLI only
asks.
"""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from agentbus.discovery import Deployment
from agentbus.operations import OperationError, UnknownWorkflowId, kept_as, workflow_status
from functions.common.dead_letters import UnreadableJson, unreadable_reason
from functions.common.models import CancelRequested, ExternalResult, describe_validation_error
from functions.common.moments import iso_ms
from functions.common.spec import CANCEL_DETAIL_TYPE, OPERATOR_SOURCE, ExternalAgent, Manifest, Workflow
from functions.coordinator.times import parse_iso
from functions.manifest import MANIFEST

Answer = Literal["approve", "decline"]


class Refused(OperationError):
    """The verb would change nothing (unknown id, finished workflow, answered already): one line, exit code 1."""


@dataclass
class Sent:
    """What a verb put on the bus: the PutEvents entry, and the EventBridge event id it got."""

    workflow: str
    workflow_id: str
    source: str
    detail_type: str
    detail: dict[str, Any]
    event_id: str | None

    def describe(self) -> str:
        return (f"sent {self.detail_type!r} from {self.source} for {self.workflow} {self.workflow_id} "
                f"(event {self.event_id}): {json.dumps(self.detail, sort_keys=True, ensure_ascii=False)}")


# -- reading ---------------------------------------------------------------------------------------------------

def _view(deployment: Deployment, workflow_id: str, workflow: str | None,
          manifest: Manifest = MANIFEST, among: frozenset[str] | None = None) -> dict[str, Any]:
    """The record's status view; an id no workflow has is a refusal (exit 1), like a finished workflow; an invalid
    id, an unknown workflow or an id several workflows use without --workflow are usage errors (exit 2). Without
    --workflow, only the records of ``among`` count, when given (an answer: the workflows that wait for a person)."""
    try:
        return workflow_status(deployment, workflow_id, workflow, manifest, resolve_claim_checks=False, among=among)
    except UnknownWorkflowId as error:
        raise Refused(str(error)) from None


def _workflow(view: dict[str, Any], manifest: Manifest) -> Workflow:
    try:
        return manifest.workflow(str(view["workflow"]))
    except KeyError:
        raise Refused(f"workflow {view['workflow']!r} of {view['workflow_id']!r} is not in this manifest") from None


def default_by(deployment: Deployment) -> str:
    """Who is asking, when --by does not say: the AWS caller's ARN on AWS, the local user name locally."""
    if not deployment.resources.local:
        try:
            return str(deployment.client("sts").get_caller_identity()["Arn"])
        except Exception:  # noqa: BLE001 - no identity to read: fall back to the local account name
            pass
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment (a container without passwd entry)
        raise Refused("cannot tell who you are: pass --by NAME") from None


def _put(deployment: Deployment, source: str, detail_type: str, detail: dict[str, Any]) -> str | None:
    response = deployment.client("events").put_events(Entries=[{
        "EventBusName": deployment.resources.bus_name, "Source": source, "DetailType": detail_type,
        "Detail": json.dumps(detail)}])
    [entry] = response["Entries"]
    if response.get("FailedEntryCount") or entry.get("ErrorCode"):
        raise OperationError(f"the bus refused {detail_type!r} from {source}: {entry.get('ErrorCode')}: "
                             f"{entry.get('ErrorMessage')}")
    event_id = entry.get("EventId")
    return str(event_id) if event_id else None


# -- approve / decline ----------------------------------------------------------------------------------------

def waited_for(view: dict[str, Any]) -> set[str]:
    """The external agents a workflow's status view says it waits for."""
    return {str(w.get("agent")) for w in view.get("waiting_for") or []}


def choose_agent(workflow: Workflow, view: dict[str, Any], name: str | None) -> ExternalAgent:
    """The external agent an answer is for: --agent NAME, the workflow's only one, or the only one it waits for."""
    if name is not None:
        try:
            return workflow.external_agent(name)
        except KeyError as error:
            raise OperationError(f"workflow {workflow.name}: {str(error).strip(chr(34) + chr(39))}") from None
    if not workflow.external:
        raise Refused(f"workflow {workflow.name} waits for no person: it has no external agent to answer for")
    if len(workflow.external) == 1:
        return workflow.external[0]
    waited = waited_for(view)
    candidates = [a for a in workflow.external if a.name in waited]
    if len(candidates) == 1:
        return candidates[0]
    names = ", ".join(a.name for a in workflow.external)
    raise OperationError(f"workflow {workflow.name} has several external agents ({names}): pass --agent NAME")


def _check_options(action: str, model: type[ExternalResult] | type[CancelRequested], **options: str | None) -> None:
    """What the user typed (``--by``, ``--note``, ``--reason``), checked by the detail's own model before the record
    is read: a bad value is a usage error (exit code 2) whatever the workflow's state, not hidden behind a refusal
    (exit code 1) of a finished workflow or an unknown id."""
    given = {name: value for name, value in options.items() if value is not None}
    try:
        model.model_validate({"workflow": "-", "workflow_id": "-", "agent": "-", "by": "-", **given})
    except ValueError as error:
        raise OperationError(f"cannot {action}: {describe_validation_error(error)}") from None


def answer(deployment: Deployment, workflow_id: str, decision: Answer, *, workflow: str | None = None,
           agent: str | None = None, by: str | None = None, note: str | None = None,
           manifest: Manifest = MANIFEST) -> Sent:
    """Send an external agent's approval (``decision="approve"``) or refusal for one running workflow that waits
    for it (asked for by a result, or required from the start): an answer nothing asks for yet is refused, so
    that nobody approves before the agents whose results ask for it have said why.

    The detail names the version of the request the record holds (``trigger_digest``): the person approves
    what they saw, and an answer to another version of the request does not count toward this one."""
    _check_options(decision, ExternalResult, by=by, note=note)
    # An id an order shares with an access request: only the access request can be answered (21B F6).
    people = frozenset(spec.name for spec in manifest.workflows if spec.external)
    view = _view(deployment, workflow_id, workflow, manifest, people)
    spec = _workflow(view, manifest)
    external = choose_agent(spec, view, agent)
    label = f"{spec.name} {view['workflow_id']}"
    if view.get("status") != "RUNNING":
        reason = f" ({view['reason']})" if view.get("reason") else ""
        raise Refused(f"{label} is already {view.get('status')}{reason}: nothing to {decision}, nothing sent")
    if not view.get("trigger"):
        raise Refused(f"{label}: the request itself never arrived, so there is nothing to {decision} yet")
    given = (view.get("results") or {}).get(external.name)
    if given:
        raise Refused(f"{label}: {external.name} answered already ({given.get('detail_type')} by "
                      f"{answered_by(given) or '?'}); nothing sent")
    if not external.required and external.name not in waited_for(view):
        raise Refused(f"{label} does not wait for {external.name}: no result has asked for it (yet), so there is "
                      f"nothing to {decision}; nothing sent (`agentbus pending` lists what waits for a person)")
    _refuse_past_deadline(view, label, decision, [w.get("wait_until") for w in view.get("waiting_for") or []
                                                  if w.get("agent") == external.name])
    result = external.approval if decision == "approve" else external.refusal
    if result is None:
        raise Refused(f"{external.name} of workflow {spec.name} has no "
                      f"{'success' if decision == 'approve' else 'failure'} result to {decision} with")
    try:
        detail = ExternalResult(workflow=spec.name, workflow_id=str(view["workflow_id"]), agent=external.name,
                                by=default_by(deployment) if by is None else by, note=note,
                                trigger_digest=view.get("trigger_digest"))
    except ValueError as error:
        raise OperationError(f"cannot {decision}: {describe_validation_error(error)}") from None
    body = detail.model_dump(mode="json", exclude_none=True)
    event_id = _put(deployment, external.source, result.detail_type, body)
    return Sent(spec.name, str(view["workflow_id"]), external.source, result.detail_type, body, event_id)


def _refuse_past_deadline(view: dict[str, Any], label: str, action: str, waits: list[Any] | None = None,
                          now: datetime | None = None) -> None:
    """Refuse an answer or a cancel sent after the workflow's deadline (the latest of its stored deadline and
    the person's wait): the coordinator times the workflow out first and keeps it as late (fault 36), so it would
    change nothing. The record still says RUNNING when the coordinator is behind or paused (black-box pass 9C,
    F4: the verb said "sent", exit 0)."""
    times = [parse_iso(value) for value in [view.get("deadline_at"), *(waits or [])] if value]
    due = max((t for t in times if t is not None), default=None)
    now = now or datetime.now(UTC)
    if due is None or now < due:
        return
    raise Refused(f"{label}: its deadline {iso_ms(due)} has passed, so the "
                  f"coordinator will time it out and keep this {action} as late (it still shows RUNNING: the "
                  "coordinator is behind or paused, see `agentbus agent list`); nothing sent")


# -- cancel -----------------------------------------------------------------------------------------------------

def cancel(deployment: Deployment, workflow_id: str, *, workflow: str | None = None, by: str | None = None,
           reason: str | None = None, manifest: Manifest = MANIFEST) -> Sent:
    """Ask the coordinator to cancel a running workflow (it finishes it CANCELLED, compensations run)."""
    _check_options("cancel", CancelRequested, by=by, reason=reason)
    view = _view(deployment, workflow_id, workflow, manifest)
    spec = _workflow(view, manifest)
    label = f"{spec.name} {view['workflow_id']}"
    if view.get("status") != "RUNNING":
        why = f" ({view['reason']})" if view.get("reason") else ""
        raise Refused(f"{label} is already {view.get('status')}{why}: cancel changed nothing, nothing sent")
    if not spec.cancellable:
        raise Refused(f"workflow {spec.name} cannot be cancelled (its manifest entry has no cancelled outcome)")
    _refuse_past_deadline(view, label, "cancel")
    if OPERATOR_SOURCE not in spec.cancel_sources:
        raise Refused(f"workflow {spec.name} takes cancels only from {', '.join(spec.cancel_sources)}, "
                      f"not from {OPERATOR_SOURCE} (what `agentbus cancel` sends)")
    try:
        detail = CancelRequested(workflow=spec.name, workflow_id=str(view["workflow_id"]),
                                 by=default_by(deployment) if by is None else by, reason=reason)
    except ValueError as error:
        raise OperationError(f"cannot cancel: {describe_validation_error(error)}") from None
    body = detail.model_dump(mode="json", exclude_none=True)
    event_id = _put(deployment, OPERATOR_SOURCE, CANCEL_DETAIL_TYPE, body)
    return Sent(spec.name, str(view["workflow_id"]), OPERATOR_SOURCE, CANCEL_DETAIL_TYPE, body, event_id)


# -- pending ----------------------------------------------------------------------------------------------------

def workflow_store(deployment: Deployment, manifest: Manifest = MANIFEST) -> Any:
    from functions.coordinator.store import WorkflowStore

    tables = deployment.resources.tables
    if "workflows" not in tables:
        raise OperationError("this deployment coordinates no workflow (no workflow table)")
    return WorkflowStore(deployment.client("dynamodb"), tables["workflows"], manifest, tables)


def pending(deployment: Deployment, workflow: str | None = None, *, now: datetime | None = None,
            manifest: Manifest = MANIFEST, store: Any = None) -> list[dict[str, Any]]:
    """One row per (running workflow, external agent it waits for), the longest waiting first: ``workflow``,
    ``workflow_id``, ``agent``, ``kind`` (who answers), ``asked_at``, ``waiting_s``, ``wait_until``."""
    if workflow is not None:
        try:
            manifest.workflow(workflow)
        except KeyError as error:
            raise OperationError(str(error).strip("\"'")) from None
    store = store if store is not None else workflow_store(deployment, manifest)
    now = now or datetime.now(UTC)
    rows = []
    try:
        views = store.waiting(workflow)
    except (RecursionError, UnreadableJson) as error:  # a record holding JSON Python does not read (read_json)
        raise OperationError(f"a record in {getattr(store, 'workflow_table', 'the workflow table')} cannot be "
                             f"read: it holds JSON Python does not read: {unreadable_reason(error)}") from None
    for view in views:
        for waited in view.get("waiting_for") or []:
            asked = parse_iso(waited.get("asked_at"))
            rows.append({
                "workflow": view["workflow"], "workflow_id": view["workflow_id"], "agent": waited.get("agent"),
                "kind": waited.get("kind"), "asked_at": waited.get("asked_at"),
                "waiting_s": round((now - asked).total_seconds()) if asked else None,
                "wait_until": waited.get("wait_until"),
            })
    return sorted(rows, key=lambda r: (str(r["asked_at"] or ""), str(r["workflow"]), str(r["workflow_id"])))


# -- what `agentbus status` says about people, cancels, quorums and late results --------------------------------

def ago(seconds: float | None) -> str:
    """``42 s`` · ``3 min`` · ``2 h 5 min`` · ``3 d 4 h`` (how long something has waited)."""
    if seconds is None:
        return "?"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 3600:
        return f"{minutes} min"
    if seconds < 86400:
        return f"{hours} h" + (f" {minutes % 60} min" if minutes % 60 else "")
    return f"{days} d" + (f" {hours % 24} h" if hours % 24 else "")


def waiting_lines(view: dict[str, Any], now: datetime | None = None) -> list[str]:
    """"waits for manager-approval: a person (the employee's manager), asked 3 min ago, waits until …"."""
    if view.get("status") != "RUNNING":
        return []
    now = now or datetime.now(UTC)
    lines = []
    for waited in view.get("waiting_for") or []:
        asked = parse_iso(waited.get("asked_at"))
        since = f", asked {ago((now - asked).total_seconds())} ago" if asked else ""
        until = f", waits until {waited['wait_until']}" if waited.get("wait_until") else ""
        if has_passed(waited.get("wait_until"), now):
            until = (f", waited until {waited['wait_until']} (passed: the coordinator has not timed it out yet; "
                     "is it paused or behind? `agentbus agent list`)")
        lines.append(f"waits for {waited.get('agent')}: {waited.get('kind') or 'someone outside'}{since}{until}")
    return lines


def has_passed(moment: Any, now: datetime) -> bool:
    """Whether ``moment`` (an ISO-8601 time as the record stores it; None or unreadable: no) is at or before
    ``now``: a person's time that ran out while the record still says RUNNING."""
    ended = parse_iso(moment)
    return ended is not None and ended <= now


def cancel_line(view: dict[str, Any]) -> str | None:
    cancel_ = view.get("cancel")
    if not cancel_:
        return None
    reason = f": {cancel_['reason']}" if cancel_.get("reason") else ""
    done = "cancelled" if view.get("status") == "CANCELLED" else "cancel asked"
    return f"{done} by {cancel_.get('by', '?')} at {cancel_.get('received_at', '?')}{reason}"


def quorum_line(view: dict[str, Any]) -> str | None:
    quorum = view.get("quorum")
    if not quorum:
        return None

    def names(key: str) -> str:
        return ", ".join(str(n) for n in quorum.get(key) or []) or "none"

    return (f"quorum: {quorum.get('needed', '?')} of {names('agents')} must succeed; agreed: {names('agreed')}; "
            f"disagreed: {names('disagreed')}; pending: {names('pending')}")


def answered_by(result: dict[str, Any]) -> str | None:
    """Who gave an external agent's answer (the coordinator keeps it in the result's ``data``) or a cancel."""
    by = result.get("by") or (result.get("data") or {}).get("by")
    return str(by) if by else None


def late_lines(view: dict[str, Any]) -> list[str]:
    """Each result kept aside as late: who, what, and why it did not count."""
    lines = []
    for late in view.get("late_results") or []:
        who = f" by {answered_by(late)}" if answered_by(late) else ""
        why = late.get("late_reason") or "arrived after the finish"
        if late.get("kind") == "cancel" and not late.get("agent"):
            what = "a cancel"
        else:
            what = " ".join(str(p) for p in (late.get("agent") or "?", late.get("detail_type")) if p)
        lines.append(f"{kept_as(late)}: {what}{who} ({late.get('received_at', '?')}): {why}")
    return lines
