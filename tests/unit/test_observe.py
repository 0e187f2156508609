"""Which workflow and request an event on the bus belongs to (the observer, the demo, `agentbus trace`)."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

from agentbus.observe import locate_event, requests_of
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
