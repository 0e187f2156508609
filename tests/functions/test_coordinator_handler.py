"""The coordinator handler on moto: real tables, bus, queues and schedules; events as Lambda delivers them.

moto in-process is not thread-safe (see DESIGN.md), so the concurrency tests hand each built handler
clients wrapped in ``Serialized``: every call to moto takes one lock, while the handlers' own logic
runs in parallel between calls. That is what the local runtime does too; on AWS, DynamoDB itself
serializes writes to one item.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from agentbus.cli import status_notes
from agentbus.local.lambda_events import (
    LambdaContext,
    eventbridge_envelope,
    sqs_event,
    sqs_event_from_messages,
    sqs_record,
)
from agentbus.operations import render_trace
from functions.common.clients import Clients
from functions.common.dead_letters import REASON_ATTRIBUTE, PoisonMessage
from functions.common.digest import trigger_digest
from functions.common.ids import result_idempotency_key
from functions.common.models import BusEvent, WorkflowOutcome
from functions.common.publisher import EventPublisher
from functions.coordinator.deadlines import DeadlineScheduler, at_expression, refire_name, schedule_name
from functions.coordinator.handler import build
from functions.coordinator.logic import PUBLISH_LEASE_MARGIN_S, Coordinator
from functions.coordinator.store import WorkflowStore
from functions.coordinator.times import parse_iso
from functions.manifest import COORDINATOR_SOURCE, DEADLINE_DETAIL_TYPE, DEADLINE_SOURCE
from functions.orders.workflow import PRODUCER_SOURCE
from tests.conftest import load_detail, load_entries, settings_for, workflow_store
from tests.pinned import MANIFEST  # the shipped workflows with the agents these tests name (not any a user adds)

WORKFLOW = MANIFEST.workflow("order-fulfillment")
ORDER_ID = "ord-1001"
SUCCESS = {"fraud": "Order Verified", "inventory": "Items Reserved", "shipping": "Shipping Quoted"}
FAILURE = {"fraud": "Order Flagged", "inventory": "Items Unavailable", "shipping": "Shipping Unavailable"}
TERMINAL = set(WORKFLOW.terminal_detail_types.values())


# --- helpers ----------------------------------------------------------------------------------------

class Serialized:
    """A boto3 client whose every call goes through one lock (moto is not thread-safe).

    ``before(operation, kwargs)`` runs outside the lock, so a test can hold a thread at a chosen call.
    """

    def __init__(self, client: Any, lock: threading.Lock, before=None, after=None):
        self._client, self._lock, self._before, self._after = client, lock, before, after

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            if self._before:
                self._before(name, kwargs)
            with self._lock:
                response = attribute(*args, **kwargs)
            if self._after:
                self._after(name, kwargs)
            return response

        return call


def is_finish(operation: str, kwargs: dict) -> bool:
    """The coordinator's finish: the one update that stores the outcome."""
    return operation == "update_item" and "outcome" in kwargs.get("ExpressionAttributeNames", {}).values()


class OrderStore:
    """The store, read for the order workflow (the tests' workflow)."""

    def __init__(self, store: WorkflowStore):
        self.store = store
        self.workflow_table = store.workflow_table

    def load(self, workflow_id: str):
        return self.store.load(WORKFLOW.name, workflow_id)

    def get(self, workflow_id: str):
        return self.store.get(WORKFLOW.name, workflow_id)

    def get_order(self, order_id: str):
        return self.store.get_row("orders", {"order_id": order_id})


def record_key(workflow_id: str = ORDER_ID) -> dict:
    return {"workflow_id": {"S": workflow_id}, "workflow": {"S": WORKFLOW.name}}


class Harness:
    def __init__(self, session, resources):
        self.session = session
        self.resources = resources
        # One record at a time: moto in-process is not thread-safe, and several tests feed a batch in a
        # chosen order. Concurrent records are covered on the serialized endpoint (tests/integration).
        self.settings = settings_for(resources, "coordinator", MANIFEST, record_concurrency=1)
        self.clients = Clients.create(session)
        self.queue_arn = resources.consumers["coordinator"].queue_arn
        self.store = OrderStore(workflow_store(self.clients.dynamodb, resources, MANIFEST))
        self.handler = build(self.settings, self.clients)
        # Deadlines are delivered by a coordinator running when they are due: an hour on.
        self.later = build(self.settings, self.clients, clock=lambda: datetime.now(UTC) + timedelta(hours=1))
        # Capture every event the coordinator publishes, through a rule on the bus (as a consumer would).
        sqs, events = self.clients.sqs, self.clients.events
        self.capture_url = sqs.create_queue(QueueName="capture-coordinator")["QueueUrl"]
        capture_arn = sqs.get_queue_attributes(QueueUrl=self.capture_url,
                                               AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="capture-coordinator", EventBusName=resources.bus_name,
                        EventPattern=json.dumps({"source": [COORDINATOR_SOURCE]}))
        events.put_targets(Rule="capture-coordinator", EventBusName=resources.bus_name,
                           Targets=[{"Id": "capture", "Arn": capture_arn}])
        self.published: list[dict] = []

    def build(self, clients: Clients | None = None, *, later: bool = False):
        clock = (lambda: datetime.now(UTC) + timedelta(hours=1)) if later else (lambda: datetime.now(UTC))
        return build(self.settings, clients or self.clients, clock=clock)

    def deliver(self, *envelopes: dict, handler=None, receive_count: int = 1) -> dict:
        """Deliver as Lambda does; a batch holding a deadline runs when the deadline is due (``later``)."""
        event = sqs_event([sqs_record(e, self.queue_arn, receive_count=receive_count) for e in envelopes])
        due = any(e.get("detail-type") == DEADLINE_DETAIL_TYPE for e in envelopes)
        return (handler or (self.later if due else self.handler))(event, LambdaContext("coordinator"))

    def outcomes(self) -> list[dict]:
        """Every event the coordinator published so far (envelopes), in order."""
        while True:
            messages = self.clients.sqs.receive_message(QueueUrl=self.capture_url, MaxNumberOfMessages=10)
            if not messages.get("Messages"):
                return self.published
            for message in messages["Messages"]:
                self.published.append(json.loads(message["Body"]))
                self.clients.sqs.delete_message(QueueUrl=self.capture_url, ReceiptHandle=message["ReceiptHandle"])

    def terminal(self) -> list[dict]:
        return [e for e in self.outcomes() if e["detail-type"] in TERMINAL]

    def schedule(self, workflow_id: str = ORDER_ID) -> dict | None:
        try:
            return self.clients.scheduler.get_schedule(Name=schedule_name(WORKFLOW.name, workflow_id),
                                                       GroupName=self.settings.schedule_group)
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ResourceNotFoundException"
            return None

    def due(self, workflow_id: str = ORDER_ID) -> datetime:
        """The workflow's deadline as stored."""
        due = parse_iso(self.store.load(workflow_id).deadline_at)
        assert due is not None
        return due

    def item_keys(self, workflow_id: str = ORDER_ID) -> set[str]:
        """The sort keys of every item the workflow table holds for ``workflow_id`` (its header, results...)."""
        items = self.clients.dynamodb.query(TableName=self.store.workflow_table,
                                            KeyConditionExpression="workflow_id = :id",
                                            ExpressionAttributeValues={":id": {"S": workflow_id}})["Items"]
        return {item["workflow"]["S"] for item in items}

    def schedules(self) -> dict[str, str]:
        """Every schedule of the group: its expression by its name."""
        group = self.settings.schedule_group
        return {s["Name"]: self.clients.scheduler.get_schedule(Name=s["Name"], GroupName=group)["ScheduleExpression"]
                for s in self.clients.scheduler.list_schedules(GroupName=group)["Schedules"]}

    def dead_letters(self) -> list[dict]:
        response = self.clients.sqs.receive_message(
            QueueUrl=self.resources.consumers["coordinator"].dlq_url, MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
        )
        return response.get("Messages", [])


@pytest.fixture
def h(aws):
    session, resources = aws
    return Harness(session, resources)


def trigger(detail: dict | None = None, event_id: str | None = None) -> dict:
    return eventbridge_envelope("Order Placed", PRODUCER_SOURCE, detail or load_detail("order-placed.json"),
                                event_id=event_id)


def version_of(workflow_id: str = ORDER_ID) -> str:
    """The version of the sample order under ``workflow_id`` (what ``trigger`` puts for that id)."""
    detail = load_detail("order-placed.json")
    return trigger_digest(detail if workflow_id == detail["order_id"] else detail | {"order_id": workflow_id})


def result(agent: str, ok: bool = True, workflow_id: str = ORDER_ID, event_id: str | None = None,
           duration_ms: float = 120.0, started_at: str = "2026-11-26T11:07:08.123Z", version: str | None = None,
           **overrides) -> dict:
    version = version or version_of(workflow_id)
    detail = {
        "workflow": WORKFLOW.name, "workflow_id": workflow_id, "agent": agent,
        "outcome": "success" if ok else "failure", "reason": None if ok else f"{agent} says no",
        "data": {"agent": agent}, "started_at": started_at, "finished_at": "2026-11-26T11:07:08.500Z",
        "duration_ms": duration_ms, "idempotency_key": result_idempotency_key(workflow_id, agent, version),
        "trigger_digest": version,
    }
    detail.update(overrides.pop("detail", {}))
    source = overrides.pop("source", f"agentbus.agent.{agent}")
    detail_type = overrides.pop("detail_type", (SUCCESS if ok else FAILURE)[agent])
    return eventbridge_envelope(detail_type, source, detail, event_id=event_id)


def deadline(workflow_id: str = ORDER_ID) -> dict:
    entry = load_entries("workflow-deadline-reached.json")[0]
    detail = json.loads(entry["Detail"]) | {"workflow_id": workflow_id}
    return eventbridge_envelope(entry["DetailType"], entry["Source"], detail)


# --- the happy path ---------------------------------------------------------------------------------

def test_happy_path_writes_order_and_publishes_one_order_completed(h):
    # The trigger and the results travel the real way: put on the bus, routed by the manifest's rules
    # to the coordinator's queue, received and turned into the event Lambda's poller delivers.
    events, sqs = h.clients.events, h.clients.sqs
    assert not events.put_events(Entries=load_entries("order-placed.json"))["FailedEntryCount"]
    for agent, detail_type in SUCCESS.items():
        envelope = result(agent)
        events.put_events(Entries=[{"EventBusName": h.resources.bus_name, "Source": envelope["source"],
                                    "DetailType": detail_type, "Detail": json.dumps(envelope["detail"])}])
    queue_url = h.resources.consumers["coordinator"].queue_url
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 4
    messages.sort(key=lambda m: json.loads(m["Body"])["detail-type"] != "Order Placed")  # trigger first

    response = h.handler(sqs_event_from_messages(messages, h.queue_arn), LambdaContext("coordinator"))

    assert response == {"batchItemFailures": []}
    terminal = h.terminal()
    assert [e["detail-type"] for e in terminal] == ["Order Completed"]
    outcome = WorkflowOutcome.model_validate(terminal[0]["detail"])
    assert outcome.status == "COMPLETED" and outcome.order_id == ORDER_ID
    assert outcome.idempotency_key == f"{ORDER_ID}:COMPLETED"
    assert set(outcome.results) == {"fraud", "inventory", "shipping"} and outcome.missing == []
    assert outcome.results["inventory"]["detail_type"] == "Items Reserved"
    timings = outcome.timings
    assert timings["agents"] == {"fraud": 120, "inventory": 120, "shipping": 120}
    assert timings["agents_sum_ms"] == 360 and timings["slowest_agent_ms"] == 120
    assert timings["started_at"] == "2026-11-26T11:07:08.123Z"  # earliest of trigger receipt and agent starts
    assert timings["duration_ms"] == pytest.approx(
        (datetime.fromisoformat(timings["finished_at"]) - datetime.fromisoformat(timings["started_at"]))
        .total_seconds() * 1000, abs=1)

    order = h.store.get_order(ORDER_ID)
    assert order["status"] == "COMPLETED" and order["customer_id"] == "cus-42" and order["currency"] == "EUR"
    assert order["total"] == 1349 and len(order["items"]) == 2
    assert order["results"]["fraud"] == {"detail_type": "Order Verified", "outcome": "success", "reason": None,
                                         "duration_ms": 120}
    assert order["timings"] == outcome.timings

    view = h.store.get(ORDER_ID)
    assert view["status"] == "COMPLETED" and view["published"] is True and view["missing"] == []
    assert view["outcome"] == terminal[0]["detail"]


def test_status_view_while_running_lists_missing_agents(h):
    h.deliver(trigger(), result("fraud"))
    view = h.store.get(ORDER_ID)
    assert view["status"] == "RUNNING"
    assert view["missing"] == ["inventory", "shipping"]
    assert set(view["results"]) == {"fraud"} and view["results"]["fraud"]["outcome"] == "success"
    assert view["trigger"]["order_id"] == ORDER_ID and view["trigger_received_at"]
    assert view["timings"]["agents"] == {"fraud": 120} and view["finished_at"] is None
    assert h.store.get("ord-unknown") is None


# --- schedules --------------------------------------------------------------------------------------

def test_schedule_created_on_trigger_and_deleted_on_finish(h):
    before = datetime.now(UTC)
    h.deliver(trigger())
    schedule = h.schedule()
    assert schedule is not None
    assert schedule["GroupName"] == h.settings.schedule_group
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["ActionAfterCompletion"] == "DELETE"
    expression = schedule["ScheduleExpression"]
    at = datetime.strptime(expression, "at(%Y-%m-%dT%H:%M:%S)").replace(tzinfo=UTC)
    assert before + timedelta(seconds=WORKFLOW.deadline_s - 1) <= at <= datetime.now(UTC) + timedelta(
        seconds=WORKFLOW.deadline_s + 1)
    target = schedule["Target"]
    assert target["Arn"] == h.resources.bus_arn and target["RoleArn"] == h.resources.scheduler_role_arn
    assert target["EventBridgeParameters"] == {"DetailType": DEADLINE_DETAIL_TYPE, "Source": DEADLINE_SOURCE}
    assert json.loads(target["Input"]) == {"workflow": WORKFLOW.name, "workflow_id": ORDER_ID}
    assert h.store.get(ORDER_ID)["schedule_name"] == schedule["Name"]
    raw = h.clients.dynamodb.get_item(TableName=h.store.workflow_table, Key=record_key())["Item"]
    assert "schedule_name" not in raw  # the name derived from workflow and id: written in no write unit

    h.deliver(*(result(agent) for agent in SUCCESS))
    assert h.schedule() is None


def test_deadline_seconds_setting_overrides_the_workflow_deadline(h):
    from dataclasses import replace

    handler = build(replace(h.settings, deadline_seconds=7), h.clients)
    before = datetime.now(UTC)
    h.deliver(trigger(), handler=handler)
    at = datetime.strptime(h.schedule()["ScheduleExpression"], "at(%Y-%m-%dT%H:%M:%S)").replace(tzinfo=UTC)
    assert before + timedelta(seconds=6) <= at <= datetime.now(UTC) + timedelta(seconds=8)


def test_schedule_name_for_long_or_odd_ids_is_valid_and_distinct(h):
    ids = ["x" * 128, "ord/1001+@=", "ord:1001"]  # odd but allowed characters (functions/common/ids.py)
    for workflow_id in ids:
        h.deliver(trigger(load_detail("order-placed.json") | {"order_id": workflow_id}))
        assert h.schedule(workflow_id) is not None  # moto stored it under the derived name
    names = {schedule_name(WORKFLOW.name, i) for i in ids}
    assert len(names) == 3
    at = [datetime(2026, 12, 3, 22, minute, tzinfo=UTC) for minute in (1, 2)]
    again = {refire_name(name, moment) for name in names | {schedule_name(WORKFLOW.name, ORDER_ID)} for moment in at}
    assert len(again) == 8 and not again & names
    assert all(len(name) <= 64 and re.fullmatch(r"_[0-9A-Za-z_.-]+", name) for name in again)


# --- fault 1: duplicate triggers --------------------------------------------------------------------

def test_fault_duplicate_trigger_in_one_batch_opens_one_workflow(h):
    first, second = trigger(event_id="evt-first"), trigger(event_id="evt-second")
    response = h.deliver(first, second)
    assert response == {"batchItemFailures": []}
    record = h.store.load(ORDER_ID)
    assert record.trigger_event_id == "evt-first"
    assert record.version == 1  # the second delivery changed nothing
    assert h.schedule() is not None


def test_fault_duplicate_trigger_apart_changes_nothing(h):
    h.deliver(trigger(event_id="evt-first"))
    opened = h.store.load(ORDER_ID)
    h.deliver(result("fraud"))
    h.deliver(trigger(event_id="evt-later"))
    record = h.store.load(ORDER_ID)
    assert record.trigger_event_id == "evt-first"
    assert record.trigger_received_at == opened.trigger_received_at
    assert record.deadline_at == opened.deadline_at  # a duplicate does not push the deadline back
    assert set(record.results) == {"fraud"} and record.status.value == "RUNNING"
    h.deliver(result("inventory"), result("shipping"))
    h.deliver(trigger(event_id="evt-after-finish"))
    assert [e["detail-type"] for e in h.terminal()] == ["Order Completed"]
    assert h.schedule() is None  # a duplicate after the finish does not bring the deadline back


def test_a_trigger_of_200_kb_is_kept_whole_in_its_own_item_and_the_workflow_finishes(h):
    # Another workflow's outcome used as a trigger easily passes 64 KB (each agent's data up to 16 KB stays in it);
    # the record keeps a trigger apart from its header, so up to 256 KiB is stored, not REJECTED for its size.
    detail = load_detail("order-placed.json") | {"notes": "n" * 200_000}
    digest = trigger_digest(detail)
    assert h.deliver(trigger(detail)) == {"batchItemFailures": []}
    h.deliver(*(result(agent, version=digest) for agent in SUCCESS))
    [outcome] = h.terminal()
    assert outcome["detail-type"] == "Order Completed", outcome["detail"].get("reason")
    record = h.store.load(ORDER_ID)
    assert record.trigger == detail and record.trigger_error is None


def test_a_deadline_of_a_workflow_no_longer_in_the_manifest_is_kept_saying_why_it_cannot_finish(h):
    # Code review bb12d #1: a workflow removed (or renamed) while requests were open; the README says to drain it.
    envelope = deadline()
    envelope["detail"]["workflow"] = "retired-workflow"
    h.deliver(envelope)
    [letter] = h.dead_letters()
    reason = letter["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
    assert reason.startswith("deadline for unknown workflow 'retired-workflow': it is not in the deployed manifest")
    assert "drain a workflow before removing it" in reason


def test_conflicting_version_is_refused_named_in_the_record_and_a_dead_letter_and_the_workflow_still_finishes(h):
    """Issue 10 case 1: the same order id with other contents. The record keeps the first version, names the
    other as refused (status view and a dead letter naming both versions), and stays readable: the stored
    version's results still finish it, and the other version's results do not count."""
    cheap = load_detail("order-placed.json")
    racks = cheap | {"items": [{"sku": "SKU-RACK", "quantity": 3, "unit_price": 4999.0}]}
    h.deliver(trigger(cheap, event_id="evt-cheap"))
    h.deliver(trigger(racks, event_id="evt-racks"))
    view = h.store.get(ORDER_ID)
    assert view["trigger_digest"] == trigger_digest(cheap)
    assert [r["trigger_digest"] for r in view["refused"]] == [trigger_digest(racks)]
    assert view["refused"][0]["event_id"] == "evt-racks"
    [letter] = h.dead_letters()
    reason = letter["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
    assert trigger_digest(cheap) in reason and trigger_digest(racks) in reason, reason
    h.deliver(trigger(racks, event_id="evt-racks-again"))  # refused again: one refusal kept per version
    assert len(h.store.get(ORDER_ID)["refused"]) == 1
    h.deliver(result("fraud", version=trigger_digest(racks)))  # acted on the refused version: not counted
    h.deliver(*(result(agent) for agent in SUCCESS))
    [completed] = h.terminal()
    assert completed["detail-type"] == "Order Completed"
    assert {r["trigger_digest"] for r in completed["detail"]["results"].values()} == {trigger_digest(cheap)}
    row = h.store.get_order(ORDER_ID)
    assert [(line["sku"], line["quantity"]) for line in row["items"]] == [
        (line["sku"], line["quantity"]) for line in cheap["items"]]


def test_results_of_two_versions_before_the_trigger_wait_for_it_and_the_stored_versions_count(h):
    """Before the trigger, nothing says which version counts: a result of another version than the one in the
    agent's slot is neither dropped nor allowed to replace it; it is kept beside the slot. Here the trigger
    brings the second version, whose result must then count (it used to replace the first version's result
    before the trigger, so whichever came second won, and the stored version's could be lost)."""
    first = load_detail("order-placed.json")
    second = first | {"customer_id": "cus-43"}
    h.deliver(result("fraud", version=trigger_digest(first), event_id="evt-fraud-first"))
    response = h.deliver(result("fraud", version=trigger_digest(second), event_id="evt-fraud-second"))
    assert response == {"batchItemFailures": []}  # kept, not retried
    assert h.dead_letters() == []
    record = h.store.load(ORDER_ID)
    assert record.results["fraud"]["event_id"] == "evt-fraud-first"  # the slot is not replaced
    assert record.alternatives[("fraud", trigger_digest(second))]["event_id"] == "evt-fraud-second"
    h.deliver(trigger(second))
    h.deliver(*(result(agent, version=trigger_digest(second)) for agent in ("inventory", "shipping")))
    [completed] = h.terminal()
    assert completed["detail-type"] == "Order Completed"
    assert {r["trigger_digest"] for r in completed["detail"]["results"].values()} == {trigger_digest(second)}
    assert completed["detail"]["results"]["fraud"]["event_id"] == "evt-fraud-second"
    assert h.store.get_order(ORDER_ID)["customer_id"] == "cus-43"
    assert h.store.get(ORDER_ID)["outcome"] == completed["detail"]


def test_a_result_of_another_version_after_a_finish_without_trigger_is_late_not_retried(h):
    first = load_detail("order-placed.json")
    h.deliver(result("fraud", version=trigger_digest(first)))
    h.deliver(deadline())
    assert [e["detail-type"] for e in h.terminal()] == ["Order Timed Out"]
    response = h.deliver(result("fraud", version=trigger_digest(first | {"customer_id": "cus-43"})))
    assert response == {"batchItemFailures": []}  # kept aside, not retried until the DLQ


# --- fault 2: duplicate results, results before the trigger -----------------------------------------

def test_fault_duplicate_result_counted_once(h):
    h.deliver(trigger())
    h.deliver(result("fraud", event_id="evt-fraud-1"), result("fraud", event_id="evt-fraud-2"))
    # A redelivery that says something else (the agent ran again) does not replace the first result.
    h.deliver(result("fraud", ok=False, event_id="evt-fraud-3"))
    record = h.store.load(ORDER_ID)
    assert record.results["fraud"]["event_id"] == "evt-fraud-1"
    assert record.results["fraud"]["outcome"] == "success"
    assert record.status.value == "RUNNING" and h.terminal() == []
    h.deliver(result("inventory"), result("shipping"))
    terminal = h.terminal()
    assert [e["detail-type"] for e in terminal] == ["Order Completed"]


def test_fault_results_before_trigger_wait_for_it(h):
    h.deliver(*(result(agent) for agent in SUCCESS))
    record = h.store.load(ORDER_ID)
    assert record.status.value == "RUNNING" and set(record.results) == set(SUCCESS)
    assert h.terminal() == []  # no completion without the trigger
    h.deliver(trigger())
    terminal = h.terminal()
    assert [e["detail-type"] for e in terminal] == ["Order Completed"]
    assert h.store.get_order(ORDER_ID)["customer_id"] == "cus-42"
    assert h.schedule() is None  # complete on arrival: no deadline left behind


def test_failure_before_trigger_waits_for_it_then_rejects_with_the_orders_details(h):
    h.deliver(result("inventory", ok=False))
    assert h.terminal() == []  # the failure may be for another version than the trigger will bring
    assert h.schedule() is not None  # the record a result opened has its deadline at once
    h.deliver(trigger())
    terminal = h.terminal()
    assert [e["detail-type"] for e in terminal] == ["Order Rejected"]
    assert terminal[0]["detail"]["reason"] == "inventory: inventory says no"
    assert h.store.get_order(ORDER_ID)["customer_id"] == "cus-42"
    assert h.schedule() is None


def test_result_that_never_gets_its_trigger_times_out_saying_so(h):
    h.deliver(result("fraud"))
    assert h.store.load(ORDER_ID).deadline_at and h.schedule() is not None
    h.deliver(deadline())
    [terminal] = h.terminal()
    assert terminal["detail-type"] == "Order Timed Out"
    assert terminal["detail"]["reason"] == "deadline reached: the trigger never arrived"
    assert h.store.get(ORDER_ID)["trigger"] is None


def test_a_result_of_the_late_triggers_version_is_kept_late_beside_another_versions_in_its_slot(h):
    """Black-box pass 20A, F3: a record opened by a result of another version timed out "the trigger never arrived";
    the trigger's own version's result from the same agent, read after the trigger, was taken for a duplicate of
    the other version's and shown nowhere (its item stayed in the table)."""
    other = result("fraud", version="0" * 32, event_id="evt-other")
    h.deliver(other)
    h.deliver(deadline())
    h.deliver(trigger())
    real = result("fraud", event_id="evt-real")
    assert h.deliver(real) == {"batchItemFailures": []}
    view = h.store.get(ORDER_ID)
    assert view["status"] == "TIMED_OUT"
    [late] = [entry for entry in view["late_results"] if entry["event_id"] == "evt-real"]
    assert late["trigger_digest"] == version_of() and late["late_reason"] == (
        "reached the coordinator after the deadline: the workflow had timed out")
    h.deliver(real)  # again: kept once
    assert [entry["event_id"] for entry in h.store.get(ORDER_ID)["late_results"]].count("evt-real") == 1


def test_late_results_past_the_records_limit_are_dead_lettered_with_their_reason_and_leave_no_item(h):
    """Black-box pass 20A, F1: an entry past ``MAX_LATE`` was acknowledged and kept nowhere."""
    from functions.coordinator.layout import MAX_LATE

    h.deliver(trigger(), result("inventory"), result("shipping"))
    h.deliver(deadline())  # timed out without fraud's result
    versions = [f"{number:032x}" for number in range(1, MAX_LATE + 2)]  # none the workflow holds
    for number, version in enumerate(versions):
        assert h.deliver(result("fraud", version=version, event_id=f"evt-{number}")) == {"batchItemFailures": []}
    view = h.store.get(ORDER_ID)
    assert sorted(entry["trigger_digest"] for entry in view["late_results"]) == versions[:MAX_LATE]
    [letter] = h.dead_letters()
    assert json.loads(letter["Body"])["id"] == f"evt-{MAX_LATE}"
    assert letter["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"] == (
        f"result for another version of the request ({versions[-1]}) than the one the workflow holds "
        f"({version_of()}): not counted; the record keeps no more entries aside")
    assert not {f"{WORKFLOW.name}#result#fraud#{version}" for version in versions} & h.item_keys()


def test_a_late_result_published_again_and_again_is_kept_once(h):
    """Black-box pass 20E, F1: each replay or redrive of the trigger makes the agent publish its result again, a new
    event with the same idempotency key; each was kept aside again, until the record was full and the copies, and
    any real late answer after them, were dead-lettered."""
    h.deliver(trigger(), result("inventory"), result("shipping"))
    h.deliver(deadline())  # timed out without fraud's result
    for number in range(25):
        assert h.deliver(result("fraud", event_id=f"evt-again-{number}")) == {"batchItemFailures": []}
    view = h.store.get(ORDER_ID)
    assert [entry["event_id"] for entry in view["late_results"]] == ["evt-again-0"]  # the first publication
    assert h.dead_letters() == []
    assert f"{WORKFLOW.name}#result#fraud#{version_of()}" not in h.item_keys()


def test_a_late_results_redelivery_keeps_it_once_and_leaves_no_item(h):
    """Review rev20d, L1: the redelivery wrote the result's item again, found the entry kept, and left the item."""
    h.deliver(trigger(), result("inventory"), result("shipping"))
    h.deliver(deadline())  # timed out without fraud's result
    late = result("fraud")
    h.deliver(late)
    h.deliver(late, receive_count=2)
    assert [entry["event_id"] for entry in h.store.get(ORDER_ID)["late_results"]] == [late["id"]]
    assert f"{WORKFLOW.name}#result#fraud#{version_of()}" not in h.item_keys()


def test_results_held_before_the_trigger_are_shown_as_received_not_counted_not_as_missing_only(h):
    # The trigger lost on its way to the coordinator, the agents' results in: status listed every agent as missing
    # and trace said "nothing recorded yet", so the runbook sent the operator after agents that had answered.
    h.deliver(result("fraud"), result("inventory", ok=False))
    view = h.store.get(ORDER_ID)
    assert [(r["agent"], r["detail_type"]) for r in view["before_trigger_results"]] == [
        ("fraud", "Order Verified"), ("inventory", "Items Unavailable")]
    assert any(note.startswith("received before the trigger, not counted") and "fraud (Order Verified)" in note
               for note in status_notes(view))
    trace = render_trace(view)
    assert "nothing recorded yet" not in trace
    assert "received before the trigger, not counted: fraud (Order Verified), inventory (Items Unavailable)" in trace
    h.deliver(deadline())
    timed_out = h.store.get(ORDER_ID)
    assert timed_out["status"] == "TIMED_OUT" and len(timed_out["before_trigger_results"]) == 2
    h.deliver(trigger())  # the trigger, late: the record has its version now, nothing is held before it any more
    assert h.store.get(ORDER_ID)["before_trigger_results"] == []


def test_an_outcome_decided_before_its_trigger_is_stored_whole_and_reads_back_unchanged_once_the_trigger_comes(h):
    """Its record still changes after the finish (the trigger brings its version and time, and with them the
    counted results), so nothing of its outcome may be derived from the record: it is stored whole."""
    h.deliver(result("fraud"), result("inventory"))
    h.deliver(deadline())
    [terminal] = h.terminal()
    item = h.clients.dynamodb.get_item(TableName=h.store.workflow_table, Key=record_key())["Item"]
    assert {"status", "results", "missing", "timings"} <= set(item["outcome"]["M"])
    h.deliver(trigger())
    view = h.store.get(ORDER_ID)
    assert view["trigger"] is not None and set(view["results"]) == set()
    assert view["outcome"] == terminal["detail"] and h.terminal() == [terminal]


def test_a_record_of_the_single_item_layout_started_before_an_upgrade_finishes_with_every_result(h):
    """Before issue 15 a record was one item whose result slots held the whole results (compact). A workflow the
    old coordinator started finishes under this one: a slot without an item of its own is the result itself."""
    from functions.coordinator.attributes import to_attribute
    from functions.coordinator.layout import compact_slot

    h.deliver(trigger())
    old = {}
    for agent in ("fraud", "inventory"):
        envelope = result(agent)
        slot = {**envelope["detail"], "detail_type": envelope["detail-type"], "event_id": envelope["id"],
                "received_at": "2026-11-26T11:07:09.000Z"}
        old[agent] = slot
        h.clients.dynamodb.update_item(
            TableName=h.store.workflow_table, Key=record_key(), UpdateExpression="SET #slot = :v ADD #version :one",
            ExpressionAttributeNames={"#slot": f"result_{agent}", "#version": "version"},
            ExpressionAttributeValues={":v": to_attribute(compact_slot(ORDER_ID, agent, slot, WORKFLOW.name)),
                                       ":one": {"N": "1"}})
    h.deliver(result("shipping"))
    [terminal] = h.terminal()
    assert terminal["detail-type"] == "Order Completed"
    assert {agent: terminal["detail"]["results"][agent] for agent in old} == old
    assert h.store.get(ORDER_ID)["outcome"] == terminal["detail"]


def test_early_deadline_is_rearmed_not_obeyed(h):
    # EventBridge Scheduler fires a one-time schedule anywhere in its minute: up to 59 s early.
    h.deliver(trigger(), result("fraud"))
    h.deliver(deadline(), handler=h.handler)  # delivered now: the deadline is 300 s away
    assert h.terminal() == [] and h.store.load(ORDER_ID).status.value == "RUNNING"
    assert h.schedule() is not None
    h.deliver(deadline())
    assert [e["detail-type"] for e in h.terminal()] == ["Order Timed Out"]


def test_a_deadline_fired_early_within_its_minute_is_rearmed_for_the_next_minute(h):
    """Black-box pass 10C, F5: re-armed at the deadline itself, the schedule was for the minute already running,
    which Scheduler (60 s precision) is not documented to fire; the next minute is."""
    h.deliver(trigger(), result("fraud"))
    due = h.due()
    name, fired = schedule_name(WORKFLOW.name, ORDER_ID), h.schedule()["ScheduleExpression"]
    early = due.replace(second=0) + timedelta(seconds=1) if due.second > 1 else due - timedelta(milliseconds=500)
    for _ in range(2):  # the early deadline delivered twice makes one schedule
        h.deliver(deadline(), handler=build(h.settings, h.clients, clock=lambda: early))
    assert h.terminal() == [] and h.store.load(ORDER_ID).status.value == "RUNNING"
    expected = max(due, early.replace(second=0, microsecond=0) + timedelta(minutes=1))
    # Review rev20b, M1: a new schedule, not an update of the one that fired (Scheduler deletes that one shortly
    # after it fires, and an update in between could go with it).
    assert h.schedules() == {name: fired, refire_name(name, expected): at_expression(expected)}
    assert expected > due or due.second == 0


def test_a_deadline_fired_early_by_this_clock_fires_again_after_the_minute_it_fired_in_by_schedulers(h):
    """Review rev20d, L3: with this function's clock behind Scheduler's, the next schedule was for the minute the
    firing came in: named as the schedule that had fired (still there until Scheduler deletes it), so none was made.
    The firing's own time (the event's, Scheduler's clock) bounds it."""
    from functions.coordinator.times import start_of_next_minute

    h.deliver(trigger(), result("fraud"))
    due = h.due()
    fired = deadline()
    fired_at = due + timedelta(seconds=45)
    fired["time"] = fired_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    h.deliver(fired, handler=build(h.settings, h.clients, clock=lambda: due - timedelta(seconds=30)))
    again = start_of_next_minute(fired_at.replace(microsecond=0))
    assert refire_name(schedule_name(WORKFLOW.name, ORDER_ID), again) in h.schedules()
    assert h.schedules()[refire_name(schedule_name(WORKFLOW.name, ORDER_ID), again)] == at_expression(again)


def test_a_deadline_stamped_far_ahead_does_not_put_the_next_firing_off(h):
    from functions.coordinator.logic import MAX_CLOCK_AHEAD
    from functions.coordinator.times import start_of_next_minute

    h.deliver(trigger(), result("fraud"))
    due = h.due()
    now = due - timedelta(seconds=30)
    fired = deadline()
    fired["time"] = (due + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")  # a clock an hour ahead, or a forgery
    h.deliver(fired, handler=build(h.settings, h.clients, clock=lambda: now))
    again = max(due, start_of_next_minute(now + MAX_CLOCK_AHEAD))
    assert h.schedules()[refire_name(schedule_name(WORKFLOW.name, ORDER_ID), again)] == at_expression(again)


def test_a_refired_deadline_times_the_workflow_out_once_and_is_left_to_fire_alone(h):
    h.deliver(trigger(), result("fraud"))
    due = h.due()
    early = due - timedelta(seconds=5)
    h.deliver(deadline(), handler=build(h.settings, h.clients, clock=lambda: early))
    again = max(due, early.replace(second=0, microsecond=0) + timedelta(minutes=1))
    for _ in range(2):  # the second schedule fires; then once more, as a duplicate
        h.deliver(deadline(), handler=build(h.settings, h.clients, clock=lambda: again + timedelta(seconds=30)))
    assert [e["detail-type"] for e in h.terminal()] == ["Order Timed Out"]
    # The finish deleted the first schedule; the second deletes itself once it has fired, and changes nothing.
    assert list(h.schedules()) == [refire_name(schedule_name(WORKFLOW.name, ORDER_ID), again)]


# --- fault 3: concurrent finishers ------------------------------------------------------------------

def test_fault_concurrent_finishers_exactly_one_wins(h):
    """Several builds process duplicates of the last result at once; all of them reach the finish
    (held at a barrier until every one has decided), and exactly one wins it."""
    h.deliver(trigger(), result("fraud"), result("inventory"))
    threads_n = 4
    barrier = threading.Barrier(threads_n, timeout=30)
    lock = threading.Lock()
    passed: set[int] = set()

    def before(operation: str, kwargs: dict) -> None:
        if is_finish(operation, kwargs) and threading.get_ident() not in passed:
            passed.add(threading.get_ident())
            barrier.wait()

    def clients() -> Clients:
        c = Clients.create(h.session)
        return Clients(events=Serialized(c.events, lock), sqs=Serialized(c.sqs, lock),
                       dynamodb=Serialized(c.dynamodb, lock, before=before), scheduler=Serialized(c.scheduler, lock))

    handlers = [h.build(clients()) for _ in range(threads_n)]
    responses: list[dict] = []
    errors: list[BaseException] = []

    def run(handler) -> None:
        try:
            responses.append(h.deliver(result("shipping", event_id="evt-shipping"), handler=handler))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(handler,)) for handler in handlers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and len(responses) == threads_n
    assert all(r == {"batchItemFailures": []} for r in responses)
    assert len(passed) == threads_n  # every invocation really tried to finish
    terminal = h.terminal()
    assert [e["detail-type"] for e in terminal] == ["Order Completed"]
    assert h.store.load(ORDER_ID).published is True


def test_fault_results_from_threads_at_once_give_one_outcome(h):
    """No choreography: every result plus duplicates and the deadline, each on its own build and thread."""
    h.deliver(trigger())
    lock = threading.Lock()

    def clients() -> Clients:
        c = Clients.create(h.session)
        return Clients(events=Serialized(c.events, lock), sqs=Serialized(c.sqs, lock),
                       dynamodb=Serialized(c.dynamodb, lock), scheduler=Serialized(c.scheduler, lock))

    envelopes = [result(a) for a in SUCCESS] + [result(a) for a in SUCCESS]
    start = threading.Barrier(len(envelopes), timeout=30)

    def run(envelope) -> None:
        handler = h.build(clients())
        start.wait()
        h.deliver(envelope, handler=handler)

    threads = [threading.Thread(target=run, args=(e,)) for e in envelopes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    terminal = h.terminal()
    assert [e["detail-type"] for e in terminal] == ["Order Completed"]
    assert set(terminal[0]["detail"]["results"]) == set(SUCCESS)


# --- fault 5: crash between the finish and the publish ----------------------------------------------

class FailingOnce:
    """An events client whose first PutEvents fails (the invocation dies after the finish)."""

    def __init__(self, client: Any):
        self.client, self.failed = client, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def put_events(self, **kwargs):
        if not self.failed:
            self.failed = True
            raise ConnectionError("simulated crash between the finish and the publish")
        return self.client.put_events(**kwargs)


def test_fault_crash_between_finish_and_publish_retry_publishes_stored_outcome(h):
    events = FailingOnce(h.clients.events)
    handler = h.build(dataclasses.replace(h.clients, events=events))
    h.deliver(trigger(), result("fraud"), result("inventory"), handler=handler)
    last = result("shipping")
    first = h.deliver(last, handler=handler)
    assert events.failed and len(first["batchItemFailures"]) == 1  # the message goes back to the queue
    crashed = h.store.load(ORDER_ID)
    assert crashed.status.value == "COMPLETED" and crashed.published is False
    assert h.terminal() == []

    retry = h.deliver(last, handler=handler, receive_count=2)  # the redelivery

    assert retry == {"batchItemFailures": []}
    terminal = h.terminal()
    assert [e["detail-type"] for e in terminal] == ["Order Completed"]
    assert terminal[0]["detail"] == crashed.outcome  # the stored outcome, not a new one
    assert terminal[0]["detail"]["idempotency_key"] == f"{ORDER_ID}:COMPLETED"
    assert h.store.load(ORDER_ID).published is True
    h.deliver(last, handler=handler, receive_count=3)
    assert len(h.terminal()) == 1  # published once it is marked


class FirstCallFails:
    """A DynamoDB client whose first ``operation`` call that ``when(kwargs)`` picks fails: the invocation dies there."""

    def __init__(self, client: Any, operation: str, when, why: str):
        self.client, self.operation, self.when, self.why, self.failed = client, operation, when, why, False

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        if name != self.operation:
            return attribute

        def call(**kwargs):
            if not self.failed and self.when(kwargs):
                self.failed = True
                raise ConnectionError(f"simulated crash {self.why}")
            return attribute(**kwargs)

        return call


def summary_write_fails(client: Any, agent: str) -> FirstCallFails:
    """The first write of ``agent``'s summary into the header fails: between the result's item and the header
    write that counts it."""
    return FirstCallFails(client, "update_item",
                          lambda kwargs: f"result_{agent}" in kwargs.get("ExpressionAttributeNames", {}).values(),
                          "between the result's item and its summary")


def test_fault_crash_between_a_results_item_and_its_summary_counts_nothing_until_the_redelivery_completes_it(h):
    h.deliver(trigger(), result("fraud"), result("inventory"))
    crashing = h.build(dataclasses.replace(h.clients, dynamodb=summary_write_fails(h.clients.dynamodb, "shipping")))
    first = result("shipping", duration_ms=111.0)
    assert len(h.deliver(first, handler=crashing)["batchItemFailures"]) == 1
    # The item is there, the header does not count it: nothing decided.
    assert f"{WORKFLOW.name}#result#shipping#{version_of()}" in h.item_keys()
    record = h.store.load(ORDER_ID)
    assert record.status.value == "RUNNING" and "shipping" not in record.results and h.terminal() == []
    # Another delivery of shipping's result for the same version (another event, other contents) before the
    # redelivery: the item written first is the one counted, and this one is a duplicate.
    h.deliver(result("shipping", duration_ms=999.0))
    [terminal] = h.terminal()
    assert terminal["detail-type"] == "Order Completed"
    assert terminal["detail"]["results"]["shipping"]["event_id"] == first["id"]
    assert terminal["detail"]["results"]["shipping"]["duration_ms"] == 111.0
    h.deliver(first, receive_count=2)
    assert len(h.terminal()) == 1


def late_entry_write_fails(client: Any) -> FirstCallFails:
    """The first write of a late entry's item fails: a crash in the middle of keeping it aside (with the marker
    first, the marker would be there and the entry lost)."""
    return FirstCallFails(client, "put_item", lambda kwargs: "#late_" in kwargs["Item"]["workflow"]["S"],
                          "while keeping a late entry")


def test_a_crash_while_keeping_a_late_entry_keeps_it_whole_and_once_on_redelivery(h):
    h.deliver(trigger(), result("fraud", ok=False))
    assert [e["detail-type"] for e in h.terminal()] == ["Order Rejected"]
    crashing = h.build(dataclasses.replace(h.clients, dynamodb=late_entry_write_fails(h.clients.dynamodb)))
    late = result("inventory")
    assert len(h.deliver(late, handler=crashing)["batchItemFailures"]) == 1
    h.deliver(late, receive_count=2)
    h.deliver(late, receive_count=3)
    [kept] = h.store.get(ORDER_ID)["late_results"]
    assert kept["event_id"] == late["id"] and kept["agent"] == "inventory" and kept["late_reason"]
    assert kept["outcome"] == "success" and len(h.terminal()) == 1


def test_a_crashed_results_redelivery_alone_completes_the_pair(h):
    h.deliver(trigger(), result("fraud"), result("inventory"))
    crashing = h.build(dataclasses.replace(h.clients, dynamodb=summary_write_fails(h.clients.dynamodb, "shipping")))
    last = result("shipping")
    assert len(h.deliver(last, handler=crashing)["batchItemFailures"]) == 1
    assert h.deliver(last, receive_count=2) == {"batchItemFailures": []}
    [terminal] = h.terminal()
    assert terminal["detail-type"] == "Order Completed" and terminal["detail"]["results"]["shipping"]["event_id"] == \
        last["id"]


class RecordingFailingOnce(FailingOnce):
    """FailingOnce that also keeps the ``Detail`` string of every terminal entry it was asked to send."""

    def __init__(self, client: Any):
        super().__init__(client)
        self.details: list[str] = []

    def put_events(self, **kwargs):
        self.details += [e["Detail"] for e in kwargs["Entries"] if e["DetailType"] in TERMINAL]
        return super().put_events(**kwargs)


def test_fault_republished_outcome_is_byte_for_byte_the_first_one_though_stored_without_results(h):
    events = RecordingFailingOnce(h.clients.events)
    handler = h.build(dataclasses.replace(h.clients, events=events))
    h.deliver(trigger(), result("fraud"), result("inventory"), handler=handler)
    last = result("shipping")
    assert len(h.deliver(last, handler=handler)["batchItemFailures"]) == 1  # crashed after the finish
    h.deliver(last, handler=handler, receive_count=2)

    first, republished = events.details
    assert republished == first  # same bytes: same fields, same key order, same idempotency key
    detail = json.loads(first)
    assert list(detail) == [*WorkflowOutcome.model_fields, "order_id"]
    assert list(detail["results"]) == ["fraud", "inventory", "shipping"]
    fraud_key = result_idempotency_key(ORDER_ID, "fraud", version_of(ORDER_ID))
    assert detail["results"]["fraud"]["idempotency_key"] == fraud_key
    assert detail["results"]["fraud"]["workflow_id"] == ORDER_ID and detail["results"]["fraud"]["agent"] == "fraud"
    [terminal] = h.terminal()
    assert terminal["detail"] == detail
    # The record keeps each result once, in its own item; the header's slot keeps a summary (what deciding
    # needs). The stored outcome keeps nothing the final record gives again: status, reason, the results'
    # names, missing, timings are all derived from the header and the items on reading, byte for byte.
    item = h.clients.dynamodb.get_item(TableName=h.store.workflow_table,
                                       Key=record_key())["Item"]
    assert item["outcome"]["M"] == {}
    assert set(item["result_fraud"]["M"]) == {"trigger_digest", "outcome", "detail_type"}
    key = f"{WORKFLOW.name}#result#fraud#{item['result_fraud']['M']['trigger_digest']['S']}"
    body = h.clients.dynamodb.get_item(TableName=h.store.workflow_table,
                                       Key={**record_key(), "workflow": {"S": key}})["Item"]["result"]["M"]
    assert not {"workflow_id", "order_id", "agent", "idempotency_key"} & set(body)
    assert body["outcome"] == {"S": "success"} and "started_at" in body
    view = h.store.get(ORDER_ID)
    assert view["outcome"] == detail and view["results"] == detail["results"]


# --- a main-table row that can never be written ------------------------------------------------------

def _finish_the_sample_order(h) -> dict:
    assert h.deliver(trigger(), *(result(agent) for agent in SUCCESS)) == {"batchItemFailures": []}
    return h.store.get(ORDER_ID)


def test_a_row_dynamodb_refuses_does_not_hold_up_the_outcome_and_the_record_says_why(h, monkeypatch):
    # A projection whose row passes DynamoDB's 400 KB item limit: every retry is refused the same way. It used to
    # retry the publication forever (each message dead-lettered with DynamoDB's message) and never publish the
    # outcome, so the compensations it triggers (inventory's release) never ran.
    import functions.orders.projection as projection
    original = projection.order_item
    monkeypatch.setattr(projection, "order_item", lambda finished: {**original(finished), "notes": "n" * 500_000})
    view = _finish_the_sample_order(h)
    assert [e["detail-type"] for e in h.terminal()] == ["Order Completed"]
    assert view["published"] is True
    assert "DynamoDB refused the orders row" in view["projection_error"]
    assert h.store.get_order(ORDER_ID) is None
    assert h.dead_letters() == []
    assert any("row was not written" in note and "DynamoDB refused" in note for note in status_notes(view))


def test_a_projection_that_fails_on_the_record_does_not_hold_up_the_outcome(h, monkeypatch):
    import functions.orders.projection as projection

    def broken(finished):
        raise KeyError("total")

    monkeypatch.setattr(projection, "order_item", broken)
    view = _finish_the_sample_order(h)
    assert [e["detail-type"] for e in h.terminal()] == ["Order Completed"]
    assert view["published"] is True and view["projection_error"] == (
        "the projection functions.orders.projection:order_item failed: KeyError: 'total'")


def test_a_transient_failure_of_the_row_still_retries_the_publication(h, monkeypatch):
    calls = []

    def throttled(self, table, item):
        calls.append(table)
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                          "PutItem")

    monkeypatch.setattr(WorkflowStore, "put_projection", throttled)
    response = h.deliver(trigger(), *(result(agent) for agent in SUCCESS))
    assert response["batchItemFailures"]  # not acknowledged: SQS delivers it again
    assert calls and h.terminal() == []
    view = h.store.get(ORDER_ID)
    assert view["published"] is False and view["projection_error"] is None


class Died(BaseException):
    """The process dies outright: no cleanup (its publication lease is not released)."""


def _dies_while_publishing(h, now: list[datetime], **settings):
    """A coordinator on the clock ``now[0]`` whose first publication dies, after the trigger and two results: it
    finished the order and holds the lease. Returns ``handle(envelope)`` for the messages that follow."""
    deaths = [1]

    def publish(event) -> None:
        if deaths[0]:
            deaths[0] -= 1
            raise Died()
        EventPublisher(h.clients.events, h.settings.event_bus_name).publish([event])

    coordinator = Coordinator(
        store=h.store.store, publish=publish, clock=lambda: now[0],
        deadlines=DeadlineScheduler(h.clients.scheduler, h.settings.schedule_group, h.resources.bus_arn,
                                    h.resources.scheduler_role_arn), **{"manifest": MANIFEST, **settings},
    )

    def handle(envelope: dict) -> None:
        coordinator.handle(BusEvent.model_validate(envelope))

    for envelope in (trigger(), result("fraud"), result("inventory")):
        handle(envelope)
    with pytest.raises(Died):
        handle(result("shipping"))
    handle.coordinator = coordinator  # type: ignore[attr-defined]
    return handle


def test_fault_crash_without_cleanup_publishes_stored_outcome_after_the_lease(h):
    """A process that dies outright cannot release its publication lease: a later message publishes
    the stored outcome once the lease has expired (on AWS, the redelivery comes after the visibility
    timeout, 6x the function timeout, which is longer than the lease)."""
    now = [datetime(2026, 11, 26, 11, 7, 8, tzinfo=UTC)]
    handle = _dies_while_publishing(h, now, publish_lease_s=30)
    stored = h.store.load(ORDER_ID).outcome

    now[0] += timedelta(seconds=10)
    handle(result("shipping"))  # within the lease: the dead invocation might still be publishing
    assert h.terminal() == []

    now[0] += timedelta(seconds=60)
    handle(result("shipping"))
    terminal = h.terminal()
    assert [e["detail-type"] for e in terminal] == ["Order Completed"]
    assert terminal[0]["detail"] == stored


def test_fault_a_slow_live_publisher_under_a_raised_timeout_keeps_its_lease_until_its_invocation_ends(h):
    """The lease follows the coordinator's timeout (code review bb10d, finding 9): with the timeout raised to
    120 s, a publisher that has not returned 100 s after it took the lease may still be alive and publishing, so
    a second invocation must not publish beside it (a constant 30 s lease let it). Past 120 s + the margin the
    invocation has surely ended (Lambda stops it at its timeout), and the next message publishes. (The death
    stands for the slow one: its invocation holds the lease, and has not released it.)"""
    now = [datetime(2026, 11, 26, 11, 7, 8, tzinfo=UTC)]
    handle = _dies_while_publishing(
        h, now, manifest=dataclasses.replace(MANIFEST, coordinator_settings={"timeout_s": 120}))
    assert handle.coordinator.publish_lease_s == 120 + PUBLISH_LEASE_MARGIN_S
    now[0] += timedelta(seconds=100)
    handle(result("shipping"))  # the first invocation may still be running: not published a second time
    assert h.terminal() == []
    now[0] += timedelta(seconds=120 + PUBLISH_LEASE_MARGIN_S - 100 + 1)
    handle(result("shipping"))
    assert [e["detail-type"] for e in h.terminal()] == ["Order Completed"]


def test_a_publication_that_fails_and_cannot_release_its_lease_is_retried_only_after_the_lease(h, monkeypatch):
    """Its record must not come back after a short back-off (consumer.py, retry timing): within the lease it would
    find the outcome "being published by another invocation" and be acknowledged, the outcome never published.
    The error is marked to keep the queue's visibility timeout (longer than the lease), as after a crash."""
    from functions.common.dead_letters import KEEP_VISIBILITY_MARK

    def publish(event) -> None:
        raise ConnectionError("events endpoint unreachable")

    def release(*args, **kwargs) -> None:
        raise ConnectionError("dynamodb endpoint unreachable")

    coordinator = Coordinator(
        manifest=MANIFEST, store=h.store.store, publish=publish, publish_lease_s=30,
        deadlines=DeadlineScheduler(h.clients.scheduler, h.settings.schedule_group, h.resources.bus_arn,
                                    h.resources.scheduler_role_arn),
    )
    for envelope in (trigger(), result("fraud"), result("inventory")):
        coordinator.handle(BusEvent.model_validate(envelope))
    monkeypatch.setattr(h.store.store, "release_publication", release)
    with pytest.raises(ConnectionError, match="events endpoint") as raised:
        coordinator.handle(BusEvent.model_validate(result("shipping")))
    assert getattr(raised.value, KEEP_VISIBILITY_MARK, False) is True
    monkeypatch.undo()
    # Why: a retry within the lease is acknowledged without publishing anything.
    coordinator.handle(BusEvent.model_validate(result("shipping")))
    assert h.terminal() == []


# --- fault 7: invalid triggers ----------------------------------------------------------------------

def test_fault_invalid_trigger_with_order_id_rejected_naming_the_field(h):
    detail = load_detail("order-placed-invalid.json")
    response = h.deliver(trigger(detail))
    assert response == {"batchItemFailures": []}
    terminal = h.terminal()
    assert [e["detail-type"] for e in terminal] == ["Order Rejected"]
    outcome = terminal[0]["detail"]
    assert outcome["order_id"] == detail["order_id"] and outcome["status"] == "REJECTED"
    assert "items.0.quantity" in outcome["reason"]
    assert h.schedule(detail["order_id"]) is None  # no deadline for a workflow that never ran
    assert h.store.get_order(detail["order_id"])["status"] == "REJECTED"
    assert h.dead_letters() == []


@pytest.mark.parametrize("order_id, says", [
    # Worded as the agents' trigger model words it, and in JSON's terms (black-box pass 11B, F7: "got NoneType").
    (..., "cannot tell which workflow this is: order_id: Field required"),
    (None, "cannot tell which workflow this is: order_id: must be a string (1 to 128 characters"),
    (7, "order_id: must be a string ("),
])
def test_fault_trigger_without_order_id_is_kept_as_poison(h, order_id, says):
    detail = load_detail("order-placed.json")
    if order_id is ...:
        del detail["order_id"]
    else:
        detail["order_id"] = order_id
    response = h.deliver(trigger(detail))
    assert response == {"batchItemFailures": []}  # kept in the DLQ with its reason, not retried
    [kept] = h.dead_letters()
    reason = kept["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
    assert says in reason, reason
    assert reason.endswith({None: "got null", 7: "got a number"}.get(order_id, "Field required")), reason
    assert h.terminal() == []


# --- forged or inconsistent results -----------------------------------------------------------------

@pytest.mark.parametrize("envelope, words", [
    (lambda: result("fraud", detail={"agent": "inventory"}), "forged"),
    (lambda: result("fraud", detail_type="Items Reserved"), "forged"),
    (lambda: result("fraud", source="agentbus.orders"), "forged"),
    (lambda: result("fraud", detail={"outcome": "failure"}), "inconsistent"),
    (lambda: result("fraud", detail={"duration_ms": -1}), "duration_ms"),
    # Unbounded, a reason made the outcome's main-table row too large to write: the outcome was never published.
    (lambda: result("fraud", ok=False, detail={"reason": "x" * 300_000}), "reason: String should have at most 2048"),
    (lambda: result("fraud", detail={"started_at": "2" * 100_000}), "started_at"),
])
def test_forged_or_invalid_result_is_refused(h, envelope, words):
    h.deliver(trigger())
    response = h.deliver(envelope())
    assert response == {"batchItemFailures": []}
    [kept] = h.dead_letters()
    assert words in kept["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
    assert h.store.load(ORDER_ID).results == {}


def test_unexpected_event_is_refused():
    from functions.coordinator.logic import Coordinator as Logic

    logic = Logic(store=None, deadlines=None, publish=None, manifest=MANIFEST)  # type: ignore[arg-type]
    with pytest.raises(PoisonMessage, match="does not handle"):
        logic.handle(BusEvent.model_validate(eventbridge_envelope("Order Completed", COORDINATOR_SOURCE, {})))


# --- deadlines, late results, fault 9 ---------------------------------------------------------------

def test_deadline_times_out_with_missing_agents_and_late_results_change_nothing(h):
    h.deliver(trigger(), result("fraud"))
    h.deliver(deadline())
    terminal = h.terminal()
    assert [e["detail-type"] for e in terminal] == ["Order Timed Out"]
    outcome = terminal[0]["detail"]
    assert outcome["status"] == "TIMED_OUT" and outcome["reason"] == "deadline reached"
    assert outcome["missing"] == ["inventory", "shipping"] and set(outcome["results"]) == {"fraud"}
    assert h.schedule() is None

    h.deliver(result("inventory"), result("shipping"), deadline())
    assert h.terminal() == terminal  # nothing new published
    view = h.store.get(ORDER_ID)
    assert view["status"] == "TIMED_OUT" and view["outcome"] == outcome
    assert set(view["results"]) == {"fraud"}
    assert sorted(late["agent"] for late in view["late_results"]) == ["inventory", "shipping"]
    assert view["missing"] == ["inventory", "shipping"]
    assert h.store.get_order(ORDER_ID)["status"] == "TIMED_OUT"


def test_deadline_for_unknown_workflow_is_ignored(h):
    assert h.deliver(deadline("ord-never")) == {"batchItemFailures": []}
    assert h.terminal() == [] and h.store.load("ord-never") is None


def test_fault_deadline_racing_last_result_gives_one_outcome(h):
    """The deadline reads the record before the last result lands, then both try to finish at once."""
    h.deliver(trigger(), result("fraud"), result("inventory"))
    lock = threading.Lock()
    deadline_read = threading.Event()
    barrier = threading.Barrier(2, timeout=30)
    passed: set[int] = set()
    roles: dict[int, str] = {}

    def before(operation: str, kwargs: dict) -> None:
        me = threading.get_ident()
        if roles.get(me) == "result" and operation == "update_item" and not deadline_read.is_set():
            assert deadline_read.wait(timeout=30)
        if is_finish(operation, kwargs) and me not in passed:
            passed.add(me)
            barrier.wait()

    def after(operation: str, kwargs: dict) -> None:
        if roles.get(threading.get_ident()) == "deadline" and operation == "query":
            deadline_read.set()

    def clients() -> Clients:
        c = Clients.create(h.session)
        return Clients(events=Serialized(c.events, lock), sqs=Serialized(c.sqs, lock),
                       dynamodb=Serialized(c.dynamodb, lock, before=before, after=after),
                       scheduler=Serialized(c.scheduler, lock))

    errors: list[BaseException] = []

    def run(role: str, envelope: dict) -> None:
        roles[threading.get_ident()] = role
        try:
            handler = h.build(clients(), later=role == "deadline")
            assert h.deliver(envelope, handler=handler) == {"batchItemFailures": []}
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=("deadline", deadline())),
               threading.Thread(target=run, args=("result", result("shipping")))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert len(passed) == 2  # both really raced for the finish
    terminal = h.terminal()
    assert len(terminal) == 1
    # Every result was in before either finish: the record decides, and it says completed.
    assert terminal[0]["detail-type"] == "Order Completed"
    assert h.store.load(ORDER_ID).status.value == "COMPLETED"


# --- sample events ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, detail_type", [
    ("order-completed.json", "Order Completed"),
    ("order-rejected.json", "Order Rejected"),
    ("order-timed-out.json", "Order Timed Out"),
])
def test_sample_outcome_events_match_what_the_coordinator_publishes(h, name, detail_type):
    [entry] = load_entries(name)
    assert entry["EventBusName"] == "agentbus" and entry["Source"] == COORDINATOR_SOURCE
    assert entry["DetailType"] == detail_type
    sample = json.loads(entry["Detail"])
    outcome = WorkflowOutcome.model_validate(sample)
    assert sample["order_id"] == ORDER_ID and WORKFLOW.terminal_detail_types[outcome.status] == detail_type
    assert outcome.idempotency_key == f"{ORDER_ID}:{outcome.status}"
    # Same keys as a real outcome of the same kind.
    h.deliver(trigger())
    if detail_type == "Order Completed":
        h.deliver(*(result(a) for a in SUCCESS))
    elif detail_type == "Order Rejected":
        h.deliver(result("fraud", ok=False))
    else:
        h.deliver(result("fraud"), deadline())
    [real] = h.terminal()
    assert real["detail-type"] == detail_type
    assert set(real["detail"]) == set(sample)
    assert set(real["detail"]["timings"]) == set(sample["timings"])
    real_keys = {frozenset(r) for r in real["detail"]["results"].values()}
    assert real_keys == {frozenset(r) for r in sample["results"].values()}


def test_sample_deadline_event_is_what_the_schedule_sends(h):
    [entry] = load_entries("workflow-deadline-reached.json")
    assert entry["EventBusName"] == "agentbus"
    h.deliver(trigger())
    target = h.schedule()["Target"]
    assert entry["Source"] == target["EventBridgeParameters"]["Source"]
    assert entry["DetailType"] == target["EventBridgeParameters"]["DetailType"]
    assert json.loads(entry["Detail"]) == json.loads(target["Input"])


# --- the Lambda entry point -------------------------------------------------------------------------

def test_lambda_entry_point_builds_from_the_environment(h, monkeypatch):
    import functions.coordinator.handler as module

    for name, value in h.resources.function_environment("coordinator", MANIFEST).items():
        monkeypatch.setenv(name, value)
    module.handler.reset()
    try:
        event = sqs_event([sqs_record(trigger(), h.queue_arn)])
        assert module.handler(event, LambdaContext("coordinator")) == {"batchItemFailures": []}
        assert h.store.load(ORDER_ID).status.value == "RUNNING" and h.schedule() is not None
    finally:
        module.handler.reset()


def test_another_version_of_the_trigger_is_refused_named_and_the_workflow_still_finishes(h):
    """Issue 10, case 1: the same order id with other contents is another version; the first kept wins."""
    cheap, racks = trigger(), trigger(load_detail("order-placed-over-limit.json") | {"order_id": ORDER_ID})
    h.deliver(cheap)
    response = h.deliver(racks)
    assert response == {"batchItemFailures": []}  # poison: kept with its reason, not retried
    [letter] = h.dead_letters()
    reason = letter["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
    kept, other = version_of(ORDER_ID), trigger_digest(racks["detail"])
    assert "conflicting version" in reason and kept in reason and other in reason
    view = h.store.get(ORDER_ID)
    assert [r["trigger_digest"] for r in view["refused"]] == [other]
    assert view["trigger"]["items"] == cheap["detail"]["items"]
    h.deliver(racks)  # the same refused version again: kept once
    assert len(h.store.get(ORDER_ID)["refused"]) == 1
    # A result for the refused version does not count: it is kept aside naming both versions, once.
    refused_result = result("fraud", ok=False, version=other)
    h.deliver(refused_result)
    h.deliver(refused_result)
    view = h.store.get(ORDER_ID)
    assert h.terminal() == [] and view["results"] == {}
    [aside] = view["late_results"]
    assert aside["event_id"] == refused_result["id"] and aside["agent"] == "fraud"
    assert "another version" in aside["late_reason"] and other in aside["late_reason"] and kept in aside["late_reason"]
    # The kept version's results complete the order.
    h.deliver(*(result(agent) for agent in SUCCESS))
    [terminal] = h.terminal()
    assert terminal["detail-type"] == "Order Completed"
    assert {r["trigger_digest"] for r in terminal["detail"]["results"].values()} == {kept}
    assert h.store.get_order(ORDER_ID)["items"] == cheap["detail"]["items"]


def test_results_of_two_versions_before_the_trigger_the_kept_versions_count(h):
    """Both versions' results reach the coordinator before any trigger, the other version's first: the slot
    holds it, the kept version's result waits beside it and counts once its trigger is the one stored."""
    racks = load_detail("order-placed-over-limit.json") | {"order_id": ORDER_ID}
    other = trigger_digest(racks)
    h.deliver(result("fraud", ok=False, version=other), result("inventory", version=other))
    h.deliver(*(result(agent) for agent in SUCCESS))  # the sample's version, still no trigger
    assert h.terminal() == []
    h.deliver(trigger())
    [terminal] = h.terminal()
    assert terminal["detail-type"] == "Order Completed"
    assert {r["trigger_digest"] for r in terminal["detail"]["results"].values()} == {version_of()}
    assert h.store.get(ORDER_ID)["outcome"] == terminal["detail"]
