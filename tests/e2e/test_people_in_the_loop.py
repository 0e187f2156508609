"""Issue 13's "done when", against `agentbus up` with the real `aws` CLI: a high-risk access request waits for a
manager (status says for what), `agentbus approve` completes it; `agentbus decline` denies another naming the
person; `agentbus cancel` ends an order CANCELLED with its compensation (the stock comes back); a forged
approval from another source changes nothing and is in `agentbus dead-letters` with the reason. One
`agentbus up` for the whole module."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.conftest import load_entries, order_entry

pytestmark = pytest.mark.e2e

MANAGER = "grace.hopper@agentbus.example"


def high_risk_request(up) -> str:
    """A copy of events/access-requested-high-risk.json under a new id, put with the aws CLI; its id."""
    [entry] = load_entries("access-requested-high-risk.json")
    request_id = f"acc-{uuid.uuid4().hex[:8]}"
    entry = entry | {"Detail": json.dumps(json.loads(entry["Detail"]) | {"request_id": request_id})}
    assert up.aws("events", "put-events", "--entries", json.dumps([entry]))["FailedEntryCount"] == 0
    return request_id


def waiting(up, request_id: str) -> dict:
    return up.wait_status(request_id, lambda v: bool(v.get("waiting_for")))


def test_a_high_risk_request_waits_for_a_manager_and_approve_completes_it(up):
    request_id = high_risk_request(up)
    view = waiting(up, request_id)
    assert (view["status"], view["missing"]) == ("RUNNING", ["manager-approval"])
    assert view["results"]["risk"]["asks_for"] == ["manager-approval"]
    human = up.agentbus("status", request_id)
    assert human.returncode == 0, human.stderr
    assert "waits for manager-approval: a person (the employee's manager), asked" in human.stdout
    assert "waits until" in human.stdout
    pending = up.agentbus("pending", "--json")
    assert pending.returncode == 0, pending.stderr
    [row] = [r for r in json.loads(pending.stdout) if r["workflow_id"] == request_id]
    assert (row["workflow"], row["agent"]) == ("access-request", "manager-approval")

    approved = up.agentbus("approve", request_id, "--by", MANAGER, "--note", "for INC-2207")
    assert approved.returncode == 0, approved.stderr
    assert f"sent 'Access Approved' from agentbus.approvals for access-request {request_id}" in approved.stdout
    view = up.wait_outcome(request_id)
    assert view["status"] == "COMPLETED"
    assert view["results"]["manager-approval"]["reason"] == f"approved by {MANAGER}: for INC-2207"
    assert not [r for r in json.loads(up.agentbus("pending", "--json").stdout) if r["workflow_id"] == request_id]

    again = up.agentbus("approve", request_id)
    assert again.returncode == 1
    assert again.stderr.strip() == (f"agentbus approve: access-request {request_id} is already COMPLETED: nothing "
                                    "to approve, nothing sent")


def test_decline_denies_another_naming_the_person(up):
    request_id = high_risk_request(up)
    waiting(up, request_id)
    declined = up.agentbus("decline", request_id, "--by", MANAGER, "--note", "use the read replica")
    assert declined.returncode == 0, declined.stderr
    view = up.wait_outcome(request_id)
    assert view["status"] == "REJECTED"
    assert MANAGER in view["reason"] and "use the read replica" in view["reason"]


def _stock(up, sku: str) -> int:
    from agentbus.discovery import find_deployment

    table = find_deployment(up.url).resources.tables["inventory"]
    item = up.boto3("dynamodb").get_item(TableName=table, Key={"pk": {"S": f"sku#{sku}"}}, ConsistentRead=True)
    return int(item["Item"]["on_hand"]["N"])


def test_cancel_ends_a_running_order_cancelled_and_its_stock_comes_back(up):
    paused = up.agentbus("agent", "pause", "shipping")
    assert paused.returncode == 0, paused.stderr
    try:
        order_id = f"ord-{uuid.uuid4().hex[:8]}"
        entry = order_entry(order_id)
        lines = json.loads(entry["Detail"])["items"]
        before = {line["sku"]: _stock(up, line["sku"]) for line in lines}
        up.boto3("events").put_events(Entries=[entry])
        view = up.wait_status(order_id, lambda v: {"fraud", "inventory"} <= set(v["results"]))
        assert (view["status"], view["missing"]) == ("RUNNING", ["shipping"])
        assert all(_stock(up, sku) == units - sum(x["quantity"] for x in lines if x["sku"] == sku)
                   for sku, units in before.items()), "the order's stock is reserved while it runs"

        cancelled = up.agentbus("cancel", order_id, "--reason", "the customer called", "--by", "ops")
        assert cancelled.returncode == 0, cancelled.stderr
        assert "sent 'Workflow Cancel Requested' from agentbus.operator" in cancelled.stdout
        view = up.wait_outcome(order_id)
        assert view["status"] == "CANCELLED"
        assert view["cancel"]["by"] == "ops" and "the customer called" in view["reason"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_stock(up, s) != n for s, n in before.items()):
            time.sleep(0.3)
        assert {sku: _stock(up, sku) for sku in before} == before, "inventory released the reservation"

        again = up.agentbus("cancel", order_id)
        assert again.returncode == 1
        assert "is already CANCELLED" in again.stderr and "cancel changed nothing" in again.stderr
    finally:
        resumed = up.agentbus("agent", "resume", "shipping")
        assert resumed.returncode == 0, resumed.stderr
    # Shipping's late quote, once resumed, is kept aside as late: the order stays CANCELLED.
    view = up.wait_status(order_id, lambda v: any(r.get("agent") == "shipping" for r in v["late_results"]))
    assert view["status"] == "CANCELLED"
    status = up.agentbus("status", order_id)
    assert "late, not counted: shipping" in status.stdout


def test_a_forged_approval_changes_nothing_and_is_dead_lettered_with_the_reason(up):
    request_id = high_risk_request(up)
    view = waiting(up, request_id)
    [sample] = load_entries("access-approved.json")
    detail = json.loads(sample["Detail"]) | {"workflow_id": request_id, "trigger_digest": view["trigger_digest"]}
    forged = sample | {"Source": "evil.approvals", "Detail": json.dumps(detail)}
    # Locally the bus policy is not enforced (on AWS it denies nobody of the account this source, but the
    # coordinator still refuses it): the coordinator is the guard.
    assert up.aws("events", "put-events", "--entries", json.dumps([forged]))["FailedEntryCount"] == 0
    deadline = time.monotonic() + 30
    letters: list[dict] = []
    while time.monotonic() < deadline and not letters:
        result = up.agentbus("dead-letters", "--agent", "coordinator", "--json")
        assert result.returncode == 0, result.stderr
        letters = [x for x in json.loads(result.stdout) if x["event"].get("source") == "evil.approvals"
                   and x["event"]["detail"]["workflow_id"] == request_id]
        time.sleep(1)  # each look is a CLI process
    [letter] = letters
    assert "evil.approvals" in letter["reason"]
    view = up.status(request_id)
    assert view["status"] == "RUNNING" and "manager-approval" not in view["results"]
    assert [w["agent"] for w in view["waiting_for"]] == ["manager-approval"]
    # The real answer still counts.
    assert up.agentbus("approve", request_id, "--by", MANAGER).returncode == 0
    assert up.wait_outcome(request_id)["status"] == "COMPLETED"
