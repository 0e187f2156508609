"""``"quantity": 1.0`` and ``"quantity": 1`` are one version of an order (README "Versions": a number written
``25`` or ``25.0`` changes none; functions/common/digest.py), so every consumer gives them one verdict. The
order's strict ``int`` field refused ``1.0``: whichever copy the coordinator saw first decided the outcome, and
the agents dead-lettered the other spelling of the same version."""

from __future__ import annotations

import json

import pytest

from agentbus.local.lambda_events import eventbridge_envelope, sqs_event, sqs_record
from functions.common.clients import Clients
from functions.common.digest import trigger_digest
from functions.orders.inventory import handler as inventory
from tests.conftest import delivered_to_coordinator, load_detail, load_entries
from tests.conftest import settings_for as shared_settings_for
from tests.functions.coordinator_harness import Coordinator
from tests.functions.test_coordinator_handler import result
from tests.functions.test_fraud_handler import context


def order(quantity: float) -> dict:
    [entry] = load_entries("order-placed.json")
    detail = load_detail("order-placed.json") | {"order_id": "ser-1"}
    detail["items"] = [dict(line, quantity=quantity) for line in detail["items"]]
    return eventbridge_envelope(entry["DetailType"], entry["Source"], detail)


def test_both_spellings_are_one_version():
    assert trigger_digest(order(1)["detail"]) == trigger_digest(order(1.0)["detail"])


@pytest.mark.parametrize("first", [1, 1.0])
def test_the_coordinator_gives_both_spellings_one_verdict(aws, first):
    c = Coordinator(*aws)
    second = 1.0 if first == 1 else 1
    version = trigger_digest(order(first)["detail"])
    c.deliver(order(first), order(second),
              *(result(agent, workflow_id="ser-1", version=version) for agent in ("fraud", "inventory", "shipping")))
    [outcome] = c.outcomes()
    assert outcome["detail-type"] == "Order Completed"
    assert c.view(c.store.manifest.workflow("order-fulfillment"), "ser-1")["refused"] == []


def test_an_agent_acts_on_the_float_spelling_as_on_the_int_one(aws):
    session, resources = aws
    settings = shared_settings_for(resources, "inventory", record_concurrency=1)
    handle = inventory.build(settings, Clients.create(session))
    arn = resources.consumers["inventory"].queue_arn
    answer = handle(sqs_event([sqs_record(json.dumps(order(1.0)), arn, message_id="m0")]), context())
    assert answer == {"batchItemFailures": []}
    [event] = delivered_to_coordinator(session, resources)
    assert event["detail-type"] == "Items Reserved"
    assert event["detail"]["trigger_digest"] == trigger_digest(order(1)["detail"])
