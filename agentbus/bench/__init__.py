"""`agentbus bench` and `agentbus soak`: what the orchestration costs, in time, in AWS API calls and in dollars.

One module per job:

- ``costs``: the cost model (pricing.json, DynamoDB capacity units, cost per million, Step Functions, Lambda
  durable functions, Bedrock model calls, idle polling);
- ``accounting``: the API calls of a run, counted on the wire and attributed to who made them;
- ``workload``: the requests of a run (each workflow's workload or copies of its samples; the soak's traffic);
- ``synthetic``: the sweep's generated workflow of N agents answering about BYTES each;
- ``harness``: a local stack, parallel or chained, and one level of concurrent requests run on it;
- ``reporting``: the results document and what is printed;
- ``chart``: latency against concurrency as an HTML page or a PNG;
- ``run``: ``agentbus bench`` (every coordinated workflow, or those named with ``--workflow``);
- ``sweep``: ``agentbus bench --agents N --payload BYTES`` and the fit of cost against N;
- ``soak``: ``agentbus soak``.

No module names a workflow: every figure is derived from the manifest given (the shipped one by default).
"""

from agentbus.bench.accounting import (
    HARNESS_THREADS,
    POLLER_ACKS,
    REST_OPERATIONS,
    THREAD_ROLES,
    CallCounter,
    CallSnapshot,
    per_order,
    role_of,
    system_calls,
    wire_key,
)
from agentbus.bench.chart import chart_series, write_chart
from agentbus.bench.costs import (
    PRICING_FILE,
    agent_tables,
    agentbus_usage,
    attribute_value_size,
    cost_per_million,
    cpu_ms_per_record,
    durable_functions_usage,
    durable_operations,
    dynamodb_units,
    idle_polling,
    item_size,
    load_pricing,
    model_costs,
    ms_per_record,
    read_units,
    step_functions_usage,
    write_units,
)
from agentbus.bench.harness import BENCH_DEADLINE_S, MODES, ChainedOrchestrator, Harness, LevelRun, bench_manifest
from agentbus.bench.reporting import (
    build_results,
    combine_results,
    latency_summary,
    machine,
    parse_time,
    percentile,
    print_results,
    ratio,
    throughput,
)
from agentbus.bench.run import DEFAULT_LEVELS, QUICK_LEVELS, run_bench
from agentbus.bench.soak import run_soak
from agentbus.bench.workload import (
    PUT_BATCH,
    SoakRequest,
    coordinated_workflows,
    make_requests,
    put_batches,
    sample_triggers,
    soak_traffic,
    unstorable_variants,
)
from agentbus.local.provision import REPO_ROOT

__all__ = [
    "BENCH_DEADLINE_S", "DEFAULT_LEVELS", "HARNESS_THREADS", "MODES", "POLLER_ACKS", "PRICING_FILE", "PUT_BATCH",
    "QUICK_LEVELS", "REPO_ROOT", "REST_OPERATIONS", "THREAD_ROLES", "CallCounter", "CallSnapshot",
    "ChainedOrchestrator", "Harness", "LevelRun", "SoakRequest", "agent_tables", "agentbus_usage",
    "attribute_value_size", "bench_manifest", "build_results", "chart_series", "combine_results",
    "coordinated_workflows", "cost_per_million", "cpu_ms_per_record", "durable_functions_usage", "durable_operations",
    "dynamodb_units",
    "idle_polling", "item_size", "latency_summary", "load_pricing", "machine", "make_requests", "model_costs",
    "ms_per_record", "parse_time", "per_order", "percentile", "print_results", "put_batches", "ratio", "read_units",
    "role_of", "run_bench", "run_soak", "sample_triggers", "soak_traffic", "step_functions_usage", "system_calls",
    "throughput", "unstorable_variants", "wire_key", "write_units", "write_chart",
]
