"""The harness: a local stack of the manifest (parallel or chained), the requests put on the bus, what each
took end to end and which calls it made.

- **parallel**: the real topology, every agent subscribed to its workflow's trigger;
- **chained**: the same queues, pollers, functions and simulated times, provisioned from a manifest variant
  where the coordinated workflows' agents have no subscription (only the coordinator sees the trigger); the
  harness plays the sequential orchestrator (``ChainedOrchestrator``): it sends the delivered trigger envelope
  to the first agent's queue, waits for its result on the bus, then the next agent's, in manifest order. The
  coordinator gathers as usual.

End to end = from the harness's PutEvents call to the outcome event observed on the bus (a rule + queue of the
harness's own), plus the coordinator's own ``timings.duration_ms``.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agentbus.bench.accounting import CallCounter, CallSnapshot
from agentbus.bench.costs import item_size
from agentbus.bench.people import waiting_for_people, waits_for_a_person
from agentbus.bench.workload import PUT_BATCH, coordinated_workflows, entry_id, make_requests
from agentbus.local.runtime import RuntimeOptions
from agentbus.local.stack import LocalStack
from agentbus.observe import BusObserver, ObservedEvent
from agentbus.operations import OperationError
from functions.common.moments import iso_s
from functions.common.spec import WORKFLOW_TABLE, Manifest, Workflow
from functions.coordinator.layout import ITEM_MARK
from functions.manifest import MANIFEST

# Long enough that no deadline fires during a run: the benchmark measures the happy path.
BENCH_DEADLINE_S = 900
MODES = ("parallel", "chained")
# How often a level still waiting for outcomes asks whether its requests wait for a person instead (a workflow
# with external agents only; the harness's own calls, not counted in the run's).
PEOPLE_CHECK_S = 2.0


def level_timeout(concurrency: int) -> float:
    return 120 + concurrency * 1.0


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
    ids: list[str] = field(default_factory=list)  # the requests' workflow ids, in the order put

    @property
    def completed(self) -> int:
        return len(self.end_to_end_ms)

    @property
    def requests(self) -> int:
        """How many requests were put: ``concurrency`` in each of the run's rounds."""
        return len(self.ids) or self.concurrency


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
                        "source": event.source, "time": iso_s(datetime.now(UTC)),
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
    # The endpoint forked from the fork server (LocalEndpoint's ``fork``): `agentbus bench` starts a stack per mode
    # and sweep point. The program's main module must then not start a benchmark when it is imported.
    fork_endpoint: bool = False

    def __post_init__(self) -> None:
        self.stack = LocalStack(manifest=bench_manifest(self.manifest, chained=self.chained), meter_writes=True,
                                fork_endpoint=self.fork_endpoint,
                                options=RuntimeOptions(deadline_seconds=BENCH_DEADLINE_S,
                                                       simulated_work_ms=self.work_profile or None))
        self.counter.install(self.stack.session)
        self._progress: Callable[[int], None] | None = None
        self._current: str | None = None

    def __enter__(self) -> Harness:
        self.stack.start()
        self.counter.wire_source = self.stack.endpoint.wire_calls
        self.counter.write_units_source = self.stack.endpoint.write_units
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
                  progress: Callable[[int], None] | None = None,
                  make: Callable[[Workflow, str, int], list[dict[str, Any]]] | None = None,
                  abort: Callable[[], bool] | None = None, rounds: int = 1) -> LevelRun:
        """``concurrency`` requests of ``workflow`` put at once (made by ``make(workflow, prefix, count)`` if
        given, else by its workload), waited for until each has an outcome, ``timeout_s`` passes or ``abort()``
        says to give up (checked every second).

        ``rounds`` > 1 repeats that on a quiet stack (each round after the last one's outcomes and acknowledgements)
        and counts every round's requests, calls and Lambda usage in the one run: a level of one request is then a
        median of ``rounds`` single requests, not a single sample."""
        if rounds < 1:
            raise ValueError(f"rounds must be at least 1, got {rounds}")
        chosen = self.manifest.workflow(workflow) if workflow else coordinated_workflows(self.manifest)[0]
        mode = "chained" if self.chained else "parallel"
        self.settle()
        self._progress, self._current = progress, chosen.name
        stats_before = self._stats()
        calls_before = self.counter.snapshot()
        put_at: dict[str, float] = {}
        ids: list[str] = []
        missing: list[str] = []
        first_put, in_flight_s = time.time(), 0.0
        for round_index in range(rounds):
            prefix = f"bench-{run_id}-{mode}-{concurrency}" + (f"-r{round_index + 1}" if rounds > 1 else "")
            entries = make_requests(chosen, prefix, concurrency, make)
            round_ids = [entry_id(chosen, e) for e in entries]
            ids.extend(round_ids)
            if round_index:
                self.settle()
            round_started = time.time()
            self._put(entries, chosen, put_at)
            pending = {f"{chosen.name}/{i}" for i in round_ids}
            deadline = time.monotonic() + timeout_s
            checked = time.monotonic()
            while pending and time.monotonic() < deadline:
                pending = self.observer.wait_for_outcomes(sorted(pending), min(1.0, deadline - time.monotonic()))
                if pending and chosen.external and time.monotonic() - checked >= PEOPLE_CHECK_S:
                    # A copy of a sample that asks for a person has no outcome until someone answers: say so
                    # now, rather than wait the level's whole timeout in silence.
                    checked = time.monotonic()
                    waiting = waiting_for_people(self.dynamodb, self.stack.started_resources, self.manifest,
                                                 pending)
                    if waiting:
                        raise OperationError(waits_for_a_person(
                            chosen.name, [a for agents in waiting.values() for a in agents], "the benchmark"))
                if pending and abort is not None and abort():
                    break
            missing.extend(sorted(key.split("/", 1)[1] for key in pending))
            in_flight_s += self._last_outcome(chosen, round_ids, round_started) - round_started
            if missing and abort is not None and abort():
                break
        self.settle()
        calls = self.counter.snapshot() - calls_before
        stats_after = self._stats()
        self._progress = None

        end_to_end, coordinator = [], []
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
        usage = {name: {key: stats_after[name][key] - stats_before[name][key] for key in stats_after[name]}
                 for name in stats_after}
        # Throughput's span: the time requests were in flight, summed over the rounds (not the settling between).
        return LevelRun(mode, concurrency, end_to_end, coordinator, first_put, first_put + in_flight_s, statuses,
                        missing, calls, usage, workflow=chosen.name, ids=ids)

    def _put(self, entries: list[dict[str, Any]], workflow: Workflow, put_at: dict[str, float]) -> None:
        bus = self.stack.started_resources.bus_name
        for start in range(0, len(entries), PUT_BATCH):
            batch = [{**e, "EventBusName": bus} for e in entries[start:start + PUT_BATCH]]
            sent_at = time.time()
            response = self.events.put_events(Entries=batch)
            if response.get("FailedEntryCount"):
                raise RuntimeError(f"PutEvents rejected {response['FailedEntryCount']} benchmark requests")
            for entry in batch:
                put_at[entry_id(workflow, entry)] = sent_at

    def _last_outcome(self, workflow: Workflow, ids: list[str], started: float) -> float:
        """When the last of ``ids`` had its first outcome observed (``started`` if none had)."""
        firsts = [min(e.received_at for e in outcomes) for i in ids
                  if (outcomes := self.observer.outcomes(i, workflow.name))]
        return max(firsts, default=started)

    def _stats(self) -> dict[str, dict[str, float]]:
        return {name: dataclasses.asdict(s) for name, s in self.stack.started_runtime.stats.items()}

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

    def item_sizes(self, workflow: Workflow, ids: Collection[str] | None = None) -> dict[str, float]:
        """Average stored item size (bytes) per table ``workflow`` uses: the coordinator's table (its items only,
        headers and the items beside them, of the requests ``ids`` only if given), its main table, its agents'
        tables."""
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
                        if item.get("workflow", {}).get("S", "").partition(ITEM_MARK)[0] != workflow.name:
                            continue
                        if ids is not None and item.get("workflow_id", {}).get("S") not in ids:
                            continue
                    sizes.setdefault(logical, []).append(item_size(item))
        return {kind: sum(values) / len(values) for kind, values in sizes.items()}

