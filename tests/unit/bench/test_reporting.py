"""The results document: latency figures, calls and cost per request, the comparisons, what is kept where."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import pytest
from rich.console import Console

from agentbus import bench
from agentbus.bench import (
    CallSnapshot,
    LevelRun,
    build_results,
    combine_results,
    latency_summary,
    percentile,
    print_results,
    ratio,
    throughput,
)
from tests.pinned import MANIFEST  # the shipped workflows with the agents these figures count (not any a user adds)
from tests.unit.bench.reasoning import Reasoner, with_reasoners


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
    sizes = {"workflows": 3000, "orders": 800, "inventory": 700}
    # The orders workflow's figures (its agents, its tables), named: a workflow a user adds may come first.
    results = build_results(runs, [1, 2], {"fraud": 300}, 300, pricing, sizes,
                            {"workflows": "p-workflows", "orders": "p-orders", "inventory": "p-inventory"},
                            workflow=MANIFEST.workflow("order-fulfillment"))
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
    # Without measured write units: the model, each update at the table's average item size (3 KB: 3 units).
    assert results["usage_per_order"]["dynamodb_write_units"] == 6 * 3
    for key in ("cost_per_million_usd", "step_functions_standard_cost_per_million_usd",
                "step_functions_express_cost_per_million_usd"):
        assert results[key] > 0
    assert results["cost_ratio_agentbus_over_standard"] == ratio(results["cost_per_million_usd"],
                                                                 results["step_functions_standard_cost_per_million_usd"])
    json.dumps(results)  # written as JSON as is


def test_write_units_measured_on_the_endpoint_are_the_ones_billed_per_table_and_in_the_step_functions_column():
    roles = {role: Counter() for role in bench.THREAD_ROLES}
    roles["function"].update({"dynamodb:UpdateItem": 12, "dynamodb:PutItem": 2, "dynamodb:TransactWriteItems": 2})
    calls = CallSnapshot(wire=Counter({"dynamodb:UpdateItem": 12}), by_role=roles, empty_receives=Counter(),
                         put_entries=Counter(), dynamodb=Counter({"UpdateItem@p-workflows": 12, "PutItem@p-orders": 2,
                                                                  "TransactWriteItems@p-inventory": 4}),
                         write_units=Counter({"p-workflows": 20, "p-orders": 2, "p-inventory": 8}))
    runs = {"parallel": {1: _run("parallel", 1, [400.0]), 2: _run("parallel", 2, [400.0, 600.0], calls)},
            "chained": {1: _run("chained", 1, [900.0]), 2: _run("chained", 2, [1000.0, 1200.0])}}
    results = build_results(runs, [1, 2], {"fraud": 300}, 300, bench.load_pricing(),
                            {"workflows": 9000, "orders": 800, "inventory": 700},
                            {"workflows": "p-workflows", "orders": "p-orders", "inventory": "p-inventory"},
                            workflow=MANIFEST.workflow("order-fulfillment"))  # its tables: orders, inventory
    assert results["usage_per_order"]["dynamodb_write_units"] == (20 + 2 + 8) / 2  # not 9 KB x 6 updates
    assert results["write_units_per_order_by_table"] == {"inventory": 4.0, "orders": 1.0, "workflows": 10.0}
    # Step Functions' agents make the same writes to their own tables, and the same main-table row.
    assert results["step_functions_express_breakdown_per_million_usd"]["dynamodb_write_units"] == pytest.approx(
        (4 + 1) * bench.load_pricing()["prices"]["dynamodb_write_units"] * 1_000_000)


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


def test_results_say_how_much_of_a_records_time_was_cpu_and_how_many_records_shared_a_round():
    quiet = _run("parallel", 1, [400.0])
    quiet.lambda_usage = {n: {**u, "cpu_ms": 20.0, "rounds": 1.0} for n, u in quiet.lambda_usage.items()}
    busy = _run("parallel", 2, [400.0, 600.0])
    busy.calls = CallSnapshot(wire=Counter(), by_role={role: Counter() for role in bench.THREAD_ROLES},
                              empty_receives=Counter(), put_entries=Counter(), dynamodb=Counter())
    busy.lambda_usage = {name: {"invocations": 1.0, "records": 8.0, "rounds": 2.0, "busy_ms": 5000.0}
                         for name in ("fraud", "inventory", "shipping", "coordinator")}
    results = build_results({"parallel": {1: quiet, 2: busy}, "chained": {1: quiet, 2: busy}}, [1, 2],
                            {"fraud": 300}, 300, bench.load_pricing(), {"workflows": 1000},
                            {"workflows": "w", "orders": "o", "inventory": "i"})
    names = ("coordinator", "fraud", "inventory", "shipping")
    assert results["lambda_cpu_ms_per_record"] == {n: 20.0 for n in names}
    assert results["lambda_records_per_round"] == {n: 4.0 for n in names}
    # Billed: per function 2 rounds of 80 ms waiting and 8 records of 20 ms CPU at Lambda's share, per 2 orders.
    expected = sum(bench.costs.billed_gb_s(100.0, 20.0, MANIFEST.consumer(n).memory_mb, records=8, rounds=2)
                   for n in names) / 2
    assert results["usage_per_order"]["lambda_gb_s"] == pytest.approx(expected, abs=1e-5)


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


# The coordinated workflows the committed bench/results.json (and the README's figures from it) were made
# with. A workflow a user adds to the manifest (README "Add a workflow") is not in the committed results,
# and they should not need a 20-minute `make bench` to pass the tests; a coordinated workflow shipped with
# agentbus goes here, with a `make bench` that covers it.
BENCHED = ("order-fulfillment", "access-request")


def test_the_committed_results_cover_each_coordinated_workflow():
    results = json.loads((bench.REPO_ROOT / "bench" / "results.json").read_text())
    coordinated = {w.name for w in MANIFEST.coordinated}
    # Every benched workflow is still one of the manifest's coordinated workflows (not renamed, removed or
    # made standalone since: the figures would describe nothing that runs), and the results cover them all.
    assert set(BENCHED) <= coordinated, sorted(set(BENCHED) - coordinated)
    assert list(results["workflows"]) == list(BENCHED)
    assert results["workflow"] == BENCHED[0] == "order-fulfillment"  # the README's figures: the orders'
    for figures in results["workflows"].values():
        assert figures["levels"] and all(sum(r["missing_outcomes"].values()) == 0 for r in figures["levels"])
        assert figures["cost_per_million_usd"] > 0
    assert results["levels"] == results["workflows"]["order-fulfillment"]["levels"]


def _figures(workflow=None, model_id=None):
    roles = {role: Counter() for role in bench.THREAD_ROLES}
    roles["function"].update({"events:PutEvents": 8})
    calls = CallSnapshot(wire=Counter({"events:PutEvents": 8}), by_role=roles, empty_receives=Counter(),
                         put_entries=Counter({"function": 8}), dynamodb=Counter({"UpdateItem@p-workflows": 12}))
    runs = {"parallel": {1: _run("parallel", 1, [400.0]), 2: _run("parallel", 2, [400.0, 600.0], calls)},
            "chained": {1: _run("chained", 1, [900.0]), 2: _run("chained", 2, [1000.0, 1200.0])}}
    return build_results(runs, [1, 2], {}, 300, bench.load_pricing(), {"workflows": 3000, "orders": 800},
                         {"workflows": "p-workflows", "orders": "p-orders"}, workflow=workflow, manifest=MANIFEST,
                         model_id=model_id)


def test_results_compare_with_lambda_durable_functions_and_print_the_assumptions():
    results = _figures()
    workflow = MANIFEST.coordinated[0]
    operations = 2 + len(workflow.agents) + (1 if workflow.projection else 0)
    assert results["durable_operations_per_order"] == operations
    breakdown = results["durable_functions_breakdown_per_million_usd"]
    assert breakdown["durable_operations"] == operations * 8.0
    assert results["durable_functions_cost_per_million_usd"] == breakdown["total"] > 0
    assert results["model_calls"] is None  # no agent of the shipped workflows declares a reasoner (yet)
    console = Console(record=True, width=200)
    print_results(console, combine_results({workflow.name: results}))
    text = console.export_text()
    assert f"Lambda durable functions ${results['durable_functions_cost_per_million_usd']:,.2f}" in text
    assert f"({operations} durable operations per request" in text
    assert "Lambda durable functions: the orchestrator fans out" in text  # its assumption, printed


def test_results_of_a_workflow_with_reasoning_agents_show_the_cost_with_and_without_the_model():
    workflow = with_reasoners(MANIFEST.coordinated[0], Reasoner("any"))
    model = bench.load_pricing()["bedrock"]["models"][1]
    results = _figures(workflow, model_id=model["model_id"])
    calls = results["model_calls"]
    assert calls["model_id"] == model["model_id"] and calls["model_calls_per_request"] == 1
    assert calls["without_model_per_million_usd"] == round(results["cost_per_million_usd"], 2)
    assert calls["with_model_per_million_usd"] == pytest.approx(
        calls["without_model_per_million_usd"] + calls["model_per_million_usd"], abs=0.01)
    console = Console(record=True, width=250)
    print_results(console, combine_results({workflow.name: results}))
    assert f"with model calls ({model['model_id']}" in console.export_text()


def test_a_level_run_in_rounds_reports_the_median_of_its_requests_and_how_many():
    roles = {role: Counter() for role in bench.THREAD_ROLES}
    roles["function"].update({"events:PutEvents": 12})
    calls = CallSnapshot(wire=Counter({"events:PutEvents": 12}), by_role=roles, empty_receives=Counter(),
                         put_entries=Counter({"function": 12}), dynamodb=Counter())
    # One request at a time, three rounds: 300, 900 and 400 ms; the level's p50 is their median.
    single = dataclasses.replace(_run("parallel", 1, [300.0, 900.0, 400.0], calls), ids=["a", "b", "c"])
    assert single.requests == 3 and _run("parallel", 2, [1.0, 1.0]).requests == 2
    runs = {"parallel": {1: single}, "chained": {1: _run("chained", 1, [900.0])}}
    results = build_results(runs, [1], {"fraud": 300}, 300, bench.load_pricing(), {"workflows": 900},
                            {"workflows": "p-workflows"})
    row, = results["levels"]
    assert row["requests"] == 3 and row["p50_ms"] == 400.0
    # Per request over all three rounds (the level is the largest here, so the calls are counted from it).
    assert results["api_calls_per_order"]["events:PutEvents"] == 4.0
    console = Console(record=True, width=200)
    print_results(console, combine_results({"order-fulfillment": results}))
    assert "1 (median of 3)" in console.export_text()
