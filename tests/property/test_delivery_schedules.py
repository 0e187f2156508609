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

What is drawn: orders and access requests (both coordinated workflows of the manifest), an access request
sometimes sharing an order's id; every kind of request (orders: accepted, over the fraud limit, unknown SKU,
no carrier, invalid ``quantity`` or ``unit_price`` "NaN"/"Infinity"/"1e200"; access: granted, denied,
risky (the risk agent asks for a manager's approval), invalid ``access_level``); **people and cancels**: a
manager's approvals and declines (sometimes two answers, sometimes before anyone asked, sometimes from a
forged source), cancels of any request (sometimes from a forged source), each put at a drawn step; a **k-of-n**
change review (the test-only ``change-review`` of ``tests/workflows``: three reviewers, two must approve; a
change all approve, two approve, or none does); and
triggers carrying values DynamoDB cannot store (an extra ``loyalty_points`` of ``1e308``, a 40-digit integer
or ``1e400``, which ``json.loads`` reads as infinity); the same id put in two
**conflicting versions** (other contents: a cheap order and one over the limit, other SKUs), each put at the
start or at a drawn later step (after the first version may have finished), some put twice as a client
retry does.

After the drawn steps, everything settles without faults (still in an order hypothesis picks, the clock
moving to the next redelivery or deadline whenever nothing is visible), and the promises are checked against
the tables and the recorded events:

- no record is RUNNING once every deadline has passed, whatever opened it; exactly one outcome per
  (workflow, id) (copies allowed, all equal, with its idempotency key), equal to the stored one;
- one version: the record stores a version that was put, its ``trigger_digest`` is that detail's digest,
  every result counted toward the outcome carries it, and the main table's row (orders / access-requests)
  shows that version and no other; every other version is refused: kept in the record (``refused``) and
  dead-lettered by the coordinator with a reason naming both digests;
- only a version every agent accepts may complete, with a success from every agent (an over-limit version
  never completes: fraud cannot be bypassed); an invalid or unstorable version is REJECTED with a reason
  naming the field, unless its deadline passed before any trigger reached the coordinator ("the trigger
  never arrived");
- stock on hand + reserved = initial stock, reserved = the lines of HELD reservations, and nothing is
  reserved for an order without a COMPLETED outcome (a completed order's reservation holds the stored
  version's lines, made for that version); inventory never publishes two different results for one version;
- k of n: a change completes only with at least two approvals, named in the outcome's quorum, and is refused
  only when two approvals are out of reach;
- people and cancels: a risky request completes only with a manager's approval counted; a cancel written
  into a record means the workflow ended CANCELLED (its reason naming who); every answer and cancel put is
  counted, kept aside as late with its reason, or dead-lettered by the coordinator with its reason (forged,
  or nothing to answer/cancel): nothing is lost, and a forged one never counts;
- agents dead-letter only invalid triggers (every agent of the workflow, the reason naming the field), the
  coordinator only refused versions, forged answers and cancels, and those with nothing to act on; nothing
  healthy is dead-lettered; no deadline schedule fires once its
  workflow's outcome is published (it was deleted), none is left behind.

Single-threaded on purpose (deterministic, reproducible): the guards against concurrent invocations (the
finish's version condition, the conditional reservation record) are proven by the threaded tests in
``tests/functions``, not here. See ``docs/guarantees.md``.

Profiles (``AGENTBUS_PROPERTY_PROFILE``): ``default`` (what ``make test`` runs: derandomized, no example
database, 30 examples, no shrinking), ``explore`` (random, 500 examples, shrunk failures saved in
``.hypothesis/``) and ``debug`` (random, stops at the first failure unshrunk). ``AGENTBUS_PROPERTY_EXAMPLES``
overrides the number of examples.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, Phase, event, given, note, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

import functions.common.moments as moments
from agentbus.local.lambda_events import LambdaContext, eventbridge_envelope, sqs_event, sqs_record
from agentbus.local.runtime import parse_at_expression
from functions.common.clients import Clients
from functions.common.dead_letters import CONSUMER_ATTRIBUTE, REASON_ATTRIBUTE
from functions.common.digest import trigger_digest
from functions.common.settings import Settings
from functions.common.spec import CANCEL_DETAIL_TYPE, OPERATOR_SOURCE, resolve
from functions.coordinator.deadlines import schedule_name
from functions.coordinator.record import NO_TRIGGER_REASON
from functions.manifest import COORDINATOR_SOURCE, WorkflowStatus
from tests.conftest import load_detail, settings_for, workflow_store
from tests.pinned import MANIFEST as SHIPPED  # the shipped workflows: one a user adds is not drawn here

# The shipped workflows and the test-only ones (tests/workflows): change-review brings a k-of-n quorum.
from tests.workflows.manifest import MANIFEST

WORKFLOW = MANIFEST.workflow("order-fulfillment")
ACCESS = MANIFEST.workflow("access-request")
REVIEW = MANIFEST.workflow("change-review")
DRAWN = (WORKFLOW.name, ACCESS.name, REVIEW.name)
COORDINATED = {workflow.name: workflow for workflow in MANIFEST.coordinated if workflow.name in DRAWN}
assert {w.name for w in SHIPPED.coordinated} <= set(COORDINATED), "a coordinated workflow of the manifest is not drawn"
# Outcome detail-type -> status, for every coordinated workflow.
TERMINAL = {detail_type: status.value for workflow in COORDINATED.values()
            for status, detail_type in workflow.terminal_detail_types.items()}
# Every consumer of the manifest, built as its Lambda entry point builds it (``build`` beside ``handler``).
BUILDERS = {consumer.name: resolve(consumer.handler.rsplit(".", 1)[0] + ":build") for consumer in MANIFEST.consumers}
INVENTORY_SOURCE = MANIFEST.agent("inventory").source
APPROVER = ACCESS.external_agent("manager-approval")
FORGED_SOURCE = "evil.forger"
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
        who = detail.get("workflow_id") or detail.get("order_id") or detail.get("request_id")
        return f"{self.envelope['detail-type']}[{who}]#{self.message_id}"


@dataclass(frozen=True)
class Put:
    """One trigger the producer puts: a version of one request (its workflow and detail)."""

    workflow: str
    detail: dict[str, Any]
    # normal | over_limit | unknown_sku | no_carrier | invalid | unstorable (orders);
    # granted | denied | invalid | unstorable (access requests)
    kind: str
    problem_field: str | None = None  # invalid / unstorable: the field the rejection must name
    at_step: int = 0  # put before the first step (0), or at that chaotic step (later: a second version)
    copies: int = 1  # a client retry puts the same version again (another event id)

    @property
    def workflow_id(self) -> str:
        return self.detail[COORDINATED[self.workflow].id_field]

    @property
    def key(self) -> tuple[str, str]:
        return self.workflow, self.workflow_id

    @property
    def digest(self) -> str:
        return trigger_digest(json.loads(json.dumps(self.detail)))


@dataclass(frozen=True)
class Act:
    """A person's answer (approve / decline) or a cancel, put at a drawn step (``forged``: from a source the
    manifest does not allow)."""

    workflow: str
    workflow_id: str
    kind: str  # approve | decline | cancel
    by: str
    at_step: int = 0
    forged: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return self.workflow, self.workflow_id

    def entry(self, bus_name: str) -> dict[str, Any]:
        if self.kind == "cancel":
            source = FORGED_SOURCE if self.forged else OPERATOR_SOURCE
            detail = {"workflow": self.workflow, "workflow_id": self.workflow_id, "by": self.by, "reason": "drawn"}
            return {"EventBusName": bus_name, "Source": source, "DetailType": CANCEL_DETAIL_TYPE,
                    "Detail": json.dumps(detail)}
        result = APPROVER.approval if self.kind == "approve" else APPROVER.refusal
        assert result is not None
        detail = {"workflow": self.workflow, "workflow_id": self.workflow_id, "agent": APPROVER.name, "by": self.by}
        return {"EventBusName": bus_name, "Source": FORGED_SOURCE if self.forged else APPROVER.source,
                "DetailType": result.detail_type, "Detail": json.dumps(detail)}


@dataclass
class Example:
    """One drawn scenario: orders and access requests (some sharing an id, some in two conflicting versions,
    some carrying values DynamoDB cannot store), answers and cancels, and the stock the orders compete for."""

    number: int
    stock: dict[str, int]  # SKU -> initial units on hand
    puts: list[Put]
    acts: list[Act] = dataclasses.field(default_factory=list)

    @property
    def keys(self) -> list[tuple[str, str]]:
        """Every (workflow, id) put, in order."""
        return list(dict.fromkeys(put.key for put in self.puts))

    def versions(self, key: tuple[str, str]) -> dict[str, Put]:
        """digest -> the version of that request put with it."""
        return {put.digest: put for put in self.puts if put.key == key}


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
        self.produced: set[int] = set()  # indexes of the example's puts already put
        self.acted: set[int] = set()  # indexes of the example's acts already put
        self._ids = itertools.count(1)
        self.handlers = {name: build(self._settings(name), self._clients())
                         for name, build in BUILDERS.items()}
        self.group = resources.schedule_group
        self._schedules: dict[str, datetime] | None = None
        self.offline: str | None = None  # a paused consumer: its messages wait in its queue
        self.stale_schedules: list[str] = []  # schedules that fired although their outcome was published
        self.store = workflow_store(self.dynamodb, resources, MANIFEST)

    # wiring -----------------------------------------------------------------------------------------

    def _settings(self, consumer: str) -> Settings:
        # One record at a time: moto in-process is not thread-safe, and the schedule decides the order.
        return settings_for(self.resources, consumer, MANIFEST, record_concurrency=1)

    def _clients(self) -> Clients:
        # The harness's own clients: low-level clients are stateless and thread-safe, so every function may share
        # them (a client each cost ~20 ms, dozens per example).
        return Clients(
            events=Faulty("events", self.bus, self.faults),
            sqs=Faulty("sqs", self.sqs, self.faults),
            dynamodb=Faulty("dynamodb", self.dynamodb, self.faults),
            scheduler=Faulty("scheduler", self.scheduler, self.faults),
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

    def produce(self, step: int | None = None) -> None:
        """The producer puts the triggers due at ``step`` (0: at the start; None: every one not put yet),
        some twice, as a client retry does (another event id)."""
        for index, put in enumerate(self.example.puts):
            if index in self.produced or (step is not None and put.at_step != step):
                continue
            self.produced.add(index)
            subscription = COORDINATED[put.workflow].trigger.subscription
            for _ in range(put.copies):
                self.trace.append(f"{self.clock.now:%H:%M:%S} producer puts {put.workflow} {put.workflow_id} "
                                  f"{put.kind} version {put.digest[:8]}")
                self.put({"EventBusName": self.resources.bus_name, "Source": subscription.sources[0],
                          "DetailType": subscription.detail_types[0], "Detail": json.dumps(put.detail)})
        for index, act in enumerate(self.example.acts):
            if index in self.acted or (step is not None and act.at_step != step):
                continue
            self.acted.add(index)
            self.trace.append(f"{self.clock.now:%H:%M:%S} {act.by} puts {act.kind} of {act.workflow} "
                              f"{act.workflow_id}{' (forged)' if act.forged else ''}")
            self.put(act.entry(self.resources.bus_name))

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
        names = [s["Name"] for workflow in COORDINATED
                 for s in self.scheduler.list_schedules(GroupName=self.group,
                                                        NamePrefix=f"{workflow}-prop-{self.example.number}-")
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
        deadline = json.loads(target["Input"])
        record = self.store.load(deadline["workflow"], deadline["workflow_id"])
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
            self.produce(step)
            self.offline = offline if step < offline_steps else None
            schedules = self.schedules()
            visible = self.visible()
            later = self.next_time(schedules) is not None
            if not visible and not later and all(put.at_step <= step for put in self.example.puts) \
                    and all(act.at_step <= step for act in self.example.acts):
                break
            if not visible and not later:
                continue
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
        for workflow, workflow_id in self.example.keys:
            if workflow != WORKFLOW.name:
                continue
            reservation = self.item("inventory", {"pk": {"S": f"reservation#{workflow_id}"}})
            if reservation is not None and reservation["status"] in ("CANCELLED", "RELEASED"):
                lines.append(f"reservation {reservation['status']}")
        lines += sorted({f"{put.workflow} {put.kind}" for put in self.example.puts})
        lines += sorted({f"{act.kind}{' forged' if act.forged else ''}" for act in self.example.acts})
        if any(len(self.example.versions(key)) > 1 for key in self.example.keys):
            lines.append("conflicting versions")
        if any(put.at_step for put in self.example.puts):
            lines.append("a version put later")
        if len({workflow_id for _, workflow_id in self.example.keys}) < len(self.example.keys):
            lines.append("an order and an access request share an id")
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

def _plain(value: Any) -> Any:
    """A value read from DynamoDB (Decimals) or put as JSON, compared as plain JSON numbers."""
    return json.loads(json.dumps(value, default=lambda v: float(v) if isinstance(v, Decimal) else str(v)))


# The main table's row of each workflow: its table, and the trigger fields it repeats (the version it shows).
ROWS = {WORKFLOW.name: ("orders", ("customer_id", "currency", "items", "shipping_address")),
        ACCESS.name: ("access-requests", ("employee_id", "resource", "access_level", "requested_at"))}
SUCCESSFUL_KINDS = {"normal", "granted", "risky", "small", "medium"}
# change-review: lines changed per kind (reviewers approve up to 100, 500 and 2000 lines).
REVIEW_LINES = {"small": 50, "medium": 300, "large": 3000}


def check_promises(h: Harness) -> None:
    example = h.example
    assert h.pool == [] and h.schedules() == {}, "not settled"
    assert h.redriven == [], f"healthy messages dead-lettered by the redrive policy: " \
                             f"{[d.describe() for d in h.redriven]}"
    assert h.stale_schedules == [], f"deadline schedules not deleted when their workflow finished first: " \
                                    f"{h.stale_schedules}"
    store = h.store

    # No RUNNING workflow once everything has settled (every deadline has passed), whatever opened it.
    prefix = f"prop-{example.number}-"
    # Every page: the table keeps every example's records, and past 1 MB a scan answers in pages (explore mode's
    # hundreds of examples found none of the later ones' records on the first page).
    scanned = [item for page in h.dynamodb.get_paginator("scan").paginate(TableName=h.resources.tables["workflows"])
               for item in page["Items"]]
    records = store.records([item for item in scanned
                             if item["workflow_id"]["S"].startswith(prefix)])
    assert {(r.workflow, r.workflow_id) for r in records} == set(example.keys), "records of unknown workflows"
    running = [(r.workflow, r.workflow_id) for r in records if r.status is WorkflowStatus.RUNNING]
    assert running == [], f"RUNNING after every deadline: {running}"

    # Exactly one outcome per (workflow, id): copies may be published, all equal, with the outcome's key.
    outcomes: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for envelope in h.log:
        if envelope["source"] == COORDINATOR_SOURCE and envelope["detail-type"] in TERMINAL:
            outcomes[(envelope["detail"]["workflow"], envelope["detail"]["workflow_id"])].append(envelope)
    assert set(outcomes) <= set(example.keys), f"outcomes of unknown workflows: {sorted(outcomes)}"
    status: dict[tuple[str, str], str] = {}
    stored: dict[tuple[str, str], Put] = {}
    kept = h.dead_letters()
    for key in example.keys:
        workflow_name, workflow_id = key
        workflow = COORDINATED[workflow_name]
        published = outcomes[key]
        assert published, f"{key}: no outcome published"
        first = published[0]
        for copy in published[1:]:
            assert (copy["detail-type"], copy["detail"]) == (first["detail-type"], first["detail"]), \
                f"{key}: two different outcomes {first['detail']['status']} / {copy['detail']['status']}"
        status[key] = first["detail"]["status"]
        assert TERMINAL[first["detail-type"]] == status[key]
        assert first["detail-type"] == workflow.terminal_detail_types[WorkflowStatus(status[key])]
        assert first["detail"]["idempotency_key"] == f"{workflow_id}:{status[key]}"
        assert first["detail"][workflow.id_field] == workflow_id
        record = store.load(workflow_name, workflow_id)
        assert record is not None and record.status.value == status[key]
        assert record.published and record.outcome == first["detail"], f"{key}: record and event differ"

        # One version: the record stores the first trigger it got, its digest is that detail's, and every
        # result counted toward the outcome was stamped with it.
        versions = example.versions(key)
        assert record.trigger is not None, f"{key}: every version was put, but the record has no trigger"
        assert record.trigger_digest in versions, f"{key}: stores a version nobody put ({record.trigger_digest})"
        assert trigger_digest(record.trigger) == record.trigger_digest, f"{key}: stored detail is not its version"
        version = stored[key] = versions[record.trigger_digest]
        counted = {agent: r["trigger_digest"] for agent, r in first["detail"]["results"].items()}
        assert set(counted.values()) <= {record.trigger_digest}, \
            f"{key}: results of another version counted: {counted}, stored {record.trigger_digest}"

        # What the version allows: only one every agent accepts may complete, with every result and its trigger;
        # a risky one only with a manager's approval counted.
        if status[key] == WorkflowStatus.COMPLETED.value:
            assert first["detail"]["timings"]["trigger_received_at"], f"{key}: completed without its trigger"
            assert version.kind in SUCCESSFUL_KINDS, f"{key}: a {version.kind} version completed"
            outcomes_by_agent = {a: r["outcome"] for a, r in first["detail"]["results"].items()}
            grouped = set(workflow.quorum.agents) if workflow.quorum else set()
            assert {a: o for a, o in outcomes_by_agent.items() if a in {x.name for x in workflow.agents} - grouped} \
                == {agent.name: "success" for agent in workflow.agents if agent.name not in grouped}
            if workflow.quorum:  # k of n: at least k successes, named in the outcome's quorum
                agreed = [a for a in workflow.quorum.agents if outcomes_by_agent.get(a) == "success"]
                assert len(agreed) >= workflow.quorum.at_least and first["detail"]["quorum"]["agreed"] == agreed, \
                    f"{key}: completed with {agreed} of quorum {first['detail']['quorum']}"
            if version.kind == "risky":
                assert outcomes_by_agent.get(APPROVER.name) == "success", \
                    f"{key}: a risky request completed without a manager's approval: {outcomes_by_agent}"
        # k of n: a change no two reviewers can approve is refused as soon as that is out of reach.
        if workflow.quorum and status[key] == WorkflowStatus.REJECTED.value and not version.problem_field:
            assert version.kind == "large" and first["detail"]["reason"].startswith("quorum out of reach"), \
                f"{key}: a {version.kind} change refused: {first['detail']['reason']}"
        # A cancel written into the record ends the workflow CANCELLED, naming who.
        if record.cancel is not None:
            assert status[key] == WorkflowStatus.CANCELLED.value, f"{key}: cancel recorded, but {status[key]}"
        if status[key] == WorkflowStatus.CANCELLED.value:
            assert record.cancel is not None and first["detail"]["reason"].startswith(
                f"cancelled by {record.cancel['by']}"), f"{key}: cancelled without its cancel: {record.cancel}"
        # Every answer and cancel put for it: counted, kept aside with a reason, or dead-lettered with one.
        counted_ids = {r.get("event_id") for r in first["detail"]["results"].values()} | set(
            [record.cancel["event_id"]] if record.cancel else [])
        slot_ids = {r.get("event_id") for r in record.results.values()}
        late_ids = {entry.get("event_id"): entry.get("late_reason") for entry in record.late_results.values()}
        lettered = {envelope["id"] for consumer, _, envelope in kept if consumer == "coordinator"}
        for envelope in h.log:
            if (envelope["source"] in (APPROVER.source, OPERATOR_SOURCE, FORGED_SOURCE)
                    and envelope["detail"].get("workflow") == workflow_name
                    and envelope["detail"].get("workflow_id") == workflow_id):
                event_id = envelope["id"]
                if envelope["source"] == FORGED_SOURCE:
                    assert event_id in lettered and event_id not in counted_ids | slot_ids, \
                        f"{key}: forged {envelope['detail-type']} not refused: {event_id}"
                    continue
                assert event_id in counted_ids | slot_ids | set(late_ids) | lettered, \
                    f"{key}: {envelope['detail-type']} {event_id} lost: neither counted, kept late, nor dead-lettered"
                if event_id in late_ids:
                    assert late_ids[event_id], f"{key}: kept late without a reason"
        no_trigger = first["detail"]["timings"]["trigger_received_at"] is None
        if no_trigger:
            # Finished before any trigger reached the coordinator: only its deadline (or a cancel) may have done that.
            assert (status[key], first["detail"]["reason"]) == (WorkflowStatus.TIMED_OUT.value, NO_TRIGGER_REASON) \
                or status[key] == WorkflowStatus.CANCELLED.value, f"{key}: {status[key]} before its trigger"
            assert first["detail"]["results"] == {}, f"{key}: results counted without a trigger"
        elif version.problem_field:
            # Invalid or unstorable: rejected at validation, the reason naming the field.
            assert status[key] == WorkflowStatus.REJECTED.value, f"{key}: a {version.kind} version {status[key]}"
            assert version.problem_field in (first["detail"]["reason"] or ""), \
                f"{key}: rejected without naming {version.problem_field}: {first['detail']['reason']}"

        # Every other version is refused: kept in the record and dead-lettered naming both versions.
        refused = {r["trigger_digest"] for r in record.refused}
        others = set(versions) - {record.trigger_digest}
        assert refused == others, f"{key}: refused {refused}, other versions put {others}"
        for other in others:
            letters = [reason for consumer, reason, envelope in kept if consumer == "coordinator"
                       and trigger_digest(envelope["detail"]) == other]
            assert letters, f"{key}: version {other} refused without a dead letter"
            assert all(other in reason and record.trigger_digest in reason for reason in letters), letters

        # The main table agrees with the outcome event and shows the stored version.
        if workflow_name not in ROWS:
            continue  # no main table (change-review has no projection)
        table, fields = ROWS[workflow_name]
        row = h.item(table, {workflow.id_field: {"S": workflow_id}})
        assert row is not None, f"{key}: not in the {table} table"
        assert row["status"] == status[key], f"{key}: {table} says {row['status']}, the outcome {status[key]}"
        assert row["idempotency_key"] == first["detail"]["idempotency_key"]
        shown = [digest for digest, put in versions.items()
                 if all(_plain(row.get(name)) == _plain(put.detail.get(name)) for name in fields)]
        assert shown == [record.trigger_digest], \
            f"{key}: the {table} row shows version(s) {shown}, the record stores {record.trigger_digest}"

    # Stock: on hand + reserved = initial; reserved = HELD lines; nothing reserved without a COMPLETED outcome.
    held: dict[str, int] = defaultdict(int)
    for key in example.keys:
        workflow_name, workflow_id = key
        if workflow_name != WORKFLOW.name:
            continue
        reservation = h.item("inventory", {"pk": {"S": f"reservation#{workflow_id}"}})
        holds = reservation is not None and reservation["status"] == "HELD"
        if status[key] == WorkflowStatus.COMPLETED.value:
            assert holds, f"{key}: COMPLETED without a held reservation ({reservation})"
            assert sorted((line["sku"], int(line["quantity"])) for line in reservation["lines"]) == sorted(
                (line["sku"], line["quantity"]) for line in stored[key].detail["items"])
            assert json.loads(reservation["result"])["trigger_digest"] == stored[key].digest, \
                f"{key}: completed, but the reservation was made for another version"
        else:
            assert not holds, f"{key}: {status[key]} but its reservation is still held"
        if holds:
            for line in reservation["lines"]:
                held[line["sku"]] += int(line["quantity"])

        # The inventory agent never publishes two different results for one version of an order (fault 4),
        # and republishes the very result it stored for the version it reserved for.
        results = [e for e in h.log if e["source"] == INVENTORY_SOURCE and e["detail"]["workflow_id"] == workflow_id]
        by_version: dict[str, set] = defaultdict(set)
        for e in results:
            by_version[e["detail"]["trigger_digest"]].add(
                (e["detail-type"], e["detail"]["reason"], json.dumps(e["detail"]["data"], sort_keys=True)))
        assert all(len(d) == 1 for d in by_version.values()), f"{key}: inventory decided differently: {by_version}"
        if reservation is not None and reservation["status"] != "CANCELLED":
            stored_result = json.loads(reservation["result"])
            assert all(e["detail"] == stored_result for e in results
                       if e["detail"]["trigger_digest"] == stored_result["trigger_digest"]), \
                f"{key}: inventory republished something else than its stored result"

    for sku, initial in example.stock.items():
        item = h.item("inventory", {"pk": {"S": f"sku#{sku}"}})
        on_hand, reserved = int(item["on_hand"]), int(item["reserved"])
        assert on_hand >= 0, f"{sku}: oversold ({on_hand} on hand)"
        assert on_hand + reserved == initial, f"{sku}: on hand {on_hand} + reserved {reserved} != initial {initial}"
        assert reserved == held[sku], f"{sku}: reserved {reserved}, but held reservations add up to {held[sku]}"

    # Dead letters: agents keep only invalid triggers (reason naming the field), every agent of the workflow
    # each of them; the coordinator only refused versions (checked above), forged answers and cancels, and
    # answers and cancels with nothing to act on; nothing else.
    invalid = {put.digest: put for put in example.puts if put.kind == "invalid"}
    for consumer, reason, envelope in kept:
        digest = trigger_digest(envelope["detail"])
        if consumer == "coordinator" and envelope["source"] == FORGED_SOURCE:
            assert reason.startswith(("forged result", "forged cancel")), (consumer, reason)
            continue
        if consumer == "coordinator" and envelope["source"] in (APPROVER.source, OPERATOR_SOURCE):
            assert any(why in reason for why in ("nothing to answer", "nothing to cancel",
                                                 "the request has not arrived yet")), (consumer, reason)
            continue
        if consumer == "coordinator":
            assert any(digest in {r["trigger_digest"] for r in store.load(*put.key).refused}
                       for put in example.puts if put.digest == digest), (consumer, reason)
            continue
        assert digest in invalid, f"{consumer} dead-lettered a valid trigger: {reason}"
        assert invalid[digest].problem_field in reason, (consumer, reason)
    for digest, put in invalid.items():
        agents = {consumer for consumer, _, envelope in kept
                  if consumer != "coordinator" and trigger_digest(envelope["detail"]) == digest}
        assert agents == {a.name for a in COORDINATED[put.workflow].agents}, f"{put.key}: kept by {agents} only"


# --- strategies -----------------------------------------------------------------------------------------

ORDER_KINDS = ("normal", "normal", "normal", "over_limit", "unknown_sku", "no_carrier", "invalid", "unstorable")
ACCESS_KINDS = ("granted", "granted", "risky", "risky", "denied", "invalid", "unstorable")
# Values DynamoDB cannot store, as a producer writes them in JSON (1e400 reads as Infinity).
UNSTORABLE = ('"loyalty_points": 1e308', '"loyalty_points": 1234567890123456789012345678901234567890',
              '"loyalty_points": 1e400')
BAD_PRICES = ("NaN", "Infinity", "1e200")


@st.composite
def plans(draw) -> Plan:
    kind = draw(st.sampled_from(["none"] * 3 + ["error", "die", "lose_ack", "put_rejected"]))
    if kind in ("error", "die"):
        return Plan(kind, at_call=draw(st.integers(0, 7)), after=draw(st.booleans()))
    if kind == "put_rejected":
        # 4 = every attempt: the publisher gives up and the queue retries (its backoff really sleeps 0.35 s).
        return Plan(kind, put_rejections=draw(st.sampled_from([1, 1, 2, 4])))
    return Plan(kind)


def _with_extra(detail: dict[str, Any], extra: str) -> dict[str, Any]:
    """``detail`` with a member written as raw JSON text (so ``1e400`` is what the producer wrote)."""
    text = json.dumps(detail)
    return json.loads(text[:-1] + ", " + extra + "}")


def order_version(draw, number: int, index: int, skus: list[str], kind: str, customer: str) -> Put:
    workflow_id = f"prop-{number}-{index}"
    ordered = draw(st.sampled_from([skus[:1], skus[1:], skus]), label=f"{workflow_id} skus")
    items = [{"sku": sku, "quantity": draw(st.integers(1, 3)), "unit_price": 25.0} for sku in ordered]
    country, problem = "DE", None
    if kind == "over_limit":
        items[0]["unit_price"] = 20000.0
    elif kind == "unknown_sku":
        items.append({"sku": f"SKU-PROP{number}-GHOST", "quantity": 1, "unit_price": 10.0})
    elif kind == "no_carrier":
        country = "BR"
    elif kind == "invalid":
        bad = draw(st.sampled_from(["quantity", "unit_price"]), label=f"{workflow_id} invalid field")
        items[0][bad] = draw(st.sampled_from([0, -1])) if bad == "quantity" else draw(st.sampled_from(BAD_PRICES))
        problem = bad
    detail = {"order_id": workflow_id, "customer_id": customer, "currency": "EUR", "items": items,
              "shipping_address": {"country": country, "postal_code": "10115"}}
    if kind == "unstorable":
        detail, problem = _with_extra(detail, draw(st.sampled_from(UNSTORABLE))), "loyalty_points"
    return Put(WORKFLOW.name, detail, kind, problem)


ACCESS_SAMPLES = {"granted": "access-requested.json", "denied": "access-requested-contractor-admin.json"}


def access_version(draw, workflow_id: str, kind: str) -> Put:
    base = ACCESS_SAMPLES.get(kind, "access-requested.json")
    detail = load_detail(base) | {"request_id": workflow_id}
    problem = None
    if kind == "denied" and draw(st.booleans(), label=f"{workflow_id} inactive"):
        detail = load_detail("access-requested-inactive.json") | {"request_id": workflow_id}
    elif kind == "risky":  # the policy permits it, the risk agent scores 50: it asks for a manager's approval
        detail |= {"employee_id": "emp-1003", "resource": "customer-db", "access_level": "write"}
    elif kind == "invalid":
        detail["access_level"], problem = "root", "access_level"
    elif kind == "unstorable":
        detail, problem = _with_extra(detail, draw(st.sampled_from(UNSTORABLE))), "loyalty_points"
    return Put(ACCESS.name, detail, kind, problem)


@st.composite
def examples(draw) -> Example:
    number = next(_examples)
    skus = [f"SKU-PROP{number}-A", f"SKU-PROP{number}-B"]
    stock = {sku: draw(st.integers(0, 6), label=f"stock {sku[-1]}") for sku in skus}
    puts: list[Put] = []
    orders = draw(st.integers(1, 3), label="orders")
    for index in range(orders):
        kind = draw(st.sampled_from(ORDER_KINDS), label=f"order {index} kind")
        puts.append(order_version(draw, number, index, skus, kind, f"cus-{index}"))
        # Conflicting versions: the same id with other contents (e.g. a cheap one and one over the limit).
        if draw(st.sampled_from([False, False, True]), label=f"order {index} second version"):
            other = draw(st.sampled_from(["normal", "over_limit", "normal"]), label=f"order {index} version 2")
            puts.append(order_version(draw, number, index, skus, other, f"cus-{index}-v2"))
    for index in range(draw(st.integers(0, 2) if orders > 1 else st.integers(1, 2), label="access requests")):
        # Sometimes the same id as an order: the two workflows must not disturb each other.
        shared = draw(st.booleans(), label=f"access {index} shares an order's id")
        workflow_id = f"prop-{number}-{index}" if shared and index < orders else f"prop-{number}-a{index}"
        puts.append(access_version(draw, workflow_id, draw(st.sampled_from(ACCESS_KINDS), label="access kind")))
        if draw(st.sampled_from([False, False, False, True]), label=f"access {index} second version"):
            second = access_version(draw, workflow_id, draw(st.sampled_from(("granted", "denied"))))
            # Another minute (same hour: the same risk): the row shows which version it is.
            requested = second.detail["requested_at"]
            puts.append(dataclasses.replace(second, detail=second.detail | {"requested_at": requested[:14] + "59:00Z"}))
    for index in range(draw(st.integers(0, 1), label="change reviews")):
        kind = draw(st.sampled_from(sorted(REVIEW_LINES)), label=f"review {index} kind")
        detail = {"change_id": f"prop-{number}-c{index}", "author": "ada", "lines_changed": REVIEW_LINES[kind]}
        puts.append(Put(REVIEW.name, detail, kind))
    # Two versions that happen to be identical are one version put twice: keep one.
    unique = list({(put.key, put.digest): put for put in puts}.values())
    drawn = []
    for put in unique:
        at_step = draw(st.sampled_from([0, 0, 0, 1, 5, 20, 60]), label=f"{put.key} put at step")
        copies = draw(st.sampled_from([1, 1, 2]), label=f"{put.key} copies")
        drawn.append(dataclasses.replace(put, at_step=at_step, copies=copies))
    order = draw(st.permutations(range(len(drawn))), label="put order")
    acts: list[Act] = []
    for workflow, workflow_id in dict.fromkeys(put.key for put in drawn):
        answers = draw(st.integers(0, 2), label=f"{workflow_id} answers") if workflow == ACCESS.name else 0
        for n in range(answers):
            acts.append(Act(workflow, workflow_id, draw(st.sampled_from(["approve", "approve", "decline"])),
                            by=f"manager-{n}", at_step=draw(st.sampled_from([0, 1, 5, 20, 60])),
                            forged=draw(st.sampled_from([False] * 5 + [True]))))
        if draw(st.sampled_from([False, False, False, True]), label=f"{workflow_id} cancel"):
            acts.append(Act(workflow, workflow_id, "cancel", by="ops", at_step=draw(st.sampled_from([0, 1, 5, 20, 60])),
                            forged=draw(st.sampled_from([False] * 5 + [True]))))
    return Example(number, stock, [drawn[i] for i in order], acts)


# --- the property -----------------------------------------------------------------------------------

@pytest.mark.timeout(0 if EXPLORING else 600)
@settings(PROFILE)
@given(example=examples(), budget=st.integers(0, MAX_CHAOTIC_STEPS), data=st.data())
def test_promises_hold_whatever_the_delivery_schedule(topology, example: Example, budget: int, data):
    session, resources = topology
    h = Harness(session, resources, example)
    clocked = h.clock.datetime_class()
    with mock.patch.object(moments, "datetime", clocked):  # the agents' and the coordinator's utc_now
        h.seed()
        h.produce(0)
        try:
            h.chaotic_steps(data, budget)
            h.produce()  # what the drawn steps did not reach
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
    example = Example(0, {}, [Put(WORKFLOW.name, {
        "order_id": "prop-0-0", "customer_id": "c", "currency": "EUR",
        "items": [{"sku": "SKU-MOUSE", "quantity": 1, "unit_price": 1.0}],
        "shipping_address": {"country": "DE", "postal_code": "1"}}, "normal")])
    h = Harness(session, resources, example)
    with mock.patch.object(moments, "datetime", h.clock.datetime_class()):
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

