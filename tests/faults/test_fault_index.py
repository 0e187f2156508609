"""Fault tests the fault index (docs/guarantees.md) needed beyond the handler suites: real handlers on moto.

- fault 2/5: a trigger arriving after the workflow already timed out without it, whose invocation fails
  after opening the record, still gives the orders table the order's details on the retry;
- fault 6: PutEvents rejecting an agent's result: only that entry is retried, with backoff, within the
  invocation; when it keeps failing the record goes back to the queue, and its redelivery publishes it —
  nothing dropped, nothing published twice;
- fault 11: an agent result over the PutEvents size limit (measured as EventBridge measures it) becomes
  the agent's failure result at once, naming the size: never sent whole, never retried, the rest of the
  batch is published;
- faults 3/9: a deadline decided on a record that changed before its finish (the last result landed in
  between) loses the finish and decides again. This is the finish's version condition, which the racing
  tests in ``tests/functions/test_coordinator_handler.py`` do not pin down: there, thread scheduling
  decides which finisher takes moto's lock first, and with the condition removed they still pass.

Each test here was checked to fail with its guard removed (see docs/guarantees.md).
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from agentbus.local.lambda_events import LambdaContext, eventbridge_envelope, sqs_event, sqs_record
from functions.common.agent import AgentRunner, Decision, dead_letter_sink, locate, sqs_function
from functions.common.clients import Clients
from functions.common.digest import trigger_digest
from functions.common.publisher import MAX_ENTRY_BYTES, EventPublisher
from functions.coordinator import handler as coordinator
from functions.manifest import COORDINATOR_SOURCE
from functions.orders.fraud import handler as fraud
from functions.orders.workflow import PRODUCER_SOURCE
from tests.conftest import delivered_to_coordinator as on_the_bus
from tests.conftest import drain_queue as drain
from tests.conftest import load_detail, load_entries, workflow_store
from tests.conftest import settings_for as shared_settings_for
from tests.pinned import MANIFEST  # the shipped workflows with the agents these tests name (not any a user adds)

WORKFLOW = "order-fulfillment"

ORDER_ID = "ord-1001"


# --- helpers ------------------------------------------------------------------------------------------

def settings_for(resources, consumer: str):
    # One record at a time: moto in-process is not thread-safe.
    return shared_settings_for(resources, consumer, MANIFEST, record_concurrency=1)


def an_hour_on() -> datetime:
    """The clock of a coordinator that runs when a deadline is due."""
    return datetime.now(UTC) + timedelta(hours=1)


def with_clients(session, **overrides: Any) -> Clients:
    clients = Clients.create(session)
    return Clients(**{"events": clients.events, "sqs": clients.sqs, "dynamodb": clients.dynamodb,
                      "scheduler": clients.scheduler, **overrides})


def deliver(handle, resources, consumer: str, *envelopes: dict, receive_count: int = 1) -> dict:
    arn = resources.consumers[consumer].queue_arn
    event = sqs_event([sqs_record(e, arn, message_id=f"m{i}", receive_count=receive_count)
                       for i, e in enumerate(envelopes)])
    return handle(event, LambdaContext(consumer))


def capture_outcomes(session, resources) -> str:
    """A queue that receives every event the coordinator publishes (a rule of our own, as a client adds)."""
    sqs, events = session.client("sqs"), session.client("events")
    url = sqs.create_queue(QueueName="capture-outcomes")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="capture-outcomes", EventBusName=resources.bus_name,
                    EventPattern=json.dumps({"source": [COORDINATOR_SOURCE]}))
    events.put_targets(Rule="capture-outcomes", EventBusName=resources.bus_name,
                       Targets=[{"Id": "capture", "Arn": arn}])
    return url


def order(order_id: str = ORDER_ID, **changes: Any) -> dict:
    return {**load_detail("order-placed.json"), "order_id": order_id, **changes}


def placed(order_id: str = ORDER_ID, **changes: Any) -> dict:
    return eventbridge_envelope("Order Placed", PRODUCER_SOURCE, order(order_id, **changes))


def verified(order_id: str = ORDER_ID) -> dict:
    [entry] = load_entries("order-verified.json")
    detail = {**json.loads(entry["Detail"]), "workflow_id": order_id, "idempotency_key": f"{order_id}:fraud",
              "trigger_digest": trigger_digest(order(order_id))}
    return eventbridge_envelope(entry["DetailType"], entry["Source"], detail)


def deadline(order_id: str = ORDER_ID) -> dict:
    return eventbridge_envelope("Workflow Deadline Reached", "agentbus.deadline",
                                {"workflow": WORKFLOW, "workflow_id": order_id})


class FailingPut:
    """A DynamoDB client whose next ``put_item`` on one table, once armed, fails (the invocation fails there)."""

    def __init__(self, client: Any, table: str) -> None:
        self.client, self.table, self.armed, self.failed = client, table, False, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def put_item(self, **kwargs: Any) -> Any:
        if kwargs["TableName"] == self.table and self.armed and not self.failed:
            self.failed = True
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, "PutItem")
        return self.client.put_item(**kwargs)


class RejectingEvents:
    """PutEvents that rejects the entries of one order on its first ``times`` calls (a partial failure)."""

    def __init__(self, client: Any, order_id: str, times: int) -> None:
        self.client, self.order_id, self.left = client, order_id, times
        self.calls: list[list[str]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append([json.loads(e["Detail"])["workflow_id"] for e in Entries])
        reject = [self.left > 0 and json.loads(e["Detail"])["workflow_id"] == self.order_id for e in Entries]
        if any(reject):
            self.left -= 1
        sent = [e for e, no in zip(Entries, reject, strict=True) if not no]
        accepted = iter(self.client.put_events(Entries=sent)["Entries"] if sent else [])
        results = [{"ErrorCode": "InternalFailure", "ErrorMessage": "injected"} if no else next(accepted)
                   for no in reject]
        return {"FailedEntryCount": sum(reject), "Entries": results}


# --- fault 2/5: a late trigger, retried, still fills in the order -------------------------------------

def test_fault_late_trigger_retried_after_a_failure_still_fills_in_the_order(aws):
    """A result opens the record and the deadline times it out before its trigger came in; the trigger's
    invocation opens the record, then fails before writing the orders table. Its retry must still write the
    order's details (the orders table is the main database: it must not keep an order without its customer
    and items)."""
    session, resources = aws
    settings = settings_for(resources, "coordinator")
    dynamodb = FailingPut(session.client("dynamodb"), settings.table("orders"))
    handle = coordinator.build(settings, with_clients(session, dynamodb=dynamodb))
    later = coordinator.build(settings, with_clients(session, dynamodb=dynamodb), clock=an_hour_on)
    store = workflow_store(session.client("dynamodb"), resources, MANIFEST)

    def row():
        return store.get_row("orders", {"order_id": ORDER_ID})

    assert deliver(handle, resources, "coordinator", verified()) == {"batchItemFailures": []}
    assert deliver(later, resources, "coordinator", deadline()) == {"batchItemFailures": []}
    assert row()["status"] == "TIMED_OUT"
    assert row()["customer_id"] is None  # no trigger yet

    trigger = placed()
    dynamodb.armed = True
    first = deliver(handle, resources, "coordinator", trigger)
    assert dynamodb.failed and first == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert store.load(WORKFLOW, ORDER_ID).trigger is not None  # the record was opened before the failure

    assert deliver(handle, resources, "coordinator", trigger, receive_count=2) == {"batchItemFailures": []}
    stored = row()
    assert stored["status"] == "TIMED_OUT"
    assert stored["customer_id"] == "cus-42" and len(stored["items"]) == 2


# --- fault 6: PutEvents partial failure -------------------------------------------------------------------

def test_fault_put_events_partial_failure_retries_only_the_failed_entry(aws):
    session, resources = aws
    events = RejectingEvents(session.client("events"), "ord-2", times=2)
    handle = fraud.build(settings_for(resources, "fraud"), with_clients(session, events=events))

    response = deliver(handle, resources, "fraud", placed("ord-1"), placed("ord-2"), placed("ord-3"))

    assert response == {"batchItemFailures": []}
    assert events.calls == [["ord-1"], ["ord-2"], ["ord-2"], ["ord-2"], ["ord-3"]]  # the rejected one, again
    assert sorted(e["detail"]["workflow_id"] for e in on_the_bus(session, resources)) == ["ord-1", "ord-2", "ord-3"]


def test_fault_put_events_failing_every_attempt_goes_back_to_the_queue_and_nothing_is_dropped(aws):
    session, resources = aws
    attempts = EventPublisher.max_attempts
    events = RejectingEvents(session.client("events"), "ord-2", times=attempts)
    handle = fraud.build(settings_for(resources, "fraud"), with_clients(session, events=events))

    response = deliver(handle, resources, "fraud", placed("ord-1"), placed("ord-2"))

    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}  # SQS will deliver it again
    assert events.calls.count(["ord-2"]) == attempts
    assert [e["detail"]["workflow_id"] for e in on_the_bus(session, resources)] == ["ord-1"]

    assert deliver(handle, resources, "fraud", placed("ord-2"), receive_count=2) == {"batchItemFailures": []}
    assert [e["detail"]["workflow_id"] for e in on_the_bus(session, resources)] == ["ord-2"]  # once, not dropped


# --- fault 11: an event over the PutEvents size limit -------------------------------------------------------

def test_fault_result_over_the_size_limit_becomes_a_failure_result_at_once(aws):
    session, resources = aws
    settings = settings_for(resources, "fraud")
    clients = Clients.create(session)
    agent, workflow = locate("fraud", MANIFEST)

    def decide(order) -> Decision:
        # Non-ASCII text: 3 bytes a character in UTF-8, as EventBridge counts it (not 6 as an ASCII escape).
        pad = ("é" * (MAX_ENTRY_BYTES // 2)) if order.order_id == "ord-big" else "é" * (MAX_ENTRY_BYTES // 4)
        return Decision("Order Verified", "fine", {"pad": pad})

    runner = AgentRunner(agent, workflow, EventPublisher(clients.events, settings.event_bus_name), decide=decide)
    handle = sqs_function(runner.handle, dead_letter_sink(settings, clients, agent.name))

    response = deliver(handle, resources, "fraud", placed("ord-big"), placed("ord-small"))

    assert response == {"batchItemFailures": []}  # nothing to retry: the answer is final
    published = {e["detail"]["workflow_id"]: e for e in on_the_bus(session, resources)}
    assert published["ord-small"]["detail-type"] == "Order Verified"  # 192 KB of UTF-8: within the limit
    big = published["ord-big"]
    assert big["detail-type"] == "Order Flagged" and big["detail"]["outcome"] == "failure"
    assert "result too large to publish" in big["detail"]["reason"] and str(MAX_ENTRY_BYTES) in big["detail"]["reason"]
    assert drain(session.client("sqs"), resources.consumers["fraud"].dlq_url) == []


# --- fault 3/9: a decision made on a stale record never wins the finish ----------------------------------

class Choreographed:
    """A boto3 client whose every call takes one lock (moto is not thread-safe); ``before``/``after`` run
    outside it, ``after`` even when the call failed (a refused conditional write is a ClientError)."""

    def __init__(self, client: Any, lock: threading.Lock, before=None, after=None) -> None:
        self._client, self._lock, self._before, self._after = client, lock, before, after

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            if self._before:
                self._before(name, kwargs)
            try:
                with self._lock:
                    return attribute(*args, **kwargs)
            finally:
                if self._after:
                    self._after(name, kwargs)

        return call


def is_finish(operation: str, kwargs: dict) -> bool:
    """The coordinator's finish: the one update that stores the outcome."""
    return operation == "update_item" and "outcome" in kwargs.get("ExpressionAttributeNames", {}).values()


def result(agent: str, detail_type: str, order_id: str = ORDER_ID) -> dict:
    detail = {
        "workflow": "order-fulfillment", "workflow_id": order_id, "agent": agent,
        "outcome": "success", "reason": None, "data": {}, "started_at": "2026-11-26T11:07:08.123Z",
        "finished_at": "2026-11-26T11:07:08.500Z", "duration_ms": 120.0, "idempotency_key": f"{order_id}:{agent}",
        "trigger_digest": trigger_digest(order(order_id)),
    }
    return eventbridge_envelope(detail_type, f"agentbus.agent.{agent}", detail)


def test_fault_deadline_decided_on_a_stale_record_does_not_win_the_finish(aws):
    """The deadline reads the record while shipping's result is missing; the result lands; only then does the
    deadline try to finish with its now stale TIMED_OUT. The finish is conditioned on the version the decision
    was made on, so it must lose, decide again on the fresh record, and the order completes (every result was
    in before any finish). Without that condition the stale time-out would win (status RUNNING still holds)."""
    session, resources = aws
    capture = capture_outcomes(session, resources)
    settings = settings_for(resources, "coordinator")
    handle = coordinator.build(settings, Clients.create(session))
    for envelope in (placed(), result("fraud", "Order Verified"), result("inventory", "Items Reserved")):
        assert deliver(handle, resources, "coordinator", envelope) == {"batchItemFailures": []}

    lock = threading.Lock()
    deadline_read, result_recorded, deadline_tried = threading.Event(), threading.Event(), threading.Event()
    roles: dict[int, str] = {}

    def before(operation: str, kwargs: dict) -> None:
        role = roles[threading.get_ident()]
        if role == "result" and operation == "update_item" and not result_recorded.is_set():
            assert deadline_read.wait(30)  # the result's slot is written after the deadline read the record
        elif role == "result" and is_finish(operation, kwargs):
            assert deadline_tried.wait(30)  # and the result's own finish only after the deadline's first try
        elif role == "deadline" and is_finish(operation, kwargs) and not deadline_tried.is_set():
            assert result_recorded.wait(30)

    def after(operation: str, kwargs: dict) -> None:
        role = roles[threading.get_ident()]
        if role == "deadline" and operation == "query":
            deadline_read.set()
        elif role == "result" and operation == "update_item" and not is_finish(operation, kwargs):
            result_recorded.set()
        elif role == "deadline" and is_finish(operation, kwargs):
            deadline_tried.set()

    def clients() -> Clients:
        c = Clients.create(session)
        return Clients(events=Choreographed(c.events, lock), sqs=Choreographed(c.sqs, lock),
                       dynamodb=Choreographed(c.dynamodb, lock, before=before, after=after),
                       scheduler=Choreographed(c.scheduler, lock))

    deadline = eventbridge_envelope("Workflow Deadline Reached", "agentbus.deadline",
                                    {"workflow": "order-fulfillment", "workflow_id": ORDER_ID})
    responses: dict[str, dict] = {}
    errors: list[BaseException] = []

    def run(role: str, envelope: dict) -> None:
        roles[threading.get_ident()] = role
        try:
            clock = an_hour_on if role == "deadline" else (lambda: datetime.now(UTC))
            responses[role] = deliver(coordinator.build(settings, clients(), clock=clock), resources, "coordinator",
                                      envelope)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=("deadline", deadline)),
               threading.Thread(target=run, args=("result", result("shipping", "Shipping Quoted")))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and responses == {"deadline": {"batchItemFailures": []}, "result": {"batchItemFailures": []}}
    assert deadline_read.is_set() and result_recorded.is_set() and deadline_tried.is_set()
    record = workflow_store(session.client("dynamodb"), resources, MANIFEST).load(WORKFLOW, ORDER_ID)
    assert record.status.value == "COMPLETED" and record.published
    terminal = [json.loads(m["Body"]) for m in drain(session.client("sqs"), capture)]
    assert [e["detail-type"] for e in terminal] == ["Order Completed"]
