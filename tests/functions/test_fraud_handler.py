"""The fraud agent's handler on moto: SQS batches in, results on the bus, poison in its DLQ."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from agentbus.local.lambda_events import LambdaContext, eventbridge_envelope, sqs_event, sqs_record
from functions.common.clients import Clients
from functions.common.dead_letters import REASON_ATTRIBUTE
from functions.common.models import AgentResult
from functions.common.settings import Settings
from functions.orders.fraud import handler as fraud
from tests.conftest import delivered_to_coordinator as published
from tests.conftest import drain_queue as drain
from tests.conftest import settings_for as shared_settings_for

EVENTS = Path(__file__).resolve().parents[2] / "events"
NAME = "fraud"


def entry(name: str, index: int = 0) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())[index]


def body(name: str, **changes: Any) -> str:
    e = entry(name)
    detail = {**json.loads(e["Detail"]), **changes}
    return json.dumps(eventbridge_envelope(e["DetailType"], e["Source"], detail))


def settings_for(resources, **overrides: Any) -> Settings:
    # One record at a time: moto in-process is not thread-safe (records of a batch run in threads otherwise).
    return shared_settings_for(resources, NAME, **{"record_concurrency": 1, **overrides})


def batch(resources, *bodies: str) -> dict[str, Any]:
    arn = resources.consumers[NAME].queue_arn
    return sqs_event([sqs_record(b, arn, message_id=f"m{i}") for i, b in enumerate(bodies)])


def dead_letters(session, resources) -> list[tuple[str, str]]:
    return [(m["Body"], m["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"])
            for m in drain(session.client("sqs"), resources.consumers[NAME].dlq_url)]


def context() -> LambdaContext:
    return LambdaContext(function_name=NAME)


def test_order_verified_published_on_the_bus(aws):
    session, resources = aws
    handle = fraud.build(settings_for(resources), Clients.create(session))
    assert handle(batch(resources, body("order-placed.json")), context()) == {"batchItemFailures": []}
    [event] = published(session, resources)
    assert (event["source"], event["detail-type"]) == ("agentbus.agent.fraud", "Order Verified")
    result = AgentResult.model_validate(event["detail"])
    assert (result.workflow_id, result.outcome) == ("ord-1001", "success")
    assert result.idempotency_key == f"ord-1001:fraud:{result.trigger_digest}"
    assert result.data["score"] == 0


def test_order_over_the_limit_flagged(aws):
    session, resources = aws
    handle = fraud.build(settings_for(resources), Clients.create(session))
    handle(batch(resources, body("order-placed-over-limit.json")), context())
    [event] = published(session, resources)
    assert event["detail-type"] == "Order Flagged"
    assert event["detail"]["outcome"] == "failure"
    assert "exceeds the limit 10000.00" in event["detail"]["reason"]


def test_limit_comes_from_settings(aws):
    session, resources = aws
    handle = fraud.build(settings_for(resources, parameters={"FRAUD_LIMIT": "1000.00"}), Clients.create(session))
    handle(batch(resources, body("order-placed.json")), context())  # total 1349.00
    [event] = published(session, resources)
    assert event["detail-type"] == "Order Flagged"
    assert event["detail"]["data"]["limit"] == "1000.00"


def test_poison_goes_to_the_dlq_with_its_reason_and_the_rest_is_processed(aws):
    session, resources = aws
    handle = fraud.build(settings_for(resources), Clients.create(session))
    missing = json.loads(body("order-placed.json"))
    del missing["detail"]["customer_id"]
    bodies = ["{not json", body("order-placed-invalid.json"), json.dumps(missing), body("order-placed.json")]
    assert handle(batch(resources, *bodies), context()) == {"batchItemFailures": []}
    kept = dict(dead_letters(session, resources))
    assert set(kept) == set(bodies[:3])
    assert kept["{not json"].startswith("body is not JSON")
    assert "items.0.quantity" in kept[bodies[1]]
    assert "customer_id: Field required" in kept[bodies[2]]
    assert [e["detail"]["workflow_id"] for e in published(session, resources)] == ["ord-1001"]


class FlakyEvents:
    """PutEvents raises a transient error for the events of one order."""

    def __init__(self, client, order_id: str):
        self.client, self.order_id = client, order_id

    def put_events(self, Entries, **kwargs):  # noqa: N803
        if any(json.loads(e["Detail"]).get("workflow_id") == self.order_id for e in Entries):
            raise ClientError({"Error": {"Code": "InternalException", "Message": "try later"}}, "PutEvents")
        return self.client.put_events(Entries=Entries, **kwargs)


def test_transient_error_fails_only_that_record(aws):
    session, resources = aws
    clients = Clients.create(session)
    flaky = replace(clients, events=FlakyEvents(clients.events, "ord-1002"))
    handle = fraud.build(settings_for(resources), flaky)
    response = handle(batch(resources, body("order-placed-over-limit.json"), body("order-placed.json")), context())
    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert [e["detail"]["workflow_id"] for e in published(session, resources)] == ["ord-1001"]
    assert dead_letters(session, resources) == []


def test_success_sample_is_what_the_agent_decides_for_the_sample_order(aws):
    session, resources = aws
    handle = fraud.build(settings_for(resources), Clients.create(session))
    handle(batch(resources, body("order-placed.json")), context())
    [event] = published(session, resources)
    sample = json.loads((EVENTS / "order-verified.json").read_text())[0]
    expected = json.loads(sample["Detail"])
    assert event["detail-type"] == sample["DetailType"]
    assert (event["detail"]["reason"], event["detail"]["data"]) == (expected["reason"], expected["data"])
