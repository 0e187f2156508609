"""Requests of the benchmark or the soak that wait for a person.

Both measure what a workflow's agents decide alone: their requests are copies of the workflow's ``samples``
(never its ``people_samples``, which the demo puts and answers for). A sample that asks for a person (a result
asking for an external agent) makes every copy wait for someone nobody plays: no outcome until its wait runs
out. ``waiting_for_people`` finds them (the coordinator's waiting index, as `agentbus pending` does) so that the
run stops and says so, instead of waiting its whole timeout and reporting "no outcome".
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from agentbus.resources import Resources
from functions.common.spec import WORKFLOW_TABLE, Manifest


def waiting_for_people(dynamodb: Any, resources: Resources, manifest: Manifest,
                       keys: Collection[str]) -> dict[str, list[str]]:
    """Of the ``workflow/id`` keys, those that wait for a person and for nothing else: key -> the external agents
    it waits for. One that still misses an agent of its own may yet end without the person (one agent's result
    asks for the person, then another agent's refusal ends the request), so it is not one of them yet."""
    from functions.coordinator.store import WorkflowStore

    wanted = set(keys)
    names = {key.split("/", 1)[0] for key in wanted}
    with_people = [w.name for w in manifest.coordinated if w.external and w.name in names]
    if not with_people or WORKFLOW_TABLE not in resources.tables:
        return {}
    store = WorkflowStore(dynamodb, resources.tables[WORKFLOW_TABLE], manifest, resources.tables)
    found: dict[str, list[str]] = {}
    for name in with_people:
        people = {external.name for external in manifest.workflow(name).external}
        for view in store.waiting(name):
            key = f"{view['workflow']}/{view['workflow_id']}"
            if key in wanted and set(view.get("missing") or []) <= people:
                found[key] = [str(w.get("agent")) for w in view.get("waiting_for") or []]
    return found


def still_waiting(people: dict[str, list[str]], without_outcome: Collection[str]) -> dict[str, list[str]]:
    """Of the requests found waiting for a person, those that still have no outcome: one found waiting may end
    after all (its deadline, a cancel), and is then decided like any other."""
    return {key: agents for key, agents in people.items() if key in without_outcome}


def waits_for_a_person(workflow: str, agents: Collection[str], run: str) -> str:
    """One line: which workflow's sample waits for whom, and what to do about it."""
    return (f"workflow {workflow!r}: a request copied from its samples waits for a person "
            f"({', '.join(sorted(set(agents))) or 'an external agent'}), whom {run} does not play: its samples "
            "are the requests its agents decide alone; move that sample to people_samples (the demo answers for "
            "the person)")
