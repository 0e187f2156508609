"""Manifest mistakes a user makes adding a workflow, refused by ``Manifest.check`` naming what clashes
(review bb4c): each passed every check before and broke requests at run time."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.pinned import MANIFEST as PINNED
from tests.workflows.expenses.workflow import EXPENSE_CLAIM
from tests.workflows.expenses.workflow import TABLES as EXPENSE_TABLES


def with_expenses(expenses=EXPENSE_CLAIM, manifest=PINNED):
    return replace(manifest, workflows=(*manifest.workflows, expenses), tables=(*manifest.tables, *EXPENSE_TABLES))


def test_the_expense_workflow_added_as_it_is_passes():
    assert with_expenses().workflow("expense-claim") == EXPENSE_CLAIM


# -- F8: two workflows publishing the same outcome detail-type -------------------------------------------

def test_two_workflows_sharing_an_outcome_detail_type_are_refused_naming_both():
    # invoice-approval's "Order Rejected" ran order-fulfillment's compensation (a completed order lost its
    # reservation), and a follow-on workflow triggered by that outcome would start for both.
    shared = replace(EXPENSE_CLAIM, outcomes=replace(EXPENSE_CLAIM.outcomes, rejected="Order Rejected"))
    with pytest.raises(ValueError, match=r"^invalid manifest: ") as refused:
        with_expenses(shared)
    assert ("workflows 'order-fulfillment' and 'expense-claim' both publish the outcome 'Order Rejected'"
            in str(refused.value))


# -- F1: a source published by two owners -----------------------------------------------------------------

def expenses_agent(name: str, **changes):
    return replace(EXPENSE_CLAIM, agents=tuple(replace(a, **changes) if a.name == name else a
                                               for a in EXPENSE_CLAIM.agents))


def refusal(expenses) -> str:
    with pytest.raises(ValueError, match=r"^invalid manifest: ") as refused:
        with_expenses(expenses)
    return str(refused.value)


def test_two_agents_sharing_a_source_are_refused_naming_both():
    # A copy-pasted Agent block: the bus reserved the source to the last one, the other's every result was
    # refused (NotAuthorizedForSource) and every request timed out.
    message = refusal(expenses_agent("budget", source="agentbus.agent.receipts"))
    assert ("agent 'receipts' (workflow 'expense-claim') and agent 'budget' (workflow 'expense-claim') share "
            "source 'agentbus.agent.receipts'") in message
    # Across workflows too.
    message = refusal(expenses_agent("budget", source="agentbus.agent.fraud"))
    assert ("agent 'fraud' (workflow 'order-fulfillment') and agent 'budget' (workflow 'expense-claim') share "
            "source 'agentbus.agent.fraud'") in message


def test_an_agent_on_its_producers_source_is_refused_naming_the_workflow():
    # Every producer's trigger was then refused: no request could even be submitted.
    message = refusal(expenses_agent("budget", source="agentbus.expenses"))
    assert ("agent 'budget' (workflow 'expense-claim') uses source 'agentbus.expenses', from which workflow "
            "'expense-claim''s trigger 'Expense Submitted' comes") in message
    message = refusal(expenses_agent("budget", source="agentbus.orders"))
    assert "from which workflow 'order-fulfillment''s trigger 'Order Placed' comes" in message


@pytest.mark.parametrize(("source", "owner"), [
    ("agentbus.coordinator", "the coordinator's"),
    ("agentbus.deadline", "the deadline and census schedules'"),
    ("agentbus.operator", "the operator's (agentbus cancel)"),
    ("aws.events", "AWS services"),
])
def test_an_agent_on_a_core_source_is_refused_naming_its_owner(source, owner):
    message = refusal(expenses_agent("budget", source=source))
    assert f"agent 'budget' (workflow 'expense-claim') uses source {source!r}, {owner} own" in message


def test_an_external_agent_on_an_agents_source_is_refused_naming_both():
    access = PINNED.workflow("access-request")
    [manager] = access.external
    taken = replace(access, external=(replace(manager, source="agentbus.agent.risk"),))
    with pytest.raises(ValueError) as refused:
        replace(PINNED, workflows=tuple(taken if w.name == access.name else w for w in PINNED.workflows))
    assert ("external agent 'manager-approval' (workflow 'access-request') uses source 'agentbus.agent.risk', "
            "agent 'risk' (workflow 'access-request')'s own") in str(refused.value)


def test_an_agent_may_publish_the_trigger_of_a_follow_on_workflow_under_its_own_source():
    # A standalone workflow started by an agent's result: the agent is that trigger's producer.
    from functions.common.spec import Subscription

    fraud = PINNED.agent("fraud")
    follow = replace(EXPENSE_CLAIM, name="fraud-follow-up", outcomes=None, projection=None, samples=(),
                     trigger=replace(EXPENSE_CLAIM.trigger, subscription=Subscription(
                         "trigger", (fraud.source,), (fraud.results[1].detail_type,))),
                     agents=tuple(replace(a, name=f"follow-{a.name}", source=f"{a.source}-follow")
                                  for a in EXPENSE_CLAIM.agents))
    assert with_expenses(follow).workflow("fraud-follow-up") == follow


def test_a_read_only_table_that_is_not_one_of_the_agents_tables_is_refused():
    message = refusal(expenses_agent("budget", read_only=("inventory",)))
    assert "agent 'budget' reads only table 'inventory', which is not one of its tables" in message


# -- 10B F5: a trigger from a source the core keeps ------------------------------------------------------

def triggered_from(source: str, detail_type: str = "Expense Submitted"):
    from functions.common.spec import Subscription

    return replace(EXPENSE_CLAIM, trigger=replace(EXPENSE_CLAIM.trigger, subscription=Subscription(
        "trigger", (source,), (detail_type,))))


@pytest.mark.parametrize(("source", "why"), [
    # The bus refused it to every producer: the demo put 0 requests and "invariants held for 0 requests".
    ("agentbus.deadline", "the deadline and census schedules' own: the bus reserves it to the scheduler"),
    ("agentbus.operator", "the source of the operator's cancels (agentbus cancel)"),
    # The access workflow's manager answers from it (an external agent's source, not a name the core knows).
    ("agentbus.approvals", "the source of external agent 'manager-approval''s answers (workflow 'access-request')"),
])
def test_a_trigger_from_a_source_the_core_keeps_is_refused_naming_the_workflow_and_why(source, why):
    message = refusal(triggered_from(source))
    assert f"workflow 'expense-claim''s trigger comes from {source!r}, {why}" in message
    assert "give the trigger a source of its producers' own" in message or "give it a source" in message


def test_a_trigger_from_the_coordinator_must_be_some_workflows_outcome():
    message = refusal(triggered_from("agentbus.coordinator", "Expense Submitted"))
    assert ("workflow 'expense-claim''s trigger comes from 'agentbus.coordinator' with 'Expense Submitted', which "
            "no workflow publishes as an outcome: the bus reserves that source to the coordinator") in message
    # A workflow started by another's outcome: the legitimate case (README, "Add a workflow").
    follow = replace(triggered_from("agentbus.coordinator", "Order Completed"), name="order-follow-up",
                     outcomes=None, projection=None, samples=(),
                     agents=tuple(replace(a, name=f"follow-{a.name}", source=f"{a.source}-follow")
                                  for a in EXPENSE_CLAIM.agents))
    assert with_expenses(follow).workflow("order-follow-up") == follow
