"""`agentbus bench`: every coordinated workflow of the manifest (or those named), parallel and chained, at
each concurrency level, on the local runtime; then the sweep, if asked (``agentbus.bench.sweep``)."""

from __future__ import annotations

import functools
import json
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agentbus.bench import sweep
from agentbus.bench.chart import write_chart
from agentbus.bench.costs import load_pricing, pick_model
from agentbus.bench.harness import MODES, Harness, LevelRun, level_timeout
from agentbus.bench.reporting import build_results, combine_results, print_results
from agentbus.bench.workload import coordinated_workflows, default_work_profile
from agentbus.operations import OperationError, check_writable
from functions.common.spec import Manifest, Workflow
from functions.manifest import MANIFEST

DEFAULT_LEVELS = (1, 10, 100, 1000)
QUICK_LEVELS = (1, 10, 50)
# A level of one request is run this many times, one request at a time, and its figures are the median of them:
# a single request's end to end varies by a hundred milliseconds from one run to the next on a shared machine.
SINGLE_ROUNDS = 9
QUICK_SINGLE_ROUNDS = 5


def single_rounds(level: int, quick: bool) -> int:
    """How many rounds a level runs: the level of one request several (``SINGLE_ROUNDS``), any other once."""
    if level != 1:
        return 1
    return QUICK_SINGLE_ROUNDS if quick else SINGLE_ROUNDS


def task_name(workflow: str, mode: str, level: int, rounds: int) -> str:
    return f"{workflow} {mode:>8} × {level:<5}" + (f" ({rounds} rounds, one at a time)" if rounds > 1 else "")

def run_bench(quick: bool = False, levels: list[int] | None = None, work_profile: dict[str, int] | None = None,
              output: str = "bench/results.json", chart: str = "bench/chart.html",
              console: Console | None = None, workflows: Sequence[str] | None = None,
              manifest: Manifest = MANIFEST, *, agents: Sequence[int] | None = None,
              payloads: Sequence[int] | None = None, sweep_requests: int | None = None, sweep_only: bool = False,
              model_id: str | None = None) -> int:
    """The levels of every coordinated workflow (those named), then the sweep when ``agents`` or ``payloads``
    is given (the other defaults to the sweep's first value); ``sweep_only`` skips the levels and updates only
    the sweep's keys of the results file. 0 when every request of every level and every point completed.

    Its stacks' endpoints are forked from the fork server (``LocalEndpoint``'s ``fork``): a program calling it
    does so under ``if __name__ == "__main__":``, as the `agentbus` command does."""
    console = console or Console(highlight=False)
    try:
        chosen = coordinated_workflows(manifest, workflows)
        pricing = load_pricing()
        if model_id is not None:
            pick_model(pricing["bedrock"], model_id)
    except ValueError as error:
        raise OperationError(str(error)) from None
    sweeping = bool(agents or payloads)
    if sweep_only and not sweeping:
        raise OperationError("--sweep-only needs --agents and/or --payload")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # EMF lines would flood the console
    out = Path(output)
    # Before the run, not after it: a path that cannot be written, or a results file to update that is no results
    # file, lost the figures of a whole run to a traceback.
    check_writable(out, "--output")
    if not sweep_only:
        check_writable(Path(chart), "--chart")
    results: dict[str, Any] = read_results(out) if sweep_only else {}
    started = time.time()
    failed = False
    if not sweep_only:
        results, incomplete = run_levels(chosen, quick, levels, work_profile, pricing, console, manifest, model_id)
        print_results(console, results)
        failed = bool(incomplete)
    if sweeping:
        counts = list(agents or sweep.DEFAULT_AGENTS[:1])
        sizes = list(payloads or sweep.DEFAULT_PAYLOADS[:1])
        requests = sweep_requests or (sweep.QUICK_REQUESTS if quick else sweep.DEFAULT_REQUESTS)
        console.print(f"\n[bold]sweep[/bold] — agents {', '.join(map(str, counts))} × payload "
                      f"{', '.join(sweep.size_label(s) for s in sizes)}; {requests} requests at once per point "
                      "(after one alone: the Lambda time billed), no simulated work")
        points = sweep.run_sweep(counts, sizes, requests, pricing, console)
        fits = sweep.sweep_fits(points)
        sweep.print_sweep(console, points, fits)
        results.update(sweep.sweep_results(points, fits))
        failed = failed or any(p.failed for p in points)
    if not sweep_only:
        results["duration_s"] = round(time.time() - started, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    if sweep_only:
        console.print(f"\nresults (sweep keys updated): [cyan]{out}[/cyan]")
    else:
        chart_path = write_chart(Path(chart), results)
        console.print(f"\nresults: [cyan]{out}[/cyan]   chart: [cyan]{chart_path}[/cyan]")
    return 1 if failed else 0


def read_results(path: Path) -> dict[str, Any]:
    """The results file ``--sweep-only`` updates (none yet: empty), or OperationError when it is not one."""
    if not path.exists():
        return {}
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise OperationError(f"--output {path}: not a results file to update (not JSON: {error})") from None
    if not isinstance(results, dict):
        raise OperationError(f"--output {path}: not a results file to update (a JSON {type(results).__name__}, "
                             "not an object)")
    return results


def run_levels(chosen: list[Workflow], quick: bool, levels: list[int] | None, work_profile: dict[str, int] | None,
               pricing: dict[str, Any], console: Console, manifest: Manifest, model_id: str | None
               ) -> tuple[dict[str, Any], list[str]]:
    """Each workflow at each level, parallel then chained: the results document and the levels with a request
    left without an outcome."""
    levels = list(levels or (QUICK_LEVELS if quick else DEFAULT_LEVELS))
    profile = dict(default_work_profile(chosen) if work_profile is None else work_profile)
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
            with Harness(chained=mode == "chained", work_profile=profile, manifest=manifest,
                         fork_endpoint=True) as harness:
                for workflow in chosen:  # cold paths, not measured
                    harness.run_level(1, f"{run_id}-warmup", timeout_s=level_timeout(1), workflow=workflow.name)
                progress.remove_task(startup)
                for workflow in chosen:
                    for level in levels:
                        rounds = single_rounds(level, quick)
                        task = progress.add_task(task_name(workflow.name, mode, level, rounds), total=level * rounds)
                        run = harness.run_level(level, run_id, timeout_s=level_timeout(level),
                                                workflow=workflow.name, rounds=rounds,
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
                              tables, workflow=w, manifest=manifest, model_id=model_id)
        for w in chosen
    }
    results = combine_results(per_workflow)
    results["levels_duration_s"] = round(time.time() - started, 1)
    incomplete = [f"{name} {m} × {lv}" for name, by_mode in runs.items() for m in by_mode
                  for lv, r in by_mode[m].items() if r.missing]
    return results, incomplete
