"""A claim-check reference is obeyed only if a publisher of its envelope wrote its key (common/claim_check.py).

A producer's event that carries ``claim_check`` itself, pointing at an object of the right size and sha256
stored elsewhere in the bucket (by hand, or by another function), was resolved and obeyed: the request
completed. The key must be ``<function>/<source>/<detail-type>/…/<sha256>.json`` with the envelope's source and
detail-type, under the prefix of the function that publishes that source; anything else is poison naming the
reference, and the coordinator ends such a request REJECTED naming it (README "Big payloads")."""

from __future__ import annotations

import hashlib
import importlib
import json

import boto3
import pytest
from moto import mock_aws

from agentbus import operations
from agentbus.bench.synthetic import agent_name
from agentbus.bench.synthetic import import_path as synthetic_path
from agentbus.discovery import Deployment
from functions.common.claim_check import (
    ClaimCheckError,
    ClaimCheckStore,
    claim_check_writers,
    resolve_event,
)
from functions.common.clients import Clients
from functions.common.dead_letters import REASON_ATTRIBUTE
from functions.common.models import BusEvent
from functions.common.publisher import Event, EventPublisher
from functions.common.settings import Settings
from functions.common.spec import COORDINATOR_SOURCE, load_manifest
from functions.coordinator.handler import build as build_coordinator
from tests.conftest import drain_queue, settings_for
from tests.functions.test_claim_check_handlers import run
from tests.pinned import MANIFEST  # the shipped workflows with the agents these tests run
from tests.unit.test_claim_check import FakeEvents
from tests.workflows.followups.manifest import IMPORT_PATH as FOLLOWUPS

BUCKET = "agentbus-claim-checks"
ORDER_SOURCE, ORDER_PLACED = "agentbus.orders", "Order Placed"
FRAUD_SOURCE = "agentbus.agent.fraud"
ORDER = {"order_id": "cc-self", "customer_id": "cus-42", "currency": "EUR",
         "items": [{"sku": "SKU-MOUSE", "quantity": 1, "unit_price": 25.0}],
         "shipping_address": {"country": "DE", "postal_code": "10115"}}
FORGED_KEYS = ("producer/cc-self.json", "../é/🙂 x.json")
ORDER_CONSUMERS = ("fraud", "inventory", "shipping", "coordinator")


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def store(s3, function: str, manifest_path: str = MANIFEST.import_path, threshold: int = 204800) -> ClaimCheckStore:
    """``function``'s own store, as its handler builds it from its settings."""
    settings = Settings(function=function, event_bus_name="agentbus", manifest_path=manifest_path,
                        claim_check_bucket=BUCKET, claim_check_threshold=threshold)
    built = ClaimCheckStore.for_function(settings, s3)
    assert built is not None
    return built


def put_by_hand(s3, key: str, detail: dict, bucket: str = BUCKET) -> dict:
    """What the tester did: an object put in the bucket by hand and a reference to it (right bytes and sha256)."""
    body = json.dumps(detail, separators=(",", ":")).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return {"bucket": bucket, "key": key, "bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def event(source: str, detail_type: str, detail: dict) -> BusEvent:
    return BusEvent.model_validate({"id": "e-1", "source": source, "detail-type": detail_type, "detail": detail})


def published(s3, function: str, source: str, detail_type: str, detail: dict, manifest_path: str = MANIFEST.import_path,
              threshold: int = 1024) -> dict:
    """The reference detail ``function``'s real publisher puts on the bus for ``detail`` (stored in the bucket)."""
    events = FakeEvents()
    EventPublisher(events, "agentbus", claim_checks=store(s3, function, manifest_path, threshold)).publish(
        [Event(detail_type, detail, source)])
    [entry] = events.entries
    reference = json.loads(entry["Detail"])
    assert "claim_check" in reference, "not offloaded"
    return reference


def fraud_result(workflow_id: str = "ord-1") -> dict:
    return {"workflow": "order-fulfillment", "workflow_id": workflow_id, "agent": "fraud", "outcome": "success",
            "reason": "score 0 < 100", "data": {"evidence": "x" * 4096}, "started_at": "2026-12-01T00:00:00.000Z",
            "finished_at": "2026-12-01T00:00:00.010Z", "duration_ms": 10.0,
            "idempotency_key": f"{workflow_id}:fraud", "trigger_digest": "d" * 32}


# --- the tester's reference: a key outside every publisher's prefix --------------------------------------

@pytest.mark.parametrize("key", FORGED_KEYS)
@pytest.mark.parametrize("with_id", [True, False], ids=["with-order-id", "reference-alone"])
def test_a_producers_reference_to_an_object_put_by_hand_is_refused_by_every_consumer(s3, key, with_id):
    reference = put_by_hand(s3, key, ORDER)
    detail = {"claim_check": reference, **({"order_id": "cc-self"} if with_id else {})}
    forged = event(ORDER_SOURCE, ORDER_PLACED, detail)
    for consumer in ORDER_CONSUMERS:
        with pytest.raises(ClaimCheckError) as refused:
            resolve_event(forged, store(s3, consumer))
        message = str(refused.value)
        assert message.startswith(f"claim check s3://{BUCKET}/{key} "), message
        assert "written by no function that publishes source 'agentbus.orders'" in message


@pytest.mark.parametrize("key, problem", [
    ("fraud/agentbus.agent.fraud/Order_Verified/ord-1_fraud/{sha}.json", None),  # where fraud's publisher writes it
    ("fraud/agentbus.agent.fraud/Order_Verified/ord-1_fraud/é/{sha}.json", "the key is not <function>/<source>"),
    ("fraud/agentbus.agent.fraud/Order_Verified/ord 1/{sha}.json", "the key is not <function>/<source>"),
    ("fraud/agentbus.agent.fraud/Order_Verified/{sha}.json", "the key is not <function>/<source>"),
    ("inventory/agentbus.agent.fraud/Order_Verified/-/{sha}.json",
     "written under 'inventory', not by the function that publishes source 'agentbus.agent.fraud' (fraud)"),
    ("fraud/agentbus.agent.inventory/Order_Verified/-/{sha}.json",
     "stored for source 'agentbus.agent.inventory', not this event's 'agentbus.agent.fraud'"),
    ("fraud/agentbus.agent.fraud/Order_Flagged/-/{sha}.json",
     "stored for detail-type 'Order_Flagged', not this event's 'Order Verified'"),
    ("fraud/agentbus.agent.fraud/Order_Verified/-/" + "0" * 64 + ".json", "the key names content"),
])
def test_under_a_publishers_source_the_key_must_be_one_its_function_writes(s3, key, problem):
    detail = fraud_result()
    body = json.dumps(detail, separators=(",", ":")).encode()
    key = key.format(sha=hashlib.sha256(body).hexdigest())
    reference = put_by_hand(s3, key, detail)
    result = event(FRAUD_SOURCE, "Order Verified", {"claim_check": reference, "workflow_id": "ord-1"})
    coordinator = store(s3, "coordinator")
    if problem is None:
        assert resolve_event(result, coordinator).detail == detail
        return
    with pytest.raises(ClaimCheckError, match="; refused$") as refused:
        resolve_event(result, coordinator)
    assert f"claim check s3://{BUCKET}/{key} on 'Order Verified' from 'agentbus.agent.fraud': " in str(refused.value)
    assert problem in str(refused.value)


# --- another function's real stored object, under an envelope it was not written for --------------------

@pytest.mark.parametrize("source, detail_type, extra, problem", [
    (ORDER_SOURCE, ORDER_PLACED, {"order_id": "ord-1"},
     "written by no function that publishes source 'agentbus.orders'"),
    ("agentbus.agent.inventory", "Items Reserved", {},
     "written under 'fraud', not by the function that publishes source 'agentbus.agent.inventory' (inventory)"),
    (COORDINATOR_SOURCE, "Order Completed", {},
     "written under 'fraud', not by the function that publishes source 'agentbus.coordinator' (coordinator)"),
    (FRAUD_SOURCE, "Order Flagged", {},
     "stored for detail-type 'Order_Verified', not this event's 'Order Flagged'"),
])
def test_another_functions_stored_detail_replayed_under_another_envelope_is_refused(s3, source, detail_type,
                                                                                   extra, problem):
    reference = published(s3, "fraud", FRAUD_SOURCE, "Order Verified", fraud_result())
    replayed = event(source, detail_type, {**reference, **extra})
    for consumer in ("coordinator", "inventory"):
        with pytest.raises(ClaimCheckError) as refused:
            resolve_event(replayed, store(s3, consumer))
        assert str(refused.value).startswith(f"claim check s3://{BUCKET}/{reference['claim_check']['key']} ")
        assert problem in str(refused.value)


def test_the_coordinators_stored_outcome_is_not_an_agents_result(s3):
    outcome = {"workflow": "order-fulfillment", "workflow_id": "ord-1", "order_id": "ord-1", "status": "COMPLETED",
               "results": {"fraud": {"data": "x" * 4096}}}
    reference = published(s3, "coordinator", COORDINATOR_SOURCE, "Order Completed", outcome)
    as_result = event(FRAUD_SOURCE, "Order Verified", reference)
    with pytest.raises(ClaimCheckError, match="written under 'coordinator', not by the function that publishes "
                                              "source 'agentbus.agent.fraud'"):
        resolve_event(as_result, store(s3, "coordinator"))


# --- every legitimate path still resolves ---------------------------------------------------------------

def test_an_agents_result_resolves_for_the_coordinator(s3):
    detail = fraud_result()
    reference = published(s3, "fraud", FRAUD_SOURCE, "Order Verified", detail)
    resolved = resolve_event(event(FRAUD_SOURCE, "Order Verified", reference), store(s3, "coordinator"))
    assert resolved.detail == detail and resolved.claim_check == reference["claim_check"]


def test_an_outcome_resolves_for_a_compensating_agent_and_for_the_workflow_it_triggers(s3):
    rejected = {"workflow": "order-fulfillment", "workflow_id": "ord-1", "order_id": "ord-1", "status": "REJECTED",
                "reason": "r" * 4096}
    reference = published(s3, "coordinator", COORDINATOR_SOURCE, "Order Rejected", rejected)
    assert resolve_event(event(COORDINATOR_SOURCE, "Order Rejected", reference),
                         store(s3, "inventory")).detail == rejected
    # tests/workflows/followups: report's outcome is the trigger of report-filed, whose agent resolves it.
    completed = {"workflow": "report", "workflow_id": "rep-1", "report_id": "rep-1", "status": "COMPLETED",
                 "results": {"writer": {"data": {"text": "r" * 4096}}}}
    reference = published(s3, "coordinator", COORDINATOR_SOURCE, "Report Completed", completed, FOLLOWUPS)
    assert resolve_event(event(COORDINATOR_SOURCE, "Report Completed", reference),
                         store(s3, "filer", FOLLOWUPS)).detail == completed


def test_a_synthetic_bench_agents_result_resolves_for_its_coordinator(s3):
    path, agent = synthetic_path(3), agent_name(2)
    source = f"agentbus.agent.{agent}"
    detail = {"workflow": "sweep-3-agents", "workflow_id": "sw-1", "agent": agent, "outcome": "success",
              "data": {"data": "x" * 4096}, "idempotency_key": f"sw-1:{agent}"}
    reference = published(s3, agent, source, "Sweep Answered", detail, path)
    assert reference["claim_check"]["key"].startswith(f"{agent}/{source}/Sweep_Answered/sw-1_{agent}/")
    assert resolve_event(event(source, "Sweep Answered", reference), store(s3, "coordinator", path)).detail == detail


@pytest.mark.parametrize("path", [MANIFEST.import_path, FOLLOWUPS, synthetic_path(3)])
def test_every_function_writes_where_the_readers_expect_its_source(s3, path):
    manifest = load_manifest(path)
    writers = claim_check_writers(manifest)
    for consumer in manifest.consumers:
        assert store(s3, consumer.name, path).prefix in writers[consumer.source], consumer.name


# --- the tester's request, end to end on moto: the agents dead-letter it, the coordinator rejects it ------

def forged_request(session, resources, key: str, with_id: bool) -> dict:
    reference = put_by_hand(session.client("s3"), key, ORDER, resources.claim_check_bucket)
    detail = {"claim_check": reference, **({"order_id": "cc-self"} if with_id else {})}
    response = session.client("events").put_events(Entries=[{
        "Source": ORDER_SOURCE, "DetailType": ORDER_PLACED, "EventBusName": resources.bus_name,
        "Detail": json.dumps(detail)}])
    assert response["FailedEntryCount"] == 0
    return reference


@pytest.mark.parametrize("key", FORGED_KEYS)
def test_the_testers_request_ends_rejected_naming_the_reference(aws, key):
    session, resources = aws
    clients = Clients.create(session)
    forged_request(session, resources, key, with_id=True)
    named = f"claim check s3://{resources.claim_check_bucket}/{key} "
    for name in ("fraud", "inventory", "shipping"):
        handler = importlib.import_module(MANIFEST.consumer(name).module).build(
            settings_for(resources, name, MANIFEST, record_concurrency=1), clients)
        assert run(session, resources, name, handler) == {"batchItemFailures": []}
        [letter] = drain_queue(session.client("sqs"), resources.consumers[name].dlq_url)
        reason = letter["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
        assert reason.startswith(named) and "written by no function that publishes source" in reason, reason
    coordinator = build_coordinator(settings_for(resources, "coordinator", MANIFEST, record_concurrency=1), clients)
    assert run(session, resources, "coordinator", coordinator) == {"batchItemFailures": []}
    view = operations.workflow_status(Deployment(session, None, resources), "cc-self", manifest=MANIFEST)
    assert view["status"] == "REJECTED" and view["published"] is True
    assert view["reason"].startswith(f"invalid Order Placed: {named}"), view["reason"]
    assert "written by no function that publishes source 'agentbus.orders'" in view["reason"]
    assert view["results"] == {}  # no agent obeyed it
    assert drain_queue(session.client("sqs"), resources.consumers["coordinator"].dlq_url) == []


def test_the_testers_reference_alone_is_dead_lettered_by_the_coordinator_naming_it(aws):
    # Without the workflow's id beside it there is no request to reject: the coordinator keeps it with the reason.
    session, resources = aws
    clients = Clients.create(session)
    forged_request(session, resources, FORGED_KEYS[0], with_id=False)
    coordinator = build_coordinator(settings_for(resources, "coordinator", MANIFEST, record_concurrency=1), clients)
    assert run(session, resources, "coordinator", coordinator) == {"batchItemFailures": []}
    [letter] = drain_queue(session.client("sqs"), resources.consumers["coordinator"].dlq_url)
    reason = letter["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
    assert reason.startswith(f"claim check s3://{resources.claim_check_bucket}/{FORGED_KEYS[0]} "), reason
    assert "written by no function that publishes source 'agentbus.orders'" in reason
