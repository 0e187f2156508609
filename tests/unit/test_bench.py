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
    combine_results,
    coordinated_workflows,
    cost_per_million,
    dynamodb_units,
    idle_polling,
    item_size,
    latency_summary,
    make_requests,
    per_order,
    percentile,
    ratio,
    read_units,
    role_of,
    soak_traffic,
    step_functions_usage,
    system_calls,
    throughput,
    wire_key,
    workflow_update_units,
    write_units,
)
from functions.access.models import AccessRequested
from functions.manifest import MANIFEST, PRODUCER_SOURCE
from functions.orders.models import OrderPlaced
from functions.orders.workload import seeded_skus


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
    sizes = {"workflows": 4000, "workflow-update-units": 3.0, "orders": 900, "inventory": 1500}
    calls = Counter({"UpdateItem@p-workflows": 6, "PutItem@p-orders": 1, "TransactWriteItems@p-inventory": 2,
                     "GetItem@p-inventory": 1, "GetItem@p-workflows": 1})
    writes, reads = dynamodb_units(calls, tables, sizes)
    assert writes == 6 * 3.0 + 1 + 2 * 2 * 2  # a transactional write of a 1.5 KB item: 2 units, twice
    assert reads == 1 + 1
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


def test_chained_manifest_leaves_every_coordinated_trigger_to_the_coordinator_only():
    chained = bench_manifest(MANIFEST, chained=True)
    assert bench_manifest(MANIFEST, chained=False) is MANIFEST
    triggers = {d for w in MANIFEST.coordinated for d in w.trigger.subscription.detail_types}
    assert triggers == {"Order Placed", "Access Requested"}
    for workflow in chained.coordinated:
        for agent in workflow.agents:
            assert agent.subscriptions == ()  # () is "none"; None would mean "derived: the trigger"
            subscribed = {d for s in chained.subscriptions(agent) for d in s.detail_types}
            assert not subscribed & triggers, agent.name
    inventory = chained.consumer("inventory")
    assert {s.name for s in chained.subscriptions(inventory)} == {"compensation"}  # compensation is kept
    coordinator_types = {d for s in chained.subscriptions(chained.coordinator) for d in s.detail_types}
    assert triggers <= coordinator_types
    # A standalone subscriber has no one to chain it: it keeps its subscription.
    audit = chained.consumer("security-audit")
    assert {d for s in chained.subscriptions(audit) for d in s.detail_types} == {"User Created"}
    assert [a.name for a in chained.agents] == [a.name for a in MANIFEST.agents]


def test_benchmark_orders_come_from_the_workload_the_workflow_declares():
    orders = MANIFEST.workflow("order-fulfillment")
    assert orders.workload == "functions.orders.workload:bench_orders"
    entries = make_requests(orders, "bench-x-parallel-3", 3)
    details = [json.loads(e["Detail"]) for e in entries]
    assert [d["order_id"] for d in details] == ["bench-x-parallel-3-00000", "bench-x-parallel-3-00001",
                                                "bench-x-parallel-3-00002"]
    skus = seeded_skus()
    assert [d["items"] for d in details] == [[{"sku": skus[i], "quantity": 1, "unit_price": 20.0}] for i in range(3)]
    assert all(e["Source"] == PRODUCER_SOURCE and e["DetailType"] == "Order Placed" for e in entries)
    for detail in details:
        OrderPlaced.model_validate(detail)


def test_a_workflow_without_a_workload_is_benchmarked_on_copies_of_its_first_sample():
    access = MANIFEST.workflow("access-request")
    assert access.workload is None
    sample = json.loads(json.loads((bench.REPO_ROOT / access.samples[0]).read_text())[0]["Detail"])
    entries = make_requests(access, "bench-y", 2)
    details = [json.loads(e["Detail"]) for e in entries]
    assert [d["request_id"] for d in details] == ["bench-y-00000", "bench-y-00001"]
    assert all({**d, "request_id": sample["request_id"]} == sample for d in details)
    assert all(e["Source"] == "agentbus.access" and e["DetailType"] == "Access Requested" for e in entries)
    for detail in details:
        AccessRequested.model_validate(detail)


def test_bench_takes_coordinated_workflows_only_with_a_clear_error():
    assert [w.name for w in coordinated_workflows(MANIFEST)] == ["order-fulfillment", "access-request"]
    assert [w.name for w in coordinated_workflows(MANIFEST, ["access-request"])] == ["access-request"]
    with pytest.raises(ValueError, match="'new-user-audit' is standalone.*order-fulfillment, access-request"):
        coordinated_workflows(MANIFEST, ["new-user-audit"])
    with pytest.raises(ValueError, match="unknown workflow 'nope'"):
        coordinated_workflows(MANIFEST, ["nope"])
    with pytest.raises(SystemExit, match="agentbus bench: unknown workflow 'nope'"):
        bench.run_bench(workflows=["nope"])


def test_a_workload_must_make_the_requests_asked():
    import dataclasses

    orders = MANIFEST.workflow("order-fulfillment")
    short = dataclasses.replace(orders, workload="tests.unit.test_bench:_one_request")
    with pytest.raises(ValueError, match="made 1 distinct requests, 3 asked"):
        make_requests(short, "p", 3)
    wrong = dataclasses.replace(MANIFEST.workflow("access-request"), workload="tests.unit.test_bench:_one_request")
    with pytest.raises(ValueError, match="not its trigger"):
        make_requests(wrong, "p", 1)


def _one_request(workflow, prefix, count):
    return make_requests(MANIFEST.workflow("order-fulfillment"), prefix, 1)


def test_soak_traffic_mixes_every_workflow_with_conflicts_and_unstorable_values():
    requests = soak_traffic(120, "r1")
    kinds = Counter((r.workflow, r.kind) for r in requests)
    assert kinds[("order-fulfillment", "conflict")] == 2 and kinds[("order-fulfillment", "unstorable")] == 2
    assert kinds[("access-request", "conflict")] == 2 and kinds[("access-request", "unstorable")] == 2
    assert kinds[("new-user-audit", "sample")] == 40 and not {k for w, k in kinds if w == "new-user-audit"} - {"sample"}
    # The same ids in every workflow: one workflow's request must not disturb another's.
    ids = {w: {r.workflow_id for r in requests if r.workflow == w} for w in ("order-fulfillment", "access-request",
                                                                             "new-user-audit")}
    assert ids["order-fulfillment"] == ids["access-request"] == ids["new-user-audit"]
    for request in requests:
        workflow = MANIFEST.workflow(request.workflow)
        details = [json.loads(e["Detail"]) for e in request.entries]
        assert {d[workflow.id_field] for d in details} == {request.workflow_id}
        if request.kind == "conflict":  # two versions: one id, different contents
            assert len(details) == 2 and details[0] != details[1]
        else:
            assert len(details) == 1
    # The first order conflict is issue 10's: a cheap order and one over the fraud limit, under one id.
    first = next(r for r in requests if r.workflow == "order-fulfillment" and r.kind == "conflict")
    totals = sorted(sum(line["quantity"] * line["unit_price"] for line in json.loads(e["Detail"])["items"])
                    for e in first.entries)
    assert totals[0] < 10_000 < totals[1]
    # Every put batch keeps a conflicting pair together, in one PutEvents call of at most 10 entries.
    batches = bench.put_batches(requests)
    assert all(len(b) <= 10 for b in batches) and sum(map(len, batches)) == sum(len(r.entries) for r in requests)
    for request in requests:
        if request.kind == "conflict":
            assert any(all(e in b for e in request.entries) for b in batches)


def test_soak_unstorable_values_are_the_ones_issue_10_names():
    requests = [r for r in soak_traffic(400, "r2") if r.kind == "unstorable"]
    seen = set()
    for request in requests:
        detail = json.loads(request.entries[0]["Detail"])
        if request.field == "loyalty_points":
            value = detail["loyalty_points"]
            seen.add("1e308" if value == 1e308 else f"{len(str(value))} digits")
        else:
            assert request.workflow == "order-fulfillment" and request.field == "unit_price"
            assert detail["items"][0]["unit_price"] == "NaN"
            seen.add("NaN")
    assert seen == {"1e308", "40 digits", "NaN"}
    # The raw text as the bus carries it: numbers no DynamoDB attribute can hold.
    texts = [r.entries[0]["Detail"] for r in requests]
    assert any('"loyalty_points": 1e+308' in t for t in texts)
    assert any('"loyalty_points": 1' + "0" * 39 in t for t in texts)


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
    sizes = {"workflows": 3000, "workflow-update-units": 2.5, "orders": 800, "inventory": 700}
    results = build_results(runs, [1, 2], {"fraud": 300}, 300, pricing, sizes,
                            {"workflows": "p-workflows", "orders": "p-orders", "inventory": "p-inventory"})
    assert results["step_functions_standard_breakdown_per_million_usd"]["stepfunctions_standard_transitions"] == 200
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
    memory = {c.name: c.memory_mb for c in MANIFEST.consumers
              if c.name in ("fraud", "inventory", "shipping", "coordinator")}
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


def test_results_keep_the_first_workflows_figures_on_top_and_every_workflow_under_workflows():
    orders = {"generated_at": "t", "machine": {"cpu": "x"}, "levels": [{"concurrency": 1, "p50_ms": 400.0}],
              "cost_per_million_usd": 20.0, "idle_polling": {}, "pricing": {}, "assumptions": []}
    access = {**orders, "levels": [{"concurrency": 1, "p50_ms": 300.0}], "cost_per_million_usd": 15.0}
    results = combine_results({"order-fulfillment": orders, "access-request": access})
    assert results["workflow"] == "order-fulfillment"
    assert results["levels"] == orders["levels"] and results["cost_per_million_usd"] == 20.0
    assert list(results["workflows"]) == ["order-fulfillment", "access-request"]
    assert results["workflows"]["access-request"] == {"levels": access["levels"], "cost_per_million_usd": 15.0}
    assert "machine" not in results["workflows"]["order-fulfillment"]  # the run's, kept once
    with pytest.raises(ValueError):
        combine_results({})



def test_the_committed_results_cover_each_coordinated_workflow():
    results = json.loads((bench.REPO_ROOT / "bench" / "results.json").read_text())
    assert results["workflow"] == "order-fulfillment"
    assert set(results["workflows"]) == {w.name for w in MANIFEST.coordinated}
    for figures in results["workflows"].values():
        assert figures["levels"] and all(sum(r["missing_outcomes"].values()) == 0 for r in figures["levels"])
        assert figures["cost_per_million_usd"] > 0
    assert results["levels"] == results["workflows"]["order-fulfillment"]["levels"]
