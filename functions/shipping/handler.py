"""Lambda entry point of the shipping agent: ``Order Placed`` -> ``Shipping Quoted`` | ``Shipping Unavailable``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from functions.common.agent import AgentRunner, dead_letter_sink, locate, sqs_function
from functions.common.clients import Clients
from functions.common.entry import lambda_handler
from functions.common.publisher import EventPublisher
from functions.common.settings import Settings
from functions.shipping.logic import quote

NAME = "shipping"


def build(settings: Settings, clients: Clients) -> Callable[[dict, Any], dict]:
    agent, workflow = locate(NAME)
    runner = AgentRunner(
        agent, workflow, EventPublisher(clients.events, settings.event_bus_name),
        decide=quote,
        simulated_work_ms=settings.simulated_work_ms,
    )
    return sqs_function(runner.handle, dead_letter_sink(settings, clients, agent.name),
                        concurrency=settings.record_concurrency)


handler = lambda_handler(build)
