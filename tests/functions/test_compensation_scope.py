"""A compensation undoes a side effect for its own workflow's outcomes only (review bb4c F8).

Two workflows may use the same id, and an outcome of another workflow may carry the detail-type an agent
compensates on ("Order Rejected"). The inventory agent released a COMPLETED order's reservation on an
invoice-approval outcome of the same id, and tombstoned an order id nobody had placed yet.
"""

from __future__ import annotations

import json

from tests.functions.test_inventory_handler import (
    STOCK,
    assert_invariant,
    batch,
    build,
    context,
    finished,
    placed,
    reservations,
    stock,
)


def of_workflow(body: str, workflow: str) -> str:
    event = json.loads(body)
    event["detail"]["workflow"] = workflow
    return json.dumps(event)


def dead_letters(session, resources) -> list[dict]:
    sqs = session.client("sqs")
    url = resources.consumers["inventory"].dlq_url
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])


def test_another_workflows_outcome_does_not_release_a_reservation(aws):
    session, resources = aws
    handle = build(session, resources)
    handle(batch(resources, placed()), context())
    held = stock(session, resources)
    assert held["SKU-MOUSE"] != (STOCK["SKU-MOUSE"], 0)
    other = of_workflow(finished("REJECTED"), "invoice-approval")
    assert handle(batch(resources, other, other), context()) == {"batchItemFailures": []}
    assert reservations(session, resources)["ord-1001"]["status"] == "HELD"
    assert stock(session, resources) == held
    assert dead_letters(session, resources) == []  # ignored, not a poison message
    assert_invariant(session, resources)
    # Its own workflow's outcome still releases it.
    assert handle(batch(resources, finished("REJECTED")), context()) == {"batchItemFailures": []}
    assert reservations(session, resources)["ord-1001"]["status"] == "RELEASED"


def test_another_workflows_outcome_leaves_no_tombstone_for_a_later_order(aws):
    session, resources = aws
    handle = build(session, resources)
    other = of_workflow(finished("TIMED_OUT"), "invoice-approval")
    assert handle(batch(resources, other), context()) == {"batchItemFailures": []}
    assert "ord-1001" not in reservations(session, resources)
    assert handle(batch(resources, placed()), context()) == {"batchItemFailures": []}
    assert reservations(session, resources)["ord-1001"]["status"] == "HELD"


# -- the rule: another workflow's outcome is not even delivered ----------------------------------------

def test_the_compensation_rule_matches_the_agents_own_workflow():
    from functions.manifest import MANIFEST

    inventory = MANIFEST.agent("inventory")
    [rule] = [s for s in MANIFEST.subscriptions(inventory) if s.name == "compensation"]
    assert rule.pattern() == {"source": ["agentbus.coordinator"], "detail-type": list(inventory.compensate_on),
                              "detail": {"workflow": ["order-fulfillment"]}}
    assert rule.matches("agentbus.coordinator", "Order Rejected", "order-fulfillment")
    assert not rule.matches("agentbus.coordinator", "Order Rejected", "invoice-approval")


def test_the_bus_delivers_only_the_agents_own_workflows_outcome(aws):
    # The local runtime's rules (provisioned from the same Subscription.pattern() as the CDK rules).
    session, resources = aws
    sqs, events = session.client("sqs"), session.client("events")
    url = resources.consumers["inventory"].queue_url

    def put(workflow: str) -> list[dict]:
        event = json.loads(of_workflow(finished("REJECTED"), workflow))
        events.put_events(Entries=[{"EventBusName": resources.bus_name, "Source": event["source"],
                                    "DetailType": event["detail-type"], "Detail": json.dumps(event["detail"])}])
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        return [json.loads(m["Body"])["detail"] for m in messages]

    assert put("invoice-approval") == []
    assert [d["workflow"] for d in put("order-fulfillment")] == ["order-fulfillment"]
