"""The inventory agent's handler on moto: atomic reservations, the stock invariant, crash-retry (fault 4),
compensation once (fault 10), concurrent reservations of the last units, poison in its DLQ."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from agentbus.local.lambda_events import LambdaContext, eventbridge_envelope, sqs_event, sqs_record
from agentbus.seeds import seed_items
from functions.common.clients import Clients
from functions.common.dead_letters import REASON_ATTRIBUTE
from functions.common.decisions import AgentOutput
from functions.common.models import AgentResult
from functions.manifest import MANIFEST
from functions.orders.inventory import handler as inventory
from functions.orders.inventory.logic import MAX_LINES, Line, Reservation, ReservationExists, Status
from functions.orders.inventory.store import DynamoInventoryStore
from tests.conftest import delivered_to_coordinator as published
from tests.conftest import drain_queue as drain
from tests.conftest import settings_for

EVENTS = Path(__file__).resolve().parents[2] / "events"
NAME = "inventory"
STOCK = {item["sku"]["S"]: int(item["on_hand"]["N"]) for item in seed_items(MANIFEST.table("inventory"))}
_deserialize = TypeDeserializer().deserialize


# -- helpers --------------------------------------------------------------------------------------------

def placed_detail(name: str = "order-placed.json", index: int = 0, **changes: Any) -> dict[str, Any]:
    return {**json.loads(json.loads((EVENTS / name).read_text())[index]["Detail"]), **changes}


def placed(name: str = "order-placed.json", index: int = 0, **changes: Any) -> str:
    return json.dumps(eventbridge_envelope("Order Placed", "agentbus.orders", placed_detail(name, index, **changes)))


def order(order_id: str, *lines: tuple[str, int]) -> str:
    return placed(order_id=order_id, items=[{"sku": s, "quantity": q, "unit_price": 1} for s, q in lines])


def finished(status: str, order_id: str = "ord-1001") -> str:
    """The coordinator's sample ``Order Rejected`` / ``Order Timed Out`` (events/), for ``order_id``."""
    name = {"REJECTED": "order-rejected.json", "TIMED_OUT": "order-timed-out.json"}[status]
    e = json.loads((EVENTS / name).read_text())[0]
    detail = {**json.loads(e["Detail"]), "order_id": order_id, "workflow_id": order_id,
              "idempotency_key": f"{order_id}:{status}"}
    return json.dumps(eventbridge_envelope(e["DetailType"], e["Source"], detail))


def batch(resources, *bodies: str, first: int = 0) -> dict[str, Any]:
    arn = resources.consumers[NAME].queue_arn
    return sqs_event([sqs_record(b, arn, message_id=f"m{first + i}") for i, b in enumerate(bodies)])


def context() -> LambdaContext:
    return LambdaContext(function_name=NAME)


def build(session, resources, clients: Clients | None = None, record_concurrency: int = 1):
    # One record at a time by default: moto in-process is not thread-safe.
    settings = settings_for(resources, NAME, record_concurrency=record_concurrency)
    return inventory.build(settings, clients or Clients.create(session))


def table(session, resources) -> list[dict[str, Any]]:
    items = session.client("dynamodb").scan(TableName=resources.tables["inventory"], ConsistentRead=True)["Items"]
    return [{k: _deserialize(v) for k, v in item.items()} for item in items]


def stock(session, resources) -> dict[str, tuple[int, int]]:
    return {i["sku"]: (int(i["on_hand"]), int(i["reserved"])) for i in table(session, resources)
            if i["pk"].startswith("sku#")}


def reservations(session, resources) -> dict[str, dict[str, Any]]:
    return {i["order_id"]: i for i in table(session, resources) if i["pk"].startswith("reservation#")}


def assert_invariant(session, resources, initial: dict[str, int] = STOCK) -> None:
    """For every SKU: on_hand + reserved = initial stock, and reserved = the sum of HELD lines."""
    held = dict.fromkeys(initial, 0)
    for record in reservations(session, resources).values():
        if record["status"] == "HELD":
            for line in record["lines"]:
                held[line["sku"]] += int(line["quantity"])
    current = stock(session, resources)
    for sku, units in initial.items():
        on_hand, reserved = current[sku]
        assert on_hand + reserved == units, sku
        assert reserved == held[sku], sku


def set_stock(session, resources, sku: str, units: int) -> None:
    session.client("dynamodb").put_item(TableName=resources.tables["inventory"], Item={
        "pk": {"S": f"sku#{sku}"}, "sku": {"S": sku}, "on_hand": {"N": str(units)}, "reserved": {"N": "0"}})


class CrashingEvents:
    """PutEvents fails the first ``times`` calls, as if the function crashed before publishing."""

    def __init__(self, client, times: int = 1):
        self.client, self.left = client, times

    def put_events(self, **kwargs):
        if self.left > 0:
            self.left -= 1
            raise ClientError({"Error": {"Code": "InternalException", "Message": "crash"}}, "PutEvents")
        return self.client.put_events(**kwargs)


def with_events(session, events) -> Clients:
    clients = Clients.create(session)
    return replace(clients, events=events)


# -- reservations ---------------------------------------------------------------------------------------

def test_reserves_every_line(aws):
    session, resources = aws
    assert build(session, resources)(batch(resources, placed()), context()) == {"batchItemFailures": []}
    [event] = published(session, resources)
    assert (event["source"], event["detail-type"]) == ("agentbus.agent.inventory", "Items Reserved")
    result = AgentResult.model_validate(event["detail"])
    assert (result.workflow_id, result.outcome) == ("ord-1001", "success")
    assert result.idempotency_key == f"ord-1001:inventory:{result.trigger_digest}"
    assert stock(session, resources)["SKU-LAPTOP-14"] == (9999, 1)
    assert stock(session, resources)["SKU-MOUSE"] == (9998, 2)
    record = reservations(session, resources)["ord-1001"]
    assert record["status"] == "HELD"
    lines = [(line["sku"], int(line["quantity"])) for line in record["lines"]]
    assert lines == [("SKU-LAPTOP-14", 1), ("SKU-MOUSE", 2)]
    assert json.loads(record["result"]) == event["detail"] and record["result_detail_type"] == "Items Reserved"
    assert_invariant(session, resources)


def test_short_line_reserves_nothing_atomically(aws):
    session, resources = aws
    set_stock(session, resources, "SKU-DOCK", 2)
    handle = build(session, resources)
    handle(batch(resources, order("ord-short", ("SKU-MOUSE", 5), ("SKU-DOCK", 3), ("SKU-KEYBOARD", 1))), context())
    [event] = published(session, resources)
    assert event["detail-type"] == "Items Unavailable"
    assert event["detail"]["reason"] == "nothing reserved: SKU-DOCK: 3 requested, 2 available"
    assert stock(session, resources)["SKU-MOUSE"] == (10000, 0)  # the line before the short one: untouched
    assert stock(session, resources)["SKU-KEYBOARD"] == (10000, 0)
    assert stock(session, resources)["SKU-DOCK"] == (2, 0)
    assert reservations(session, resources)["ord-short"]["status"] == "UNAVAILABLE"
    assert_invariant(session, resources, {**STOCK, "SKU-DOCK": 2})
    # A retry (or a copy) publishes the same decision and still reserves nothing.
    set_stock(session, resources, "SKU-DOCK", 100)
    handle(batch(resources, order("ord-short", ("SKU-MOUSE", 5), ("SKU-DOCK", 3), ("SKU-KEYBOARD", 1))), context())
    [again] = published(session, resources)
    assert again["detail"] == event["detail"] and again["detail-type"] == "Items Unavailable"
    assert stock(session, resources)["SKU-DOCK"] == (100, 0)


def test_unknown_sku_is_unavailable_naming_it(aws):
    session, resources = aws
    build(session, resources)(batch(resources, order("ord-unknown", ("SKU-MOUSE", 1), ("SKU-NOPE", 1))), context())
    [event] = published(session, resources)
    assert event["detail-type"] == "Items Unavailable"
    assert event["detail"]["reason"] == "nothing reserved: unknown SKU SKU-NOPE"
    assert stock(session, resources)["SKU-MOUSE"] == (10000, 0)
    assert "sku#SKU-NOPE" not in {i["pk"] for i in table(session, resources)}  # no phantom stock item


def test_largest_order_fits_one_transaction(aws):
    session, resources = aws
    skus = [f"SKU-BULK-{i:03d}" for i in range(MAX_LINES + 1)]
    for sku in skus:
        set_stock(session, resources, sku, 1)
    handle = build(session, resources)
    handle(batch(resources, order("ord-99", *[(sku, 1) for sku in skus[:MAX_LINES]]),
                 order("ord-100", *[(sku, 1) for sku in skus])), context())
    events = {e["detail"]["workflow_id"]: e for e in published(session, resources)}
    assert events["ord-99"]["detail-type"] == "Items Reserved"
    # One line more than a transaction holds is refused by the order contract itself: kept with its reason.
    assert "ord-100" not in events
    [kept] = drain(session.client("sqs"), resources.consumers[NAME].dlq_url)
    assert "items: List should have at most 99 items" in kept["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
    assert stock(session, resources)[skus[-1]] == (1, 0)


def test_fault_crash_after_reserve_reserves_once_and_republishes_the_same_result(aws):
    # Fault 4: reserved, then the function dies before publishing; SQS redelivers the message.
    session, resources = aws
    handle = build(session, resources, with_events(session, CrashingEvents(Clients.create(session).events)))
    assert handle(batch(resources, placed()), context()) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert published(session, resources) == []
    assert stock(session, resources)["SKU-MOUSE"] == (9998, 2)
    stored = reservations(session, resources)["ord-1001"]

    assert handle(batch(resources, placed()), context()) == {"batchItemFailures": []}
    [event] = published(session, resources)
    assert event["detail-type"] == "Items Reserved"
    assert event["detail"] == json.loads(stored["result"])
    assert stock(session, resources)["SKU-MOUSE"] == (9998, 2)  # reserved once
    assert stock(session, resources)["SKU-LAPTOP-14"] == (9999, 1)
    assert_invariant(session, resources)


def test_fault_racing_duplicate_reservations_reserve_once(aws):
    # Two copies of Order Placed processed at once both find no reservation record; the record's
    # conditional put in the same transaction lets only one of them take the stock.
    session, resources = aws
    store = DynamoInventoryStore(session.client("dynamodb"), resources.tables["inventory"])
    copy = Reservation("ord-1001", Status.HELD, (Line("SKU-MOUSE", 2),), "t0", "t0",
                       AgentOutput("Items Reserved", {"reason": "first"}))
    store.hold(copy)
    with pytest.raises(ReservationExists):
        store.hold(copy)
    assert stock(session, resources)["SKU-MOUSE"] == (9998, 2)
    assert store.get("ord-1001").result == copy.result
    assert_invariant(session, resources)


def test_duplicate_delivery_reserves_once(aws):
    session, resources = aws
    handle = build(session, resources)
    handle(batch(resources, placed(), placed()), context())
    first, second = published(session, resources)
    assert first["detail"] == second["detail"]
    assert stock(session, resources)["SKU-MOUSE"] == (9998, 2)


def test_another_version_of_a_reserved_order_is_unavailable_naming_both_and_reserves_nothing_more(aws):
    """Issue 10 case 1: the same order id with other contents. The reservation stays the first version's; the
    other version gets Items Unavailable naming both versions (its workflow is rejected, and the compensation
    then releases the first version's reservation); a redelivery of the first still republishes its result."""
    session, resources = aws
    handle = build(session, resources)
    mouse = placed()
    racks = placed(items=[{"sku": "SKU-MOUSE", "quantity": 3, "unit_price": 4999.0}])
    handle(batch(resources, mouse), context())
    handle(batch(resources, racks, first=1), context())
    handle(batch(resources, mouse, first=2), context())
    first, other, again = published(session, resources)
    mouse_version = first["detail"]["trigger_digest"]
    racks_version = other["detail"]["trigger_digest"]
    assert first["detail-type"] == "Items Reserved" and mouse_version != racks_version
    assert other["detail-type"] == "Items Unavailable"
    assert mouse_version in other["detail"]["reason"] and racks_version in other["detail"]["reason"]
    assert again["detail"] == first["detail"]  # the first version's stored result, verbatim
    [record] = reservations(session, resources).values()
    assert record["status"] == "HELD"
    assert [(line["sku"], int(line["quantity"])) for line in record["lines"]] == [
        (line["sku"], line["quantity"]) for line in json.loads(mouse)["detail"]["items"]]
    assert_invariant(session, resources)


# -- compensation ---------------------------------------------------------------------------------------

def test_fault_compensation_releases_exactly_once(aws):
    # Fault 10: Order Rejected releases the reservation; copies and a later time-out change nothing.
    session, resources = aws
    handle = build(session, resources)
    handle(batch(resources, placed()), context())
    published(session, resources)
    assert handle(batch(resources, finished("REJECTED")), context()) == {"batchItemFailures": []}
    assert stock(session, resources)["SKU-MOUSE"] == (10000, 0)
    assert stock(session, resources)["SKU-LAPTOP-14"] == (10000, 0)
    record = reservations(session, resources)["ord-1001"]
    assert record["status"] == "RELEASED" and record["release_reason"].startswith("order REJECTED")
    duplicates = batch(resources, finished("REJECTED"), finished("REJECTED"), finished("TIMED_OUT"))
    assert handle(duplicates, context()) == {"batchItemFailures": []}
    assert stock(session, resources)["SKU-MOUSE"] == (10000, 0)
    assert stock(session, resources)["SKU-LAPTOP-14"] == (10000, 0)
    assert published(session, resources) == []  # compensation publishes nothing
    assert_invariant(session, resources)


def test_fault_racing_duplicate_compensations_release_once(aws):
    # Two copies of Order Rejected processed at once both read the reservation as HELD; only one may
    # give the stock back (the release transaction is conditioned on status = HELD).
    session, resources = aws
    build(session, resources)(batch(resources, placed()), context())
    store = DynamoInventoryStore(session.client("dynamodb"), resources.tables["inventory"])
    snapshot = store.get("ord-1001")
    assert snapshot.status is Status.HELD
    assert store.release(snapshot, "2026-11-26T11:07:09.000Z", "order REJECTED") is True
    assert store.release(snapshot, "2026-11-26T11:07:09.001Z", "order REJECTED") is False
    assert stock(session, resources)["SKU-MOUSE"] == (10000, 0)
    assert stock(session, resources)["SKU-LAPTOP-14"] == (10000, 0)
    assert_invariant(session, resources)


def test_fault_compensation_before_reservation_leaves_tombstone_and_nothing_is_reserved(aws):
    session, resources = aws
    handle = build(session, resources)
    handle(batch(resources, finished("TIMED_OUT")), context())
    assert reservations(session, resources)["ord-1001"]["status"] == "CANCELLED"
    assert handle(batch(resources, placed()), context()) == {"batchItemFailures": []}
    [event] = published(session, resources)
    assert event["detail-type"] == "Items Unavailable"
    assert event["detail"]["reason"] == "order already finished"
    assert stock(session, resources)["SKU-MOUSE"] == (10000, 0)
    handle(batch(resources, finished("TIMED_OUT")), context())
    assert reservations(session, resources)["ord-1001"]["status"] == "CANCELLED"
    assert_invariant(session, resources)


def test_release_of_an_unavailable_order_gives_nothing_back(aws):
    session, resources = aws
    set_stock(session, resources, "SKU-DOCK", 1)
    handle = build(session, resources)
    handle(batch(resources, order("ord-1001", ("SKU-MOUSE", 1), ("SKU-DOCK", 2))), context())
    handle(batch(resources, finished("REJECTED")), context())
    assert stock(session, resources)["SKU-DOCK"] == (1, 0)
    assert stock(session, resources)["SKU-MOUSE"] == (10000, 0)


def test_invariant_over_a_mixed_run(aws):
    session, resources = aws
    handle = build(session, resources)
    bodies = [placed("orders-batch.json", i) for i in range(5)] + [placed("order-placed-over-limit.json")]
    handle(batch(resources, *bodies), context())
    assert_invariant(session, resources)
    handle(batch(resources, finished("REJECTED", "ord-2004"), finished("TIMED_OUT", "ord-2002"),
                 finished("REJECTED", "ord-9999")), context())
    assert_invariant(session, resources)
    status = {k: v["status"] for k, v in reservations(session, resources).items()}
    assert status == {"ord-2001": "HELD", "ord-2002": "RELEASED", "ord-2003": "HELD", "ord-2004": "RELEASED",
                      "ord-2005": "HELD", "ord-1002": "HELD", "ord-9999": "CANCELLED"}


@pytest.fixture
def serialized_moto(monkeypatch):
    """moto's server behind the local runtime's one-request-at-a-time endpoint: each emulator call is atomic,
    as each DynamoDB call is on AWS, while the handlers run concurrently in threads."""
    from agentbus.local.provision import provision
    from agentbus.local.server import LocalEndpoint
    from agentbus.local.stack import local_session

    with LocalEndpoint() as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint.url)  # every client of this test talks to it
        session = local_session()
        # moto's server keeps its state in the process: names of its own, so runs never collide.
        name = f"agentbus-race-{uuid.uuid4().hex[:8]}"
        yield session, provision(session, prefix=name, bus_name=name, endpoint_url=endpoint.url), endpoint.url


@pytest.mark.parametrize("mode", ["threads", "one_batch"])
def test_concurrent_reservations_of_the_last_units_never_oversell(mode, serialized_moto):
    """Ten orders for the last five units, at once: ten invocations in threads, or one batch of ten
    handled concurrently (the manifest's record_concurrency). Against the serialized local endpoint, as
    moto in-process is not thread-safe (it oversold or lost writes in 15 of 25 runs)."""
    session, resources, endpoint_url = serialized_moto
    set_stock(session, resources, "SKU-DOCK", 5)
    bodies = [order(f"ord-c{i}", ("SKU-DOCK", 1)) for i in range(10)]
    if mode == "one_batch":
        handle = build(session, resources, Clients.create(session, endpoint_url), record_concurrency=10)
        responses = [handle(batch(resources, *bodies), context())]
        assert responses == [{"batchItemFailures": []}]
    else:
        handle = build(session, resources, Clients.create(session, endpoint_url))
        responses = []
        errors: list[BaseException] = []
        start = threading.Barrier(10)

        def reserve(i: int) -> None:
            try:
                start.wait()
                responses.append(handle(batch(resources, bodies[i], first=i), context()))
            except BaseException as error:  # surfaced below
                errors.append(error)

        threads = [threading.Thread(target=reserve, args=(i,)) for i in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert responses == [{"batchItemFailures": []}] * 10
    kinds = [e["detail-type"] for e in published(session, resources)]
    assert sorted(kinds) == ["Items Reserved"] * 5 + ["Items Unavailable"] * 5
    assert stock(session, resources)["SKU-DOCK"] == (0, 5)
    assert_invariant(session, resources, {**STOCK, "SKU-DOCK": 5})


# -- poison and routing ---------------------------------------------------------------------------------

def test_poison_goes_to_the_dlq_and_the_rest_is_processed(aws):
    session, resources = aws
    bad_outcome = json.loads(finished("REJECTED"))
    del bad_outcome["detail"]["workflow_id"]
    stranger = json.dumps(eventbridge_envelope("Order Completed", "agentbus.coordinator", {"order_id": "x"}))
    bodies = ["not json", placed("order-placed-invalid.json"), json.dumps(bad_outcome), stranger, placed()]
    assert build(session, resources)(batch(resources, *bodies), context()) == {"batchItemFailures": []}
    kept = {m["Body"]: m["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
            for m in drain(session.client("sqs"), resources.consumers[NAME].dlq_url)}
    assert set(kept) == set(bodies[:4])
    assert "items.0.quantity" in kept[bodies[1]]
    assert "invalid WorkflowOutcome: workflow_id" in kept[bodies[2]]
    assert "not 'Order Completed' from 'agentbus.coordinator'" in kept[stranger]
    assert [e["detail"]["workflow_id"] for e in published(session, resources)] == ["ord-1001"]
    assert stock(session, resources)["SKU-MOUSE"] == (9998, 2)


def test_transient_error_fails_only_that_record(aws):
    session, resources = aws
    handle = build(session, resources, with_events(session, CrashingEvents(Clients.create(session).events)))
    response = handle(batch(resources, placed(), placed("order-placed-over-limit.json")), context())
    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert [e["detail"]["workflow_id"] for e in published(session, resources)] == ["ord-1002"]


def test_success_sample_is_what_the_agent_decides_for_the_sample_order(aws):
    session, resources = aws
    build(session, resources)(batch(resources, placed()), context())
    [event] = published(session, resources)
    sample = json.loads((EVENTS / "items-reserved.json").read_text())[0]
    expected = json.loads(sample["Detail"])
    assert event["detail-type"] == sample["DetailType"]
    assert (event["detail"]["reason"], event["detail"]["data"]) == (expected["reason"], expected["data"])
