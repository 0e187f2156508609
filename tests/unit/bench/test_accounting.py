"""Call accounting: wire names, who made each call, calls per request."""

from __future__ import annotations

import json
import threading
from collections import Counter

import boto3
import pytest

from agentbus.bench import (
    CallCounter,
    per_order,
    role_of,
    system_calls,
    wire_key,
)
from agentbus.bench.accounting import chunks, entry_size


def test_rest_operations_get_their_api_names():
    assert wire_key("scheduler", "POST /schedules") == "scheduler:CreateSchedule"
    assert wire_key("scheduler", "DELETE /schedules") == "scheduler:DeleteSchedule"
    assert wire_key("dynamodb", "UpdateItem") == "dynamodb:UpdateItem"


def test_s3_calls_are_counted_by_operation_not_by_bucket():
    """The claim check's PutObject / GetObject are priced by name (their request URIs start with the bucket)."""
    s3 = boto3.session.Session(region_name="us-east-1").client("s3").meta.service_model
    scheduler = boto3.session.Session(region_name="us-east-1").client("scheduler").meta.service_model
    counter = CallCounter()
    assert counter._key(s3.operation_model("PutObject")) == "s3:PutObject"
    assert counter._key(s3.operation_model("GetObject")) == "s3:GetObject"
    assert counter._key(scheduler.operation_model("CreateSchedule")) == "scheduler:CreateSchedule"


def test_calls_per_order_exclude_the_harness_and_local_only_calls():
    wire = Counter({"events:PutEvents": 45, "sqs:ReceiveMessage": 30, "sqs:ListQueueTags": 8, "dynamodb:GetItem": 10})
    harness = Counter({"events:PutEvents": 5, "sqs:ReceiveMessage": 12})
    emulation = Counter({"sqs:ListQueueTags": 8})
    system = system_calls(wire, [harness, emulation])
    assert system == Counter({"events:PutEvents": 40, "sqs:ReceiveMessage": 18, "dynamodb:GetItem": 10})
    figures = per_order(system, requests=10)
    assert figures == {"total": 6.8, "events:PutEvents": 4.0, "sqs:ReceiveMessage": 1.8, "dynamodb:GetItem": 1.0}
    assert list(figures)[:2] == ["total", "events:PutEvents"]  # largest first
    with pytest.raises(ValueError):
        per_order(system, requests=0)


@pytest.mark.parametrize(("thread", "key", "role"), [
    ("MainThread", "events:PutEvents", "harness"),
    ("observer-1a2b3c4d", "sqs:ReceiveMessage", "harness"),
    ("bench-chain_0", "sqs:SendMessage", "harness"),
    ("poller-fraud", "sqs:ReceiveMessage", "poller"),
    ("poller-fraud", "sqs:ListQueueTags", "emulation"),
    ("scheduler", "scheduler:GetSchedule/ListSchedules", "emulation"),
    ("lambda-coordinator_3", "dynamodb:UpdateItem", "function"),
    ("record_2", "events:PutEvents", "function"),  # a function handling a batch's records at once
    ("lambda-fraud_0", "sqs:DeleteMessageBatch", "poller"),  # the event source mapping's acknowledgement
])
def test_each_call_is_attributed_by_the_thread_that_made_it(thread, key, role):
    assert role_of(thread, key) == role


def test_counter_attributes_calls_entries_and_tables_by_caller():
    from moto import mock_aws

    counter = CallCounter()
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        counter.install(session)
        events = session.client("events")
        dynamodb = session.client("dynamodb")
        dynamodb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                              KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        entry = {"Source": "s", "DetailType": "d", "Detail": "{}"}
        events.put_events(Entries=[entry, entry, entry])  # harness: the main thread

        def function():
            events.put_events(Entries=[entry])
            dynamodb.get_item(TableName="t", Key={"pk": {"S": "x"}})
            dynamodb.transact_write_items(TransactItems=[
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}}}},
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "b"}}}},
            ])
            # No TableName: the census' bulk read of waiting headers is counted by table, one per key.
            dynamodb.batch_get_item(RequestItems={"t": {"Keys": [{"pk": {"S": "a"}}, {"pk": {"S": "b"}}],
                                                        "ConsistentRead": True}})

        worker = threading.Thread(target=function, name="lambda-fraud_0")
        worker.start()
        worker.join()
    snapshot = counter.snapshot()
    assert snapshot.by_role["harness"]["events:PutEvents"] == 1
    assert snapshot.by_role["function"] == Counter({"events:PutEvents": 1, "dynamodb:GetItem": 1,
                                                    "dynamodb:TransactWriteItems": 1, "dynamodb:BatchGetItem": 1})
    assert snapshot.put_entries == Counter({"harness": 3, "function": 1})
    assert snapshot.dynamodb == Counter({"GetItem@t": 1, "TransactWriteItems@t": 2, "BatchGetItem@t": 2})
    counter.wire_source = lambda: Counter({"scheduler:POST /schedules": 1})  # as the endpoint counts it
    assert counter.snapshot().wire == Counter({"scheduler:CreateSchedule": 1})
    assert (counter.snapshot() - snapshot).wire == Counter({"scheduler:CreateSchedule": 1})


def test_payloads_are_billed_per_64_kb_chunk():
    assert [chunks(n) for n in (0, 1, 65_536, 65_537, 300 * 1024)] == [1, 1, 1, 2, 5]
    entry = {"Source": "s", "DetailType": "dé", "Detail": "{}", "Resources": ["r1"]}
    assert entry_size(entry) == 1 + 3 + 2 + 2  # UTF-8 bytes


def test_counter_counts_the_billing_chunks_of_big_events_and_messages():
    from moto import mock_aws

    counter = CallCounter()
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        counter.install(session)
        events, sqs = session.client("events"), session.client("sqs")
        queue = sqs.create_queue(QueueName="q")["QueueUrl"]
        for size in (40_000, 40_000, 100):
            sqs.send_message(QueueUrl=queue, MessageBody="x" * size)

        def function():
            events.put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": json.dumps({"d": "x" * 100_000})},
                                       {"Source": "s", "DetailType": "d", "Detail": "{}"}])

        def poller():
            sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)

        for target, name in ((function, "lambda-a_0"), (poller, "poller-a")):
            worker = threading.Thread(target=target, name=name)
            worker.start()
            worker.join()
    snapshot = counter.snapshot()
    assert snapshot.put_entries["function"] == 2 and snapshot.put_chunks["function"] == 2 + 1
    # One receive of 80,100 bytes: 2 billed requests (1 beyond the first); its 3 messages were 3 SendMessage.
    assert snapshot.receive_extra_chunks == Counter({"poller": 1})
    assert snapshot.delivered_chunks == Counter({"poller": 3})
    assert (snapshot - snapshot).delivered_chunks == Counter()
