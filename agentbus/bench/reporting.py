"""Reporting: a run's figures (latency percentiles, throughput, calls and cost per request, the comparison
with Step Functions and Lambda durable functions, model calls) as the results document, and printed."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agentbus.bench.accounting import per_order, system_calls
from agentbus.bench.costs import (
    agent_tables,
    agentbus_usage,
    cost_per_million,
    cpu_ms_per_record,
    durable_functions_usage,
    dynamodb_units,
    idle_polling,
    measured_writes,
    model_costs,
    ms_per_record,
    step_functions_usage,
    write_units,
)
from agentbus.bench.harness import LevelRun
from agentbus.bench.workload import coordinated_workflows
from functions.common.moments import iso_s
from functions.common.spec import Manifest, Workflow
from functions.manifest import MANIFEST


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100) with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within 0..100, got {p}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(values_ms: Sequence[float]) -> dict[str, float]:
    return {f"p{p}_ms": round(percentile(values_ms, p), 1) for p in (50, 95, 99)}


def throughput(requests: int, first_put: float, last_outcome: float) -> float:
    """Requests per second from the first PutEvents call to the last outcome observed."""
    elapsed = last_outcome - first_put
    if requests <= 0 or elapsed <= 0:
        raise ValueError("throughput needs requests and a positive elapsed time")
    return requests / elapsed


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 3) if denominator else None


def parse_time(text: str) -> datetime:
    """``2026-11-26T11:07:08.123Z`` -> an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    from importlib.metadata import version

    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": memory_gb, "os": platform.platform(),
            "python": platform.python_version(), "moto": version("moto"), "boto3": version("boto3")}



# Keys of a run's results that are the run's, not one workflow's: kept once, at the top level.
RUN_KEYS = ("generated_at", "machine", "idle_polling", "pricing", "assumptions")


def combine_results(per_workflow: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One results document: the first workflow's figures at the top level (the keys the README and other
    readers know, with ``workflow`` naming it), and every workflow's under ``workflows``."""
    if not per_workflow:
        raise ValueError("no workflow results to combine")
    first, results = next(iter(per_workflow.items()))
    return {"workflow": first, **results,
            "workflows": {name: {k: v for k, v in r.items() if k not in RUN_KEYS} for name, r in per_workflow.items()}}


def build_results(runs: dict[str, dict[int, LevelRun]], levels: list[int], profile: dict[str, int], slowest: int,
                  pricing: dict[str, Any], sizes: dict[str, float], tables: dict[str, str],
                  workflow: Workflow | None = None, manifest: Manifest = MANIFEST,
                  model_id: str | None = None) -> dict[str, Any]:
    """One workflow's figures (the first coordinated workflow of the manifest unless given); ``model_id``: the
    Bedrock model whose price the model calls of reasoning agents are charged at (default: the first priced)."""
    workflow = workflow or coordinated_workflows(manifest)[0]
    level_rows = []
    for level in levels:
        parallel, chained = runs["parallel"][level], runs["chained"][level]
        row: dict[str, Any] = {"concurrency": level}
        if parallel.requests != level:  # several rounds of the level: its figures are over all of them
            row["requests"] = parallel.requests
        if parallel.end_to_end_ms:
            row.update(latency_summary(parallel.end_to_end_ms))
            row["throughput_orders_per_s"] = round(throughput(parallel.completed, parallel.first_put,
                                                              parallel.last_outcome), 2)
            row["overhead_ratio"] = ratio(row["p50_ms"], slowest)
        if chained.end_to_end_ms:
            chained_summary = latency_summary(chained.end_to_end_ms)
            row["chained"] = {**chained_summary, "throughput_orders_per_s": round(
                throughput(chained.completed, chained.first_put, chained.last_outcome), 2)}
            if parallel.end_to_end_ms:
                row["chained_over_parallel"] = ratio(chained_summary["p50_ms"], row["p50_ms"])
                row["parallel_over_chained"] = ratio(row["p50_ms"], chained_summary["p50_ms"])
        if parallel.coordinator_ms:
            row["coordinator_duration_ms"] = {k: v for k, v in latency_summary(parallel.coordinator_ms).items()}
        row["outcomes"] = dict(parallel.statuses)
        row["missing_outcomes"] = {"parallel": len(parallel.missing), "chained": len(chained.missing)}
        level_rows.append(row)

    # Calls and cost from the largest parallel level (the most requests to amortize the pollers' idle receives).
    largest = runs["parallel"][max(levels)]
    calls = largest.calls
    assert calls is not None
    requests = largest.requests
    system = system_calls(calls.wire, [calls.by_role["harness"], calls.by_role["emulation"]])
    # Lambda duration per record from the smallest level: there the local endpoint is not queueing calls,
    # so a function's time is its work plus uncontended calls (under load, the emulator's queue would be
    # billed as Lambda time). Both sides use the same figures.
    durations_level = min(levels) if ms_per_record(runs["parallel"][min(levels)]) else max(levels)
    durations = ms_per_record(runs["parallel"][durations_level])
    cpu = cpu_ms_per_record(runs["parallel"][durations_level])
    usage = agentbus_usage(largest, tables, sizes, manifest, durations_ms=durations, cpu_ms=cpu)
    prices = pricing["prices"]
    agentbus_cost = cost_per_million(usage, prices)
    agents = {a.name: {"ms_per_record": durations.get(a.name, 0.0), "cpu_ms_per_record": cpu.get(a.name, 0.0),
                       "memory_mb": a.memory_mb}
              for a in workflow.agents}
    main_table_writes: float | None = (write_units(sizes.get(workflow.projection.table, 1024))
                                       if workflow.projection else None)
    agent_writes, _ = dynamodb_units(calls.dynamodb, tables, sizes, only=agent_tables(workflow, manifest))
    # The same tables' writes as measured on the endpoint, when it measured them.
    measured = measured_writes(calls.write_units, tables)
    agent_writes = sum(measured.get(t, 0.0) for t in agent_tables(workflow, manifest)) or agent_writes
    if workflow.projection is not None and measured.get(workflow.projection.table):
        main_table_writes = measured[workflow.projection.table] / requests
    level_one = next((r for r in level_rows if r["concurrency"] == min(levels) and "p50_ms" in r), None)
    sfn_usage = step_functions_usage(
        pricing["step_functions"], agents, end_to_end_ms=level_one["p50_ms"] if level_one else slowest,
        main_table_write_units=main_table_writes, agent_write_units=agent_writes / requests)
    standard = cost_per_million(sfn_usage["standard"], prices)
    coordinator = manifest.coordinator
    durable_usage = durable_functions_usage(
        pricing["durable_functions"], agents,
        orchestrator_ms=durations.get(coordinator.name, 0.0) if coordinator else 0.0,
        orchestrator_cpu_ms=cpu.get(coordinator.name, 0.0) if coordinator else 0.0,
        main_table_write_units=main_table_writes, agent_write_units=agent_writes / requests)
    durable = cost_per_million(durable_usage, prices)
    express = cost_per_million(sfn_usage["express"], prices)
    by_role = {role: sum(c.values()) for role, c in calls.by_role.items()}
    return {
        "generated_at": iso_s(datetime.now(UTC)),
        "machine": machine(),
        "work_profile_ms": profile,
        "slowest_agent_ms": slowest,
        "end_to_end": "from the harness's PutEvents call to the outcome event received by the harness's "
                      "observer queue (a rule on the bus); coordinator_duration_ms is the coordinator's own "
                      "timings.duration_ms (first sighting of the workflow to its finish)",
        "levels": level_rows,
        "api_calls_per_order": per_order(system, requests),
        "api_calls_measured_at_concurrency": requests,
        "api_calls_excluded_per_order": {
            "harness": round(by_role["harness"] / requests, 3),
            "local_emulation_only": round(by_role["emulation"] / requests, 3),
            "detail": {role: per_order(calls.by_role[role], requests) for role in ("harness", "emulation")
                       if calls.by_role[role]},
        },
        "poller_empty_receives_per_order": round(calls.empty_receives["poller"] / requests, 3),
        "eventbridge_to_sqs_deliveries_per_order": round(sum(u["records"] for u in largest.lambda_usage.values())
                                                         / requests, 3),
        "usage_per_order": {k: round(v, 6) for k, v in usage.items()},
        # The Lambda time per record both cost models bill (ms, by function), and the level it was measured at.
        "lambda_ms_per_record": {name: round(ms, 1) for name, ms in sorted(durations.items())},
        "lambda_ms_per_record_measured_at_concurrency": durations_level,
        # Of that time, on the CPU (this machine's core): scaled to Lambda's share at each function's memory.
        "lambda_cpu_ms_per_record": {name: round(ms, 1) for name, ms in sorted(cpu.items())},
        # Records a function handled at once in one invocation, on average, at the level the calls come from.
        "lambda_records_per_round": {name: round(u["records"] / u["rounds"], 2)
                                     for name, u in sorted(largest.lambda_usage.items()) if u.get("rounds")},
        "item_sizes_bytes": {k: round(v) for k, v in sizes.items()},
        # Measured on the endpoint, write by write (agentbus/local/write_meter.py), by table.
        "write_units_per_order_by_table": {logical: round(units / requests, 3)
                                           for logical, units in sorted(measured.items()) if units},
        "cost_per_million_usd": agentbus_cost["total"],
        "cost_breakdown_per_million_usd": agentbus_cost,
        "step_functions_standard_cost_per_million_usd": standard["total"],
        "step_functions_standard_breakdown_per_million_usd": standard,
        "step_functions_express_cost_per_million_usd": express["total"],
        "step_functions_express_breakdown_per_million_usd": express,
        "cost_ratio_agentbus_over_standard": ratio(agentbus_cost["total"], standard["total"]),
        "durable_functions_cost_per_million_usd": durable["total"],
        "durable_functions_breakdown_per_million_usd": durable,
        "durable_operations_per_order": durable_usage["durable_operations"],
        "model_calls": model_costs(workflow, pricing, agentbus_cost["total"], model_id),
        "idle_polling": idle_polling(pricing, len(manifest.consumers)),
        "pricing": {"region": pricing["region"], "as_of": pricing["as_of"], "prices": prices},
        "assumptions": pricing["assumptions"],
    }


def format_number(value: Any, digits: int = 0) -> str:
    """A figure for a table: thousands separated, ``digits`` decimals, "–" when there is none."""
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def print_results(console: Console, results: dict[str, Any]) -> None:
    for name, figures in results["workflows"].items():
        _print_workflow(console, name, figures)
    idle = results["idle_polling"]
    console.print(f"\nidle: Lambda pollers make ~{idle['receives_per_minute_per_queue']:.0f} empty receives a minute "
                  f"per queue ≈ {idle['receives_per_month'] / 1e6:.1f} M a month ≈ ${idle['usd_per_month']} a month "
                  "for the whole deployment, whatever the traffic")
    console.print("assumptions:")
    for line in results["assumptions"]:
        console.print(f"  - {line}")
    m = results["machine"]
    console.print(f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, Python {m['python']}, "
                  f"moto {m['moto']}; run took {results.get('levels_duration_s', results.get('duration_s', '?'))} s")


def _print_workflow(console: Console, name: str, results: dict[str, Any]) -> None:
    table = Table(title=f"{name}: end to end per request (ms): harness PutEvents → outcome observed",
                  title_justify="left")
    for column in ("requests at once", "p50", "p95", "p99", "requests/s", "p50 ÷ slowest agent",
                   "chained p50", "chained ÷ parallel", "coordinator p50"):
        table.add_column(column, justify="right")
    for row in results["levels"]:
        chained = row.get("chained", {})
        rounds = row.get("requests", row["concurrency"]) // row["concurrency"]
        level = f"{row['concurrency']}" + (f" (median of {rounds})" if rounds > 1 else "")
        table.add_row(level, format_number(row.get("p50_ms")), format_number(row.get("p95_ms")),
                      format_number(row.get("p99_ms")), format_number(row.get("throughput_orders_per_s"), 1),
                      format_number(row.get("overhead_ratio"), 2), format_number(chained.get("p50_ms")),
                      format_number(row.get("chained_over_parallel"), 2),
                      format_number(row.get("coordinator_duration_ms", {}).get("p50_ms")))
    console.print()
    console.print(table)
    calls = results["api_calls_per_order"]
    console.print(f"\nAWS API calls per request (on the wire, {results['api_calls_measured_at_concurrency']} requests; "
                  f"harness and local-only calls excluded): [bold]{calls['total']}[/bold]")
    console.print("  " + ", ".join(f"{k} {v}" for k, v in calls.items() if k != "total"))
    excluded = results["api_calls_excluded_per_order"]
    console.print(f"  excluded per request: harness {excluded['harness']} (its PutEvents, observer queue, checks), "
                  f"local emulation only {excluded['local_emulation_only']} (pause checks, schedule listing); "
                  f"poller receives that came back empty: {results['poller_empty_receives_per_order']} per request")
    console.print(f"  not visible on the wire but billed: EventBridge → SQS deliveries "
                  f"{results['eventbridge_to_sqs_deliveries_per_order']} per request (counted as SQS requests)")
    wall, cpu = results.get("lambda_ms_per_record", {}), results.get("lambda_cpu_ms_per_record", {})
    if wall:
        per_round = results.get("lambda_records_per_round", {})
        console.print(f"Lambda time per record (ms, alone, {results['lambda_ms_per_record_measured_at_concurrency']} "
                      "at once; of it CPU; records per invocation round at the largest level): "
                      + ", ".join(f"{n} {wall[n]:,.1f} (CPU {cpu.get(n, 0):,.1f}; {per_round.get(n, 1):g} a round)"
                                  for n in wall))
    cost = results["cost_breakdown_per_million_usd"]
    pricing = results.get("pricing")
    prices_of = f" ({pricing['region']}, prices of {pricing['as_of']})" if pricing else ""
    console.print(f"cost per million requests{prices_of}: agentbus [bold]${cost['total']:,.2f}[/bold] ("
                  + ", ".join(f"{k} ${v:,.2f}" for k, v in cost.items() if k != "total") + ")")
    console.print(f"  Step Functions Standard ${results['step_functions_standard_cost_per_million_usd']:,.2f}, "
                  f"Express ${results['step_functions_express_cost_per_million_usd']:,.2f} "
                  f"(same agents, same work); agentbus ÷ Standard = {results['cost_ratio_agentbus_over_standard']}")
    if "durable_functions_cost_per_million_usd" in results:
        console.print(f"  Lambda durable functions ${results['durable_functions_cost_per_million_usd']:,.2f} "
                      f"({results['durable_operations_per_order']:.0f} durable operations per request: the parallel "
                      "block, one invoke per agent, the main-table step if any, the outcome step; orchestrator "
                      "invoked twice, suspended while the agents work; durable data written/retained not priced)")
    model = results.get("model_calls")
    if model:
        console.print(f"  with model calls ({model['model_id']}, prices of {model['prices_as_of']}): "
                      f"{model['model_calls_per_request']} calls per request × {model['input_tokens_per_call']:,} "
                      f"input + {model['output_tokens_per_call']:,} output tokens (assumed): "
                      f"${model['model_per_million_usd']:,.2f} per million requests for the model; agentbus "
                      f"without the model ${model['without_model_per_million_usd']:,.2f}, with it "
                      f"[bold]${model['with_model_per_million_usd']:,.2f}[/bold]")

