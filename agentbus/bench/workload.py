"""Workload generation: the requests a run puts on the bus, from the manifest.

A benchmarked workflow's requests come from its ``workload`` (an import path) if it declares one, else copies
of its first sample trigger under new ids. Samples are a workflow's ``samples`` only, the requests its agents
decide alone, never its ``people_samples`` (those wait for a person: ``agentbus.bench.people``). The soak's
traffic mixes every workflow of the manifest (their samples under new ids, the same ids in every workflow) with
conflicting versions (two entries, one id, different contents) and values a table cannot store.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from agentbus.local.provision import REPO_ROOT
from functions.common.spec import Manifest, Workflow, resolve
from functions.manifest import MANIFEST

PUT_BATCH = 10  # PutEvents takes at most 10 entries

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


Make = Callable[[Workflow, str, int], Iterable[dict[str, Any]]]


def make_requests(workflow: Workflow, prefix: str, count: int, make: Make | None = None) -> list[dict[str, Any]]:
    """The benchmark's ``count`` requests for ``workflow`` as PutEvents entries: made by ``make`` if given,
    else by its ``workload`` if it declares one, else copies of its first sample trigger; checked to be that
    many distinct triggers of the workflow."""
    make = make or (resolve(workflow.workload) if workflow.workload else copy_samples)
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


def entry_id(workflow: Workflow, entry: dict[str, Any]) -> str:
    """The id of the request a PutEvents entry starts: its detail's value of the workflow's id field."""
    return str(json.loads(entry["Detail"])[workflow.id_field])


def default_work_profile(workflows: Iterable[Workflow]) -> dict[str, int]:
    """Each agent's simulated work time, as its manifest entry declares it."""
    return {a.name: a.simulated_work_ms for w in workflows for a in w.agents if a.simulated_work_ms}


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
    a price) as the string "NaN", when it has one."""
    variants = [(UNSTORABLE_FIELD, {**detail, UNSTORABLE_FIELD: value}) for value in UNSTORABLE_EXTRAS]
    path = first_float_path(detail)
    if path:
        variants.append((str(path[-1]), _replaced(detail, path, "NaN")))
    return variants


def soak_traffic(count: int, run_id: str, manifest: Manifest = MANIFEST,
                 edge_every: int = EDGE_EVERY) -> list[SoakRequest]:
    """``count`` requests, the workflows of the manifest in turn, each a copy of one of its sample triggers in
    turn (completions and rejections alike). Ids are the same in every workflow (``soak-<run>-00000``…: one
    workflow's request must not disturb another's with the same id), except in a workflow whose trigger an earlier
    one has too (``soak-<run>-<workflow>-00000``…): one put reaches both, so a copy of its sample under the other's
    id would be a second version of the other's request. In each coordinated workflow's share, one
    request in ``edge_every`` is two conflicting versions (two different samples under one id, in one
    PutEvents call) and one is an unstorable value (``unstorable_variants``, in turn)."""
    # A sample from a source the bus reserves to a function (another workflow's outcome, for a workflow it starts)
    # cannot be put by anyone else: that workflow runs on the outcomes of the soaked ones (``unsoaked`` says so).
    reserved = manifest.reserved_sources
    workflows = [(w, [e for e in sample_triggers(w) if e["Source"] not in reserved]) for w in manifest.workflows]
    workflows = [(w, samples) for w, samples in workflows if samples]
    if not workflows:
        raise ValueError("no workflow of the manifest has a sample trigger to soak with")
    own_ids = sharing_a_trigger([w for w, _ in workflows])
    requests: list[SoakRequest] = []
    made: Counter[str] = Counter()
    for index in range(count):
        workflow, samples = workflows[index % len(workflows)]
        n = made[workflow.name]
        made[workflow.name] += 1
        workflow_id = f"soak-{run_id}-{workflow.name}-{n:05d}" if workflow.name in own_ids else f"soak-{run_id}-{n:05d}"
        sample = samples[n % len(samples)]
        edge, turn = n % edge_every, n // edge_every
        if workflow.coordinated and len(samples) > 1 and edge == edge_every // 3:
            first = samples[turn % len(samples)]
            # A different sample each turn, the first turn's from the middle of the list (issue 10: the shipped
            # first workflow's first pair is then a sample beside the one over its limit).
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


def sharing_a_trigger(workflows: Sequence[Workflow]) -> set[str]:
    """The workflows (names) whose trigger (a source and detail-type) an earlier one of ``workflows`` has too."""
    first: dict[tuple[str, str], str] = {}
    later: set[str] = set()
    for workflow in workflows:
        trigger = workflow.trigger.subscription
        for key in ((source, detail_type) for source in trigger.sources for detail_type in trigger.detail_types):
            if first.setdefault(key, workflow.name) != workflow.name:
                later.add(workflow.name)
    return later


def unsoaked(manifest: Manifest) -> list[str]:
    """The workflows the soak puts no request of (no sample trigger anyone may put), each with why."""
    reserved = manifest.reserved_sources
    lines = []
    for workflow in manifest.workflows:
        samples = sample_triggers(workflow)
        if not samples:
            lines.append(f"{workflow.name} (no sample trigger)")
        elif all(entry["Source"] in reserved for entry in samples):
            lines.append(f"{workflow.name} (its samples come from {', '.join(sorted({e['Source'] for e in samples}))},"
                         " which only its function may put: it runs on the soaked workflows' events)")
    return lines


def put_batches(requests: Sequence[SoakRequest], size: int = PUT_BATCH) -> list[list[SoakRequest]]:
    """The requests in PutEvents calls of at most ``size`` entries, a request never split."""
    batches: list[list[SoakRequest]] = [[]]
    for request in requests:
        if batches[-1] and sum(len(r.entries) for r in batches[-1]) + len(request.entries) > size:
            batches.append([])
        batches[-1].append(request)
    return [b for b in batches if b]
