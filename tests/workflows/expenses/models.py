"""The trigger of ``expense-claim``: ``Expense Submitted`` (source ``agentbus.expenses``)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from functions.common.models import NonEmpty, WorkflowIdField


class ExpenseSubmitted(BaseModel):
    model_config = ConfigDict(extra="ignore")

    claim_id: WorkflowIdField
    employee_id: NonEmpty
    category: NonEmpty
    amount: Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2)]
    has_receipt: bool
    submitted_at: AwareDatetime


def amount(text: str) -> Decimal:
    """A finite amount >= 0 (the RECEIPT_THRESHOLD parameter)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"must be a decimal amount, got {text!r}") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"must be a finite amount >= 0, got {text!r}")
    return value
