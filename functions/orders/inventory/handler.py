"""Lambda entry point of the inventory agent.

``Order Placed`` -> ``Items Reserved`` | ``Items Unavailable``; ``Order Rejected`` / ``Order Timed Out``
from the coordinator -> the order's reservation is released (compensation, nothing published).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from functions.common.agent import agent_function
from functions.common.clients import Clients
from functions.common.entry import lambda_handler
from functions.common.settings import Settings
from functions.orders.inventory.logic import Inventory
from functions.orders.inventory.store import DynamoInventoryStore

NAME = "inventory"


def build(settings: Settings, clients: Clients) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    inventory = Inventory(DynamoInventoryStore(clients.dynamodb, settings.table("inventory")))
    return agent_function(NAME, settings, clients, act=inventory.reserve, compensate=inventory.release)


handler = lambda_handler(build)
