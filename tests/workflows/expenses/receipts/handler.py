"""Lambda entry point of the receipts agent: ``Expense Submitted`` -> ``Receipt Accepted`` | ``Receipt Missing``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from functions.common.agent import agent_function
from functions.common.clients import Clients
from functions.common.entry import lambda_handler
from functions.common.settings import Settings
from tests.workflows.expenses.models import amount
from tests.workflows.expenses.receipts.logic import ReceiptCheck

NAME = "receipts"


def build(settings: Settings, clients: Clients) -> Callable[[dict, Any], dict]:
    check = ReceiptCheck(threshold=amount(settings.parameter("RECEIPT_THRESHOLD")))
    return agent_function(NAME, settings, clients, decide=check.decide)


handler = lambda_handler(build)
