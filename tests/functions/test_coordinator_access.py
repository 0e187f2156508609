"""The coordinator on moto for the access-request workflow, beside orders: the same generic code grants or
denies a request from its three results, keys records by (workflow, id) so an order and an access request
with the same id never meet, and refuses a standalone event it is not subscribed to."""

from __future__ import annotations

import json

import pytest

from agentbus.local.lambda_events import eventbridge_envelope
from functions.common.digest import trigger_digest
from functions.common.ids import result_idempotency_key
from functions.common.models import WorkflowOutcome
from tests.conftest import load_detail, load_entries
from tests.functions.coordinator_harness import Coordinator
from tests.pinned import MANIFEST  # the shipped workflows with the agents these tests name (not any a user adds)

ACCESS = MANIFEST.workflow("access-request")
ORDERS = MANIFEST.workflow("order-fulfillment")
GRANTED = {"identity": "identity-verified.json", "policy": "access-permitted.json", "risk": "risk-accepted.json"}
ORDER_RESULTS = {"fraud": "order-verified.json", "inventory": "items-reserved.json", "shipping": "shipping-quoted.json"}


def envelope_of(name: str, **changes) -> dict:
    [entry] = load_entries(name)[:1]
    return eventbridge_envelope(entry["DetailType"], entry["Source"], json.loads(entry["Detail"]) | changes)


def trigger(name: str, workflow, workflow_id: str | None = None) -> dict:
    detail = load_detail(name)
    if workflow_id:
        detail[workflow.id_field] = workflow_id
    [entry] = load_entries(name)[:1]
    return eventbridge_envelope(entry["DetailType"], entry["Source"], detail)


def answer(sample: str, to: dict) -> dict:
    """The result sample ``sample``, answering the trigger envelope ``to`` (its id and its digest)."""
    [entry] = load_entries(sample)
    detail = json.loads(entry["Detail"])
    workflow = MANIFEST.workflow(detail["workflow"])
    workflow_id = to["detail"][workflow.id_field]
    detail |= {"workflow_id": workflow_id, "trigger_digest": trigger_digest(to["detail"])}
    detail["idempotency_key"] = result_idempotency_key(workflow_id, detail["agent"], detail["trigger_digest"])
    return eventbridge_envelope(entry["DetailType"], entry["Source"], detail)


@pytest.fixture
def c(aws):
    return Coordinator(*aws)


def test_sample_request_and_its_three_result_samples_grant_access_and_write_its_row(c):
    request = trigger("access-requested.json", ACCESS)
    results = [envelope_of(sample) for sample in GRANTED.values()]  # the samples answer this very trigger
    assert c.deliver(request, *results) == {"batchItemFailures": []}

    [published] = c.outcomes()
    assert published["detail-type"] == "Access Granted"
    outcome = WorkflowOutcome.model_validate(published["detail"])
    assert (outcome.workflow, outcome.workflow_id, outcome.status) == ("access-request", "acc-3001", "COMPLETED")
    assert published["detail"]["request_id"] == "acc-3001"
    assert "order_id" not in published["detail"]
    assert set(outcome.results) == set(GRANTED) and outcome.missing == []

    row = c.row("access-requests", "request_id", "acc-3001")
    assert row["status"] == "COMPLETED" and row["decision"] == "GRANTED"
    assert (row["employee_id"], row["resource"], row["access_level"]) == ("emp-1001", "source-code", "read")
    [record] = c.store.find("acc-3001")
    assert (record.workflow, record.status) == ("access-request", "COMPLETED")
    assert c.dead_letters() == {}


def test_a_failing_policy_denies_access_naming_policy_and_its_reason(c):
    request = trigger("access-requested-contractor-admin.json", ACCESS)
    results = [answer(GRANTED["identity"], request), envelope_of("access-not-permitted.json"),
               answer(GRANTED["risk"], request)]
    c.deliver(request, *results)

    [published] = c.outcomes()
    assert published["detail-type"] == "Access Denied"
    detail = published["detail"]
    assert (detail["request_id"], detail["status"]) == ("acc-3002", "REJECTED")
    assert "policy" in detail["reason"]
    assert "contractor allows at most write on source-code" in detail["reason"]
    assert "identity" not in detail["reason"] and "risk" not in detail["reason"]
    row = c.row("access-requests", "request_id", "acc-3002")
    assert (row["status"], row["decision"]) == ("REJECTED", "DENIED")


def test_an_order_and_an_access_request_with_the_same_id_do_not_disturb_each_other(c):
    shared = "shared-7"
    order = trigger("order-placed.json", ORDERS, shared)
    request = trigger("access-requested.json", ACCESS, shared)
    order_results = [answer(sample, order) for sample in ORDER_RESULTS.values()]
    access_results = [answer(sample, request) for sample in GRANTED.values()]
    # Interleaved, with one access result failing: each workflow decides on its own results only.
    access_results[1] = answer("access-not-permitted.json", request)
    batch = [order, request, *[e for pair in zip(order_results, access_results, strict=True) for e in pair]]
    assert c.deliver(*batch) == {"batchItemFailures": []}

    outcomes = {e["detail-type"]: e["detail"] for e in c.outcomes()}
    assert set(outcomes) == {"Order Completed", "Access Denied"}
    assert outcomes["Order Completed"]["order_id"] == shared and outcomes["Order Completed"]["workflow"] == ORDERS.name
    assert outcomes["Access Denied"]["request_id"] == shared and outcomes["Access Denied"]["workflow"] == ACCESS.name
    assert set(outcomes["Order Completed"]["results"]) == set(ORDER_RESULTS)
    # A failure finishes the request at once (no need to wait for risk): only its own agents' results count.
    assert {"identity", "policy"} <= set(outcomes["Access Denied"]["results"]) <= set(GRANTED)
    assert "policy" in outcomes["Access Denied"]["reason"]

    records = sorted((r.workflow, r.status) for r in c.store.find(shared))
    assert records == [("access-request", "REJECTED"), ("order-fulfillment", "COMPLETED")]
    assert c.row("orders", "order_id", shared)["status"] == "COMPLETED"
    assert c.row("access-requests", "request_id", shared)["status"] == "REJECTED"
    assert c.dead_letters() == {}


def test_a_standalone_user_created_event_is_refused_and_opens_no_record(c):
    user_created = envelope_of("user-created.json")
    assert c.deliver(user_created) == {"batchItemFailures": []}  # poison: kept with its reason, not retried
    [(body, reason)] = c.dead_letters().items()
    assert json.loads(body)["detail-type"] == "User Created"
    assert "User Created" in reason
    assert c.store.find("usr-5001") == []
    assert c.outcomes() == []
