"""The benchmark's arithmetic and accounting, on fixed inputs (no timings asserted)."""

from __future__ import annotations

import json
import threading
from collections import Counter

import boto3
import pytest

from agentbus import bench
from agentbus.bench import (
    CallCounter,
    CallSnapshot,
    LevelRun,
    attribute_value_size,
    bench_manifest,
    build_results,
    cost_per_million,
    dynamodb_units,
    idle_polling,
    item_size,
    latency_summary,
    make_orders,
    per_order,
    percentile,
    ratio,
    read_units,
    role_of,
    step_functions_usage,
    system_calls,
    throughput,
    wire_key,
    workflow_update_units,
    write_units,
)
from functions.manifest import MANIFEST, PRODUCER_SOURCE
from functions.orders.models import OrderPlaced


def test_percentile_interpolates_linearly_between_ranks():
    values = [40.0, 10.0, 30.0, 20.0]  # unsorted on purpose
    assert percentile(values, 0) == 10.0
    assert percentile(values, 50) == 25.0
    assert percentile(values, 95) == pytest.approx(38.5)
    assert percentile(values, 100) == 40.0
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_latency_summary_and_ratios():
    summary = latency_summary([float(v) for v in range(1, 101)])
    assert summary == {"p50_ms": 50.5, "p95_ms": 95.0, "p99_ms": 99.0}
    assert throughput(100, first_put=10.0, last_outcome=12.5) == 40.0
    with pytest.raises(ValueError):
        throughput(5, first_put=3.0, last_outcome=3.0)
    assert ratio(900, 450) == 2.0
    assert ratio(1, 3) == 0.333
    assert ratio(1, 0) is None


def test_rest_operations_get_their_api_names():
    assert wire_key("scheduler", "POST /schedules") == "scheduler:CreateSchedule"
    assert wire_key("scheduler", "DELETE /schedules") == "scheduler:DeleteSchedule"
    assert wire_key("dynamodb", "UpdateItem") == "dynamodb:UpdateItem"


def test_calls_per_order_exclude_the_harness_and_local_only_calls():
    wire = Counter({"events:PutEvents": 45, "sqs:ReceiveMessage": 30, "sqs:ListQueueTags": 8, "dynamodb:GetItem": 10})
    harness = Counter({"events:PutEvents": 5, "sqs:ReceiveMessage": 12})
    emulation = Counter({"sqs:ListQueueTags": 8})
    system = system_calls(wire, [harness, emulation])
    assert system == Counter({"events:PutEvents": 40, "sqs:ReceiveMessage": 18, "dynamodb:GetItem": 10})
    figures = per_order(system, orders=10)
    assert figures == {"total": 6.8, "events:PutEvents": 4.0, "sqs:ReceiveMessage": 1.8, "dynamodb:GetItem": 1.0}
    assert list(figures)[:2] == ["total", "events:PutEvents"]  # largest first
    with pytest.raises(ValueError):
        per_order(system, orders=0)


@pytest.mark.parametrize(("thread", "key", "role"), [
    ("MainThread", "events:PutEvents", "harness"),
    ("observer-1a2b3c4d", "sqs:ReceiveMessage", "harness"),
    ("bench-chain_0", "sqs:SendMessage", "harness"),
    ("poller-fraud", "sqs:ReceiveMessage", "poller"),
    ("poller-fraud", "sqs:ListQueueTags", "emulation"),
    ("scheduler", "scheduler:GetSchedule/ListSchedules", "emulation"),
    ("lambda-coordinator_3", "dynamodb:UpdateItem", "function"),
    ("record_2", "events:PutEvents", "function"),  # a function handling a batch's records at once
    ("lambda-fraud_0", "sqs:DeleteMessageBatch", "poller"),  # the event source mapping's acknowledgement
])
def test_each_call_is_attributed_by_the_thread_that_made_it(thread, key, role):
    assert role_of(thread, key) == role


def test_counter_attributes_calls_entries_and_tables_by_caller():
    from moto import mock_aws

    counter = CallCounter()
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        counter.install(session)
        events = session.client("events")
        dynamodb = session.client("dynamodb")
        dynamodb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                              KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        entry = {"Source": "s", "DetailType": "d", "Detail": "{}"}
        events.put_events(Entries=[entry, entry, entry])  # harness: the main thread

        def function():
            events.put_events(Entries=[entry])
            dynamodb.get_item(TableName="t", Key={"pk": {"S": "x"}})
            dynamodb.transact_write_items(TransactItems=[
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}}}},
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "b"}}}},
            ])

        worker = threading.Thread(target=function, name="lambda-fraud_0")
        worker.start()
        worker.join()
    snapshot = counter.snapshot()
    assert snapshot.by_role["harness"]["events:PutEvents"] == 1
    assert snapshot.by_role["function"] == Counter({"events:PutEvents": 1, "dynamodb:GetItem": 1,
                                                    "dynamodb:TransactWriteItems": 1})
    assert snapshot.put_entries == Counter({"harness": 3, "function": 1})
    assert snapshot.dynamodb == Counter({"GetItem@t": 1, "TransactWriteItems@t": 2})
    counter.wire_source = lambda: Counter({"scheduler:POST /schedules": 1})  # as the endpoint counts it
    assert counter.snapshot().wire == Counter({"scheduler:CreateSchedule": 1})
    assert (counter.snapshot() - snapshot).wire == Counter({"scheduler:CreateSchedule": 1})


def test_dynamodb_sizes_and_capacity_units():
    assert item_size({"pk": {"S": "abc"}}) == 2 + 3
    assert attribute_value_size({"N": "123.45"}) == 4
    assert attribute_value_size({"BOOL": True}) == 1
    assert attribute_value_size({"M": {"ab": {"S": "xyz"}}}) == 3 + 1 + 2 + 3
    assert attribute_value_size({"L": [{"S": "a"}, {"S": "bc"}]}) == 3 + (1 + 1) + (1 + 2)
    assert write_units(1) == 1 and write_units(1024) == 1 and write_units(1025) == 2
    assert read_units(5000) == 2 and read_units(100, consistent=False) == 0.5


def test_workflow_updates_are_charged_as_the_record_grows():
    pad = {"S": "x" * 900}  # 900 bytes each
    item = {"workflow_id": {"S": "w"}, "order": pad,
            "result_fraud": pad, "result_inventory": pad, "result_shipping": pad,
            "outcome": {"S": "x" * 2000}, "published": {"BOOL": True}, "published_at": {"S": "t"}}
    # states (bytes): open ~0.9 KB; +results 1.8, 2.7, 3.6 KB; +outcome 5.6 KB; +published_at 5.6 KB
    # units: open 1, results 2, 3, 4, finish 6, mark published 6 -> 22 over 6 updates
    assert workflow_update_units(item) == pytest.approx(22 / 6)


def test_dynamodb_units_per_table_and_kind_of_write():
    tables = {"workflows": "p-workflows", "orders": "p-orders", "inventory": "p-inventory"}
    sizes = {"workflows": 4000, "workflow-update-units": 3.0, "orders": 900, "inventory-reservation": 700,
             "inventory-stock": 60}
    calls = Counter({"UpdateItem@p-workflows": 6, "PutItem@p-orders": 1, "TransactWriteItems@p-inventory": 2,
                     "GetItem@p-inventory": 1, "GetItem@p-workflows": 1})
    writes, reads = dynamodb_units(calls, tables, sizes)
    assert writes == 6 * 3.0 + 1 + 2 * 2 * 1
    assert reads == 1 + 1


def test_cost_per_million_from_usage_and_prices():
    usage = {"eventbridge_events": 4, "sqs_requests": 10, "lambda_gb_s": 0.5}
    prices = {"eventbridge_events": 1e-6, "sqs_requests": 4e-7, "lambda_gb_s": 1.66667e-5, "unused": 1.0}
    cost = cost_per_million(usage, prices)
    assert cost == {"eventbridge_events": 4.0, "lambda_gb_s": 8.3334, "sqs_requests": 4.0, "total": 16.3334}
    with pytest.raises(KeyError):
        cost_per_million({"mystery": 1}, prices)


def test_step_functions_usage_for_the_same_agents():
    model = {"state_transitions_per_order": 8, "outcome_events_per_order": 1, "express_memory_mb": 64,
             "express_billing_increment_ms": 100}
    agents = {"fraud": {"ms_per_record": 300, "memory_mb": 256}, "shipping": {"ms_per_record": 200, "memory_mb": 512}}
    usage = step_functions_usage(model, agents, end_to_end_ms=420, order_write_units=1, inventory_write_units=4)
    assert usage["standard"] == {"lambda_requests": 2.0, "lambda_gb_s": 0.3 * 0.25 + 0.2 * 0.5,
                                 "dynamodb_write_units": 5, "eventbridge_events": 1.0,
                                 "stepfunctions_standard_transitions": 8.0}
    assert usage["express"]["stepfunctions_express_requests"] == 1.0
    assert usage["express"]["stepfunctions_express_gb_s"] == pytest.approx(0.5 * 64 / 1024)  # 420 ms -> 500 ms


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


def test_chained_manifest_leaves_the_trigger_to_the_coordinator_only():
    chained = bench_manifest(MANIFEST, chained=True)
    assert bench_manifest(MANIFEST, chained=False) is MANIFEST
    for agent in chained.agents:
        subscribed = {d for s in chained.subscriptions(agent) for d in s.detail_types}
        assert "Order Placed" not in subscribed
    inventory = chained.consumer("inventory")
    assert {s.name for s in chained.subscriptions(inventory)} == {"compensation"}  # compensation is kept
    coordinator_types = {d for s in chained.subscriptions(chained.coordinator) for d in s.detail_types}
    assert "Order Placed" in coordinator_types
    assert [a.name for a in chained.agents] == [a.name for a in MANIFEST.agents]


def test_benchmark_orders_are_valid_and_unique():
    entries = make_orders("bench-x-parallel-3", 3, ["SKU-A", "SKU-B"])
    details = [json.loads(e["Detail"]) for e in entries]
    assert [d["order_id"] for d in details] == ["bench-x-parallel-3-00000", "bench-x-parallel-3-00001",
                                                "bench-x-parallel-3-00002"]
    assert [d["items"][0]["sku"] for d in details] == ["SKU-A", "SKU-B", "SKU-A"]
    assert all(e["Source"] == PRODUCER_SOURCE and e["DetailType"] == "Order Placed" for e in entries)
    for detail in details:
        OrderPlaced.model_validate(detail)


def _run(mode: str, concurrency: int, latencies: list[float], calls: CallSnapshot | None = None) -> LevelRun:
    usage = {name: {"invocations": 1.0, "records": float(concurrency), "busy_ms": 100.0 * concurrency}
             for name in ("fraud", "inventory", "shipping", "coordinator")}
    return LevelRun(mode, concurrency, latencies, [v - 50 for v in latencies], first_put=100.0,
                    last_outcome=100.0 + len(latencies) / 4, statuses=Counter({"COMPLETED": len(latencies)}),
                    missing=[], calls=calls, lambda_usage=usage)


def test_results_carry_the_contracted_fields_and_ratios():
    roles = {role: Counter() for role in bench.THREAD_ROLES}
    roles["harness"].update({"events:PutEvents": 1, "sqs:ReceiveMessage": 3})
    roles["function"].update({"events:PutEvents": 8, "dynamodb:UpdateItem": 12})
    roles["poller"].update({"sqs:ReceiveMessage": 4})
    calls = CallSnapshot(
        wire=Counter({"events:PutEvents": 9, "sqs:ReceiveMessage": 7, "dynamodb:UpdateItem": 12}),
        by_role=roles, empty_receives=Counter({"poller": 1}), put_entries=Counter({"function": 8, "harness": 2}),
        dynamodb=Counter({"UpdateItem@p-workflows": 12}))
    runs = {
        "parallel": {1: _run("parallel", 1, [400.0]), 2: _run("parallel", 2, [400.0, 600.0], calls)},
        "chained": {1: _run("chained", 1, [900.0]), 2: _run("chained", 2, [1000.0, 1200.0])},
    }
    pricing = bench.load_pricing()
    sizes = {"workflows": 3000, "workflow-update-units": 2.5, "orders": 800, "inventory-reservation": 700,
             "inventory-stock": 60}
    results = build_results(runs, [1, 2], {"fraud": 300}, 300, pricing, sizes,
                            {"workflows": "p-workflows", "orders": "p-orders", "inventory": "p-inventory"})
    first, second = results["levels"]
    assert set(first) >= {"concurrency", "p50_ms", "p95_ms", "p99_ms", "throughput_orders_per_s",
                          "overhead_ratio", "chained_over_parallel"}
    assert first["p50_ms"] == 400.0 and first["overhead_ratio"] == round(400 / 300, 3)
    assert first["chained_over_parallel"] == 2.25 and first["parallel_over_chained"] == 0.444
    assert second["p50_ms"] == 500.0 and second["chained_over_parallel"] == 2.2
    assert second["throughput_orders_per_s"] == 4.0  # 2 orders in 0.5 s
    assert second["coordinator_duration_ms"]["p50_ms"] == 450.0
    # Calls per order from the largest level: the wire minus the harness's calls, per order.
    assert results["api_calls_per_order"] == {"total": 12.0, "dynamodb:UpdateItem": 6.0, "events:PutEvents": 4.0,
                                              "sqs:ReceiveMessage": 2.0}
    assert results["usage_per_order"]["eventbridge_events"] == 4.0
    assert results["usage_per_order"]["dynamodb_write_units"] == 6 * 2.5
    for key in ("cost_per_million_usd", "step_functions_standard_cost_per_million_usd",
                "step_functions_express_cost_per_million_usd"):
        assert results[key] > 0
    assert results["cost_ratio_agentbus_over_standard"] == ratio(results["cost_per_million_usd"],
                                                                 results["step_functions_standard_cost_per_million_usd"])
    json.dumps(results)  # written as JSON as is


def test_lambda_duration_is_billed_from_the_uncontended_level_per_record():
    """Under load the emulator queues calls; that wait is not Lambda time on AWS. Per-record times come from the
    smallest level and are billed for every record of the largest; Step Functions' agents get the same times."""
    quiet = _run("parallel", 1, [400.0])  # 100 ms per record
    busy = _run("parallel", 2, [400.0, 600.0])
    busy.lambda_usage = {name: {"invocations": 1.0, "records": 2.0, "busy_ms": 5000.0}
                         for name in ("fraud", "inventory", "shipping", "coordinator")}
    assert bench.ms_per_record(quiet) == {n: 100.0 for n in ("fraud", "inventory", "shipping", "coordinator")}
    calls = CallSnapshot(wire=Counter(), by_role={role: Counter() for role in bench.THREAD_ROLES},
                         empty_receives=Counter(), put_entries=Counter(), dynamodb=Counter())
    busy.calls = calls
    usage = bench.agentbus_usage(busy, {}, {}, durations_ms=bench.ms_per_record(quiet))
    memory = {c.name: c.memory_mb for c in MANIFEST.consumers}
    # 2 records x 100 ms per function, for 2 orders
    assert usage["lambda_gb_s"] == pytest.approx(sum(0.1 * m / 1024 for m in memory.values()))
    assert bench.agentbus_usage(busy, {}, {})["lambda_gb_s"] == pytest.approx(
        sum(5.0 * m / 1024 for m in memory.values()) / 2)  # without: the run's own busy time
    results = build_results({"parallel": {1: quiet, 2: busy}, "chained": {1: quiet, 2: busy}}, [1, 2],
                            {"fraud": 300}, 300, bench.load_pricing(), {"workflows": 1000},
                            {"workflows": "w", "orders": "o", "inventory": "i"})
    assert results["usage_per_order"]["lambda_gb_s"] == pytest.approx(usage["lambda_gb_s"], abs=1e-5)
    assert results["lambda_ms_per_record"] == {n: 100.0 for n in ("coordinator", "fraud", "inventory", "shipping")}
    assert results["lambda_ms_per_record_measured_at_concurrency"] == 1
