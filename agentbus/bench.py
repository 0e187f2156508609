"""`agentbus bench` and `agentbus soak`: what the orchestration costs, in time and in AWS API calls.

Benchmark (``run_bench``): every coordinated workflow of the manifest (or those named), on the local runtime,
with the simulated work time each agent declares (``Agent.simulated_work_ms``; for orders fraud 300 ms,
inventory 100 ms, shipping 200 ms) so the figures isolate the orchestration's own overhead. A workflow's
requests come from the manifest: its ``workload`` (an import path) if it declares one, else copies of its
first sample trigger under new ids. For each concurrency level N, N requests are put on the bus at once and
the harness measures, per request, **end to end = from the harness's PutEvents call to the outcome event
observed on the bus** (a rule + queue of the harness's own), plus the coordinator's own
``timings.duration_ms`` (first sighting of the workflow to its finish). Every level runs twice:

- **parallel**: the real topology, every agent subscribed to its workflow's trigger;
- **chained**: the same queues, pollers, functions and simulated times, provisioned from a manifest
  variant where the coordinated workflows' agents have no subscription (only the coordinator sees the
  trigger); the harness plays the sequential orchestrator: it sends the delivered trigger envelope to the
  first agent's queue, waits for its result on the bus, then the next agent's, in manifest order. The
  coordinator gathers as usual.

AWS API calls are counted on the wire (the endpoint's observer sees every request). Each call is also
attributed on the client side (a botocore hook, by the thread that made it) so the harness's own calls
(its PutEvents, its observer queue, its queue checks) and the calls that only exist locally (the pause
check of the emulated poller, the emulated Scheduler's listing) are excluded; the Lambda poller's
receives and deletes stay in: on AWS they are billed SQS requests too. From the counts and the pricing
table in ``bench/pricing.json`` come the cost per million requests, next to the same workflow on Step
Functions Standard and Express.

Soak (``run_soak``): mixed traffic of every workflow of the manifest (their samples under new ids, the same ids
in every workflow), with conflicting versions (two entries, one id, different contents) and values a table
cannot store, under chaos (duplicates, crashes, delays, PutEvents failures); every invariant of
``agentbus.invariants`` checked at the end, and each edge case's own promise; non-zero exit if one fails.
"""

from __future__ import annotations

import dataclasses
import functools
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
from functions.common.spec import WORKFLOW_TABLE, Workflow, resolve
from functions.manifest import MANIFEST, Manifest

DEFAULT_LEVELS = (1, 10, 100, 1000)
QUICK_LEVELS = (1, 10, 50)
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


def per_order(counts: Counter[str], orders: int) -> dict[str, float]:
    """``{"total": …, "service:Action": …}``: calls per order, largest first."""
    if orders <= 0:
        raise ValueError("per-order figures need at least one order")
    figures = {key: round(count / orders, 3) for key, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
               if count > 0}
    return {"total": round(sum(counts.values()) / orders, 3), **figures}


def system_calls(wire: Counter[str], excluded: Iterable[Counter[str]]) -> Counter[str]:
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
    lambda_gb_s = sum(a["ms_per_record"] / 1000 * a["memory_mb"] / 1024 for a in agents.values())
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

    by_role: dict[str, Counter[str]] = field(default_factory=lambda: {role: Counter() for role in THREAD_ROLES})
    empty_receives: Counter[str] = field(default_factory=Counter)  # by role
    put_entries: Counter[str] = field(default_factory=Counter)  # PutEvents entries, by role
    dynamodb: Counter[str] = field(default_factory=Counter)  # function calls as "Op@table" (TransactWriteItems: items)
    # The endpoint's own count of the calls it served so far, by "service:Action" (``LocalEndpoint.wire_calls``).
    wire_source: Callable[[], Counter[str]] = Counter
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
        wire: Counter[str] = Counter()
        for key, count in self.wire_source().items():
            wire[wire_key(*key.split(":", 1))] += count
        with self._lock:
            return CallSnapshot(wire,
                                {r: Counter(c) for r, c in self.by_role.items()}, Counter(self.empty_receives),
                                Counter(self.put_entries), Counter(self.dynamodb))


@dataclass
class CallSnapshot:
    wire: Counter[str]
    by_role: dict[str, Counter[str]]
    empty_receives: Counter[str]
    put_entries: Counter[str]
    dynamodb: Counter[str]

    def __sub__(self, other: CallSnapshot) -> CallSnapshot:
        return CallSnapshot(self.wire - other.wire, {r: self.by_role[r] - other.by_role[r] for r in self.by_role},
                            self.empty_receives - other.empty_receives, self.put_entries - other.put_entries,
                            self.dynamodb - other.dynamodb)


# --- requests: from the manifest -------------------------------------------------------------------

def coordinated_workflows(manifest: Manifest, names: Sequence[str] | None = None) -> list[Workflow]:
    """The workflows named (in the order given), or every coordinated one; a clear error for any other name."""
    coordinated = list(manifest.coordinated)
    if not names:
        if not coordinated:
            raise ValueError("the manifest has no coordinated workflow: nothing waits for an outcome to measure")
        return coordinated
    chosen = []
    for name in dict.fromkeys(names):
        try:
            workflow = manifest.workflow(name)
        except KeyError:
            raise ValueError(f"unknown workflow {name!r}; coordinated workflows: "
                             f"{', '.join(w.name for w in coordinated)}") from None
        if not workflow.coordinated:
            raise ValueError(f"workflow {name!r} is standalone (no outcome to wait for); coordinated workflows: "
                             f"{', '.join(w.name for w in coordinated)}")
        chosen.append(workflow)
    return chosen


def sample_triggers(workflow: Workflow) -> list[dict[str, Any]]:
    """The PutEvents entries of the workflow's samples (``Workflow.samples``) that open it, in file order."""
    entries = []
    for name in workflow.samples:
        loaded = json.loads((REPO_ROOT / name).read_text())
        for entry in loaded if isinstance(loaded, list) else [loaded]:
            if not workflow.trigger.matches(entry.get("Source", ""), entry.get("DetailType", "")):
                continue
            detail = json.loads(entry["Detail"])
            if isinstance(detail, dict) and detail.get(workflow.id_field) is not None:
                entries.append({key: entry[key] for key in ("Source", "DetailType", "Detail")})
    return entries


def with_id(entry: dict[str, Any], workflow: Workflow, workflow_id: str, **changes: Any) -> dict[str, Any]:
    """A copy of a trigger entry under another id (and other detail fields, if given)."""
    detail = {**json.loads(entry["Detail"]), **changes, workflow.id_field: workflow_id}
    return {"Source": entry["Source"], "DetailType": entry["DetailType"], "Detail": json.dumps(detail)}


def copy_samples(workflow: Workflow, prefix: str, count: int) -> list[dict[str, Any]]:
    """The default workload: ``count`` copies of the workflow's first sample trigger, ids ``<prefix>-00000``…"""
    triggers = sample_triggers(workflow)
    if not triggers:
        trigger = workflow.trigger.subscription
        raise ValueError(f"workflow {workflow.name!r} has no sample {'/'.join(trigger.detail_types)} event in its "
                         "samples: give it one, or a workload")
    return [with_id(triggers[0], workflow, f"{prefix}-{index:05d}") for index in range(count)]


def make_requests(workflow: Workflow, prefix: str, count: int) -> list[dict[str, Any]]:
    """The benchmark's ``count`` requests for ``workflow`` as PutEvents entries: its ``workload`` if it declares
    one, else copies of its first sample trigger; checked to be that many distinct triggers of the workflow."""
    make = resolve(workflow.workload) if workflow.workload else copy_samples
    entries = list(make(workflow, prefix, count))
    ids = []
    for entry in entries:
        if not workflow.trigger.matches(entry.get("Source", ""), entry.get("DetailType", "")):
            raise ValueError(f"workload of {workflow.name!r} made a {entry.get('DetailType')!r} entry from "
                             f"{entry.get('Source')!r}, not its trigger")
        ids.append(str(json.loads(entry["Detail"]).get(workflow.id_field)))
    if len(entries) != count or len(set(ids)) != count:
        raise ValueError(f"workload of {workflow.name!r} made {len(set(ids))} distinct requests, {count} asked")
    return entries


def request_id(workflow: Workflow, entry: dict[str, Any]) -> str:
    return str(json.loads(entry["Detail"])[workflow.id_field])


def default_work_profile(workflows: Iterable[Workflow]) -> dict[str, int]:
    """Each agent's simulated work time, as its manifest entry declares it."""
    return {a.name: a.simulated_work_ms for w in workflows for a in w.agents if a.simulated_work_ms}


# --- the harness -----------------------------------------------------------------------------------

def bench_manifest(manifest: Manifest = MANIFEST, *, chained: bool) -> Manifest:
    """The manifest as is (parallel), or with no agent of a coordinated workflow subscribed to anything
    (chained: the harness feeds each agent's queue in turn; the coordinator still sees the trigger and every
    result; compensations, derived, stay). Standalone subscriptions are left as they are."""
    if not chained:
        return manifest
    workflows = tuple(
        dataclasses.replace(w, agents=tuple(dataclasses.replace(a, subscriptions=()) for a in w.agents))
        if w.coordinated else w
        for w in manifest.workflows
    )
    return dataclasses.replace(manifest, workflows=workflows)


@dataclass
class LevelRun:
    mode: str
    concurrency: int
    end_to_end_ms: list[float]
    coordinator_ms: list[float]
    first_put: float
    last_outcome: float
    statuses: Counter[str]
    missing: list[str]
    calls: CallSnapshot | None = None
    lambda_usage: dict[str, dict[str, float]] = field(default_factory=dict)
    workflow: str = ""

    @property
    def completed(self) -> int:
        return len(self.end_to_end_ms)


class ChainedOrchestrator:
    """The harness as a sequential orchestrator, for any coordinated workflow: its trigger -> its first agent,
    that agent's successful result -> the next agent, in manifest order."""

    def __init__(self, sqs: Any, queue_urls: dict[str, str], workflows: Iterable[Workflow]) -> None:
        self.sqs = sqs
        self.queue_urls = queue_urls
        self.workflows = {w.name: w for w in workflows}
        self.envelopes: dict[tuple[str, str], dict[str, Any]] = {}
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="bench-chain")
        self._lock = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def on_event(self, event: ObservedEvent) -> None:
        workflow = self.workflows.get(event.workflow or "")
        if workflow is None or not event.workflow_id:
            return
        key = (workflow.name, event.workflow_id)
        if workflow.trigger.matches(event.source, event.detail_type):
            envelope: dict[str, Any] = {"version": "0", "id": str(uuid.uuid4()), "detail-type": event.detail_type,
                        "source": event.source, "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "region": "us-east-1", "resources": [], "detail": event.detail}
            with self._lock:
                if key in self.envelopes:
                    return
                self.envelopes[key] = envelope
            self._send(workflow.agents[0].name, envelope)
            return
        for index, agent in enumerate(workflow.agents[:-1]):
            if event.source == agent.source and event.detail.get("outcome") == "success":
                with self._lock:
                    forward = self.envelopes.get(key)
                if forward:
                    self._send(workflow.agents[index + 1].name, forward)
                return

    def _send(self, agent: str, envelope: dict[str, Any]) -> None:
        self._pool.submit(self.sqs.send_message, QueueUrl=self.queue_urls[agent], MessageBody=json.dumps(envelope))


@dataclass
class Harness:
    """One local stack (parallel or chained) of the whole manifest and what it takes to measure it; each
    level runs one coordinated workflow (the first of the manifest unless named)."""

    chained: bool
    work_profile: dict[str, int]
    counter: CallCounter = field(default_factory=CallCounter)
    manifest: Manifest = MANIFEST

    def __post_init__(self) -> None:
        self.stack = LocalStack(manifest=bench_manifest(self.manifest, chained=self.chained),
                                options=RuntimeOptions(deadline_seconds=BENCH_DEADLINE_S,
                                                       simulated_work_ms=self.work_profile or None))
        self.counter.install(self.stack.session)
        self._progress: Callable[[int], None] | None = None
        self._current: str | None = None

    def __enter__(self) -> Harness:
        self.stack.start()
        self.counter.wire_source = self.stack.endpoint.wire_calls
        resources = self.stack.started_resources
        self.events = self.stack.client("events")
        self.sqs = self.stack.client("sqs")
        self.dynamodb = self.stack.client("dynamodb")
        self.chain = ChainedOrchestrator(self.sqs, {n: c.queue_url for n, c in resources.consumers.items()},
                                         self.manifest.coordinated) if self.chained else None
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
            self.chain.on_event(event)
        if (event.detail_type in self.observer.terminal_types and event.workflow == self._current
                and self._progress):
            self._progress(1)

    def run_level(self, concurrency: int, run_id: str, *, timeout_s: float, workflow: str | None = None,
                  progress: Callable[[int], None] | None = None) -> LevelRun:
        chosen = self.manifest.workflow(workflow) if workflow else coordinated_workflows(self.manifest)[0]
        mode = "chained" if self.chained else "parallel"
        entries = make_requests(chosen, f"bench-{run_id}-{mode}-{concurrency}", concurrency)
        ids = [request_id(chosen, e) for e in entries]
        bus = self.stack.started_resources.bus_name
        self.settle()
        self._progress, self._current = progress, chosen.name
        stats_before = self._stats()
        calls_before = self.counter.snapshot()
        put_at: dict[str, float] = {}
        first_put = time.time()
        for start in range(0, len(entries), PUT_BATCH):
            batch = [{**e, "EventBusName": bus} for e in entries[start:start + PUT_BATCH]]
            sent_at = time.time()
            response = self.events.put_events(Entries=batch)
            if response.get("FailedEntryCount"):
                raise RuntimeError(f"PutEvents rejected {response['FailedEntryCount']} benchmark requests")
            for entry in batch:
                put_at[request_id(chosen, entry)] = sent_at
        pending = self.observer.wait_for_outcomes([f"{chosen.name}/{i}" for i in ids], timeout_s)
        missing = sorted(key.split("/", 1)[1] for key in pending)
        self.settle()
        calls = self.counter.snapshot() - calls_before
        stats_after = self._stats()
        self._progress = None

        end_to_end, coordinator, last = [], [], first_put
        statuses: Counter[str] = Counter()
        for workflow_id in ids:
            outcomes = self.observer.outcomes(workflow_id, chosen.name)
            if not outcomes:
                continue
            outcome = min(outcomes, key=lambda e: e.received_at)
            end_to_end.append((outcome.received_at - put_at[workflow_id]) * 1000)
            duration = (outcome.detail.get("timings") or {}).get("duration_ms")
            if duration is not None:
                coordinator.append(float(duration))
            statuses[outcome.detail.get("status", "?")] += 1
            last = max(last, outcome.received_at)
        usage = {name: {key: stats_after[name][key] - stats_before[name][key] for key in stats_after[name]}
                 for name in stats_after}
        return LevelRun(mode, concurrency, end_to_end, coordinator, first_put, last, statuses, missing, calls, usage,
                        workflow=chosen.name)

    def _stats(self) -> dict[str, dict[str, float]]:
        return {name: {"invocations": s.invocations, "records": s.records, "busy_ms": s.busy_ms}
                for name, s in self.stack.started_runtime.stats.items()}

    def settle(self, timeout_s: float = 10.0) -> None:
        """Wait until every queue is drained and the functions are idle (acknowledgements, mark-published)."""
        deadline = time.monotonic() + timeout_s
        previous = None
        while time.monotonic() < deadline:
            pending = 0
            for consumer in self.stack.started_resources.consumers.values():
                attributes = self.sqs.get_queue_attributes(QueueUrl=consumer.queue_url, AttributeNames=[
                    "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
                pending += sum(int(v) for v in attributes.values())
            records = sum(s["records"] for s in self._stats().values())
            if pending == 0 and records == previous:
                return
            previous = records
            time.sleep(0.2)

    def item_sizes(self, workflow: Workflow) -> dict[str, float]:
        """Average stored item size (bytes) per table ``workflow`` uses (the coordinator's table: its records
        only; its main table; its agents' tables), and its records' average write units per update
        (``workflow-update-units``)."""
        logical_names = [WORKFLOW_TABLE, *([workflow.projection.table] if workflow.projection else []),
                         *(t for a in workflow.agents for t in a.tables)]
        sizes: dict[str, list[float]] = {}
        for logical in dict.fromkeys(logical_names):
            table = self.stack.started_resources.tables.get(logical)
            if table is None:
                continue
            for page in self.dynamodb.get_paginator("scan").paginate(TableName=table):
                for item in page.get("Items", []):
                    if logical == WORKFLOW_TABLE:
                        if item.get("workflow", {}).get("S") != workflow.name:
                            continue
                        sizes.setdefault(UPDATE_UNITS, []).append(workflow_update_units(item))
                    sizes.setdefault(logical, []).append(item_size(item))
        return {kind: sum(values) / len(values) for kind, values in sizes.items()}


# --- cost model ------------------------------------------------------------------------------------

UPDATE_UNITS = "workflow-update-units"


def load_pricing(path: Path = PRICING_FILE) -> dict[str, Any]:
    pricing: dict[str, Any] = json.loads(path.read_text())
    return pricing


def dynamodb_units(dynamodb_calls: Counter[str], tables: dict[str, str], sizes: dict[str, float],
                   only: Iterable[str] | None = None) -> tuple[float, float]:
    """(write units, read units) of the functions' DynamoDB calls, from each table's average item size
    (of the tables named in ``only``, by logical name, if given).

    Updates of a workflow record cost its average units per update over its growth (see
    ``workflow_update_units``); other writes cost the table's average item size. Transactional writes
    cost twice; conditional writes that fail still cost.
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
        if operation == "UpdateItem" and logical == WORKFLOW_TABLE and UPDATE_UNITS in sizes:
            writes += count * sizes[UPDATE_UNITS]
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
    """Per-request billed usage of agentbus on AWS, from a parallel run's counts.

    Lambda duration: ``durations_ms`` (ms per record, by function) times the records each function handled,
    when given; else the run's own busy time.
    """
    calls = run.calls
    assert calls is not None
    requests = run.concurrency
    billed = calls.by_role["function"] + calls.by_role["poller"]
    deliveries = sum(u["records"] for u in run.lambda_usage.values())  # EventBridge -> SQS SendMessage
    sqs_requests = sum(c for k, c in billed.items() if k.startswith("sqs:")) + deliveries
    gb_s = sum((u["records"] * durations_ms[name] if durations_ms and name in durations_ms else u["busy_ms"])
               / 1000 * manifest.consumer(name).memory_mb / 1024 for name, u in run.lambda_usage.items())
    writes, reads = dynamodb_units(calls.dynamodb, tables, sizes)
    return {
        "eventbridge_events": calls.put_entries["function"] / requests,
        "sqs_requests": sqs_requests / requests,
        "lambda_requests": sum(u["invocations"] for u in run.lambda_usage.values()) / requests,
        "lambda_gb_s": gb_s / requests,
        "dynamodb_write_units": writes / requests,
        "dynamodb_read_units": reads / requests,
        # One-time deadline schedules are created and deleted (API calls, not billed) but never fire.
        "scheduler_invocations": 0.0,
    }


def agent_tables(workflow: Workflow, manifest: Manifest = MANIFEST) -> list[str]:
    """The tables ``workflow``'s agents write that the coordinator does not (their own side effects)."""
    coordinator = set(manifest.coordinator.tables) if manifest.coordinator else set()
    return [t for t in dict.fromkeys(t for a in workflow.agents for t in a.tables) if t not in coordinator]


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


MODES = ("parallel", "chained")


def run_bench(quick: bool = False, levels: list[int] | None = None, work_profile: dict[str, int] | None = None,
              output: str = "bench/results.json", chart: str = "bench/chart.html",
              console: Console | None = None, workflows: Sequence[str] | None = None,
              manifest: Manifest = MANIFEST) -> int:
    console = console or Console(highlight=False)
    try:
        chosen = coordinated_workflows(manifest, workflows)
    except ValueError as error:
        raise SystemExit(f"agentbus bench: {error}") from None
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # EMF lines would flood the console
    levels = list(levels or (QUICK_LEVELS if quick else DEFAULT_LEVELS))
    profile = dict(default_work_profile(chosen) if work_profile is None else work_profile)
    pricing = load_pricing()
    run_id = uuid.uuid4().hex[:6]
    started = time.time()
    console.print(f"[bold]agentbus bench[/bold] — {', '.join(w.name for w in chosen)}; levels "
                  f"{', '.join(map(str, levels))}; simulated agent work "
                  + (", ".join(f"{k} {v} ms" for k, v in profile.items()) or "none")
                  + "; end to end = harness PutEvents → outcome event observed on the bus")

    runs: dict[str, dict[str, dict[int, LevelRun]]] = {w.name: {mode: {} for mode in MODES} for w in chosen}
    sizes: dict[str, dict[str, float]] = {}
    tables: dict[str, str] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        for mode in MODES:
            startup = progress.add_task(f"{mode}: starting the local stack", total=None)
            with Harness(chained=mode == "chained", work_profile=profile, manifest=manifest) as harness:
                for workflow in chosen:  # cold paths, not measured
                    harness.run_level(1, f"{run_id}-warmup", timeout_s=_level_timeout(1), workflow=workflow.name)
                progress.remove_task(startup)
                for workflow in chosen:
                    for level in levels:
                        task = progress.add_task(f"{workflow.name} {mode:>8} × {level:<5}", total=level)
                        run = harness.run_level(level, run_id, timeout_s=_level_timeout(level),
                                                workflow=workflow.name,
                                                progress=functools.partial(progress.advance, task))
                        progress.update(task, completed=run.completed)
                        runs[workflow.name][mode][level] = run
                        if run.missing:
                            progress.console.print(f"[red]{workflow.name} {mode} × {level}: no outcome for "
                                                   f"{len(run.missing)} requests[/red]")
                    if mode == "parallel":
                        sizes[workflow.name] = harness.item_sizes(workflow)
                if mode == "parallel":
                    tables = dict(harness.stack.started_resources.tables)

    per_workflow = {
        w.name: build_results(runs[w.name], levels, {a.name: profile[a.name] for a in w.agents if a.name in profile},
                              max((profile.get(a.name, 0) for a in w.agents), default=0), pricing, sizes[w.name],
                              tables, workflow=w, manifest=manifest)
        for w in chosen
    }
    results = combine_results(per_workflow)
    results["duration_s"] = round(time.time() - started, 1)
    print_results(console, results)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    chart_path = write_chart(Path(chart), results)
    console.print(f"\nresults: [cyan]{out}[/cyan]   chart: [cyan]{chart_path}[/cyan]")
    incomplete = [f"{name} {m} × {lv}" for name, by_mode in runs.items() for m in by_mode
                  for lv, r in by_mode[m].items() if r.missing]
    return 1 if incomplete else 0


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
                  workflow: Workflow | None = None, manifest: Manifest = MANIFEST) -> dict[str, Any]:
    """One workflow's figures (the first coordinated workflow of the manifest unless given)."""
    workflow = workflow or coordinated_workflows(manifest)[0]
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

    # Calls and cost from the largest parallel level (the most requests to amortize the pollers' idle receives).
    largest = runs["parallel"][max(levels)]
    calls = largest.calls
    assert calls is not None
    requests = largest.concurrency
    system = system_calls(calls.wire, [calls.by_role["harness"], calls.by_role["emulation"]])
    # Lambda duration per record from the smallest level: there the local endpoint is not queueing calls,
    # so a function's time is its work plus uncontended calls (under load, the emulator's queue would be
    # billed as Lambda time). Both sides use the same figures.
    durations_level = min(levels) if ms_per_record(runs["parallel"][min(levels)]) else max(levels)
    durations = ms_per_record(runs["parallel"][durations_level])
    usage = agentbus_usage(largest, tables, sizes, manifest, durations_ms=durations)
    prices = pricing["prices"]
    agentbus_cost = cost_per_million(usage, prices)
    agents = {a.name: {"ms_per_record": durations.get(a.name, 0.0), "memory_mb": a.memory_mb}
              for a in workflow.agents}
    main_table_writes = write_units(sizes.get(workflow.projection.table, 1024)) if workflow.projection else None
    agent_writes, _ = dynamodb_units(calls.dynamodb, tables, sizes, only=agent_tables(workflow, manifest))
    level_one = next((r for r in level_rows if r["concurrency"] == min(levels) and "p50_ms" in r), None)
    sfn_usage = step_functions_usage(
        pricing["step_functions"], agents, end_to_end_ms=level_one["p50_ms"] if level_one else slowest,
        main_table_write_units=main_table_writes, agent_write_units=agent_writes / requests)
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
        "item_sizes_bytes": {k: round(v) for k, v in sizes.items() if k != UPDATE_UNITS},
        "workflow_write_units_per_update": round(sizes.get(UPDATE_UNITS, 0), 2),
        "cost_per_million_usd": agentbus_cost["total"],
        "cost_breakdown_per_million_usd": agentbus_cost,
        "step_functions_standard_cost_per_million_usd": standard["total"],
        "step_functions_standard_breakdown_per_million_usd": standard,
        "step_functions_express_cost_per_million_usd": express["total"],
        "step_functions_express_breakdown_per_million_usd": express,
        "cost_ratio_agentbus_over_standard": ratio(agentbus_cost["total"], standard["total"]),
        "idle_polling": idle_polling(pricing, len(manifest.consumers)),
        "pricing": {"region": pricing["region"], "as_of": pricing["as_of"], "prices": prices},
        "assumptions": pricing["assumptions"],
    }


def _fmt(value: Any, digits: int = 0) -> str:
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
                  f"moto {m['moto']}; run took {results.get('duration_s', '?')} s")


def _print_workflow(console: Console, name: str, results: dict[str, Any]) -> None:
    table = Table(title=f"{name}: end to end per request (ms): harness PutEvents → outcome observed",
                  title_justify="left")
    for column in ("requests at once", "p50", "p95", "p99", "requests/s", "p50 ÷ slowest agent",
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
    console.print(f"\nAWS API calls per request (on the wire, {results['api_calls_measured_at_concurrency']} requests; "
                  f"harness and local-only calls excluded): [bold]{calls['total']}[/bold]")
    console.print("  " + ", ".join(f"{k} {v}" for k, v in calls.items() if k != "total"))
    excluded = results["api_calls_excluded_per_order"]
    console.print(f"  excluded per request: harness {excluded['harness']} (its PutEvents, observer queue, checks), "
                  f"local emulation only {excluded['local_emulation_only']} (pause checks, schedule listing); "
                  f"poller receives that came back empty: {results['poller_empty_receives_per_order']} per request")
    console.print(f"  not visible on the wire but billed: EventBridge → SQS deliveries "
                  f"{results['eventbridge_to_sqs_deliveries_per_order']} per request (counted as SQS requests)")
    cost = results["cost_breakdown_per_million_usd"]
    pricing = results.get("pricing")
    prices_of = f" ({pricing['region']}, prices of {pricing['as_of']})" if pricing else ""
    console.print(f"cost per million requests{prices_of}: agentbus [bold]${cost['total']:,.2f}[/bold] ("
                  + ", ".join(f"{k} ${v:,.2f}" for k, v in cost.items() if k != "total") + ")")
    console.print(f"  Step Functions Standard ${results['step_functions_standard_cost_per_million_usd']:,.2f}, "
                  f"Express ${results['step_functions_express_cost_per_million_usd']:,.2f} "
                  f"(same agents, same work); agentbus ÷ Standard = {results['cost_ratio_agentbus_over_standard']}")


# --- chart -----------------------------------------------------------------------------------------

def chart_series(results: dict[str, Any]) -> tuple[list[int], dict[str, list[float | None]]]:
    """The levels and, per workflow, its parallel and chained p50 and p95 at each."""
    levels: list[int] = []
    series: dict[str, list[float | None]] = {}
    for name, figures in results["workflows"].items():
        rows = [r for r in figures["levels"] if "p50_ms" in r]
        levels = levels or [r["concurrency"] for r in rows]
        by_level = {r["concurrency"]: r for r in rows}
        for mode in MODES:
            for p in ("p50", "p95"):
                series[f"{name} {mode} {p}"] = [
                    (by_level[lv] if mode == "parallel" else by_level[lv].get("chained", {})).get(f"{p}_ms")
                    if lv in by_level else None for lv in levels]
    return levels, series


def write_chart(path: Path, results: dict[str, Any]) -> Path:
    """Latency against concurrency, parallel and chained, per workflow: a PNG (matplotlib) or an HTML page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    levels, series = chart_series(results)
    if path.suffix.lower() == ".png":
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(8, 5))
        for index, (name, values) in enumerate(series.items()):
            # matplotlib draws a None (a level not run) as a gap; its stubs want floats only.
            axes.plot(levels, values, marker="o",  # type: ignore[arg-type]
                      linestyle="-" if name.endswith("p50") else "--", label=name,
                      color=PALETTE[(index // 2) % len(PALETTE)])
        axes.axhline(results["slowest_agent_ms"], color="grey", linewidth=0.8,
                     label=f"slowest agent ({results['workflow']})")
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("requests put at once")
        axes.set_ylabel("end to end (ms)")
        axes.set_title("agentbus: parallel vs chained, end to end per request")
        axes.legend(fontsize="small")
        figure.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(figure)
        return path.resolve()
    path.write_text(_chart_html(levels, series, results))
    return path.resolve()


PALETTE = ("#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7")


def _chart_html(levels: list[int], series: dict[str, list[float | None]], results: dict[str, Any]) -> str:
    width, height, left, bottom, top, right = 860, 460, 70, 50, 30, 270
    values = [v for vs in series.values() for v in vs if v] + [results["slowest_agent_ms"] or 1]
    low, high = math.log10(max(1.0, min(values) / 1.5)), math.log10(max(values) * 1.5)

    def x(index: int) -> float:
        return left + (index + 0.5) * (width - left - right) / max(1, len(levels))

    def y(value: float) -> float:
        return height - bottom - (math.log10(value) - low) / ((high - low) or 1) * (height - bottom - top)

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
                     f'slowest agent ({html.escape(str(results["workflow"]))})</text>')
    for row, (name, vs) in enumerate(series.items()):
        colour = PALETTE[(row // 2) % len(PALETTE)]
        points = [(x(i), y(v)) for i, v in enumerate(vs) if v]
        dash = "" if name.endswith("p50") else ' stroke-dasharray="6 4"'
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="'
                     + " ".join(f"{px:.1f},{py:.1f}" for px, py in points) + '"/>')
        parts += [f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"><title>{html.escape(name)}: '
                  f'{v:,.0f} ms</title></circle>' for (px, py), v in zip(points, [v for v in vs if v], strict=True)]
        parts.append(f'<rect x="{width - right + 6}" y="{top + 20 + row * 18}" width="14" height="4" '
                     f'fill="{colour}"/><text x="{width - right + 26}" y="{top + 26 + row * 18}">'
                     f'{html.escape(name)}</text>')
    parts.append(f'<text x="{(left + width - right) / 2}" y="{height - 12}" text-anchor="middle">requests put at '
                 f'once</text><text transform="translate(16,{(height - bottom + top) / 2}) rotate(-90)" '
                 f'text-anchor="middle">end to end, ms (log)</text>')
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           f'font-size="12">{"".join(parts)}</svg>')
    m = results["machine"]
    work = "; ".join(f"{name}: " + ", ".join(f"{k} {v} ms" for k, v in r["work_profile_ms"].items())
                     for name, r in results["workflows"].items())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>agentbus benchmark</title>
<style>body{{font-family:sans-serif;margin:24px;max-width:1060px}}</style></head><body>
<h1>agentbus benchmark — parallel vs chained</h1>
<p>End to end per request (harness PutEvents → outcome event observed), on the local runtime with simulated agent
work ({html.escape(work)}).
Measured {html.escape(results["generated_at"])} on {html.escape(str(m["cpu"]))}, {m["cores"]} cores.</p>
{svg}</body></html>
"""


# --- soak ------------------------------------------------------------------------------------------

# In each coordinated workflow's share of the traffic, one request in EDGE_EVERY is a pair of conflicting
# versions and one an unstorable value (issue 10: each must end in exactly one published outcome).
EDGE_EVERY = 20
# An extra field no trigger model declares, with numbers DynamoDB cannot store (range 1e-130..1e126,
# 38 significant digits): each must be refused at validation with a reason naming the field.
UNSTORABLE_FIELD = "loyalty_points"
UNSTORABLE_EXTRAS = (1e308, 10 ** 39)  # 1e308; a 40-digit integer


@dataclass(frozen=True)
class SoakRequest:
    """One request of the soak: its entries go in one PutEvents call."""

    workflow: str
    workflow_id: str
    kind: str  # "sample", "conflict" (two versions, one id) or "unstorable"
    entries: tuple[dict[str, Any], ...]
    field: str | None = None  # unstorable: the field the rejection's reason must name


def first_float_path(value: Any, path: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
    """The path (keys and indexes) of the first non-integer number in a JSON value, or None."""
    if isinstance(value, float):
        return path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = first_float_path(item, (*path, key))
        if found is not None:
            return found
    return None


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replaced(value[path[0]], path[1:], new)
    return copy


def unstorable_variants(detail: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(the field a rejection must name, a detail with a value no table can store) for a valid trigger detail:
    the extra field ``loyalty_points`` as 1e308 and as a 40-digit integer, and its first decimal number (e.g.
    an order's ``unit_price``) as the string "NaN", when it has one."""
    variants = [(UNSTORABLE_FIELD, {**detail, UNSTORABLE_FIELD: value}) for value in UNSTORABLE_EXTRAS]
    path = first_float_path(detail)
    if path:
        variants.append((str(path[-1]), _replaced(detail, path, "NaN")))
    return variants


def soak_traffic(count: int, run_id: str, manifest: Manifest = MANIFEST,
                 edge_every: int = EDGE_EVERY) -> list[SoakRequest]:
    """``count`` requests, the workflows of the manifest in turn, each a copy of one of its sample triggers in
    turn (completions and rejections alike). Ids are the same in every workflow (``soak-<run>-00000``…: one
    workflow's request must not disturb another's with the same id). In each coordinated workflow's share, one
    request in ``edge_every`` is two conflicting versions (two different samples under one id, in one
    PutEvents call) and one is an unstorable value (``unstorable_variants``, in turn)."""
    workflows = [(w, sample_triggers(w)) for w in manifest.workflows]
    workflows = [(w, samples) for w, samples in workflows if samples]
    if not workflows:
        raise ValueError("no workflow of the manifest has a sample trigger to soak with")
    requests: list[SoakRequest] = []
    made: Counter[str] = Counter()
    for index in range(count):
        workflow, samples = workflows[index % len(workflows)]
        n = made[workflow.name]
        made[workflow.name] += 1
        workflow_id = f"soak-{run_id}-{n:05d}"
        sample = samples[n % len(samples)]
        edge, turn = n % edge_every, n // edge_every
        if workflow.coordinated and len(samples) > 1 and edge == edge_every // 3:
            first = samples[turn % len(samples)]
            # A different sample each turn, the first turn's from the middle of the list (for orders: the
            # first sample beside the over-limit one of the batch, the mouse-and-racks case of issue 10).
            second = samples[(turn + 1 + (len(samples) // 2 + turn) % (len(samples) - 1)) % len(samples)]
            versions = (with_id(first, workflow, workflow_id), with_id(second, workflow, workflow_id))
            requests.append(SoakRequest(workflow.name, workflow_id, "conflict", versions))
        elif workflow.coordinated and edge == 2 * edge_every // 3:
            variants = unstorable_variants(json.loads(sample["Detail"]))
            name, detail = variants[turn % len(variants)]
            entry = {**sample, "Detail": json.dumps(detail)}
            requests.append(SoakRequest(workflow.name, workflow_id, "unstorable",
                                        (with_id(entry, workflow, workflow_id),), field=name))
        else:
            entries = (with_id(sample, workflow, workflow_id),)
            requests.append(SoakRequest(workflow.name, workflow_id, "sample", entries))
    return requests


def put_batches(requests: Sequence[SoakRequest], size: int = PUT_BATCH) -> list[list[dict[str, Any]]]:
    """The requests' entries in PutEvents calls of at most ``size`` entries, a request never split."""
    batches: list[list[dict[str, Any]]] = [[]]
    for request in requests:
        if len(batches[-1]) + len(request.entries) > size:
            batches.append([])
        batches[-1].extend(request.entries)
    return [b for b in batches if b]


def edge_case_violations(requests: Sequence[SoakRequest], observer: BusObserver) -> list[str]:
    """What each edge case promises beyond the generic invariants: an unstorable value ends REJECTED with a
    reason naming its field; a conflicting pair's outcome counts results of one version of the trigger only."""
    violations = []
    for request in requests:
        if request.kind == "sample":
            continue
        outcomes = observer.outcomes(request.workflow_id, request.workflow)
        if not outcomes:
            continue  # reported by the generic invariants
        detail = outcomes[0].detail
        label = f"{request.workflow} {request.workflow_id} ({request.kind})"
        if request.kind == "unstorable":
            reason = str(detail.get("reason") or "")
            if detail.get("status") != "REJECTED" or (request.field or "") not in reason:
                violations.append(f"{label}: {detail.get('status')} with reason {reason!r}, expected REJECTED "
                                  f"naming {request.field!r}")
        elif request.kind == "conflict":
            versions = {r.get("trigger_digest") for r in (detail.get("results") or {}).values()
                        if isinstance(r, dict) and r.get("trigger_digest")}
            if len(versions) > 1:
                violations.append(f"{label}: the outcome counts results of {len(versions)} versions of the trigger")
    return violations


def wait_for_results(observer: BusObserver, workflow: Workflow, ids: Sequence[str], timeout_s: float) -> set[str]:
    """Wait until every agent of a standalone workflow published its result for each id; the ids still waiting."""
    deadline = time.monotonic() + timeout_s
    sources = {a.source for a in workflow.agents}
    while True:
        pending = {i for i in ids if not sources <= {e.source for e in observer.events(i, workflow.name)}}
        if not pending or time.monotonic() >= deadline:
            return pending
        time.sleep(0.5)


def run_soak(orders: int = 1000, chaos_rate: float = 0.2, seed: int | None = None,
             console: Console | None = None, *, deadline_s: int = 120, timeout_s: float | None = None,
             manifest: Manifest = MANIFEST) -> int:
    """``orders`` requests of mixed traffic (``soak_traffic``) under chaos; 0 when every invariant held."""
    from agentbus import invariants
    from agentbus.local.chaos import Chaos

    console = console or Console(highlight=False)
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    chaos = Chaos(chaos_rate, seed=seed)
    run_id = uuid.uuid4().hex[:6]
    requests = soak_traffic(orders, run_id, manifest)
    ids: dict[str, list[str]] = {}
    for request in requests:
        ids.setdefault(request.workflow, []).append(request.workflow_id)
    coordinated = {w.name for w in manifest.coordinated}
    awaited = [f"{r.workflow}/{r.workflow_id}" for r in requests if r.workflow in coordinated]
    kinds = Counter(r.kind for r in requests)
    timeout_s = timeout_s if timeout_s is not None else 300 + orders * 1.0
    console.print(f"[bold]agentbus soak[/bold] — {orders} requests ("
                  + ", ".join(f"{name} {len(v)}" for name, v in ids.items())
                  + f"; {kinds['conflict']} conflicting pairs, {kinds['unstorable']} unstorable values), "
                  f"chaos {chaos_rate} (seed {seed}): duplicates, crashes before/after the handler, delays, "
                  f"PutEvents partial failures; deadline {deadline_s}s")
    started = time.time()
    with LocalStack(manifest=manifest, options=RuntimeOptions(deadline_seconds=deadline_s, chaos=chaos)) as stack:
        resources = stack.started_resources
        seen: Counter[str] = Counter()
        lock = threading.Lock()
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as progress:
            task = progress.add_task("requests with an outcome", total=len(awaited))

            def on_event(event: ObservedEvent) -> None:
                if event.detail_type in observer.terminal_types:
                    key = f"{event.workflow}/{event.workflow_id}"
                    with lock:
                        first = key not in seen
                        seen[key] += 1
                    if first:
                        progress.advance(task)

            observer = BusObserver(stack.client("events"), stack.client("sqs"), resources.bus_name,
                                   manifest=manifest, on_event=on_event).start()
            events = stack.client("events")
            for batch in put_batches(requests):
                response = events.put_events(Entries=[{**e, "EventBusName": resources.bus_name} for e in batch])
                if response.get("FailedEntryCount"):
                    raise RuntimeError(f"PutEvents rejected {response['FailedEntryCount']} soak entries: "
                                       + "; ".join(sorted({str(e.get("ErrorMessage")) for e in response["Entries"]
                                                           if e.get("ErrorCode")})))
            pending = observer.wait_for_outcomes(awaited, timeout_s)
            for name in ids:
                workflow = manifest.workflow(name)
                if not workflow.coordinated:
                    pending |= {f"{name}/{i}" for i in wait_for_results(observer, workflow, ids[name], 60)}
        # Compensations, duplicate deliveries and retried messages may still be in flight: let them land.
        _drain(stack, timeout_s=60)
        report = invariants.check_until_held(stack.client("dynamodb"), resources, observer, ids, manifest)
        edge_violations = edge_case_violations(requests, observer)
        observer.stop()
        stats = stack.started_runtime.stats
        dead_letters = _dead_letter_counts(stack)

    elapsed = time.time() - started
    console.print(f"\n{orders} requests in {elapsed:.0f} s; outcomes: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(report.outcomes.items())))
    for name in ids:
        statuses = Counter(str(observer.outcomes(i, name)[0].detail.get("status")) for i in ids[name]
                           if observer.outcomes(i, name))
        if statuses:
            console.print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
    for kind in ("conflict", "unstorable"):
        statuses = Counter(str(observer.outcomes(r.workflow_id, r.workflow)[0].detail.get("status"))
                           for r in requests if r.kind == kind and observer.outcomes(r.workflow_id, r.workflow))
        if kinds[kind]:
            console.print(f"  {kind} ({kinds[kind]}): " + (", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
                                                          or "no outcome"))
    console.print(f"outcome events delivered: {sum(seen.values())} for {len(seen)} requests "
                  f"({report.duplicate_deliveries} duplicate deliveries, each with the same idempotency key)")
    injected = ", ".join(f"{k} {v}" for k, v in sorted(chaos.injected.items())) or "nothing"
    console.print(f"chaos injected: {injected}")
    console.print("function invocations: " + ", ".join(
        f"{n} {s.invocations} ({s.failed_records} records retried, {s.crashed_invocations} crashed)"
        for n, s in stats.items()))
    console.print("dead letters: " + (", ".join(f"{k} {v}" for k, v in dead_letters.items() if v) or "none")
                  + (f" (the second version of each of {kinds['conflict']} conflicting pairs is refused, "
                     "dead-lettered with its reason)" if kinds["conflict"] else ""))
    if pending:
        console.print(f"[red]nothing final within {timeout_s:.0f}s for {len(pending)} requests, e.g. "
                      f"{', '.join(sorted(pending)[:5])}[/red]")
    violations = report.violations + edge_violations
    if not violations and not pending:
        console.print(f"[green]invariants held[/green]: each of {len(awaited)} coordinated requests has exactly one "
                      "outcome and its main table agrees; every standalone request got one result per agent and no "
                      "workflow record; each workflow's own invariants (orders: stock conserved, nothing reserved "
                      "for an order that did not complete); every unstorable value REJECTED naming its field; each "
                      "conflicting pair's outcome counts one version")
        return 0
    for violation in violations[:50]:
        console.print(f"[red]  - {violation}[/red]")
    if len(violations) > 50:
        console.print(f"[red]  … and {len(violations) - 50} more[/red]")
    return 1


def _drain(stack: LocalStack, timeout_s: float) -> None:
    sqs = stack.client("sqs")
    deadline = time.monotonic() + timeout_s
    quiet = 0
    while time.monotonic() < deadline and quiet < 3:
        pending = 0
        for consumer in stack.started_resources.consumers.values():
            attributes = sqs.get_queue_attributes(QueueUrl=consumer.queue_url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed"])["Attributes"]
            pending += sum(int(v) for v in attributes.values())
        quiet = quiet + 1 if pending == 0 else 0
        time.sleep(0.5)


def _dead_letter_counts(stack: LocalStack) -> dict[str, int]:
    sqs = stack.client("sqs")
    counts = {}
    for name, consumer in stack.started_resources.consumers.items():
        attributes = sqs.get_queue_attributes(QueueUrl=consumer.dlq_url,
                                              AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        counts[name] = int(attributes.get("ApproximateNumberOfMessages", 0))
    return counts
