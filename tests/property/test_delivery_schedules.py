"""Property: whatever the delivery schedule, agentbus keeps its promises.

Hypothesis draws delivery schedules over several workflows that compete for a small stock, and the real
handlers (``build(settings, clients)`` of every consumer of the manifest) run them on moto. The harness,
not moto, plays EventBridge, SQS + Lambda's poller and EventBridge Scheduler, so that hypothesis decides
what happens when:

- EventBridge: each function's ``clients.events`` is a recording bus. An accepted entry gets an event id and
  is routed by the manifest's rules (``MANIFEST.rules()`` / ``Subscription.matches``) into a pool of pending
  deliveries, one per (consumer, rule) that matches, as the rules' SQS targets would get it.
- SQS + Lambda: hypothesis picks which consumer runs next and which of its visible messages make up the batch
  (any order; duplicates of a message, as at-least-once delivery may hand out, in one batch or apart). One
  consumer may be offline (paused) for a while: its messages wait in its queue. A record reported in
  ``batchItemFailures``, or a whole batch whose invocation died, comes back after the queue's visibility
  timeout (6x the function timeout, as on AWS); after ``maxReceiveCount`` receives the redrive policy would
  move it to the DLQ (that must never happen to healthy traffic: faults are not injected into a batch holding
  a message on its last allowed receive, as in ``agentbus`` chaos).
- Faults, per invocation: the function's N-th AWS call (DynamoDB, Scheduler, SQS or PutEvents) fails with an
  error, or the process dies there (a BaseException: no ``except Exception`` cleanup runs, e.g. no release of
  the publication lease), either before the call or after it took effect; or the acknowledgement is lost
  after a successful run; or PutEvents rejects every entry 1, 2 or 4 times (4: the publisher gives up and
  the message is retried by the queue).
- EventBridge Scheduler: one-time deadline schedules the coordinator creates in moto fire when the virtual
  clock reaches them (the event goes on the bus, the schedule is deleted). Hypothesis decides when the clock
  moves, so a deadline can land at any point of a workflow; a message made invisible by a failure comes
  back only when the clock reaches it.

After the drawn steps, everything settles without faults (still in an order hypothesis picks, the clock
moving to the next redelivery or deadline whenever nothing is visible), and the promises are checked against
the tables and the recorded events: exactly one outcome per workflow (copies allowed, all equal, with its
idempotency key), a completed one with its trigger and three successes; the orders table agrees with the
outcome and holds the order; stock on hand + reserved = initial stock, reserved = the lines of HELD
reservations, and only completed orders hold one; the inventory agent never publishes two different results
for one order; nothing healthy dead-lettered, every poison message kept by each agent with its reason; no
deadline schedule fires once its workflow's outcome is published (it was deleted), none is left behind.

Single-threaded on purpose (deterministic, reproducible): the guards against concurrent invocations (the
finish's version condition, the conditional reservation record) are proven by the threaded tests in
``tests/functions``, not here. See ``docs/guarantees.md``.

Profiles (``AGENTBUS_PROPERTY_PROFILE``): ``default`` (what ``make test`` runs: derandomized, no example
database, 30 examples, no shrinking), ``explore`` (random, 500 examples, shrunk failures saved in
``.hypothesis/``) and ``debug`` (random, stops at the first failure unshrunk). ``AGENTBUS_PROPERTY_EXAMPLES``
overrides the number of examples.
"""

from __future__ import annotations

import itertools
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, Phase, event, given, note, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

import functions.common.agent as agent_module
import functions.coordinator.logic as coordinator_logic
from agentbus.local.lambda_events import LambdaContext, eventbridge_envelope, sqs_event, sqs_record
from agentbus.local.runtime import parse_at_expression
from functions.common.clients import Clients
from functions.common.dead_letters import CONSUMER_ATTRIBUTE, REASON_ATTRIBUTE
from functions.common.settings import Settings
from functions.coordinator import handler as coordinator_handler
from functions.coordinator.logic import schedule_name
from functions.manifest import COORDINATOR_SOURCE, MANIFEST, PRODUCER_SOURCE, WorkflowStatus
from functions.orders.fraud import handler as fraud_handler
from functions.orders.inventory import handler as inventory_handler
from functions.orders.shipping import handler as shipping_handler
from tests.conftest import settings_for, workflow_store

WORKFLOW = MANIFEST.workflow("order-fulfillment")
TERMINAL = {detail_type: status.value for status, detail_type in WORKFLOW.terminal_detail_types.items()}
BUILDERS = {"fraud": fraud_handler.build, "inventory": inventory_handler.build,
            "shipping": shipping_handler.build, "coordinator": coordinator_handler.build}
assert set(BUILDERS) == {consumer.name for consumer in MANIFEST.consumers}, "a consumer of the manifest is missing"
INVENTORY_SOURCE = MANIFEST.agent("inventory").source
EPOCH = datetime(2026, 11, 26, 11, 0, 0, tzinfo=UTC)
MAX_CHAOTIC_STEPS = 120
MAX_DUPLICATES = 6
MAX_DRAIN_STEPS = 2000

_deserialize = TypeDeserializer().deserialize
_examples = itertools.count(1)

# Profiles of this test only (AGENTBUS_PROPERTY_PROFILE; AGENTBUS_PROPERTY_EXAMPLES overrides the count):
# - default: what `make test` runs. Derandomized and without an example database, so every run (CI or a
#   laptop) tries the same bounded set of schedules and a failure reproduces. No shrinking: shrinking a
#   schedule takes minutes; a failure prints its whole trace as found (and `explore` shrinks it).
# - explore: random schedules, many more of them, shrunk failures saved under .hypothesis/, replayed first.
# - debug: like explore, but stops at the first failure without shrinking it.
PROFILES = {
    "default": settings(max_examples=int(os.environ.get("AGENTBUS_PROPERTY_EXAMPLES", "30")), deadline=None,
                        derandomize=True, database=None, print_blob=True,
                        phases=[Phase.explicit, Phase.generate],
                        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]),
}
PROFILES["explore"] = settings(PROFILES["default"], derandomize=False,
                               max_examples=int(os.environ.get("AGENTBUS_PROPERTY_EXAMPLES", "500")),
                               phases=list(Phase),
                               database=DirectoryBasedExampleDatabase(".hypothesis/examples"))
PROFILES["debug"] = settings(PROFILES["explore"], database=None, phases=[Phase.generate])
PROFILE_NAME = os.environ.get("AGENTBUS_PROPERTY_PROFILE", "default")
PROFILE = PROFILES[PROFILE_NAME]
EXPLORING = PROFILE_NAME != "default"  # then no pytest-timeout: hundreds of examples take minutes


# --- the virtual clock ------------------------------------------------------------------------------

class VirtualClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def datetime_class(self) -> type[datetime]:
        """A ``datetime`` whose ``now()`` is this clock (patched into the modules that read the time)."""
        clock = self

        class ClockedDatetime(datetime):
            @classmethod
            def now(cls, tz=None):  # noqa: ANN001, ANN206 - datetime's signature
                return clock.now.astimezone(tz) if tz else clock.now.replace(tzinfo=None)

        return ClockedDatetime


# --- faults ------------------------------------------------------------------------------------------

class ProcessDied(BaseException):  # noqa: N818 - it is not an error the code could handle
    """The function's process is gone (timeout, out of memory, lost host): no ``except Exception`` runs."""


@dataclass(frozen=True)
class Plan:
    """What goes wrong in one invocation."""

    kind: str = "none"  # none | error | die | lose_ack | put_rejected
    at_call: int = 0  # error/die: at the function's N-th AWS call of this invocation
    after: bool = False  # error/die: the call took effect, then the failure
    put_rejections: int = 0  # put_rejected: PutEvents calls that reject every entry

    def describe(self) -> str:
        if self.kind in ("error", "die"):
            return f"{self.kind} {'after' if self.after else 'before'} call #{self.at_call}"
        if self.kind == "put_rejected":
            return f"PutEvents rejects {self.put_rejections}x"
        return self.kind


NO_FAULT = Plan()


class Faults:
    """The current invocation's plan, consulted by every AWS call a function makes."""

    def __init__(self) -> None:
        self.plan = NO_FAULT
        self.calls: list[str] = []
        self.fired: str | None = None
        self.rejections_left = 0

    def start(self, plan: Plan) -> None:
        self.plan, self.calls, self.fired = plan, [], None
        self.rejections_left = plan.put_rejections if plan.kind == "put_rejected" else 0

    def around(self, service: str, operation: str, call):
        index = len(self.calls)
        self.calls.append(f"{service}.{operation}")
        hit = self.plan.kind in ("error", "die") and self.fired is None and index == self.plan.at_call
        if hit and not self.plan.after:
            raise self._failure(service, operation)
        response = call()
        if hit:
            raise self._failure(service, operation)
        return response

    def _failure(self, service: str, operation: str) -> BaseException:
        self.fired = f"{self.plan.describe()} ({service}.{operation})"
        if self.plan.kind == "die":
            return ProcessDied(self.fired)
        return ClientError({"Error": {"Code": "InternalServerError", "Message": f"injected: {self.fired}"}},
                           operation)


class Faulty:
    """A boto3 client (or the recording bus) whose every call goes through ``Faults``."""

    def __init__(self, service: str, client: Any, faults: Faults) -> None:
        self._service, self._client, self._faults = service, client, faults

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            return self._faults.around(self._service, name, lambda: attribute(*args, **kwargs))

        return call


# --- deliveries --------------------------------------------------------------------------------------

@dataclass
class Delivery:
    consumer: str
    envelope: dict[str, Any]
    message_id: str
    visible_at: datetime
    receive_count: int = 0
    copy: bool = False

    def describe(self) -> str:
        detail = self.envelope["detail"]
        who = detail.get("workflow_id") or detail.get("order_id")
        return f"{self.envelope['detail-type']}[{who}]#{self.message_id}"


@dataclass
class Example:
    """One drawn scenario: its workflows, their orders, the stock they compete for."""

    number: int
    stock: dict[str, int]  # SKU -> initial units on hand
    orders: dict[str, dict[str, Any]]  # workflow id -> Order Placed detail
    kinds: dict[str, str]  # workflow id -> what kind of order it is
    copies: dict[str, int]  # workflow id -> how many times the producer puts it

    @property
    def workflow_ids(self) -> list[str]:
        return list(self.orders)


class RecordingBus:
    """PutEvents for the functions: records and routes accepted entries; rejects them when the plan says so."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        if not 1 <= len(Entries) <= 10:
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "1-10 entries"}}, "PutEvents")
        faults = self.harness.faults
        if faults.rejections_left > 0:
            faults.rejections_left -= 1
            results = [{"ErrorCode": "InternalFailure", "ErrorMessage": "injected"} for _ in Entries]
            return {"FailedEntryCount": len(Entries), "Entries": results}
        return {"FailedEntryCount": 0, "Entries": [{"EventId": self.harness.put(entry)} for entry in Entries]}


class Harness:
    def __init__(self, session, resources, example: Example) -> None:
        self.session, self.resources, self.example = session, resources, example
        self.clock = VirtualClock(EPOCH)
        self.dynamodb = session.client("dynamodb")
        self.sqs = session.client("sqs")
        self.scheduler = session.client("scheduler")
        self.faults = Faults()
        self.bus = RecordingBus(self)
        self.pool: list[Delivery] = []
        self.log: list[dict[str, Any]] = []  # every event accepted on the bus, in order
        self.redriven: list[Delivery] = []  # moved to a DLQ by the redrive policy (must stay empty)
        self.trace: list[str] = []
        self.duplicates = 0
        self._ids = itertools.count(1)
        self.handlers = {name: build(self._settings(name), self._clients())
                         for name, build in BUILDERS.items()}
        self.group = resources.schedule_group
        self._schedules: dict[str, datetime] | None = None
        self.offline: str | None = None  # a paused consumer: its messages wait in its queue
        self.stale_schedules: list[str] = []  # schedules that fired although their outcome was published
        self.store = workflow_store(self.dynamodb, resources)

    # wiring -----------------------------------------------------------------------------------------

    def _settings(self, consumer: str) -> Settings:
        # One record at a time: moto in-process is not thread-safe, and the schedule decides the order.
        return settings_for(self.resources, consumer, record_concurrency=1)

    def _clients(self) -> Clients:
        return Clients(
            events=Faulty("events", self.bus, self.faults),
            sqs=Faulty("sqs", self.session.client("sqs"), self.faults),
            dynamodb=Faulty("dynamodb", self.session.client("dynamodb"), self.faults),
            scheduler=Faulty("scheduler", self.session.client("scheduler"), self.faults),
        )

    def seed(self) -> None:
        table = self.resources.tables["inventory"]
        for sku, units in self.example.stock.items():
            self.dynamodb.put_item(TableName=table, Item={
                "pk": {"S": f"sku#{sku}"}, "sku": {"S": sku}, "on_hand": {"N": str(units)}, "reserved": {"N": "0"},
            })

    # EventBridge ------------------------------------------------------------------------------------

    def put(self, entry: dict[str, Any]) -> str:
        """Accept one PutEvents entry: give it an id and deliver it to every rule's target that matches."""
        assert entry.get("EventBusName") in (self.resources.bus_name, self.resources.bus_arn), entry
        event_id = f"evt-{self.example.number}-{next(self._ids)}"
        envelope = eventbridge_envelope(
            entry["DetailType"], entry["Source"], json.loads(entry["Detail"]), event_id=event_id,
            time_=self.clock.now.strftime("%Y-%m-%dT%H:%M:%SZ"), resources=entry.get("Resources"),
        )
        self.log.append(envelope)
        for consumer, subscription in MANIFEST.rules():
            if subscription.matches(envelope["source"], envelope["detail-type"]):
                self.enqueue(consumer.name, envelope)
        return event_id

    def enqueue(self, consumer: str, envelope: dict[str, Any], copy: bool = False) -> Delivery:
        delivery = Delivery(consumer, envelope, f"msg-{self.example.number}-{next(self._ids)}",
                            visible_at=self.clock.now, copy=copy)
        self.pool.append(delivery)
        return delivery

    def produce(self) -> None:
        """The producer puts every trigger (some twice, as a client retry does: another event id)."""
        for workflow_id, order in self.example.orders.items():
            for _ in range(self.example.copies[workflow_id]):
                self.put({"EventBusName": self.resources.bus_name, "Source": PRODUCER_SOURCE,
                          "DetailType": "Order Placed", "Detail": json.dumps(order)})

    # SQS + Lambda -----------------------------------------------------------------------------------

    def visible(self) -> list[Delivery]:
        return [d for d in self.pool if d.visible_at <= self.clock.now and d.consumer != self.offline]

    def invoke(self, consumer_name: str, batch: list[Delivery], plan: Plan, duplicate: bool = False) -> None:
        consumer = MANIFEST.consumer(consumer_name)
        if duplicate and self.duplicates < MAX_DUPLICATES:
            self.duplicates += 1
            self.enqueue(consumer_name, batch[0].envelope, copy=True)
        if any(d.receive_count + 1 >= consumer.max_receive_count for d in batch):
            plan = NO_FAULT  # chaos never dead-letters a healthy message
        for delivery in batch:
            delivery.receive_count += 1
        queue_arn = self.resources.consumers[consumer_name].queue_arn
        event = sqs_event([sqs_record(d.envelope, queue_arn, message_id=d.message_id, receive_count=d.receive_count)
                           for d in batch])
        if consumer_name == MANIFEST.coordinator.name:
            self._schedules = None
        self.faults.start(plan)
        died = False
        try:
            response = self.handlers[consumer_name](event, LambdaContext(consumer_name))
        except ProcessDied:
            died, response = True, None
        finally:
            fired, calls = self.faults.fired, self.faults.calls
            self.faults.start(NO_FAULT)
        if died or plan.kind == "lose_ack":
            failed = {d.message_id for d in batch}
        else:
            failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        self.trace.append(
            f"{self.clock.now:%H:%M:%S} {consumer_name} <- {[d.describe() for d in batch]} plan={plan.describe()}"
            f"{' fired=' + fired if fired else ''} calls={len(calls)} failed={sorted(failed)}"
        )
        for delivery in batch:
            if delivery.message_id not in failed:
                self.pool.remove(delivery)
            elif delivery.receive_count >= consumer.max_receive_count:
                self.pool.remove(delivery)
                self.redriven.append(delivery)
            else:
                delivery.visible_at = self.clock.now + timedelta(seconds=consumer.visibility_timeout_s)

    # EventBridge Scheduler ---------------------------------------------------------------------------

    def schedules(self) -> dict[str, datetime]:
        """This example's deadline schedules in moto: name -> when it fires (read again after anything that
        may have created or deleted one: a coordinator invocation, a firing)."""
        if self._schedules is None:
            self._schedules = self._read_schedules()
        return dict(self._schedules)

    def _read_schedules(self) -> dict[str, datetime]:
        prefix = f"{WORKFLOW.name}-prop-{self.example.number}-"
        names = [s["Name"] for s in self.scheduler.list_schedules(GroupName=self.group, NamePrefix=prefix)
                 .get("Schedules", [])]
        due = {}
        for name in names:
            schedule = self.scheduler.get_schedule(Name=name, GroupName=self.group)
            due[name] = parse_at_expression(schedule["ScheduleExpression"])
        return due

    def next_time(self, schedules: dict[str, datetime]) -> datetime | None:
        later = [d.visible_at for d in self.pool if d.visible_at > self.clock.now] + list(schedules.values())
        return min(later, default=None)

    def advance(self, schedules: dict[str, datetime]) -> None:
        """Move the clock to the next redelivery or deadline; fire every schedule due by then."""
        moment = self.next_time(schedules)
        assert moment is not None
        self.clock.now = max(self.clock.now, moment)
        self.trace.append(f"{self.clock.now:%H:%M:%S} clock")
        for name, at in sorted(schedules.items(), key=lambda item: item[1]):
            if at <= self.clock.now:
                self.fire(name)

    def fire(self, name: str) -> None:
        schedule = self.scheduler.get_schedule(Name=name, GroupName=self.group)
        target = schedule["Target"]
        workflow_id = json.loads(target["Input"])["workflow_id"]
        record = self.store.load(WORKFLOW.name, workflow_id)
        if record is not None and record.published:
            # Publishing deletes the schedule before marking the record published: one still there was never deleted.
            self.stale_schedules.append(name)
        assert target["Arn"] == self.resources.bus_arn
        parameters = target["EventBridgeParameters"]
        self.put({"EventBusName": self.resources.bus_name, "Source": parameters["Source"],
                  "DetailType": parameters["DetailType"], "Detail": target["Input"]})
        assert schedule["ActionAfterCompletion"] == "DELETE"
        self.scheduler.delete_schedule(Name=name, GroupName=self.group)
        self._schedules = None
        self.trace.append(f"{self.clock.now:%H:%M:%S} scheduler fired {name}")

    # driving -----------------------------------------------------------------------------------------

    def chaotic_steps(self, data: st.DataObject, budget: int) -> None:
        """``budget`` steps where anything may happen: any order, duplicates, faults, time passing, and one
        consumer possibly offline (paused) for a while, its messages waiting in its queue."""
        # The inventory agent most often: it is the one whose lateness matters most (compensation first).
        offline = data.draw(st.sampled_from([None] * 3 + ["inventory", *BUILDERS]), label="offline consumer")
        offline_steps = data.draw(st.integers(1, max(1, budget)), label="offline for") if offline else 0
        if offline:
            self.trace.append(f"{offline} offline for {offline_steps} steps")
        for step in range(budget):
            self.offline = offline if step < offline_steps else None
            schedules = self.schedules()
            visible = self.visible()
            later = self.next_time(schedules) is not None
            if not visible and not later:
                break
            if not visible or (later and data.draw(st.sampled_from(["deliver"] * 8 + ["advance"]),
                                                   label="action") == "advance"):
                self.advance(schedules)
                continue
            consumers = sorted({d.consumer for d in visible})
            consumer = data.draw(st.sampled_from(consumers), label="consumer")
            mine = [d for d in visible if d.consumer == consumer]
            picks = data.draw(st.lists(st.integers(0, len(mine) - 1), min_size=1, max_size=min(3, len(mine)),
                                       unique=True), label="batch")
            plan = data.draw(plans(), label="fault")
            duplicate = data.draw(st.sampled_from([False] * 4 + [True]), label="duplicate")
            self.invoke(consumer, [mine[i] for i in picks], plan, duplicate)
        self.offline = None

    def settle(self, data: st.DataObject) -> None:
        """No more faults: deliver what is visible one message at a time, in an order hypothesis picks (first
        come first served when it shrinks); when nothing is visible, let time pass to the next redelivery or
        deadline. Ends when nothing is pending and no schedule is left."""
        for _ in range(MAX_DRAIN_STEPS):
            visible = self.visible()
            if visible:
                pick = data.draw(st.integers(0, len(visible) - 1), label="settle") if len(visible) > 1 else 0
                self.invoke(visible[pick].consumer, [visible[pick]], NO_FAULT)
                continue
            schedules = self.schedules()
            if self.next_time(schedules) is None:
                return
            self.advance(schedules)
        raise AssertionError(f"not settled after {MAX_DRAIN_STEPS} steps: {[d.describe() for d in self.pool]}")

    def stats(self) -> list[str]:
        """What the example exercised (``pytest --hypothesis-show-statistics``)."""
        lines = sorted({f"outcome {e['detail-type']}" for e in self.log if e["detail-type"] in TERMINAL})
        lines += sorted({f"fault {line.split('fired=')[1].split(' (')[0].split(' #')[0]}"
                         for line in self.trace if "fired=" in line})
        if any("scheduler fired" in line for line in self.trace):
            lines.append("a deadline fired")
        if self.duplicates:
            lines.append("duplicate deliveries")
        lines += [f"consumer offline: {line.split()[0]}" for line in self.trace if " offline for " in line]
        if any(e["source"] == INVENTORY_SOURCE and e["detail"]["reason"] == "order already finished" for e in self.log):
            lines.append("inventory came after the outcome")
        for workflow_id in self.example.workflow_ids:
            reservation = self.item("inventory", {"pk": {"S": f"reservation#{workflow_id}"}})
            if reservation is not None and reservation["status"] in ("CANCELLED", "RELEASED"):
                lines.append(f"reservation {reservation['status']}")
        return sorted(set(lines))

    # reading the outcome -----------------------------------------------------------------------------

    def item(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        found = self.dynamodb.get_item(TableName=self.resources.tables[table], Key=key, ConsistentRead=True)
        item = found.get("Item")
        return {k: _deserialize(v) for k, v in item.items()} if item else None

    def dead_letters(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(consumer, reason, event) of every message kept in a DLQ; the queues are emptied."""
        kept = []
        for name, consumer in self.resources.consumers.items():
            while messages := self.sqs.receive_message(QueueUrl=consumer.dlq_url, MaxNumberOfMessages=10,
                                                       MessageAttributeNames=["All"]).get("Messages", []):
                for message in messages:
                    attributes = message.get("MessageAttributes", {})
                    assert attributes[CONSUMER_ATTRIBUTE]["StringValue"] == name
                    kept.append((name, attributes[REASON_ATTRIBUTE]["StringValue"], json.loads(message["Body"])))
                    self.sqs.delete_message(QueueUrl=consumer.dlq_url, ReceiptHandle=message["ReceiptHandle"])
        return kept


# --- the checks --------------------------------------------------------------------------------------

def check_promises(h: Harness) -> None:
    example = h.example
    assert h.pool == [] and h.schedules() == {}, "not settled"
    assert h.redriven == [], f"healthy messages dead-lettered by the redrive policy: " \
                             f"{[d.describe() for d in h.redriven]}"
    assert h.stale_schedules == [], f"deadline schedules not deleted when their workflow finished first: " \
                                    f"{h.stale_schedules}"
    store = h.store

    # Exactly one outcome per workflow: copies may be published, all equal, with the outcome's key.
    outcomes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for envelope in h.log:
        if envelope["source"] == COORDINATOR_SOURCE and envelope["detail-type"] in TERMINAL:
            outcomes[envelope["detail"]["workflow_id"]].append(envelope)
    assert set(outcomes) <= set(example.workflow_ids), f"outcomes of unknown workflows: {sorted(outcomes)}"
    status: dict[str, str] = {}
    for workflow_id in example.workflow_ids:
        published = outcomes[workflow_id]
        assert published, f"{workflow_id}: no outcome published"
        first = published[0]
        for copy in published[1:]:
            assert (copy["detail-type"], copy["detail"]) == (first["detail-type"], first["detail"]), \
                f"{workflow_id}: two different outcomes {first['detail']['status']} / {copy['detail']['status']}"
        status[workflow_id] = first["detail"]["status"]
        assert TERMINAL[first["detail-type"]] == status[workflow_id]
        assert first["detail"]["idempotency_key"] == f"{workflow_id}:{status[workflow_id]}"
        record = store.load(WORKFLOW.name, workflow_id)
        assert record is not None and record.status.value == status[workflow_id]
        assert record.published and record.outcome == first["detail"], f"{workflow_id}: record and event differ"

        # What the order allows: only an order every agent accepts may complete, it needs all three results
        # and its trigger (the coordinator validated the order).
        if status[workflow_id] == WorkflowStatus.COMPLETED.value:
            assert first["detail"]["timings"]["trigger_received_at"], f"{workflow_id}: completed without its trigger"
            assert example.kinds[workflow_id] == "normal", f"{workflow_id}: a {example.kinds[workflow_id]} completed"
            assert {a: r["outcome"] for a, r in first["detail"]["results"].items()} == {
                "fraud": "success", "inventory": "success", "shipping": "success"}
        if example.kinds[workflow_id] == "invalid":
            assert status[workflow_id] == WorkflowStatus.REJECTED.value

        # The orders table agrees with the outcome event, and holds the order once the trigger came in.
        order = h.item("orders", {"order_id": {"S": workflow_id}})
        assert order is not None, f"{workflow_id}: not in the orders table"
        assert order["status"] == status[workflow_id], \
            f"{workflow_id}: orders table says {order['status']}, the outcome event {status[workflow_id]}"
        assert order["idempotency_key"] == first["detail"]["idempotency_key"]
        placed = example.orders[workflow_id]
        assert order["customer_id"] == placed["customer_id"], \
            f"{workflow_id}: the orders table lacks the order's details (customer_id {order['customer_id']!r})"
        assert [(line["sku"], int(line["quantity"])) for line in order["items"]] == [
            (line["sku"], line["quantity"]) for line in placed["items"]]

    # Stock: on hand + reserved = initial; reserved = HELD lines; only completed orders hold a reservation.
    held: dict[str, int] = defaultdict(int)
    for workflow_id in example.workflow_ids:
        reservation = h.item("inventory", {"pk": {"S": f"reservation#{workflow_id}"}})
        holds = reservation is not None and reservation["status"] == "HELD"
        if status[workflow_id] == WorkflowStatus.COMPLETED.value:
            assert holds, f"{workflow_id}: COMPLETED without a held reservation ({reservation})"
            assert sorted((line["sku"], int(line["quantity"])) for line in reservation["lines"]) == sorted(
                (line["sku"], line["quantity"]) for line in example.orders[workflow_id]["items"])
        else:
            assert not holds, f"{workflow_id}: {status[workflow_id]} but its reservation is still held"
        if holds:
            for line in reservation["lines"]:
                held[line["sku"]] += int(line["quantity"])

        # The inventory agent never publishes two different results for one order (fault 4).
        results = [e for e in h.log if e["source"] == INVENTORY_SOURCE and e["detail"]["workflow_id"] == workflow_id]
        decisions = {(e["detail-type"], e["detail"]["reason"], json.dumps(e["detail"]["data"], sort_keys=True))
                     for e in results}
        assert len(decisions) <= 1, f"{workflow_id}: inventory decided differently: {decisions}"
        if reservation is not None and reservation["status"] != "CANCELLED":
            assert all(e["detail"] == json.loads(reservation["result"]) for e in results), \
                f"{workflow_id}: inventory republished something else than its stored result"

    for sku, initial in example.stock.items():
        item = h.item("inventory", {"pk": {"S": f"sku#{sku}"}})
        on_hand, reserved = int(item["on_hand"]), int(item["reserved"])
        assert on_hand >= 0, f"{sku}: oversold ({on_hand} on hand)"
        assert on_hand + reserved == initial, f"{sku}: on hand {on_hand} + reserved {reserved} != initial {initial}"
        assert reserved == held[sku], f"{sku}: reserved {reserved}, but held reservations add up to {held[sku]}"

    # Poison (an invalid order) is kept with its reason by each agent; the coordinator rejects it instead.
    kept = h.dead_letters()
    for consumer, reason, envelope in kept:
        workflow_id = envelope["detail"].get("order_id")
        assert workflow_id in example.orders and example.kinds[workflow_id] == "invalid", (consumer, reason)
        assert consumer != "coordinator" and "quantity" in reason, (consumer, reason)
    for workflow_id, kind in example.kinds.items():
        if kind == "invalid":
            agents = {consumer for consumer, _, envelope in kept if envelope["detail"].get("order_id") == workflow_id}
            assert agents == {a.name for a in WORKFLOW.agents}, f"{workflow_id}: kept by {agents} only"


# --- strategies -----------------------------------------------------------------------------------------

ORDER_KINDS = ("normal", "normal", "normal", "over_limit", "unknown_sku", "no_carrier", "invalid")


@st.composite
def plans(draw) -> Plan:
    kind = draw(st.sampled_from(["none"] * 3 + ["error", "die", "lose_ack", "put_rejected"]))
    if kind in ("error", "die"):
        return Plan(kind, at_call=draw(st.integers(0, 7)), after=draw(st.booleans()))
    if kind == "put_rejected":
        # 4 = every attempt: the publisher gives up and the queue retries (its backoff really sleeps 0.35 s).
        return Plan(kind, put_rejections=draw(st.sampled_from([1, 1, 2, 4])))
    return Plan(kind)


@st.composite
def examples(draw) -> Example:
    number = next(_examples)
    skus = [f"SKU-PROP{number}-A", f"SKU-PROP{number}-B"]
    stock = {sku: draw(st.integers(0, 6), label=f"stock {sku[-1]}") for sku in skus}
    orders, kinds, copies = {}, {}, {}
    for index in range(draw(st.integers(2, 4), label="workflows")):
        workflow_id = f"prop-{number}-{index}"
        kind = draw(st.sampled_from(ORDER_KINDS), label=f"{workflow_id} kind")
        ordered = draw(st.sampled_from([skus[:1], skus[1:], skus]), label=f"{workflow_id} skus")
        items = [{"sku": sku, "quantity": draw(st.integers(1, 3)), "unit_price": 25.0} for sku in ordered]
        country = "DE"
        if kind == "over_limit":
            items[0]["unit_price"] = 20000.0
        elif kind == "unknown_sku":
            items.append({"sku": f"SKU-PROP{number}-GHOST", "quantity": 1, "unit_price": 10.0})
        elif kind == "no_carrier":
            country = "BR"
        elif kind == "invalid":
            items[0]["quantity"] = draw(st.sampled_from([0, -1]))
        orders[workflow_id] = {
            "order_id": workflow_id, "customer_id": f"cus-{index}", "currency": "EUR", "items": items,
            "shipping_address": {"country": country, "postal_code": "10115"},
        }
        kinds[workflow_id] = kind
        copies[workflow_id] = draw(st.integers(1, 2), label=f"{workflow_id} trigger copies")
    return Example(number, stock, orders, kinds, copies)


# --- the property -----------------------------------------------------------------------------------

@pytest.mark.timeout(0 if EXPLORING else 300)
@settings(PROFILE)
@given(example=examples(), budget=st.integers(0, MAX_CHAOTIC_STEPS), data=st.data())
def test_promises_hold_whatever_the_delivery_schedule(topology, example: Example, budget: int, data):
    session, resources = topology
    h = Harness(session, resources, example)
    clocked = h.clock.datetime_class()
    with mock.patch.object(coordinator_logic, "datetime", clocked), \
            mock.patch.object(agent_module, "datetime", clocked):
        h.seed()
        h.produce()
        try:
            h.chaotic_steps(data, budget)
            h.settle(data)
            check_promises(h)
            for line in h.stats():
                event(line)
        finally:
            for line in h.trace:
                note(line)
            h.dead_letters()  # leave the DLQs empty for the next example


def test_the_harness_controls_the_coordinator_clock(topology):
    """Guard of the harness itself: the coordinator reads the virtual clock, so deadlines are driven by it."""
    session, resources = topology
    example = Example(0, {}, {"prop-0-0": {"order_id": "prop-0-0", "customer_id": "c", "currency": "EUR",
                                           "items": [{"sku": "SKU-MOUSE", "quantity": 1, "unit_price": 1.0}],
                                           "shipping_address": {"country": "DE", "postal_code": "1"}}},
                      {"prop-0-0": "normal"}, {"prop-0-0": 1})
    h = Harness(session, resources, example)
    with mock.patch.object(coordinator_logic, "datetime", h.clock.datetime_class()):
        h.produce()
        [trigger] = [d for d in h.pool if d.consumer == "coordinator"]
        h.invoke("coordinator", [trigger], NO_FAULT)
        assert h.schedules() == {
            schedule_name(WORKFLOW.name, "prop-0-0"): EPOCH + timedelta(seconds=WORKFLOW.deadline_s)}
        h.advance(h.schedules())
        assert h.clock.now == EPOCH + timedelta(seconds=WORKFLOW.deadline_s)
        [deadline] = [d for d in h.pool if d.consumer == "coordinator"]
        h.invoke("coordinator", [deadline], NO_FAULT)
    assert [e["detail-type"] for e in h.log if e["source"] == COORDINATOR_SOURCE] == ["Order Timed Out"]
    assert h.schedules() == {}

