"""The coordinator on moto, faced with what black-box runs put on the bus: a cancel racing its trigger, an
answer naming a version no digest can be, and a retry that writes a number another way.

A cancel processed while its workflow's record is being created (its trigger in the same PutEvents call): the
cancel's conditional write (``status = RUNNING AND no cancel``) failed on an item that did not exist yet; the
re-read a moment later found the record, opened meanwhile, RUNNING and without a cancel. The cancel was then
kept aside as "a cancel by ? is being applied already" (no other cancel existed) and the workflow went on to
complete: neither cancelled nor dead-lettered (4 in 8 tries with trigger and cancel in one call).
"""

from __future__ import annotations

import json

import pytest

from agentbus.local.lambda_events import eventbridge_envelope
from functions.common.dead_letters import PoisonMessage
from functions.common.digest import trigger_digest
from functions.common.models import BusEvent
from functions.common.spec import CANCEL_DETAIL_TYPE, OPERATOR_SOURCE, WorkflowStatus
from functions.coordinator.logic import Coordinator
from functions.coordinator.store import WorkflowStore
from tests.conftest import load_entries, workflow_store
from tests.functions.coordinator_harness import NoSchedules
from tests.pinned import MANIFEST  # the shipped workflows with the agents the tests name

ORDER = MANIFEST.workflow("order-fulfillment")
ACCESS = MANIFEST.workflow("access-request")
[APPROVER] = ACCESS.external


def logic_coordinator(aws, publish=lambda event: None) -> tuple[WorkflowStore, Coordinator]:
    session, resources = aws
    store = workflow_store(session.client("dynamodb"), resources, MANIFEST)
    return store, Coordinator(store=store, deadlines=NoSchedules(), publish=publish, manifest=MANIFEST)


def order_placed() -> tuple[dict, BusEvent]:
    [entry] = load_entries("order-placed.json")
    detail = json.loads(entry["Detail"])
    return detail, BusEvent.model_validate(eventbridge_envelope(entry["DetailType"], entry["Source"], detail))


def test_a_cancel_whose_record_is_opened_between_its_write_and_its_read_cancels_the_workflow(aws):
    published: list = []
    store, coordinator = logic_coordinator(aws, published.append)
    _, trigger = order_placed()
    order_id = trigger.detail["order_id"]

    class OpenedJustBeforeTheRead(WorkflowStore):
        opened = False

        def load(self, *args, **kwargs):
            if not self.opened:  # the trigger, handled by another invocation, opens the record now
                self.opened = True
                coordinator.handle(trigger)
            return super().load(*args, **kwargs)

    racing = OpenedJustBeforeTheRead(store.client, store.workflow_table, MANIFEST, store.tables)
    cancelling = Coordinator(store=racing, deadlines=NoSchedules(), publish=published.append, manifest=MANIFEST)
    cancel = {"workflow": ORDER.name, "workflow_id": order_id, "by": "ops", "reason": "customer asked"}
    cancelling.handle(BusEvent.model_validate(eventbridge_envelope(CANCEL_DETAIL_TYPE, OPERATOR_SOURCE, cancel)))

    assert racing.opened
    assert [(e.detail_type, e.detail["status"]) for e in published] == [
        (ORDER.terminal_detail_types[WorkflowStatus.CANCELLED], "CANCELLED")]
    view = store.get(ORDER.name, order_id)
    assert view is not None and view["status"] == "CANCELLED" and view["cancel"]["by"] == "ops"
    assert view["late_results"] == []


# Answers whose values would break the store are refused at once as poison naming the field (not retried).
@pytest.mark.parametrize("digest", ["a" * 1100, "a" * 65, "ab#result#x", "ab cd", ""])
def test_an_answer_naming_a_trigger_version_no_digest_can_be_is_poison_naming_the_field(aws, digest):
    # 1,100 characters went into the result item's sort key: DynamoDB refused the write (1,024 bytes), the
    # coordinator took it for a transient error, retried it 5 times and dead-lettered DynamoDB's message.
    store, coordinator = logic_coordinator(aws)
    assert APPROVER.approval is not None
    detail = {"workflow": ACCESS.name, "workflow_id": "acc-1", "agent": APPROVER.name, "by": "grace.hopper",
              "trigger_digest": digest}
    event = BusEvent.model_validate(eventbridge_envelope(APPROVER.approval.detail_type, APPROVER.source, detail))
    with pytest.raises(PoisonMessage, match="trigger_digest"):
        coordinator.handle(event)


# A producer's retry that writes a number another way (25 for 25.0) is the same request, not another version.
def test_a_retry_writing_25_for_25_0_is_a_duplicate_and_nothing_is_refused(aws):
    store, coordinator = logic_coordinator(aws)
    first, placed = order_placed()
    assert any(isinstance(line["unit_price"], float) and line["unit_price"].is_integer() for line in first["items"])
    retry = {**first, "items": [{**line, "unit_price": int(line["unit_price"])} for line in first["items"]]}
    for detail in (first, retry):  # the second used to raise PoisonMessage: "conflicting version … other contents"
        coordinator.handle(BusEvent.model_validate(eventbridge_envelope(placed.detail_type, placed.source, detail)))
    view = store.get(ORDER.name, first["order_id"])
    assert view is not None and view["refused"] == [] and view["status"] == "RUNNING"


def test_a_result_refused_by_another_versions_slot_counts_when_its_trigger_comes_before_the_re_read(aws):
    # Before the trigger, fraud's slot holds its result for another version (racks); fraud's result for the cheap
    # version is refused by the slot. If the cheap trigger comes in between that write and its re-read, the slot
    # may now be replaced: the result was taken for a duplicate instead, never counted, and the order timed out.
    store, coordinator = logic_coordinator(aws)
    cheap, placed = order_placed()
    [racks_entry] = load_entries("order-placed-over-limit.json")
    racks = {**json.loads(racks_entry["Detail"]), "order_id": cheap["order_id"]}
    [verified] = load_entries("order-verified.json")

    def fraud_result(trigger: dict) -> BusEvent:
        detail = {**json.loads(verified["Detail"]), "workflow_id": trigger["order_id"],
                  "idempotency_key": f"{trigger['order_id']}:fraud", "trigger_digest": trigger_digest(trigger)}
        return BusEvent.model_validate(eventbridge_envelope(verified["DetailType"], verified["Source"], detail))

    coordinator.handle(fraud_result(racks))

    class TriggerJustBeforeTheRead(WorkflowStore):
        opened = False

        def load(self, *args, **kwargs):
            if not self.opened:
                self.opened = True
                coordinator.handle(placed)
            return super().load(*args, **kwargs)

    racing = TriggerJustBeforeTheRead(store.client, store.workflow_table, MANIFEST, store.tables)
    Coordinator(store=racing, deadlines=NoSchedules(), publish=lambda event: None,
                manifest=MANIFEST).handle(fraud_result(cheap))

    assert racing.opened
    view = store.get(ORDER.name, cheap["order_id"])
    assert view is not None and view["trigger_digest"] == trigger_digest(cheap)
    assert view["results"].get("fraud", {}).get("trigger_digest") == trigger_digest(cheap), view


def test_a_late_result_whose_item_another_copy_wrote_and_removed_meanwhile_is_kept_late_not_a_key_error(aws):
    # Two copies of a late result at once (overlapping replays): the other copy wrote the result's item, so this
    # copy's conditional put failed; the other found the result late and removed the item before this copy read it.
    # The read found nothing and raised KeyError('Item') (retried, and dead-lettered with that reason if it kept
    # losing). The put is now tried again.
    store, coordinator = logic_coordinator(aws)
    detail, placed = order_placed()
    coordinator.handle(placed)
    cancel = {"workflow": ORDER.name, "workflow_id": detail["order_id"], "by": "ops"}
    coordinator.handle(BusEvent.model_validate(eventbridge_envelope(CANCEL_DETAIL_TYPE, OPERATOR_SOURCE, cancel)))
    [verified] = load_entries("order-verified.json")
    late = BusEvent.model_validate(eventbridge_envelope(verified["DetailType"], verified["Source"], {
        **json.loads(verified["Detail"]), "trigger_digest": trigger_digest(detail)}))
    client = store.client

    class OtherCopyRacing:
        raced = False

        def __getattr__(self, name):
            return getattr(client, name)

        def put_item(self, **kwargs):
            if not self.raced and "#result#" in kwargs["Item"]["workflow"]["S"]:
                client.put_item(TableName=kwargs["TableName"], Item=kwargs["Item"])  # the other copy's item
            return client.put_item(**kwargs)

        def get_item(self, **kwargs):
            if not self.raced and "#result#" in kwargs["Key"]["workflow"]["S"]:
                self.raced = True
                client.delete_item(TableName=kwargs["TableName"], Key=kwargs["Key"])  # the other copy removes it
            return client.get_item(**kwargs)

    racing_client = OtherCopyRacing()
    racing = WorkflowStore(racing_client, store.workflow_table, MANIFEST, store.tables)
    Coordinator(store=racing, deadlines=NoSchedules(), publish=lambda event: None, manifest=MANIFEST).handle(late)

    assert racing_client.raced
    view = store.get(ORDER.name, detail["order_id"])
    assert view is not None and view["status"] == WorkflowStatus.CANCELLED.value
    assert [(kept["agent"], kept["event_id"]) for kept in view["late_results"]] == [("fraud", late.id)]
