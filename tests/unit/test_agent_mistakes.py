"""Mistakes in a user's workflow or agent code that the agent runner names at once (review bb4c F4, F9),
instead of dead-lettering every request after its retries with a reason that blames something else."""

from __future__ import annotations

from dataclasses import replace

import pytest

from functions.common.agent import AgentRunner, Decision
from functions.common.publisher import EventPublisher
from tests.pinned import MANIFEST
from tests.unit.test_agent_runner import FakeEvents

ORDERS = MANIFEST.workflow("order-fulfillment")


# -- F4: an id_field that is not a field of the trigger model ---------------------------------------------

def test_the_shipped_workflows_trigger_models_hold_their_id_fields():
    for workflow in MANIFEST.workflows:
        assert workflow.id_field in workflow.trigger_model.model_fields


def test_an_id_field_not_in_the_trigger_model_stops_the_agent_at_cold_start_naming_it():
    # "orderId" for the model's order_id: every request was dead-lettered by every agent ("'OrderPlaced' object has
    # no attribute 'orderId'") and by the coordinator ("orderId: must be a string ..., got NoneType").
    wrong = replace(ORDERS, trigger=replace(ORDERS.trigger, id_field="orderId"))
    publisher = EventPublisher(FakeEvents(), "agentbus", sleep=lambda s: None)
    with pytest.raises(ValueError) as refused:
        AgentRunner(ORDERS.agent("fraud"), wrong, publisher, decide=lambda request: Decision("Order Verified"))
    message = str(refused.value)
    assert message.startswith("workflow 'order-fulfillment': id_field 'orderId' is not a field of its trigger model "
                              "OrderPlaced (functions.orders.models:OrderPlaced); its fields: ")
    assert "order_id" in message.partition("its fields: ")[2].split(", ")
