"""The event catalogue, derived from the manifest (`agentbus catalogue`, `make catalogue` → docs/events.md).

Generic: every workflow of the manifest gets the same sections, whatever it is - its trigger, its agents and
the results they emit, its outcomes (or "standalone: no outcome"), its deadline and its projection table -
and the tables and the coordinator's shared events follow. Nothing here names a workflow.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from functions.common.spec import (
    CANCEL_DETAIL_TYPE,
    CENSUS_DETAIL_TYPE,
    COORDINATOR_SOURCE,
    DEADLINE_DETAIL_TYPE,
    DEADLINE_SOURCE,
    Manifest,
    Outcome,
    ResultType,
    Workflow,
)
from functions.manifest import MANIFEST

STANDALONE = "standalone: no outcome"


def _code(values: Iterable[str]) -> str:
    return ", ".join(f"`{value}`" for value in values)


def _consumers(manifest: Manifest, source: str, detail_type: str) -> list[str]:
    """Every consumer a rule of the manifest delivers (source, detail-type) to."""
    return list(dict.fromkeys(consumer.name for consumer, subscription in manifest.rules()
                              if subscription.matches(source, detail_type)))


def _or_anyone(names: list[str]) -> str:
    return ", ".join(names) or "anyone (subscribe a rule)"


def _facts(manifest: Manifest, workflow: Workflow) -> list[str]:
    trigger = workflow.trigger
    rows = [
        ("kind", "coordinated: a record per request, one outcome" if workflow.coordinated
         else f"{STANDALONE} (no record, no deadline, no table row; nobody waits)"),
        ("trigger", f"{_code(trigger.subscription.detail_types)} from {_code(trigger.subscription.sources)}"),
        ("trigger detail", f"`{trigger.model}`"),
        ("workflow id", f"the trigger's `{workflow.id_field}`"),
        ("agents", ", ".join(f"{a.name}{'' if a.required or not workflow.coordinated else ' (optional)'}"
                             for a in workflow.agents)),
    ]
    if workflow.external:
        rows.append(("external agents", "; ".join(
            f"{a.name}: {a.kind}, results from `{a.source}`, "
            f"{'required' if a.required else 'waited for once a result asks for it'}, waits {_duration(a.wait_s)} "
            "(`EXTERNAL_WAIT_SECONDS` / `agentbus up --approval-wait` override it)"
            for a in workflow.external)))
    if workflow.quorum is not None:
        rows.append(("quorum", f"completes when at least {workflow.quorum.at_least} of "
                               f"{', '.join(workflow.quorum.agents)} succeed; rejected as soon as that is "
                               "out of reach"))
    if workflow.coordinated and workflow.outcomes:
        outcomes = workflow.outcomes
        cancelled = (f" · `{outcomes.cancelled}` (CANCELLED)" if outcomes.cancelled else "")
        rows += [
            ("outcomes", f"`{outcomes.completed}` (COMPLETED) · `{outcomes.rejected}` (REJECTED) · "
                         f"`{outcomes.timed_out}` (TIMED_OUT){cancelled}, from `{COORDINATOR_SOURCE}`"),
            ("cancel", f"`{CANCEL_DETAIL_TYPE}` from {_code(workflow.cancel_sources)} (`agentbus cancel`)"
             if workflow.cancellable else "cannot be cancelled"),
            ("deadline", f"{workflow.deadline_s} s (CDK context `deadline_seconds` overrides every workflow's)"),
            ("projection", f"table `{workflow.projection.table}`, row from `{workflow.projection.function}`"
             if workflow.projection else "none"),
        ]
    else:
        rows += [("outcomes", STANDALONE), ("deadline", "none"), ("projection", "none")]
    if workflow.samples:
        rows.append(("samples", _code(workflow.samples)))
    if workflow.people_samples:
        rows.append(("samples that wait for a person", _code(workflow.people_samples)
                     + " (`agentbus demo` answers for the person; bench and soak leave them out)"))
    return ["| | |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)]


def _duration(seconds: int) -> str:
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _asks(result: ResultType) -> str:
    """What a result that may ask for more says about it (``asks_for`` in its detail)."""
    if not result.may_ask_for:
        return ""
    return f"; may ask for {', '.join(result.may_ask_for)} (`asks_for`): the workflow then waits for it too"


def _publisher(manifest: Manifest, source: str, detail_type: str) -> str:
    """Who puts (source, detail-type) on the bus: the coordinator (another workflow's outcome), an agent of the
    manifest (its result), else a producer outside."""
    if source == COORDINATOR_SOURCE:
        of = [w.name for w in manifest.coordinated if detail_type in w.terminal_detail_types.values()]
        return f"coordinator ({', '.join(f'`{name}`' for name in of)}'s outcome)" if of else "coordinator"
    for workflow in manifest.workflows:
        for participant in workflow.participants:
            if participant.source == source and any(r.detail_type == detail_type for r in participant.results):
                return participant.name
    return "a producer"


def _effect(workflow: Workflow, name: str, required: bool, result: ResultType, who: str) -> str:
    """What a result of a coordinated workflow's agent does, as the coordinator decides (functions/coordinator/
    record.py: decide): a quorum member's counts for or against the quorum; a required agent's completes or rejects; an
    optional agent's decides nothing unless a counted result asks for that agent."""
    success = result.outcome is Outcome.SUCCESS
    quorum = workflow.quorum
    if quorum is not None and name in quorum.agents:
        group = f"{quorum.at_least} of {len(quorum.agents)}"
        return (f"counts toward the quorum ({group})" if success
                else f"counts against the quorum ({group}): rejects the workflow once it is out of reach")
    decides = "counts toward completion" if success else f"rejects the workflow, naming {who}"
    if required:
        return decides
    askers = [p.name for p in workflow.participants for r in p.results if name in r.may_ask_for]
    if askers:
        return (f"once a counted result of {', '.join(dict.fromkeys(askers))} asks for {name}: {decides}; "
                "unasked: recorded, decides nothing")
    return "recorded and reported; decides nothing (optional agent)"


def _events(manifest: Manifest, workflow: Workflow) -> list[str]:
    lines = ["| detail-type | source | published by | consumed by | meaning |", "|---|---|---|---|---|"]
    trigger = workflow.trigger.subscription
    for source in trigger.sources:
        for detail_type in trigger.detail_types:
            meaning = ("the trigger: starts one workflow" if workflow.coordinated
                       else "the trigger: each agent handles it on its own")
            lines.append(f"| `{detail_type}` | `{source}` | {_publisher(manifest, source, detail_type)} "
                         f"| {_or_anyone(_consumers(manifest, source, detail_type))} | {meaning} |")
    for agent in workflow.agents:
        for result in agent.results:
            effect = (_effect(workflow, agent.name, agent.required, result, "the reason") if workflow.coordinated
                      else "published for whoever subscribes; nothing waits for it")
            lines.append(f"| `{result.detail_type}` | `{agent.source}` | {agent.name} "
                         f"| {_or_anyone(_consumers(manifest, agent.source, result.detail_type))} "
                         f"| {result.description}; {effect}{_asks(result)} |")
    for external in workflow.external:
        for result in external.results:
            effect = _effect(workflow, external.name, external.required, result, "who declined")
            verb = "approve" if result == external.approval else "decline" if result == external.refusal else None
            how = f" (`agentbus {verb}`)" if verb else ""
            lines.append(f"| `{result.detail_type}` | `{external.source}` | {external.name}: {external.kind}{how} "
                         f"| {_or_anyone(_consumers(manifest, external.source, result.detail_type))} "
                         f"| {result.description}; {effect}; detail `ExternalResult` (`by`, `note`, "
                         "`trigger_digest`); from any other source: refused, dead-lettered with the reason |")
    for status, detail_type in workflow.terminal_detail_types.items():
        lines.append(f"| `{detail_type}` | `{COORDINATOR_SOURCE}` | coordinator "
                     f"| {_or_anyone(_consumers(manifest, COORDINATOR_SOURCE, detail_type))} "
                     f"| terminal outcome `{status.value}`, exactly once per workflow |")
    return lines


def _agents(manifest: Manifest, workflow: Workflow) -> list[str]:
    lines = ["| agent | subscribes to (rule patterns) | emits | tables | parameters |", "|---|---|---|---|---|"]
    for agent in workflow.agents:
        patterns = "<br>".join(f"`{json.dumps(s.pattern())}`" for s in manifest.subscriptions(agent))
        parameters = "<br>".join(f"`{p.env}` (default `{p.default}`{f', context `{p.context}`' if p.context else ''})"
                                 for p in agent.parameters) or "—"
        emits = _code(r.detail_type for r in agent.results)
        lines.append(f"| {agent.name} — {agent.description} | {patterns} | {emits} "
                     f"| {_code(agent.tables) or '—'} | {parameters} |")
    return lines


def _tables(manifest: Manifest) -> list[str]:
    lines = ["| table | key | used by | seeded from | meaning |", "|---|---|---|---|---|"]
    for table in manifest.all_tables:
        key = f"`{table.partition_key}`" + (f" + `{table.sort_key}`" if table.sort_key else "")
        users = [c.name for c in manifest.consumers if table.logical_name in c.tables]
        lines.append(f"| `{table.logical_name}` | {key} | {', '.join(users) or '—'} "
                     f"| {f'`{table.seed_file}`' if table.seed_file else '—'} | {table.description} |")
    return lines


def render(manifest: Manifest = MANIFEST) -> str:
    lines = ["# Event catalogue", "",
             f"Generated from the manifest (`{manifest.import_path}`) by `make catalogue`; do not edit by hand.", "",
             f"Bus: `{manifest.bus_name}` (CDK context `bus_name`). Samples of every event are in `events/` "
             "(valid `aws events put-events --entries` files).", ""]
    for workflow in manifest.workflows:
        kind = "coordinated" if workflow.coordinated else STANDALONE
        lines += [f"## Workflow `{workflow.name}` ({kind})", "", workflow.description, "",
                  *_facts(manifest, workflow), "", "### Events", "", *_events(manifest, workflow), "",
                  "### Agents", "", *_agents(manifest, workflow), ""]
    lines += ["## Tables", "", *_tables(manifest), ""]
    if manifest.coordinated:
        lines += ["## Coordinator events (every coordinated workflow)", "",
                  "| detail-type | source | published by | consumed by | meaning |", "|---|---|---|---|---|",
                  f"| `{DEADLINE_DETAIL_TYPE}` | `{DEADLINE_SOURCE}` | EventBridge Scheduler "
                  f"| {_or_anyone(_consumers(manifest, DEADLINE_SOURCE, DEADLINE_DETAIL_TYPE))} "
                  "| a workflow's deadline (names `workflow` and `workflow_id`): times it out if still running |",
                  f"| `{CENSUS_DETAIL_TYPE}` | `{DEADLINE_SOURCE}` | EventBridge Scheduler (every 5 min) "
                  f"| {_or_anyone(_consumers(manifest, DEADLINE_SOURCE, CENSUS_DETAIL_TYPE))} "
                  "| count the workflows waiting for a person and the oldest wait (metrics, alarm) |"]
        if any(w.cancellable for w in manifest.coordinated):
            sources = dict.fromkeys(s for w in manifest.coordinated if w.cancellable for s in w.cancel_sources)
            lines.append(f"| `{CANCEL_DETAIL_TYPE}` | {_code(sources)} | an operator (`agentbus cancel`) or a "
                         f"producer the workflow allows "
                         f"| {_or_anyone(_consumers(manifest, next(iter(sources)), CANCEL_DETAIL_TYPE))} "
                         "| cancel a running workflow (`workflow`, `workflow_id`, `by`, `reason`): it finishes "
                         "CANCELLED, compensations run; a finished one is left as it is; from a source the "
                         "workflow does not allow: refused, dead-lettered with the reason |")
        lines.append("")
    return "\n".join(lines)
