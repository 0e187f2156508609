"""Lambda entry point of the shipping agent: ``Order Placed`` -> ``Shipping Quoted`` | ``Shipping Unavailable``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from functions.common.agent import agent_function
from functions.common.clients import Clients
from functions.common.entry import lambda_handler
from functions.common.settings import Settings
from functions.orders.shipping.logic import quote

NAME = "shipping"


def build(settings: Settings, clients: Clients) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    return agent_function(NAME, settings, clients, decide=quote)


handler = lambda_handler(build)
