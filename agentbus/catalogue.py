"""The event catalogue, derived from the manifest (`agentbus catalogue`, `make catalogue` → docs/events.md)."""

from __future__ import annotations

import json

from functions.manifest import COORDINATOR_SOURCE, DEADLINE_DETAIL_TYPE, DEADLINE_SOURCE, MANIFEST, Manifest


def render(manifest: Manifest = MANIFEST) -> str:
    lines = ["# Event catalogue", "",
             "Generated from `functions/manifest.py` by `make catalogue`; do not edit by hand.", "",
             f"Bus: `{manifest.bus_name}` (CDK context `bus_name`).", ""]
    for workflow in manifest.workflows:
        lines += [f"## Workflow `{workflow.name}`", "", workflow.description, "",
                  f"Deadline: {workflow.deadline_s} s. Workflow id: the trigger's `{workflow.id_field}`.", "",
                  "| detail-type | source | published by | consumed by | meaning |",
                  "|---|---|---|---|---|"]
        trigger = workflow.trigger.subscription
        trigger_consumers = [c.name for c, s in manifest.rules() if s.detail_types == trigger.detail_types]
        for detail_type in trigger.detail_types:
            lines.append(f"| `{detail_type}` | `{', '.join(trigger.sources)}` | a producer "
                         f"| {', '.join(trigger_consumers)} | the trigger: starts one workflow |")
        for agent in workflow.agents:
            for result in agent.results:
                effect = "counts toward completion" if result.outcome.value == "success" else "rejects the order"
                lines.append(f"| `{result.detail_type}` | `{agent.source}` | {agent.name} | coordinator "
                             f"| {result.description}; {effect} |")
        compensators: dict[str, list[str]] = {}
        for agent in workflow.agents:
            for detail_type in agent.compensate_on:
                compensators.setdefault(detail_type, []).append(agent.name)
        for status, detail_type in workflow.terminal_detail_types.items():
            consumers = ", ".join(compensators.get(detail_type, [])) or "anyone (subscribe a rule)"
            lines.append(f"| `{detail_type}` | `{COORDINATOR_SOURCE}` | coordinator | {consumers} "
                         f"| terminal outcome `{status.value}`, exactly once per workflow |")
        lines.append(f"| `{DEADLINE_DETAIL_TYPE}` | `{DEADLINE_SOURCE}` | EventBridge Scheduler | coordinator "
                     "| the workflow's deadline: times it out if still running |")
        lines += ["", "### Agents", "", "| agent | subscribes to (rule patterns) | emits |", "|---|---|---|"]
        for agent in workflow.agents:
            patterns = "<br>".join(f"`{json.dumps(s.pattern())}`" for s in manifest.subscriptions(agent))
            emits = ", ".join(f"`{r.detail_type}`" for r in agent.results)
            lines.append(f"| {agent.name} — {agent.description} | {patterns} | {emits} |")
        lines += ["", "Samples of every event are in `events/` (valid `aws events put-events --entries` files).", ""]
    return "\n".join(lines)
