"""The promises agentbus makes, checked against what the tables and the bus actually hold.

- exactly one outcome per workflow (copies of it may be delivered, all with the same idempotency key);
- stock is conserved: for every SKU, on hand + reserved = initial stock;
- reserved counts only HELD reservations, and only completed orders hold one;
- the orders table (the main database) agrees with the outcome events.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from agentbus.observe import BusObserver
from agentbus.resources import Resources

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


def check(dynamodb: Any, resources: Resources, observer: BusObserver, workflow_ids: list[str],
          initial_stock: dict[str, int]) -> InvariantReport:
    report = InvariantReport(workflows=len(workflow_ids))
    status_by_order: dict[str, str] = {}
    counts: dict[str, int] = defaultdict(int)
    for workflow_id in workflow_ids:
        outcomes = observer.outcomes(workflow_id)
        keys = {e.detail.get("idempotency_key") for e in outcomes}
        statuses = {e.detail.get("status") for e in outcomes}
        if not outcomes:
            report.violations.append(f"{workflow_id}: no outcome")
            continue
        if len(keys) != 1 or len(statuses) != 1:
            report.violations.append(f"{workflow_id}: {len(statuses)} different outcomes {sorted(map(str, statuses))}")
        report.duplicate_deliveries += len(outcomes) - 1
        status = outcomes[0].detail["status"]
        status_by_order[workflow_id] = status
        counts[status] += 1
    report.outcomes = dict(counts)

    orders = {item["order_id"]: item for item in scan(dynamodb, resources.tables["orders"])}
    for order_id, status in status_by_order.items():
        stored = orders.get(order_id, {}).get("status")
        if stored != status:
            report.violations.append(f"{order_id}: orders table says {stored!r}, the outcome event {status!r}")

    inventory = scan(dynamodb, resources.tables["inventory"])
    stock = {i["sku"]: i for i in inventory if str(i["pk"]).startswith("sku#")}
    held: dict[str, int] = defaultdict(int)
    for item in inventory:
        if not str(item["pk"]).startswith("reservation#"):
            continue
        order_id = item.get("order_id")
        if item.get("status") == "HELD":
            for line in item.get("lines", []):
                held[line["sku"]] += int(line["quantity"])
            if order_id in status_by_order and status_by_order[order_id] != "COMPLETED":
                report.violations.append(f"{order_id}: {status_by_order[order_id]} but its reservation is still held")
    for sku, initial in initial_stock.items():
        item = stock.get(sku)
        if item is None:
            report.violations.append(f"{sku}: stock item missing")
            continue
        on_hand, reserved = int(item["on_hand"]), int(item["reserved"])
        if on_hand + reserved != initial:
            report.violations.append(f"{sku}: on hand {on_hand} + reserved {reserved} != initial {initial}")
        if reserved != held[sku]:
            report.violations.append(f"{sku}: reserved {reserved} but held reservations add up to {held[sku]}")
    return report


def check_until_held(dynamodb: Any, resources: Resources, observer: BusObserver, workflow_ids: list[str],
                     initial_stock: dict[str, int], timeout_s: float = 30.0) -> InvariantReport:
    """Check until every invariant holds or ``timeout_s`` passes; return the last report.

    Compensation is eventual: an order's reservation is released after its outcome, and under chaos that
    release may itself be delayed, crashed and retried. A leak that is real is still there at the end.
    """
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        report = check(dynamodb, resources, observer, workflow_ids, initial_stock)
        if report.held or time.monotonic() >= deadline:
            return report
        time.sleep(0.5)
