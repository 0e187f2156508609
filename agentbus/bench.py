"""`agentbus bench` and `agentbus soak`: what the orchestration costs, in time and in AWS API calls.

Benchmark (``run_bench``): the sample workflow on the local runtime, with a benchmark-only simulated work
time per agent (default fraud 300 ms, inventory 100 ms, shipping 200 ms) so the figures isolate the
orchestration's own overhead. For each concurrency level N, N orders are put on the bus at once and the
harness measures, per order, **end to end = from the harness's PutEvents call to the outcome event
observed on the bus** (a rule + queue of the harness's own), plus the coordinator's own
``timings.duration_ms`` (first sighting of the workflow to its finish). Every level runs twice:

- **parallel**: the real topology, every agent subscribed to ``Order Placed``;
- **chained**: the same queues, pollers, functions and simulated times, provisioned from a manifest
  variant where the agents have no subscription (only the coordinator sees the trigger); the harness
  plays the sequential orchestrator: it sends the delivered trigger envelope to fraud's queue, waits for
  fraud's result on the bus, then inventory's queue, then shipping's. The coordinator gathers as usual.

AWS API calls are counted on the wire (the endpoint's observer sees every request). Each call is also
attributed on the client side (a botocore hook, by the thread that made it) so the harness's own calls
(its PutEvents, its observer queue, its queue checks) and the calls that only exist locally (the pause
check of the emulated poller, the emulated Scheduler's listing) are excluded; the Lambda poller's
receives and deletes stay in: on AWS they are billed SQS requests too. From the counts and the pricing
table in ``bench/pricing.json`` come the cost per million orders, next to the same workflow on Step
Functions Standard and Express.

Soak (``run_soak``): many orders under chaos (duplicates, crashes, delays, PutEvents failures); every
invariant of ``agentbus.invariants`` checked at the end; non-zero exit if one fails.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import os
import platform
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agentbus.local.provision import REPO_ROOT
from agentbus.local.runtime import RuntimeOptions
from agentbus.local.stack import LocalStack
from agentbus.observe import BusObserver, ObservedEvent
from functions.manifest import MANIFEST, Manifest

# The benchmark drives the order workflow (issue 15 makes it take any workflow).
ORDERS = "order-fulfillment"

DEFAULT_LEVELS = (1, 10, 100, 1000)
QUICK_LEVELS = (1, 10, 50)
DEFAULT_WORK_PROFILE = {"fraud": 300, "inventory": 100, "shipping": 200}
PRICING_FILE = REPO_ROOT / "bench" / "pricing.json"
# Long enough that no deadline fires during a run: the benchmark measures the happy path.
BENCH_DEADLINE_S = 900
PUT_BATCH = 10  # PutEvents takes at most 10 entries

# Wire names of REST operations (method + first path segment) -> the API's operation names.
REST_OPERATIONS = {
    "scheduler:POST /schedules": "scheduler:CreateSchedule",
    "scheduler:DELETE /schedules": "scheduler:DeleteSchedule",
    "scheduler:GET /schedules": "scheduler:GetSchedule/ListSchedules",
    "scheduler:PUT /schedules": "scheduler:UpdateSchedule",
}
# Calls the Lambda SQS poller (event source mapping) makes: billed SQS requests on AWS too.
POLLER_ACKS = frozenset({"sqs:DeleteMessageBatch", "sqs:ChangeMessageVisibilityBatch"})


# --- pure figures ----------------------------------------------------------------------------------

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


def throughput(orders: int, first_put: float, last_outcome: float) -> float:
    """Orders per second from the first PutEvents call to the last outcome observed."""
    elapsed = last_outcome - first_put
    if orders <= 0 or elapsed <= 0:
        raise ValueError("throughput needs orders and a positive elapsed time")
    return orders / elapsed


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 3) if denominator else None


def parse_time(text: str) -> datetime:
    """``2026-11-26T11:07:08.123Z`` -> an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def wire_key(service: str, action: str) -> str:
    """``service:Action`` as the API names it (REST operations are seen on the wire as method + path)."""
    key = f"{service}:{action}"
    return REST_OPERATIONS.get(key, key)


def per_order(counts: Counter, orders: int) -> dict[str, float]:
    """``{"total": …, "service:Action": …}``: calls per order, largest first."""
    if orders <= 0:
        raise ValueError("per-order figures need at least one order")
    figures = {key: round(count / orders, 3) for key, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
               if count > 0}
    return {"total": round(sum(counts.values()) / orders, 3), **figures}


def system_calls(wire: Counter, excluded: Iterable[Counter]) -> Counter:
    """The calls counted on the wire minus those attributed to the harness or to local-only emulation."""
    remaining = Counter(wire)
    for counts in excluded:
        remaining.subtract(counts)
    return Counter({key: count for key, count in remaining.items() if count > 0})


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


def write_units(size_bytes: float) -> int:
    """Write request units of one standard write of an item this big (1 KB each, rounded up)."""
    return max(1, math.ceil(size_bytes / 1024))


def read_units(size_bytes: float, *, consistent: bool = True) -> float:
    """Read request units of one read of an item this big (4 KB each; eventually consistent: half)."""
    units = max(1, math.ceil(size_bytes / 4096))
    return units if consistent else units / 2


# Attributes the coordinator's finish and publication add to a workflow record (functions/coordinator/store.py).
FINISH_ATTRIBUTES = ("outcome", "finished_at", "reason", "published", "publish_lease_until", "publish_lease_owner")


def workflow_update_units(item: dict[str, dict[str, Any]]) -> float:
    """Average write units of one update of a workflow record over its life, from its final item.

    The record grows: opened by the trigger, one result slot per agent, the finish (the stored outcome),
    then ``published``. An update costs the larger of the item's size before and after it, so later updates
    cost more than earlier ones; this replays that growth instead of charging every update the final size.
    """
    def size(names: Iterable[str]) -> int:
        return sum(len(n.encode("utf-8")) + attribute_value_size(item[n]) for n in names if n in item)

    results = sorted(n for n in item if n.startswith("result_") or n.startswith("late_"))
    finish = [n for n in FINISH_ATTRIBUTES if n in item]
    base = size(n for n in item if n not in results and n not in finish and n != "published_at")
    states = [base]
    for name in results:
        states.append(states[-1] + size([name]))
    states.append(states[-1] + size(finish))
    states.append(states[-1] + size(["published_at"]))
    units = [write_units(states[0])] + [write_units(max(a, b)) for a, b in zip(states, states[1:], strict=False)]
    return sum(units) / len(units)


def cost_per_million(usage: dict[str, float], prices: dict[str, float]) -> dict[str, float]:
    """Cost of a million orders, per line item and in total, from per-order usage and unit prices.

    ``usage`` and ``prices`` share keys (e.g. ``sqs_requests``); each price is USD per unit.
    """
    unknown = set(usage) - set(prices)
    if unknown:
        raise KeyError(f"no price for {', '.join(sorted(unknown))}")
    items = {key: round(usage[key] * prices[key] * 1_000_000, 4) for key in sorted(usage)}
    return {**items, "total": round(sum(items.values()), 4)}


def step_functions_usage(model: dict[str, Any], agents: dict[str, dict[str, float]], *, end_to_end_ms: float,
                         order_write_units: float, inventory_write_units: float) -> dict[str, dict[str, float]]:
    """Per-order usage of the same workflow on Step Functions Standard and Express.

    The state machine (``model``, from pricing.json): a Parallel state invoking the three agents as Lambda
    tasks, a Choice, a DynamoDB PutItem of the order's record and an EventBridge PutEvents of the outcome.
    The agents do the same work as on agentbus (same Lambda duration per record, one invocation each).
    """
    lambda_requests = float(len(agents))
    lambda_gb_s = sum(a["ms_per_record"] / 1000 * a["memory_mb"] / 1024 for a in agents.values())
    common = {
        "lambda_requests": lambda_requests,
        "lambda_gb_s": lambda_gb_s,
        "dynamodb_write_units": order_write_units + inventory_write_units,
        "eventbridge_events": float(model["outcome_events_per_order"]),
    }
    billed_ms = math.ceil(end_to_end_ms / model["express_billing_increment_ms"]) * model["express_billing_increment_ms"]
    return {
        "standard": {**common, "stepfunctions_standard_transitions": float(model["state_transitions_per_order"])},
        "express": {
            **common,
            "stepfunctions_express_requests": 1.0,
            "stepfunctions_express_gb_s": billed_ms / 1000 * model["express_memory_mb"] / 1024,
        },
    }


def idle_polling(pricing: dict[str, Any], queues: int) -> dict[str, float]:
    """What the Lambda pollers cost while no message arrives (a fixed monthly cost, not per order)."""
    model = pricing["idle_polling"]
    per_minute = model["pollers_per_queue"] * 60 / model["long_poll_wait_s"]
    month = per_minute * 60 * 24 * 30 * queues
    return {"receives_per_minute_per_queue": per_minute, "receives_per_month": month,
            "usd_per_month": round(month * pricing["prices"]["sqs_requests"], 2)}


# --- counting API calls ----------------------------------------------------------------------------

THREAD_ROLES = ("harness", "function", "poller", "emulation")


HARNESS_THREADS = ("MainThread", "observer-", "bench-")


def role_of(thread_name: str, key: str) -> str:
    """Who made a call, from the thread that made it (see ``agentbus.local.runtime``'s thread names).

    - the harness's own threads (the main thread, its bus observer ``observer-…``, its chained orchestrator
      ``bench-…``): its PutEvents, its observer's queue, its queue checks;
    - ``poller-<fn>``: the emulated event source mapping's receives; anything else there (the pause
      check) exists only locally;
    - ``scheduler``: the emulated EventBridge Scheduler firing (listing schedules exists only locally);
    - any other thread runs a function (``lambda-<fn>_N``, or the threads a function starts to handle a
      batch's records at once), except the acknowledgements the emulated poller sends from the
      invocation's thread once the handler has returned (Lambda's event source mapping does those).
    """
    if thread_name.startswith(HARNESS_THREADS):
        return "harness"
    if thread_name.startswith("poller-"):
        return "poller" if key == "sqs:ReceiveMessage" else "emulation"
    if thread_name == "scheduler":
        return "emulation"
    return "poller" if key in POLLER_ACKS else "function"


@dataclass
class CallCounter:
    """Counts API calls on the wire (the endpoint's own counts) and by caller (botocore hooks on the session)."""

    by_role: dict[str, Counter] = field(default_factory=lambda: {role: Counter() for role in THREAD_ROLES})
    empty_receives: Counter = field(default_factory=Counter)  # by role
    put_entries: Counter = field(default_factory=Counter)  # PutEvents entries, by role
    dynamodb: Counter = field(default_factory=Counter)  # function calls as "Op@table" (TransactWriteItems: items)
    # The endpoint's own count of the calls it served so far, by "service:Action" (``LocalEndpoint.wire_calls``).
    wire_source: Callable[[], Counter] = Counter
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def install(self, session: Any) -> None:
        """Hook every client the session creates from now on (the runtime's, the functions', ours)."""
        session.events.register("before-parameter-build", self._before_call)
        session.events.register("after-call.sqs.ReceiveMessage", self._after_receive)

    def _key(self, model: Any) -> str:
        service = model.service_model.signing_name
        if model.service_model.protocol.startswith("rest"):
            segment = model.http.get("requestUri", "/").strip("/").split("/")[0].split("?")[0]
            return wire_key(service, f"{model.http.get('method', 'GET')} /{segment}")
        return wire_key(service, model.name)

    def _before_call(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        """Once per API call, with the call's parameters (before botocore serializes them)."""
        key = self._key(model)
        role = role_of(threading.current_thread().name, key)
        with self._lock:
            self.by_role[role][key] += 1
            if key == "events:PutEvents":
                self.put_entries[role] += len(params.get("Entries", []))
            if role == "function" and key.startswith("dynamodb:"):
                operation = key.split(":", 1)[1]
                if operation == "TransactWriteItems":
                    for action in params.get("TransactItems", []):
                        (_, body), = action.items()
                        self.dynamodb[f"TransactWriteItems@{body.get('TableName')}"] += 1
                else:
                    self.dynamodb[f"{operation}@{params.get('TableName')}"] += 1

    def _after_receive(self, parsed: dict[str, Any], **_: Any) -> None:
        if not parsed.get("Messages"):
            role = role_of(threading.current_thread().name, "sqs:ReceiveMessage")
            with self._lock:
                self.empty_receives[role] += 1

    def snapshot(self) -> CallSnapshot:
        wire: Counter = Counter()
        for key, count in self.wire_source().items():
            wire[wire_key(*key.split(":", 1))] += count
        with self._lock:
            return CallSnapshot(wire,
                                {r: Counter(c) for r, c in self.by_role.items()}, Counter(self.empty_receives),
                                Counter(self.put_entries), Counter(self.dynamodb))


@dataclass
class CallSnapshot:
    wire: Counter
    by_role: dict[str, Counter]
    empty_receives: Counter
    put_entries: Counter
    dynamodb: Counter

    def __sub__(self, other: CallSnapshot) -> CallSnapshot:
        return CallSnapshot(self.wire - other.wire, {r: self.by_role[r] - other.by_role[r] for r in self.by_role},
                            self.empty_receives - other.empty_receives, self.put_entries - other.put_entries,
                            self.dynamodb - other.dynamodb)


# --- the harness -----------------------------------------------------------------------------------

def seed_skus(manifest: Manifest = MANIFEST) -> list[str]:
    """Every SKU of the stock seed file (the benchmark's orders draw their lines from them)."""
    table = manifest.table("inventory")
    return sorted(json.loads((REPO_ROOT / str(table.seed_file)).read_text())["stock"])


def bench_manifest(manifest: Manifest = MANIFEST, *, chained: bool) -> Manifest:
    """The manifest as is (parallel), or with no agent subscribed to anything (chained: the harness feeds
    each agent's queue in turn; the coordinator still sees the trigger and every result)."""
    if not chained:
        return manifest
    workflows = tuple(
        dataclasses.replace(w, agents=tuple(dataclasses.replace(a, subscriptions=()) for a in w.agents))
        for w in manifest.workflows
    )
    return dataclasses.replace(manifest, workflows=workflows)


def make_orders(prefix: str, count: int, skus: Sequence[str]) -> list[dict[str, Any]]:
    """``count`` valid orders (one line of one unit each, SKUs in turn) as PutEvents entries."""
    template = json.loads((REPO_ROOT / "events" / "order-placed.json").read_text())
    template = template[0] if isinstance(template, list) else template
    base = json.loads(template["Detail"])
    entries = []
    for index in range(count):
        detail = {**base, "order_id": f"{prefix}-{index:05d}",
                  "items": [{"sku": skus[index % len(skus)], "quantity": 1, "unit_price": 20.0}]}
        entries.append({"Source": template["Source"], "DetailType": template["DetailType"],
                        "Detail": json.dumps(detail)})
    return entries


@dataclass
class LevelRun:
    mode: str
    concurrency: int
    end_to_end_ms: list[float]
    coordinator_ms: list[float]
    first_put: float
    last_outcome: float
    statuses: Counter
    missing: list[str]
    calls: CallSnapshot | None = None
    lambda_usage: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def completed(self) -> int:
        return len(self.end_to_end_ms)


class ChainedOrchestrator:
    """The harness as a sequential orchestrator: trigger -> fraud, fraud's result -> inventory, -> shipping."""

    def __init__(self, sqs: Any, queue_urls: dict[str, str], agents: Sequence[Any]) -> None:
        self.sqs = sqs
        self.queue_urls = queue_urls
        self.agents = list(agents)
        self.envelopes: dict[str, dict[str, Any]] = {}
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="bench-chain")
        self._lock = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def on_event(self, event: ObservedEvent, trigger_source: str, trigger_type: str) -> None:
        order_id = event.workflow_id
        if not order_id:
            return
        if event.source == trigger_source and event.detail_type == trigger_type:
            envelope = {"version": "0", "id": str(uuid.uuid4()), "detail-type": event.detail_type,
                        "source": event.source, "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "region": "us-east-1", "resources": [], "detail": event.detail}
            with self._lock:
                if order_id in self.envelopes:
                    return
                self.envelopes[order_id] = envelope
            self._send(self.agents[0].name, envelope)
            return
        for index, agent in enumerate(self.agents[:-1]):
            if event.source == agent.source and event.detail.get("outcome") == "success":
                with self._lock:
                    envelope = self.envelopes.get(order_id)
                if envelope:
                    self._send(self.agents[index + 1].name, envelope)
                return

    def _send(self, agent: str, envelope: dict[str, Any]) -> None:
        self._pool.submit(self.sqs.send_message, QueueUrl=self.queue_urls[agent], MessageBody=json.dumps(envelope))


@dataclass
class Harness:
    """One local stack (parallel or chained) and what it takes to measure it."""

    chained: bool
    work_profile: dict[str, int]
    counter: CallCounter = field(default_factory=CallCounter)
    manifest: Manifest = MANIFEST

    def __post_init__(self) -> None:
        self.stack = LocalStack(manifest=bench_manifest(self.manifest, chained=self.chained),
                                options=RuntimeOptions(deadline_seconds=BENCH_DEADLINE_S,
                                                       simulated_work_ms=self.work_profile or None))
        self.counter.install(self.stack.session)
        self.workflow = self.manifest.workflow(ORDERS)
        self._progress: Callable[[int], None] | None = None
        self._outcomes_seen = 0

    def __enter__(self) -> Harness:
        self.stack.start()
        self.counter.wire_source = self.stack.endpoint.wire_calls
        resources = self.stack.resources
        self.events = self.stack.client("events")
        self.sqs = self.stack.client("sqs")
        self.dynamodb = self.stack.client("dynamodb")
        self.chain = ChainedOrchestrator(self.sqs, {n: c.queue_url for n, c in resources.consumers.items()},
                                         self.workflow.agents) if self.chained else None
        self.observer = BusObserver(self.events, self.stack.client("sqs"), resources.bus_name,
                                    manifest=self.manifest, on_event=self._on_event).start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.observer.stop()
            if self.chain:
                self.chain.close()
        finally:
            self.stack.stop()

    def _on_event(self, event: ObservedEvent) -> None:
        if self.chain:
            trigger = self.workflow.trigger
            self.chain.on_event(event, trigger.sources[0], trigger.detail_types[0])
        if event.detail_type in self.observer.terminal_types and self._progress:
            self._progress(1)

    def run_level(self, concurrency: int, run_id: str, *, timeout_s: float,
                  progress: Callable[[int], None] | None = None) -> LevelRun:
        mode = "chained" if self.chained else "parallel"
        entries = make_orders(f"bench-{run_id}-{mode}-{concurrency}", concurrency, sorted(seed_skus()))
        order_ids = [json.loads(e["Detail"])["order_id"] for e in entries]
        bus = self.stack.resources.bus_name
        self._progress = progress
        self.settle()
        stats_before = self._stats()
        calls_before = self.counter.snapshot()
        put_at: dict[str, float] = {}
        first_put = time.time()
        for start in range(0, len(entries), PUT_BATCH):
            batch = [{**e, "EventBusName": bus} for e in entries[start:start + PUT_BATCH]]
            sent_at = time.time()
            response = self.events.put_events(Entries=batch)
            if response.get("FailedEntryCount"):
                raise RuntimeError(f"PutEvents rejected {response['FailedEntryCount']} benchmark orders")
            for entry in batch:
                put_at[json.loads(entry["Detail"])["order_id"]] = sent_at
        missing = sorted(self.observer.wait_for_outcomes(order_ids, timeout_s))
        self.settle()
        calls = self.counter.snapshot() - calls_before
        stats_after = self._stats()
        self._progress = None

        end_to_end, coordinator, statuses, last = [], [], Counter(), first_put
        for order_id in order_ids:
            outcomes = self.observer.outcomes(order_id)
            if not outcomes:
                continue
            outcome = min(outcomes, key=lambda e: e.received_at)
            end_to_end.append((outcome.received_at - put_at[order_id]) * 1000)
            duration = (outcome.detail.get("timings") or {}).get("duration_ms")
            if duration is not None:
                coordinator.append(float(duration))
            statuses[outcome.detail.get("status", "?")] += 1
            last = max(last, outcome.received_at)
        usage = {name: {key: stats_after[name][key] - stats_before[name][key] for key in stats_after[name]}
                 for name in stats_after}
        return LevelRun(mode, concurrency, end_to_end, coordinator, first_put, last, statuses, missing, calls, usage)

    def _stats(self) -> dict[str, dict[str, float]]:
        return {name: {"invocations": s.invocations, "records": s.records, "busy_ms": s.busy_ms}
                for name, s in self.stack.runtime.stats.items()}

    def settle(self, timeout_s: float = 10.0) -> None:
        """Wait until every queue is drained and the functions are idle (acknowledgements, mark-published)."""
        deadline = time.monotonic() + timeout_s
        previous = None
        while time.monotonic() < deadline:
            pending = 0
            for consumer in self.stack.resources.consumers.values():
                attributes = self.sqs.get_queue_attributes(QueueUrl=consumer.queue_url, AttributeNames=[
                    "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
                pending += sum(int(v) for v in attributes.values())
            records = sum(s["records"] for s in self._stats().values())
            if pending == 0 and records == previous:
                return
            previous = records
            time.sleep(0.2)

    def item_sizes(self) -> dict[str, float]:
        """Average stored item size (bytes) per table and kind of inventory item, and the workflow records'
        average write units per update (``workflow-update-units``)."""
        sizes: dict[str, list[float]] = {}
        for logical, table in self.stack.resources.tables.items():
            for page in self.dynamodb.get_paginator("scan").paginate(TableName=table):
                for item in page.get("Items", []):
                    kind = logical
                    if logical == "inventory":
                        kind = "inventory-stock" if item["pk"]["S"].startswith("sku#") else "inventory-reservation"
                    if logical == "workflows":
                        sizes.setdefault("workflow-update-units", []).append(workflow_update_units(item))
                    sizes.setdefault(kind, []).append(item_size(item))
        return {kind: sum(values) / len(values) for kind, values in sizes.items()}


# --- cost model ------------------------------------------------------------------------------------

def load_pricing(path: Path = PRICING_FILE) -> dict[str, Any]:
    return json.loads(path.read_text())


def dynamodb_units(dynamodb_calls: Counter, tables: dict[str, str], sizes: dict[str, float]
                   ) -> tuple[float, float]:
    """(write units, read units) of the functions' DynamoDB calls, from each table's average item size.

    Updates of a workflow record cost its average units per update over its growth (see
    ``workflow_update_units``); other writes cost the table's average item size. Transactional writes
    cost twice; conditional writes that fail still cost.
    """
    by_name = {name: logical for logical, name in tables.items()}
    writes = reads = 0.0
    for key, count in dynamodb_calls.items():
        operation, _, table = key.partition("@")
        logical = by_name.get(table, table)
        if logical == "inventory":
            size = sizes.get("inventory-reservation", 1024)
            if operation == "TransactWriteItems":  # stock items and the reservation record
                size = (sizes.get("inventory-stock", 100) + size) / 2
        else:
            size = sizes.get(logical, 1024)
        if operation == "UpdateItem" and logical == "workflows" and "workflow-update-units" in sizes:
            writes += count * sizes["workflow-update-units"]
        elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
            writes += count * write_units(size)
        elif operation == "TransactWriteItems":
            writes += count * 2 * write_units(size)
        elif operation in ("GetItem", "Query", "Scan"):
            reads += count * read_units(size, consistent=True)
    return writes, reads


def ms_per_record(run: LevelRun) -> dict[str, float]:
    """Each function's busy time per record in ``run`` (ms)."""
    return {name: u["busy_ms"] / u["records"] for name, u in run.lambda_usage.items() if u["records"]}


def agentbus_usage(run: LevelRun, tables: dict[str, str], sizes: dict[str, float],
                   manifest: Manifest = MANIFEST, durations_ms: dict[str, float] | None = None) -> dict[str, float]:
    """Per-order billed usage of agentbus on AWS, from a parallel run's counts.

    Lambda duration: ``durations_ms`` (ms per record, by function) times the records each function handled,
    when given; else the run's own busy time.
    """
    calls = run.calls
    assert calls is not None
    orders = run.concurrency
    billed = calls.by_role["function"] + calls.by_role["poller"]
    deliveries = sum(u["records"] for u in run.lambda_usage.values())  # EventBridge -> SQS SendMessage
    sqs_requests = sum(c for k, c in billed.items() if k.startswith("sqs:")) + deliveries
    gb_s = sum((u["records"] * durations_ms[name] if durations_ms and name in durations_ms else u["busy_ms"])
               / 1000 * manifest.consumer(name).memory_mb / 1024 for name, u in run.lambda_usage.items())
    writes, reads = dynamodb_units(calls.dynamodb, tables, sizes)
    return {
        "eventbridge_events": calls.put_entries["function"] / orders,
        "sqs_requests": sqs_requests / orders,
        "lambda_requests": sum(u["invocations"] for u in run.lambda_usage.values()) / orders,
        "lambda_gb_s": gb_s / orders,
        "dynamodb_write_units": writes / orders,
        "dynamodb_read_units": reads / orders,
        # One-time deadline schedules are created and deleted (API calls, not billed) but never fire.
        "scheduler_invocations": 0.0,
    }


# --- running it ------------------------------------------------------------------------------------

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


def _level_timeout(concurrency: int) -> float:
    return 120 + concurrency * 1.0


def run_bench(quick: bool = False, levels: list[int] | None = None, work_profile: dict[str, int] | None = None,
              output: str = "bench/results.json", chart: str = "bench/chart.html",
              console: Console | None = None) -> int:
    console = console or Console(highlight=False)
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # EMF lines would flood the console
    levels = list(levels or (QUICK_LEVELS if quick else DEFAULT_LEVELS))
    profile = dict(DEFAULT_WORK_PROFILE if work_profile is None else work_profile)
    slowest = max(profile.values(), default=0)
    pricing = load_pricing()
    run_id = uuid.uuid4().hex[:6]
    started = time.time()
    console.print(f"[bold]agentbus bench[/bold] — levels {', '.join(map(str, levels))}; simulated agent work "
                  + (", ".join(f"{k} {v} ms" for k, v in profile.items()) or "none")
                  + "; end to end = harness PutEvents → outcome event observed on the bus")

    runs: dict[str, dict[int, LevelRun]] = {"parallel": {}, "chained": {}}
    sizes: dict[str, float] = {}
    tables: dict[str, str] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        for mode in ("parallel", "chained"):
            startup = progress.add_task(f"{mode}: starting the local stack", total=None)
            with Harness(chained=mode == "chained", work_profile=profile) as harness:
                harness.run_level(1, f"{run_id}-warmup", timeout_s=_level_timeout(1))  # cold paths, not measured
                progress.remove_task(startup)
                for level in levels:
                    task = progress.add_task(f"{mode:>8} × {level:<5}", total=level)
                    run = harness.run_level(level, run_id, timeout_s=_level_timeout(level),
                                            progress=lambda n, t=task: progress.advance(t, n))
                    progress.update(task, completed=run.completed)
                    runs[mode][level] = run
                    if run.missing:
                        progress.console.print(f"[red]{mode} × {level}: no outcome for {len(run.missing)} orders[/red]")
                if mode == "parallel":
                    sizes = harness.item_sizes()
                    tables = dict(harness.stack.resources.tables)

    results = build_results(runs, levels, profile, slowest, pricing, sizes, tables)
    results["duration_s"] = round(time.time() - started, 1)
    print_results(console, results)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    chart_path = write_chart(Path(chart), results)
    console.print(f"\nresults: [cyan]{out}[/cyan]   chart: [cyan]{chart_path}[/cyan]")
    incomplete = [f"{m} × {lv}" for m in runs for lv, r in runs[m].items() if r.missing]
    return 1 if incomplete else 0


def build_results(runs: dict[str, dict[int, LevelRun]], levels: list[int], profile: dict[str, int], slowest: int,
                  pricing: dict[str, Any], sizes: dict[str, float], tables: dict[str, str]) -> dict[str, Any]:
    level_rows = []
    for level in levels:
        parallel, chained = runs["parallel"][level], runs["chained"][level]
        row: dict[str, Any] = {"concurrency": level}
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

    # Calls and cost from the largest parallel level (the most orders to amortize the pollers' idle receives).
    largest = runs["parallel"][max(levels)]
    calls = largest.calls
    assert calls is not None
    orders = largest.concurrency
    system = system_calls(calls.wire, [calls.by_role["harness"], calls.by_role["emulation"]])
    # Lambda duration per record from the smallest level: there the local endpoint is not queueing calls,
    # so a function's time is its work plus uncontended calls (under load, the emulator's queue would be
    # billed as Lambda time). Both sides use the same figures.
    durations_level = min(levels) if ms_per_record(runs["parallel"][min(levels)]) else max(levels)
    durations = ms_per_record(runs["parallel"][durations_level])
    usage = agentbus_usage(largest, tables, sizes, durations_ms=durations)
    prices = pricing["prices"]
    agentbus_cost = cost_per_million(usage, prices)
    agents = {a.name: {"ms_per_record": durations.get(a.name, 0.0), "memory_mb": a.memory_mb}
              for a in MANIFEST.agents}
    order_writes = write_units(sizes.get("orders", 1024))
    inventory_writes = 2 * 2 * write_units((sizes.get("inventory-stock", 100) + sizes.get(
        "inventory-reservation", 1024)) / 2)  # one line + the reservation record, transactional
    level_one = next((r for r in level_rows if r["concurrency"] == min(levels) and "p50_ms" in r), None)
    sfn_usage = step_functions_usage(
        pricing["step_functions"], agents, end_to_end_ms=level_one["p50_ms"] if level_one else slowest,
        order_write_units=order_writes, inventory_write_units=inventory_writes)
    standard = cost_per_million(sfn_usage["standard"], prices)
    express = cost_per_million(sfn_usage["express"], prices)
    by_role = {role: sum(c.values()) for role, c in calls.by_role.items()}
    return {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "work_profile_ms": profile,
        "slowest_agent_ms": slowest,
        "end_to_end": "from the harness's PutEvents call to the outcome event received by the harness's "
                      "observer queue (a rule on the bus); coordinator_duration_ms is the coordinator's own "
                      "timings.duration_ms (first sighting of the workflow to its finish)",
        "levels": level_rows,
        "api_calls_per_order": per_order(system, orders),
        "api_calls_measured_at_concurrency": orders,
        "api_calls_excluded_per_order": {
            "harness": round(by_role["harness"] / orders, 3),
            "local_emulation_only": round(by_role["emulation"] / orders, 3),
            "detail": {role: per_order(calls.by_role[role], orders) for role in ("harness", "emulation")
                       if calls.by_role[role]},
        },
        "poller_empty_receives_per_order": round(calls.empty_receives["poller"] / orders, 3),
        "eventbridge_to_sqs_deliveries_per_order": round(sum(u["records"] for u in largest.lambda_usage.values())
                                                         / orders, 3),
        "usage_per_order": {k: round(v, 6) for k, v in usage.items()},
        # The Lambda time per record both cost models bill (ms, by function), and the level it was measured at.
        "lambda_ms_per_record": {name: round(ms, 1) for name, ms in sorted(durations.items())},
        "lambda_ms_per_record_measured_at_concurrency": durations_level,
        "item_sizes_bytes": {k: round(v) for k, v in sizes.items() if k != "workflow-update-units"},
        "workflow_write_units_per_update": round(sizes.get("workflow-update-units", 0), 2),
        "cost_per_million_usd": agentbus_cost["total"],
        "cost_breakdown_per_million_usd": agentbus_cost,
        "step_functions_standard_cost_per_million_usd": standard["total"],
        "step_functions_standard_breakdown_per_million_usd": standard,
        "step_functions_express_cost_per_million_usd": express["total"],
        "step_functions_express_breakdown_per_million_usd": express,
        "cost_ratio_agentbus_over_standard": ratio(agentbus_cost["total"], standard["total"]),
        "idle_polling": idle_polling(pricing, len(MANIFEST.consumers)),
        "pricing": {"region": pricing["region"], "as_of": pricing["as_of"], "prices": prices},
        "assumptions": pricing["assumptions"],
    }


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def print_results(console: Console, results: dict[str, Any]) -> None:
    table = Table(title="end to end per order (ms): harness PutEvents → outcome observed", title_justify="left")
    for column in ("orders at once", "p50", "p95", "p99", "orders/s", "p50 ÷ slowest agent",
                   "chained p50", "chained ÷ parallel", "coordinator p50"):
        table.add_column(column, justify="right")
    for row in results["levels"]:
        chained = row.get("chained", {})
        table.add_row(str(row["concurrency"]), _fmt(row.get("p50_ms")), _fmt(row.get("p95_ms")),
                      _fmt(row.get("p99_ms")), _fmt(row.get("throughput_orders_per_s"), 1),
                      _fmt(row.get("overhead_ratio"), 2), _fmt(chained.get("p50_ms")),
                      _fmt(row.get("chained_over_parallel"), 2),
                      _fmt(row.get("coordinator_duration_ms", {}).get("p50_ms")))
    console.print()
    console.print(table)
    calls = results["api_calls_per_order"]
    console.print(f"\nAWS API calls per order (on the wire, {results['api_calls_measured_at_concurrency']} orders; "
                  f"harness and local-only calls excluded): [bold]{calls['total']}[/bold]")
    console.print("  " + ", ".join(f"{k} {v}" for k, v in calls.items() if k != "total"))
    excluded = results["api_calls_excluded_per_order"]
    console.print(f"  excluded per order: harness {excluded['harness']} (its PutEvents, observer queue, checks), "
                  f"local emulation only {excluded['local_emulation_only']} (pause checks, schedule listing); "
                  f"poller receives that came back empty: {results['poller_empty_receives_per_order']} per order")
    console.print(f"  not visible on the wire but billed: EventBridge → SQS deliveries "
                  f"{results['eventbridge_to_sqs_deliveries_per_order']} per order (counted as SQS requests)")
    cost = results["cost_breakdown_per_million_usd"]
    pricing = results["pricing"]
    console.print(f"\ncost per million orders ({pricing['region']}, prices of {pricing['as_of']}):"
                  f" agentbus [bold]${cost['total']:,.2f}[/bold] ("
                  + ", ".join(f"{k} ${v:,.2f}" for k, v in cost.items() if k != "total") + ")")
    console.print(f"  Step Functions Standard ${results['step_functions_standard_cost_per_million_usd']:,.2f}, "
                  f"Express ${results['step_functions_express_cost_per_million_usd']:,.2f} "
                  f"(same agents, same work); agentbus ÷ Standard = {results['cost_ratio_agentbus_over_standard']}")
    idle = results["idle_polling"]
    console.print(f"  idle: Lambda pollers make ~{idle['receives_per_minute_per_queue']:.0f} empty receives a minute "
                  f"per queue ≈ {idle['receives_per_month'] / 1e6:.1f} M a month ≈ ${idle['usd_per_month']} a month, "
                  "whatever the traffic")
    console.print("assumptions:")
    for line in results["assumptions"]:
        console.print(f"  - {line}")
    m = results["machine"]
    console.print(f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, Python {m['python']}, "
                  f"moto {m['moto']}; run took {results.get('duration_s', '?')} s")


# --- chart -----------------------------------------------------------------------------------------

def write_chart(path: Path, results: dict[str, Any]) -> Path:
    """Latency against concurrency, parallel and chained: a PNG (matplotlib) or a self-contained HTML page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [r for r in results["levels"] if "p50_ms" in r]
    series = {
        "parallel p50": [r["p50_ms"] for r in rows],
        "parallel p95": [r["p95_ms"] for r in rows],
        "chained p50": [r.get("chained", {}).get("p50_ms") for r in rows],
        "chained p95": [r.get("chained", {}).get("p95_ms") for r in rows],
    }
    levels = [r["concurrency"] for r in rows]
    if path.suffix.lower() == ".png":
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(8, 5))
        for name, values in series.items():
            axes.plot(levels, values, marker="o", linestyle="-" if "p50" in name else "--", label=name)
        axes.axhline(results["slowest_agent_ms"], color="grey", linewidth=0.8, label="slowest agent")
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("orders put at once")
        axes.set_ylabel("end to end (ms)")
        axes.set_title("agentbus: parallel vs chained, end to end per order")
        axes.legend()
        figure.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(figure)
        return path.resolve()
    path.write_text(_chart_html(levels, series, results))
    return path.resolve()


def _chart_html(levels: list[int], series: dict[str, list[float | None]], results: dict[str, Any]) -> str:
    width, height, left, bottom, top, right = 760, 420, 70, 50, 30, 170
    values = [v for vs in series.values() for v in vs if v] + [results["slowest_agent_ms"] or 1]
    low, high = math.log10(max(1.0, min(values) / 1.5)), math.log10(max(values) * 1.5)

    def x(index: int) -> float:
        return left + (index + 0.5) * (width - left - right) / max(1, len(levels))

    def y(value: float) -> float:
        return height - bottom - (math.log10(value) - low) / ((high - low) or 1) * (height - bottom - top)

    colours = {"parallel p50": "#4e79a7", "parallel p95": "#a0cbe8", "chained p50": "#e15759",
               "chained p95": "#ff9d9a"}
    parts = []
    for exponent in range(math.floor(low), math.ceil(high) + 1):
        for mantissa in (1, 2, 5):
            value = mantissa * 10 ** exponent
            if 10 ** low <= value <= 10 ** high:
                parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                             f'stroke="#eee"/><text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end">'
                             f'{value:,.0f}</text>')
    for index, level in enumerate(levels):
        parts.append(f'<text x="{x(index):.1f}" y="{height - bottom + 18}" text-anchor="middle">{level}</text>')
    slowest = results["slowest_agent_ms"]
    if slowest:
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(slowest):.1f}" y2="{y(slowest):.1f}" '
                     f'stroke="#999" stroke-dasharray="4 3"/><text x="{width - right + 6}" y="{y(slowest) + 4:.1f}">'
                     f'slowest agent</text>')
    for row, (name, vs) in enumerate(series.items()):
        points = [(x(i), y(v)) for i, v in enumerate(vs) if v]
        dash = "" if "p50" in name else ' stroke-dasharray="6 4"'
        parts.append(f'<polyline fill="none" stroke="{colours[name]}" stroke-width="2"{dash} points="'
                     + " ".join(f"{px:.1f},{py:.1f}" for px, py in points) + '"/>')
        parts += [f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colours[name]}"><title>{html.escape(name)}: '
                  f'{v:,.0f} ms</title></circle>' for (px, py), v in zip(points, [v for v in vs if v], strict=True)]
        parts.append(f'<rect x="{width - right + 6}" y="{top + row * 20}" width="14" height="4" '
                     f'fill="{colours[name]}"/><text x="{width - right + 26}" y="{top + row * 20 + 6}">'
                     f'{html.escape(name)}</text>')
    parts.append(f'<text x="{(left + width - right) / 2}" y="{height - 12}" text-anchor="middle">orders put at once'
                 f'</text><text transform="translate(16,{(height - bottom + top) / 2}) rotate(-90)" '
                 f'text-anchor="middle">end to end, ms (log)</text>')
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           f'font-size="12">{"".join(parts)}</svg>')
    m = results["machine"]
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>agentbus benchmark</title>
<style>body{{font-family:sans-serif;margin:24px;max-width:960px}}</style></head><body>
<h1>agentbus benchmark — parallel vs chained</h1>
<p>End to end per order (harness PutEvents → outcome event observed), on the local runtime with simulated agent
work {html.escape(", ".join(f"{k} {v} ms" for k, v in results["work_profile_ms"].items()))}.
Measured {html.escape(results["generated_at"])} on {html.escape(str(m["cpu"]))}, {m["cores"]} cores.</p>
{svg}</body></html>
"""


# --- soak ------------------------------------------------------------------------------------------

SOAK_ORDER_FILES = ("events/order-placed.json", "events/orders-batch.json", "events/order-placed-over-limit.json")


def soak_orders(count: int, run_id: str) -> list[dict[str, Any]]:
    """``count`` orders cycling through the sample orders (completions and rejections), under new ids."""
    samples: list[dict[str, Any]] = []
    for name in SOAK_ORDER_FILES:
        loaded = json.loads((REPO_ROOT / name).read_text())
        samples += loaded if isinstance(loaded, list) else [loaded]
    entries = []
    for index in range(count):
        sample = samples[index % len(samples)]
        detail = {**json.loads(sample["Detail"]), "order_id": f"soak-{run_id}-{index:05d}"}
        entries.append({"Source": sample["Source"], "DetailType": sample["DetailType"], "Detail": json.dumps(detail)})
    return entries


def run_soak(orders: int = 1000, chaos_rate: float = 0.2, seed: int | None = None,
             console: Console | None = None, *, deadline_s: int = 120, timeout_s: float | None = None) -> int:
    from agentbus import invariants
    from agentbus.local.chaos import Chaos

    console = console or Console(highlight=False)
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    chaos = Chaos(chaos_rate, seed=seed)
    run_id = uuid.uuid4().hex[:6]
    entries = soak_orders(orders, run_id)
    order_ids = [json.loads(e["Detail"])["order_id"] for e in entries]
    timeout_s = timeout_s if timeout_s is not None else 300 + orders * 1.0
    console.print(f"[bold]agentbus soak[/bold] — {orders} orders, chaos {chaos_rate} (seed {seed}): duplicates, "
                  f"crashes before/after the handler, delays, PutEvents partial failures; deadline {deadline_s}s")
    started = time.time()
    with LocalStack(options=RuntimeOptions(deadline_seconds=deadline_s, chaos=chaos)) as stack:
        resources = stack.resources
        seen = Counter()
        lock = threading.Lock()
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as progress:
            task = progress.add_task("orders with an outcome", total=orders)

            def on_event(event: ObservedEvent) -> None:
                if event.detail_type in observer.terminal_types:
                    with lock:
                        first = event.workflow_id not in seen
                        seen[event.workflow_id] += 1
                    if first:
                        progress.advance(task)

            observer = BusObserver(stack.client("events"), stack.client("sqs"), resources.bus_name,
                                   on_event=on_event).start()
            events = stack.client("events")
            for start in range(0, len(entries), PUT_BATCH):
                batch = [{**e, "EventBusName": resources.bus_name} for e in entries[start:start + PUT_BATCH]]
                response = events.put_events(Entries=batch)
                if response.get("FailedEntryCount"):
                    raise RuntimeError(f"PutEvents rejected {response['FailedEntryCount']} soak orders")
            pending = observer.wait_for_outcomes(order_ids, timeout_s)
        # Compensations, duplicate deliveries and retried messages may still be in flight: let them land.
        _drain(stack, timeout_s=60)
        report = invariants.check(stack.client("dynamodb"), resources, observer, {ORDERS: order_ids})
        observer.stop()
        stats = stack.runtime.stats
        dead_letters = _dead_letter_counts(stack)

    elapsed = time.time() - started
    console.print(f"\n{orders} orders in {elapsed:.0f} s; outcomes: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(report.outcomes.items())))
    console.print(f"outcome events delivered: {sum(seen.values())} for {len(seen)} orders "
                  f"({report.duplicate_deliveries} duplicate deliveries, each with the same idempotency key)")
    injected = ", ".join(f"{k} {v}" for k, v in sorted(chaos.injected.items())) or "nothing"
    console.print(f"chaos injected: {injected}")
    console.print("function invocations: " + ", ".join(
        f"{n} {s.invocations} ({s.failed_records} records retried, {s.crashed_invocations} crashed)"
        for n, s in stats.items()))
    console.print("dead letters: " + (", ".join(f"{k} {v}" for k, v in dead_letters.items() if v) or "none"))
    if pending:
        console.print(f"[red]no outcome within {timeout_s:.0f}s for {len(pending)} orders, e.g. "
                      f"{', '.join(sorted(pending)[:5])}[/red]")
    if report.held and not pending:
        console.print(f"[green]invariants held[/green]: every one of {orders} orders has exactly one outcome, stock "
                      "conserved (on hand + reserved = initial for every SKU), no reservation held by a failed "
                      "order, the orders table agrees with the outcome events")
        return 0
    for violation in report.violations[:50]:
        console.print(f"[red]  - {violation}[/red]")
    if len(report.violations) > 50:
        console.print(f"[red]  … and {len(report.violations) - 50} more[/red]")
    return 1


def _drain(stack: LocalStack, timeout_s: float) -> None:
    sqs = stack.client("sqs")
    deadline = time.monotonic() + timeout_s
    quiet = 0
    while time.monotonic() < deadline and quiet < 3:
        pending = 0
        for consumer in stack.resources.consumers.values():
            attributes = sqs.get_queue_attributes(QueueUrl=consumer.queue_url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed"])["Attributes"]
            pending += sum(int(v) for v in attributes.values())
        quiet = quiet + 1 if pending == 0 else 0
        time.sleep(0.5)


def _dead_letter_counts(stack: LocalStack) -> dict[str, int]:
    sqs = stack.client("sqs")
    counts = {}
    for name, consumer in stack.resources.consumers.items():
        attributes = sqs.get_queue_attributes(QueueUrl=consumer.dlq_url,
                                              AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        counts[name] = int(attributes.get("ApproximateNumberOfMessages", 0))
    return counts
