"""The budget agent's decision: the claim fits in its category's remaining budget (read from a table)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from functions.common.decisions import Decision
from tests.workflows.expenses.models import ExpenseSubmitted

Remaining = Callable[[str], Decimal | None]


@dataclass(frozen=True)
class BudgetCheck:
    remaining: Remaining

    def decide(self, claim: ExpenseSubmitted) -> Decision:
        left = self.remaining(claim.category)
        if left is None:
            return Decision("Budget Exceeded", reason=f"no budget for category {claim.category!r}",
                            data={"category": claim.category})
        data = {"category": claim.category, "amount": str(claim.amount), "remaining": str(left)}
        if claim.amount <= left:
            return Decision("Budget Available", data=data)
        return Decision("Budget Exceeded", reason=f"{claim.amount} > {left} left in {claim.category}", data=data)
