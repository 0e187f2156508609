"""The SQS side of every function: partial batch failures, poison kept with its reason, failures logged."""

from __future__ import annotations

import json

import pytest

from agentbus.local.lambda_events import LambdaContext, eventbridge_envelope, sqs_event, sqs_record
from functions.common.consumer import consume
from functions.common.dead_letters import MAX_REASON_CHARS, PoisonMessage, bounded, failure_reason

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:agentbus-test"


class KeptLetters:
    def __init__(self):
        self.kept: list[tuple[str, str]] = []

    def keep(self, body: str, reason: str, source_queue_arn: str | None = None) -> None:
        self.kept.append((body, reason))


def envelope(order_id: str) -> dict:
    return eventbridge_envelope("Order Placed", "agentbus.orders", {"order_id": order_id})


def run(handle, *bodies, concurrency: int = 1, receive_count: int = 1, max_receive_count: int | None = None,
        letters=None):
    letters = KeptLetters() if letters is None else letters
    event = sqs_event([sqs_record(body, QUEUE_ARN, message_id=f"m{i}", receive_count=receive_count)
                       for i, body in enumerate(bodies)])
    response = consume(event, LambdaContext("test"), handle, letters, concurrency=concurrency,
                       max_receive_count=max_receive_count)
    return response, getattr(letters, "kept", None)


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


# -- dead-letter reasons say why (issue 10, case 7) --------------------------------------------------------

def always_boom(event):
    raise ValueError("boom")


def test_a_record_failing_every_receive_is_dead_lettered_with_its_error_on_the_last_one():
    body = json.dumps(envelope("ord-boom"))
    for receive in (1, 2):
        response, kept = run(always_boom, body, receive_count=receive, max_receive_count=3)
        assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}]}  # SQS delivers it again
        assert kept == []
    response, kept = run(always_boom, body, receive_count=3, max_receive_count=3)
    assert response == {"batchItemFailures": []}  # acknowledged: it is in the DLQ, with its reason
    assert kept == [(body, "ValueError: boom (failed on receive 3 of at most 3)")]


def test_a_receive_count_beyond_the_maximum_is_dead_lettered_too():
    _, kept = run(always_boom, envelope("ord-boom"), receive_count=5, max_receive_count=3)
    assert [reason for _, reason in kept] == ["ValueError: boom (failed on receive 5 of at most 3)"]


def test_only_the_record_on_its_last_receive_is_dead_lettered_in_a_concurrent_batch():
    letters = KeptLetters()
    records = [sqs_record(envelope(f"ord-{i}"), QUEUE_ARN, message_id=f"m{i}", receive_count=count)
               for i, count in enumerate((1, 3, 2))]
    response = consume(sqs_event(records), LambdaContext("test"), always_boom, letters, concurrency=3,
                       max_receive_count=3)
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == ["m0", "m2"]
    assert [json.loads(body)["detail"]["order_id"] for body, _ in letters.kept] == ["ord-1"]


def test_without_max_receive_count_every_failure_is_left_to_sqs():
    response, kept = run(always_boom, envelope("ord-boom"), receive_count=3)
    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert kept == []


def test_if_the_dead_letter_queue_refuses_the_record_fails_and_the_redrive_policy_is_the_backstop():
    class Refusing(KeptLetters):
        def keep(self, body, reason, source_queue_arn=None):
            raise ConnectionError("sqs unreachable")

    response, _ = run(always_boom, envelope("ord-boom"), receive_count=3, max_receive_count=3, letters=Refusing())
    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}]}


def test_without_a_sink_the_last_receive_is_left_to_the_redrive_policy():
    event = sqs_event([sqs_record(envelope("ord-boom"), QUEUE_ARN, message_id="m0", receive_count=3)])
    response = consume(event, LambdaContext("test"), always_boom, None, max_receive_count=3)
    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}]}


def test_max_receive_count_must_be_positive():
    with pytest.raises(ValueError, match="max_receive_count must be at least 1, got 0"):
        run(always_boom, envelope("x"), max_receive_count=0)


def test_the_reason_is_one_bounded_line_that_sqs_accepts():
    def handle(event):
        raise RuntimeError("line one\nline two\x00 " + "x" * 5000)

    _, kept = run(handle, envelope("ord-long"), receive_count=3, max_receive_count=3)
    [(_, reason)] = kept
    assert len(reason) == MAX_REASON_CHARS
    assert reason.startswith("RuntimeError: line one line two\\u0000 xxx")
    assert reason.endswith("… (failed on receive 3 of at most 3)")


def test_failure_reason_and_bounded():
    assert failure_reason(KeyError("sku")) == "KeyError: 'sku'"
    assert failure_reason(TimeoutError()) == "TimeoutError"
    assert bounded("") == "unknown"
    assert bounded("a\ud800b") == "a\\ud800b"  # an unpaired surrogate has no UTF-8 form: escaped
    assert bounded("é 😀") == "é 😀"


def test_the_reason_reaches_agentbus_dead_letters(aws):
    """A real DeadLetterSink on moto's SQS, read back by the operator verb as the runbook uses it."""
    import boto3

    from agentbus import operations
    from agentbus.discovery import Deployment
    from agentbus.resources import ConsumerResources, Resources
    from functions.common.dead_letters import DeadLetterSink

    sqs = boto3.client("sqs")
    dlq_url = sqs.create_queue(QueueName="agentbus-shipping-dlq")["QueueUrl"]
    queue_url = sqs.create_queue(QueueName="agentbus-shipping")["QueueUrl"]
    body = json.dumps(envelope("ord-boom"))
    run(always_boom, body, receive_count=3, max_receive_count=3,
        letters=DeadLetterSink(sqs, dlq_url, "shipping"))

    resources = Resources(bus_name="agentbus", bus_arn="arn", archive_name="a", schedule_group="g",
                          scheduler_role_arn="arn", tables={},
                          consumers={"shipping": ConsumerResources(queue_url, QUEUE_ARN, dlq_url, "arn:dlq")})
    [letter] = operations.dead_letters(Deployment(boto3.session.Session(), None, resources), "shipping")
    assert letter.agent == "shipping"
    assert letter.reason == "ValueError: boom (failed on receive 3 of at most 3)"
    assert letter.event == json.loads(body)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_records_picked_by_last_are_handled_after_the_batchs_others_and_failures_merge(concurrency):
    """The coordinator's deadlines come after what was read with them (black-box pass 9D, F10)."""
    import threading
    import time

    handled: list[str] = []
    lock = threading.Lock()

    def handle(event):
        if event.detail["order_id"] != "deadline":
            time.sleep(0.05)  # slower than the deadline would be, if it ran alongside
        with lock:
            handled.append(event.detail["order_id"])
        if event.detail["order_id"] in ("b", "deadline"):
            raise RuntimeError("retry me")

    event = sqs_event([sqs_record(body, QUEUE_ARN, message_id=f"m{i}") for i, body in
                       enumerate([envelope("deadline"), envelope("a"), envelope("b"), "not json"])])
    response = consume(event, LambdaContext("test"), handle, KeptLetters(), concurrency=concurrency,
                       last=lambda body: json.loads(body)["detail"]["order_id"] == "deadline")
    assert handled[-1] == "deadline" and sorted(handled[:-1]) == ["a", "b"]
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == ["m0", "m2"]
