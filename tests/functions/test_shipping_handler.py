"""The shipping agent's handler on moto: quotes on the bus, unserved countries, poison in its DLQ."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from agentbus.local.lambda_events import LambdaContext, eventbridge_envelope, sqs_event, sqs_record
from functions.common.clients import Clients
from functions.common.dead_letters import REASON_ATTRIBUTE
from functions.common.models import AgentResult
from functions.common.settings import SettingsError
from functions.orders.shipping import handler as shipping
from tests.conftest import delivered_to_coordinator as published
from tests.conftest import drain_queue as drain
from tests.conftest import settings_for

EVENTS = Path(__file__).resolve().parents[2] / "events"
NAME = "shipping"


def body(name: str, index: int = 0, **changes: Any) -> str:
    e = json.loads((EVENTS / name).read_text())[index]
    detail = {**json.loads(e["Detail"]), **changes}
    return json.dumps(eventbridge_envelope(e["DetailType"], e["Source"], detail))


def batch(resources, *bodies: str) -> dict[str, Any]:
    arn = resources.consumers[NAME].queue_arn
    return sqs_event([sqs_record(b, arn, message_id=f"m{i}") for i, b in enumerate(bodies)])


def build(session, resources, clients: Clients | None = None):
    # One record at a time: moto in-process is not thread-safe (records of a batch run in threads otherwise).
    settings = settings_for(resources, NAME, record_concurrency=1)
    return shipping.build(settings, clients or Clients.create(session))


def context() -> LambdaContext:
    return LambdaContext(function_name=NAME)


def test_quote_published_on_the_bus(aws):
    session, resources = aws
    assert build(session, resources)(batch(resources, body("order-placed.json")), context()) == \
        {"batchItemFailures": []}
    [event] = published(session, resources)
    assert (event["source"], event["detail-type"]) == ("agentbus.agent.shipping", "Shipping Quoted")
    result = AgentResult.model_validate(event["detail"])
    assert (result.workflow_id, result.outcome) == ("ord-1001", "success")
    assert result.idempotency_key == f"ord-1001:shipping:{result.trigger_digest}"
    assert result.data["price"] == "6.10" and result.data["zone"] == "domestic"


def test_every_sample_order_is_quoted(aws):
    session, resources = aws
    bodies = [body("orders-batch.json", i) for i in range(5)] + [body("order-placed-over-limit.json")]
    assert build(session, resources)(batch(resources, *bodies), context()) == {"batchItemFailures": []}
    assert sorted((e["detail"]["workflow_id"], e["detail-type"]) for e in published(session, resources)) == [
        ("ord-1002", "Shipping Quoted"), ("ord-2001", "Shipping Quoted"), ("ord-2002", "Shipping Quoted"),
        ("ord-2003", "Shipping Quoted"), ("ord-2004", "Shipping Quoted"), ("ord-2005", "Shipping Quoted"),
    ]


def test_unserved_country_is_unavailable_naming_it(aws):
    session, resources = aws
    unserved = body("order-placed.json", shipping_address={"country": "BR", "postal_code": "01000-000"})
    build(session, resources)(batch(resources, unserved), context())
    [event] = published(session, resources)
    assert event["detail-type"] == "Shipping Unavailable"
    assert event["detail"]["outcome"] == "failure"
    assert "BR" in event["detail"]["reason"]


def test_poison_goes_to_the_dlq_and_the_rest_is_processed(aws):
    session, resources = aws
    bad_country = body("order-placed.json", shipping_address={"country": "Germany", "postal_code": "1"})
    bodies = ["[]", body("order-placed-invalid.json"), bad_country, body("order-placed.json")]
    assert build(session, resources)(batch(resources, *bodies), context()) == {"batchItemFailures": []}
    kept = {m["Body"]: m["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
            for m in drain(session.client("sqs"), resources.consumers[NAME].dlq_url)}
    assert set(kept) == set(bodies[:3])
    assert "not an EventBridge event" in kept["[]"]
    assert "items.0.quantity" in kept[bodies[1]]
    assert "shipping_address.country" in kept[bad_country]
    assert [e["detail"]["workflow_id"] for e in published(session, resources)] == ["ord-1001"]


def test_transient_error_fails_only_that_record(aws):
    session, resources = aws
    clients = Clients.create(session)
    calls = {"n": 0}

    class FailFirst:
        def put_events(self, **kwargs):
            calls["n"] += 1
            if calls["n"] == 1:
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "PutEvents")
            return clients.events.put_events(**kwargs)

    flaky = replace(clients, events=FailFirst())
    response = build(session, resources, flaky)(
        batch(resources, body("order-placed.json"), body("order-placed-over-limit.json")), context())
    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert [e["detail"]["workflow_id"] for e in published(session, resources)] == ["ord-1002"]


def test_success_sample_is_what_the_agent_decides_for_the_sample_order(aws):
    session, resources = aws
    build(session, resources)(batch(resources, body("order-placed.json")), context())
    [event] = published(session, resources)
    sample = json.loads((EVENTS / "shipping-quoted.json").read_text())[0]
    expected = json.loads(sample["Detail"])
    assert event["detail-type"] == sample["DetailType"]
    assert (event["detail"]["reason"], event["detail"]["data"]) == (expected["reason"], expected["data"])


def test_a_handler_copied_for_another_agent_that_still_names_shipping_fails_at_cold_start(aws):
    # The README's step: copy this handler for a new agent. Left naming shipping, the new agent's function ran as
    # shipping and failed every record with "agent 'shipping' does not emit 'Tax Computed'", until dead-lettered.
    session, resources = aws
    with pytest.raises(SettingsError) as refused:
        shipping.build(settings_for(resources, "fraud", record_concurrency=1), Clients.create(session))
    assert str(refused.value) == ("fraud: its handler builds agent 'shipping', but this function is agent 'fraud' of "
                                  "the manifest: name 'fraud' in its handler (NAME in handler.py)")
