"""Claim check on moto: an agent's 1 MB result crosses the bus as a small reference, the coordinator resolves it,
keeps the reference (not the megabyte) in its record and completes the workflow; `agentbus status` shows the
data again; a deleted object dead-letters the result naming its reference."""

from __future__ import annotations

import importlib
import json

from agentbus import operations
from agentbus.discovery import Deployment
from agentbus.local.lambda_events import LambdaContext, sqs_event_from_messages
from functions.common.agent import Decision, agent_function
from functions.common.clients import Clients
from functions.common.dead_letters import REASON_ATTRIBUTE
from functions.coordinator.handler import build as build_coordinator
from functions.coordinator.record import MAX_RESULT_DATA_BYTES
from functions.manifest import COORDINATOR_SOURCE
from tests.conftest import ORDERS, drain_queue, order_entry, settings_for, tap, tapped
from tests.pinned import MANIFEST  # the shipped workflows with the agents these tests run (not any a user adds)

MEGABYTE = 1024 * 1024


def big_fraud(settings, clients, says: str = "Order Verified"):
    def decide(order) -> Decision:
        return Decision(says, "fine" if says == "Order Verified" else "flagged",
                        {"evidence": "é" * (MEGABYTE // 2), "order": order.order_id})

    return agent_function("fraud", settings, clients, decide=decide)


def real(name: str, settings, clients):
    return importlib.import_module(MANIFEST.consumer(name).module).build(settings, clients)


def run(session, resources, name: str, handler) -> dict:
    """Deliver everything waiting in ``name``'s queue to its handler, once, as Lambda's poller would."""
    sqs = session.client("sqs")
    queue = resources.consumers[name]
    messages = drain_queue(sqs, queue.queue_url)
    assert messages, f"nothing for {name}"
    return handler(sqs_event_from_messages(messages, queue.queue_arn), LambdaContext(name))


def place_and_run_agents(session, resources, order_id: str, fraud_says: str = "Order Verified") -> Clients:
    clients = Clients.create(session)
    assert clients.events.put_events(Entries=[order_entry(order_id)])["FailedEntryCount"] == 0
    settings = {name: settings_for(resources, name, MANIFEST, record_concurrency=1)
                for name in ("fraud", "inventory", "shipping", "coordinator")}
    assert settings["fraud"].claim_check_bucket == resources.claim_check_bucket
    for name, build in (("fraud", big_fraud), ("inventory", real), ("shipping", real)):
        handler = (big_fraud(settings[name], clients, fraud_says) if build is big_fraud
                   else build(name, settings[name], clients))
        assert run(session, resources, name, handler) == {"batchItemFailures": []}
    return clients


def coordinator_messages(session, resources) -> list[dict]:
    return drain_queue(session.client("sqs"), resources.consumers["coordinator"].queue_url)


def test_a_1_mb_result_crosses_the_bus_as_a_reference_and_completes_the_workflow(aws):
    session, resources = aws
    outcomes = tap(session, resources, COORDINATOR_SOURCE)
    clients = place_and_run_agents(session, resources, "ord-mega-1")

    messages = coordinator_messages(session, resources)
    events = {json.loads(m["Body"])["source"]: json.loads(m["Body"]) for m in messages}
    fraud = events["agentbus.agent.fraud"]
    assert len(json.dumps(fraud["detail"])) < 2048, "the bus carries the reference, not the megabyte"
    reference = fraud["detail"]["claim_check"]
    assert reference["bucket"] == resources.claim_check_bucket and reference["key"].startswith("fraud/")
    assert reference["bytes"] > MEGABYTE
    assert fraud["detail"]["workflow_id"] == "ord-mega-1" and fraud["detail"]["outcome"] == "success"

    coordinator = build_coordinator(settings_for(resources, "coordinator", MANIFEST, record_concurrency=1), clients)
    queue_arn = resources.consumers["coordinator"].queue_arn
    assert coordinator(sqs_event_from_messages(messages, queue_arn), LambdaContext("coordinator")) == \
        {"batchItemFailures": []}

    [outcome] = tapped(session, outcomes)
    assert outcome["detail-type"] == "Order Completed" and outcome["detail"]["status"] == "COMPLETED"
    # The outcome lists the result with its reference in place of the megabyte: small, not offloaded.
    assert outcome["detail"]["results"]["fraud"]["data"] == {"claim_check": reference}
    assert len(json.dumps(outcome["detail"])) < 16 * 1024

    view = operations.workflow_status(Deployment(session, None, resources), "ord-mega-1", manifest=MANIFEST)
    assert view["status"] == "COMPLETED"
    fraud_result = view["results"]["fraud"]
    assert fraud_result["claim_check"] == reference
    assert fraud_result["data"]["evidence"] == "é" * (MEGABYTE // 2)
    assert len(json.dumps(fraud_result["data"])) > MAX_RESULT_DATA_BYTES
    raw = operations.workflow_status(Deployment(session, None, resources), "ord-mega-1", manifest=MANIFEST,
                                     resolve_claim_checks=False)
    assert raw["results"]["fraud"]["data"] == {"claim_check": reference}
    assert "[data: " in operations.render_trace(raw) and reference["key"] in operations.render_trace(raw)


def test_a_big_outcome_is_offloaded_by_the_coordinator_and_resolved_by_its_consumers(aws):
    session, resources = aws
    outcomes = tap(session, resources, COORDINATOR_SOURCE)
    clients = place_and_run_agents(session, resources, "ord-mega-2", fraud_says="Order Flagged")
    messages = coordinator_messages(session, resources)
    # A threshold under the outcome's size: the coordinator stores it and publishes the reference.
    coordinator = build_coordinator(settings_for(resources, "coordinator", MANIFEST, record_concurrency=1,
                                                 claim_check_threshold=1024), clients)
    coordinator(sqs_event_from_messages(messages, resources.consumers["coordinator"].queue_arn),
                LambdaContext("coordinator"))
    [outcome] = tapped(session, outcomes)
    detail = outcome["detail"]
    assert detail["claim_check"]["key"].startswith("coordinator/agentbus.coordinator/Order_Rejected/")
    assert {k: detail[k] for k in ("workflow", "workflow_id", "status", "order_id")} == \
        {"workflow": ORDERS, "workflow_id": "ord-mega-2", "status": "REJECTED", "order_id": "ord-mega-2"}
    assert "reason" not in detail and "results" not in detail
    # The inventory agent compensates on a rejection: it resolves the reference and releases its reservation.
    inventory = real("inventory", settings_for(resources, "inventory", MANIFEST, record_concurrency=1), clients)
    assert run(session, resources, "inventory", inventory) == {"batchItemFailures": []}
    assert drain_queue(session.client("sqs"), resources.consumers["inventory"].dlq_url) == []
    reservation = clients.dynamodb.get_item(TableName=resources.tables["inventory"],
                                            Key={"pk": {"S": "reservation#ord-mega-2"}}).get("Item")
    assert reservation["status"]["S"] == "RELEASED", reservation


def test_a_result_whose_object_was_deleted_is_dead_lettered_naming_its_reference(aws):
    session, resources = aws
    clients = place_and_run_agents(session, resources, "ord-mega-3")
    messages = coordinator_messages(session, resources)
    fraud = next(json.loads(m["Body"]) for m in messages if json.loads(m["Body"])["source"] == "agentbus.agent.fraud")
    key = fraud["detail"]["claim_check"]["key"]
    clients.s3.delete_object(Bucket=resources.claim_check_bucket, Key=key)

    coordinator = build_coordinator(settings_for(resources, "coordinator", MANIFEST, record_concurrency=1), clients)
    response = coordinator(sqs_event_from_messages(messages, resources.consumers["coordinator"].queue_arn),
                           LambdaContext("coordinator"))
    assert response == {"batchItemFailures": []}, "never retried: the object will not come back"
    [letter] = drain_queue(session.client("sqs"), resources.consumers["coordinator"].dlq_url)
    reason = letter["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
    assert f"s3://{resources.claim_check_bucket}/{key}" in reason and "no such object" in reason
    assert json.loads(letter["Body"])["detail"]["claim_check"]["key"] == key  # the original event, kept
    view = operations.workflow_status(Deployment(session, None, resources), "ord-mega-3", manifest=MANIFEST)
    assert view["status"] == "RUNNING" and view["missing"] == ["fraud"]


def test_a_trigger_carrying_the_reserved_claim_check_field_itself_ends_rejected_naming_it(aws):
    # Every consumer dead-lettered it as an unresolvable reference, so the request never got an outcome.
    session, resources = aws
    clients = Clients.create(session)
    entry = order_entry("ord-forged-cc")
    entry["Detail"] = json.dumps({**json.loads(entry["Detail"]), "claim_check": {"bucket": "elsewhere"}})
    assert clients.events.put_events(Entries=[entry])["FailedEntryCount"] == 0
    coordinator = build_coordinator(settings_for(resources, "coordinator", MANIFEST, record_concurrency=1), clients)
    assert run(session, resources, "coordinator", coordinator) == {"batchItemFailures": []}
    view = operations.workflow_status(Deployment(session, None, resources), "ord-forged-cc", manifest=MANIFEST)
    assert view["status"] == "REJECTED" and view["published"] is True
    assert view["reason"].startswith("invalid Order Placed: ") and "claim check" in view["reason"], view["reason"]
    row = clients.dynamodb.get_item(TableName=resources.tables["orders"], Key={"order_id": {"S": "ord-forged-cc"}})
    assert row["Item"]["status"]["S"] == "REJECTED"
    assert drain_queue(session.client("sqs"), resources.consumers["coordinator"].dlq_url) == []
