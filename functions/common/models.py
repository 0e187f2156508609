"""Typed models for every event detail on the bus (the public contracts in DESIGN.md)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]


class BusEvent(BaseModel):
    """The EventBridge envelope as delivered to an SQS target.

    Powertools' ``EventBridgeModel`` requires ``account``, which the local emulator omits, so this
    envelope keeps only what agentbus reads.
    """

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    id: str
    source: str
    detail_type: str = Field(alias="detail-type")
    time: str | None = None
    account: str | None = None
    region: str | None = None
    resources: list[str] = Field(default_factory=list)
    detail: dict[str, Any]
    replay_name: str | None = Field(default=None, alias="replay-name")


class OrderLine(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sku: NonEmpty
    quantity: int = Field(gt=0, strict=True)
    unit_price: Decimal = Field(ge=0, max_digits=14, decimal_places=2, allow_inf_nan=False)


class Address(BaseModel):
    model_config = ConfigDict(extra="ignore")

    country: Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{2}$")]
    postal_code: NonEmpty


class OrderPlaced(BaseModel):
    """Detail of ``Order Placed``: the trigger of the order-fulfillment workflow."""

    model_config = ConfigDict(extra="ignore")

    order_id: NonEmpty
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


class AgentResult(BaseModel):
    """Detail of every agent result event (``Order Verified``, ``Items Reserved``, ...)."""

    model_config = ConfigDict(extra="ignore")

    workflow: NonEmpty
    workflow_id: NonEmpty
    order_id: NonEmpty
    agent: NonEmpty
    outcome: Literal["success", "failure"]
    reason: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    started_at: str
    finished_at: str
    duration_ms: float = Field(ge=0)
    idempotency_key: NonEmpty


class DeadlineReached(BaseModel):
    """Detail of ``Workflow Deadline Reached``, sent by the workflow's one-time schedule."""

    model_config = ConfigDict(extra="ignore")

    workflow: NonEmpty
    workflow_id: NonEmpty


class WorkflowOutcome(BaseModel):
    """Detail of the terminal events ``Order Completed`` / ``Order Rejected`` / ``Order Timed Out``."""

    model_config = ConfigDict(extra="ignore")

    workflow: NonEmpty
    workflow_id: NonEmpty
    order_id: NonEmpty
    status: Literal["COMPLETED", "REJECTED", "TIMED_OUT"]
    reason: str | None = None
    results: dict[str, dict[str, Any]]
    missing: list[str] = Field(default_factory=list)
    timings: dict[str, Any]
    idempotency_key: NonEmpty


def describe_validation_error(error: Exception) -> str:
    """One line naming each bad field, e.g. ``items.0.quantity: Input should be greater than 0``."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return str(error)
    parts = []
    for item in errors():
        location = ".".join(str(part) for part in item.get("loc", ())) or "detail"
        parts.append(f"{location}: {item.get('msg')}")
    return "; ".join(parts)
