"""The cost model: DynamoDB units, cost per million, Step Functions, Lambda durable functions, model calls."""

from __future__ import annotations

from collections import Counter

import pytest

from agentbus import bench
from agentbus.bench import (
    THREAD_ROLES,
    CallSnapshot,
    LevelRun,
    agentbus_usage,
    attribute_value_size,
    coordinated_workflows,
    cost_per_million,
    durable_functions_usage,
    durable_operations,
    dynamodb_units,
    idle_polling,
    item_size,
    model_costs,
    read_units,
    step_functions_usage,
    write_units,
)
from agentbus.bench.costs import model_cost_per_million, pick_model, reasoning_agents
from functions.manifest import MANIFEST
from tests.unit.bench.reasoning import Reasoner, with_reasoners


def test_dynamodb_sizes_and_capacity_units():
    assert item_size({"pk": {"S": "abc"}}) == 2 + 3
    assert attribute_value_size({"N": "123.45"}) == 4
    assert attribute_value_size({"BOOL": True}) == 1
    assert attribute_value_size({"M": {"ab": {"S": "xyz"}}}) == 3 + 1 + 2 + 3
    assert attribute_value_size({"L": [{"S": "a"}, {"S": "bc"}]}) == 3 + (1 + 1) + (1 + 2)
    assert write_units(1) == 1 and write_units(1024) == 1 and write_units(1025) == 2
    assert read_units(5000) == 2 and read_units(100, consistent=False) == 0.5


def test_dynamodb_units_per_table_and_kind_of_write():
    tables = {"workflows": "p-workflows", "orders": "p-orders", "inventory": "p-inventory"}
    sizes = {"workflows": 4000, "orders": 900, "inventory": 1500}
    calls = Counter({"UpdateItem@p-workflows": 6, "PutItem@p-orders": 1, "TransactWriteItems@p-inventory": 2,
                     "GetItem@p-inventory": 1, "GetItem@p-workflows": 1, "BatchGetItem@p-workflows": 3})
    writes, reads = dynamodb_units(calls, tables, sizes)
    assert writes == 6 * 4 + 1 + 2 * 2 * 2  # a transactional write of a 1.5 KB item: 2 units, twice
    assert reads == 1 + 1 + 3  # a BatchGetItem's keys: a consistent read each
    # One workflow's agents' own writes (what Step Functions' agents would make too): their tables only.
    assert dynamodb_units(calls, tables, sizes, only=["inventory"]) == (2 * 2 * 2, 1)


def test_cost_per_million_from_usage_and_prices():
    usage = {"eventbridge_events": 4, "sqs_requests": 10, "lambda_gb_s": 0.5}
    prices = {"eventbridge_events": 1e-6, "sqs_requests": 4e-7, "lambda_gb_s": 1.66667e-5, "unused": 1.0}
    cost = cost_per_million(usage, prices)
    assert cost == {"eventbridge_events": 4.0, "lambda_gb_s": 8.3334, "sqs_requests": 4.0, "total": 16.3334}
    with pytest.raises(KeyError):
        cost_per_million({"mystery": 1}, prices)


def test_step_functions_usage_for_the_same_agents():
    model = {"state_transitions": {"fixed": 4, "per_agent": 1, "main_table_write": 1},
             "outcome_events_per_order": 1, "express_memory_mb": 64, "express_billing_increment_ms": 100}
    agents = {"fraud": {"ms_per_record": 300, "memory_mb": 256}, "shipping": {"ms_per_record": 200, "memory_mb": 512}}
    usage = step_functions_usage(model, agents, end_to_end_ms=420, main_table_write_units=1, agent_write_units=4)
    assert usage["standard"] == {"lambda_requests": 2.0, "lambda_gb_s": 0.3 * 0.25 + 0.2 * 0.5,
                                 "dynamodb_write_units": 5, "eventbridge_events": 1.0,
                                 "stepfunctions_standard_transitions": 7.0}  # 4 + 2 agents + the main table's
    assert usage["express"]["stepfunctions_express_requests"] == 1.0
    assert usage["express"]["stepfunctions_express_gb_s"] == pytest.approx(0.5 * 64 / 1024)  # 420 ms -> 500 ms
    # A workflow without a main table: no PutItem state, no write of its own.
    bare = step_functions_usage(model, agents, end_to_end_ms=420, main_table_write_units=None, agent_write_units=0)
    assert bare["standard"]["stepfunctions_standard_transitions"] == 6.0
    assert bare["standard"]["dynamodb_write_units"] == 0


def test_pricing_model_counts_eight_transitions_for_three_agents_and_a_main_table():
    """The calibration the cost comparison was published with: Parallel, 3 tasks, Choice, PutItem, PutEvents, end."""
    model = bench.load_pricing()["step_functions"]
    agents = {name: {"ms_per_record": 1, "memory_mb": 128} for name in ("a", "b", "c")}
    usage = step_functions_usage(model, agents, end_to_end_ms=1, main_table_write_units=1, agent_write_units=0)
    assert usage["standard"]["stepfunctions_standard_transitions"] == 8.0


def test_idle_polling_is_a_fixed_monthly_cost():
    pricing = {"idle_polling": {"pollers_per_queue": 5, "long_poll_wait_s": 20}, "prices": {"sqs_requests": 4e-7}}
    idle = idle_polling(pricing, queues=4)
    assert idle["receives_per_minute_per_queue"] == 15
    assert idle["receives_per_month"] == 15 * 60 * 24 * 30 * 4
    assert idle["usd_per_month"] == round(15 * 60 * 24 * 30 * 4 * 4e-7, 2)


def test_pricing_file_prices_every_usage_the_model_produces():
    pricing = bench.load_pricing()
    keys = {"eventbridge_events", "sqs_requests", "lambda_requests", "lambda_gb_s", "dynamodb_write_units",
            "dynamodb_read_units", "scheduler_invocations", "stepfunctions_standard_transitions",
            "stepfunctions_express_requests", "stepfunctions_express_gb_s"}
    assert keys <= set(pricing["prices"])
    assert pricing["assumptions"]


def test_durable_operations_are_counted_from_the_workflows_agents():
    """The parallel block and the outcome step, one invoke per agent, one step for the main table's write."""
    model = bench.load_pricing()["durable_functions"]["operations"]
    assert durable_operations(model, 3, main_table=True) == 6
    assert durable_operations(model, 3, main_table=False) == 5
    assert durable_operations(model, 30, main_table=False) == 32
    with pytest.raises(ValueError, match="at least one agent"):
        durable_operations(model, 0, main_table=False)


def test_durable_functions_usage_for_the_same_agents():
    model = {"operations": {"fixed": 2, "per_agent": 1, "main_table_write": 1}, "orchestrator_invocations": 2,
             "orchestrator_memory_mb": 256, "outcome_events_per_order": 1}
    agents = {"a": {"ms_per_record": 300, "memory_mb": 256}, "b": {"ms_per_record": 200, "memory_mb": 512}}
    usage = durable_functions_usage(model, agents, orchestrator_ms=50, main_table_write_units=1, agent_write_units=4)
    assert usage == {
        "durable_operations": 5.0,  # parallel + outcome + 2 invokes + the main table's step
        "lambda_requests": 4.0,  # each agent once, the orchestrator started and resumed
        "lambda_gb_s": pytest.approx(0.3 * 0.25 + 0.2 * 0.5 + 2 * 0.05 * 0.25),
        "dynamodb_write_units": 5,
        "eventbridge_events": 1.0,
    }
    prices = bench.load_pricing()["prices"]
    assert cost_per_million(usage, prices)["durable_operations"] == 5 * 8.0  # $8 per million operations


def test_pricing_file_dates_and_cites_the_durable_and_bedrock_prices():
    pricing = bench.load_pricing()
    assert pricing["prices"]["durable_operations"] == 8.0e-6
    assert "https://aws.amazon.com/lambda/pricing/" in pricing["price_notes"]["durable_operations"]
    assert pricing["durable_functions"]["as_of"]
    bedrock = pricing["bedrock"]
    assert bedrock["as_of"] and any(s.startswith("https://") for s in bedrock["sources"])
    assert len(bedrock["models"]) >= 2
    for model in bedrock["models"]:
        assert model["input_per_1k_tokens_usd"] > 0 and model["output_per_1k_tokens_usd"] > 0
    assert bedrock["assumed_input_tokens_per_call"] > 0 and bedrock["assumed_output_tokens_per_call"] > 0


PRICING = {"bedrock": {
    "as_of": "2026-03", "assumed_calls_per_reasoning_agent": 1, "assumed_input_tokens_per_call": 2000,
    "assumed_output_tokens_per_call": 500,
    "models": [{"model_id": "m-small", "input_per_1k_tokens_usd": 0.001, "output_per_1k_tokens_usd": 0.004},
               {"model_id": "m-large", "input_per_1k_tokens_usd": 0.003, "output_per_1k_tokens_usd": 0.015}]}}


def test_model_calls_are_priced_only_for_workflows_whose_agents_declare_a_reasoner():
    workflow = coordinated_workflows(MANIFEST)[0]
    assert reasoning_agents(workflow) == [] and model_costs(workflow, PRICING, 20.0) is None
    first, second = workflow.agents[0].name, workflow.agents[1].name
    reasoning = with_reasoners(workflow, Reasoner("m-large"), Reasoner(None))
    assert reasoning_agents(reasoning) == [(first, "m-large"), (second, None)]
    costs = model_costs(reasoning, PRICING, 20.0)
    # 2 calls per request x (2 x $0.001 + 0.5 x $0.004) = $0.008 per request: $8,000 per million
    assert costs["model_id"] == "m-small"  # the first priced model unless one is picked
    assert costs["model_calls_per_request"] == 2
    assert costs["model_per_million_usd"] == 8000.0
    assert costs["without_model_per_million_usd"] == 20.0 and costs["with_model_per_million_usd"] == 8020.0
    assert costs["reasoning_agents"] == {first: "m-large", second: None}
    assert model_costs(reasoning, PRICING, 20.0, "m-large")["model_per_million_usd"] == 2 * (0.006 + 0.0075) * 1e6
    with pytest.raises(ValueError, match="no price for model 'm-none'.*m-small, m-large"):
        model_costs(reasoning, PRICING, 20.0, "m-none")


def test_the_default_model_is_the_first_priced_and_every_model_has_a_price():
    bedrock = bench.load_pricing()["bedrock"]
    assert pick_model(bedrock) == bedrock["models"][0]
    last = bedrock["models"][-1]["model_id"]
    assert pick_model(bedrock, last)["model_id"] == last
    # The inference profile id the deploy takes (black-box pass 8A, 5) is priced as its model.
    assert pick_model(bedrock, f"us.{last}")["model_id"] == last
    with pytest.raises(ValueError, match="no price for model 'us.nobody.model-v1:0'"):
        pick_model(bedrock, "us.nobody.model-v1:0")
    assert model_cost_per_million(bedrock["models"][0], 1, input_tokens=1000, output_tokens=0) == round(
        bedrock["models"][0]["input_per_1k_tokens_usd"] * 1e6, 2)


def test_agentbus_usage_bills_big_events_and_messages_per_chunk():
    roles = {role: Counter() for role in THREAD_ROLES}
    roles["poller"].update({"sqs:ReceiveMessage": 4, "sqs:DeleteMessageBatch": 2})
    usage = {MANIFEST.coordinator.name: {"invocations": 2.0, "records": 6.0, "busy_ms": 60.0}}

    def run(**chunked):
        calls = CallSnapshot(wire=Counter(), by_role=roles, empty_receives=Counter(),
                             put_entries=Counter({"function": 4}), dynamodb=Counter(), **chunked)
        return LevelRun("parallel", 2, [1.0, 1.0], [], 0.0, 1.0, Counter(), [], calls, usage)

    small = agentbus_usage(run(), {}, {}, MANIFEST)  # no chunks counted: one per entry and per record
    assert small["eventbridge_events"] == 2.0 and small["sqs_requests"] == (4 + 2 + 6) / 2
    big = agentbus_usage(run(put_chunks=Counter({"function": 10}), receive_extra_chunks=Counter({"poller": 8}),
                             delivered_chunks=Counter({"poller": 12})), {}, {}, MANIFEST)
    assert big["eventbridge_events"] == 5.0 and big["sqs_requests"] == (4 + 2 + 12 + 8) / 2


def test_a_round_of_records_is_billed_one_records_waiting_and_every_records_cpu():
    from agentbus.bench.costs import LAMBDA_ONE_VCPU_MB, billed_gb_s

    # 1,769 MB: one vCPU, the CPU part as measured; 10 records in one round wait 290 ms once, compute 10 x 10 ms.
    assert billed_gb_s(300, 10, LAMBDA_ONE_VCPU_MB, records=10, rounds=1) == pytest.approx(
        (290 + 100) / 1000 * LAMBDA_ONE_VCPU_MB / 1024)
    # One record per round (the default): every record waits.
    assert billed_gb_s(300, 10, LAMBDA_ONE_VCPU_MB, records=10) == pytest.approx(
        10 * 300 / 1000 * LAMBDA_ONE_VCPU_MB / 1024)
    # Below one vCPU the CPU takes longer in proportion: its GB-seconds do not depend on the memory, the
    # waiting's do.
    cpu_only = [billed_gb_s(10, 10, memory) for memory in (128, 256, 1024, LAMBDA_ONE_VCPU_MB)]
    assert cpu_only == pytest.approx([0.01 * LAMBDA_ONE_VCPU_MB / 1024] * 4)
    assert billed_gb_s(300, 0, 128) == pytest.approx(billed_gb_s(300, 0, 256) / 2)
    # Above it one thread gets no faster.
    assert billed_gb_s(10, 10, 2 * LAMBDA_ONE_VCPU_MB) == pytest.approx(0.01 * 2 * LAMBDA_ONE_VCPU_MB / 1024)


def test_agentbus_bills_the_rounds_each_function_handled_at_the_times_measured_alone():
    from agentbus.bench.costs import billed_gb_s
    from agentbus.bench.harness import LevelRun

    calls = CallSnapshot(wire=Counter(), by_role={role: Counter() for role in bench.THREAD_ROLES},
                         empty_receives=Counter(), put_entries=Counter(), dynamodb=Counter())
    usage_by_function = {"fraud": {"invocations": 1.0, "records": 10.0, "rounds": 1.0, "busy_ms": 9e9,
                                   "cpu_ms": 9e9},
                         "coordinator": {"invocations": 2.0, "records": 20.0, "rounds": 2.0, "busy_ms": 9e9}}
    run = LevelRun("parallel", 10, [], [], 0.0, 0.0, Counter(), 0, calls, usage_by_function)
    usage = bench.agentbus_usage(run, {}, {}, durations_ms={"fraud": 350.0, "coordinator": 60.0},
                                 cpu_ms={"fraud": 5.0, "coordinator": 20.0})
    memory = {name: MANIFEST.consumer(name).memory_mb for name in ("fraud", "coordinator")}
    assert usage["lambda_gb_s"] == pytest.approx(
        (billed_gb_s(350, 5, memory["fraud"], records=10, rounds=1)
         + billed_gb_s(60, 20, memory["coordinator"], records=20, rounds=2)) / 10)
    assert usage["lambda_requests"] == 3 / 10
