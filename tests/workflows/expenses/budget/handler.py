"""Lambda entry point of the budget agent: ``Expense Submitted`` -> ``Budget Available`` | ``Budget Exceeded``.

Reads the expense-budgets table (partition key ``category``, attribute ``remaining``).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from functions.common.agent import agent_function
from functions.common.clients import Clients
from functions.common.entry import lambda_handler
from functions.common.settings import Settings
from tests.workflows.expenses.budget.logic import BudgetCheck

NAME = "budget"


def build(settings: Settings, clients: Clients) -> Callable[[dict, Any], dict]:
    table = settings.table("expense-budgets")

    def remaining(category: str) -> Decimal | None:
        item = clients.dynamodb.get_item(TableName=table, Key={"category": {"S": category}},
                                         ConsistentRead=True).get("Item")
        return Decimal(item["remaining"]["N"]) if item else None

    return agent_function(NAME, settings, clients, decide=BudgetCheck(remaining).decide)


handler = lambda_handler(build)
