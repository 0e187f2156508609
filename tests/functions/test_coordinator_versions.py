"""A producer's retry that writes a number another way (25 for 25.0) is the same request, not another version."""

from __future__ import annotations

import json

from agentbus.local.lambda_events import eventbridge_envelope
from functions.common.models import BusEvent
from functions.coordinator.logic import Coordinator
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


def test_a_retry_writing_25_for_25_0_is_a_duplicate_and_nothing_is_refused(aws):
    session, resources = aws
    store = workflow_store(session.client("dynamodb"), resources, MANIFEST)
    coordinator = Coordinator(store=store, deadlines=NoSchedules(), publish=lambda event: None, manifest=MANIFEST)
    [entry] = load_entries("order-placed.json")
    first = json.loads(entry["Detail"])
    assert any(isinstance(line["unit_price"], float) and line["unit_price"].is_integer() for line in first["items"])
    retry = {**first, "items": [{**line, "unit_price": int(line["unit_price"])} for line in first["items"]]}
    for detail in (first, retry):  # the second used to raise PoisonMessage: "conflicting version … other contents"
        coordinator.handle(BusEvent.model_validate(eventbridge_envelope(entry["DetailType"], entry["Source"], detail)))
    view = store.get(ORDER.name, first["order_id"])
    assert view is not None and view["refused"] == [] and view["status"] == "RUNNING"
