"""The waiting index: the census and `agentbus pending` find the workflows waiting for a person with a Query of
a sparse index (only the headers that may wait are in it, each until its finish), never a Scan of a table that
grows with every workflow run (the census runs every 5 minutes inside the coordinator's invocation)."""

from __future__ import annotations

from typing import Any

import pytest

from functions.common.spec import WAITING_ATTRIBUTE, WAITING_INDEX
from functions.coordinator.reads import BATCH_GET_ATTEMPTS, BATCH_GET_BACKOFF_MAX_S
from functions.coordinator.store import WorkflowStore
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


# --- the census reads the waiting headers in bulk (code review bb10d, finding 3) ----------------------------------

class Recording:
    """A DynamoDB client wrapped as the local runtime's and the tests' wrappers wrap one (``__getattr__``): it sees
    only the calls made through it, so a paginator (the real client's) would go past it unseen. ``unprocessed``:
    how many of the calls' keys to hand back unprocessed (one number per BatchGetItem call)."""

    def __init__(self, client: Any, unprocessed: tuple[int, ...] = ()) -> None:
        self.client, self.unprocessed = client, list(unprocessed)
        self.calls: list[str] = []
        self.keys_asked: list[int] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        if name == "get_paginator" or not callable(attribute):
            return attribute

        def call(**kwargs: Any) -> Any:
            self.calls.append(name)
            return attribute(**kwargs)

        return call

    def batch_get_item(self, RequestItems: dict) -> dict:  # noqa: N803
        self.calls.append("batch_get_item")
        [(table, request)] = RequestItems.items()
        self.keys_asked.append(len(request["Keys"]))
        assert request["ConsistentRead"] is True and len(request["Keys"]) <= 100
        left = self.unprocessed.pop(0) if self.unprocessed else 0
        if not left:
            return self.client.batch_get_item(RequestItems=RequestItems)
        read, kept = request["Keys"][left:], request["Keys"][:left]
        response = (self.client.batch_get_item(RequestItems={table: {**request, "Keys": read}}) if read
                    else {"Responses": {table: []}})
        return {**response, "UnprocessedKeys": {table: {**request, "Keys": kept}}}


def store_on(c: Coordinator, client: Any, slept: list[float] | None = None) -> WorkflowStore:
    return WorkflowStore(client, c.store.workflow_table, c.store.manifest, c.store.tables,
                         sleep=(slept.append if slept is not None else lambda _: None))


def put_waiting(c: Coordinator, count: int, prefix: str = "acc-77") -> list[str]:
    ids = [f"{prefix}{i:02d}" for i in range(count)]
    for request_id in ids:
        request = risky_request(request_id)
        c.deliver(request, *access_results(request))
    return ids


def test_25_waiting_requests_take_one_index_query_and_one_batch_get_and_read_as_a_whole_read_would(c):
    """Before, every waiting workflow was read whole, one consistent Query each: 25 waiting took 26 Queries (and
    thousands would outlast the coordinator's timeout). Now the headers, which say who waits since when, are read
    in bulk, and the calls go through the client's wrappers (no paginator)."""
    ids = put_waiting(c, 25)
    made = calls(c)
    client = Recording(c.store.client)
    views = store_on(c, client).waiting()
    assert client.calls == ["query", "batch_get_item"] and client.keys_asked == [25]
    assert sorted(made) == ["BatchGetItem", "Query"]
    assert sorted(v["workflow_id"] for v in views) == ids
    for view in views:  # what a whole record says about the wait, the header alone says too
        whole = c.store.get(ACCESS.name, view["workflow_id"])
        for key in ("workflow", "status", "waiting_for", "missing"):
            assert view[key] == whole[key], key
    assert not views.partial


def test_unprocessed_keys_are_asked_for_again_after_a_back_off(c):
    ids = put_waiting(c, 3)
    slept: list[float] = []
    client = Recording(c.store.client, unprocessed=(2, 1))
    views = store_on(c, client, slept).waiting()
    assert sorted(v["workflow_id"] for v in views) == ids
    assert client.keys_asked == [3, 2, 1] and len(slept) == 2
    assert all(0 <= pause <= BATCH_GET_BACKOFF_MAX_S for pause in slept)


def test_keys_left_unprocessed_on_every_attempt_fail_the_read_naming_them(c):
    put_waiting(c, 2)
    client = Recording(c.store.client, unprocessed=(1,) * BATCH_GET_ATTEMPTS)
    with pytest.raises(RuntimeError, match=f"left 1 of 2 waiting headers unread after {BATCH_GET_ATTEMPTS}"):
        store_on(c, client).waiting()
    assert client.calls.count("batch_get_item") == BATCH_GET_ATTEMPTS


def test_out_of_time_stops_reading_and_says_which_workflow_was_not_read_to_the_end(c):
    put_waiting(c, 3)
    client = Recording(c.store.client)
    asked = iter([False, True])  # time for the index Query, none left for the headers
    views = store_on(c, client).waiting(out_of_time=lambda: next(asked))
    assert views == [] and views.partial and views.unfinished == (ACCESS.name,)
    assert client.calls == ["query"]
    assert store_on(c, client).waiting(out_of_time=lambda: True).unfinished == (ACCESS.name,)
