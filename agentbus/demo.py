"""`agentbus demo`: the main job on one machine, with no AWS account and nothing started by hand.

Starts a local endpoint, provisions the manifest's topology, runs the agents and the coordinator, puts every
workflow's sample requests on the bus (the manifest's ``samples``; ``--workflow`` picks some), shows each
event as it arrives, and ends with a summary per workflow (outcome, each agent's time, end to end next to the
sum of the agents: the chained alternative), the invariants of each, and a timeline picture of the run.

People in the loop: the demo also puts each chosen workflow's ``people_samples`` (requests that wait for a
person, declared in the manifest beside its ``samples``). When every other request has its outcome, it approves
each request that waits for a person through the code path of `agentbus approve` (``agentbus.approvals.answer``),
as the external agent it waits for (``approver``), and cancels a copy of the first one through the code path of
`agentbus cancel`: one completes after the approval, the other ends CANCELLED.
"""

from __future__ import annotations

import html
import json
import shlex
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agentbus import approvals, invariants
from agentbus.discovery import Deployment
from agentbus.local.chaos import Chaos
from agentbus.local.provision import REPO_ROOT
from agentbus.local.runtime import RuntimeOptions
from agentbus.local.stack import LocalStack
from agentbus.observe import BusObserver, ObservedEvent, locate_event, requests_of
from agentbus.operations import OperationError, check_writable, read_entries, workflow_status
from agentbus.reasoners import could_use_a_model
from agentbus.terminal import shown
from functions.common.spec import CANCEL_DETAIL_TYPE, ExternalAgent, Manifest, Workflow
from functions.manifest import MANIFEST

STATUS_STYLE = {"COMPLETED": "green", "REJECTED": "yellow", "TIMED_OUT": "red", "CANCELLED": "magenta"}
DEMO_OPERATOR = "demo (as an operator)"
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7")


def default_work_profile(manifest: Manifest = MANIFEST) -> dict[str, int]:
    """Each agent's simulated work time, as its manifest entry declares it."""
    return {a.name: a.simulated_work_ms for a in manifest.agents if a.simulated_work_ms}


@dataclass
class RequestSummary:
    workflow: str
    workflow_id: str
    status: str
    reason: str | None
    agent_ms: dict[str, float]
    end_to_end_ms: float
    put_to_outcome_ms: float
    timings: dict[str, Any]
    results: dict[str, dict[str, Any]]

    @property
    def agents_sum_ms(self) -> float:
        return sum(self.agent_ms.values())


def approver(agent: ExternalAgent) -> str:
    """Who the demo says answered for ``agent`` (the ``by`` of its answer): the agent and who it stands for."""
    return f"demo (as {agent.name}: {agent.kind})"


def load_entries(paths: list[str]) -> list[dict[str, Any]]:
    """The PutEvents entries of each file (relative to the repository), checked as `agentbus put` checks them."""
    entries = []
    for path in paths:
        entries += read_entries(str(Path(path) if Path(path).is_absolute() else REPO_ROOT / path))
    return entries


def summarize(workflow: str, workflow_id: str, outcome: ObservedEvent, put_at: float) -> RequestSummary:
    detail = outcome.detail
    timings = detail.get("timings", {})
    results = detail.get("results", {})
    agent_ms = {name: float(r.get("duration_ms", 0)) for name, r in results.items()}
    return RequestSummary(
        workflow=workflow, workflow_id=workflow_id, status=detail["status"], reason=detail.get("reason"),
        agent_ms=agent_ms, end_to_end_ms=float(timings.get("duration_ms") or 0),
        put_to_outcome_ms=(outcome.received_at - put_at) * 1000, timings=timings, results=results,
    )


def summarize_standalone(workflow: Workflow, workflow_id: str, events: list[ObservedEvent],
                         put_at: float) -> RequestSummary:
    """A standalone workflow has no outcome: its summary is its agents' results (``ANSWERED`` once they
    answered: a word of no workflow's own, as this summary serves every standalone workflow)."""
    results = {e.detail["agent"]: {**e.detail, "detail_type": e.detail_type} for e in events
               if e.detail.get("agent") and e.source in {a.source for a in workflow.agents}}
    agent_ms = {name: float(r.get("duration_ms", 0)) for name, r in results.items()}
    done = max((e.received_at for e in events if e.detail.get("agent")), default=put_at)
    reason = "; ".join(str(r.get("reason")) for r in results.values() if r.get("reason")) or None
    starts = [r["started_at"] for r in results.values() if r.get("started_at")]
    ends = [r["finished_at"] for r in results.values() if r.get("finished_at")]
    timings = {"started_at": min(starts) if starts else None, "finished_at": max(ends) if ends else None}
    return RequestSummary(workflow=workflow.name, workflow_id=workflow_id, status="ANSWERED" if results else "RUNNING",
                          reason=reason, agent_ms=agent_ms, end_to_end_ms=max(agent_ms.values(), default=0),
                          put_to_outcome_ms=(done - put_at) * 1000, timings=timings, results=results)


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """``1 request``, ``0 requests``, ``2 requests`` (black-box pass 10B, F7: "put 1 requests")."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def run_demo(*, chaos_rate: float = 0.0, deadline_s: int = 30, work_profile: dict[str, int] | None = None,
             event_files: list[str] | None = None, workflows: list[str] | None = None,
             timeline_path: str = "out/demo-timeline.html", seed: int | None = None, timeout_s: float = 120,
             interval_s: float = 0.5, console: Console | None = None, manifest: Manifest = MANIFEST) -> int:
    console = console or Console(highlight=False)
    try:
        chosen = [manifest.workflow(name) for name in workflows] if workflows else list(manifest.workflows)
    except KeyError as error:
        raise OperationError(str(error).strip(chr(34))) from None
    check_writable(Path(timeline_path), "--timeline")  # before the run, not after it (black-box pass 20E, F3)
    profile = default_work_profile(manifest) if work_profile is None else work_profile
    if event_files:
        entries = load_entries(list(event_files))
    else:  # the samples of every chosen workflow, then those that wait for a person
        entries = workflow_entries(chosen, "samples") + workflow_entries(chosen, "people_samples")
    chaos = Chaos(chaos_rate, seed=seed) if chaos_rate else None
    options = RuntimeOptions(deadline_seconds=deadline_s, simulated_work_ms=profile or None, chaos=chaos)

    names = ", ".join(w.name for w in chosen)
    console.print(f"[bold]agentbus demo[/bold] — {escape(names)} on a local AWS endpoint (moto)")
    with LocalStack(options=options, manifest=manifest) as stack:
        resources = stack.started_resources
        rules = len(manifest.rules())
        console.print(f"  endpoint {stack.url}: bus [cyan]{resources.bus_name}[/cyan] with archive, {rules} rules, "
                      f"{len(resources.consumers)} queues each with a DLQ, {len(resources.tables)} tables, seed data")
        for workflow in chosen:
            kind = (f"coordinated, deadline {deadline_s}s" if workflow.coordinated
                    else "standalone: nobody waits for it")
            agents_of = ", ".join(a.name for a in workflow.agents)
            console.print(f"  {escape(workflow.name)} ({kind}): agents {escape(agents_of)}")
        if models := could_use_a_model(a for w in chosen for a in w.agents):
            console.print(f"  {escape(models)}")
        if profile:
            console.print("  simulated agent work: " + ", ".join(f"{escape(k)} {v} ms" for k, v in profile.items()))
        if chaos:
            console.print(f"  [magenta]chaos {chaos_rate}[/magenta]: duplicates, crashes, delays, PutEvents failures")

        def show(event: ObservedEvent) -> None:
            detail = event.detail
            who = event.source.rsplit(".", 1)[-1]
            label = escape(shown(f"{event.workflow_id or '?':<10}"))
            if event.detail_type in observer.terminal_types:
                style = STATUS_STYLE.get(str(detail.get("status")), "white")
                reason = escape(shown(f" — {detail['reason']}")) if detail.get("reason") else ""
                console.print(f"  {label} [{style}]{escape(event.detail_type)}[/{style}]{reason}")
            elif detail.get("by"):  # a person's answer, or a cancel
                who = str(detail.get("agent") or "cancel")
                mark = "⊘" if event.detail_type == CANCEL_DETAIL_TYPE else "✓"
                console.print(f"  {label} {mark} {escape(shown(f'{who:<14}'))} {escape(event.detail_type)} by "
                              f"{escape(shown(str(detail['by'])))}")
            elif detail.get("agent"):
                ms = float(detail.get("duration_ms") or 0)
                mark = "✓" if detail.get("outcome") == "success" else "✗"
                console.print(f"  {label} {mark} {escape(f'{who:<14}')} {escape(event.detail_type)} ({ms:.0f} ms)")

        observer = BusObserver(stack.client("events"), stack.client("sqs"), resources.bus_name, manifest=manifest,
                               on_event=show).start()
        events = stack.client("events")
        put: list[tuple[str, str]] = []  # (workflow, id) in the order put
        put_at: dict[tuple[str, str], float] = {}
        rejected = 0  # sample entries the bus refused (e.g. a reserved source: only its owner may put it)
        if interval_s > 0:
            console.print(f"  requests arrive {interval_s:g} s apart (--interval 0 puts them all at once)")
        step = 10 if interval_s <= 0 else 1  # ten entries per PutEvents call at most
        for start in range(0, len(entries), step):
            if start and interval_s > 0:
                time.sleep(interval_s)
            batch = [{**e, "EventBusName": resources.bus_name} for e in entries[start:start + step]]
            now = time.time()
            response = events.put_events(Entries=batch)
            if response.get("FailedEntryCount"):
                console.print(f"[red]PutEvents rejected {response['FailedEntryCount']} entries[/red]")
            for entry, result in zip(batch, response.get("Entries", []), strict=False):
                if result.get("ErrorCode"):  # never on the bus: nothing to wait for, but say why
                    rejected += 1
                    console.print(f"  [red]{escape(shown(entry['DetailType']))} from {escape(shown(entry['Source']))}"
                                  f": {escape(shown(str(result['ErrorCode'])))}: "
                                  f"{escape(shown(str(result.get('ErrorMessage'))))}[/red]")
                    continue
                detail = json.loads(entry["Detail"])
                for key in requests_of(manifest, entry["DetailType"], entry["Source"], detail):
                    if key not in put_at:
                        put.append(key)
                        put_at[key] = now
        # One event may start requests of several workflows (a standalone one sharing a coordinated one's
        # trigger): then each is named with its workflow, not the same id twice.
        ids = [i for _, i in put]
        named = ids if len(set(ids)) == len(ids) else [f"{w}/{i}" for w, i in put]
        events_put = len(entries) - rejected
        console.print(f"  put {counted(len(put), 'request')} on the bus"
                      + (f" ({counted(events_put, 'event')})" if events_put != len(put) else "") + ": "
                      + escape(shown(", ".join(named))))

        coordinated = [f"{w}/{i}" for w, i in put if manifest.workflow(w).coordinated]
        deployment = Deployment(stack.session, stack.url, resources)
        waiting = _wait_for_outcomes_or_people(observer, deployment, manifest, coordinated, timeout_s)
        if waiting:
            for key in _people_in_the_loop(console, deployment, manifest, entries, waiting):
                put.append(key)
                put_at[key] = time.time()
        pending = _wait_for_requests(observer, manifest, put, timeout_s)
        pending |= _wait_for_follow_ons(console, observer, manifest, {w.name for w in chosen}, put, put_at, timeout_s)
        time.sleep(1.0)  # duplicate deliveries, if any, arrive now
        by_workflow: dict[str, list[str]] = {}
        for name, workflow_id in put:
            by_workflow.setdefault(name, []).append(workflow_id)
        # Compensations are eventual (under chaos, delayed and retried too): wait for them, boundedly.
        report = invariants.check_until_held(stack.client("dynamodb"), resources, observer, by_workflow, manifest,
                                             timeout_s=30)
        summaries = []
        for name, workflow_id in put:
            workflow = manifest.workflow(name)
            if workflow.coordinated and observer.outcomes(workflow_id, name):
                summaries.append(summarize(name, workflow_id, observer.outcomes(workflow_id, name)[0],
                                           put_at[(name, workflow_id)]))
            elif not workflow.coordinated:
                summaries.append(summarize_standalone(workflow, workflow_id, observer.events(workflow_id, name),
                                                      put_at[(name, workflow_id)]))
        observer.stop()
        stats = stack.started_runtime.stats

    for workflow in chosen:
        print_summary(console, workflow, [s for s in summaries if s.workflow == workflow.name], work_ms=profile,
                      chaos=chaos is not None)
    agents = [a.name for w in chosen for a in w.agents]
    path = write_timeline(Path(timeline_path), summaries, agents)
    console.print(f"\ntimeline of the run: [cyan]{escape(str(path))}[/cyan]", soft_wrap=True)  # a path to copy whole
    invocations = ", ".join(f"{name} {s.invocations}" for name, s in stats.items())
    console.print(f"function invocations: {escape(invocations)}")
    if chaos:
        injected = ", ".join(f"{k} {v}" for k, v in sorted(chaos.injected.items())) or "nothing"
        console.print(f"chaos injected: {injected}")
    if pending:
        console.print(f"[red]no outcome within {timeout_s:.0f}s for: {escape(', '.join(sorted(pending)))}[/red]")
    if report.held:
        ran = [manifest.workflow(name) for name in dict.fromkeys(name for name, _ in put)]
        own = [w.name for w in ran if w.invariants]
        duplicates = counted(report.duplicate_deliveries, "duplicate delivery", "duplicate deliveries")
        held = [f"one outcome each ({duplicates}, same idempotency key)",
                "main tables agree with the outcomes"]
        if own:
            held.append(f"the workflows' own invariants hold ({', '.join(own)})")
        if any(not w.coordinated for w in ran):
            held.append("standalone agents answered once and opened no record")
        console.print(f"[green]invariants held[/green] for {counted(report.workflows, 'request')}: "
                      + escape(", ".join(held)), soft_wrap=True)
        return 0 if not pending and not rejected else 1
    console.print("[red]invariant violations:[/red]")
    for violation in report.violations:
        console.print(f"  - {escape(violation)}")
    return 1


def workflow_entries(chosen: list[Workflow], field: str) -> list[dict[str, Any]]:
    """The entries of the chosen workflows' sample files (``samples`` or ``people_samples``), each file once (two
    workflows on one trigger may name the same sample); a file that cannot be read is an error naming its
    workflow (only the chosen workflows' files are read)."""
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for workflow in chosen:
        for path in getattr(workflow, field):
            if path in seen:
                continue
            seen.add(path)
            try:
                entries += load_entries([path])
            except OperationError as error:
                raise OperationError(f"workflow {workflow.name!r}: {field}: {error}") from None
    return entries


def _wait_for_outcomes_or_people(observer: BusObserver, deployment: Deployment, manifest: Manifest,
                                 keys: list[str], timeout_s: float) -> list[str]:
    """Wait until every workflow has its outcome or waits for a person; returns those that wait, in put order."""
    store = approvals.workflow_store(deployment, manifest)
    deadline = time.monotonic() + timeout_s
    while True:
        pending = observer.wait_for_outcomes(keys, 0.5)
        if not pending:
            return []
        waiting = {f"{v['workflow']}/{v['workflow_id']}" for v in store.waiting()}
        if pending <= waiting or time.monotonic() >= deadline:
            return [k for k in keys if k in pending & waiting]


def _people_in_the_loop(console: Console, deployment: Deployment, manifest: Manifest,
                        entries: list[dict[str, Any]], waiting: list[str]) -> list[tuple[str, str]]:
    """Approve every waiting request as `agentbus approve` does; put a copy of the first, wait until it waits
    for the person too, and cancel it as `agentbus cancel` does. Returns the (workflow, id) it put."""
    console.print("  [bold]people in the loop[/bold]")
    for key in waiting:
        name, workflow_id = key.split("/", 1)
        view = workflow_status(deployment, workflow_id, name, manifest)
        for line in approvals.waiting_lines(view):
            console.print(f"  {escape(f'{workflow_id:<10}')} [cyan]{escape(line)}[/cyan]")
        for agent_name in dict.fromkeys(str(w.get("agent")) for w in view.get("waiting_for") or []):
            agent = manifest.workflow(name).external_agent(agent_name)
            sent = approvals.answer(deployment, workflow_id, "approve", workflow=name, agent=agent.name,
                                    by=approver(agent), note="approved by the demo", manifest=manifest)
            console.print(f"  {escape(f'{workflow_id:<10}')} `agentbus approve {escape(shlex.quote(workflow_id))}`: "
                          f"{escape(sent.detail_type)} by {escape(shown(approver(agent)))}")
    name, workflow_id = waiting[0].split("/", 1)
    workflow = manifest.workflow(name)
    if not workflow.cancellable:
        return []
    copy_id = f"{workflow_id}-cancel"
    trigger = next(e for e in entries if locate_event(manifest, e["DetailType"], e["Source"],
                                                      json.loads(e["Detail"])) == (name, workflow_id))
    detail = {**json.loads(trigger["Detail"]), workflow.id_field: copy_id}
    deployment.client("events").put_events(Entries=[{**trigger, "EventBusName": deployment.resources.bus_name,
                                                     "Detail": json.dumps(detail)}])
    store = approvals.workflow_store(deployment, manifest)
    deadline = time.monotonic() + 30
    while not any(v["workflow_id"] == copy_id for v in store.waiting(name)) and time.monotonic() < deadline:
        time.sleep(0.2)
    sent = approvals.cancel(deployment, copy_id, workflow=name, by=DEMO_OPERATOR,
                            reason="the demo cancels a request nobody needs any more", manifest=manifest)
    command = escape(f"agentbus cancel {shlex.quote(copy_id)}")
    console.print(f"  {escape(f'{copy_id:<10}')} waits for a person too; `{command}`: "
                  f"{escape(sent.detail_type)} by {escape(DEMO_OPERATOR)}")
    # The copy is a request of every workflow its trigger starts (a standalone one sharing it too): the demo put
    # them all, none was "started by an outcome".
    return requests_of(manifest, trigger["DetailType"], trigger["Source"], detail)


def _wait_for_follow_ons(console: Console, observer: BusObserver, manifest: Manifest, chosen: set[str],
                         put: list[tuple[str, str]], put_at: dict[tuple[str, str], float], timeout_s: float
                         ) -> set[str]:
    """Requests of the chosen workflows that no sample started but another workflow's outcome did (a workflow
    whose trigger is an outcome): added to ``put`` (timed from when their trigger was seen) and waited for, round
    after round while outcomes start more, at most one round per workflow of the manifest."""
    pending: set[str] = set()
    for _ in manifest.workflows:
        follow_ons = {key: seen for key, seen in observer.started_requests().items()
                      if key[0] in chosen and key not in put_at}
        if not follow_ons:
            break
        started = sorted(follow_ons, key=follow_ons.__getitem__)  # in the order their triggers were seen
        put += started
        put_at.update(follow_ons)
        console.print("  started by an outcome on the bus: "
                      + escape(shown(", ".join(f"{w}/{i}" for w, i in started))))
        pending |= _wait_for_requests(observer, manifest, started, timeout_s)
    return pending


def _wait_for_requests(observer: BusObserver, manifest: Manifest, keys: list[tuple[str, str]],
                       timeout_s: float) -> set[str]:
    """Wait for every request's end: a coordinated workflow's outcome, a standalone one's answers. Returns
    ``workflow/id`` of those still without."""
    pending = observer.wait_for_outcomes([f"{w}/{i}" for w, i in keys if manifest.workflow(w).coordinated],
                                         timeout_s)
    return pending | _wait_for_standalone(observer, manifest,
                                          [k for k in keys if not manifest.workflow(k[0]).coordinated], timeout_s)


def _wait_for_standalone(observer: BusObserver, manifest: Manifest, keys: list[tuple[str, str]],
                         timeout_s: float) -> set[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        pending = set()
        for name, workflow_id in keys:
            sources = {a.source for a in manifest.workflow(name).agents}
            answered = {e.source for e in observer.events(workflow_id, name)} & sources
            if answered != sources:
                pending.add(f"{name}/{workflow_id}")
        if not pending or time.monotonic() >= deadline:
            return pending
        time.sleep(0.2)


def _what_dominates(agents: list[str], work_ms: dict[str, int], chaos: bool) -> str:
    """Why end to end took longer than the agents' work in all, and what would let parallel be compared with
    chained: the advice to add simulated work only when the agents have none (black-box pass 10B, F6)."""
    if chaos:
        return ("the injected faults (delays, crashes, redeliveries) dominate: run without --chaos to compare "
                "parallel with chained")
    declared = {a: work_ms[a] for a in agents if work_ms.get(a)}
    if declared:
        given = ", ".join(f"{a} {ms} ms" for a, ms in declared.items())
        return (f"the local bus, queues and coordinator on this machine dominate over the simulated work ({given}): "
                "give the agents more (--work NAME=MS) to compare parallel with chained")
    return "give them simulated work (--work NAME=MS) to compare parallel with chained"


def print_summary(console: Console, workflow: Workflow, summaries: list[RequestSummary], *,
                  work_ms: dict[str, int] | None = None, chaos: bool = False) -> None:
    """``work_ms``: each agent's simulated work in this run; ``chaos``: whether faults were injected."""
    agents = [a.name for a in workflow.agents]
    table = Table(title=f"{workflow.name}: per-request summary", title_justify="left")
    table.add_column(workflow.id_field)
    table.add_column("outcome")
    for agent in agents:
        table.add_column(f"{agent} ms", justify="right")
    table.add_column("end-to-end ms", justify="right")
    table.add_column("sum of agents ms\n(chained)", justify="right")
    table.add_column("e2e ÷ sum", justify="right")
    table.add_column("reason")
    for s in summaries:
        style = STATUS_STYLE.get(s.status, "white")
        ratio = f"{s.end_to_end_ms / s.agents_sum_ms:.2f}" if s.agents_sum_ms >= 1 else "–"
        table.add_row(
            escape(shown(s.workflow_id)), f"[{style}]{s.status}[/{style}]",
            *[f"{s.agent_ms[a]:.0f}" if a in s.agent_ms else "–" for a in agents],
            f"{s.end_to_end_ms:.0f}", f"{s.agents_sum_ms:.0f}", ratio, escape(shown(s.reason or "")),
        )
    console.print()
    console.print(table)
    # Requests decided by their agents alone: not those that waited for a person, nor those cancelled.
    complete = [s for s in summaries if len(s.agent_ms) == len(agents) and s.agents_sum_ms
                and s.status != "CANCELLED"]
    if complete and len(agents) > 1:
        e2e = sum(s.end_to_end_ms for s in complete) / len(complete)
        chained = sum(s.agents_sum_ms for s in complete) / len(complete)
        slowest = sum(max(s.agent_ms.values()) for s in complete) / len(complete)
        requests = counted(len(complete), "request")
        if chained <= e2e:  # nothing to compare: the time went elsewhere than the agents' work
            console.print(f"mean over {requests}: end-to-end {e2e:.0f} ms, of which the agents worked "
                          f"{chained:.0f} ms in all: {_what_dominates(agents, work_ms or {}, chaos)}")
            return
        console.print(f"mean over {requests} with every agent's result: end-to-end {e2e:.0f} ms, "
                      f"slowest agent {slowest:.0f} ms, chained would take ≥ {chained:.0f} ms "
                      f"→ parallel is {chained / e2e:.1f}× faster")


def _parse_time(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def write_timeline(path: Path, summaries: list[RequestSummary], agents: list[str]) -> Path:
    """A self-contained HTML page with an SVG Gantt chart: each request's agents side by side in time."""
    rows: list[tuple[str, str, float, float, str]] = []  # (request, label, start, end, colour)
    colours = {agent: PALETTE[i % len(PALETTE)] for i, agent in enumerate(agents)}
    for s in summaries:
        start = _parse_time(s.timings.get("started_at"))
        end = _parse_time(s.timings.get("finished_at"))
        if start and end:
            rows.append((s.workflow_id, f"{s.workflow_id} end to end ({s.status})", start, end, "#9c9c9c"))
        for agent in agents:
            result = s.results.get(agent, {})
            a_start, a_end = _parse_time(result.get("started_at")), _parse_time(result.get("finished_at"))
            if a_start and a_end:
                rows.append((s.workflow_id, f"{agent}", a_start, a_end, colours.get(agent, "#b07aa1")))
    path.parent.mkdir(parents=True, exist_ok=True)
    if not rows:
        path.write_text("<!doctype html><title>agentbus demo timeline</title><p>No finished requests.</p>")
        return path.resolve()
    t0 = min(r[2] for r in rows)
    span = max(r[3] for r in rows) - t0 or 1
    width, label_w, row_h = 1100, 260, 22
    scale = (width - label_w - 20) / span
    parts = []
    for i, (_order, label, start, end, colour) in enumerate(rows):
        y = 30 + i * row_h
        x = label_w + (start - t0) * scale
        w = max(2.0, (end - start) * scale)
        parts.append(f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end">{html.escape(label)}</text>'
                     f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{colour}">'
                     f'<title>{html.escape(label)}: {(end - start) * 1000:.0f} ms</title></rect>')
    ticks = []
    for k in range(11):
        x = label_w + k * (width - label_w - 20) / 10
        ticks.append(f'<line x1="{x:.1f}" y1="20" x2="{x:.1f}" y2="{30 + len(rows) * row_h}" stroke="#eee"/>'
                     f'<text x="{x:.1f}" y="14" text-anchor="middle">{span * k / 10 * 1000:.0f} ms</text>')
    height = 40 + len(rows) * row_h
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">{"".join(ticks)}{"".join(parts)}</svg>')
    path.write_text(f"""<!doctype html><html><head><meta charset="utf-8"><title>agentbus demo timeline</title>
<style>body{{font-family:sans-serif;margin:24px}}</style></head><body>
<h1>agentbus demo — timeline</h1>
<p>Each request: its end-to-end span (grey) and each agent's work. Agents run side by side, so a request
takes about as long as its slowest agent, not the sum of all of them.</p>
{svg}</body></html>""")
    return path.resolve()
