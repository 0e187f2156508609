"""The SQS side of every function: partial batch failures, poison kept with its reason, failures logged."""

from __future__ import annotations

import json

from agentbus.local.lambda_events import LambdaContext, eventbridge_envelope, sqs_event, sqs_record
from functions.common.consumer import consume
from functions.common.dead_letters import PoisonMessage

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:agentbus-test"


class KeptLetters:
    def __init__(self):
        self.kept: list[tuple[str, str]] = []

    def keep(self, body: str, reason: str, source_queue_arn: str | None = None) -> None:
        self.kept.append((body, reason))


def envelope(order_id: str) -> dict:
    return eventbridge_envelope("Order Placed", "agentbus.orders", {"order_id": order_id})


def run(handle, *bodies, concurrency: int = 1):
    letters = KeptLetters()
    event = sqs_event([sqs_record(body, QUEUE_ARN, message_id=f"m{i}") for i, body in enumerate(bodies)])
    response = consume(event, LambdaContext("test"), handle, letters, concurrency=concurrency)
    return response, letters.kept


def test_only_the_failing_record_is_reported_and_its_error_is_logged(monkeypatch):
    from functions.common import consumer

    warnings: list[tuple[str, dict]] = []
    monkeypatch.setattr(consumer.logger, "warning",
                        lambda message, **kwargs: warnings.append((message, kwargs.get("extra", {}))))

    def handle(event):
        if event.detail["order_id"] == "bad":
            raise RuntimeError("downstream timed out")

    response, kept = run(handle, envelope("ok-1"), envelope("bad"), envelope("ok-2"))
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert kept == []
    assert warnings == [("record failed; SQS will deliver it again",
                         {"error": "RuntimeError: downstream timed out", "receive_count": "1"})]


def test_poison_is_kept_with_its_reason_and_acknowledged():
    def handle(event):
        raise PoisonMessage("invalid OrderPlaced: items.0.quantity: Input should be greater than 0")

    response, kept = run(handle, envelope("p-1"), "not json", json.dumps([1, 2]))
    assert response == {"batchItemFailures": []}
    reasons = [reason for _, reason in kept]
    assert reasons[0] == "invalid OrderPlaced: items.0.quantity: Input should be greater than 0"
    assert reasons[1].startswith("body is not JSON")
    assert reasons[2] == "body is not an EventBridge event: a JSON list"


def test_records_of_a_batch_run_concurrently_when_asked():
    import threading

    barrier = threading.Barrier(3, timeout=5)

    def handle(event):
        barrier.wait()  # only returns if all three records are being handled at the same time

    response, _ = run(handle, envelope("a"), envelope("b"), envelope("c"), concurrency=3)
    assert response == {"batchItemFailures": []}
