"""The workflow table and the workflows' main tables (DynamoDB, low-level client: thread-safe, no boto3 resources).

Workflow table, partition key ``workflow_id`` (S) and sort key ``workflow`` (S). A workflow is a small **header**
item (sort key: the manifest's workflow name) and an **item per result** beside it (sort key
``<workflow>#result#<agent>#<version>``), so two workflows may use the same id, and what a write costs does not
depend on how many results came before it or how big they are (issue 15):

- a result is written twice: its own item first (once per agent and trigger version, ``attribute_not_exists``),
  then a *summary* into its slot of the header: the conditional write that counts it and bumps ``version``, as
  before. A header summary therefore always has its item; an item without a summary (a crash between the two,
  or refused by the header) counts for nothing, and the redelivery completes the pair;
- every decision is made from the header: the summaries hold what deciding needs (version, outcome,
  detail-type, whom the result asks for). The finish reads the whole record (one Query: header and items),
  decides again on it, builds the outcome and writes it into the header conditioned on the ``version`` it read:
  one winner, and its outcome matches the record it was decided from (faults 3, 9);
- a trigger up to ``TRIGGER_INLINE_BYTES`` is kept in the header; a larger one (up to
  ``MAX_STORED_TRIGGER_BYTES``) in its own item ``<workflow>#trigger#<version>``, written before the header;
- an entry kept aside (a late result, a second answer, a late cancel) is a marker in the header (its reason and
  time: the once-per-event, at-most-``MAX_LATE`` condition), written after an item ``<workflow>#late_<agent>~<e>``
  with the whole entry.

A write of the header costs its size (a few hundred bytes plus a summary per answered agent); a result's item
costs the result's size, once. The old layout (one item rewritten whole on every update) cost the square of the
number of agents.

Header attributes:

=========================  ====  ===================================================================
attribute                  type  meaning
=========================  ====  ===================================================================
``workflow_id``            S     the workflow id (the value of the trigger's ``Trigger.id_field``)
``workflow``               S     the manifest's workflow name
``status``                 S     ``RUNNING`` | ``COMPLETED`` | ``REJECTED`` | ``TIMED_OUT`` | ``CANCELLED``
``version``                N     +1 on every write that can change the decision (trigger, result, cancel);
                                 the finish is conditional on it, so an outcome always matches its record
``trigger``                S     the trigger's detail as received, as JSON text (even when invalid: text
                                 keeps what a DynamoDB number or map could not), when at most
                                 ``TRIGGER_INLINE_BYTES``; absent when larger than ``MAX_STORED_TRIGGER_BYTES``
                                 (its error says so)
``trigger_apart``          BOOL  the trigger's text is in the item ``<workflow>#trigger#<trigger_digest>``
``trigger_digest``         S     the trigger's version (``functions.common.digest``); set once, by the
                                 first trigger delivery (``attribute_not_exists``): the record's version
``trigger_error``          S     why the trigger detail is invalid (names the bad fields); absent if valid
``trigger_received_at``    S     when the coordinator first received the trigger (ISO-8601 UTC, ms)
``trigger_event_id``       S     the id of that first trigger event
``placed_at``              S     when the request was placed (the trigger event's time)
``deadline_at``            S     when the deadline schedule fires; set by whatever opened the record, moved
                                 out (never in) when an external agent is asked for
``schedule_name``          S     the EventBridge Scheduler schedule (in the settings' schedule group);
                                 absent when it is the derived ``deadlines.schedule_name(workflow, id, workflows)``
``result_<agent>``         M     the summary of that agent's counted result: ``trigger_digest``, ``outcome``,
                                 ``detail_type`` (and ``asks_for`` with ``received_at`` when it asks); its
                                 item ``<workflow>#result#<agent>#<trigger_digest>`` holds the ``AgentResult``
                                 detail plus ``detail_type``, ``event_id``, ``received_at``, stored compact:
                                 ``workflow``, ``workflow_id``, ``agent`` and ``idempotency_key`` are left out
                                 when they equal what the key gives, and put back on reading. Written once
                                 while RUNNING, or overwritten once by a result of the stored version when it
                                 holds another version's result
``result_<agent>@<v>``      M     the summary of a result that arrived before the trigger for version ``v``
                                 while the slot held another version's: kept beside it, counted if ``v`` is
                                 the trigger's (at most ``MAX_REFUSED_VERSIONS``; ``alternative_count``)
``late_<agent>~<e>``       M     kept aside, decides nothing: ``late_reason``, ``event_id``, ``received_at``
                                 (the entry itself in the item ``<workflow>#late_<agent>~<e>``): a result after the
                                 finish, or an external agent's second answer; ``<e>`` a digest of its event
                                 id (one entry per event); ``late_@cancel~<e>``: a cancel that came after the
                                 finish (at most ``MAX_LATE`` entries, ``late_count``)
``cancel_request``         M     the cancel written while the workflow ran: ``by``, ``reason``, ``event_id``,
                                 ``received_at``; set once, bumps ``version``: the finish decides CANCELLED
``refused_<digest>``       M     another version of the trigger, refused: ``event_id``, ``received_at``
``refusal_count``          N     how many are kept (at most ``MAX_REFUSED_VERSIONS``)
``outcome``                M     the ``WorkflowOutcome`` detail, stored by the finish without what can be
                                 derived: ``workflow``, ``workflow_id``, the workflow's id field and
                                 ``idempotency_key`` (from the key), its ``results`` (the counted results'
                                 items, by name when stored), and, for a workflow whose trigger was in when it
                                 finished, every field the final record gives again exactly
                                 (``derived_outcome``: status, reason, the results' names, missing, timings,
                                 quorum): such a record no longer changes (slots are written only while it
                                 runs, the trigger's version and time once, an item once), so an order's stored
                                 outcome is usually empty. Reading puts the detail back together, always in the
                                 same key order, so every publication sends exactly the detail the finish built
``reason``                 S     why the workflow was rejected or timed out
``finished_at``            S     when the finish won
``published``              BOOL  the outcome event was accepted by EventBridge
``published_at``           S
``projection_error``       S     why the main table's row could not be written (the projection failed on this
                                 record, or DynamoDB refused the row); the outcome was published without it
``publish_lease_until``    N     epoch ms until which ``publish_lease_owner`` may publish; a final,
``publish_lease_owner``    S     unpublished record with an expired lease is published by the next message
=========================  ====  ===================================================================

Numbers are stored as DynamoDB numbers and read back as ``int`` or ``float``.

Main tables (the manifest's ``Projection``): each finished workflow's row, written with an idempotent put by
whoever publishes the outcome. A value DynamoDB cannot hold as a number (an invalid request's ``1e308``) is
written as its text.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow, Rounded, Underflow
from typing import Any, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from functions.common.ids import result_idempotency_key
from functions.common.models import AgentResult, WorkflowOutcome
from functions.common.publisher import to_json
from functions.common.spec import WAITING_ATTRIBUTE, WAITING_INDEX, Manifest, Workflow, WorkflowStatus
from functions.common.storable import MAX_DETAIL_BYTES, has_utf8_form, utf8_form
from functions.coordinator.deadlines import schedule_name as derived_schedule_name
from functions.coordinator.outcome import timings
from functions.coordinator.ports import RowRefused
from functions.coordinator.record import (
    UNASKED_REASON,
    UNASKED_WHILE_RUNNING,
    WorkflowRecord,
    before_trigger_reason,
    missing_agents,
    public_quorum,
    quorum_state,
    reported_results,
    trigger_after_finish,
    waits,
)
from functions.coordinator.times import parse_iso

# The workflow table's sort key: a header's is the workflow's name; every other item of the workflow is named
# ``<workflow>#<part>#...`` (names are ``[a-z0-9-]``, so ``#`` only ever separates, and ``<workflow>$`` ends the
# range of one workflow's items: ``$`` sorts right after ``#``).
SORT_KEY = "workflow"
ITEM_MARK = "#"
ITEM_RANGE_END = "$"
RESULT_PART = "result"
TRIGGER_PART = "trigger"
# An item's payload: a result (or late entry) as a map, a trigger as its JSON text.
RESULT_ATTRIBUTE = "result"
TRIGGER_ATTRIBUTE = "text"
# A header attribute: the trigger's text is in its own item (larger than ``TRIGGER_INLINE_BYTES``).
TRIGGER_APART = "trigger_apart"
# A trigger up to this size is kept in the header (one write less per request); a larger one in its own item.
TRIGGER_INLINE_BYTES = 1024
# What a result slot of the header keeps of the result (its item keeps all of it): what deciding needs.
SUMMARY_KEYS = ("trigger_digest", "outcome", "detail_type")
RESULT_PREFIX = "result_"
# ``result_<agent>@<version>``: a result received before the trigger, for another version than its slot holds.
VERSION_MARK = "@"
LATE_PREFIX = "late_"
LATE_MARK = "~"
CANCEL_LATE = "@cancel"
LATE_COUNT = "late_count"
CANCEL_REQUEST = "cancel_request"
PROJECTION_ERROR = "projection_error"
# A conditional write (a cancel's, a result's) refused by the record as it was, when the re-read shows a record
# that takes it (opened, or its trigger come in, between the two), is tried again: this many times in all.
REFUSED_WRITE_ATTEMPTS = 3
# Entries kept aside per record: a flood of late answers cannot grow it further.
MAX_LATE = 20
# Conflicting trigger versions kept in a record (each ~200 bytes): a flood of versions cannot grow it further.
MAX_REFUSED_VERSIONS = 10
REFUSED_PREFIX = "refused_"
# Shares the prefix: it is the counter, not a refused version (which reads back as a map).
REFUSED_COUNT = "refusal_count"  # not a refused_<digest> version, though near it
# The trigger kept in the record (in its own item over ``TRIGGER_INLINE_BYTES``): larger ones are refused at
# validation (functions.common.storable, the same bound) and only their digest and error are kept, so the trigger's
# item stays far below DynamoDB's 400 KB item limit.
MAX_STORED_TRIGGER_BYTES = MAX_DETAIL_BYTES
# ``waiting`` reads the waiting headers with BatchGetItem: at most this many keys per call (DynamoDB's limit).
BATCH_GET_KEYS = 100
# Keys a BatchGetItem call left unprocessed (throttling, its 16 MB response limit) are asked for again, after a
# back-off of up to ``BATCH_GET_BACKOFF_S * 2**n`` seconds (full jitter, at most ``BATCH_GET_BACKOFF_MAX_S``), this
# many calls in all; still unread after them, ``waiting`` fails naming how many (DynamoDB's own advice: back off
# exponentially, since an immediate retry of throttled keys is throttled again).
BATCH_GET_ATTEMPTS = 6
BATCH_GET_BACKOFF_S = 0.05
BATCH_GET_BACKOFF_MAX_S = 1.0

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
# DynamoDB numbers: 38 significant digits, magnitude 1E-130 to 9.99...E+125 (boto3's own context).
_DYNAMODB_NUMBERS = Context(Emin=-128, Emax=126, prec=38, traps=[Inexact, Rounded, Overflow, Underflow,
                                                                 InvalidOperation])


def to_attribute(value: Any) -> dict[str, Any]:
    """A plain JSON-like value as a DynamoDB attribute value (floats become exact decimals)."""
    plain = json.loads(to_json(value), parse_float=Decimal)
    return cast(dict[str, Any], _serializer.serialize(plain))  # boto3-stubs: a private TypedDict


def to_lenient_attribute(value: Any) -> dict[str, Any]:
    """Like ``to_attribute``, but a number DynamoDB cannot hold (NaN, infinite, out of range, over 38 digits)
    is kept as its text, and a string with no UTF-8 form (a lone surrogate) as its escaped text (``\\ud800``):
    a main table's row of an invalid request must still be written."""
    return cast(dict[str, Any], _serializer.serialize(_lenient(json.loads(to_json_lenient(value), parse_float=Decimal,
                                                                          parse_constant=str))))


def to_json_lenient(value: Any) -> str:
    def default(item: Any) -> Any:
        if isinstance(item, Decimal):
            return str(item) if not item.is_finite() else (int(item) if item == item.to_integral_value()
                                                            else float(item))
        if isinstance(item, set | frozenset):
            return sorted(item)
        raise TypeError(f"{type(item).__name__} is not JSON serializable")

    text = json.dumps(value, default=default, separators=(",", ":"), ensure_ascii=False, allow_nan=True)
    if not has_utf8_form(text):  # a lone surrogate (refused as a value): kept as its JSON escape, which reads back
        return json.dumps(value, default=default, separators=(",", ":"), ensure_ascii=True, allow_nan=True)
    return text


def _lenient(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | Decimal):
        try:
            _DYNAMODB_NUMBERS.create_decimal(value)
        except (Inexact, Rounded, Overflow, Underflow, InvalidOperation):
            return str(value)
        return value
    if isinstance(value, float):
        return str(value) if not math.isfinite(value) else value
    if isinstance(value, str):
        return utf8_form(value)
    if isinstance(value, dict):
        return {utf8_form(str(key)): _lenient(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_lenient(item) for item in value]
    return value


def from_attribute(value: dict[str, Any]) -> Any:
    return _plain(_deserializer.deserialize(cast(Any, value)))  # boto3-stubs: a private TypedDict


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, set):
        return sorted(_plain(item) for item in value)
    return value


# The key order of a result slot and of an outcome as the coordinator builds them (``logic.Coordinator.on_result``,
# ``outcome.build_outcome``): reading puts elided fields back in this order.
SLOT_KEYS = (*AgentResult.model_fields, "detail_type", "event_id", "received_at")
OUTCOME_KEYS = tuple(WorkflowOutcome.model_fields)


def _slot_defaults(workflow_id: str, agent: str, workflow: str, version: Any) -> dict[str, str]:
    return {"workflow": workflow, "workflow_id": workflow_id, "agent": agent,
            "idempotency_key": result_idempotency_key(workflow_id, agent, str(version) if version else None)}


def _outcome_defaults(workflow_id: str, status: Any, workflow: str, id_field: str) -> dict[str, str]:
    return {"workflow": workflow, "workflow_id": workflow_id, "idempotency_key": f"{workflow_id}:{status}",
            id_field: workflow_id}


def _elide(value: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``value`` without the fields that equal what can be derived again (``defaults``)."""
    return {key: item for key, item in value.items() if not (key in defaults and item == defaults[key])}


def _restore(stored: dict[str, Any], defaults: dict[str, Any], order: tuple[str, ...],
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The value ``_elide`` was given: elided fields back, known keys in ``order``, unknown ones after."""
    source = {**defaults, **(extra or {}), **stored}
    restored = {key: source[key] for key in order if key in source}
    restored.update((key, item) for key, item in stored.items() if key not in restored)
    return restored


def compact_slot(workflow_id: str, agent: str, result: dict[str, Any], workflow: str) -> dict[str, Any]:
    """What a ``result_<agent>`` / ``late_<agent>`` slot stores of a result."""
    return _elide(result, _slot_defaults(workflow_id, agent, workflow, result.get("trigger_digest")))


def expand_slot(workflow_id: str, agent: str, stored: dict[str, Any], workflow: str) -> dict[str, Any]:
    return _restore(stored, _slot_defaults(workflow_id, agent, workflow, stored.get("trigger_digest")), SLOT_KEYS)


def compact_outcome(workflow_id: str, outcome: dict[str, Any], workflow: str, id_field: str,
                    derived: dict[str, Any] | None = None) -> dict[str, Any]:
    """What ``outcome`` stores of a ``WorkflowOutcome`` detail: its results by agent name only (their items hold
    them), no derivable ids, and none of the fields that equal what the final record gives again (``derived``:
    ``derived_outcome``)."""
    stored = {key: (sorted(item) if key == "results" else item) for key, item in outcome.items()}
    stored = _elide(stored, _outcome_defaults(workflow_id, outcome.get("status"), workflow, id_field))
    return _elide(stored, derived or {})


def expand_outcome(workflow_id: str, stored: dict[str, Any], slots: dict[str, dict[str, Any]],
                   workflow: str, id_field: str, derived: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``WorkflowOutcome`` detail back from its stored part, the record's result slots (those it named: a
    trigger that arrives after the finish must not change a published outcome) and what the final record gives
    (``derived``)."""
    source = {**(derived or {}), **stored}
    names = source.get("results") or []
    results = {name: slots[name] for name in sorted(names) if name in slots}
    return _restore({**source, "results": results},
                    _outcome_defaults(workflow_id, source.get("status"), workflow, id_field),
                    (*OUTCOME_KEYS, "quorum", id_field))


def derived_outcome(record: WorkflowRecord, workflow: Workflow | None) -> dict[str, Any]:
    """The outcome's fields a final record gives again, exactly as the finish built them: its status and reason,
    the counted results' names, the timings, the missing agents and the quorum. Only for a record whose trigger
    was in when it finished: its counted results and times cannot change any more (slots are written only while
    it runs, and the trigger's version and time once), so a field equal to this at the finish is not stored."""
    if not record.trigger_seen or not record.status.is_final or record.finished_at is None:
        return {}
    derived: dict[str, Any] = {"status": record.status.value, "reason": record.reason,
                               "results": sorted(reported_results(record, workflow)),
                               "timings": timings(record, parse_iso(record.finished_at), workflow)}
    if workflow is not None:
        derived["missing"] = missing_agents(record, workflow)
        quorum = public_quorum(quorum_state(record, workflow))
        if quorum is not None:
            derived["quorum"] = quorum
    return derived


def _is_conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def result_sort_key(workflow: str, agent: str, version: str) -> str:
    return ITEM_MARK.join((workflow, RESULT_PART, agent, version))


def trigger_sort_key(workflow: str, version: str) -> str:
    return ITEM_MARK.join((workflow, TRIGGER_PART, version))


def late_sort_key(workflow: str, name: str) -> str:
    """The item of a kept-aside entry whose header marker is ``name`` (``late_key``)."""
    return ITEM_MARK.join((workflow, name))


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """A result slot's summary in the header: its version, outcome and detail-type, and whom it asks for (with
    when it arrived): enough to decide, small and of a bounded size whatever the result holds."""
    kept = {key: result[key] for key in SUMMARY_KEYS if key in result}
    if result.get("asks_for"):
        kept.update(asks_for=result["asks_for"], received_at=result.get("received_at"))
    return kept


def _slot_writable(record: WorkflowRecord, agent: str, version: Any) -> bool:
    """Whether ``_count``'s condition holds on ``record``: running and not being cancelled, of this version or none
    yet, and the agent's slot empty or, once the trigger is in, holding another version's result."""
    if record.status is not WorkflowStatus.RUNNING or record.cancel is not None:
        return False
    if record.trigger_seen and record.trigger_digest != version:
        return False
    held = record.results.get(agent)
    return held is None or (record.trigger_seen and held.get("trigger_digest") != record.trigger_digest)


def late_key(agent: str | None, event_id: str) -> str:
    return f"{LATE_PREFIX}{agent or CANCEL_LATE}{LATE_MARK}{hashlib.sha256(event_id.encode()).hexdigest()[:12]}"


def after_finish(status: WorkflowStatus) -> str:
    return {WorkflowStatus.CANCELLED: "arrived after the workflow was cancelled",
            WorkflowStatus.TIMED_OUT: "reached the coordinator after the deadline: the workflow had timed out"}.get(
        status, f"arrived after the workflow had finished ({status.value})")


def _late_entry(workflow_id: str, key: str, value: dict[str, Any], workflow: str) -> dict[str, Any]:
    """A kept-aside entry as ``status`` shows it: a result with its agent back, or a cancel (``agent`` None)."""
    agent = key[len(LATE_PREFIX):].partition(LATE_MARK)[0]
    if agent == CANCEL_LATE:
        return {"agent": None, "kind": "cancel", **value}
    return expand_slot(workflow_id, agent, value, workflow)


class _Expression:
    """Builds an update: every attribute name aliased (no reserved-word surprises), values serialized."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attribute: str) -> str:
        for alias, existing in self.names.items():
            if existing == attribute:
                return alias
        alias = f"#n{len(self.names)}"
        self.names[alias] = attribute
        return alias

    def value(self, value: Any) -> str:
        alias = f":v{len(self.values)}"
        self.values[alias] = to_attribute(value)
        return alias

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"ExpressionAttributeNames": self.names}
        if self.values:
            params["ExpressionAttributeValues"] = self.values
        return params


class WaitingViews(list[dict[str, Any]]):
    """``WorkflowStore.waiting``'s views, a list; ``unfinished``: the workflows whose waiting headers were not all
    read because the time ran out (``out_of_time``), so their views are some of those waiting, not all."""

    unfinished: tuple[str, ...] = ()

    @property
    def partial(self) -> bool:
        return bool(self.unfinished)


class WorkflowStore:
    """The coordinator's state, and the operator CLI's read side (``get``, ``find``).

    ``tables`` maps the logical names of the main tables (projections) to their physical names; ``sleep`` is how
    ``waiting`` backs off before asking again for the keys a BatchGetItem left unprocessed (tests: no sleep).
    """

    def __init__(self, client: Any, workflow_table: str, manifest: Manifest,
                 tables: Mapping[str, str] | None = None, *, sleep: Callable[[float], None] = time.sleep):
        self.client = client
        self.workflow_table = workflow_table
        self.manifest = manifest
        self.tables = dict(tables or {})
        self.sleep = sleep

    def derived_schedule_name(self, workflow: str, workflow_id: str) -> str:
        """The deadline schedule's name a header need not store (``deadlines.schedule_name``, apart from the manifest's
        other workflows)."""
        return derived_schedule_name(workflow, workflow_id, (w.name for w in self.manifest.workflows))

    def _key(self, workflow: str, workflow_id: str) -> dict[str, Any]:
        return {"workflow_id": {"S": workflow_id}, "workflow": {"S": workflow}}

    def _update(self, workflow: str, workflow_id: str, expression: _Expression, update: str, condition: str | None,
                return_values: str = "ALL_NEW") -> WorkflowRecord | None:
        """Run one update; None when its condition did not hold."""
        params: dict[str, Any] = {
            "TableName": self.workflow_table,
            "Key": self._key(workflow, workflow_id),
            "UpdateExpression": update,
            "ReturnValues": return_values,
            **expression.params(),
        }
        if condition:
            params["ConditionExpression"] = condition
        try:
            response = self.client.update_item(**params)
        except ClientError as error:
            if _is_conditional_failure(error):
                return None
            raise
        attributes = response.get("Attributes")
        return self._record(attributes) if attributes else WorkflowRecord(workflow_id=workflow_id, workflow=workflow)

    def _write_or_reread(self, workflow: str, workflow_id: str, expression: _Expression, update: str, condition: str,
                         what: str, takes: Callable[[WorkflowRecord], bool]
                         ) -> tuple[WorkflowRecord | None, WorkflowRecord | None]:
        """A conditional update, and when the record refuses it, a re-read: (the record written, None), or (None, the
        record that refused it, None if there is none). A re-read record that ``takes`` the write (it was created
        or changed between the two) gets it again, ``REFUSED_WRITE_ATTEMPTS`` times in all."""
        for _ in range(REFUSED_WRITE_ATTEMPTS):
            written = self._update(workflow, workflow_id, expression, update, condition)
            if written is not None:
                return written, None
            existing = self.load(workflow, workflow_id)
            if existing is None or not takes(existing):
                return None, existing
        raise RuntimeError(f"workflow {workflow_id!r}: {what} was refused {REFUSED_WRITE_ATTEMPTS} times by a record "
                           "that takes it; retrying the message")

    def _workflow(self, name: str) -> Workflow | None:
        try:
            return self.manifest.workflow(name)
        except KeyError:
            return None

    def _id_field(self, workflow: str) -> str:
        known = self._workflow(workflow)
        return known.id_field if known else "workflow_id"

    def _may_wait(self, workflow: str, asks_for: Any = ()) -> bool:
        """Whether a record of ``workflow`` may wait for a person once this write is in: the workflow requires an
        external agent from the start, or the result written asks for one. Such a write also puts the header in
        the waiting index (``WAITING_ATTRIBUTE``); the finish takes it out. Over-marking costs an index entry, not
        a wrong answer: ``waiting`` keeps only the records that ``waits`` says wait."""
        known = self._workflow(workflow)
        if known is None or not known.external:
            return False
        external = {agent.name for agent in known.external}
        return bool({a.name for a in known.external if a.required} or external & set(asks_for or ()))

    def _waiting_mark(self, x: _Expression, workflow: str, asks_for: Any = ()) -> list[str]:
        """The SET clause marking the header as one the waiting index holds, when it may wait (``_may_wait``)."""
        return [f"{x.name(WAITING_ATTRIBUTE)} = {x.value(workflow)}"] if self._may_wait(workflow, asks_for) else []

    # writes -----------------------------------------------------------------------------------------

    def open(self, workflow: str, workflow_id: str, *, trigger: dict[str, Any] | None, digest: str,
             error: str | None, received_at: str, event_id: str, placed_at: str, deadline_at: str,
             schedule_name: str) -> tuple[bool, WorkflowRecord]:
        """Record the trigger once; results may have created the item already. Returns (first time?, record)."""
        x = _Expression()
        status = x.name("status")
        deadline = x.name("deadline_at")
        sets = [
            f"{status} = if_not_exists({status}, {x.value(WorkflowStatus.RUNNING.value)})",
            f"{x.name('trigger_digest')} = {x.value(digest)}",
            f"{x.name('trigger_received_at')} = {x.value(received_at)}",
            f"{x.name('trigger_event_id')} = {x.value(event_id)}",
            f"{x.name('placed_at')} = {x.value(placed_at)}",
            f"{deadline} = if_not_exists({deadline}, {x.value(deadline_at)})",
        ]
        text = to_json_lenient(trigger) if trigger is not None else None
        size = len(text.encode("utf-8")) if text is not None else 0
        apart = False
        if text is not None and size <= TRIGGER_INLINE_BYTES:
            sets.append(f"{x.name('trigger')} = {x.value(text)}")
        elif text is not None and size <= MAX_STORED_TRIGGER_BYTES:
            # Kept in its own item, written first (once per version: the same digest is the same text), so that
            # every later write of the header stays small; the header says where it is.
            self.client.put_item(TableName=self.workflow_table, Item={
                **self._key(trigger_sort_key(workflow, digest), workflow_id), TRIGGER_ATTRIBUTE: {"S": text}})
            sets.append(f"{x.name(TRIGGER_APART)} = {x.value(True)}")
            apart = True
        elif text is not None:
            error = error or f"detail is {size} bytes; a workflow keeps at most {MAX_STORED_TRIGGER_BYTES}"
        if schedule_name != self.derived_schedule_name(workflow, workflow_id):
            sets.append(f"{x.name('schedule_name')} = {x.value(schedule_name)}")
        sets += self._waiting_mark(x, workflow)
        if error:
            sets.append(f"{x.name('trigger_error')} = {x.value(error)}")
        update = f"SET {', '.join(sets)} ADD {x.name('version')} {x.value(1)}"
        # Fault 1: a duplicate trigger (same id, another event id) finds the version there and changes nothing.
        record = self._update(workflow, workflow_id, x, update, f"attribute_not_exists({x.name('trigger_digest')})")
        if record is not None and record.status.is_final and self._may_wait(workflow):
            # A trigger after the finish (the deadline passed first) marked a final record: out of the index again.
            y = _Expression()
            self._update(workflow, workflow_id, y, f"REMOVE {y.name(WAITING_ATTRIBUTE)}",
                         f"{y.name('status')} <> {y.value(WorkflowStatus.RUNNING.value)}", return_values="NONE")
        if record is not None:
            if apart:
                record.trigger = trigger
            return True, record
        existing = self.load(workflow, workflow_id)
        if existing is None:
            raise RuntimeError(f"workflow {workflow_id!r}: trigger refused but no record found")
        if apart and existing.trigger_digest != digest:
            # Another version holds the workflow: this one is refused (kept as ``refused_<digest>``), its text goes.
            self.client.delete_item(TableName=self.workflow_table,
                                    Key=self._key(trigger_sort_key(workflow, digest), workflow_id))
        return False, existing

    def refuse(self, workflow: str, workflow_id: str, refusal: dict[str, Any]) -> bool:
        """Keep another version of the trigger in the record, once per version and at most a few."""
        x = _Expression()
        slot = x.name(REFUSED_PREFIX + refusal["trigger_digest"])
        count = x.name(REFUSED_COUNT)
        kept = {key: value for key, value in refusal.items() if key != "trigger_digest"}
        update = f"SET {slot} = {x.value(kept)} ADD {count} {x.value(1)}"
        condition = (f"attribute_not_exists({slot}) AND "
                     f"(attribute_not_exists({count}) OR {count} < {x.value(MAX_REFUSED_VERSIONS)})")
        return self._update(workflow, workflow_id, x, update, condition, return_values="NONE") is not None

    def record_result(self, workflow: str, workflow_id: str, agent: str, result: dict[str, Any],
                      deadline_at: str) -> tuple[str, WorkflowRecord]:
        """Count an agent's result once: ``recorded`` (in its slot, or beside it when the slot holds another
        version's result and no trigger says yet which counts), ``duplicate``, ``other-version`` (for a version
        of the trigger other than the stored one: not counted) or ``late`` (after the finish).

        Two writes, the result first: its own item (``<workflow>#result#<agent>#<version>``, written once), then
        its summary into the header's slot (the conditional write that counts it and bumps ``version``). A
        summary in the header therefore always has its result stored; a result without a summary (a crash
        between the two, or refused by the header) counts for nothing, and a redelivery completes the pair."""
        version = str(result.get("trigger_digest"))
        stored = self._put_result(workflow, workflow_id, agent, result)
        mine = stored.get("event_id") == result.get("event_id")
        kind, record = self._count(workflow, workflow_id, agent, stored, deadline_at)
        if kind == "recorded" and not mine:
            # The item held another delivery of this agent's result for this version (written first, its
            # header write lost): that one is counted, this one is a duplicate.
            return "duplicate", record
        if kind in ("other-version", "late") and mine and not self._referenced(record, agent, version):
            # Never counted, and no header write can come to reference it now (the trigger's version is fixed,
            # a final record is final): the item goes; what is kept of it is kept as late or dead-lettered.
            self.client.delete_item(TableName=self.workflow_table,
                                    Key=self._key(result_sort_key(workflow, agent, version), workflow_id))
        return kind, record

    def _put_result(self, workflow: str, workflow_id: str, agent: str, result: dict[str, Any]) -> dict[str, Any]:
        """Store a result's item once; the result stored (this one, or the one written first). The item found there
        may be gone by the time it is read: another delivery of the same result wrote it, found it late (or of
        another version) and removed it again (``record_result``). The put is then tried again."""
        key = result_sort_key(workflow, agent, str(result.get("trigger_digest")))
        item = {**self._key(key, workflow_id), RESULT_ATTRIBUTE: to_attribute(compact_slot(workflow_id, agent, result,
                                                                                            workflow))}
        for _ in range(REFUSED_WRITE_ATTEMPTS):
            try:
                self.client.put_item(TableName=self.workflow_table, Item=item,
                                     ConditionExpression="attribute_not_exists(#sk)",
                                     ExpressionAttributeNames={"#sk": SORT_KEY})
                return result
            except ClientError as error:
                if not _is_conditional_failure(error):
                    raise
            response = self.client.get_item(TableName=self.workflow_table, Key=self._key(key, workflow_id),
                                            ConsistentRead=True)
            if "Item" in response:
                return expand_slot(workflow_id, agent, from_attribute(response["Item"][RESULT_ATTRIBUTE]), workflow)
        raise RuntimeError(f"workflow {workflow_id!r}: {agent}'s result item was there and gone again "
                           f"{REFUSED_WRITE_ATTEMPTS} times; retrying the message")

    @staticmethod
    def _referenced(record: WorkflowRecord, agent: str, version: str) -> bool:
        held = record.results.get(agent)
        return (held is not None and held.get("trigger_digest") == version) or (agent, version) in record.alternatives

    def _count(self, workflow: str, workflow_id: str, agent: str, result: dict[str, Any],
               deadline_at: str) -> tuple[str, WorkflowRecord]:
        x = _Expression()
        slot = x.name(RESULT_PREFIX + agent)
        status = x.name("status")
        stored_version = x.name("trigger_digest")
        deadline = x.name("deadline_at")
        running = x.value(WorkflowStatus.RUNNING.value)
        mine = x.value(result.get("trigger_digest"))
        sets = [f"{slot} = {x.value(summary(result))}", f"{status} = if_not_exists({status}, {running})",
                f"{deadline} = if_not_exists({deadline}, {x.value(deadline_at)})",
                *self._waiting_mark(x, workflow, result.get("asks_for"))]
        update = f"SET {', '.join(sets)} ADD {x.name('version')} {x.value(1)}"
        # Fault 2: the slot is written once, whoever comes first (even before the trigger); once the trigger is
        # in, only a result of its version may write it, and it may replace one of another version. Before the
        # trigger nothing replaces a slot (a comparison with the absent version is not "different").
        # A cancel written into the record ends the counting at once, before the finish that applies it: a result
        # (an approval) that comes between the two is kept as late, as one after the finish is.
        condition = (
            f"(attribute_not_exists({status}) OR {status} = {running}) "
            f"AND attribute_not_exists({x.name(CANCEL_REQUEST)}) "
            f"AND (attribute_not_exists({stored_version}) OR {stored_version} = {mine}) "
            f"AND (attribute_not_exists({slot}) OR (attribute_exists({stored_version}) "
            f"AND {slot}.{x.name('trigger_digest')} <> {stored_version}))"
        )
        # Its trigger may come in between a refusal and the re-read: a slot holding another version's result may
        # then be replaced by this one.
        written, existing = self._write_or_reread(workflow, workflow_id, x, update, condition, f"{agent}'s result",
                                                  lambda r: _slot_writable(r, agent, result.get("trigger_digest")))
        if written is not None:
            return "recorded", written
        if existing is None:
            raise RuntimeError(f"workflow {workflow_id!r}: result refused but no record found")
        if existing.trigger_seen and existing.trigger_digest != result.get("trigger_digest"):
            return "other-version", existing
        version = result.get("trigger_digest")
        held = existing.results.get(agent)
        if held is not None and held.get("trigger_digest") != version and not existing.trigger_seen:
            if existing.status is WorkflowStatus.RUNNING and existing.cancel is None:
                # Before the trigger, the slot holds a result for another version: this one may be for the
                # version the trigger will bring, so keep it beside (``result_<agent>@<version>``), not drop it.
                return self._record_alternative(workflow, workflow_id, agent, result, existing)
            # Finished before its trigger (its deadline passed): a result of another version is late.
        elif agent in existing.results or any(a == agent and d == version for a, d in existing.alternatives):
            return "duplicate", existing
        # Finished (or being cancelled) without this agent's result: keep it aside, once.
        ended = WorkflowStatus.CANCELLED if existing.cancel is not None else existing.status
        kept = self.keep_late(workflow, workflow_id, agent, result, after_finish(ended))
        return ("late", kept) if kept is not None else ("duplicate", existing)

    def keep_late(self, workflow: str, workflow_id: str, agent: str | None, entry: dict[str, Any],
                  reason: str) -> WorkflowRecord | None:
        """Keep ``entry`` (a result, an answer, a cancel: ``agent`` None) aside with the reason it decided nothing:
        once per event, at most ``MAX_LATE`` per record. Its item ``<workflow>#late_<agent>~<e>`` with the whole
        entry first (a redelivery writes it again), then the header's marker ``late_<agent>~<e>`` (its reason, event
        and time: the once-and-at-most condition). The record with it (the header's view); None when it was kept
        already, or the record is full (its item is then removed again)."""
        name = late_key(agent, str(entry.get("event_id", "")))
        stored = compact_slot(workflow_id, agent, entry, workflow) if agent else dict(entry)
        item_key = self._key(late_sort_key(workflow, name), workflow_id)
        self.client.put_item(TableName=self.workflow_table,
                             Item={**item_key, RESULT_ATTRIBUTE: to_attribute({**stored, "late_reason": reason})})
        x = _Expression()
        late = x.name(name)
        count = x.name(LATE_COUNT)
        marker = {"late_reason": reason, **{key: entry[key] for key in ("event_id", "received_at") if entry.get(key)}}
        update = f"SET {late} = {x.value(marker)} ADD {count} {x.value(1)}"
        condition = (f"attribute_not_exists({late}) AND "
                     f"(attribute_not_exists({count}) OR {count} < {x.value(MAX_LATE)})")
        record = self._update(workflow, workflow_id, x, update, condition)
        if record is None:
            existing = self.load(workflow, workflow_id)
            if existing is None or name not in existing.late_results:
                self.client.delete_item(TableName=self.workflow_table, Key=item_key)  # full: not kept after all
        return record

    def request_cancel(self, workflow: str, workflow_id: str, cancel: dict[str, Any]) -> tuple[str, WorkflowRecord]:
        """Write the cancel into a running record, once: ``recorded`` (or ``duplicate``: a cancel is there already,
        this one is kept aside), ``late`` (the workflow had finished: kept aside) or ``missing`` (no record)."""
        x = _Expression()
        slot = x.name(CANCEL_REQUEST)
        update = f"SET {slot} = {x.value(cancel)} ADD {x.name('version')} {x.value(1)}"
        condition = (f"{x.name('status')} = {x.value(WorkflowStatus.RUNNING.value)} "
                     f"AND attribute_not_exists({slot})")
        # A record without an item yet has no status: refused, but its trigger or a result may create it before the
        # re-read, running and without a cancel.
        written, existing = self._write_or_reread(
            workflow, workflow_id, x, update, condition, "the cancel",
            lambda r: r.status is WorkflowStatus.RUNNING and not r.cancel)
        if written is not None:
            return "recorded", written
        if existing is None:
            return "missing", WorkflowRecord(workflow_id=workflow_id, workflow=workflow)
        if existing.cancel and existing.cancel.get("event_id") == cancel.get("event_id"):
            return "duplicate", existing
        if existing.status.is_final:
            self.keep_late(workflow, workflow_id, None, cancel, after_finish(existing.status))
            return "late", existing
        self.keep_late(workflow, workflow_id, None, cancel,
                       f"a cancel by {(existing.cancel or {}).get('by')} is being applied already")
        return "duplicate", existing

    def extend_deadline(self, workflow: str, workflow_id: str, deadline_at: str) -> None:
        """Move a running workflow's deadline out (never in): ISO-8601 UTC strings of one format compare as times."""
        x = _Expression()
        deadline = x.name("deadline_at")
        until = x.value(deadline_at)
        condition = (f"{x.name('status')} = {x.value(WorkflowStatus.RUNNING.value)} "
                     f"AND (attribute_not_exists({deadline}) OR {deadline} < {until})")
        self._update(workflow, workflow_id, x, f"SET {deadline} = {until}", condition, return_values="NONE")

    def _record_alternative(self, workflow: str, workflow_id: str, agent: str, result: dict[str, Any],
                            existing: WorkflowRecord) -> tuple[str, WorkflowRecord]:
        x = _Expression()
        slot = x.name(f"{RESULT_PREFIX}{agent}{VERSION_MARK}{result.get('trigger_digest')}")
        count = x.name("alternative_count")
        sets = [f"{slot} = {x.value(summary(result))}", *self._waiting_mark(x, workflow, result.get("asks_for"))]
        update = f"SET {', '.join(sets)} ADD {x.name('version')} {x.value(1)}, {count} {x.value(1)}"
        condition = (f"attribute_not_exists({slot}) AND attribute_not_exists({x.name('trigger_digest')}) "
                     f"AND {x.name('status')} = {x.value(WorkflowStatus.RUNNING.value)} "
                     f"AND (attribute_not_exists({count}) OR {count} < {x.value(MAX_REFUSED_VERSIONS)})")
        record = self._update(workflow, workflow_id, x, update, condition)
        if record is not None:
            return "recorded", record
        reloaded = self.load(workflow, workflow_id) or existing
        if reloaded.trigger_seen and not existing.trigger_seen:  # the trigger came in meanwhile: count it now
            return self._count(workflow, workflow_id, agent, result, reloaded.deadline_at or "")
        return "duplicate", reloaded

    def finish(self, workflow: str, workflow_id: str, *, base: WorkflowRecord, status: WorkflowStatus,
               outcome: dict[str, Any], finished_at: str, lease_until_ms: int,
               lease_owner: str) -> WorkflowRecord | None:
        """RUNNING -> final, storing the outcome, if the header still has the ``version`` of ``base`` (the whole
        record the decision was made on). Exactly one caller wins; the others get None (fault 3). The winner gets
        the final record: the header's attributes, ``base``'s results and trigger, and ``outcome`` as built."""
        expected_version = base.version
        x = _Expression()
        final = dataclasses.replace(base, status=status, reason=outcome.get("reason") or None, finished_at=finished_at)
        stored = compact_outcome(workflow_id, outcome, workflow, self._id_field(workflow),
                                 derived_outcome(final, self._workflow(workflow)))
        sets = [
            f"{x.name('status')} = {x.value(status.value)}",
            f"{x.name('outcome')} = {x.value(stored)}",
            f"{x.name('finished_at')} = {x.value(finished_at)}",
            f"{x.name('published')} = {x.value(False)}",
            f"{x.name('publish_lease_until')} = {x.value(lease_until_ms)}",
            f"{x.name('publish_lease_owner')} = {x.value(lease_owner)}",
        ]
        if outcome.get("reason"):
            sets.append(f"{x.name('reason')} = {x.value(outcome['reason'])}")
        condition = (
            f"{x.name('status')} = {x.value(WorkflowStatus.RUNNING.value)} "
            f"AND {x.name('version')} = {x.value(expected_version)}"
        )
        # A final record waits for nobody: out of the waiting index (nothing to remove costs nothing more).
        won = self._update(workflow, workflow_id, x, f"SET {', '.join(sets)} REMOVE {x.name(WAITING_ATTRIBUTE)}",
                           condition)
        if won is None:
            return None
        won.results, won.alternatives, won.late_results = base.results, base.alternatives, base.late_results
        won.trigger, won.complete = base.trigger, True
        # As a later read puts it together (numbers as DynamoDB gives them back): every publication of this
        # outcome, the first one included, sends the same bytes.
        won.outcome = self._outcome(won, from_attribute(to_attribute(stored)))
        return won

    def claim_publication(self, workflow: str, workflow_id: str, *, now_ms: int, lease_until_ms: int,
                          lease_owner: str) -> WorkflowRecord | None:
        """Take the right to publish a final, unpublished outcome whose lease has expired (fault 5)."""
        x = _Expression()
        lease = x.name("publish_lease_until")
        update = f"SET {lease} = {x.value(lease_until_ms)}, {x.name('publish_lease_owner')} = {x.value(lease_owner)}"
        condition = (
            f"{x.name('published')} = {x.value(False)} "
            f"AND (attribute_not_exists({lease}) OR {lease} < {x.value(now_ms)})"
        )
        return self._update(workflow, workflow_id, x, update, condition)

    def release_publication(self, workflow: str, workflow_id: str, lease_owner: str) -> None:
        x = _Expression()
        update = f"SET {x.name('publish_lease_until')} = {x.value(0)}"
        owner = x.name("publish_lease_owner")
        condition = f"{owner} = {x.value(lease_owner)} AND {x.name('published')} = {x.value(False)}"
        self._update(workflow, workflow_id, x, update, condition, return_values="NONE")

    def mark_published(self, workflow: str, workflow_id: str, published_at: str,
                       projection_error: str | None = None) -> None:
        x = _Expression()
        update = f"SET {x.name('published')} = {x.value(True)}, {x.name('published_at')} = {x.value(published_at)}"
        if projection_error is not None:  # in the same write: a refused row costs no write of its own
            update += f", {x.name(PROJECTION_ERROR)} = {x.value(projection_error)}"
        self._update(workflow, workflow_id, x, update, f"attribute_exists({x.name('outcome')})",
                     return_values="NONE")

    def note_projection_error(self, workflow: str, workflow_id: str, problem: str) -> None:
        """Why a published workflow's row could not be written again (its trigger came in after the finish)."""
        x = _Expression()
        self._update(workflow, workflow_id, x, f"SET {x.name(PROJECTION_ERROR)} = {x.value(problem)}",
                     f"attribute_exists({x.name('outcome')})", return_values="NONE")

    def put_projection(self, table: str, item: dict[str, Any]) -> None:
        """A finished workflow's row in its main table: derived from the stored outcome, so repeating it
        writes the same item."""
        try:
            table_name = self.tables[table]
        except KeyError:
            raise RuntimeError(f"no physical name for main table {table!r}: the coordinator's environment "
                               "lacks it") from None
        try:
            row = {key: to_lenient_attribute(value) for key, value in item.items()}
        except (TypeError, ValueError) as error:
            raise RowRefused(f"the {table} row cannot be written: {error}") from error
        try:
            self.client.put_item(TableName=table_name, Item=row)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ValidationException":
                raise
            raise RowRefused(f"DynamoDB refused the {table} row: {error.response['Error'].get('Message')}") \
                from error

    # reads ------------------------------------------------------------------------------------------

    def load(self, workflow: str, workflow_id: str) -> WorkflowRecord | None:
        """The whole record: one consistent Query of the workflow's items (header, results, late entries, a large
        trigger), ``complete``."""
        items = self._query(workflow_id, KeyConditionExpression="#id = :id AND #sk BETWEEN :first AND :last",
                            ExpressionAttributeNames={"#id": "workflow_id", "#sk": SORT_KEY},
                            ExpressionAttributeValues={":id": {"S": workflow_id}, ":first": {"S": workflow},
                                                       ":last": {"S": workflow + ITEM_RANGE_END}})
        records = self.records(items)
        return records[0] if records else None

    def find(self, workflow_id: str) -> list[WorkflowRecord]:
        """Every workflow using this id (one per workflow name)."""
        return self.records(self._query(workflow_id, KeyConditionExpression="#id = :id",
                                        ExpressionAttributeNames={"#id": "workflow_id"},
                                        ExpressionAttributeValues={":id": {"S": workflow_id}}))

    def _query(self, workflow_id: str, **params: Any) -> list[dict[str, Any]]:
        """Every item a strongly consistent Query of the table gives, all its pages."""
        return [item for page in self._pages(ConsistentRead=True, **params) for item in page.get("Items", [])]

    def _pages(self, **params: Any) -> Iterator[dict[str, Any]]:
        """A Query's pages, one ``client.query`` call each, made as the pages are read."""
        while True:  # client.query itself, page by page (not a paginator: wrappers and tests see the calls)
            page = self.client.query(TableName=self.workflow_table, **params)
            yield page
            if not page.get("LastEvaluatedKey"):
                return
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def records(self, items: list[dict[str, Any]]) -> list[WorkflowRecord]:
        """Whole records from a workflow table's items (a Query's, or a scan's): one per header."""
        headers: dict[tuple[str, str], dict[str, Any]] = {}
        beside: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for item in items:
            sort_key = item[SORT_KEY]["S"]
            key = (item["workflow_id"]["S"], sort_key.partition(ITEM_MARK)[0])
            if ITEM_MARK in sort_key:
                beside.setdefault(key, []).append(item)
            else:
                headers[key] = item
        return [self._record(header, beside.get(key, [])) for key, header in headers.items()]

    def waiting(self, workflow: str | None = None, *,
                out_of_time: Callable[[], bool] | None = None) -> WaitingViews:
        """Views of the running workflows waiting for an external agent (a person), oldest ask first: for
        ``agentbus pending`` and the census, not for a request's path. The candidates come from the waiting index
        (``WAITING_INDEX``: only the headers that may wait are in it, each until its finish), one Query per
        workflow with external agents, never a scan of the table; their headers are then read in bulk
        (BatchGetItem, ``BATCH_GET_KEYS`` a call, strongly consistent) and each is kept if it waits. The header
        alone says whether and since when a workflow waits (``waits``: the status, the trigger's version and the
        result summaries with whom they ask for and when), so the views are built from it (``complete`` False):
        ``waiting_for``, ``missing``, ``status`` and the ids are exact; ``results`` are the header's summaries and
        ``timings`` partial (``get`` reads a record whole). The index is eventually consistent: a wait asked a
        moment ago may show a moment later.

        ``out_of_time`` (the census' time budget): asked before every call; once it says yes, no more is read and
        the views found so far are returned, with the workflows not read to the end in ``unfinished``."""
        names = [workflow] if workflow else [w.name for w in self.manifest.coordinated if w.external]
        views: list[dict[str, Any]] = []
        unfinished: list[str] = []
        for name in names:
            known = self._workflow(name)
            if known is None or not known.external:
                continue
            if not self._waiting_views(known, views, out_of_time or (lambda: False)):
                unfinished.append(name)
        found = WaitingViews(sorted([v for v in views if v["waiting_for"]],
                                    key=lambda v: min(str(w.get("asked_at") or "") for w in v["waiting_for"])))
        found.unfinished = tuple(unfinished)
        return found

    def _waiting_views(self, workflow: Workflow, views: list[dict[str, Any]],
                       out_of_time: Callable[[], bool]) -> bool:
        """Add to ``views`` those of ``workflow``'s indexed headers that wait; False if time ran out first."""
        if out_of_time():
            return False
        for page in self._pages(IndexName=WAITING_INDEX, KeyConditionExpression="#waits = :workflow",
                                ExpressionAttributeNames={"#waits": WAITING_ATTRIBUTE},
                                ExpressionAttributeValues={":workflow": {"S": workflow.name}}):
            keys = [self._key(workflow.name, item["workflow_id"]["S"]) for item in page.get("Items", [])]
            for start in range(0, len(keys), BATCH_GET_KEYS):
                headers = self._headers(keys[start:start + BATCH_GET_KEYS], out_of_time)
                if headers is None:
                    return False
                for header in headers:
                    record = self._record(header)
                    if waits(record, workflow):
                        views.append(self.view(record))
            if page.get("LastEvaluatedKey") and out_of_time():
                return False
        return True

    def _headers(self, keys: list[dict[str, Any]], out_of_time: Callable[[], bool]) -> list[dict[str, Any]] | None:
        """The header items of ``keys`` (at most ``BATCH_GET_KEYS``), strongly consistent, in the order of
        ``keys`` (those that do not exist left out); None if time ran out before all were read. Keys a call left
        unprocessed are asked for again after a back-off, ``BATCH_GET_ATTEMPTS`` calls in all."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        pending = keys
        for attempt in range(BATCH_GET_ATTEMPTS):
            if out_of_time():
                return None
            if attempt:
                self.sleep(random.uniform(0, min(BATCH_GET_BACKOFF_MAX_S, BATCH_GET_BACKOFF_S * 2 ** attempt)))
            response = self.client.batch_get_item(
                RequestItems={self.workflow_table: {"Keys": pending, "ConsistentRead": True}})
            for item in response.get("Responses", {}).get(self.workflow_table, []):
                found[(item["workflow_id"]["S"], item[SORT_KEY]["S"])] = item
            pending = response.get("UnprocessedKeys", {}).get(self.workflow_table, {}).get("Keys", [])
            if not pending:
                ordered = ((key["workflow_id"]["S"], key[SORT_KEY]["S"]) for key in keys)
                return [found[key] for key in ordered if key in found]
        raise RuntimeError(f"DynamoDB left {len(pending)} of {len(keys)} waiting headers unread after "
                           f"{BATCH_GET_ATTEMPTS} BatchGetItem calls (throttled?); retrying the message")

    def get_row(self, table: str, key: dict[str, str]) -> dict[str, Any] | None:
        """A main table's row (``key``: attribute -> string value)."""
        response = self.client.get_item(TableName=self.tables[table],
                                        Key={name: {"S": value} for name, value in key.items()}, ConsistentRead=True)
        item = response.get("Item")
        return {name: from_attribute(value) for name, value in item.items()} if item else None

    def get(self, workflow: str, workflow_id: str) -> dict[str, Any] | None:
        record = self.load(workflow, workflow_id)
        return self.view(record) if record else None

    def view(self, record: WorkflowRecord) -> dict[str, Any]:
        """A plain status view of one workflow (for ``agentbus status`` / ``trace``).

        Keys: ``workflow_id``, ``workflow``, ``status`` (RUNNING|COMPLETED|REJECTED|TIMED_OUT), ``results``
        ({agent: AgentResult detail + detail_type, event_id, received_at} of the stored version), ``missing``
        (required agents without a result; for a finished workflow, as the outcome recorded them), ``reason``,
        ``timings`` (the outcome's, or partial while running), ``trigger`` (the trigger's detail, None if it
        never arrived), ``trigger_error``, ``trigger_digest``, ``trigger_received_at``, ``placed_at``,
        ``deadline_at``, ``schedule_name``, ``finished_at``, ``published``, ``published_at``, ``projection_error``
        (why the main table's row is missing, or None), ``late_results``
        (what was kept aside: results after the finish, second answers, late cancels; each names its ``agent``
        (None for a cancel) and its ``late_reason``), ``waiting_for`` (external agents a running workflow waits
        for: ``agent``, ``kind``, ``asked_at``, ``wait_until``), ``cancel`` (the cancel written into the record,
        or None), ``quorum`` (needed, agents, agreed, disagreed, pending; None without one), ``other_version_results``
        (results for another version of the trigger: not counted), ``before_trigger_results`` (the results held
        while the trigger has not arrived, each naming its ``agent``: not counted yet, those of its version count
        once it comes; empty once it is in), ``trigger_after_finish`` (True when the trigger came in after the
        workflow had finished without it: the outcome stays as decided, and the results received before the
        trigger are in ``late_results`` with ``kind`` "before-trigger" and the reason), ``refused`` (other
        versions of the trigger, refused: their ``trigger_digest``, ``event_id``, ``received_at``) and ``outcome``
        (the stored ``WorkflowOutcome`` detail, None while running). Every result the record holds is in one of
        ``results``, ``late_results``, ``other_version_results`` and ``before_trigger_results``.
        """
        workflow = self._workflow(record.workflow)
        if record.outcome is not None:
            missing = list(record.outcome.get("missing", []))
            view_timings = record.outcome.get("timings")
        else:
            missing = missing_agents(record, workflow) if workflow else []
            view_timings = timings(record, None)
        counted = record.counted_results
        reported = reported_results(record, workflow)
        # Counted results the outcome does not report, each with why: an answer nobody asked for, or (the trigger
        # came in after the finish) a result received before the trigger, whose version the trigger then matched.
        late_trigger = trigger_after_finish(record)
        in_outcome = set(record.outcome.get("results") or {}) if record.outcome is not None else set(reported)
        if late_trigger:
            kind, why = "before-trigger", before_trigger_reason(record)
        else:
            kind, why = "unasked", UNASKED_REASON if record.status.is_final else UNASKED_WHILE_RUNNING
        aside = [{**counted[agent], "agent": agent, "kind": kind, "late_reason": why}
                 for agent in sorted(set(counted) - in_outcome)]
        held = sorted([*record.results.items(),
                       *((agent, result) for (agent, _), result in record.alternatives.items())],
                      key=lambda item: (item[0], str(item[1].get("received_at", ""))))
        return {
            "workflow_id": record.workflow_id,
            "workflow": record.workflow,
            "status": record.status.value,
            "results": record.outcome.get("results", {}) if record.outcome is not None else reported,
            "missing": missing,
            "reason": record.reason,
            "timings": view_timings,
            "trigger": record.trigger,
            "trigger_error": record.trigger_error,
            "trigger_digest": record.trigger_digest,
            "trigger_received_at": record.trigger_received_at,
            "placed_at": record.placed_at,
            "deadline_at": record.deadline_at,
            "schedule_name": record.schedule_name,
            "finished_at": record.finished_at,
            "published": record.published,
            "published_at": record.published_at,
            "projection_error": record.projection_error,
            # Results that arrived after the finish: a list (each names its ``agent``), in arrival order.
            "late_results": sorted([*record.late_results.values(), *aside],
                                   key=lambda r: str(r.get("received_at", ""))),
            "waiting_for": [{"agent": wait.agent, "kind": wait.kind, "asked_at": wait.asked_at,
                             "wait_until": record.deadline_at}
                            for wait in (waits(record, workflow) if workflow else [])],
            "cancel": record.cancel,
            "quorum": (record.outcome.get("quorum") if record.outcome is not None else
                       public_quorum(quorum_state(record, workflow)) if workflow else None),
            # Held in a slot (or beside it) for another version than the trigger's: never counted.
            "other_version_results": [result for _, result in held if record.trigger_seen
                                      and result.get("trigger_digest") != record.trigger_digest],
            # Held while the trigger has not arrived: they count once it comes (those of its version), unless the
            # workflow finished first (then ``late_results`` shows them, ``kind`` "before-trigger").
            "before_trigger_results": [] if record.trigger_seen else sorted(
                [{**result, "agent": agent} for agent, result in held],
                key=lambda r: (str(r.get("received_at", "")), str(r["agent"]))),
            # The trigger came in after the workflow had finished without it: the outcome stays as it was decided.
            "trigger_after_finish": late_trigger,
            "refused": record.refused,
            "outcome": record.outcome,
        }

    def _record(self, item: dict[str, Any], beside: list[dict[str, Any]] | None = None) -> WorkflowRecord:
        """A record from its header item and the items ``beside`` it; with ``beside`` None, from the header alone (a
        write's returned attributes, a header ``waiting`` read): its result slots are then the header's summaries
        (``complete`` False)."""
        data = {key: from_attribute(value) for key, value in item.items()}
        workflow_id = data["workflow_id"]
        workflow = data[SORT_KEY]
        beside_by_key = {other[SORT_KEY]["S"]: other for other in beside or ()}
        apart = beside_by_key.get(trigger_sort_key(workflow, str(data.get("trigger_digest"))))
        trigger_text = apart[TRIGGER_ATTRIBUTE]["S"] if apart and data.get(TRIGGER_APART) else data.get("trigger")

        def held_item(sort_key: str) -> dict[str, Any]:
            other = beside_by_key.get(sort_key)
            return from_attribute(other[RESULT_ATTRIBUTE]) if other and RESULT_ATTRIBUTE in other else {}

        def result(agent: str, held: dict[str, Any]) -> dict[str, Any]:
            """The result a slot's summary stands for (its item), or the summary while only the header is read."""
            body = held_item(result_sort_key(workflow, agent, str(held.get("trigger_digest"))))
            return expand_slot(workflow_id, agent, body or held, workflow)

        results = {k[len(RESULT_PREFIX):]: result(k[len(RESULT_PREFIX):], v)
                   for k, v in sorted(data.items()) if k.startswith(RESULT_PREFIX) and VERSION_MARK not in k}
        alternatives = {}
        for key, value in sorted(data.items()):
            if key.startswith(RESULT_PREFIX) and VERSION_MARK in key:
                agent, _, version = key[len(RESULT_PREFIX):].partition(VERSION_MARK)
                alternatives[(agent, version)] = result(agent, value)
        late = {}
        for key, marker in sorted(data.items()):
            if key.startswith(LATE_PREFIX) and isinstance(marker, dict):
                late[key] = _late_entry(workflow_id, key, {**held_item(late_sort_key(workflow, key)), **marker},
                                        workflow)
        record = WorkflowRecord(
            workflow_id=workflow_id,
            workflow=workflow,
            status=WorkflowStatus(data.get("status", WorkflowStatus.RUNNING.value)),
            version=int(data.get("version", 0)),
            trigger=json.loads(trigger_text) if isinstance(trigger_text, str) else None,
            trigger_digest=data.get("trigger_digest"),
            trigger_error=data.get("trigger_error"),
            trigger_received_at=data.get("trigger_received_at"),
            trigger_event_id=data.get("trigger_event_id"),
            placed_at=data.get("placed_at"),
            deadline_at=data.get("deadline_at"),
            schedule_name=data.get("schedule_name") or self.derived_schedule_name(workflow, workflow_id),
            results=results,
            alternatives=alternatives,
            late_results=late,
            cancel=data.get(CANCEL_REQUEST),
            refused=sorted(({"trigger_digest": k[len(REFUSED_PREFIX):], **v} for k, v in data.items()
                            if k.startswith(REFUSED_PREFIX) and k != REFUSED_COUNT),
                           key=lambda r: str(r.get("received_at", ""))),
            reason=data.get("reason"),
            finished_at=data.get("finished_at"),
            published=bool(data.get("published", False)),
            published_at=data.get("published_at"),
            projection_error=data.get(PROJECTION_ERROR),
            complete=beside is not None,
        )
        outcome = data.get("outcome")
        if outcome is not None and record.complete:  # the header alone lacks the results the outcome names
            record.outcome = self._outcome(record, outcome)
        return record

    def _outcome(self, record: WorkflowRecord, stored: dict[str, Any]) -> dict[str, Any]:
        return expand_outcome(record.workflow_id, stored, record.counted_results, record.workflow,
                              self._id_field(record.workflow), derived_outcome(record, self._workflow(record.workflow)))
