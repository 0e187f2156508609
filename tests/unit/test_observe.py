"""Which workflow and request an event on the bus belongs to (the observer, the demo, `agentbus trace`)."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from types import SimpleNamespace

from agentbus.observe import BusObserver, locate_event, requests_of
from functions.manifest import MANIFEST
from tests.conftest import load_entries

ORDERS = MANIFEST.workflow("order-fulfillment")
AUDIT = MANIFEST.workflow("new-user-audit")


def test_a_trigger_two_workflows_share_starts_a_request_in_each():
    # A standalone workflow listening to the orders' trigger (the README's way to add one): the demo once filed
    # the sample under the coordinated workflow only, and the standalone one's summary came out empty.
    listener = dataclasses.replace(AUDIT, name="order-screening",
                                   trigger=dataclasses.replace(ORDERS.trigger, id_field="order_id"))
    manifest = SimpleNamespace(workflows=(ORDERS, listener, AUDIT))
    [entry] = load_entries("order-placed.json")
    detail = json.loads(entry["Detail"])
    assert requests_of(manifest, entry["DetailType"], entry["Source"], detail) == [
        ("order-fulfillment", "ord-1001"), ("order-screening", "ord-1001")]
    # An event that is no trigger, or a trigger without its id, starts nothing.
    assert requests_of(manifest, "Order Verified", "agentbus.agent.fraud", {"workflow_id": "ord-1001"}) == []
    assert requests_of(manifest, entry["DetailType"], entry["Source"], {}) == []
    # An event is still located in one workflow.
    assert locate_event(MANIFEST, entry["DetailType"], entry["Source"], detail) == ("order-fulfillment", "ord-1001")


class _Queue:
    """The observer's queue: one receive returns ``bodies``, later ones nothing."""

    def __init__(self, bodies: list[str]) -> None:
        self.bodies, self.deleted = bodies, []

    def receive_message(self, **_):
        bodies, self.bodies = self.bodies, []
        return {"Messages": [{"Body": b, "ReceiptHandle": str(i)} for i, b in enumerate(bodies)]}

    def delete_message_batch(self, Entries, **_):  # noqa: N803 - boto3's parameter name
        self.deleted += Entries


def test_an_event_nested_deeper_than_python_reads_is_skipped_and_the_rest_observed():
    # The observer's thread died on it (RecursionError out of json.loads): the demo and bench then waited for
    # outcomes nobody recorded any more.
    [entry] = load_entries("order-placed.json")
    good = json.dumps({"detail-type": entry["DetailType"], "source": entry["Source"],
                       "detail": json.loads(entry["Detail"])})
    deep = '{"detail-type": "Order Placed", "source": "agentbus.orders", "detail": {"order_id": ' + "[" * 100_000 \
        + "]" * 100_000 + "}}"
    queue = _Queue([deep, good])
    observer = BusObserver(events_client=None, sqs_client=queue, bus_name="agentbus", manifest=MANIFEST)
    observer.queue_url = "q"
    worker = threading.Thread(target=observer._drain, daemon=True)  # what start() runs, without the rule
    worker.start()
    deadline = time.monotonic() + 5
    while not observer.events("ord-1001", ORDERS.name) and time.monotonic() < deadline:
        time.sleep(0.05)
    observer._stop.set()
    worker.join(timeout=5)
    assert [e.detail_type for e in observer.events("ord-1001", ORDERS.name)] == ["Order Placed"]
    assert len(queue.deleted) == 2, "both are deleted: the unreadable one would only come back"
    assert observer.started_requests().keys() == {(ORDERS.name, "ord-1001")}


def test_an_event_naming_its_id_but_no_workflow_is_located_by_its_id():
    """Black-box pass 9A, 5: a cancel put without ``workflow`` was dead-lettered, and `dead-letters` named no id."""
    detail = {"workflow_id": "bb-c2", "by": "me", "reason": "x"}
    assert locate_event(MANIFEST, "Workflow Cancel Requested", "agentbus.operator", detail) == (None, "bb-c2")
    assert locate_event(MANIFEST, "Workflow Cancel Requested", "agentbus.operator",
                        {"workflow": 7, "workflow_id": 12}) == (None, "12")
    assert locate_event(MANIFEST, "Something Else", "someone", {"workflow_id": {"nested": 1}}) == (None, None)
