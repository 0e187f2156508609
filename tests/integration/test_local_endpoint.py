"""The local endpoint is safe for concurrent clients: the coordinator's exactly-once finish depends on it."""

from __future__ import annotations

import threading

import boto3

from agentbus.local.server import LocalEndpoint


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


def test_api_calls_are_counted_on_the_wire():
    calls: list[tuple[str, str]] = []
    with LocalEndpoint(observer=lambda service, action: calls.append((service, action))) as endpoint:
        session = _session()
        sqs = session.client("sqs", endpoint_url=endpoint.url)
        sqs.create_queue(QueueName="q")
        session.client("events", endpoint_url=endpoint.url).list_event_buses()
        session.client("dynamodb", endpoint_url=endpoint.url).list_tables()
    assert calls == [("sqs", "CreateQueue"), ("events", "ListEventBuses"), ("dynamodb", "ListTables")]
