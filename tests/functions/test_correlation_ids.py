"""Every log line written while a function handles a record carries the request's id as ``correlation_id``:
a trigger's id field as its workflow names it (``order_id``...), ``workflow_id`` for what the coordinator and the
agents publish about it (code review bb10d, finding 1)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from agentbus.local.lambda_events import LambdaContext, eventbridge_envelope
from functions.common.clients import Clients
from functions.common.observability import logger
from functions.orders.fraud import handler as fraud
from tests.functions.coordinator_harness import Coordinator
from tests.functions.test_fraud_handler import batch, body, entry, settings_for


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The JSON lines the shared Powertools logger writes (at INFO) during the test."""
    stream = io.StringIO()
    old = logger.registered_handler.setStream(stream)
    level = logger.log_level
    logger.setLevel("INFO")
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    finally:
        logger.registered_handler.setStream(old)
        logger.setLevel(level)


def test_every_line_an_agent_logs_for_a_trigger_carries_its_id(aws, log_lines):
    session, resources = aws
    handle = fraud.build(settings_for(resources), Clients.create(session))
    assert handle(batch(resources, body("order-placed.json")), LambdaContext(function_name="fraud")) == {
        "batchItemFailures": []}
    lines = log_lines()
    assert "agent result published" in [line["message"] for line in lines]
    assert lines and all(line.get("correlation_id") == "ord-1001" for line in lines), lines


class FailingEvents:
    def __init__(self, events: Any) -> None:
        self.events = events

    def put_events(self, **kwargs: Any) -> dict[str, Any]:
        raise ConnectionError("events endpoint unreachable")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.events, name)


def test_every_line_of_a_failing_trigger_carries_its_id_too(aws, log_lines):
    """The failure's warning and the back-off's own (moto refuses the test's made-up receipt handle)."""
    session, resources = aws
    clients = Clients.create(session)
    handle = fraud.build(settings_for(resources), replace(clients, events=FailingEvents(clients.events)))
    response = handle(batch(resources, body("order-placed.json", order_id="ord-7007")),
                      LambdaContext(function_name="fraud"))
    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    lines = log_lines()
    messages = [line["message"] for line in lines]
    assert "record failed; SQS will deliver it again" in messages
    assert any(m.startswith("could not shorten the failed record's visibility") for m in messages), messages
    assert all(line.get("correlation_id") == "ord-7007" for line in lines), lines


def test_the_coordinators_lines_carry_the_triggers_and_the_results_id(aws, log_lines):
    c = Coordinator(*aws)
    placed = entry("order-placed.json")
    c.deliver(eventbridge_envelope(placed["DetailType"], placed["Source"], json.loads(placed["Detail"])))
    opened = log_lines()
    assert opened and all(line.get("correlation_id") == "ord-1001" for line in opened), opened
    verified = entry("order-verified.json")
    result = eventbridge_envelope(verified["DetailType"], verified["Source"], json.loads(verified["Detail"]))
    c.deliver(result)
    c.deliver(result)  # a duplicate: said at INFO
    lines = log_lines()[len(opened):]
    assert "duplicate result: already counted" in [line["message"] for line in lines]
    assert lines and all(line.get("correlation_id") == "ord-1001" for line in lines), lines
