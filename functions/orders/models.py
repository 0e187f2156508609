"""The order-fulfillment workflow's trigger: ``Order Placed`` (the public contract in DESIGN.md)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from functions.common.models import NonEmpty, WorkflowIdField

# A line's quantity: a count of units, bounded so that every amount derived from it (the line's total at the
# largest price, its weight) stays within the 38 digits DynamoDB and the agents' decimals hold exactly.
MAX_QUANTITY = 1_000_000


class OrderLine(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sku: NonEmpty
    quantity: int = Field(gt=0, le=MAX_QUANTITY, strict=True)
    unit_price: Decimal = Field(ge=0, max_digits=14, decimal_places=2, allow_inf_nan=False)


class Address(BaseModel):
    model_config = ConfigDict(extra="ignore")

    country: Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{2}$")]
    postal_code: NonEmpty


class OrderPlaced(BaseModel):
    """Detail of ``Order Placed``: the trigger of the order-fulfillment workflow."""

    model_config = ConfigDict(extra="ignore")

    order_id: WorkflowIdField
    customer_id: NonEmpty
    currency: Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{3}$")]
    # At most 99 lines: inventory reserves an order in one DynamoDB transaction (100 actions incl. its record).
    items: list[OrderLine] = Field(min_length=1, max_length=99)
    shipping_address: Address

    @property
    def total(self) -> Decimal:
        return sum((line.unit_price * line.quantity for line in self.items), Decimal("0"))

    @field_validator("items")
    @classmethod
    def _skus_unique(cls, items: list[OrderLine]) -> list[OrderLine]:
        seen: set[str] = set()
        for index, line in enumerate(items):
            if line.sku in seen:
                raise ValueError(f"items[{index}].sku {line.sku!r} appears twice; merge the lines")
            seen.add(line.sku)
        return items
