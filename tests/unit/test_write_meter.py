"""The endpoint's write meter charges what DynamoDB on-demand charges: 1 KB units of the larger of the item's size
before and after each write, a failed condition too, a transaction's items twice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend

from agentbus.local.write_meter import WriteMeter

TABLE = "records"


@pytest.fixture
def metered(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, WriteMeter]]:
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        monkeypatch.setattr(DynamoDBBackend, name, getattr(DynamoDBBackend, name))  # restored after the test
    monkeypatch.delattr(DynamoDBBackend, "_agentbus_meter", raising=False)
    meter = WriteMeter()
    meter.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                  {"AttributeName": "sk", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                       {"AttributeName": "sk", "KeyType": "RANGE"}])
        yield client, meter
    monkeypatch.delattr(DynamoDBBackend, "_agentbus_meter", raising=False)


def key(sk: str = "header") -> dict[str, Any]:
    return {"pk": {"S": "wf-1"}, "sk": {"S": sk}}


def charged(meter: WriteMeter) -> int:
    return meter.counts().get(TABLE, 0)


def test_a_put_costs_a_unit_per_started_kb_of_the_item(metered):
    client, meter = metered
    client.put_item(TableName=TABLE, Item={**key(), "body": {"S": "x" * 100}})
    assert charged(meter) == 1
    client.put_item(TableName=TABLE, Item={**key("big"), "body": {"S": "x" * 2500}})
    assert charged(meter) == 1 + 3


def test_an_update_costs_the_larger_of_before_and_after_so_a_growing_item_costs_more_each_time(metered):
    client, meter = metered
    client.put_item(TableName=TABLE, Item={**key(), "a": {"S": "x" * 1500}})
    before = charged(meter)
    client.update_item(TableName=TABLE, Key=key(), UpdateExpression="SET b = :v",
                       ExpressionAttributeValues={":v": {"S": "y" * 1000}})
    assert charged(meter) - before == 3  # ~2.5 KB after
    before = charged(meter)
    client.update_item(TableName=TABLE, Key=key(), UpdateExpression="REMOVE b")
    assert charged(meter) - before == 3  # the size before the write counts too


def test_a_write_whose_condition_fails_still_costs_the_item_as_it_is(metered):
    client, meter = metered
    client.put_item(TableName=TABLE, Item={**key(), "a": {"S": "x" * 1500}})
    before = charged(meter)
    with pytest.raises(ClientError):
        client.update_item(TableName=TABLE, Key=key(), UpdateExpression="SET b = :v",
                           ConditionExpression="attribute_not_exists(pk)",
                           ExpressionAttributeValues={":v": {"S": "y"}})
    assert charged(meter) - before == 2
    before = charged(meter)
    with pytest.raises(ClientError):
        client.put_item(TableName=TABLE, Item={**key("absent"), "a": {"S": "x"}},
                        ConditionExpression="attribute_exists(pk)")
    assert charged(meter) - before == 1  # at least one unit


def test_a_delete_costs_the_deleted_item(metered):
    client, meter = metered
    client.put_item(TableName=TABLE, Item={**key(), "a": {"S": "x" * 3000}})
    before = charged(meter)
    client.delete_item(TableName=TABLE, Key=key())
    assert charged(meter) - before == 3


def test_a_transaction_costs_twice_per_item_written_and_nothing_for_a_condition_check(metered):
    client, meter = metered
    client.put_item(TableName=TABLE, Item={**key("checked"), "a": {"S": "x"}})
    before = charged(meter)
    client.transact_write_items(TransactItems=[
        {"Put": {"TableName": TABLE, "Item": {**key("one"), "a": {"S": "x" * 1500}}}},
        {"Update": {"TableName": TABLE, "Key": key("two"), "UpdateExpression": "SET a = :v",
                    "ExpressionAttributeValues": {":v": {"S": "y"}}}},
        {"ConditionCheck": {"TableName": TABLE, "Key": key("checked"), "ConditionExpression": "attribute_exists(pk)"}},
    ])
    assert charged(meter) - before == 2 * 2 + 2 * 1


def test_a_keys_only_index_costs_a_unit_when_an_item_enters_or_leaves_it_two_when_it_moves(metered):
    client, meter = metered
    client.create_table(TableName="indexed", BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                              {"AttributeName": "waits", "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        GlobalSecondaryIndexes=[{"IndexName": "waiting", "Projection": {"ProjectionType": "KEYS_ONLY"},
                                                 "KeySchema": [{"AttributeName": "waits", "KeyType": "HASH"}]}])

    def update(expression: str, **values: str) -> int:
        before = meter.counts().get("indexed", 0)
        named = {"ExpressionAttributeValues": {k: {"S": v} for k, v in values.items()}} if values else {}
        client.update_item(TableName="indexed", Key={"pk": {"S": "wf-1"}}, UpdateExpression=expression, **named)
        return meter.counts()["indexed"] - before

    client.put_item(TableName="indexed", Item={"pk": {"S": "wf-1"}})
    assert update("SET waits = :w", **{":w": "access"}) == 1 + 1  # the item, and its entry in the index
    assert update("SET note = :o", **{":o": "x"}) == 1  # the index keys stay: the index is not written
    assert update("SET waits = :w", **{":w": "orders"}) == 1 + 2  # moved: out of one place, into another
    assert update("REMOVE waits") == 1 + 1
    assert update("REMOVE waits") == 1  # not in the index: nothing to take out
