"""A cancel processed while its workflow's record is being created (its trigger in the same PutEvents call).

The cancel's conditional write (``status = RUNNING AND no cancel``) fails on an item that does not exist yet; the
re-read a moment later finds the record, opened meanwhile, RUNNING and without a cancel. The cancel was then kept
aside as "a cancel by ? is being applied already" (no other cancel existed) and the workflow went on to complete:
neither cancelled nor dead-lettered. Found by a black-box run (4 in 8 tries with trigger and cancel in one call).
"""

from __future__ import annotations

import json

from agentbus.local.lambda_events import eventbridge_envelope
from functions.common.models import BusEvent
from functions.common.spec import CANCEL_DETAIL_TYPE, OPERATOR_SOURCE, WorkflowStatus
from functions.coordinator.logic import Coordinator
from functions.coordinator.store import WorkflowStore
from tests.conftest import load_entries, workflow_store
from tests.pinned import MANIFEST  # the shipped workflows with the agents the tests name

ORDER = MANIFEST.workflow("order-fulfillment")


class NoSchedules:
    def create(self, *args) -> bool:
        return True

    def rearm(self, *args) -> None:
        pass

    def delete(self, *args) -> bool:
        return True


def test_a_cancel_whose_record_is_opened_between_its_write_and_its_read_cancels_the_workflow(aws):
    session, resources = aws
    store = workflow_store(session.client("dynamodb"), resources, MANIFEST)
    published: list = []
    coordinator = Coordinator(store=store, deadlines=NoSchedules(), publish=published.append, manifest=MANIFEST)
    [entry] = load_entries("order-placed.json")
    detail = json.loads(entry["Detail"])
    trigger = BusEvent.model_validate(eventbridge_envelope(entry["DetailType"], entry["Source"], detail))
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
