"""AWS limits a manifest could pass at synth and fail at ``cdk deploy`` on CloudFormation (black-box pass 9B): each is
either made to fit or refused by ``Manifest.check``, naming the workflow, agent or table, the value and the limit."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from functions.common.spec import AGENT_SOURCE_PREFIX, EVENT_PATTERN_MAX_CHARS, Subscription, Workflow
from tests.limits import expenses_agent, many_agents, with_expenses
from tests.pinned import MANIFEST as PINNED
from tests.workflows.expenses.workflow import EXPENSE_CLAIM
from tests.workflows.expenses.workflow import TABLES as EXPENSE_TABLES


def refusal(expenses: Workflow = EXPENSE_CLAIM, tables=EXPENSE_TABLES) -> str:
    with pytest.raises(ValueError, match=r"^invalid manifest: ") as refused:
        with_expenses(expenses, tables)
    message = str(refused.value)
    assert "\n" not in message
    return message


def compact(pattern: dict) -> int:
    return len(json.dumps(pattern, separators=(",", ":")))


# -- F1: the coordinator's results rule past EventBridge's 2,048-character event pattern ------------------------

def test_a_results_pattern_over_the_limit_is_split_into_rules_that_each_fit_and_cover_every_result():
    workflow = many_agents(15)
    assert workflow.result_subscription.pattern_chars() > EVENT_PATTERN_MAX_CHARS  # 2,083 in the review
    manifest = with_expenses(workflow)
    coordinator = manifest.coordinator
    assert coordinator is not None
    results = [s for s in manifest.subscriptions(coordinator) if s.name.startswith("expense-claim-results")]
    assert [s.name for s in results] == ["expense-claim-results", "expense-claim-results-2"]
    for subscription in results:
        assert compact(subscription.pattern()) == subscription.pattern_chars() <= EVENT_PATTERN_MAX_CHARS
    for agent in workflow.agents:  # every result still reaches the coordinator, and only results
        for result in agent.results:
            assert any(s.matches(agent.source, result.detail_type) for s in results), (agent.name, result)
    for agent in workflow.agents:  # an agent that fits in a rule keeps its results in one
        assert sum(agent.source in s.sources for s in results) == 1, agent.name
    assert not any(s.matches(AGENT_SOURCE_PREFIX + "other", workflow.agents[0].results[0].detail_type)
                   for s in results)
    assert manifest.workflow_for_result(workflow.agents[-1].source, workflow.agents[-1].results[-1].detail_type)


def test_one_agent_with_results_over_the_limit_is_split_too():
    [agent] = many_agents(1, name_length=40, results=60, detail_type_length=60).agents
    workflow = replace(EXPENSE_CLAIM, agents=(agent,))
    split = workflow.result_subscriptions
    assert len(split) > 1
    assert all(s.pattern_chars() <= EVENT_PATTERN_MAX_CHARS and s.sources == (agent.source,) for s in split)
    assert [d for s in split for d in s.detail_types] == [r.detail_type for r in agent.results]


def test_a_results_pattern_that_fits_stays_one_rule_named_as_before():
    for workflow in PINNED.coordinated:
        assert workflow.result_subscriptions == (workflow.result_subscription,)
    coordinator = PINNED.coordinator
    assert coordinator is not None
    names = [s.name for s in PINNED.subscriptions(coordinator)]
    assert "order-fulfillment-results" in names and "order-fulfillment-results-2" not in names


def test_an_agents_own_subscription_over_the_limit_is_refused_naming_the_agent_the_size_and_the_limit():
    long_types = tuple(f"Expense Submitted {n:03d} ".ljust(60, "z") for n in range(40))
    subscription = Subscription("trigger", ("agentbus.expenses",), long_types)
    size = subscription.pattern_chars()
    message = refusal(expenses_agent("budget", subscriptions=(subscription,)))
    assert (f"agent 'budget' (workflow 'expense-claim'): rule budget-trigger's event pattern would be {size} "
            f"characters, over EventBridge's limit of {EVENT_PATTERN_MAX_CHARS}") in message


def test_a_trigger_over_the_limit_is_refused_for_the_coordinators_rule_too():
    long_types = tuple(f"Expense Submitted {n:03d} ".ljust(60, "z") for n in range(40))
    trigger = replace(EXPENSE_CLAIM.trigger, subscription=Subscription("trigger", ("agentbus.expenses",), long_types))
    message = refusal(replace(EXPENSE_CLAIM, trigger=trigger))
    assert "the coordinator: rule coordinator-expense-claim-trigger's event pattern would be " in message
    assert "agent 'receipts' (workflow 'expense-claim'): rule receipts-trigger's event pattern" in message

