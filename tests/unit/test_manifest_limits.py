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


def spaced(pattern: dict) -> int:
    return len(json.dumps(pattern))  # as pattern_chars measures: a space after each separator


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
        assert spaced(subscription.pattern()) == subscription.pattern_chars() <= EVENT_PATTERN_MAX_CHARS
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



# -- F4: table and index names ---------------------------------------------------------------------------------

def tables_with(*extra):
    return (*EXPENSE_TABLES, *extra)


def test_a_dotted_table_name_is_refused_naming_the_variable_lambda_would_refuse():
    from functions.common.spec import Table

    message = refusal(tables=tables_with(Table("audit.log", "req_id", "log")))
    assert "table 'audit.log': 2-64 lowercase letters and digits" in message
    assert "'TABLE_AUDIT.LOG'" in message


@pytest.mark.parametrize("name", ["Orders", "9lives", "a", "orders--v2", "orders-", "x" * 65])
def test_table_names_lambda_or_cdk_cannot_take_are_refused(name):
    from functions.common.spec import Table

    assert f"table {name!r}: 2-64 lowercase letters" in refusal(tables=tables_with(Table(name, "id", "t")))


def test_two_tables_making_the_same_variable_are_refused_naming_both():
    from functions.common.spec import Table

    message = refusal(tables=tables_with(Table("orders_v2", "id", "t"), Table("orders-v2", "id", "t")))
    assert "tables 'orders_v2' and 'orders-v2' both become variable 'TABLE_ORDERS_V2'" in message


@pytest.mark.parametrize("name", ["by customer", "ix", "x" * 256, "by/customer"])
def test_an_index_name_dynamodb_refuses_is_refused_naming_the_table(name):
    from functions.common.spec import Index, Table

    message = refusal(tables=tables_with(Table("audit-log", "req_id", "log", indexes=(Index(name, "customer_id"),))))
    assert f"table 'audit-log': index name {name!r} must be 3-255 letters, digits, '_', '.' or '-'" in message


def test_index_names_dynamodb_takes_pass():
    from functions.common.spec import Index, Table

    table = Table("audit_log2", "req_id", "log", indexes=(Index("by-customer.v1_x", "customer_id"),))
    assert table in with_expenses(tables=tables_with(table)).tables


# -- F5: what CDK refused deep in the synth, not naming the agent ------------------------------------------------

def test_a_description_over_lambdas_256_characters_is_refused_naming_the_agent():
    message = refusal(expenses_agent("budget", description="d" * 276))
    assert ("agent 'budget': description is 276 characters; Lambda takes a function description of at most 256"
            in message)
    assert with_expenses(expenses_agent("budget", description="d" * 256))


@pytest.mark.parametrize("env", ["AWS_REGION", "AWS_LAMBDA_FUNCTION_NAME", "LAMBDA_TASK_ROOT", "AWS_ACCESS_KEY_ID"])
def test_a_parameter_on_a_lambda_reserved_variable_is_refused(env):
    from functions.common.spec import Parameter

    message = refusal(expenses_agent("budget", parameters=(Parameter(env, "x"),)))
    assert f"agent 'budget': parameter {env!r} is reserved by Lambda" in message


@pytest.mark.parametrize("env", ["EVENT_BUS_NAME", "MODEL_ID", "TABLE_ORDERS", "AGENTBUS_MANIFEST",
                                 "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"])
def test_a_parameter_on_a_variable_agentbus_sets_is_refused(env):
    from functions.common.spec import Parameter

    message = refusal(expenses_agent("budget", parameters=(Parameter(env, "x"),)))
    assert f"agent 'budget': parameter {env!r} is a variable agentbus sets itself" in message


def test_every_variable_agentbus_writes_is_known_as_its_own():
    from functions.common.settings import OWN_VARIABLES, TABLE_PREFIX, function_environment

    manifest = with_expenses()
    for consumer in manifest.consumers:
        environment = function_environment(
            consumer, manifest, bus_name="b", bus_arn="a", tables={t.logical_name: "t" for t in manifest.all_tables},
            dead_letter_queue_url="q", schedule_group="g", scheduler_role_arn="r", schedule_dead_letter_arn="d",
            deadline_seconds=1, external_wait_seconds=1, claim_check_bucket="c", claim_check_threshold=20000)
        own = {k for k in environment if not k.startswith(TABLE_PREFIX)} - {p.env for p in consumer.parameters}
        assert own <= OWN_VARIABLES, own - OWN_VARIABLES


def test_a_parameter_declared_twice_is_refused():
    from functions.common.spec import Parameter

    message = refusal(expenses_agent("budget", parameters=(Parameter("LIMIT", "1"), Parameter("LIMIT", "2"))))
    assert "agent 'budget': parameter 'LIMIT' is declared more than once" in message


# -- F7: the tuning knobs --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("changes", "says"), [
    ({"memory_mb": 20000}, "memory_mb must be 128..10240 (Lambda's memory), got 20000"),
    ({"memory_mb": 100}, "memory_mb must be 128..10240 (Lambda's memory), got 100"),
    ({"timeout_s": 1000}, "timeout_s must be 1..900 (Lambda's timeout, 15 minutes), got 1000"),
    ({"timeout_s": 0}, "timeout_s must be 1..900"),
    ({"max_receive_count": 1001}, "max_receive_count must be 1..1000 (SQS's redrive policy), got 1001"),
    ({"max_receive_count": 0}, "max_receive_count must be 1..1000"),
    ({"max_concurrency": 1}, "max_concurrency must be 2..1000 (an SQS event source's maximum concurrency), got 1"),
    ({"max_concurrency": 1001}, "max_concurrency must be 2..1000"),
    ({"batch_size": 100}, "batch_size must be 1..10 (an SQS event source's batch size without a batching window "
                          "(max_batching_window_s)), got 100"),
    ({"batch_size": 10001, "max_batching_window_s": 5}, "batch_size must be 1..10000 (an SQS event source's batch "
                                                        "size with a batching window), got 10001"),
    ({"batch_size": 0}, "batch_size must be 1..10"),
    ({"max_batching_window_s": 400}, "max_batching_window_s must be 0..300 (an SQS event source's batching window), "
                                     "got 400"),
])
def test_a_knob_out_of_aws_bounds_is_refused_naming_the_agent_and_the_bound(changes, says):
    assert f"agent 'budget': {says}" in refusal(expenses_agent("budget", **changes))


def test_knobs_at_aws_bounds_pass():
    for changes in ({"memory_mb": 128, "timeout_s": 900, "max_receive_count": 1000, "max_concurrency": 2},
                    {"memory_mb": 10240, "timeout_s": 1, "max_receive_count": 1, "max_concurrency": 1000},
                    {"batch_size": 10000, "max_batching_window_s": 300}):
        assert with_expenses(expenses_agent("budget", **changes))


def test_the_coordinators_settings_are_bounded_too():
    with pytest.raises(ValueError, match="the coordinator: memory_mb must be 128..10240"):
        replace(PINNED, coordinator_settings={"memory_mb": 64})
