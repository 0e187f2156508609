"""The workflow table's writes and the workflows' main tables (DynamoDB, low-level client: thread-safe, no boto3
resources).

``WorkflowStore`` is the coordinator's state: every write is one conditional update of a workflow's header (or a put
of an item beside it), so exactly one of racing invocations wins, whatever the order of deliveries. What it writes
where: ``layout.py``; the reads it builds on (``load``, ``waiting``, ``view``): ``reads.py``.

Main tables (the manifest's ``Projection``): each finished workflow's row, written with an idempotent put by
whoever publishes the outcome. A value DynamoDB cannot hold as a number (an invalid request's ``1e308``) is
written as its text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, cast

from botocore.exceptions import ClientError

from functions.common.spec import WAITING_ATTRIBUTE, WorkflowStatus
from functions.coordinator.attributes import from_attribute, to_attribute, to_json_lenient, to_lenient_attribute
from functions.coordinator.layout import (
    CANCEL_REQUEST,
    LATE_COUNT,
    MAX_LATE,
    MAX_REFUSED_VERSIONS,
    MAX_STORED_TRIGGER_BYTES,
    PROJECTION_ERROR,
    REFUSED_COUNT,
    REFUSED_PREFIX,
    RESULT_ATTRIBUTE,
    RESULT_PREFIX,
    SORT_KEY,
    TRIGGER_APART,
    TRIGGER_ATTRIBUTE,
    TRIGGER_INLINE_BYTES,
    VERSION_MARK,
    compact_outcome,
    compact_slot,
    expand_slot,
    late_key,
    late_sort_key,
    per_version,
    result_sort_key,
    summary,
    trigger_sort_key,
)
from functions.coordinator.outcome import derived_outcome
from functions.coordinator.ports import KeptAsideFull, RowRefused
from functions.coordinator.reads import WorkflowReader
from functions.coordinator.record import WorkflowRecord, after_finish, after_finish_of

# A conditional write (a cancel's, a result's) refused by the record as it was, when the re-read shows a record
# that takes it (opened, or its trigger come in, between the two), is tried again: this many times in all.
REFUSED_WRITE_ATTEMPTS = 3


def _is_conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _slot_writable(record: WorkflowRecord, agent: str, version: Any) -> bool:
    """Whether ``_count``'s condition holds on ``record``: running and not being cancelled, of this version or none
    yet, and the agent's slot empty or, once the trigger is in, holding another version's result."""
    if record.status is not WorkflowStatus.RUNNING or record.cancel is not None:
        return False
    if record.trigger_seen and record.trigger_digest != version:
        return False
    held = record.results.get(agent)
    return held is None or (record.trigger_seen and held.get("trigger_digest") != record.trigger_digest)


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


class WorkflowStore(WorkflowReader):
    """The coordinator's state: its writes, on the reads of ``WorkflowReader`` (which the operator CLI uses too)."""

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
                      deadline_at: str, *, late_once_per_version: bool = False) -> tuple[str, WorkflowRecord]:
        """Count an agent's result once: ``recorded`` (in its slot, or beside it when the slot holds another
        version's result and no trigger says yet which counts), ``duplicate``, ``other-version`` (for a version
        of the trigger other than the stored one: not counted) or ``late`` (after the finish).

        Two writes, the result first: its own item (``<workflow>#result#<agent>#<version>``, written once), then
        its summary into the header's slot (the conditional write that counts it and bumps ``version``). A
        summary in the header therefore always has its result stored; a result without a summary (a crash
        between the two, or refused by the header) counts for nothing, and a redelivery completes the pair.

        ``late_once_per_version``: a late result is kept aside once per agent and version (an agent's: each
        publication of it is the same result, its idempotency key; a replay or a redrive of the trigger publishes
        it again as a new event, which piled up as entries aside, black-box pass 20E, F1), not once per event (a
        person's answers: each is an answer of its own)."""
        version = str(result.get("trigger_digest"))
        stored = self._put_result(workflow, workflow_id, agent, result)
        mine = stored.get("event_id") == result.get("event_id")
        try:
            kind, record = self._count(workflow, workflow_id, agent, stored, deadline_at, late_once_per_version)
        except KeptAsideFull as full:
            if mine:  # late, and dead-lettered instead of kept aside: its item goes as a late one's does
                self._drop_unreferenced(workflow, workflow_id, agent, version, full.record)
            raise
        if kind in ("recorded", "late") and not mine:
            # The item held another event of this agent for this version (written first, its header write lost or
            # not yet made): that one is counted, or kept late, and this one is a duplicate of it. For an agent's
            # result that is another delivery of it; a person's answer is an answer of its own, which the caller
            # keeps aside (black-box pass 20A, F2: it was reported late, and kept nowhere).
            return "duplicate", record
        if kind != "recorded" and mine:
            # A "duplicate" of its own event here was kept late by an earlier delivery: a running record's
            # duplicates are of results it references.
            self._drop_unreferenced(workflow, workflow_id, agent, version, record)
        return kind, record

    def _drop_unreferenced(self, workflow: str, workflow_id: str, agent: str, version: str,
                           record: WorkflowRecord | None) -> None:
        """Delete the agent's result item for ``version`` unless ``record`` references it: never counted, and no
        header write can come to reference it now (the trigger's version is fixed, a final record is final); what
        is kept of it is kept as late or dead-lettered."""
        if record is None or not self._referenced(record, agent, version):
            self.client.delete_item(TableName=self.workflow_table,
                                    Key=self._key(result_sort_key(workflow, agent, version), workflow_id))

    def _put_result(self, workflow: str, workflow_id: str, agent: str, result: dict[str, Any]) -> dict[str, Any]:
        """Store a result's item once; the result stored (this one, or the one written first)."""
        key = self._key(result_sort_key(workflow, agent, str(result.get("trigger_digest"))), workflow_id)
        first = self._put_first(key, compact_slot(workflow_id, agent, result, workflow),
                                f"workflow {workflow_id!r}: {agent}'s result item")
        return result if first is None else expand_slot(workflow_id, agent, first, workflow)

    def _put_first(self, key: dict[str, Any], value: dict[str, Any], what: str) -> dict[str, Any] | None:
        """Write ``value`` as the item at ``key`` unless one is there: None when this one was written, else the
        value written first. The item found there may be gone by the time it is read: another delivery wrote it,
        found it late (or of another version) and removed it again (``record_result``), or found the record full
        (``keep_late``). The put is then tried again."""
        item = {**key, RESULT_ATTRIBUTE: to_attribute(value)}
        for _ in range(REFUSED_WRITE_ATTEMPTS):
            try:
                self.client.put_item(TableName=self.workflow_table, Item=item,
                                     ConditionExpression="attribute_not_exists(#sk)",
                                     ExpressionAttributeNames={"#sk": SORT_KEY})
                return None
            except ClientError as error:
                if not _is_conditional_failure(error):
                    raise
            response = self.client.get_item(TableName=self.workflow_table, Key=key, ConsistentRead=True)
            if "Item" in response:
                return cast(dict[str, Any], from_attribute(response["Item"][RESULT_ATTRIBUTE]))
        raise RuntimeError(f"{what} was there and gone again {REFUSED_WRITE_ATTEMPTS} times; retrying the message")

    @staticmethod
    def _referenced(record: WorkflowRecord, agent: str, version: str) -> bool:
        held = record.results.get(agent)
        return (held is not None and held.get("trigger_digest") == version) or (agent, version) in record.alternatives

    def _count(self, workflow: str, workflow_id: str, agent: str, result: dict[str, Any],
               deadline_at: str, late_once_per_version: bool = False) -> tuple[str, WorkflowRecord]:
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
        elif ((held is not None and held.get("trigger_digest") == version)
              or any(a == agent and d == version for a, d in existing.alternatives)):
            return "duplicate", existing
        # Here a slot holding another version's result, once the trigger is in, is a finished record's (a running
        # one lets this result replace it): this one is late, not a duplicate of it (black-box pass 20A, F3: a
        # result of the trigger's version, read after a "trigger never arrived" finish, was kept nowhere).
        # Finished (or being cancelled) without this agent's result: keep it aside, once.
        kept = self.keep_late(workflow, workflow_id, agent, result, after_finish_of(existing),
                              once=per_version(str(version)) if late_once_per_version else None)
        return ("late", kept) if kept is not None else ("duplicate", existing)  # None: kept by an earlier delivery

    def keep_late(self, workflow: str, workflow_id: str, agent: str | None, entry: dict[str, Any],
                  reason: str, *, once: str | None = None) -> WorkflowRecord | None:
        """Keep ``entry`` (a result, an answer, a cancel: ``agent`` None) aside with the reason it decided nothing:
        once per event (per ``once`` when given: ``layout.per_version``), at most ``MAX_LATE`` per record. Its
        item ``<workflow>#late_<agent>~<e>`` with the whole entry first (a redelivery writes it again), then the
        header's marker ``late_<agent>~<e>`` (its reason, event and time: the once-and-at-most condition). The
        record with it (the header's view); None when an earlier delivery of the event kept it already.
        ``KeptAsideFull`` (a poison message: dead-lettered with ``reason``) when the record holds ``MAX_LATE``
        entries aside and not this one; its item is removed again."""
        name = late_key(agent, once if once is not None else str(entry.get("event_id", "")))
        stored = compact_slot(workflow_id, agent, entry, workflow) if agent else dict(entry)
        item_key = self._key(late_sort_key(workflow, name), workflow_id)
        value = {**stored, "late_reason": reason}
        if once is None:
            self.client.put_item(TableName=self.workflow_table,
                                 Item={**item_key, RESULT_ATTRIBUTE: to_attribute(value)})
        # Kept once per ``once``: a later publication leaves the first's item, which the marker names, as it is.
        elif (first := self._put_first(item_key, value, f"workflow {workflow_id!r}: the item of {name}")) is not None:
            entry, reason = first, str(first.get("late_reason") or reason)
        x = _Expression()
        late = x.name(name)
        count = x.name(LATE_COUNT)
        marker = {"late_reason": reason, **{key: entry[key] for key in ("event_id", "received_at") if entry.get(key)}}
        update = f"SET {late} = {x.value(marker)} ADD {count} {x.value(1)}"
        condition = (f"attribute_not_exists({late}) AND "
                     f"(attribute_not_exists({count}) OR {count} < {x.value(MAX_LATE)})")
        record = self._update(workflow, workflow_id, x, update, condition)
        if record is not None:
            return record
        existing = self.load(workflow, workflow_id)
        if existing is not None and name in existing.late_results:
            return None
        self.client.delete_item(TableName=self.workflow_table, Key=item_key)  # full: not kept after all
        raise KeptAsideFull(reason, existing)

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
