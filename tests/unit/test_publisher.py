"""EventPublisher: batching, partial-failure retries, size limits and the trace header (no AWS)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.common.publisher import (
    MAX_ENTRY_BYTES,
    Event,
    EventPublisher,
    EventTooLargeError,
    PublishError,
    entry_size,
    to_json,
)

SOURCE = "agentbus.agent.fraud"


class FakeEvents:
    """A PutEvents stand-in: records each call; ``fail(call_no, entry)`` decides which entries fail."""

    def __init__(self, fail=lambda call_no, entry: False):
        self.calls: list[list[dict[str, Any]]] = []
        self.fail = fail

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append([dict(entry) for entry in Entries])
        call_no = len(self.calls)
        results = [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"} if self.fail(call_no, entry)
            else {"EventId": f"id-{call_no}-{index}"}
            for index, entry in enumerate(Entries)
        ]
        return {"FailedEntryCount": sum(1 for r in results if "ErrorCode" in r), "Entries": results}


def events(count: int, size: int = 10) -> list[Event]:
    return [Event(detail_type="Order Verified", detail={"n": index, "pad": "x" * size}, source=SOURCE)
            for index in range(count)]


def numbers(entries: list[dict[str, Any]]) -> list[int]:
    return [json.loads(entry["Detail"])["n"] for entry in entries]


def publisher(client: FakeEvents, sleeps: list[float] | None = None, **kwargs: Any) -> EventPublisher:
    sleeps = [] if sleeps is None else sleeps
    return EventPublisher(client, "agentbus", sleep=sleeps.append, **kwargs)


def test_batches_hold_at_most_ten_entries_in_order():
    client = FakeEvents()
    publisher(client).publish(events(25))
    assert [len(call) for call in client.calls] == [10, 10, 5]
    assert [n for call in client.calls for n in numbers(call)] == list(range(25))
    assert all(entry["EventBusName"] == "agentbus" and entry["Source"] == SOURCE
               for call in client.calls for entry in call)


def test_nothing_to_publish_sends_nothing():
    client = FakeEvents()
    publisher(client).publish([])
    assert client.calls == []


def test_batches_stay_under_the_request_size_limit():
    # PutEvents limits the whole request, not only each entry, to 256 KB: ten 60 KB entries need 3+ calls.
    client = FakeEvents()
    publisher(client).publish(events(10, size=60 * 1024))
    assert len(client.calls) > 1
    for call in client.calls:
        assert sum(entry_size(entry) for entry in call) <= MAX_ENTRY_BYTES
    assert [n for call in client.calls for n in numbers(call)] == list(range(10))


def ceilings(low: float, high: float) -> float:
    """A stand-in for ``random.uniform``: the top of the jitter range, so each sleep is its ceiling."""
    assert low == 0
    return high


def test_only_failed_entries_are_retried_with_backoff():
    client = FakeEvents(fail=lambda call_no, entry: call_no == 1 and json.loads(entry["Detail"])["n"] in (1, 3))
    sleeps: list[float] = []
    publisher(client, sleeps, base_delay_s=0.05, uniform=ceilings).publish(events(5))
    assert [numbers(call) for call in client.calls] == [[0, 1, 2, 3, 4], [1, 3]]
    assert sleeps == [0.05]


def test_backoff_ceiling_doubles_between_attempts_up_to_its_cap():
    client = FakeEvents(fail=lambda call_no, entry: call_no < 6)
    sleeps: list[float] = []
    publisher(client, sleeps, base_delay_s=0.2, max_delay_s=1.0, max_attempts=6, retry_budget_s=10,
              uniform=ceilings).publish(events(2))
    assert len(client.calls) == 6
    assert sleeps == [0.2, 0.4, 0.8, 1.0, 1.0]


def test_backoff_is_full_jitter_below_its_ceiling():
    """Concurrent functions throttled together must not retry in lockstep: each sleep is drawn in [0, ceiling]."""
    drawn: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        drawn.append((low, high))
        return high / 4

    client = FakeEvents(fail=lambda call_no, entry: call_no < 4)
    sleeps: list[float] = []
    publisher(client, sleeps, base_delay_s=0.2, max_attempts=4, uniform=uniform).publish(events(1))
    assert drawn == [(0, 0.2), (0, 0.4), (0, 0.8)]
    assert sleeps == [0.05, 0.1, 0.2]


def test_default_jitter_varies_and_stays_within_its_ceiling():
    sleeps: list[float] = []
    for _ in range(20):
        client = FakeEvents(fail=lambda call_no, entry: call_no == 1)
        publisher(client, sleeps).publish(events(1))
    assert len(sleeps) == 20 and all(0 <= s <= 0.2 for s in sleeps)
    assert len(set(sleeps)) > 1


def test_retries_sleep_no_more_than_their_budget_in_all():
    client = FakeEvents(fail=lambda call_no, entry: True)
    sleeps: list[float] = []
    with pytest.raises(PublishError):
        publisher(client, sleeps, base_delay_s=1.0, max_delay_s=2.0, max_attempts=10, retry_budget_s=3.0,
                  uniform=ceilings).publish(events(1))
    assert sleeps == [1.0, 2.0]  # 3 s slept: the budget is spent, the third failure gives up
    assert len(client.calls) == 3


def test_the_defaults_retry_within_a_few_seconds():
    client = FakeEvents(fail=lambda call_no, entry: True)
    sleeps: list[float] = []
    with pytest.raises(PublishError):
        publisher(client, sleeps, uniform=ceilings).publish(events(1))
    assert 1.0 <= sum(sleeps) <= 3.0  # a few seconds, well inside a function's 30 s timeout


def test_the_last_attempt_says_it_gives_up_not_that_it_retries(monkeypatch):
    from functions.common import publisher as module

    said: list[tuple[str, int]] = []
    monkeypatch.setattr(module.logger, "warning",
                        lambda message, **kwargs: said.append((message, kwargs["extra"]["attempt"])))
    client = FakeEvents(fail=lambda call_no, entry: True)
    with pytest.raises(PublishError):
        publisher(client, max_attempts=3).publish(events(1))
    assert said == [("PutEvents partial failure; retrying the failed entries only", 1),
                    ("PutEvents partial failure; retrying the failed entries only", 2),
                    ("PutEvents partial failure; giving up on the failed entries", 3)]


def test_fault_publish_error_after_last_attempt():
    # Fault 6: PutEvents keeps rejecting an entry; the caller must learn it (and retry the message).
    client = FakeEvents(fail=lambda call_no, entry: json.loads(entry["Detail"])["n"] == 2)
    sleeps: list[float] = []
    with pytest.raises(PublishError) as raised:
        publisher(client, sleeps, max_attempts=3).publish(events(4))
    assert [numbers(call) for call in client.calls] == [[0, 1, 2, 3], [2], [2]]
    assert len(sleeps) == 2  # no sleep after the last attempt
    assert len(raised.value.failed) == 1
    assert "InternalFailure" in str(raised.value)


def test_fault_event_too_large_rejected_before_anything_is_sent():
    # Fault 11: an entry over 256 KB would never be accepted; fail fast, and send none of the batch.
    big = Event(detail_type="Order Verified", detail={"pad": "x" * MAX_ENTRY_BYTES}, source=SOURCE)
    client = FakeEvents()
    with pytest.raises(EventTooLargeError, match="256|262144"):
        publisher(client).publish([*events(3), big])
    assert client.calls == []


def test_entry_of_exactly_the_limit_is_accepted():
    client = FakeEvents()
    probe = publisher(client).entry(Event(detail_type="Order Verified", detail={"pad": ""}, source=SOURCE))
    padding = MAX_ENTRY_BYTES - entry_size(probe)
    exact = Event(detail_type="Order Verified", detail={"pad": "x" * padding}, source=SOURCE)
    publisher(client).publish([exact])
    assert entry_size(client.calls[0][0]) == MAX_ENTRY_BYTES
    too_big = Event(detail_type="Order Verified", detail={"pad": "x" * (padding + 1)}, source=SOURCE)
    with pytest.raises(EventTooLargeError):
        publisher(client).publish([too_big])


def test_entry_size_counts_utf8_bytes_and_time():
    entry = {"Source": "s", "DetailType": "é", "Detail": "{}", "Resources": ["r1"], "Time": object()}
    assert entry_size(entry) == 14 + 1 + 2 + 2 + 2


def test_trace_header_from_lambda_environment_is_set(monkeypatch):
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    monkeypatch.setenv("_X_AMZN_TRACE_ID", header)
    client = FakeEvents()
    publisher(client).publish(events(2))
    assert [entry["TraceHeader"] for entry in client.calls[0]] == [header, header]


def test_no_trace_header_outside_a_traced_invocation(monkeypatch):
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    client = FakeEvents()
    publisher(client).publish(events(1))
    assert "TraceHeader" not in client.calls[0][0]


# -- sizes counted as AWS counts them (issue 10, case 6) ---------------------------------------------------

def non_ascii_order(lines: int, sku_chars: int) -> dict[str, Any]:
    """An order whose SKUs are long non-ASCII strings (ü: 2 UTF-8 bytes, 6 as a JSON \\u escape)."""
    return {"order_id": "ord-utf8", "items": [
        {"sku": f"{index:02d}-€-" + "ü" * sku_chars, "quantity": 1, "unit_price": 9.5}
        for index in range(lines)]}


def test_a_105_kb_utf8_detail_is_measured_at_its_utf8_size_and_accepted():
    detail = non_ascii_order(lines=99, sku_chars=520)
    utf8 = json.dumps(detail, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert 100 * 1024 < len(utf8) < 110 * 1024
    assert len(json.dumps(detail, separators=(",", ":"))) > MAX_ENTRY_BYTES  # escaped, it would be refused
    event = Event(detail_type="Shipping Quoted", detail=detail, source="agentbus.agent.shipping")
    assert entry_size(event) == len(utf8) + len(b"agentbus.agent.shipping") + len(b"Shipping Quoted")
    client = FakeEvents()
    publisher(client).publish([event])
    [[entry]] = client.calls
    assert entry_size(entry) == entry_size(event)
    assert "€-üü" in entry["Detail"] and "\\u" not in entry["Detail"]  # sent as UTF-8, not escaped
    assert json.loads(entry["Detail"]) == detail


def test_a_257_kb_detail_is_refused_naming_its_size_the_limit_and_the_detail_type():
    detail = non_ascii_order(lines=99, sku_chars=1310)
    event = Event(detail_type="Shipping Quoted", detail=detail, source="agentbus.agent.shipping")
    size = entry_size(event)
    assert MAX_ENTRY_BYTES < size < 260 * 1024
    client = FakeEvents()
    with pytest.raises(EventTooLargeError) as raised:
        publisher(client).publish([event])
    error = raised.value
    assert (error.size, error.limit, error.detail_type, error.source) == (
        size, MAX_ENTRY_BYTES, "Shipping Quoted", "agentbus.agent.shipping")
    assert str(error).startswith(f"event 'Shipping Quoted' from agentbus.agent.shipping is {size} bytes")
    assert "at most 262144 bytes (256 KB)" in str(error)
    assert isinstance(error, ValueError)
    assert client.calls == []


def test_entry_size_of_an_event_counts_resources_and_time():
    from datetime import UTC, datetime

    event = Event(detail_type="é", detail={}, source="s", resources=("r1", "ü"),
                  time=datetime(2026, 1, 1, tzinfo=UTC))
    assert entry_size(event) == 1 + 2 + 2 + 2 + 2 + 14


def test_to_json_keeps_non_ascii_and_stays_valid_json():
    from decimal import Decimal

    value = {"sku": "Größe-€", "price": Decimal("19.99"), "qty": Decimal(3), "tags": {"b", "a"}}
    text = to_json(value)
    assert text == '{"sku":"Größe-€","price":19.99,"qty":3,"tags":["a","b"]}'
    assert json.loads(text)["sku"] == "Größe-€"


def test_to_json_refuses_nan_and_infinity_naming_their_paths():
    with pytest.raises(ValueError) as raised:
        to_json({"items": [{"unit_price": float("nan")}], "points": json.loads("1e400")})
    message = str(raised.value)
    assert message.startswith("not valid JSON: value.items.0.unit_price: nan is not a finite number")
    assert "value.points: inf is not a finite number" in message


def test_to_json_escapes_an_unpaired_surrogate_so_the_text_stays_utf8():
    value = json.loads('{"sku": "A\\ud800", "name": "é"}')
    text = to_json(value)
    text.encode("utf-8")  # would raise if the surrogate were written raw
    assert json.loads(text) == value
    assert entry_size(Event(detail_type="x", detail=value, source="s")) == 2 + len(text.encode("utf-8"))
