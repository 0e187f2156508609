"""A failed record comes back after a short back-off, not the queue's visibility timeout; the poison path says
what happened; every record's log lines carry its request's id (code review bb10d, findings 1, 2 and 14)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentbus.local.lambda_events import LambdaContext, eventbridge_envelope, sqs_event, sqs_record
from functions.common.consumer import (
    RETRY_BASE_S,
    RETRY_CAP_S,
    RETRY_MIN_S,
    RetryBackoff,
    consume,
    correlation_of,
    parse_record,
    workflow_id_of,
)
from functions.common.dead_letters import PoisonMessage, keep_visibility
from functions.manifest import MANIFEST

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:agentbus-fraud"
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/agentbus-fraud"
EVENTS = Path(__file__).resolve().parents[2] / "events"


class StubSqs:
    """What the back-off calls: GetQueueUrl and ChangeMessageVisibility, recorded; ``refuse`` makes the latter
    raise."""

    def __init__(self, refuse: Exception | None = None) -> None:
        self.refuse = refuse
        self.url_asked: list[dict[str, Any]] = []
        self.changed: list[dict[str, Any]] = []

    def get_queue_url(self, **kwargs: Any) -> dict[str, Any]:
        self.url_asked.append(kwargs)
        return {"QueueUrl": f"https://sqs.us-east-1.amazonaws.com/{kwargs['QueueOwnerAWSAccountId']}/"
                            f"{kwargs['QueueName']}"}

    def change_message_visibility(self, **kwargs: Any) -> dict[str, Any]:
        if self.refuse is not None:
            raise self.refuse
        self.changed.append(kwargs)
        return {}


class KeptLetters:
    def __init__(self, refuse: bool = False, said: list[str] | None = None) -> None:
        self.refuse = refuse
        self.said = said if said is not None else []
        self.kept: list[tuple[str, str]] = []

    def keep(self, body: str, reason: str, source_queue_arn: str | None = None) -> None:
        self.said.append("keep")
        if self.refuse:
            raise ConnectionError("sqs unreachable")
        self.kept.append((body, reason))


def envelope(order_id: str) -> dict[str, Any]:
    return eventbridge_envelope("Order Placed", "agentbus.orders", {"order_id": order_id})


def always_boom(event: Any) -> None:
    raise ValueError("boom")


def run(handle: Any, *receive_counts: int, sqs: StubSqs, letters: Any = None, max_receive_count: int | None = 5,
        body: Any = None) -> dict[str, Any]:
    records = [sqs_record(body if body is not None else envelope(f"ord-{i}"), QUEUE_ARN, message_id=f"m{i}",
                          receipt_handle=f"handle-{i}", receive_count=count)
               for i, count in enumerate(receive_counts)]
    return consume(sqs_event(records), LambdaContext("test"), handle,
                   KeptLetters() if letters is None else letters, max_receive_count=max_receive_count,
                   backoff=RetryBackoff(sqs))


# -- the back-off's bounds ----------------------------------------------------------------------------------

def test_the_ceiling_doubles_from_the_base_with_each_receive_up_to_the_cap():
    backoff = RetryBackoff(StubSqs())
    assert (RETRY_MIN_S, RETRY_BASE_S, RETRY_CAP_S) == (1, 2, 60)
    assert [backoff.ceiling_s(n) for n in range(1, 9)] == [2, 4, 8, 16, 32, 60, 60, 60]
    assert backoff.ceiling_s(10**6) == 60  # no overflow on an absurd receive count
    assert backoff.ceiling_s(0) == 2


def test_the_delay_is_full_jitter_in_whole_seconds_never_zero():
    backoff = RetryBackoff(StubSqs(), uniform=lambda low, high: low)
    assert [backoff.seconds(n) for n in (1, 4, 9)] == [1, 1, 1]  # the bottom of the range: never 0 (at once)
    backoff = RetryBackoff(StubSqs(), uniform=lambda low, high: high)
    assert [backoff.seconds(n) for n in (1, 4, 9)] == [2, 16, 60]
    drawn = {RetryBackoff(StubSqs()).seconds(4) for _ in range(200)}
    assert drawn <= set(range(1, 17)) and len(drawn) > 3  # jittered, within [1, 16]


# -- a record that will be retried comes back after its back-off ---------------------------------------------

def test_a_failing_record_that_will_be_retried_gets_its_visibility_shortened_within_the_bounds():
    sqs = StubSqs()
    response = run(always_boom, 1, 3, sqs=sqs)
    # The record with more receives is handled first (its failure reported first): order means nothing to Lambda.
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m0"}]}
    assert sqs.url_asked == [{"QueueName": "agentbus-fraud", "QueueOwnerAWSAccountId": "123456789012"}]  # once
    by_handle = {c["ReceiptHandle"]: c for c in sqs.changed}
    assert set(by_handle) == {"handle-0", "handle-1"}
    assert all(c["QueueUrl"] == QUEUE_URL for c in sqs.changed)
    assert 1 <= by_handle["handle-0"]["VisibilityTimeout"] <= 2  # receive 1: within [1, 2]
    assert 1 <= by_handle["handle-1"]["VisibilityTimeout"] <= 8  # receive 3: within [1, 8]


def test_the_queue_url_is_asked_once_per_queue_and_execution_environment():
    sqs = StubSqs()
    backoff = RetryBackoff(sqs)
    for _ in range(3):
        event = sqs_event([sqs_record(envelope("a"), QUEUE_ARN, message_id="m0")])
        consume(event, LambdaContext("test"), always_boom, KeptLetters(), backoff=backoff)
    assert len(sqs.url_asked) == 1 and len(sqs.changed) == 3


def test_the_record_on_its_last_receive_is_not_given_a_back_off():
    sqs = StubSqs()
    letters = KeptLetters()
    response = run(always_boom, 5, sqs=sqs, letters=letters)
    assert response == {"batchItemFailures": []}  # kept in the dead-letter queue, acknowledged
    assert len(letters.kept) == 1 and sqs.changed == []
    # Nor when keeping it fails, or there is no sink: the redrive policy moves it, a back-off would only hurry that.
    assert run(always_boom, 5, sqs=sqs, letters=KeptLetters(refuse=True)) == {
        "batchItemFailures": [{"itemIdentifier": "m0"}]}
    event = sqs_event([sqs_record(envelope("a"), QUEUE_ARN, message_id="m0", receive_count=5)])
    assert consume(event, LambdaContext("test"), always_boom, None, max_receive_count=5,
                   backoff=RetryBackoff(sqs)) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert sqs.changed == []


# -- a batch that would outlast the invocation (code review bb11d #2, bb12d #2) -------------------------------

class Clock:
    """An invocation's remaining time and the consumer's monotonic time, which each handled record moves by
    ``per_record_ms``."""

    def __init__(self, timeout_ms: int, per_record_ms: int) -> None:
        self.left_ms, self.per_record_ms = timeout_ms, per_record_ms
        self.monotonic_s = 0.0
        self.started: list[str] = []

    def get_remaining_time_in_millis(self) -> int:
        return self.left_ms

    def handle(self, event: Any) -> None:
        self.started.append(event.detail["order_id"])
        self.left_ms -= self.per_record_ms
        self.monotonic_s += self.per_record_ms / 1000


def slow_batch(clock: Clock, *receive_counts: int, sqs: StubSqs, letters: KeptLetters, monkeypatch: Any,
               last: Any = None) -> dict[str, Any]:
    import functions.common.consumer as consumer

    monkeypatch.setattr(consumer.time, "monotonic", lambda: clock.monotonic_s)
    records = [sqs_record(envelope(f"ord-{i}"), QUEUE_ARN, message_id=f"m{i}", receipt_handle=f"handle-{i}",
                          receive_count=count) for i, count in enumerate(receive_counts)]
    return consume(sqs_event(records), clock, clock.handle, letters, max_receive_count=5, backoff=RetryBackoff(sqs),
                   last=last)


def test_records_the_invocation_has_no_time_left_for_are_not_started_and_get_their_back_off(monkeypatch):
    # Ten records at 3 s each in a 30 s function: the tenth would have timed the invocation out, and every record
    # of the batch would have come back only after the 180 s visibility timeout.
    sqs, letters = StubSqs(), KeptLetters()
    clock = Clock(timeout_ms=30_000, per_record_ms=3_000)
    response = slow_batch(clock, *[1] * 10, sqs=sqs, letters=letters, monkeypatch=monkeypatch)
    # After 8 records 6 s are left: the 9th starts (3 s + the 2 s margin fit), the 10th does not (3 s left).
    assert clock.started == [f"ord-{i}" for i in range(9)]
    assert response == {"batchItemFailures": [{"itemIdentifier": "m9"}]}
    assert [c["ReceiptHandle"] for c in sqs.changed] == ["handle-9"] and letters.kept == []
    assert 1 <= sqs.changed[0]["VisibilityTimeout"] <= 2


def test_records_on_their_last_receive_go_first_and_always_start(monkeypatch):
    # Code review bb12e, F2: refused on its last receive, a record was dead-lettered without ever being tried.
    sqs, letters = StubSqs(), KeptLetters()
    clock = Clock(timeout_ms=5_000, per_record_ms=4_000)
    response = slow_batch(clock, 1, 5, 5, sqs=sqs, letters=letters, monkeypatch=monkeypatch)
    assert clock.started == ["ord-1", "ord-2"]  # the last receives first; the second starts with 1 s left
    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}]} and letters.kept == []
    assert [c["ReceiptHandle"] for c in sqs.changed] == ["handle-0"]


def test_a_mock_context_leaves_the_guard_out(monkeypatch):
    # Code review bb12e, F8: a user's test with a MagicMock context failed every record after the first.
    from unittest.mock import MagicMock

    handled: list[str] = []
    records = [sqs_record(envelope(f"ord-{i}"), QUEUE_ARN, message_id=f"m{i}") for i in range(3)]
    response = consume(sqs_event(records), MagicMock(), lambda event: handled.append(event.detail["order_id"]),
                       KeptLetters(), max_receive_count=5, backoff=RetryBackoff(StubSqs()))
    assert response == {"batchItemFailures": []} and handled == ["ord-0", "ord-1", "ord-2"]


def test_the_deadlines_handled_last_share_the_invocations_time(monkeypatch):
    # Code review bb12e, F1: the second half of a batch split by ``last`` started with a fresh guard.
    clock = Clock(timeout_ms=5_000, per_record_ms=3_500)
    response = slow_batch(clock, 1, 1, sqs=StubSqs(), letters=KeptLetters(), monkeypatch=monkeypatch,
                          last=lambda body: '"ord-0"' in body)
    assert clock.started == ["ord-1"] and response == {"batchItemFailures": [{"itemIdentifier": "m0"}]}


def test_the_first_record_always_starts_and_quick_records_all_start(monkeypatch):
    clock = Clock(timeout_ms=1_000, per_record_ms=50)  # less than the margin left from the start
    response = slow_batch(clock, 1, 1, 1, sqs=StubSqs(), letters=KeptLetters(), monkeypatch=monkeypatch)
    assert clock.started == ["ord-0"] and len(response["batchItemFailures"]) == 2
    clock = Clock(timeout_ms=30_000, per_record_ms=50)
    response = slow_batch(clock, *[1] * 10, sqs=StubSqs(), letters=KeptLetters(), monkeypatch=monkeypatch)
    assert len(clock.started) == 10 and response == {"batchItemFailures": []}


def test_a_record_handled_or_dead_lettered_as_poison_keeps_its_visibility():
    sqs = StubSqs()
    assert run(lambda event: None, 1, sqs=sqs) == {"batchItemFailures": []}
    assert run(always_boom, 1, sqs=sqs, body="not json") == {"batchItemFailures": []}
    assert sqs.changed == [] and sqs.url_asked == []


def test_a_failure_marked_to_keep_its_visibility_is_not_given_a_back_off():
    sqs = StubSqs()

    def handle(event: Any) -> None:
        raise keep_visibility(ConnectionError("lease held, not released"))

    assert run(handle, 1, sqs=sqs) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert sqs.changed == []


def test_without_a_max_receive_count_every_failure_backs_off():
    sqs = StubSqs()
    run(always_boom, 7, sqs=sqs, max_receive_count=None)
    [change] = sqs.changed
    assert 1 <= change["VisibilityTimeout"] <= 60


def test_an_sqs_error_changing_the_visibility_is_logged_and_the_batch_result_is_unchanged(monkeypatch):
    from botocore.exceptions import ClientError

    from functions.common import consumer

    warnings: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(consumer.logger, "warning",
                        lambda message, **kwargs: warnings.append((message, kwargs.get("extra", {}))))
    refused = ClientError({"Error": {"Code": "ReceiptHandleIsInvalid", "Message": "expired"}},
                          "ChangeMessageVisibility")

    def handle(event: Any) -> None:
        if event.detail["order_id"] == "ord-1":
            raise ValueError("boom")

    response = run(handle, 1, 2, 1, sqs=StubSqs(refuse=refused))
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert [message for message, _ in warnings] == [
        "record failed; SQS will deliver it again",
        "could not shorten the failed record's visibility; it comes back after the queue's visibility timeout"]
    assert "ReceiptHandleIsInvalid" in warnings[1][1]["error"] and warnings[1][1]["receive_count"] == 2


def test_an_unreadable_queue_arn_or_a_failing_get_queue_url_is_only_logged():
    class NoUrl(StubSqs):
        def get_queue_url(self, **kwargs: Any) -> dict[str, Any]:
            raise ConnectionError("endpoint unreachable")

    for sqs, arn in ((StubSqs(), "not-an-arn"), (NoUrl(), QUEUE_ARN)):
        event = sqs_event([sqs_record(envelope("a"), arn, message_id="m0")])
        response = consume(event, LambdaContext("test"), always_boom, KeptLetters(), max_receive_count=5,
                           backoff=RetryBackoff(sqs))
        assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
        assert sqs.changed == []


def test_on_moto_the_record_is_hidden_for_its_back_off_and_the_local_runtimes_reset_still_works(aws):
    """The local runtime sets a failed message's visibility to 1 s after the handler returned: its call comes
    after the function's and wins; it must not fail because the function changed the visibility first."""
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="agentbus-backoff")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(envelope("ord-7")))
    # Received visible again at once (0 s): only the back-off can hide it now.
    [message] = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, AttributeNames=["All"])["Messages"]
    record = sqs_record(message["Body"], arn, message_id=message["MessageId"],
                        receipt_handle=message["ReceiptHandle"], receive_count=1)
    backoff = RetryBackoff(sqs, uniform=lambda low, high: high)
    response = consume(sqs_event([record]), LambdaContext("test"), always_boom, KeptLetters(),
                       max_receive_count=5, backoff=backoff)
    assert response == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []  # hidden for its 2 s back-off
    sqs.change_message_visibility_batch(QueueUrl=url, Entries=[  # the local runtime's retry_after_s
        {"Id": "0", "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 0}])
    assert len(sqs.receive_message(QueueUrl=url)["Messages"]) == 1
    assert backoff._queue_urls == {arn: url}


# -- the poison path says what happened (finding 14) --------------------------------------------------------

def poison(event: Any) -> None:
    raise PoisonMessage("invalid OrderPlaced: order_id: missing")


def said_by_consumer(monkeypatch: pytest.MonkeyPatch, said: list[str]) -> None:
    from functions.common import consumer

    for level in ("error", "exception", "warning"):
        monkeypatch.setattr(consumer.logger, level,
                            lambda message, level=level, **kwargs: said.append(f"{level}: {message}"))


def test_poison_is_said_kept_only_after_it_was_kept(monkeypatch):
    said: list[str] = []
    said_by_consumer(monkeypatch, said)
    sqs = StubSqs()
    response = run(poison, 1, sqs=sqs, letters=KeptLetters(said=said))
    assert response == {"batchItemFailures": []}
    assert said == ["keep", "error: poison message kept in the dead-letter queue"]
    assert sqs.changed == []


def test_poison_that_cannot_be_dead_lettered_says_so_and_is_retried_after_its_back_off(monkeypatch):
    said: list[str] = []
    said_by_consumer(monkeypatch, said)
    sqs = StubSqs()
    response = run(poison, 2, sqs=sqs, letters=KeptLetters(refuse=True, said=said))
    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert said == ["keep", "exception: poison message could not be dead-lettered; SQS will retry it"]
    assert len(sqs.changed) == 1


def test_poison_without_a_sink_is_not_said_kept(monkeypatch):
    said: list[str] = []
    said_by_consumer(monkeypatch, said)
    event = sqs_event([sqs_record(envelope("a"), QUEUE_ARN, message_id="m0")])
    assert consume(event, LambdaContext("test"), poison, None) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert len(said) == 1 and "kept" not in said[0] and said[0].startswith("error: poison message")


# -- correlation ids (finding 1) -----------------------------------------------------------------------------

def sample(name: str) -> Any:
    entry = json.loads((EVENTS / name).read_text())[0]
    return parse_record(json.dumps(eventbridge_envelope(entry["DetailType"], entry["Source"],
                                                        json.loads(entry["Detail"]))))


@pytest.mark.parametrize(("name", "expected"), [
    ("order-placed.json", "ord-1001"),  # triggers: their workflow's id field, from the manifest
    ("access-requested.json", None),
    ("user-created.json", None),
    ("order-verified.json", "ord-1001"),  # results, deadlines, cancels, outcomes: detail.workflow_id
    ("workflow-deadline-reached.json", "ord-1001"),
    ("workflow-cancel-requested.json", "ord-1001"),
    ("order-completed.json", "ord-1001"),
])
def test_the_correlation_id_is_the_requests_id(name: str, expected: str | None):
    event = sample(name)
    if expected is None:  # the trigger's own id field, whatever it is called
        [workflow] = [w for w in MANIFEST.workflows if w.trigger.matches(event.source, event.detail_type)]
        assert workflow.id_field != "workflow_id"
        expected = event.detail[workflow.id_field]
    assert correlation_of(MANIFEST)(event) == expected


def test_without_an_id_there_is_no_correlation_id():
    event = parse_record(json.dumps(eventbridge_envelope("Order Placed", "agentbus.orders", {"order_id": {"x": 1}})))
    assert correlation_of(MANIFEST)(event) is None
    assert workflow_id_of(parse_record(json.dumps(envelope("a")))) is None
