"""`agentbus bench --agents N,… --payload BYTES,…`: the synthetic workflow (``agentbus.bench.synthetic``) of N
agents, each answering with data of about BYTES, at every combination; per point its requests, how many
completed, write units, API calls and cost per request, and the end-to-end p50. Then a least-squares fit of
the cost per million against N, per payload size.

Each N gets a local stack of its own (its manifest differs); each point on it runs one request alone first
(its functions' Lambda time per record, uncontended, is what the cost bills, as in the main benchmark), then
``requests`` requests at once (the counts, the write units, the latency). A point fails when a request has no
outcome, an outcome other than COMPLETED, or a message was dead-lettered: the point is reported failed with
the reasons (the outcome's, the dead letters') and the run exits non-zero; the sweep goes on.
"""

from __future__ import annotations

import functools
import re
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy
from rich.console import Console
from rich.table import Table

from agentbus.bench.accounting import per_order, system_calls
from agentbus.bench.costs import agentbus_usage, cost_per_million, cpu_ms_per_record, ms_per_record
from agentbus.bench.harness import Harness, LevelRun
from agentbus.bench.reporting import format_number, percentile
from agentbus.bench.synthetic import MAX_AGENTS, MAX_PAYLOAD_BYTES, requests, synthetic_manifest
from functions.common.dead_letters import REASON_ATTRIBUTE
from functions.common.spec import Manifest, Workflow

DEFAULT_AGENTS = (3, 10, 30)
DEFAULT_PAYLOADS = (1024, 100 * 1024, 1024 * 1024)
QUICK_AGENTS = (3, 10)
QUICK_PAYLOADS = (1024, 100 * 1024)
DEFAULT_REQUESTS = 20
QUICK_REQUESTS = 10
# The keys of each point in results.json's ``sweep``.
POINT_KEYS = ("agents", "payload_bytes", "requests", "completed", "write_units_per_request",
              "api_calls_per_request", "cost_per_million_usd", "p50_ms")
# Written after them: what a point's calls were, and how many records its functions received again.
POINT_DETAIL_KEYS = ("api_calls_by_operation", "records_redelivered_per_request")
UNITS = {"": 1, "B": 1, "KB": 1024, "MB": 1024 * 1024}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KM]?B)?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``"100KB"`` -> 102400: bytes, or a number with a KB or MB suffix (1 KB = 1,024 bytes)."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"payload size {text!r}: give bytes or a number with KB or MB, e.g. 1KB, 100KB, 1MB")
    size = round(float(match.group(1)) * UNITS[(match.group(2) or "").upper()])
    if not 1 <= size <= MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload size {text!r}: must be 1 byte to {MAX_PAYLOAD_BYTES // (1024 * 1024)} MB")
    return size


def parse_sizes(text: str) -> list[int]:
    """``"1KB,100KB,1MB"`` -> [1024, 102400, 1048576] (each size once, in the order given)."""
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise ValueError(f"payload sizes {text!r}: give at least one, e.g. 1KB,100KB")
    return list(dict.fromkeys(parse_size(part) for part in parts))


def parse_agents(text: str) -> list[int]:
    """``"3,10,30"`` -> [3, 10, 30]: agents per synthetic workflow, each 1..99."""
    counts = []
    for part in (p.strip() for p in text.split(",")):
        if not part.isdigit() or not 1 <= int(part) <= MAX_AGENTS:
            raise ValueError(f"agent count {part!r} in {text!r}: a whole number from 1 to {MAX_AGENTS}")
        counts.append(int(part))
    return list(dict.fromkeys(counts))


def size_label(size: int) -> str:
    for unit in ("MB", "KB"):
        if size >= UNITS[unit] and size % UNITS[unit] == 0:
            return f"{size // UNITS[unit]} {unit}"
    return f"{size} B"


@dataclass
class PointResult:
    """One point of the sweep: the figures results.json keeps (``figures``) and what went wrong, if anything."""

    figures: dict[str, Any]
    failures: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.failures)


def point_figures(agents: int, payload: int, run: LevelRun, quiet: LevelRun | None, tables: dict[str, str],
                  sizes: dict[str, float], prices: dict[str, float], workflow: Workflow,
                  manifest: Manifest) -> dict[str, Any]:
    """A point's figures from its run (``requests`` at once) and its quiet run (one request alone: the Lambda
    time per record billed; without one, the run's own); the p50 is None unless every request completed."""
    calls = run.calls
    assert calls is not None
    count = run.requests
    durations = ms_per_record(quiet) if quiet is not None else {}
    usage = agentbus_usage(run, tables, sizes, manifest, durations_ms=durations or None,
                           cpu_ms=cpu_ms_per_record(quiet) if quiet is not None else None)
    system = per_order(system_calls(calls.wire, [calls.by_role["harness"], calls.by_role["emulation"]]), count)
    completed = sum(n for status, n in run.statuses.items() if status == "COMPLETED")
    return {
        "agents": agents,
        "payload_bytes": payload,
        "requests": count,
        "completed": completed,
        "write_units_per_request": round(usage["dynamodb_write_units"], 3),
        "api_calls_per_request": system["total"],
        # What the calls were, and how many records the functions received again (after a failure, or after
        # the visibility timeout while still handling them): at a heavy point the emulator's slowness shows as
        # redeliveries, which cost calls and writes again.
        "api_calls_by_operation": {k: v for k, v in system.items() if k != "total"},
        "records_redelivered_per_request": round(sum(u.get("redelivered", 0) for u in run.lambda_usage.values())
                                                 / count, 3),
        "cost_per_million_usd": cost_per_million(usage, prices)["total"],
        # Of completed requests only: a point that failed has none to tell (its row says it failed).
        "p50_ms": round(percentile(run.end_to_end_ms, 50), 1) if run.end_to_end_ms and completed == count else None,
    }


def dead_letters(harness: Harness) -> dict[str, list[str]]:
    """Every function's dead letters so far, by function: each message's reason (or its body's start); the
    dead-letter queues are emptied once read."""
    sqs = harness.sqs
    found: dict[str, list[str]] = {}
    for name, consumer in harness.stack.started_resources.consumers.items():
        attributes = sqs.get_queue_attributes(QueueUrl=consumer.dlq_url,
                                              AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        if not int(attributes.get("ApproximateNumberOfMessages", 0)):
            continue
        messages = sqs.receive_message(QueueUrl=consumer.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                       MessageAttributeNames=["All"]).get("Messages", [])
        found[name] = [shorten(m.get("MessageAttributes", {}).get(REASON_ATTRIBUTE, {}).get("StringValue")
                               or f"no reason given (redriven): {m['Body'][:120]}") for m in messages]
        sqs.purge_queue(QueueUrl=consumer.dlq_url)  # read: the next point starts with none
    return found


def has_dead_letters(harness: Harness) -> bool:
    for consumer in harness.stack.started_resources.consumers.values():
        attributes = harness.sqs.get_queue_attributes(QueueUrl=consumer.dlq_url,
                                                      AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        if int(attributes.get("ApproximateNumberOfMessages", 0)):
            return True
    return False


def shorten(reason: str, limit: int = 300) -> str:
    """A reason's first clause (an outcome's reason joins each agent's with "; "), at most ``limit`` chars."""
    clauses = reason.split("; ")
    first = clauses[0] if len(clauses[0]) <= limit else clauses[0][:limit - 1] + "…"
    return first + (" (and more)" if len(clauses) > 1 else "")


def outcome_failures(harness: Harness, run: LevelRun) -> list[str]:
    """What went wrong with a point's requests: those without an outcome, and the three commonest reasons of
    outcomes other than COMPLETED (each reason's first clause)."""
    failures = []
    if run.missing:
        failures.append(f"{len(run.missing)} of {run.requests} requests without an outcome (e.g. {run.missing[0]})")
    reasons: Counter[str] = Counter()
    for workflow_id in run.ids:
        outcomes = harness.observer.outcomes(workflow_id, run.workflow)
        if not outcomes or outcomes[0].detail.get("status") == "COMPLETED":
            continue
        detail = outcomes[0].detail
        reasons[f"{detail.get('status')}: {shorten(str(detail.get('reason')))}"] += 1
    failures += [f"{count} × {reason}" for reason, count in reasons.most_common(3)]
    return failures


def run_point(harness: Harness, workflow: Workflow, payload: int, count: int, run_id: str,
              prices: dict[str, float]) -> PointResult:
    agents = len(workflow.agents)
    make = functools.partial(requests, payload_bytes=payload)
    timeout_s = 120 + count * agents * 0.2
    abort = functools.partial(has_dead_letters, harness)
    tag = f"{run_id}-{payload}"
    quiet = harness.run_level(1, f"{tag}-alone", timeout_s=timeout_s, workflow=workflow.name, make=make, abort=abort)
    failures = outcome_failures(harness, quiet)
    if failures or abort():
        run = quiet  # no point putting more: the point reports what its one request did (requests: 1)
    else:
        run = harness.run_level(count, tag, timeout_s=timeout_s, workflow=workflow.name, make=make, abort=abort)
        failures = outcome_failures(harness, run)
    failures += [f"dead-lettered by {name}: {reason}" for name, reasons in dead_letters(harness).items()
                 for reason in sorted(set(reasons))[:3]]
    sizes = harness.item_sizes(workflow, ids=set(run.ids))
    figures = point_figures(agents, payload, run, quiet if run is not quiet else None,
                            dict(harness.stack.started_resources.tables), sizes, prices, workflow, harness.manifest)
    return PointResult(figures, failures)


def run_sweep(agent_counts: Sequence[int], payloads: Sequence[int], count: int, pricing: dict[str, Any],
              console: Console) -> list[PointResult]:
    """Every (agents, payload) point, N after N (a stack each); a failing point does not stop the sweep."""
    run_id = uuid.uuid4().hex[:6]
    points = []
    for agents in agent_counts:
        manifest = synthetic_manifest(agents)
        workflow = manifest.workflows[0]
        started = time.time()
        with Harness(chained=False, work_profile={}, manifest=manifest, fork_endpoint=True) as harness:
            for payload in payloads:
                with console.status(f"sweep: {agents} agents × {size_label(payload)}, {count} requests"):
                    point = run_point(harness, workflow, payload, count, run_id, pricing["prices"])
                points.append(point)
                state = "[red]failed[/red]" if point.failed else "ok"
                console.print(f"sweep: {agents} agents × {size_label(payload)}: {state} "
                              f"({point.figures['completed']}/{point.figures['requests']} completed)")
        console.print(f"  ({agents} agents: {time.time() - started:.0f} s)", style="dim")
    return points


def fit(xs: Sequence[float], ys: Sequence[float]) -> dict[str, Any] | None:
    """Least squares of y against x: the line (slope, intercept, r²), and the parabola when it explains at
    least half of what the line leaves unexplained (with 3 points the parabola passes through all: ``exact``).
    None with fewer than 2 distinct x."""
    if len(set(xs)) < 2:
        return None
    x, y = numpy.asarray(xs, dtype=float), numpy.asarray(ys, dtype=float)
    total = float(((y - y.mean()) ** 2).sum())

    def r_squared(coefficients: Any) -> float:
        residual = float(((y - numpy.polyval(coefficients, x)) ** 2).sum())
        return 1.0 if total == 0 else 1 - residual / total

    slope, intercept = numpy.polyfit(x, y, 1)
    line: dict[str, Any] = {"slope": round(float(slope), 4), "intercept": round(float(intercept), 4),
            "r2": round(r_squared((slope, intercept)), 4), "points": len(xs)}
    if len(set(xs)) >= 3:
        quadratic = numpy.polyfit(x, y, 2)
        r2 = r_squared(quadratic)
        if 1 - r2 <= (1 - line["r2"]) / 2 and abs(quadratic[0]) > 1e-9:
            line["quadratic"] = {"a": round(float(quadratic[0]), 6), "b": round(float(quadratic[1]), 4),
                                 "c": round(float(quadratic[2]), 4), "r2": round(r2, 4),
                                 "exact": len(set(xs)) == 3}
    return line


def sweep_fits(points: Sequence[PointResult]) -> dict[str, dict[str, Any]]:
    """A fit of cost per million against N for each payload size, over its points that did not fail."""
    by_payload: dict[int, list[dict[str, Any]]] = {}
    for point in points:
        if not point.failed:
            by_payload.setdefault(point.figures["payload_bytes"], []).append(point.figures)
    fits = {}
    for payload, figures in sorted(by_payload.items()):
        found = fit([f["agents"] for f in figures], [f["cost_per_million_usd"] for f in figures])
        if found:
            fits[str(payload)] = found
    return fits


def _term(value: float, digits: int) -> str:
    """`` + 1.5`` or `` − 1.5``."""
    return f" {'−' if value < 0 else '+'} {abs(value):,.{digits}f}"


def describe_fit(found: dict[str, Any]) -> str:
    text = (f"cost per million ≈ {found['slope']:,.4f} × N{_term(found['intercept'], 4)} "
            f"(r² {found['r2']:.4f}, {found['points']} points)")
    quadratic = found.get("quadratic")
    if quadratic:
        text += (f"; quadratic fits better: {quadratic['a']:,.6f} × N²{_term(quadratic['b'], 4)} × N"
                 f"{_term(quadratic['c'], 4)} (r² {quadratic['r2']:.4f}"
                 + (", exact through 3 points" if quadratic["exact"] else "") + ")")
    return text


def print_sweep(console: Console, points: Sequence[PointResult], fits: dict[str, dict[str, Any]]) -> None:
    table = Table(title="sweep: synthetic workflow of N agents, each answering with data of the size given",
                  title_justify="left")
    for column in ("agents", "payload", "requests", "completed", "write units / request", "API calls / request",
                   "records received again / request", "$ / million", "p50 ms"):
        table.add_column(column, justify="right")
    for point in points:
        f = point.figures
        table.add_row(str(f["agents"]), size_label(f["payload_bytes"]), str(f["requests"]),
                      ("[red]" if point.failed else "") + str(f["completed"]),
                      f"{f['write_units_per_request']:,.2f}", f"{f['api_calls_per_request']:,.2f}",
                      format_number(f.get("records_redelivered_per_request"), 2),
                      f"{f['cost_per_million_usd']:,.2f}", format_number(f["p50_ms"]))
    console.print()
    console.print(table)
    for payload, found in fits.items():
        console.print(f"fit at {size_label(int(payload))}: {describe_fit(found)}")
    for point in points:
        for failure in point.failures:
            console.print(f"[red]sweep {point.figures['agents']} agents × {size_label(point.figures['payload_bytes'])}"
                          f" failed: {failure}[/red]", markup=True, highlight=False)


def sweep_results(points: Sequence[PointResult], fits: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """results.json's ``sweep`` (one object per point: ``POINT_KEYS``, then ``POINT_DETAIL_KEYS``), ``sweep_fit``
    and ``sweep_failures``."""
    return {
        "sweep": [{key: p.figures[key] for key in (*POINT_KEYS, *POINT_DETAIL_KEYS) if key in p.figures}
                  for p in points],
        "sweep_fit": {"x": "agents", "y": "cost_per_million_usd", "by_payload_bytes": fits},
        "sweep_failures": [{"agents": p.figures["agents"], "payload_bytes": p.figures["payload_bytes"],
                            "reasons": p.failures} for p in points if p.failed],
    }
