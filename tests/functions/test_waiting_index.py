"""The waiting index: the census and `agentbus pending` find the workflows waiting for a person with a Query of
a sparse index (only the headers that may wait are in it, each until its finish), never a Scan of a table that
grows with every workflow run (the census runs every 5 minutes inside the coordinator's invocation)."""

from __future__ import annotations

from typing import Any

import pytest

from functions.common.spec import WAITING_ATTRIBUTE, WAITING_INDEX
from tests.functions.coordinator_harness import Coordinator
from tests.functions.test_coordinator_handler import ORDER_ID, result, trigger
from tests.functions.test_coordinator_people import ACCESS, access_results, person, risky_request


@pytest.fixture
def c(aws):
    return Coordinator(*aws)


def indexed(c: Coordinator) -> list[str]:
    """The workflow ids the waiting index holds, whatever their workflow."""
    table = c.resources.tables["workflows"]
    items = c.clients.dynamodb.scan(TableName=table, IndexName=WAITING_INDEX)["Items"]
    return sorted(item["workflow_id"]["S"] for item in items)


def calls(c: Coordinator) -> list[str]:
    made: list[str] = []

    def record(**kwargs: Any) -> None:
        made.append(kwargs["model"].name)

    c.store.client.meta.events.register("before-call.dynamodb", record)
    return made


def test_a_request_asked_for_a_person_is_in_the_index_until_its_finish(c):
    request = risky_request("acc-9001")
    c.deliver(request, *access_results(request))
    assert indexed(c) == ["acc-9001"]
    [waiting] = c.store.waiting()
    assert waiting["workflow_id"] == "acc-9001"
    c.deliver(person("acc-9001"))
    [outcome] = c.outcomes()
    assert outcome["detail-type"] == "Access Granted"
    assert indexed(c) == [] and c.store.waiting() == []
    header = c.clients.dynamodb.get_item(TableName=c.resources.tables["workflows"], ConsistentRead=True,
                                         Key={"workflow_id": {"S": "acc-9001"}, "workflow": {"S": ACCESS.name}})
    assert WAITING_ATTRIBUTE not in header["Item"]


def test_requests_nobody_is_asked_for_never_enter_the_index(c):
    request = risky_request("acc-9002")
    c.deliver(request, *access_results(request, ask=False))
    c.deliver(trigger(), *(result(agent) for agent in ("fraud", "inventory", "shipping")))
    assert len(c.outcomes()) == 2
    assert c.store.get("order-fulfillment", ORDER_ID)["status"] == "COMPLETED"
    assert indexed(c) == []


def test_the_census_and_pending_query_the_index_and_never_scan(c):
    for request_id in ("acc-9003", "acc-9004"):
        request = risky_request(request_id)
        c.deliver(request, *access_results(request, ask=request_id == "acc-9003"))
    made = calls(c)
    [waiting] = c.store.waiting()
    assert waiting["workflow_id"] == "acc-9003"
    assert c.store.waiting(ACCESS.name) == [waiting] and c.store.waiting("order-fulfillment") == []
    assert "Scan" not in made and "Query" in made
