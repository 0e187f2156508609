"""`agentbus demo`: the main job on one machine, with no AWS account and nothing started by hand.

Starts a local endpoint, provisions the manifest's topology, runs the agents and the coordinator, puts a
handful of sample orders on the bus, shows each event as it arrives, and ends with a per-order summary
(outcome, each agent's time, end to end next to the sum of the agents: the chained alternative) and a
timeline picture of the run.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from agentbus import invariants
from agentbus.local.chaos import Chaos
from agentbus.local.provision import REPO_ROOT, seed_stock
from agentbus.local.runtime import RuntimeOptions
from agentbus.local.stack import LocalStack
from agentbus.observe import BusObserver, ObservedEvent
from functions.manifest import MANIFEST

DEFAULT_ORDER_FILES = ("events/order-placed.json", "events/orders-batch.json")
DEFAULT_WORK_PROFILE = {"fraud": 300, "inventory": 100, "shipping": 200}
STATUS_STYLE = {"COMPLETED": "green", "REJECTED": "yellow", "TIMED_OUT": "red"}


@dataclass
class OrderSummary:
    order_id: str
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


def load_entries(paths: list[str]) -> list[dict[str, Any]]:
    entries = []
    for path in paths:
        file = Path(path) if Path(path).is_absolute() else REPO_ROOT / path
        try:
            loaded = json.loads(file.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise SystemExit(f"agentbus demo: cannot read orders from {path}: {error}") from None
        entries += loaded if isinstance(loaded, list) else [loaded]
    return entries


def summarize(order_id: str, outcome: ObservedEvent, put_at: float) -> OrderSummary:
    detail = outcome.detail
    timings = detail.get("timings", {})
    results = detail.get("results", {})
    agent_ms = {name: float(r.get("duration_ms", 0)) for name, r in results.items()}
    return OrderSummary(
        order_id=order_id, status=detail["status"], reason=detail.get("reason"), agent_ms=agent_ms,
        end_to_end_ms=float(timings.get("duration_ms", 0)), put_to_outcome_ms=(outcome.received_at - put_at) * 1000,
        timings=timings, results=results,
    )


def run_demo(*, chaos_rate: float = 0.0, deadline_s: int = 30, work_profile: dict[str, int] | None = None,
             order_files: list[str] | None = None, timeline_path: str = "out/demo-timeline.html",
             seed: int | None = None, timeout_s: float = 120, interval_s: float = 0.5,
             console: Console | None = None) -> int:
    console = console or Console(highlight=False)
    profile = DEFAULT_WORK_PROFILE if work_profile is None else work_profile
    entries = load_entries(list(order_files or DEFAULT_ORDER_FILES))
    chaos = Chaos(chaos_rate, seed=seed) if chaos_rate else None
    options = RuntimeOptions(deadline_seconds=deadline_s, simulated_work_ms=profile or None, chaos=chaos)
    agents = [a.name for a in MANIFEST.agents]

    console.print("[bold]agentbus demo[/bold] — the order-fulfillment workflow on a local AWS endpoint (moto)")
    with LocalStack(options=options) as stack:
        resources = stack.resources
        rules = len(MANIFEST.rules())
        console.print(f"  endpoint {stack.url}: bus [cyan]{resources.bus_name}[/cyan] with archive, {rules} rules, "
                      f"{len(resources.consumers)} queues each with a DLQ, {len(resources.tables)} tables, seed stock")
        console.print(f"  agents {', '.join(agents)} and the coordinator polling their queues; deadline {deadline_s}s")
        if profile:
            console.print("  simulated agent work: " + ", ".join(f"{k} {v} ms" for k, v in profile.items()))
        if chaos:
            console.print(f"  [magenta]chaos {chaos_rate}[/magenta]: duplicates, crashes, delays, PutEvents failures")

        def show(event: ObservedEvent) -> None:
            detail = event.detail
            who = event.source.rsplit(".", 1)[-1]
            if event.detail_type in observer.terminal_types:
                style = STATUS_STYLE.get(detail.get("status"), "white")
                reason = f" — {detail['reason']}" if detail.get("reason") else ""
                console.print(f"  {escape(f'{event.workflow_id:<10}')} [{style}]{escape(event.detail_type)}[/{style}]"
                              f"{escape(reason)}")
            elif detail.get("agent"):
                ms = detail.get("duration_ms", 0)
                mark = "✓" if detail.get("outcome") == "success" else "✗"
                console.print(f"  {event.workflow_id:<10} {mark} {who:<10} {event.detail_type} ({ms:.0f} ms)",
                              markup=False)

        observer = BusObserver(stack.client("events"), stack.client("sqs"), resources.bus_name, on_event=show).start()
        events = stack.client("events")
        order_ids, put_at = [], {}
        if interval_s > 0:
            console.print(f"  orders arrive {interval_s:g} s apart (--interval 0 puts them all at once)")
        # Ten entries per PutEvents call at most; one entry per call when orders arrive apart.
        step = 10 if interval_s <= 0 else 1
        for start in range(0, len(entries), step):
            if start and interval_s > 0:
                time.sleep(interval_s)
            batch = [{**e, "EventBusName": resources.bus_name} for e in entries[start:start + step]]
            now = time.time()
            response = events.put_events(Entries=batch)
            if response.get("FailedEntryCount"):
                console.print(f"[red]PutEvents rejected {response['FailedEntryCount']} entries[/red]")
            for entry in batch:
                order_id = json.loads(entry["Detail"]).get("order_id")
                order_ids.append(order_id)
                put_at[order_id] = now
        console.print(f"  put {len(order_ids)} orders on the bus: {', '.join(map(str, order_ids))}", markup=False)

        pending = observer.wait_for_outcomes(order_ids, timeout_s)
        time.sleep(1.0)  # duplicate outcome deliveries, if any, arrive now
        # Compensations are eventual (under chaos, delayed and retried too): wait for them, boundedly.
        report = invariants.check_until_held(stack.client("dynamodb"), resources, observer, order_ids,
                                             seed_stock(), timeout_s=30)
        summaries = [summarize(o, observer.outcomes(o)[0], put_at[o]) for o in order_ids if observer.outcomes(o)]
        observer.stop()
        stats = stack.runtime.stats

    print_summary(console, summaries, agents)
    path = write_timeline(Path(timeline_path), summaries, agents)
    console.print(f"\ntimeline of the run: [cyan]{path}[/cyan]")
    invocations = ", ".join(f"{name} {s.invocations}" for name, s in stats.items())
    console.print(f"function invocations: {invocations}")
    if chaos:
        injected = ", ".join(f"{k} {v}" for k, v in sorted(chaos.injected.items())) or "nothing"
        console.print(f"chaos injected: {injected}")
    if pending:
        console.print(f"[red]no outcome within {timeout_s:.0f}s for: {escape(', '.join(sorted(pending)))}[/red]")
    if report.held:
        console.print(f"[green]invariants held[/green] for {report.workflows} orders: one outcome each "
                      f"({report.duplicate_deliveries} duplicate deliveries, same idempotency key), stock conserved, "
                      "no reservation left on a failed order, orders table agrees with the outcomes")
        return 0 if not pending else 1
    console.print("[red]invariant violations:[/red]")
    for violation in report.violations:
        console.print(f"  - {violation}", markup=False)
    return 1


def print_summary(console: Console, summaries: list[OrderSummary], agents: list[str]) -> None:
    table = Table(title="per-order summary", title_justify="left")
    table.add_column("order")
    table.add_column("outcome")
    for agent in agents:
        table.add_column(f"{agent} ms", justify="right")
    table.add_column("end-to-end ms", justify="right")
    table.add_column("sum of agents ms\n(chained)", justify="right")
    table.add_column("e2e ÷ sum", justify="right")
    table.add_column("reason")
    for s in summaries:
        style = STATUS_STYLE.get(s.status, "white")
        ratio = f"{s.end_to_end_ms / s.agents_sum_ms:.2f}" if s.agents_sum_ms else "–"
        table.add_row(
            Text(str(s.order_id)), Text(str(s.status), style=style),
            *[f"{s.agent_ms[a]:.0f}" if a in s.agent_ms else "–" for a in agents],
            f"{s.end_to_end_ms:.0f}", f"{s.agents_sum_ms:.0f}", ratio, Text(s.reason or ""),
        )
    console.print()
    console.print(table)
    complete = [s for s in summaries if len(s.agent_ms) == len(agents) and s.agents_sum_ms]
    if complete:
        e2e = sum(s.end_to_end_ms for s in complete) / len(complete)
        chained = sum(s.agents_sum_ms for s in complete) / len(complete)
        slowest = sum(max(s.agent_ms.values()) for s in complete) / len(complete)
        console.print(f"mean over {len(complete)} orders with every agent's result: end-to-end {e2e:.0f} ms, "
                      f"slowest agent {slowest:.0f} ms, chained would take ≥ {chained:.0f} ms "
                      f"→ parallel is {chained / e2e:.1f}× faster")


def _parse_time(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def write_timeline(path: Path, summaries: list[OrderSummary], agents: list[str]) -> Path:
    """A self-contained HTML page with an SVG Gantt chart: each order's agents side by side in time."""
    rows: list[tuple[str, str, float, float, str]] = []  # (order, label, start, end, colour)
    colours = {"fraud": "#4e79a7", "inventory": "#f28e2b", "shipping": "#59a14f"}
    for s in summaries:
        start = _parse_time(s.timings.get("started_at"))
        end = _parse_time(s.timings.get("finished_at"))
        if start and end:
            rows.append((s.order_id, f"{s.order_id} end to end ({s.status})", start, end, "#9c9c9c"))
        for agent in agents:
            result = s.results.get(agent, {})
            a_start, a_end = _parse_time(result.get("started_at")), _parse_time(result.get("finished_at"))
            if a_start and a_end:
                rows.append((s.order_id, f"{agent}", a_start, a_end, colours.get(agent, "#b07aa1")))
    path.parent.mkdir(parents=True, exist_ok=True)
    if not rows:
        path.write_text("<!doctype html><title>agentbus demo timeline</title><p>No finished orders.</p>")
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
<p>Each order: its end-to-end span (grey) and each agent's work. Agents run side by side, so an order takes
about as long as its slowest agent, not the sum of all of them.</p>
{svg}</body></html>""")
    return path.resolve()
