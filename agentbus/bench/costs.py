"""The cost model: AWS list prices (``bench/pricing.json``) times what one request uses.

- DynamoDB capacity units from item sizes (the rules behind write and read request units), a workflow
  record's updates charged as the record grows;
- agentbus's billed usage per request from a parallel run's counts (``agentbus_usage``);
- the same workflow on Step Functions Standard and Express (``step_functions_usage``) and as a Lambda durable
  function (``durable_functions_usage``), the agents doing the same work;
- the model calls of agents that declare a reasoner, priced per token on Amazon Bedrock (``model_cost``);
- the idle cost of the Lambda pollers (``idle_polling``).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentbus.local.provision import REPO_ROOT
from agentbus.local.write_meter import write_units as write_units  # one rule for the meter and the model
from functions.common.spec import Manifest, Workflow
from functions.manifest import MANIFEST

if TYPE_CHECKING:
    from agentbus.bench.harness import LevelRun

PRICING_FILE = REPO_ROOT / "bench" / "pricing.json"
# Lambda gives a function CPU in proportion to its memory: the equivalent of one vCPU at 1,769 MB (Lambda
# developer guide, "Configuring Lambda function memory"). One thread (Python's GIL) uses at most one.
LAMBDA_ONE_VCPU_MB = 1769


def billed_gb_s(wall_ms: float, cpu_ms: float, memory_mb: int, *, records: float = 1.0,
                rounds: float | None = None) -> float:
    """GB-seconds Lambda bills for ``records`` records of a function whose record takes ``wall_ms`` here, of
    which ``cpu_ms`` on the CPU, handled in ``rounds`` rounds (default: one record per round).

    Records of one round run at once in one invocation (``record_concurrency`` threads): their waiting (on
    downstream calls, the simulated work) overlaps, their CPU does not (one interpreter lock). So a round is
    billed one record's waiting plus every record's CPU. The CPU is scaled to the share Lambda gives at
    ``memory_mb`` (this machine's core counted as one vCPU): below 1,769 MB it takes longer, so a record's
    CPU costs the same GB-seconds at any memory up to there, and only the waiting gets cheaper with less."""
    rounds = records if rounds is None else rounds
    waiting_ms = max(0.0, wall_ms - cpu_ms)
    cpu_on_lambda_ms = cpu_ms * max(1.0, LAMBDA_ONE_VCPU_MB / memory_mb)
    return (rounds * waiting_ms + records * cpu_on_lambda_ms) / 1000 * memory_mb / 1024


def load_pricing(path: Path = PRICING_FILE) -> dict[str, Any]:
    pricing: dict[str, Any] = json.loads(path.read_text())
    return pricing


def attribute_value_size(value: dict[str, Any]) -> int:
    """Approximate stored size of a DynamoDB attribute value (the rules behind capacity units)."""
    (kind, data), = value.items()
    if kind == "S":
        return len(data.encode("utf-8"))
    if kind == "N":
        return len(str(data).lstrip("-").replace(".", "")) // 2 + 2
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(attribute_value_size({kind[0]: item}) for item in data)
    if kind == "L":
        return 3 + sum(1 + attribute_value_size(item) for item in data)
    if kind == "M":
        return 3 + sum(1 + len(name.encode("utf-8")) + attribute_value_size(item) for name, item in data.items())
    raise ValueError(f"unknown attribute type {kind!r}")


def item_size(item: dict[str, dict[str, Any]]) -> int:
    """Bytes of a DynamoDB item: attribute names plus values."""
    return sum(len(name.encode("utf-8")) + attribute_value_size(value) for name, value in item.items())


def read_units(size_bytes: float, *, consistent: bool = True) -> float:
    """Read request units of one read of an item this big (4 KB each; eventually consistent: half)."""
    units = max(1, math.ceil(size_bytes / 4096))
    return units if consistent else units / 2


def cost_per_million(usage: dict[str, float], prices: dict[str, float]) -> dict[str, float]:
    """Cost of a million requests, per line item and in total, from per-request usage and unit prices.

    ``usage`` and ``prices`` share keys (e.g. ``sqs_requests``); each price is USD per unit.
    """
    unknown = set(usage) - set(prices)
    if unknown:
        raise KeyError(f"no price for {', '.join(sorted(unknown))}")
    items = {key: round(usage[key] * prices[key] * 1_000_000, 4) for key in sorted(usage)}
    return {**items, "total": round(sum(items.values()), 4)}


def _agents_gb_s(agents: dict[str, dict[str, float]]) -> float:
    """GB-seconds of each agent invoked once for one record (``ms_per_record``, ``cpu_ms_per_record``,
    ``memory_mb``), as the Step Functions and durable-functions comparisons invoke them."""
    return sum(billed_gb_s(a["ms_per_record"], a.get("cpu_ms_per_record", 0.0), int(a["memory_mb"]))
               for a in agents.values())


def step_functions_usage(model: dict[str, Any], agents: dict[str, dict[str, float]], *, end_to_end_ms: float,
                         main_table_write_units: float | None, agent_write_units: float
                         ) -> dict[str, dict[str, float]]:
    """Per-request usage of the same workflow on Step Functions Standard and Express.

    The state machine (``model``, from pricing.json): a Parallel state invoking each agent as a Lambda task,
    a Choice, a DynamoDB PutItem of the request's row in the workflow's main table (when it has one:
    ``main_table_write_units`` is None otherwise) and an EventBridge PutEvents of the outcome. The agents do
    the same work as on agentbus (same Lambda duration per record, one invocation each, the same writes to
    their own tables: ``agent_write_units``).
    """
    lambda_requests = float(len(agents))
    lambda_gb_s = _agents_gb_s(agents)
    transitions = model["state_transitions"]
    common = {
        "lambda_requests": lambda_requests,
        "lambda_gb_s": lambda_gb_s,
        "dynamodb_write_units": (main_table_write_units or 0) + agent_write_units,
        "eventbridge_events": float(model["outcome_events_per_order"]),
    }
    state_transitions = (transitions["fixed"] + transitions["per_agent"] * len(agents)
                         + (transitions["main_table_write"] if main_table_write_units is not None else 0))
    billed_ms = math.ceil(end_to_end_ms / model["express_billing_increment_ms"]) * model["express_billing_increment_ms"]
    return {
        "standard": {**common, "stepfunctions_standard_transitions": float(state_transitions)},
        "express": {
            **common,
            "stepfunctions_express_requests": 1.0,
            "stepfunctions_express_gb_s": billed_ms / 1000 * model["express_memory_mb"] / 1024,
        },
    }


def idle_polling(pricing: dict[str, Any], queues: int) -> dict[str, float]:
    """What the Lambda pollers cost while no message arrives (a fixed monthly cost, not per request)."""
    model = pricing["idle_polling"]
    per_minute = model["pollers_per_queue"] * 60 / model["long_poll_wait_s"]
    month = per_minute * 60 * 24 * 30 * queues
    return {"receives_per_minute_per_queue": per_minute, "receives_per_month": month,
            "usd_per_month": round(month * pricing["prices"]["sqs_requests"], 2)}

def dynamodb_units(dynamodb_calls: Counter[str], tables: dict[str, str], sizes: dict[str, float],
                   only: Iterable[str] | None = None) -> tuple[float, float]:
    """(write units, read units) of the functions' DynamoDB calls, from each table's average item size
    (of the tables named in ``only``, by logical name, if given).

    A write costs the table's average item size. Transactional writes cost twice; conditional writes that
    fail still cost. A read (a GetItem, a Query, each key of a BatchGetItem) costs a consistent read of one
    item. A model, for reads and for endpoints that do not measure writes: the benchmark's local
    endpoint measures every write (``measured_writes``), and those figures are the ones billed.
    """
    by_name = {name: logical for logical, name in tables.items()}
    wanted = set(only) if only is not None else None
    writes = reads = 0.0
    for key, count in dynamodb_calls.items():
        operation, _, table = key.partition("@")
        logical = by_name.get(table, table)
        if wanted is not None and logical not in wanted:
            continue
        size = sizes.get(logical, 1024)
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            writes += count * write_units(size)
        elif operation == "TransactWriteItems":
            writes += count * 2 * write_units(size)
        elif operation in ("GetItem", "BatchGetItem", "Query", "Scan"):  # BatchGetItem: counted per key
            reads += count * read_units(size, consistent=True)
    return writes, reads


def measured_writes(write_units: Counter[str], tables: dict[str, str]) -> dict[str, float]:
    """The write units measured on the endpoint, by table's logical name (``tables``: logical -> physical);
    empty when the endpoint measured none (a run against an endpoint without the meter)."""
    logical = {physical: name for name, physical in tables.items()}
    return {logical.get(table, table): float(units) for table, units in write_units.items()}


def ms_per_record(run: LevelRun) -> dict[str, float]:
    """Each function's busy time per record in ``run`` (ms)."""
    return {name: u["busy_ms"] / u["records"] for name, u in run.lambda_usage.items() if u["records"]}


def cpu_ms_per_record(run: LevelRun) -> dict[str, float]:
    """Each function's CPU time per record in ``run`` (ms; exact where its records ran in the invoking thread:
    one per invocation, or ``record_concurrency`` 1)."""
    return {name: u.get("cpu_ms", 0.0) / u["records"] for name, u in run.lambda_usage.items() if u["records"]}


def agentbus_usage(run: LevelRun, tables: dict[str, str], sizes: dict[str, float],
                   manifest: Manifest = MANIFEST, durations_ms: dict[str, float] | None = None,
                   cpu_ms: dict[str, float] | None = None) -> dict[str, float]:
    """Per-request billed usage of agentbus on AWS, from a parallel run's counts.

    Lambda duration: ``durations_ms`` (ms per record, by function; ``cpu_ms`` of it on the CPU) for the rounds
    and records each function handled (``billed_gb_s``), when given; else the run's own busy time.
    """
    calls = run.calls
    assert calls is not None
    requests = run.requests
    billed = calls.by_role["function"] + calls.by_role["poller"]
    # EventBridge -> SQS SendMessage, one per 64 KB chunk of each message the pollers received (the records the
    # functions handled, when the chunks were not counted); a receive's payload beyond its first 64 KB too.
    deliveries: float = calls.delivered_chunks["poller"] or sum(u["records"] for u in run.lambda_usage.values())
    sqs_requests = (sum(c for k, c in billed.items() if k.startswith("sqs:")) + deliveries
                    + calls.receive_extra_chunks["poller"])
    gb_s = 0.0
    for name, u in run.lambda_usage.items():
        memory_mb = manifest.consumer(name).memory_mb
        if durations_ms and name in durations_ms:
            gb_s += billed_gb_s(durations_ms[name], (cpu_ms or {}).get(name, 0.0), memory_mb,
                                records=u["records"], rounds=u.get("rounds", u["records"]))
        else:
            gb_s += u["busy_ms"] / 1000 * memory_mb / 1024
    writes, reads = dynamodb_units(calls.dynamodb, tables, sizes)
    if calls.write_units:
        # Measured on the endpoint, write by write, from the items' sizes before and after (write_meter).
        writes = float(sum(calls.write_units.values()))
    return {
        # Per 64 KB chunk of each entry (each entry when the chunks were not counted).
        "eventbridge_events": (calls.put_chunks["function"] or calls.put_entries["function"]) / requests,
        "sqs_requests": sqs_requests / requests,
        "lambda_requests": sum(u["invocations"] for u in run.lambda_usage.values()) / requests,
        "lambda_gb_s": gb_s / requests,
        "dynamodb_write_units": writes / requests,
        "dynamodb_read_units": reads / requests,
        # One-time deadline schedules are created and deleted (API calls, not billed) but never fire.
        "scheduler_invocations": 0.0,
        # The claim check: each detail over the threshold stored once, read by each consumer that resolves it.
        "s3_put_requests": billed.get("s3:PutObject", 0) / requests,
        "s3_get_requests": billed.get("s3:GetObject", 0) / requests,
    }


def agent_tables(workflow: Workflow, manifest: Manifest = MANIFEST) -> list[str]:
    """The tables ``workflow``'s agents write that the coordinator does not (their own side effects)."""
    coordinator = set(manifest.coordinator.tables) if manifest.coordinator else set()
    return [t for t in dict.fromkeys(t for a in workflow.agents for t in a.tables) if t not in coordinator]


def durable_operations(model: dict[str, Any], agents: int, *, main_table: bool) -> int:
    """Durable operations one request of a workflow of ``agents`` agents takes as a Lambda durable function
    (``model``: pricing.json's ``durable_functions.operations``): the fixed ones (the parallel block, the
    outcome's PutEvents step), one per agent (its invoke, or its callback), one for the main-table write."""
    if agents < 1:
        raise ValueError(f"a workflow has at least one agent, got {agents}")
    return int(model["fixed"] + model["per_agent"] * agents + (model["main_table_write"] if main_table else 0))


def durable_functions_usage(model: dict[str, Any], agents: dict[str, dict[str, float]], *, orchestrator_ms: float,
                            orchestrator_cpu_ms: float = 0.0, main_table_write_units: float | None,
                            agent_write_units: float) -> dict[str, float]:
    """Per-request usage of the same workflow as a Lambda durable function (``model``: pricing.json's
    ``durable_functions``): an orchestrating function that fans out to each agent's function in a parallel
    block, suspends (no compute billed) until every agent has answered, then writes the main table (when the
    workflow has one) and puts the outcome event, each a checkpointed step. The agents do the same work as on
    agentbus (same Lambda time per record, one invocation each, the same writes to their own tables); the
    orchestrator is invoked ``orchestrator_invocations`` times (its start and its resumption after the fan-in),
    each ``orchestrator_ms`` (``orchestrator_cpu_ms`` of it on the CPU) at ``orchestrator_memory_mb``."""
    operations = durable_operations(model["operations"], len(agents), main_table=main_table_write_units is not None)
    invocations = float(model["orchestrator_invocations"])
    agents_gb_s = _agents_gb_s(agents)
    orchestrator_gb_s = billed_gb_s(orchestrator_ms, orchestrator_cpu_ms, int(model["orchestrator_memory_mb"]),
                                    records=invocations)
    return {
        "durable_operations": float(operations),
        "lambda_requests": float(len(agents)) + invocations,
        "lambda_gb_s": agents_gb_s + orchestrator_gb_s,
        "dynamodb_write_units": (main_table_write_units or 0) + agent_write_units,
        "eventbridge_events": float(model["outcome_events_per_order"]),
    }


def reasoning_agents(workflow: Workflow) -> list[tuple[str, str | None]]:
    """(agent, the model id its reasoner declares, if any) for each agent of ``workflow`` with a reasoner
    (``Agent.reasoner``; read with getattr: a manifest of agents without one has none)."""
    found = []
    for agent in workflow.agents:
        reasoner = getattr(agent, "reasoner", None)
        if reasoner is not None:
            found.append((agent.name, getattr(reasoner, "model_id", None)))
    return found


def pick_model(bedrock: dict[str, Any], model_id: str | None = None) -> dict[str, Any]:
    """The priced model ``model_id`` (pricing.json's ``bedrock.models``), or the first one; a clear error for
    a model without a price."""
    models = bedrock["models"]
    if not models:
        raise ValueError("bench/pricing.json prices no Bedrock model")
    if model_id is None:
        chosen: dict[str, Any] = models[0]
        return chosen
    # A cross-Region inference profile (us.…, as the deploy takes it) is priced as the model behind it.
    from functions.common.spec import inference_profile_model

    for wanted in dict.fromkeys((model_id, inference_profile_model(model_id) or model_id)):
        for model in models:
            if model["model_id"] == wanted:
                return dict(model)
    raise ValueError(f"no price for model {model_id!r} in bench/pricing.json; priced: "
                     f"{', '.join(m['model_id'] for m in models)}")


def model_cost_per_million(model: dict[str, Any], calls_per_request: float, *, input_tokens: float,
                           output_tokens: float) -> float:
    """USD per million requests of ``calls_per_request`` model calls, each ``input_tokens`` in and
    ``output_tokens`` out, at the model's prices per 1,000 tokens."""
    per_call = (input_tokens / 1000 * float(model["input_per_1k_tokens_usd"])
                + output_tokens / 1000 * float(model["output_per_1k_tokens_usd"]))
    return round(calls_per_request * per_call * 1_000_000, 2)


def model_costs(workflow: Workflow, pricing: dict[str, Any], orchestration_per_million: float,
                model_id: str | None = None) -> dict[str, Any] | None:
    """Cost per million requests of ``workflow`` without and with its agents' model calls (one call per
    reasoning agent per request, the assumed token counts of pricing.json's ``bedrock``), or None when no
    agent of the workflow declares a reasoner."""
    reasoning = reasoning_agents(workflow)
    if not reasoning:
        return None
    bedrock = pricing["bedrock"]
    model = pick_model(bedrock, model_id)
    calls = bedrock["assumed_calls_per_reasoning_agent"] * len(reasoning)
    models_cost = model_cost_per_million(model, calls, input_tokens=bedrock["assumed_input_tokens_per_call"],
                                         output_tokens=bedrock["assumed_output_tokens_per_call"])
    return {
        "model_id": model["model_id"],
        "reasoning_agents": {name: declared for name, declared in reasoning},
        "model_calls_per_request": calls,
        "input_tokens_per_call": bedrock["assumed_input_tokens_per_call"],
        "output_tokens_per_call": bedrock["assumed_output_tokens_per_call"],
        "prices_as_of": bedrock["as_of"],
        "without_model_per_million_usd": round(orchestration_per_million, 2),
        "model_per_million_usd": models_cost,
        "with_model_per_million_usd": round(orchestration_per_million + models_cost, 2),
    }
