"""The order workflow's benchmark requests (``Workflow.workload``): valid orders of one line of one unit each,
the SKUs of the seeded stock in turn, so that a thousand orders never run a SKU out of stock and every order
of a level costs the same (one stock item and one reservation per order)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from functions.common.spec import Workflow

REPO_ROOT = Path(__file__).resolve().parents[2]
STOCK_FILE = REPO_ROOT / "events" / "seed-stock.json"
UNIT_PRICE = 20.0


def seeded_skus() -> list[str]:
    """Every SKU of the stock seed file, sorted."""
    return sorted(json.loads(STOCK_FILE.read_text())["stock"])


def bench_orders(workflow: Workflow, prefix: str, count: int) -> list[dict[str, Any]]:
    """``count`` orders ``<prefix>-00000``… shaped like the workflow's first sample, one unit of one SKU each."""
    if not workflow.samples:
        raise ValueError(f"workflow {workflow.name!r} has no samples to shape its benchmark orders on")
    loaded = json.loads((REPO_ROOT / workflow.samples[0]).read_text())
    template = loaded[0] if isinstance(loaded, list) else loaded
    base = json.loads(template["Detail"])
    skus = seeded_skus()
    entries = []
    for index in range(count):
        detail = {**base, workflow.id_field: f"{prefix}-{index:05d}",
                  "items": [{"sku": skus[index % len(skus)], "quantity": 1, "unit_price": UNIT_PRICE}]}
        entries.append({"Source": template["Source"], "DetailType": template["DetailType"],
                        "Detail": json.dumps(detail)})
    return entries
