"""The order workflow's own invariants (``Workflow.invariants``), checked by ``agentbus/invariants.py``:

- stock is conserved: for every seeded SKU, on hand + reserved = its seeded stock;
- reserved counts only HELD reservations, and only completed orders hold one.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

SEED_FILE = Path(__file__).resolve().parents[2] / "events" / "seed-stock.json"
_deserialize = TypeDeserializer().deserialize


def seeded_stock() -> dict[str, int]:
    return dict(json.loads(SEED_FILE.read_text())["stock"])


def check(dynamodb: Any, tables: Mapping[str, str], statuses: Mapping[str, str],
          initial_stock: Mapping[str, int] | None = None) -> list[str]:
    initial = dict(initial_stock) if initial_stock is not None else seeded_stock()
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=tables["inventory"]):
        items += [{k: _deserialize(v) for k, v in item.items()} for item in page.get("Items", [])]
    violations = []
    stock = {i["sku"]: i for i in items if str(i["pk"]).startswith("sku#")}
    held: dict[str, int] = defaultdict(int)
    item: dict[str, Any] | None
    for item in items:
        if not str(item["pk"]).startswith("reservation#") or item.get("status") != "HELD":
            continue
        order_id = item.get("order_id")
        for line in item.get("lines", []):
            held[line["sku"]] += int(line["quantity"])
        if order_id is not None and order_id in statuses and statuses[order_id] != "COMPLETED":
            violations.append(f"{order_id}: {statuses[order_id]} but its reservation is still held")
    for sku, units in initial.items():
        item = stock.get(sku)
        if item is None:
            violations.append(f"{sku}: stock item missing")
            continue
        on_hand, reserved = int(item["on_hand"]), int(item["reserved"])
        if on_hand + reserved != units:
            violations.append(f"{sku}: on hand {on_hand} + reserved {reserved} != initial {units}")
        if reserved != held[sku]:
            violations.append(f"{sku}: reserved {reserved} but held reservations add up to {held[sku]}")
    return violations
