"""Reading the workflow table: whole records (``load``, ``find``, ``records``: a header and the items beside it, as
``layout.py`` lays them out), the workflows waiting for a person (``waiting``: the census' and ``agentbus pending``'s
read, from the waiting index and the headers in bulk), status views (``view``, ``get``: ``agentbus status`` and
``trace``) and a main table's row (``get_row``). ``WorkflowStore`` (``store.py``) adds the writes to these reads."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from functions.common.backoff import backoff_ceiling
from functions.common.dead_letters import read_json
from functions.common.spec import WAITING_ATTRIBUTE, WAITING_INDEX, Manifest, Workflow, WorkflowStatus
from functions.coordinator.attributes import from_attribute
from functions.coordinator.deadlines import schedule_name as derived_schedule_name
from functions.coordinator.layout import (
    CANCEL_LATE,
    CANCEL_REQUEST,
    ITEM_MARK,
    ITEM_RANGE_END,
    LATE_MARK,
    LATE_PREFIX,
    PROJECTION_ERROR,
    REFUSED_COUNT,
    REFUSED_PREFIX,
    RESULT_ATTRIBUTE,
    RESULT_PREFIX,
    SORT_KEY,
    TRIGGER_APART,
    TRIGGER_ATTRIBUTE,
    VERSION_MARK,
    expand_outcome,
    expand_slot,
    late_sort_key,
    result_sort_key,
    trigger_sort_key,
)
from functions.coordinator.outcome import derived_outcome, timings
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

# ``waiting`` reads the waiting headers with BatchGetItem: at most this many keys per call (DynamoDB's limit).
BATCH_GET_KEYS = 100
# Keys a BatchGetItem call left unprocessed (throttling, its 16 MB response limit) are asked for again, after a
# back-off of up to ``BATCH_GET_BACKOFF_S * 2**(n - 1)`` seconds before retry n (full jitter, at most
# ``BATCH_GET_BACKOFF_MAX_S``), this many calls in all; still unread after them, ``waiting`` fails naming how many
# (DynamoDB's own advice: back off exponentially, since an immediate retry of throttled keys is throttled again).
BATCH_GET_ATTEMPTS = 6
BATCH_GET_BACKOFF_S = 0.1
BATCH_GET_BACKOFF_MAX_S = 1.0


def _late_entry(workflow_id: str, key: str, value: dict[str, Any], workflow: str) -> dict[str, Any]:
    """A kept-aside entry as ``status`` shows it: a result with its agent back, or a cancel (``agent`` None)."""
    agent = key[len(LATE_PREFIX):].partition(LATE_MARK)[0]
    if agent == CANCEL_LATE:
        return {"agent": None, "kind": "cancel", **value}
    return expand_slot(workflow_id, agent, value, workflow)


class WaitingViews(list[dict[str, Any]]):
    """``WorkflowStore.waiting``'s views, a list; ``unfinished``: the workflows whose waiting headers were not all
    read because the time ran out (``out_of_time``), so their views are some of those waiting, not all."""

    unfinished: tuple[str, ...] = ()

    @property
    def partial(self) -> bool:
        return bool(self.unfinished)


class WorkflowReader:
    """The workflow table's reads (and a main table's row), for the coordinator and the operator CLI (``get``,
    ``find``, ``waiting``); ``WorkflowStore`` adds the coordinator's writes.

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

    def _workflow(self, name: str) -> Workflow | None:
        try:
            return self.manifest.workflow(name)
        except KeyError:
            return None

    def _id_field(self, workflow: str) -> str:
        known = self._workflow(workflow)
        return known.id_field if known else "workflow_id"

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
                self.sleep(random.uniform(0, backoff_ceiling(attempt, BATCH_GET_BACKOFF_S, BATCH_GET_BACKOFF_MAX_S)))
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
            trigger=read_json(trigger_text) if isinstance(trigger_text, str) else None,
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
