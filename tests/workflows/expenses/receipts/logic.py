"""The receipts agent's decision: a claim above the threshold needs a receipt."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from functions.common.decisions import Decision
from tests.workflows.expenses.models import ExpenseSubmitted


@dataclass(frozen=True)
class ReceiptCheck:
    threshold: Decimal

    def decide(self, claim: ExpenseSubmitted) -> Decision:
        data = {"amount": str(claim.amount), "threshold": str(self.threshold), "has_receipt": claim.has_receipt}
        if claim.has_receipt or claim.amount <= self.threshold:
            return Decision("Receipt Accepted", data=data)
        return Decision("Receipt Missing", reason=f"no receipt for {claim.amount} > {self.threshold}", data=data)
