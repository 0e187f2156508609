"""Lambda entry point of the fraud agent: ``Order Placed`` -> ``Order Verified`` | ``Order Flagged``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from functions.common.agent import agent_function
from functions.common.clients import Clients
from functions.common.entry import lambda_handler
from functions.common.settings import Settings
from functions.orders.fraud.logic import FraudPolicy
from functions.orders.workflow import FRAUD_LIMIT, amount

NAME = "fraud"


def build(settings: Settings, clients: Clients) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    policy = FraudPolicy(limit=amount(settings.parameter(FRAUD_LIMIT.env)))
    return agent_function(NAME, settings, clients, decide=policy.decide)


handler = lambda_handler(build)
