"""The local endpoint is safe for concurrent clients: the coordinator's exactly-once finish depends on it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import boto3
import pytest

from agentbus.local.server import WAKE_POLLS_PATH, LocalEndpoint, wake_polls

REPO_ROOT = Path(__file__).resolve().parents[2]


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not yet reaped by its parent, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _session():
    return boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")


def test_concurrent_increments_on_one_item_are_never_lost():
    threads, per_thread = 8, 25
    with LocalEndpoint() as endpoint:
        dynamodb = _session().client("dynamodb", endpoint_url=endpoint.url)
        dynamodb.create_table(TableName="counter", BillingMode="PAY_PER_REQUEST",
                              KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])

        def increment():
            client = _session().client("dynamodb", endpoint_url=endpoint.url)
            for _ in range(per_thread):
                client.update_item(TableName="counter", Key={"pk": {"S": "n"}}, UpdateExpression="ADD n :one",
                                   ExpressionAttributeValues={":one": {"N": "1"}})

        workers = [threading.Thread(target=increment) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        item = dynamodb.get_item(TableName="counter", Key={"pk": {"S": "n"}}, ConsistentRead=True)["Item"]
        assert int(item["n"]["N"]) == threads * per_thread


def test_a_long_poll_does_not_block_other_requests():
    """While one client long-polls an empty queue, others are served; the poll still gets the message."""
    with LocalEndpoint() as endpoint:
        sqs = _session().client("sqs", endpoint_url=endpoint.url)
        queue_url = sqs.create_queue(QueueName="waiting")["QueueUrl"]
        other = sqs.create_queue(QueueName="other")["QueueUrl"]
        received: list = []
        started = threading.Event()

        def long_poll():
            client = _session().client("sqs", endpoint_url=endpoint.url)
            started.set()
            received.extend(client.receive_message(QueueUrl=queue_url, WaitTimeSeconds=10).get("Messages", []))

        poller = threading.Thread(target=long_poll)
        poller.start()
        started.wait()
        # If the endpoint were blocked by the poll, these would only run after it returned empty-handed.
        for index in range(5):
            sqs.send_message(QueueUrl=other, MessageBody=f"side traffic {index}")
        sqs.send_message(QueueUrl=queue_url, MessageBody="hello")
        poller.join(timeout=15)
        assert [m["Body"] for m in received] == ["hello"]


def test_a_wake_ends_waiting_polls_at_once_and_is_not_an_api_call():
    """``POST /_agentbus/wake-polls`` (how a local runtime stops its 20 s long polls) returns every waiting
    receive now, empty; a poll started after it waits as usual, and the wake is not counted as an AWS call."""
    with LocalEndpoint() as endpoint:
        sqs = _session().client("sqs", endpoint_url=endpoint.url)
        queue_url = sqs.create_queue(QueueName="idle")["QueueUrl"]
        returned: list = []

        def long_poll():
            client = _session().client("sqs", endpoint_url=endpoint.url)
            returned.append(client.receive_message(QueueUrl=queue_url, WaitTimeSeconds=20).get("Messages", []))

        before = endpoint.wire_calls()
        pollers = [threading.Thread(target=long_poll) for _ in range(3)]
        for poller in pollers:
            poller.start()
        deadline = time.monotonic() + 10
        while len(returned) < 3 and time.monotonic() < deadline:  # the polls may not all be waiting yet
            wake_polls(endpoint.url, timeout_s=5)
            time.sleep(0.2)
        for poller in pollers:
            poller.join(timeout=1)
        assert returned == [[], [], []], "every waiting poll returned, well before its 20 s"
        assert endpoint.wire_calls() - before == Counter({"sqs:ReceiveMessage": 3})  # the polls, not the wakes
        # A GET is not a wake: moto answers it (not found), and the endpoint keeps serving.
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"{endpoint.url}{WAKE_POLLS_PATH}", timeout=5)
        sqs.send_message(QueueUrl=queue_url, MessageBody="after")
        assert [m["Body"] for m in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=5)["Messages"]] == ["after"]


def test_api_calls_are_counted_on_the_wire():
    with LocalEndpoint() as endpoint:
        before = endpoint.wire_calls()
        session = _session()
        sqs = session.client("sqs", endpoint_url=endpoint.url)
        sqs.create_queue(QueueName="q")
        sqs.list_queues()
        sqs.list_queues()
        session.client("events", endpoint_url=endpoint.url).list_event_buses()
        session.client("dynamodb", endpoint_url=endpoint.url).list_tables()
        counted = endpoint.wire_calls() - before
    assert counted == Counter({"sqs:CreateQueue": 1, "sqs:ListQueues": 2, "events:ListEventBuses": 1,
                               "dynamodb:ListTables": 1})


@pytest.mark.parametrize("fork", [False, True], ids=["new-interpreter", "forked"])
def test_the_endpoint_runs_in_its_own_process_and_stops_with_its_owner(fork):
    with LocalEndpoint(fork=fork) as endpoint:
        pid = endpoint.pid
        assert pid not in (None, os.getpid()) and endpoint.exit_code is None
        _session().client("sqs", endpoint_url=endpoint.url).list_queues()
        assert endpoint.wire_calls()["sqs:ListQueues"] == 1
    assert not _running(pid)  # stop() waited for it


@pytest.mark.parametrize("fork", [False, True], ids=["new-interpreter", "forked"])
def test_an_endpoint_that_dies_says_so_through_its_exit_code(fork):
    with LocalEndpoint(fork=fork) as endpoint:
        os.kill(endpoint.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while endpoint.exit_code is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert endpoint.exit_code == -signal.SIGKILL


def test_a_forked_endpoint_stops_when_its_owner_process_is_killed(tmp_path):
    # The owner (a process starting a forked endpoint and printing its pid) dies without stopping it: the
    # endpoint must not outlive it, whoever its parent is (the fork server).
    owner = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from agentbus.local.server import LocalEndpoint\n"
        "endpoint = LocalEndpoint(fork=True).start()\n"
        "print(endpoint.pid, flush=True)\n"
        "time.sleep(600)\n")], stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        pid = int(owner.stdout.readline())
    finally:
        owner.kill()
        owner.wait()
    deadline = time.monotonic() + 15
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _running(pid):
        os.kill(pid, signal.SIGKILL)
        raise AssertionError(f"the forked endpoint {pid} outlived its owner")


@pytest.mark.parametrize("fork", [False, True], ids=["new-interpreter", "forked"])
def test_a_busy_port_is_a_clear_error(fork):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"cannot listen on 127.0.0.1:{port}"):
            LocalEndpoint(port=port, fork=fork).start()


def test_patched_moto_keeps_fifo_deduplication_and_per_call_update_values():
    """Two of moto_speedups' patches, through the endpoint: sends read ContentBasedDeduplication without
    the full attribute rebuild; memoized update-expression parses never carry one call's values into another."""
    with LocalEndpoint() as endpoint:
        session = _session()
        sqs = session.client("sqs", endpoint_url=endpoint.url)
        deduplicated = sqs.create_queue(QueueName="d.fifo", Attributes={
            "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
        for _ in range(2):
            sqs.send_message(QueueUrl=deduplicated, MessageBody="same", MessageGroupId="g")
        assert len(sqs.receive_message(QueueUrl=deduplicated, MaxNumberOfMessages=10).get("Messages", [])) == 1
        explicit = sqs.create_queue(QueueName="e.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        with pytest.raises(sqs.exceptions.ClientError, match="MessageDeduplicationId"):
            sqs.send_message(QueueUrl=explicit, MessageBody="x", MessageGroupId="g")

        dynamodb = session.client("dynamodb", endpoint_url=endpoint.url)
        dynamodb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                              KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        for key, value in (("a", "first"), ("b", "second"), ("a", "third")):
            dynamodb.update_item(TableName="t", Key={"pk": {"S": key}}, UpdateExpression="SET #v = :v ADD #n :one",
                                 ExpressionAttributeNames={"#v": "value", "#n": "writes"},
                                 ExpressionAttributeValues={":v": {"S": value}, ":one": {"N": "1"}})
        items = {i["pk"]["S"]: (i["value"]["S"], i["writes"]["N"]) for i in dynamodb.scan(TableName="t")["Items"]}
        assert items == {"a": ("third", "2"), "b": ("second", "1")}


def test_patched_query_reads_one_partition_in_order_pages_and_all_and_the_endpoint_meters_writes():
    """moto_speedups' query patch (one partition instead of listing and sorting the whole table) answers as moto
    does: the partition's items in key order, descending on request, in pages, and a scan still sees everything.
    The endpoint's write meter charges each write's size (agentbus/local/write_meter.py)."""
    with LocalEndpoint(meter_writes=True) as endpoint:
        dynamodb = _session().client("dynamodb", endpoint_url=endpoint.url)
        dynamodb.create_table(TableName="w", BillingMode="PAY_PER_REQUEST",
                              KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                         {"AttributeName": "sk", "KeyType": "RANGE"}],
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                    {"AttributeName": "sk", "AttributeType": "S"}])
        for pk in ("a", "b", "c"):
            for sk in ("order", "order#result#x", "order#result#y", "order-large", "other"):
                dynamodb.put_item(TableName="w", Item={"pk": {"S": pk}, "sk": {"S": sk}, "v": {"S": "x" * 1500}})
        assert endpoint.write_units()["w"] == 15 * 2

        def keys(**params):
            return [i["sk"]["S"] for i in dynamodb.query(TableName="w", **params)["Items"]]

        one = {"KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
               "ExpressionAttributeValues": {":pk": {"S": "b"}, ":lo": {"S": "order"}, ":hi": {"S": "order$"}}}
        assert keys(**one) == ["order", "order#result#x", "order#result#y"]
        assert keys(**one, ScanIndexForward=False) == ["order#result#y", "order#result#x", "order"]
        first = dynamodb.query(TableName="w", Limit=2, **one)
        rest = dynamodb.query(TableName="w", ExclusiveStartKey=first["LastEvaluatedKey"], **one)
        assert [i["sk"]["S"] for i in first["Items"] + rest["Items"]] == keys(**one)
        assert keys(KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "c"}}) == [
            "order", "order#result#x", "order#result#y", "order-large", "other"]
        assert keys(KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "none"}}) == []
        assert dynamodb.scan(TableName="w")["Count"] == 15


def test_forked_endpoints_hand_out_ids_of_their_own():
    # moto's id generator was seeded once, in the fork server: every forked endpoint gave the same message ids.
    ids = []
    for _ in range(2):
        with LocalEndpoint(fork=True) as endpoint:
            sqs = _session().client("sqs", endpoint_url=endpoint.url)
            url = sqs.create_queue(QueueName="q")["QueueUrl"]
            ids.append(sqs.send_message(QueueUrl=url, MessageBody="x")["MessageId"])
    assert ids[0] != ids[1]
