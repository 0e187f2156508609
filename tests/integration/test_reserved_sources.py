"""The local endpoint protects reserved sources as the bus policy does on AWS: nobody but its owner publishes
a result, an outcome or a deadline."""

from __future__ import annotations

import json
import time

from agentbus import operations
from agentbus.discovery import Deployment
from agentbus.local.server import NOT_AUTHORIZED_FOR_SOURCE
from functions.manifest import DEADLINE_SOURCE, MANIFEST
from tests.conftest import load_entries, order_entry


def _deployment(stack) -> Deployment:
    return Deployment(stack.session, stack.url, stack.resources)


def _forged(source: str, order_id: str) -> dict:
    """An entry under ``source`` for ``order_id``, with the default credentials (anyone's)."""
    return {"Source": source, "DetailType": "Order Verified" if source.endswith(".fraud") else "Forged",
            "EventBusName": "agentbus",
            "Detail": json.dumps({"workflow": "order-fulfillment", "workflow_id": order_id, "order_id": order_id,
                                  "agent": source.rsplit(".", 1)[-1], "outcome": "success", "reason": "forged"})}


def test_a_forged_verification_is_refused_and_the_over_limit_order_stays_rejected(local_stack):
    events, control = local_stack.client("events"), local_stack.control
    control.set_paused("fraud", True)
    [over_limit] = load_entries("order-placed-over-limit.json")
    order_id = json.loads(over_limit["Detail"])["order_id"]
    assert events.put_events(Entries=[over_limit])["FailedEntryCount"] == 0

    forged = dict(load_entries("order-verified.json")[0])
    forged["Detail"] = json.dumps({**json.loads(forged["Detail"]), "workflow_id": order_id, "order_id": order_id})
    response = events.put_events(Entries=[forged])
    assert response["FailedEntryCount"] == 1
    [refused] = response["Entries"]
    assert refused["ErrorCode"] == NOT_AUTHORIZED_FOR_SOURCE and "agentbus.agent.fraud" in refused["ErrorMessage"]
    assert "EventId" not in refused

    time.sleep(2)  # a forged result, had it passed, would be counted by now
    view = operations.workflow_status(_deployment(local_stack), order_id)
    assert view["status"] == "RUNNING" and "fraud" not in view["results"]
    control.set_paused("fraud", False)
    assert local_stack.observer_.wait_for_outcomes([order_id], 60) == set()
    assert [e.detail["status"] for e in local_stack.observer_.outcomes(order_id)] == ["REJECTED"]


def test_every_reserved_source_is_refused_to_others_and_the_rest_of_the_call_goes_through(local_stack):
    reserved = sorted({c.source for c in MANIFEST.consumers} | {DEADLINE_SOURCE})
    forged_ids = [f"ord-forged-{i}" for i in range(len(reserved))]
    legit = "ord-legit-next-to-forgeries"
    events = local_stack.client("events")
    for start in range(0, len(reserved), 9):
        chunk = [_forged(s, o) for s, o in zip(reserved[start:start + 9], forged_ids[start:start + 9], strict=True)]
        entries = [*chunk[:1], order_entry(legit), *chunk[1:]] if start == 0 else chunk
        response = events.put_events(Entries=entries)
        assert response["FailedEntryCount"] == len(chunk), response
        for entry, result in zip(entries, response["Entries"], strict=True):
            if entry["Source"] in reserved:
                assert result["ErrorCode"] == NOT_AUTHORIZED_FOR_SOURCE, (entry["Source"], result)
            else:
                assert result.get("EventId") and "ErrorCode" not in result

    observer = local_stack.observer_
    assert observer.wait_for_outcomes([legit], 60) == set()  # the real agents, coordinator and publisher work
    assert [e.detail["status"] for e in observer.outcomes(legit)] == ["COMPLETED"]
    time.sleep(1)
    for order_id in forged_ids:
        assert observer.by_workflow.get(order_id, []) == [], f"{order_id} reached the bus"
        try:
            operations.workflow_status(_deployment(local_stack), order_id)
        except operations.OperationError:
            continue
        raise AssertionError(f"a forged event opened workflow {order_id}")
