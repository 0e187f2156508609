"""Lambda entry point of the shipping agent: ``Order Placed`` -> ``Shipping Quoted`` | ``Shipping Unavailable``."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from functions.common.agent import AgentRunner, dead_letter_sink, locate, sqs_function
from functions.common.clients import Clients, default_clients
from functions.common.observability import logger, metrics, tracer
from functions.common.publisher import EventPublisher
from functions.common.settings import Settings, settings
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


@cache
def _function() -> Callable[[dict, Any], dict]:
    return build(settings(), default_clients())


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict, context: Any) -> dict:
    metrics.add_metric(name="RecordsReceived", unit=MetricUnit.Count, value=len(event.get("Records", [])))
    return _function()(event, context)
