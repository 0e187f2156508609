"""The order's row in the orders table (the "main database"): a pure function of the finished workflow."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from functions.common.projection import FinishedWorkflow


def order_item(finished: FinishedWorkflow) -> dict[str, Any]:
    order = finished.trigger or {}
    return {
        "order_id": finished.workflow_id,
        "workflow": finished.workflow,
        "status": finished.status,
        "reason": finished.reason,
        "customer_id": order.get("customer_id"),
        "currency": order.get("currency"),
        "total": order_total(order),
        "items": order.get("items"),
        "shipping_address": order.get("shipping_address"),
        **finished.summary(),
    }


def order_total(order: dict[str, Any]) -> Decimal | None:
    """The order's total when its lines are finite numbers; None for an order that never validated."""
    try:
        total = sum(
            (Decimal(str(line["unit_price"])) * int(line["quantity"]) for line in order.get("items") or []),
            Decimal("0"),
        ) if order.get("items") else None
    except (KeyError, TypeError, ValueError, ArithmeticError):  # ArithmeticError: an infinite quantity, decimals
        return None
    return total if total is not None and total.is_finite() else None
