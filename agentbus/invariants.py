"""The promises agentbus makes, checked against what the tables and the bus actually hold, for any manifest.

Generic, for every coordinated workflow:
- exactly one outcome per workflow (copies of it may be delivered, all with the same idempotency key);
- its main table (the manifest's projection), if it has one, agrees with the outcome event;
- no record is RUNNING once its deadline has passed (checked by ``check_settled``).
For every standalone workflow: each agent published one result per version of its trigger, and no workflow record
exists.
Per workflow, a hook of its own (``Workflow.invariants``, an import path): e.g. a stock conserved, held only by
the requests that completed.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from agentbus.observe import BusObserver
from agentbus.resources import Resources
from functions.common.spec import Manifest, resolve
from functions.manifest import MANIFEST

_deserialize = TypeDeserializer().deserialize


def scan(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    items = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        items += [{k: _deserialize(v) for k, v in item.items()} for item in page.get("Items", [])]
    return items


@dataclass
class InvariantReport:
    workflows: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    duplicate_deliveries: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def held(self) -> bool:
        return not self.violations


def check(dynamodb: Any, resources: Resources, observer: BusObserver, workflows: Mapping[str, Sequence[str]],
          manifest: Manifest = MANIFEST) -> InvariantReport:
    """``workflows``: workflow name -> the ids put for it."""
    report = InvariantReport(workflows=sum(len(ids) for ids in workflows.values()))
    counts: dict[str, int] = defaultdict(int)
    for name, ids in workflows.items():
        workflow = manifest.workflow(name)
        if not workflow.coordinated:
            report.violations += _check_standalone(dynamodb, resources, observer, workflow, ids)
            continue
        statuses: dict[str, str] = {}
        for workflow_id in ids:
            outcomes = observer.outcomes(workflow_id, name)
            if not outcomes:
                report.violations.append(f"{name} {workflow_id}: no outcome")
                continue
            keys = {e.detail.get("idempotency_key") for e in outcomes}
            kinds = {e.detail.get("status") for e in outcomes}
            if len(keys) != 1 or len(kinds) != 1:
                report.violations.append(f"{name} {workflow_id}: {len(kinds)} different outcomes "
                                         f"{sorted(map(str, kinds))}")
            report.duplicate_deliveries += len(outcomes) - 1
            statuses[workflow_id] = outcomes[0].detail["status"]
            counts[statuses[workflow_id]] += 1
        if workflow.projection:
            table = manifest.table(workflow.projection.table)
            for workflow_id, status in statuses.items():
                item = dynamodb.get_item(TableName=resources.tables[table.logical_name],
                                         Key={table.partition_key: {"S": workflow_id}}, ConsistentRead=True)
                stored = _deserialize(item["Item"]["status"]) if "status" in item.get("Item", {}) else None
                if stored != status:
                    report.violations.append(f"{name} {workflow_id}: {table.logical_name} table says {stored!r}, "
                                             f"the outcome event {status!r}")
        if workflow.invariants:
            report.violations += resolve(workflow.invariants)(dynamodb, resources.tables, statuses)
    report.outcomes = dict(counts)
    return report


def _check_standalone(dynamodb: Any, resources: Resources, observer: BusObserver, workflow: Any,
                      ids: Sequence[str]) -> list[str]:
    violations = []
    for workflow_id in ids:
        events = observer.events(workflow_id, workflow.name)
        for agent in workflow.agents:
            # One result per version of the trigger the agent acted on (copies of it share its key).
            results = [e.detail for e in events if e.source == agent.source]
            keys = {d.get("idempotency_key") for d in results}
            versions = {d.get("trigger_digest") for d in results}
            if not results or len(keys) != len(versions):
                violations.append(f"{workflow.name} {workflow_id}: {len(keys)} different results from {agent.name} "
                                  f"for {len(versions)} version(s) of its trigger")
        if "workflows" in resources.tables:
            found = dynamodb.get_item(TableName=resources.tables["workflows"], ConsistentRead=True,
                                      Key={"workflow_id": {"S": workflow_id}, "workflow": {"S": workflow.name}})
            if found.get("Item"):
                violations.append(f"{workflow.name} {workflow_id}: a standalone workflow got a workflow record")
    return violations


def check_until_held(dynamodb: Any, resources: Resources, observer: BusObserver,
                     workflows: Mapping[str, Sequence[str]], manifest: Manifest = MANIFEST,
                     timeout_s: float = 30.0) -> InvariantReport:
    """Check until every invariant holds or ``timeout_s`` passes; return the last report.

    Compensation is eventual: an order's reservation is released after its outcome, and under chaos that
    release may itself be delayed, crashed and retried. A leak that is real is still there at the end.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        report = check(dynamodb, resources, observer, workflows, manifest)
        if report.held or time.monotonic() >= deadline:
            return report
        time.sleep(0.5)
