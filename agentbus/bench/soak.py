"""`agentbus soak`: mixed traffic of every workflow of the manifest under chaos (duplicates, crashes, delays,
PutEvents failures), every invariant of ``agentbus.invariants`` checked at the end, and each edge case's own
promise (``workload.soak_traffic``); non-zero exit if one fails.

The requests are paced, not put at once: at most ``in_flight`` coordinated requests wait for their outcome at
any time (``submit_paced``). Put all at once, 1,000 requests are a backlog of many minutes on a 2-core
emulator, far past any deadline, and the soak would measure the emulator's queue instead of the system: a
request whose trigger reaches the coordinator after its deadline ends TIMED_OUT, which is right for the
system and says nothing about what the soak checks (an unstorable value REJECTED naming its field). Paced, a
request waits for its outcome about as long as its own work plus the chaos done to it.

Its traffic is copies of each workflow's ``samples``, the requests its agents decide alone; never its
``people_samples``: a request that waits for a person has no outcome until someone answers, and a soak that
answered for them would check its own answers, not that every request gets exactly one outcome by itself. A copy
that waits for a person all the same (a sample that asks for one, listed in ``samples``) is found
(``agentbus.bench.people``), left out of the pacing and of the invariants, and reported as what it is, naming
the workflow; the soak then fails.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agentbus.bench.people import still_waiting, waiting_for_people, waits_for_a_person
from agentbus.bench.workload import SoakRequest, put_batches, soak_traffic, unsoaked
from agentbus.demo import counted
from agentbus.local.runtime import RuntimeOptions
from agentbus.local.stack import LocalStack
from agentbus.observe import BusObserver, ObservedEvent
from functions.common.spec import Manifest, Workflow
from functions.manifest import MANIFEST


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


DEFAULT_IN_FLIGHT = 50
# How often, at most, the soak asks which of its requests still without an outcome wait for a person.
PEOPLE_CHECK_S = 5.0


def submit_paced(batches: Sequence[Sequence[SoakRequest]], put: Callable[[Sequence[SoakRequest]], None],
                 outstanding: Callable[[], int], coordinated: set[str], in_flight: int, *,
                 max_wait_s: float = float("inf"), poll_s: float = 0.2,
                 sleep: Callable[[float], None] = time.sleep) -> None:
    """Put each batch of requests in turn, holding a batch back while the coordinated requests already put and
    still without an outcome (``outstanding()``) plus the batch's own would pass ``in_flight``. A batch is
    never held back when nothing is outstanding (so a batch larger than ``in_flight`` still goes), nor longer
    than ``max_wait_s``: outcomes that stop coming are then the run's finding, not a hang."""
    if in_flight < 1:
        raise ValueError(f"in_flight must be at least 1, got {in_flight}")
    for batch in batches:
        own = sum(1 for r in batch if r.workflow in coordinated)
        waited = 0.0
        while waited < max_wait_s:
            waiting = outstanding()
            if waiting == 0 or waiting + own <= in_flight:
                break
            sleep(poll_s)
            waited += poll_s
        put(batch)


def wait_for_results(observer: BusObserver, workflow: Workflow, ids: Sequence[str], timeout_s: float) -> set[str]:
    """Wait until every agent of a standalone workflow published its result for each id; the ids still waiting."""
    deadline = time.monotonic() + timeout_s
    sources = {a.source for a in workflow.agents}
    while True:
        pending = {i for i in ids if not sources <= {e.source for e in observer.events(i, workflow.name)}}
        if not pending or time.monotonic() >= deadline:
            return pending
        time.sleep(0.5)


def run_soak(count: int = 1000, chaos_rate: float = 0.2, seed: int | None = None,
             console: Console | None = None, *, deadline_s: int = 120, timeout_s: float | None = None,
             manifest: Manifest = MANIFEST, in_flight: int = DEFAULT_IN_FLIGHT) -> int:
    """``count`` requests of mixed traffic (``soak_traffic``) under chaos, at most ``in_flight`` coordinated
    ones waiting for their outcome at a time; 0 when every invariant held."""
    from agentbus import invariants
    from agentbus.local.chaos import Chaos

    console = console or Console(highlight=False)
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    chaos = Chaos(chaos_rate, seed=seed)
    run_id = uuid.uuid4().hex[:6]
    requests = soak_traffic(count, run_id, manifest)
    ids: dict[str, list[str]] = {}
    for request in requests:
        ids.setdefault(request.workflow, []).append(request.workflow_id)
    coordinated = {w.name for w in manifest.coordinated}
    awaited = [f"{r.workflow}/{r.workflow_id}" for r in requests if r.workflow in coordinated]
    kinds = Counter(r.kind for r in requests)
    timeout_s = timeout_s if timeout_s is not None else 300 + count * 1.0
    console.print(f"[bold]agentbus soak[/bold] — {counted(count, 'request')} ("
                  + ", ".join(f"{name} {len(v)}" for name, v in ids.items())
                  + f"; {kinds['conflict']} conflicting pairs, {kinds['unstorable']} unstorable values), "
                  f"chaos {chaos_rate} (seed {chaos.seed}): duplicates, crashes before/after the handler, delays, "
                  f"PutEvents partial failures; deadline {deadline_s}s; at most {in_flight} requests in flight")
    for line in unsoaked(manifest):
        console.print(f"  not soaked: {escape(line)}")
    started = time.time()
    with LocalStack(manifest=manifest, options=RuntimeOptions(deadline_seconds=deadline_s, chaos=chaos)) as stack:
        resources = stack.started_resources
        seen: Counter[str] = Counter()
        lock = threading.Lock()
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as progress:
            task = progress.add_task("requests with an outcome", total=len(awaited))
            put_task = progress.add_task("requests put", total=len(requests))

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
            dynamodb = stack.client("dynamodb")
            put_keys: set[str] = set()
            people: dict[str, list[str]] = {}  # workflow/id -> the external agents it waits for
            checked = [0.0]

            def find_people(keys: set[str]) -> None:
                if keys and time.monotonic() - checked[0] >= PEOPLE_CHECK_S:
                    checked[0] = time.monotonic()
                    people.update(waiting_for_people(dynamodb, resources, manifest, keys))

            def outstanding() -> int:
                with lock:
                    waiting = put_keys - seen.keys()
                find_people(waiting - people.keys())
                return len(waiting - people.keys())

            def put_batch(batch: Sequence[SoakRequest]) -> None:
                with lock:
                    put_keys.update(f"{r.workflow}/{r.workflow_id}" for r in batch if r.workflow in coordinated)
                response = events.put_events(Entries=[{**entry, "EventBusName": resources.bus_name}
                                                      for request in batch for entry in request.entries])
                if response.get("FailedEntryCount"):
                    raise RuntimeError(f"PutEvents rejected {response['FailedEntryCount']} soak entries: "
                                       + "; ".join(sorted({str(e.get("ErrorMessage")) for e in response["Entries"]
                                                           if e.get("ErrorCode")})))
                progress.advance(put_task, len(batch))

            # Every request has an outcome by its deadline: waiting much longer for room means outcomes stopped.
            submit_paced(put_batches(requests), put_batch, outstanding, coordinated, in_flight,
                         max_wait_s=2 * deadline_s + 60)
            # Until every request has its outcome, or those left wait for a person (nobody answers them here).
            deadline = time.monotonic() + timeout_s
            pending = observer.wait_for_outcomes(awaited, 1.0)
            while pending and not pending <= people.keys() and time.monotonic() < deadline:
                find_people(pending - people.keys())
                pending = observer.wait_for_outcomes(sorted(pending), 1.0)
            people = still_waiting(people, pending)
            pending -= people.keys()
            for name in ids:
                workflow = manifest.workflow(name)
                if not workflow.coordinated:
                    pending |= {f"{name}/{i}" for i in wait_for_results(observer, workflow, ids[name], 60)}
        # Compensations, duplicate deliveries and retried messages may still be in flight: let them land.
        _drain(stack, timeout_s=60)
        # A request that waits for a person has no outcome by design: reported below, not an invariant's case.
        decided = {name: [i for i in v if f"{name}/{i}" not in people] for name, v in ids.items()}
        report = invariants.check_until_held(stack.client("dynamodb"), resources, observer, decided, manifest)
        edge_violations = edge_case_violations(requests, observer)
        observer.stop()
        stats = stack.started_runtime.stats
        dead_letters = _dead_letter_counts(stack)

    elapsed = time.time() - started
    console.print(f"\n{counted(count, 'request')} in {elapsed:.0f} s; outcomes: "
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
    duplicates = counted(report.duplicate_deliveries, "duplicate delivery", "duplicate deliveries")
    console.print(f"outcome events delivered: {sum(seen.values())} for {counted(len(seen), 'request')} "
                  f"({duplicates}, each with the same idempotency key)")
    injected = ", ".join(f"{k} {v}" for k, v in sorted(chaos.injected.items())) or "nothing"
    console.print(f"chaos injected: {injected}")
    console.print("function invocations: " + ", ".join(
        f"{n} {s.invocations} ({s.failed_records} records retried, {s.crashed_invocations} crashed)"
        for n, s in stats.items()))
    console.print("dead letters: " + (", ".join(f"{k} {v}" for k, v in dead_letters.items() if v) or "none")
                  + (f" (the second version of each of {kinds['conflict']} conflicting pairs is refused, "
                     "dead-lettered with its reason, once per delivery: chaos's duplicates of it too)"
                     if kinds["conflict"] else ""))
    if pending:
        console.print(f"[red]nothing final within {timeout_s:.0f}s for {counted(len(pending), 'request')}, e.g. "
                      f"{', '.join(sorted(pending)[:5])}[/red]")
    by_workflow: dict[str, list[str]] = {}
    for key, agents in people.items():
        by_workflow.setdefault(key.split("/", 1)[0], []).extend(agents)
    for name, agents in sorted(by_workflow.items()):
        keys = sorted(k for k in people if k.startswith(f"{name}/"))
        console.print(f"[red]{escape(waits_for_a_person(name, agents, 'the soak'))} "
                      f"({counted(len(keys), 'request')}, e.g. "
                      f"{escape(', '.join(keys[:3]))})[/red]")
    violations = report.violations + edge_violations
    if not violations and not pending and not people:
        # Said of the edge cases only when some were put (black-box pass 20E, F5: a soak of 12 said it of none).
        edges = [what for kind, what in (("unstorable", "every unstorable value REJECTED naming its field"),
                                         ("conflict", "each conflicting pair's outcome counts one version"))
                 if kinds[kind]]
        console.print(f"[green]invariants held[/green]: each of {len(awaited)} coordinated requests has exactly one "
                      "outcome and its main table agrees; every standalone request got one result per agent and no "
                      "workflow record; each workflow's own invariants (its manifest's invariants check)"
                      + "".join(f"; {what}" for what in edges))
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
