"""Lambda entry point of the inventory agent.

``Order Placed`` -> ``Items Reserved`` | ``Items Unavailable``; ``Order Rejected`` / ``Order Timed Out``
from the coordinator -> the order's reservation is released (compensation, nothing published).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from functions.common.agent import AgentRunner, dead_letter_sink, locate, sqs_function
from functions.common.clients import Clients
from functions.common.consumer import validate
from functions.common.dead_letters import PoisonMessage
from functions.common.entry import lambda_handler
from functions.common.models import BusEvent, WorkflowOutcome
from functions.common.observability import logger
from functions.common.publisher import EventPublisher
from functions.common.settings import Settings
from functions.inventory.logic import Inventory
from functions.inventory.store import DynamoInventoryStore
from functions.manifest import COORDINATOR_SOURCE

NAME = "inventory"


def build(settings: Settings, clients: Clients) -> Callable[[dict, Any], dict]:
    agent, workflow = locate(NAME)
    inventory = Inventory(DynamoInventoryStore(clients.dynamodb, settings.inventory_table))
    runner = AgentRunner(
        agent, workflow, EventPublisher(clients.events, settings.event_bus_name),
        act=inventory.reserve,
        simulated_work_ms=settings.simulated_work_ms,
    )

    def route(event: BusEvent) -> None:
        if event.source == COORDINATOR_SOURCE and event.detail_type in agent.compensate_on:
            outcome = validate(WorkflowOutcome, event.detail)
            done = inventory.release(outcome)
            logger.info("compensation", extra={"order_id": outcome.order_id, "status": outcome.status,
                                               "done": done})
        elif workflow.trigger.matches(event.source, event.detail_type):
            runner.handle(event)
        else:
            raise PoisonMessage(f"agent {NAME!r} does not handle {event.detail_type!r} from {event.source!r}")

    return sqs_function(route, dead_letter_sink(settings, clients, agent.name),
                        concurrency=settings.record_concurrency)


handler = lambda_handler(build)
