"""The workflow table and the orders table (DynamoDB, low-level client: thread-safe, no boto3 resources).

Workflow table, partition key ``workflow_id`` (S), one item per workflow:

=========================  ====  ===================================================================
attribute                  type  meaning
=========================  ====  ===================================================================
``workflow_id``            S     the workflow id (the order id for ``order-fulfillment``)
``workflow``               S     the manifest's workflow name
``status``                 S     ``RUNNING`` | ``COMPLETED`` | ``REJECTED`` | ``TIMED_OUT``
``version``                N     +1 on every write that can change the decision (trigger, result); the
                                 finish is conditional on it, so an outcome always matches its record
``order``                  M     the trigger's detail as received (even when invalid); set once, by the
                                 first trigger delivery (``attribute_not_exists(order)``)
``order_error``            S     why the trigger detail is invalid (names the bad fields); absent if valid
``trigger_received_at``    S     when the coordinator first received the trigger (ISO-8601 UTC, ms)
``trigger_event_id``       S     the id of that first trigger event
``deadline_at``            S     when the deadline schedule fires
``schedule_name``          S     the EventBridge Scheduler schedule (in the settings' schedule group);
                                 absent when it is the derived ``logic.schedule_name(workflow, id)``
``result_<agent>``         M     that agent's ``AgentResult`` detail plus ``detail_type``, ``event_id``,
                                 ``received_at``; written once (``attribute_not_exists``) while RUNNING.
                                 Stored compact: ``workflow``, ``workflow_id``, ``order_id``, ``agent`` and
                                 ``idempotency_key`` are left out when they equal what the item gives
                                 (its ``workflow``, its key, the slot's name: ``<workflow_id>:<agent>``), and
                                 put back on reading. Every write counts its size in 1 KB write units, so
                                 nothing that can be derived is stored
``late_<agent>``           M     a result that arrived after the finish: kept for the record, decides nothing
                                 (stored compact like a result slot)
``outcome``                M     the ``WorkflowOutcome`` detail, stored by the finish, without its
                                 ``results`` (they are the ``result_<agent>`` slots, which cannot change
                                 once the finish has won: it is conditional on ``version``, which every
                                 result write bumps, and slots are only written while RUNNING) and
                                 without ``workflow``, ``workflow_id``, ``order_id``, ``idempotency_key``
                                 when they equal the item's ``workflow``, ``<workflow_id>``,
                                 ``<workflow_id>:<status>``. Reading puts the
                                 detail back together, always in the same key order, so every
                                 publication sends exactly the detail the finish built. (A record
                                 written before this layout, whose outcome has ``results``, is read as is.)
``reason``                 S     why the workflow was rejected or timed out
``finished_at``            S     when the finish won
``published``              BOOL  the outcome event was accepted by EventBridge
``published_at``           S
``publish_lease_until``    N     epoch ms until which ``publish_lease_owner`` may publish; a final,
``publish_lease_owner``    S     unpublished record with an expired lease is published by the next message
=========================  ====  ===================================================================

Numbers are stored as DynamoDB numbers and read back as ``int`` or ``float``.

Orders table, partition key ``order_id`` (S): each order's final record (see ``logic.order_record``),
written with an idempotent put by whoever publishes the outcome.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from functions.common.models import AgentResult, WorkflowOutcome
from functions.common.publisher import to_json
from functions.coordinator.logic import WorkflowRecord, missing_agents, timings
from functions.coordinator.logic import schedule_name as derived_schedule_name
from functions.manifest import MANIFEST, Manifest, WorkflowStatus

RESULT_PREFIX = "result_"
LATE_PREFIX = "late_"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_attribute(value: Any) -> dict[str, Any]:
    """A plain JSON-like value as a DynamoDB attribute value (floats become exact decimals)."""
    plain = json.loads(to_json(value), parse_float=Decimal)
    return _serializer.serialize(plain)


def from_attribute(value: dict[str, Any]) -> Any:
    return _plain(_deserializer.deserialize(value))


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


# The key order of a result slot and of an outcome as the coordinator builds them (``logic.on_result``,
# ``logic.build_outcome``): reading puts elided fields back in this order.
SLOT_KEYS = (*AgentResult.model_fields, "detail_type", "event_id", "received_at")
OUTCOME_KEYS = tuple(WorkflowOutcome.model_fields)


def _slot_defaults(workflow_id: str, agent: str, workflow: str | None = None) -> dict[str, str]:
    defaults = {"workflow_id": workflow_id, "order_id": workflow_id, "agent": agent,
                "idempotency_key": f"{workflow_id}:{agent}"}
    return {**defaults, "workflow": workflow} if workflow else defaults


def _outcome_defaults(workflow_id: str, status: Any, workflow: str | None = None) -> dict[str, str]:
    defaults = {"workflow_id": workflow_id, "order_id": workflow_id, "idempotency_key": f"{workflow_id}:{status}"}
    return {**defaults, "workflow": workflow} if workflow else defaults


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


def compact_slot(workflow_id: str, agent: str, result: dict[str, Any], workflow: str | None = None
                 ) -> dict[str, Any]:
    """What a ``result_<agent>`` / ``late_<agent>`` slot stores of a result (``workflow``: the record's)."""
    return _elide(result, _slot_defaults(workflow_id, agent, workflow))


def expand_slot(workflow_id: str, agent: str, stored: dict[str, Any], workflow: str | None = None
                ) -> dict[str, Any]:
    return _restore(stored, _slot_defaults(workflow_id, agent, workflow), SLOT_KEYS)


def compact_outcome(workflow_id: str, outcome: dict[str, Any], workflow: str | None = None) -> dict[str, Any]:
    """What ``outcome`` stores of a ``WorkflowOutcome`` detail: no ``results``, no derivable ids."""
    stored = {key: item for key, item in outcome.items() if key != "results"}
    return _elide(stored, _outcome_defaults(workflow_id, outcome.get("status"), workflow))


def expand_outcome(workflow_id: str, stored: dict[str, Any], results: dict[str, dict[str, Any]],
                   workflow: str | None = None) -> dict[str, Any]:
    """The ``WorkflowOutcome`` detail back from its stored part and the record's (expanded) result slots."""
    if "results" in stored:  # stored whole (before the compact layout)
        return stored
    return _restore(stored, _outcome_defaults(workflow_id, stored.get("status"), workflow), OUTCOME_KEYS,
                    extra={"results": dict(sorted(results.items()))})


def _is_conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


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


class WorkflowStore:
    """The coordinator's state, and the operator CLI's read side (``get``)."""

    def __init__(self, client: Any, workflow_table: str, orders_table: str, manifest: Manifest = MANIFEST):
        self.client = client
        self.workflow_table = workflow_table
        self.orders_table = orders_table
        self.manifest = manifest

    def _key(self, workflow_id: str) -> dict[str, Any]:
        return {"workflow_id": {"S": workflow_id}}

    def _update(self, workflow_id: str, expression: _Expression, update: str, condition: str | None,
                return_values: str = "ALL_NEW") -> WorkflowRecord | None:
        """Run one update; None when its condition did not hold."""
        params: dict[str, Any] = {
            "TableName": self.workflow_table,
            "Key": self._key(workflow_id),
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
        return self._record(attributes) if attributes else WorkflowRecord(workflow_id=workflow_id)

    # writes -----------------------------------------------------------------------------------------

    def open(self, workflow: str, workflow_id: str, *, order: dict[str, Any], order_error: str | None,
             received_at: str, event_id: str, deadline_at: str, schedule_name: str
             ) -> tuple[bool, WorkflowRecord]:
        """Record the trigger once; results may have created the item already. Returns (first time?, record)."""
        x = _Expression()
        sets = [
            f"{x.name('workflow')} = if_not_exists({x.name('workflow')}, {x.value(workflow)})",
            f"{x.name('status')} = if_not_exists({x.name('status')}, {x.value(WorkflowStatus.RUNNING.value)})",
            f"{x.name('order')} = {x.value(order)}",
            f"{x.name('trigger_received_at')} = {x.value(received_at)}",
            f"{x.name('trigger_event_id')} = {x.value(event_id)}",
            f"{x.name('deadline_at')} = {x.value(deadline_at)}",
        ]
        if schedule_name != derived_schedule_name(workflow, workflow_id):
            sets.append(f"{x.name('schedule_name')} = {x.value(schedule_name)}")
        if order_error:
            sets.append(f"{x.name('order_error')} = {x.value(order_error)}")
        update = f"SET {', '.join(sets)} ADD {x.name('version')} {x.value(1)}"
        # Fault 1: a duplicate trigger (same id, another event id) finds the order there and changes nothing.
        record = self._update(workflow_id, x, update, f"attribute_not_exists({x.name('order')})")
        if record is not None:
            return True, record
        existing = self.load(workflow_id)
        if existing is None:
            raise RuntimeError(f"workflow {workflow_id!r}: trigger refused but no record found")
        return False, existing

    def record_result(self, workflow: str, workflow_id: str, agent: str, result: dict[str, Any]
                      ) -> tuple[str, WorkflowRecord]:
        """Count an agent's result once: ``recorded``, ``duplicate`` or ``late`` (after the finish)."""
        x = _Expression()
        slot = x.name(RESULT_PREFIX + agent)
        status = x.name("status")
        running = x.value(WorkflowStatus.RUNNING.value)
        update = (
            f"SET {slot} = {x.value(compact_slot(workflow_id, agent, result, workflow))}, "
            f"{x.name('workflow')} = if_not_exists({x.name('workflow')}, {x.value(workflow)}), "
            f"{status} = if_not_exists({status}, {running}) "
            f"ADD {x.name('version')} {x.value(1)}"
        )
        # Fault 2: the slot is written once, whoever comes first (even before the trigger).
        condition = f"attribute_not_exists({slot}) AND (attribute_not_exists({status}) OR {status} = {running})"
        record = self._update(workflow_id, x, update, condition)
        if record is not None:
            return "recorded", record
        existing = self.load(workflow_id)
        if existing is None:
            raise RuntimeError(f"workflow {workflow_id!r}: result refused but no record found")
        if agent in existing.results:
            return "duplicate", existing
        # Finished without this agent's result: keep it aside, once.
        x = _Expression()
        late = x.name(LATE_PREFIX + agent)
        stored = compact_slot(workflow_id, agent, result, workflow)
        record = self._update(workflow_id, x, f"SET {late} = {x.value(stored)}",
                              f"attribute_not_exists({late})")
        return ("late", record) if record is not None else ("duplicate", existing)

    def finish(self, workflow_id: str, *, expected_version: int, status: WorkflowStatus, outcome: dict[str, Any],
               finished_at: str, lease_until_ms: int, lease_owner: str) -> WorkflowRecord | None:
        """RUNNING -> final, storing the outcome. Exactly one caller wins; the others get None (fault 3)."""
        x = _Expression()
        sets = [
            f"{x.name('status')} = {x.value(status.value)}",
            # The results are the record's slots already (the finish is conditional on their version).
            # Its workflow is the item's (a workflow id is the item's key, so it belongs to one workflow):
            # left out, and put back from the item on reading.
            f"{x.name('outcome')} = {x.value(compact_outcome(workflow_id, outcome, outcome.get('workflow')))}",
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
        return self._update(workflow_id, x, f"SET {', '.join(sets)}", condition)

    def claim_publication(self, workflow_id: str, *, now_ms: int, lease_until_ms: int,
                          lease_owner: str) -> WorkflowRecord | None:
        """Take the right to publish a final, unpublished outcome whose lease has expired (fault 5)."""
        x = _Expression()
        lease = x.name("publish_lease_until")
        update = f"SET {lease} = {x.value(lease_until_ms)}, {x.name('publish_lease_owner')} = {x.value(lease_owner)}"
        condition = (
            f"{x.name('published')} = {x.value(False)} "
            f"AND (attribute_not_exists({lease}) OR {lease} < {x.value(now_ms)})"
        )
        return self._update(workflow_id, x, update, condition)

    def release_publication(self, workflow_id: str, lease_owner: str) -> None:
        x = _Expression()
        update = f"SET {x.name('publish_lease_until')} = {x.value(0)}"
        owner = x.name("publish_lease_owner")
        condition = f"{owner} = {x.value(lease_owner)} AND {x.name('published')} = {x.value(False)}"
        self._update(workflow_id, x, update, condition, return_values="NONE")

    def mark_published(self, workflow_id: str, published_at: str) -> None:
        x = _Expression()
        update = f"SET {x.name('published')} = {x.value(True)}, {x.name('published_at')} = {x.value(published_at)}"
        self._update(workflow_id, x, update, f"attribute_exists({x.name('outcome')})", return_values="NONE")

    def put_order(self, item: dict[str, Any]) -> None:
        """The order's final record: derived from the stored outcome, so repeating it writes the same item."""
        self.client.put_item(
            TableName=self.orders_table,
            Item={key: to_attribute(value) for key, value in item.items()},
        )

    # reads ------------------------------------------------------------------------------------------

    def load(self, workflow_id: str) -> WorkflowRecord | None:
        response = self.client.get_item(TableName=self.workflow_table, Key=self._key(workflow_id),
                                        ConsistentRead=True)
        item = response.get("Item")
        return self._record(item) if item else None

    def get_order(self, order_id: str) -> dict[str, Any] | None:
        response = self.client.get_item(TableName=self.orders_table, Key={"order_id": {"S": order_id}},
                                        ConsistentRead=True)
        item = response.get("Item")
        return {key: from_attribute(value) for key, value in item.items()} if item else None

    def get(self, workflow_id: str) -> dict[str, Any] | None:
        """A plain status view of one workflow (for ``agentbus status`` / ``trace``); None if unknown.

        Keys: ``workflow_id``, ``workflow``, ``status`` (RUNNING|COMPLETED|REJECTED|TIMED_OUT), ``results``
        ({agent: AgentResult detail + detail_type, event_id, received_at}), ``missing`` (required agents
        without a result; for a finished workflow, as the outcome recorded them), ``reason``, ``timings``
        (the outcome's, or partial while running), ``order`` (the trigger detail), ``order_error``,
        ``trigger_received_at``, ``deadline_at``, ``schedule_name``, ``finished_at``, ``published``,
        ``published_at``, ``late_results`` (list of results that came after the finish, each naming its
        ``agent``) and ``outcome`` (the stored ``WorkflowOutcome`` detail, None while running).
        """
        record = self.load(workflow_id)
        if record is None:
            return None
        try:
            workflow = self.manifest.workflow(record.workflow) if record.workflow else None
        except KeyError:
            workflow = None
        if record.outcome is not None:
            missing = list(record.outcome.get("missing", []))
            view_timings = record.outcome.get("timings")
        else:
            missing = missing_agents(record, workflow) if workflow else []
            view_timings = timings(record, None)
        return {
            "workflow_id": record.workflow_id,
            "workflow": record.workflow,
            "status": record.status.value,
            "results": record.results,
            "missing": missing,
            "reason": record.reason,
            "timings": view_timings,
            "order": record.order,
            "order_error": record.order_error,
            "trigger_received_at": record.trigger_received_at,
            "deadline_at": record.deadline_at,
            "schedule_name": record.schedule_name,
            "finished_at": record.finished_at,
            "published": record.published,
            "published_at": record.published_at,
            # Results that arrived after the finish: a list (each names its ``agent``), in arrival order.
            "late_results": sorted(record.late_results.values(), key=lambda r: str(r.get("received_at", ""))),
            "outcome": record.outcome,
        }

    def _record(self, item: dict[str, Any]) -> WorkflowRecord:
        data = {key: from_attribute(value) for key, value in item.items()}
        workflow_id = data["workflow_id"]
        workflow = data.get("workflow")
        results = {k[len(RESULT_PREFIX):]: expand_slot(workflow_id, k[len(RESULT_PREFIX):], v, workflow)
                   for k, v in sorted(data.items()) if k.startswith(RESULT_PREFIX)}
        outcome = data.get("outcome")
        return WorkflowRecord(
            workflow_id=workflow_id,
            workflow=workflow,
            status=WorkflowStatus(data.get("status", WorkflowStatus.RUNNING.value)),
            version=int(data.get("version", 0)),
            order=data.get("order"),
            order_error=data.get("order_error"),
            trigger_received_at=data.get("trigger_received_at"),
            trigger_event_id=data.get("trigger_event_id"),
            deadline_at=data.get("deadline_at"),
            schedule_name=data.get("schedule_name") or (derived_schedule_name(workflow, workflow_id)
                                                        if workflow else None),
            results=results,
            late_results={k[len(LATE_PREFIX):]: expand_slot(workflow_id, k[len(LATE_PREFIX):], v, workflow)
                          for k, v in sorted(data.items()) if k.startswith(LATE_PREFIX)},
            outcome=expand_outcome(workflow_id, outcome, results, workflow) if outcome is not None else None,
            reason=data.get("reason"),
            finished_at=data.get("finished_at"),
            published=bool(data.get("published", False)),
            published_at=data.get("published_at"),
        )
