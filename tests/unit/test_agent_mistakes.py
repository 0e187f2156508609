"""Mistakes in a user's workflow or agent code that the agent runner names at once (review bb4c F4, F9),
instead of dead-lettering every request after its retries with a reason that blames something else."""

from __future__ import annotations

from dataclasses import replace

import pytest

from functions.common.agent import AgentOutput, AgentRunner, Decision
from functions.common.dead_letters import PoisonMessage
from functions.common.publisher import EventPublisher
from tests.pinned import MANIFEST
from tests.unit.test_agent_runner import FakeEvents, order_placed, runner

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


# -- F9: agent code returning something other than a Decision / an AgentOutput ------------------------------

@pytest.mark.parametrize(("returned", "named"), [
    ({"detail_type": "Order Verified"}, "got dict {'detail_type': 'Order Verified'}"),
    (None, "got None"),
    ("Order Verified", "got str 'Order Verified'"),
])
def test_decide_returning_something_else_is_a_poison_message_naming_the_agent(returned, named):
    # It was retried 5 times (on AWS ~12 minutes, past the deadline) and dead-lettered as "AttributeError: 'dict'
    # object has no attribute 'detail_type'".
    run, events, metrics = runner(decide=lambda order: returned)
    with pytest.raises(PoisonMessage) as poisoned:
        run.handle(order_placed())
    assert str(poisoned.value) == f"agent 'fraud': decide must return a Decision, {named}"
    assert events.entries == []


def test_act_giving_finish_something_else_is_a_poison_message():
    run, events, _ = runner(act=lambda order, finish: finish({"detail_type": "Order Verified"}))
    with pytest.raises(PoisonMessage, match=r"^agent 'fraud': act must give finish\(\) a Decision, got dict "):
        run.handle(order_placed())
    assert events.entries == []


def test_act_returning_something_else_is_a_poison_message():
    run, events, _ = runner(act=lambda order, finish: finish(Decision("Order Verified")).detail)
    with pytest.raises(PoisonMessage, match=r"^agent 'fraud': act must return an AgentOutput .*got dict "):
        run.handle(order_placed())
    assert events.entries == []
    run, events, _ = runner(act=lambda order, finish: finish(Decision("Order Verified")))
    assert isinstance(run.handle(order_placed()), AgentOutput) and len(events.entries) == 1
