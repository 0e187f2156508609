"""A trigger holding a lone UTF-16 surrogate (``"\\ud800"``, valid JSON text with no UTF-8 form): the request ends
REJECTED naming the field, once, and no consumer retries it as if it might pass. Every consumer computed the
trigger's digest (UTF-8) before anything validated it, so each retried 5 times and dead-lettered a bare
UnicodeEncodeError, and the request never got a record or an outcome."""

from __future__ import annotations

import json

import pytest

from agentbus.local.lambda_events import eventbridge_envelope
from functions.common.clients import Clients
from functions.common.digest import trigger_digest
from functions.orders.fraud import handler as fraud
from tests.conftest import load_detail, load_entries
from tests.functions.coordinator_harness import Coordinator
from tests.functions.test_fraud_handler import batch, context, dead_letters, settings_for


def order(**changes: str) -> dict:
    [entry] = load_entries("order-placed.json")
    detail = load_detail("order-placed.json") | {"order_id": "sur-1"} | changes
    return eventbridge_envelope(entry["DetailType"], entry["Source"], detail)


@pytest.fixture
def c(aws):
    return Coordinator(*aws)


def test_the_digest_of_a_detail_with_a_lone_surrogate_is_taken_and_tells_it_apart():
    assert trigger_digest({"a": "x\ud800"}) != trigger_digest({"a": "x\udfff"}) != trigger_digest({"a": "x"})


@pytest.mark.parametrize("field", ["customer_id", "note"])
def test_the_coordinator_rejects_the_request_naming_the_field(c, field):
    assert c.deliver(order(**{field: "cus-\ud800"})) == {"batchItemFailures": []}
    [outcome] = c.outcomes()
    assert outcome["detail-type"] == "Order Rejected"
    assert f"detail.{field}" in outcome["detail"]["reason"]
    assert c.view(c.store.manifest.workflow("order-fulfillment"), "sur-1")["status"] == "REJECTED"


def test_an_agent_dead_letters_it_at_once_or_answers_it_never_retries_it(aws):
    session, resources = aws
    handle = fraud.build(settings_for(resources), Clients.create(session))
    body = json.dumps(order(note="x\ud800"))
    assert handle(batch(resources, body), context()) == {"batchItemFailures": []}
    assert all("UnicodeEncodeError" not in reason for _, reason in dead_letters(session, resources))
