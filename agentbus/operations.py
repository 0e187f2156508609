"""What the operator's CLI does, as plain functions over a Deployment (local endpoint or AWS)."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.config import Config

from agentbus.control import AgentControl, ControlError, unknown_agent
from agentbus.discovery import Deployment
from functions.common.batching import batched
from functions.common.dead_letters import (
    CONSUMER_ATTRIBUTE,
    REASON_ATTRIBUTE,
    UnreadableJson,
    read_json,
    unreadable_reason,
)
from functions.common.spec import Manifest
from functions.manifest import MANIFEST

if TYPE_CHECKING:
    from functions.coordinator.store import WorkflowStore


class OperationError(RuntimeError):
    """A user error: printed as one line, exit code non-zero."""


def check_writable(path: Path, option: str) -> None:
    """OperationError (one line, exit 2) when ``path`` cannot be written: a folder, or in a folder that cannot be
    made or written to."""
    if path.is_dir():
        raise OperationError(f"{option} {path}: is a folder; give a file path")
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a"):  # what writing it at the end needs, tried now (the file is left as it was)
            pass
    except OSError as error:
        raise OperationError(f"{option} {path}: cannot be written here ({error.strerror or error})") from None
    if not existed:
        path.unlink()


class UnknownWorkflowId(OperationError):
    """No workflow has this id (in this workflow, when named): nothing to show, answer or cancel."""


# -- put ---------------------------------------------------------------------------------------------

def read_entries(path: str) -> list[dict[str, Any]]:
    from agentbus.seeds import read_utf8_text

    file = Path(path.removeprefix("file://"))
    try:
        entries = read_json(read_utf8_text(file))
    except OSError as error:
        raise OperationError(f"cannot read {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:  # before ValueError: it is one
        raise OperationError(f"{path} is not JSON: {error.msg} (line {error.lineno})") from None
    except UnreadableJson as error:
        raise OperationError(f"{path} cannot be read as JSON: {error}") from None
    except ValueError as error:
        raise OperationError(f"{path} is {error}") from None
    if isinstance(entries, dict):
        entries = [entries]
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise OperationError(f"{path} must hold a list of PutEvents entries, as for `aws events put-events`")
    for index, entry in enumerate(entries):
        missing = [k for k in ("Source", "DetailType", "Detail") if k not in entry]
        if missing:
            raise OperationError(f"{path}: entry {index} lacks {', '.join(missing)}")
    return entries


def put(deployment: Deployment, path: str) -> dict[str, Any]:
    """Same as `aws events put-events --entries file://PATH`: same response shape. A file of more than 10 entries
    goes in calls of 10 (the most one PutEvents takes) with one response for all. An error means nothing was
    put: every entry is checked against PutEvents' parameters before the first call, and a first call the
    service refuses whole (its entries over the size limit, no permission) is the error, as the ``aws`` CLI
    gives it. Once a call has been answered, a later call refused whole fails its own entries in the response
    (the refusal's code and message) and the calls after it are put: an error then would hide what was put."""
    from botocore.exceptions import ClientError
    from botocore.validate import validate_parameters

    entries = read_entries(path)
    events = deployment.client("events")
    # The samples name the manifest's bus (``agentbus``); a deployment's bus may be another (a stage's
    # ``dev-agentbus``, the ``bus_name`` context): such an entry goes on the deployment's bus, as one naming none
    # does, not on the bus of another stack. An entry naming any other bus keeps it.
    bus = deployment.resources.bus_name
    entries = [{**e, "EventBusName": bus} if e.get("EventBusName") in (None, MANIFEST.bus_name) else e
               for e in entries]
    # Raises ParamValidationError as a call would, naming the entry by its place in the file (botocore checks
    # no maximum number of entries); an empty file too, as `aws events put-events` refuses it (at least 1 entry):
    # a generator that wrote nothing should not pass silently.
    validate_parameters({"Entries": entries}, events.meta.service_model.operation_model("PutEvents").input_shape)
    calls = [entries[start:start + 10] for start in range(0, len(entries), 10)]
    results: list[dict[str, Any]] = []
    for call in calls:
        try:
            results += events.put_events(Entries=call)["Entries"]
        except ClientError as error:
            if not results:
                raise
            refusal = error.response.get("Error", {})
            results += [{"ErrorCode": refusal.get("Code", "Unknown"), "ErrorMessage": refusal.get("Message", "")}
                        for _ in call]
    return {"FailedEntryCount": sum(1 for r in results if r.get("ErrorCode")), "Entries": results}


# -- status and trace ---------------------------------------------------------------------------------

def workflow_status(deployment: Deployment, workflow_id: str, workflow: str | None = None,
                    manifest: Manifest = MANIFEST, *, resolve_claim_checks: bool = True,
                    among: frozenset[str] | None = None) -> dict[str, Any]:
    """The status view of one workflow (``functions.coordinator.reads.WorkflowReader.view``); ``workflow`` is
    needed only when two workflows use the same id (of ``among``, when given: the workflows a verb can act on).
    A result whose data the record keeps as a claim-check reference gets its data from the stack's bucket
    (``resolve_claim_checks``; see ``claim_checked``)."""
    from functions.common.ids import check_workflow_id
    from functions.coordinator.store import WorkflowStore

    try:
        check_workflow_id(workflow_id, "ID")  # the same rule the agents and the coordinator enforce
    except ValueError as error:
        raise OperationError(f"{error}: no workflow can have this id") from None
    tables = deployment.resources.tables
    if "workflows" not in tables:
        raise OperationError("this deployment coordinates no workflow (no workflow table)")
    unknown = None  # why ``workflow`` is not this CLI's manifest's
    if workflow is not None:
        try:
            named = manifest.workflow(workflow)
        except KeyError as error:
            unknown = str(error).strip("\"'")
        else:
            if not named.coordinated:
                raise OperationError(f"workflow {workflow!r} is standalone: it keeps no record of its requests "
                                     "(its agents' results are events on the bus)")
    store = WorkflowStore(deployment.client("dynamodb"), tables["workflows"], manifest, tables)
    try:
        view = _record_view(store, workflow_id, workflow, among)
    except UnknownWorkflowId as error:
        # A workflow this CLI's manifest does not list is shown when the deployment has its record (a deployment
        # of another manifest, or of a newer release); with none, the name is most likely a typo.
        if unknown:
            raise OperationError(f"{unknown} (and {store.workflow_table} has no request {workflow_id!r} of a "
                                 f"workflow {workflow!r})") from None
        backlog = coordinator_backlog(deployment, manifest)
        if backlog:
            raise UnknownWorkflowId(f"{error}; but {backlog}: a request put since has no record until the "
                                    "coordinator reads it") from None
        raise
    except (RecursionError, UnreadableJson) as error:  # a record holding JSON Python does not read (read_json)
        raise OperationError(f"the record of {workflow_id!r} in {tables['workflows']} cannot be read: it holds JSON "
                             f"Python does not read: {unreadable_reason(error)}") from None
    if view.get("status") == "RUNNING" and view.get("workflow") not in {spec.name for spec in manifest.workflows}:
        # A deployment of another manifest: the record is shown, but what its running workflow still waits for is
        # not known here (a finished one's outcome names what was missing).
        view["manifest_note"] = (
            f"workflow {view.get('workflow')!r} is not in this CLI's manifest (functions/manifest.py): which agents "
            "it still waits for is not known here (none is listed as missing); run the CLI of the checkout the "
            "deployment was made from")
    return claim_checked(deployment, view, manifest) if resolve_claim_checks else view


# `agentbus status --wait`: the first look again after this long, each next one 1.5 times later, at most this.
WAIT_FIRST_POLL_S = 0.25
WAIT_MAX_POLL_S = 2.0
# A look of ``wait_for_outcome`` that gets no answer is given up sooner than the operations' 3 x 30 s, so that an
# endpoint which stops answering does not hold the wait long past its time: about 2 x (3 + 10) s per call.
WAIT_LOOK_CONFIG = Config(retries={"total_max_attempts": 2, "mode": "standard"}, read_timeout=10)


@dataclass
class Waited:
    """What ``wait_for_outcome`` saw last: the view (None while no record was found), or why there was none."""

    view: dict[str, Any] | None
    error: UnknownWorkflowId | None = None

    @property
    def ended(self) -> bool:
        """Whether the workflow has its outcome (any status but RUNNING)."""
        return self.view is not None and self.view.get("status") != "RUNNING"


def wait_for_outcome(deployment: Deployment, workflow_id: str, workflow: str | None, timeout_s: float,
                     manifest: Manifest = MANIFEST, *, on_view: Callable[[Waited, float], None] | None = None,
                     clock: Callable[[], float] = time.monotonic,
                     sleep: Callable[[float], None] = time.sleep) -> Waited:
    """``workflow_status`` again and again, until the workflow has its outcome (any status but RUNNING) or
    ``timeout_s`` has passed; returns the last look. An id with no record yet is looked for again (its trigger may
    still be on its way, or behind others in the coordinator's queue); every other error (a bad id, an id of
    several workflows, an unreachable endpoint) is raised at once. The looks are 0.25 s apart at first, then
    further apart, up to 2 s. ``on_view(last, elapsed_s)`` is called after each look (the CLI's progress line)."""
    started = clock()
    pause = WAIT_FIRST_POLL_S
    deployment = deployment.with_config(WAIT_LOOK_CONFIG)
    while True:
        try:
            # A claim-checked result's data is fetched once, for the view returned, not at every look.
            view = workflow_status(deployment, workflow_id, workflow, manifest, resolve_claim_checks=False)
        except UnknownWorkflowId as error:
            last = Waited(None, error)
        else:
            last = Waited(view)
        elapsed = clock() - started
        if on_view is not None:
            on_view(last, elapsed)
        if last.ended or elapsed >= timeout_s:
            if last.view is not None:
                last.view = claim_checked(deployment, last.view, manifest)
            return last
        sleep(min(pause, max(timeout_s - elapsed, 0.0)))
        pause = min(pause * 1.5, WAIT_MAX_POLL_S)


def coordinator_backlog(deployment: Deployment, manifest: Manifest = MANIFEST) -> str | None:
    """Why a request may have no record yet (black-box pass 10C, F2): the coordinator is paused, or has messages
    it has not handled (a burst, a cold start); None when neither, or when its queue cannot be read (the caller's
    answer stands without the hint)."""
    from botocore.exceptions import BotoCoreError, ClientError

    coordinator = manifest.coordinator
    if coordinator is None:
        return None
    try:
        ctl = control(deployment)
        paused, depth = ctl.is_paused(coordinator.name), ctl.queue_depth(coordinator.name)
    except (BotoCoreError, ClientError, KeyError, OperationError, ControlError):
        return None
    pending = depth["waiting"] + depth["in_flight"]
    if paused:
        return (f"the coordinator is paused with {pending} message(s) in its queue (`agentbus agent resume "
                f"{coordinator.name}`)")
    if pending:
        return f"the coordinator has {pending} message(s) it has not handled yet; try again shortly"
    return None


def _record_view(store: WorkflowStore, workflow_id: str, workflow: str | None,
                 among: frozenset[str] | None = None) -> dict[str, Any]:
    """The view of the one record of ``workflow_id`` (of ``workflow``, when given; of several, the one of ``among``,
    when it holds one)."""
    records = [r for r in store.find(workflow_id) if workflow in (None, r.workflow)]
    if len(records) > 1 and among is not None:
        records = [r for r in records if r.workflow in among] or records
    if not records:
        if workflow:
            raise UnknownWorkflowId(f"unknown workflow id {workflow_id!r}: workflow {workflow!r} has no request "
                                    "with this id")
        raise UnknownWorkflowId(f"unknown workflow id {workflow_id!r}: no such workflow in {store.workflow_table} "
                                "(a standalone workflow keeps no record: its agents' results are events on the bus)")
    if len(records) > 1:
        names = ", ".join(sorted(r.workflow for r in records))
        raise OperationError(f"id {workflow_id!r} is used by several workflows ({names}): pass --workflow NAME")
    return store.view(records[0])


def claim_checked(deployment: Deployment, view: dict[str, Any], manifest: Manifest = MANIFEST) -> dict[str, Any]:
    """``view`` with each result whose ``data`` is a claim-check reference (``{"claim_check": {...}}``, kept
    by the coordinator for data over 16 KB) given its data from the stack's bucket; the reference stays in the
    result as ``claim_check``. A reference that cannot be resolved leaves the data as it was and says why in
    ``claim_check_error``: the status of the workflow is still shown.

    The reference is checked as a consumer checks it (``written_by_publisher``): its key must be one the agent's
    own function writes for that result's detail-type, so that data an agent put in the shape of a reference
    cannot show another function's object as this result's data."""
    from botocore.exceptions import BotoCoreError, ClientError

    from functions.common.claim_check import (
        REFERENCE_FIELD,
        ClaimCheckError,
        ClaimCheckStore,
        claim_check_writers,
        is_reference,
    )

    bucket = deployment.resources.claim_check_bucket
    store = (ClaimCheckStore(deployment.client("s3"), bucket, prefix="", writers=claim_check_writers(manifest))
             if bucket else None)
    for agent, result in (view.get("results") or {}).items():
        data = result.get("data")
        if not is_reference(data):
            continue
        reference = data[REFERENCE_FIELD]
        result["claim_check"] = reference
        if store is None:
            result["claim_check_error"] = "this deployment has no claim-check bucket to resolve the data from"
            continue
        source, detail_type = _result_envelope(manifest, view.get("workflow"), agent, result)
        try:
            detail = store.resolve({REFERENCE_FIELD: reference, "agent": agent,
                                    "workflow_id": view.get("workflow_id")}, source, detail_type)
        except (ClaimCheckError, ClientError, BotoCoreError) as error:
            result["claim_check_error"] = str(error)
            continue
        result["data"] = detail.get("data", {})
    return view


def _result_envelope(manifest: Manifest, workflow: Any, agent: str,
                     result: dict[str, Any]) -> tuple[str, str] | tuple[None, None]:
    """The source and detail-type a result came with (the agent's source in the manifest, the detail-type its
    record kept); (None, None) when this CLI's manifest does not know the agent (a record of another manifest)."""
    detail_type = result.get("detail_type")
    try:
        source = manifest.workflow(str(workflow)).agent(agent).source
    except KeyError:
        return None, None
    return (source, detail_type) if isinstance(detail_type, str) else (None, None)


def event_workflow_id(event: dict[str, Any]) -> str | None:
    """The workflow id an event on the bus belongs to (a trigger's id field, or a result's workflow_id)."""
    from agentbus.observe import locate_event

    raw = event.get("detail")
    detail = raw if isinstance(raw, dict) else {}
    return locate_event(MANIFEST, str(event.get("detail-type")), str(event.get("source")), detail)[1]


def _ts(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


# Entries of a view's ``late_results`` that did not come late: an answer nobody asked for, a result that came before
# a trigger which itself came after the finish (``WorkflowStore.view``).
NOT_LATE_KINDS = ("unasked", "before-trigger")


def kept_as(late: dict[str, Any]) -> str:
    """How ``status`` and ``trace`` label an entry of ``late_results``."""
    return "not counted" if late.get("kind") in NOT_LATE_KINDS else "late, not counted"


def timeline(view: dict[str, Any]) -> list[tuple[float, float | None, str, str]]:
    """(start, end, who, what) rows of one workflow, in time order."""
    rows: list[tuple[float, float | None, str, str]] = []
    received = _ts(view.get("trigger_received_at"))
    if received:
        opened = ("trigger received after the finish: nothing reopened, the outcome stands"
                  if view.get("trigger_after_finish") else "trigger received, workflow opened")
        rows.append((received, None, "coordinator", opened))
    for agent, result in sorted((view.get("results") or {}).items()):
        start, end = _ts(result.get("started_at")), _ts(result.get("finished_at"))
        if start:
            what = result.get("detail_type") or result.get("outcome", "")
            reason = f" — {result['reason']}" if result.get("reason") else ""
            stored = _claim_check_note(result)
            rows.append((start, end, agent, f"{what}{reason}{stored}"))
    for late in view.get("late_results") or []:
        start = _ts(late.get("finished_at") or late.get("received_at"))
        if start:
            by = late.get("by") or (late.get("data") or {}).get("by")
            what = " ".join(str(p) for p in (late.get("detail_type"), f"by {by}" if by else None) if p)
            why = late.get("late_reason") or "arrived after the finish"
            rows.append((start, None, late.get("agent") or late.get("kind") or "?",
                         f"{kept_as(late)} ({why}){': ' + what if what else ''}"))
    finished = _ts(view.get("finished_at") or (view.get("timings") or {}).get("finished_at"))
    if finished and view.get("status") != "RUNNING":
        reason = f" — {view['reason']}" if view.get("reason") else ""
        rows.append((finished, None, "coordinator", f"{view['status']}{reason}"))
    return sorted(rows, key=lambda r: r[0])


def _claim_check_note(result: dict[str, Any]) -> str:
    """`` [data: 1048576 bytes at s3://bucket/key]`` for a result whose data is stored as a claim check."""
    data = result.get("data")
    reference = result.get("claim_check") or (data.get("claim_check") if isinstance(data, dict) else None)
    if not isinstance(reference, dict):
        return ""
    note = f" [data: {reference.get('bytes')} bytes at s3://{reference.get('bucket')}/{reference.get('key')}"
    if result.get("claim_check_error"):
        note += f"; unresolved: {result['claim_check_error']}"
    return note + "]"


def render_trace(view: dict[str, Any], width: int = 40) -> str:
    rows = timeline(view)
    held = view.get("before_trigger_results") or []
    header = f"workflow {view['workflow_id']} — {view.get('status')}"
    if not rows and not held:
        return header + "\n  (nothing recorded yet)"
    lines = [header]
    who_width = max([12, *(len(who) for _, _, who, _ in rows)])  # a longer agent name keeps the bars aligned
    if rows:
        t0 = rows[0][0]
        t_end = max((r[1] or r[0]) for r in rows)
        span = max(t_end - t0, 1e-3)
    for start, end, who, what in rows:
        offset = (start - t0) * 1000
        left = int((start - t0) / span * width)
        if end:
            length = max(1, int((end - start) / span * width))
            bar = " " * left + "█" * length
            took = f"{(end - start) * 1000:7.0f} ms"
        else:
            bar = " " * min(left, width - 1) + "│"
            took = " " * 10
        lines.append(f"  +{offset:7.0f} ms  {who:<{who_width}} {bar:<{width + 1}} {took}  {what}")
    if held:
        lines.append("  received before the trigger, not counted: "
                     + ", ".join(f"{r.get('agent')} ({r.get('detail_type')})" for r in held))
    missing = view.get("missing") or []
    if missing:
        label = "waiting for" if view.get("status") == "RUNNING" else "never counted"
        lines.append(f"  {label}: {', '.join(missing)}")
    return "\n".join(lines)


# -- agents --------------------------------------------------------------------------------------------

def control(deployment: Deployment) -> AgentControl:
    lambda_client = None if deployment.resources.local else deployment.client("lambda")
    return AgentControl(deployment.resources, deployment.client("sqs"), lambda_client)


def agent_list(deployment: Deployment, name: str | None = None) -> list[dict[str, Any]]:
    """Every agent the deployment has, its state and queue depths (``name``: that agent's only), those this CLI's
    manifest knows first, in its order. A deployment of another manifest (or of a newer release) may have agents
    this CLI's manifest does not list: they are listed too, after the others by name, with ``known`` False."""
    wanted = _consumer_names(deployment, name)
    known = [c.name for c in MANIFEST.consumers]
    ordered = [n for n in known if n in wanted] + sorted(n for n in wanted if n not in known)
    ctl = control(deployment)
    return [{"agent": n, "state": "paused" if ctl.is_paused(n) else "running", **ctl.queue_depth(n),
             "known": n in known} for n in ordered]


# -- dead letters ----------------------------------------------------------------------------------------

@dataclass
class DeadLetter:
    """One letter: ``event`` is its body as JSON, or its text when that is not JSON or cannot be read;
    ``unreadable`` says why a body that cannot be read (nested too deep to parse) was not, ``body_bytes`` its
    size (UTF-8).

    ``sent_at`` is the message's SentTimestamp (ISO 8601, UTC) and ``age_s`` its age when listed. SQS deletes a
    message its retention period after it was first enqueued: one moved here by the queue's redrive policy (a
    function timed out, crashed or was throttled on every receive) keeps the time it entered the agent's queue,
    so it may have little of its dead-letter queue's retention left; one an agent put here itself was sent anew.
    ``expires_at`` is when SQS deletes it (SentTimestamp + the dead-letter queue's MessageRetentionPeriod,
    ``retention_s``); None when either cannot be read."""

    agent: str
    message_id: str
    reason: str
    event: Any
    receive_count: int
    unreadable: str | None = None
    body_bytes: int = 0
    sent_at: str | None = None
    age_s: int | None = None
    retention_s: int | None = None
    expires_at: str | None = None


def _consumer_names(deployment: Deployment, name: str | None) -> list[str]:
    names = list(deployment.resources.consumers)
    if name is None:
        return names
    if name not in names:
        raise OperationError(unknown_agent(name, names))
    return [name]


def _drain(sqs: Any, queue_url: str, limit: int = 10_000) -> list[dict[str, Any]]:
    """Receive every message of a queue once (each stays hidden while we look)."""
    seen: dict[str, dict[str, Any]] = {}
    while len(seen) < limit:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60,
                                       WaitTimeSeconds=0, AttributeNames=["All"],
                                       MessageAttributeNames=["All"]).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            break
        for message in fresh:
            seen[message["MessageId"]] = message
    return list(seen.values())


def dead_letters(deployment: Deployment, name: str | None = None, now: datetime | None = None) -> list[DeadLetter]:
    names = _consumer_names(deployment, name)
    sqs = deployment.client("sqs")
    now = now or datetime.now(UTC)
    letters = []
    for consumer_name in names:
        queue = deployment.resources.consumers[consumer_name]
        messages = _drain(sqs, queue.dlq_url)
        max_receives: list[int | None] = []  # read once, for the first letter without a reason of its own
        retention = _retention_s(sqs, queue.dlq_url) if messages else None
        for message in messages:
            attributes = message.get("MessageAttributes", {})
            reason = attributes.get(REASON_ATTRIBUTE, {}).get("StringValue") or _eventbridge_reason(attributes)
            if not reason:
                max_receives = max_receives or [_max_receive_count(sqs, consumer_name, queue.queue_url)]
                # The function puts every letter it gives up on itself, with a reason: one without was moved by
                # the queue's redrive policy, received that many times without being deleted, which need not
                # mean the function ever ran (throttled, timed out, crashed, or received while paused).
                times = f"{max_receives[0]} times" if max_receives[0] else "as many times as its maxReceiveCount allows"
                reason = (f"moved by its queue's redrive policy after being received {times} without being deleted, "
                          "not by the function (it timed out, crashed or was throttled, or the message was received "
                          "while the agent was paused); see the function's logs")
            event, unreadable = _read_body(message["Body"])
            letters.append(DeadLetter(
                agent=attributes.get(CONSUMER_ATTRIBUTE, {}).get("StringValue") or consumer_name,
                message_id=message["MessageId"], reason=reason, event=event,
                receive_count=int(message.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
                unreadable=unreadable, body_bytes=len(message["Body"].encode("utf-8", errors="replace")),
                **_lifetime(message.get("Attributes", {}).get("SentTimestamp"), retention, now),
            ))
        if messages:  # make them visible again: listing must not hide them from a redrive
            for start in range(0, len(messages), 10):
                sqs.change_message_visibility_batch(QueueUrl=queue.dlq_url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for i, m in enumerate(messages[start:start + 10])])
    return letters


def hidden_dead_letters(deployment: Deployment, name: str | None = None) -> int:
    """How many dead letters someone else is reading now (another listing or redrive, one interrupted, or any
    other reader): SQS hides them for their visibility timeout, so a listing or a redrive does not see them
    (black-box pass 9C, F7: "no dead letters" and "redrove 0" while two waited). 0 when it cannot be read."""
    hidden = 0
    try:
        sqs = deployment.client("sqs")
        for consumer_name in _consumer_names(deployment, name):
            attributes = sqs.get_queue_attributes(QueueUrl=deployment.resources.consumers[consumer_name].dlq_url,
                                                  AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
            hidden += int(attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"])
    except Exception:  # a note after a verb that did its work: reading it must never fail the verb
        logging.getLogger("agentbus").debug("could not count the dead letters others are reading", exc_info=True)
    return hidden


def _retention_s(sqs: Any, queue_url: str) -> int | None:
    """The queue's MessageRetentionPeriod in seconds, or None when it cannot be read (no permission)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["MessageRetentionPeriod"])
        return int(attributes["Attributes"]["MessageRetentionPeriod"])
    except (ClientError, BotoCoreError, KeyError, TypeError, ValueError):
        return None


def _lifetime(sent_timestamp: str | None, retention_s: int | None, now: datetime) -> dict[str, Any]:
    """A letter's ``sent_at``, ``age_s``, ``retention_s`` and ``expires_at`` from its SentTimestamp (epoch
    milliseconds, as SQS gives it) and its queue's retention."""
    try:
        sent = datetime.fromtimestamp(int(str(sent_timestamp)) / 1000, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return {"retention_s": retention_s}
    expires = sent + timedelta(seconds=retention_s) if retention_s is not None else None
    return {"sent_at": _iso(sent), "age_s": max(0, round((now - sent).total_seconds())), "retention_s": retention_s,
            "expires_at": _iso(expires) if expires else None}


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _max_receive_count(sqs: Any, consumer_name: str, queue_url: str) -> int | None:
    """How many receives the deployment's queue of ``consumer_name`` gives a message before its dead-letter queue:
    the queue's own RedrivePolicy, what the deployment has. When it cannot be read (no permission, no policy),
    what this CLI's manifest says of that agent, if it knows it (a deployment of another manifest may have agents
    it does not list); else None."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        policy = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])["Attributes"]
        count = int(json.loads(policy["RedrivePolicy"])["maxReceiveCount"])
        if count > 0:
            return count
    except (ClientError, BotoCoreError, KeyError, TypeError, ValueError):  # ValueError: JSONDecodeError too
        pass
    known = {c.name: c.max_receive_count for c in MANIFEST.consumers}
    return known.get(consumer_name)


# A letter's event nested deeper than this is listed as its text: writing it as JSON (--json) or summarising it
# would recurse as deep, and a deep enough one ends in a RecursionError (an event a function can process nests a
# few levels: a detail is refused past storable.MAX_DETAIL_DEPTH = 24).
LISTED_DEPTH = 100


def _read_body(body: str) -> tuple[Any, str | None]:
    """A letter's event and, for a body that cannot be read as one, why (its text is then kept as the event). A
    body that is not JSON, or JSON Python does not read, is named with why (21F: one not JSON at all was listed
    as if its text were its event), never a traceback that hides every other letter."""
    try:
        event = read_json(body)
    except json.JSONDecodeError as error:
        return body, f"not JSON: {error.msg} at position {error.pos}"
    except UnreadableJson as error:
        return body, str(error)
    if nested_deeper_than(event, LISTED_DEPTH):
        return body, f"nested deeper than {LISTED_DEPTH} levels of JSON objects and arrays"
    return event, None


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` (as ``json.loads`` gives it) nests objects and arrays more than ``limit`` levels (``{}``
    is 1); without recursion, so it answers for any depth."""
    pending: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while pending:
        item, depth = pending.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        pending += [(child, depth + 1) for child in children if isinstance(child, dict | list)]
    return False


def _eventbridge_reason(attributes: dict[str, Any]) -> str | None:
    """EventBridge's own attributes on an event it could not deliver to the queue (rule target DLQ)."""
    code = attributes.get("ERROR_CODE", {}).get("StringValue")
    if not code:
        return None
    message = attributes.get("ERROR_MESSAGE", {}).get("StringValue", "")
    rule = attributes.get("RULE_ARN", {}).get("StringValue", "")
    return f"EventBridge could not deliver it ({code}: {message}) for rule {rule}".strip()


def seed(deployment: Deployment, table: str | None = None, path: str | None = None,
         progress: Callable[[int], None] | None = None) -> list[tuple[str, int, int]]:
    """Put the manifest's seed data (or ``path``'s, for ``table``) into the deployment's tables, new items only:
    seeding twice never overwrites live data. Returns (physical table, new items, items in the file) per table."""
    from agentbus.seeds import SeedError, put_new, seed_items, seeded_tables

    if path and not table:
        raise OperationError("--file needs --table: which table the file seeds")
    if table and table not in {t.logical_name for t in MANIFEST.tables}:
        # The coordinator's own table is not seed data: a seed file there would be taken for workflows.
        owner = "is the coordinator's own" if table in {t.logical_name for t in MANIFEST.all_tables} else "is unknown"
        raise OperationError(f"table {table!r} {owner}; seed one of: "
                             f"{', '.join(t.logical_name for t in MANIFEST.tables)}")
    tables = [MANIFEST.table(table)] if table else list(seeded_tables(MANIFEST))
    # A deployment of another manifest (or of another release) may lack a table this CLI's manifest seeds: said
    # before any table is written.
    if absent := [spec.logical_name for spec in tables if spec.logical_name not in deployment.resources.tables]:
        raise OperationError(f"this deployment has no table {', '.join(map(repr, absent))} (its tables: "
                             f"{', '.join(sorted(deployment.resources.tables)) or 'none'})")
    done = []
    dynamodb = deployment.client("dynamodb")
    for spec in tables:
        if not (path or spec.seed_file):
            raise OperationError(f"table {spec.logical_name!r} has no seed file; pass --file")
        try:
            items = seed_items(spec, path)
        except SeedError as error:
            raise OperationError(str(error)) from None
        physical = deployment.resources.tables[spec.logical_name]
        done.append((physical, put_new(dynamodb, physical, spec, items, progress), len(items)))
    return done


# How long a redrive's receive waits for the DLQ's letters (long polling: every SQS server is asked).
REDRIVE_POLL_S = 1
# SendMessageBatch takes at most 10 messages and 1 MiB in all (the sum of the bodies): ten letters of up to 1 MiB
# each are received together, so they are sent in as many batches as their sizes need.
SEND_BATCH_MAX_MESSAGES = 10
SEND_BATCH_MAX_BYTES = 1024 * 1024


def send_batches(bodies: list[str], max_bytes: int = SEND_BATCH_MAX_BYTES) -> list[list[int]]:
    """The indexes of ``bodies`` grouped, in order, into SendMessageBatch calls SQS takes (count and total size)."""
    return list(batched(range(len(bodies)), lambda index: len(bodies[index].encode("utf-8")), SEND_BATCH_MAX_MESSAGES,
                        max_bytes))


def redrive(deployment: Deployment, name: str, progress: Callable[[int], None] | None = None) -> int:
    """Move every message of NAME's dead-letter queue back to its queue, for another try."""
    _consumer_names(deployment, name)
    sqs = deployment.client("sqs")
    queue = deployment.resources.consumers[name]
    # Only what is there now: a message that fails again comes back to the DLQ while we work, and must
    # wait for the next redrive rather than loop.
    waiting = int(sqs.get_queue_attributes(QueueUrl=queue.dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
                  ["Attributes"]["ApproximateNumberOfMessages"])
    moved = tried = 0
    refused: list[str] = []
    while tried < waiting:
        # Long polling (not 0 s): a short poll samples some of SQS's servers and can answer empty while letters
        # wait, which ended the redrive early with letters left behind.
        messages = sqs.receive_message(QueueUrl=queue.dlq_url, MaxNumberOfMessages=min(10, waiting - tried),
                                       VisibilityTimeout=60, WaitTimeSeconds=REDRIVE_POLL_S).get("Messages", [])
        if not messages:
            break
        tried += len(messages)
        for batch in send_batches([m["Body"] for m in messages]):
            sent = sqs.send_message_batch(QueueUrl=queue.queue_url, Entries=[
                {"Id": str(i), "MessageBody": messages[i]["Body"]} for i in batch])
            # Only a letter its queue took leaves the DLQ: one the batch refused stays there (visible again in 60 s).
            # Deleted batch by batch: a later batch's error must not leave letters already sent in the DLQ too.
            taken = {entry["Id"] for entry in sent.get("Successful", [])}
            refused += [f"{entry.get('Code')}: {entry.get('Message')}" for entry in sent.get("Failed", [])]
            if taken:
                sqs.delete_message_batch(QueueUrl=queue.dlq_url, Entries=[
                    {"Id": str(i), "ReceiptHandle": messages[i]["ReceiptHandle"]} for i in batch if str(i) in taken])
            moved += len(taken)
            if progress:
                progress(moved)
    if refused:
        raise OperationError(f"moved {moved} of {name}'s dead letters back; its queue refused {len(refused)}, "
                             f"which stay in the dead-letter queue (first: {refused[0]})")
    return moved


# -- replay ---------------------------------------------------------------------------------------------

def replay(deployment: Deployment, start: datetime, end: datetime) -> dict[str, Any]:
    if end <= start:
        raise OperationError("--to must be after --from")
    if start > datetime.now(UTC):
        raise OperationError(f"--from {start.isoformat()} is in the future: nothing is archived there yet")
    events = deployment.client("events")
    archive = events.describe_archive(ArchiveName=deployment.resources.archive_name)
    name = f"agentbus-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    response = events.start_replay(
        ReplayName=name, EventSourceArn=archive["ArchiveArn"], EventStartTime=start, EventEndTime=end,
        Destination={"Arn": deployment.resources.bus_arn},
    )
    state = response.get("State")
    # The state now: locally the replay has run (COMPLETED); on AWS it runs on (aws events describe-replay). It
    # started either way: a failure to read it back is no reason to fail the verb.
    with contextlib.suppress(Exception):
        state = events.describe_replay(ReplayName=name).get("State", state)
    return {"replay": name, "state": state, "from": start.isoformat(), "to": end.isoformat()}


def as_json(value: Any) -> str:
    """Strict JSON, for any reader: a number JSON cannot write (an infinity or NaN a producer put in a request)
    is written as its text, ``"Infinity"``, ``"-Infinity"`` or ``"NaN"``, never as the bare token."""
    def default(obj: Any) -> Any:
        if hasattr(obj, "__dataclass_fields__"):
            return asdict(obj)
        from decimal import Decimal

        if isinstance(obj, Decimal):
            if not obj.is_finite():
                return str(obj)
            if obj == obj.to_integral_value():
                return int(obj)
            as_float = float(obj)  # exactly, or as text (1E-400 is not 0.0, 1E+400 not infinite)
            return as_float if math.isfinite(as_float) and Decimal(repr(as_float)) == obj else str(obj)
        if isinstance(obj, set):
            return sorted(obj)
        return str(obj)

    # Once leniently (floats may be infinite), read back with the non-finite tokens as text, then strictly.
    lenient = json.dumps(value, default=default)
    return json.dumps(json.loads(lenient, parse_constant=str), indent=2, sort_keys=True, allow_nan=False)
