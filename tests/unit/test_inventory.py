"""Inventory logic against an in-memory store with DynamoDB's transaction semantics (no AWS)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from pydantic import ValidationError

from agentbus.local.lambda_events import eventbridge_envelope
from functions.common.agent import AgentOutput, AgentRunner, locate
from functions.common.models import BusEvent, WorkflowOutcome
from functions.common.publisher import Event
from functions.manifest import MANIFEST
from functions.orders.inventory.logic import (
    ALREADY_FINISHED,
    MAX_LINES,
    RESERVED,
    UNAVAILABLE,
    Contention,
    Inventory,
    Line,
    OutOfStock,
    Reservation,
    ReservationExists,
    Shortfall,
    Status,
)
from functions.orders.inventory.store import DynamoInventoryStore
from functions.orders.models import MAX_QUANTITY, OrderPlaced


class MemoryStore:
    """Stock and reservation records; ``hold``/``release`` are all-or-nothing like TransactWriteItems."""

    def __init__(self, stock: dict[str, int]):
        self.on_hand = dict(stock)
        self.reserved = dict.fromkeys(stock, 0)
        self.records: dict[str, Reservation] = {}
        self.lock = threading.Lock()
        self.holds = 0
        self.before_write = lambda: None  # a hook to simulate a concurrent writer

    def get(self, order_id):
        return self.records.get(order_id)

    def hold(self, reservation):
        self.before_write()
        with self.lock:
            self.holds += 1
            if reservation.order_id in self.records:
                raise ReservationExists(reservation.order_id)
            short = [Shortfall(line.sku, line.quantity, self.on_hand.get(line.sku))
                     for line in reservation.lines
                     if line.sku not in self.on_hand or self.on_hand[line.sku] < line.quantity]
            if short:
                raise OutOfStock(short)
            for line in reservation.lines:
                self.on_hand[line.sku] -= line.quantity
                self.reserved[line.sku] += line.quantity
            self.records[reservation.order_id] = reservation

    def record(self, reservation):
        self.before_write()
        with self.lock:
            if reservation.order_id in self.records:
                raise ReservationExists(reservation.order_id)
            self.records[reservation.order_id] = reservation

    def release(self, reservation, released_at, reason):
        with self.lock:
            current = self.records[reservation.order_id]
            if current.status is not Status.HELD:
                return False
            for line in current.lines:
                self.on_hand[line.sku] += line.quantity
                self.reserved[line.sku] -= line.quantity
            self.records[reservation.order_id] = Reservation(
                current.order_id, Status.RELEASED, current.lines, current.created_at, released_at,
                current.result, reason)
            return True


STOCK = {"SKU-MOUSE": 10, "SKU-DOCK": 3}


def order(*lines: tuple[str, int], order_id: str = "ord-1") -> OrderPlaced:
    return OrderPlaced.model_validate({
        "order_id": order_id, "customer_id": "cus-1", "currency": "EUR",
        "items": [{"sku": sku, "quantity": q, "unit_price": 1} for sku, q in lines],
        "shipping_address": {"country": "DE", "postal_code": "1"},
    })


def outcome(status: str = "REJECTED", order_id: str = "ord-1") -> WorkflowOutcome:
    return WorkflowOutcome.model_validate({
        "workflow": "order-fulfillment", "workflow_id": order_id, "order_id": order_id, "status": status,
        "reason": "fraud: score 100 >= 100", "results": {}, "timings": {},
        "idempotency_key": f"{order_id}:{status}",
    })


class Harness:
    """An inventory wired into the real runner's ``finish`` (clocked), without a bus."""

    def __init__(self, stock=STOCK):
        self.store = MemoryStore(stock)
        self.slept: list[float] = []
        self.inventory = Inventory(self.store, clock=lambda: datetime(2026, 1, 1, tzinfo=UTC),
                                   sleep=self.slept.append)
        agent, workflow = locate("inventory", MANIFEST)
        self.published: list[Event] = []
        self.runner = AgentRunner(agent, workflow, publisher=self, act=self.inventory.reserve,  # type: ignore[arg-type]
                                  clock=self._tick)
        self._now = datetime(2026, 1, 1, tzinfo=UTC)

    def _tick(self):
        self._now += timedelta(milliseconds=10)
        return self._now

    def publish(self, events: list[Event]) -> None:
        self.published += events

    def reserve(self, subject: OrderPlaced) -> AgentOutput:
        event = BusEvent.model_validate(eventbridge_envelope("Order Placed", "agentbus.orders",
                                                             subject.model_dump(mode="json")))
        output = self.runner.handle(event)
        assert (self.published[-1].detail_type, self.published[-1].detail) == (output.detail_type, output.detail)
        return output

    def conserved(self) -> bool:
        held = dict.fromkeys(self.store.on_hand, 0)
        for record in self.store.records.values():
            if record.status is Status.HELD:
                for line in record.lines:
                    held[line.sku] += line.quantity
        return all(self.store.on_hand[s] + self.store.reserved[s] == STOCK[s] and self.store.reserved[s] == held[s]
                   for s in STOCK)


def test_reserves_every_line_and_records_the_result():
    h = Harness()
    output = h.reserve(order(("SKU-MOUSE", 2), ("SKU-DOCK", 1)))
    assert output.detail_type == RESERVED
    assert output.detail["data"]["lines"] == [{"sku": "SKU-MOUSE", "quantity": 2}, {"sku": "SKU-DOCK", "quantity": 1}]
    assert (h.store.on_hand, h.store.reserved) == ({"SKU-MOUSE": 8, "SKU-DOCK": 2}, {"SKU-MOUSE": 2, "SKU-DOCK": 1})
    record = h.store.records["ord-1"]
    assert record.status is Status.HELD and record.result == output
    assert h.conserved()


def test_short_line_reserves_nothing_and_names_the_sku():
    h = Harness()
    output = h.reserve(order(("SKU-MOUSE", 2), ("SKU-DOCK", 4)))
    assert output.detail_type == UNAVAILABLE
    assert output.detail["outcome"] == "failure"
    assert output.detail["reason"] == "nothing reserved: SKU-DOCK: 4 requested, 3 available"
    assert output.detail["data"]["shortfalls"] == [{"sku": "SKU-DOCK", "requested": 4, "available": 3}]
    assert h.store.on_hand == STOCK
    assert h.store.records["ord-1"].status is Status.UNAVAILABLE
    assert h.conserved()


def test_unknown_sku_is_unavailable():
    h = Harness()
    output = h.reserve(order(("SKU-NOPE", 1)))
    assert output.detail_type == UNAVAILABLE
    assert "unknown SKU SKU-NOPE" in output.detail["reason"]


def test_retry_after_a_decision_republishes_the_stored_result():
    for lines in ((("SKU-MOUSE", 1),), (("SKU-DOCK", 9),)):
        h = Harness()
        first = h.reserve(order(*lines))
        on_hand, records = dict(h.store.on_hand), dict(h.store.records)
        again = h.reserve(order(*lines))
        assert again == first  # same detail-type, same timings, same everything
        # Its write was refused by the reservation record's condition: nothing held twice, nothing rewritten.
        assert h.store.on_hand == on_hand and h.store.records == records
        assert h.conserved()


def test_a_first_delivery_writes_without_reading_and_a_redelivery_reads_once_to_replay():
    h = Harness()
    reads: list[str] = []
    get = h.store.get
    h.store.get = lambda order_id: reads.append(order_id) or get(order_id)  # type: ignore[method-assign]
    first = h.reserve(order(("SKU-MOUSE", 1)))
    assert reads == [] and h.store.holds == 1
    assert h.reserve(order(("SKU-MOUSE", 1))) == first
    assert reads == ["ord-1"]


def test_lost_race_on_the_record_republishes_the_winners_result():
    h = Harness()
    winner = AgentOutput(RESERVED, {"reason": "the winner"})

    def concurrent_copy_wins():
        h.store.before_write = lambda: None
        h.store.hold(Reservation("ord-1", Status.HELD, (), "t", "t", winner))

    h.store.before_write = concurrent_copy_wins
    assert h.reserve(order(("SKU-MOUSE", 1))) == winner


def test_keeps_losing_races_is_a_transient_contention():
    h = Harness()

    class Flapping(MemoryStore):
        def get(self, order_id):
            return None

        def hold(self, reservation):
            raise ReservationExists(reservation.order_id)

    h.inventory.store = Flapping(STOCK)
    with pytest.raises(Contention):
        h.reserve(order(("SKU-MOUSE", 1)))


def test_the_order_contract_allows_no_more_lines_than_a_transaction_holds():
    lines = [(f"SKU-{i}", 1) for i in range(MAX_LINES + 1)]
    with pytest.raises(ValidationError, match="items"):
        order(*lines)
    assert len(order(*lines[:MAX_LINES]).items) == MAX_LINES


def test_the_order_contract_bounds_a_line_quantity_so_every_amount_stays_exact():
    # A quantity of 10**30 once passed validation and failed every agent's arithmetic (a decimal Rounded, retried
    # five times, dead-lettered naming no field); now the order is invalid at once, naming the field.
    with pytest.raises(ValidationError, match=r"items\.0\.quantity"):
        order(("SKU-MOUSE", MAX_QUANTITY + 1))
    assert order(("SKU-MOUSE", MAX_QUANTITY)).items[0].quantity == MAX_QUANTITY


def test_release_gives_back_exactly_what_was_reserved_once():
    h = Harness()
    h.reserve(order(("SKU-MOUSE", 2), ("SKU-DOCK", 3)))
    assert h.inventory.release(outcome("REJECTED")) == "released"
    assert h.store.on_hand == STOCK and h.store.reserved == {"SKU-MOUSE": 0, "SKU-DOCK": 0}
    assert h.store.records["ord-1"].status is Status.RELEASED
    assert h.inventory.release(outcome("REJECTED")) == "nothing"
    assert h.inventory.release(outcome("TIMED_OUT")) == "nothing"
    assert h.store.on_hand == STOCK
    assert h.conserved()


def test_release_of_an_unavailable_order_changes_nothing():
    h = Harness()
    h.reserve(order(("SKU-DOCK", 9)))
    assert h.inventory.release(outcome()) == "nothing"
    assert h.store.on_hand == STOCK


def test_release_before_reservation_leaves_a_tombstone_and_reserves_nothing_later():
    h = Harness()
    assert h.inventory.release(outcome("TIMED_OUT")) == "tombstoned"
    assert h.store.records["ord-1"].status is Status.CANCELLED
    output = h.reserve(order(("SKU-MOUSE", 1)))
    assert output.detail_type == UNAVAILABLE
    assert output.detail["reason"] == ALREADY_FINISHED
    assert h.store.on_hand == STOCK and set(h.store.reserved.values()) == {0}
    assert h.store.records["ord-1"].status is Status.CANCELLED
    assert h.inventory.release(outcome("TIMED_OUT")) == "nothing"


class Conflicting(MemoryStore):
    """DynamoDB cancels the first ``conflicts`` transactions with TransactionConflict (a hot SKU)."""

    def __init__(self, stock, conflicts: int):
        super().__init__(stock)
        self.conflicts = conflicts

    def _maybe_conflict(self):
        if self.conflicts > 0:
            self.conflicts -= 1
            raise Contention("transaction conflict")

    def hold(self, reservation):
        self._maybe_conflict()
        super().hold(reservation)

    def release(self, reservation, released_at, reason):
        self._maybe_conflict()
        return super().release(reservation, released_at, reason)


def test_transaction_conflict_is_retried_after_a_backoff():
    h = Harness()
    h.inventory.store = h.store = Conflicting(STOCK, conflicts=1)
    assert h.reserve(order(("SKU-MOUSE", 1))).detail_type == RESERVED
    assert h.store.on_hand["SKU-MOUSE"] == 9
    h.store.conflicts = 1
    assert h.inventory.release(outcome()) == "released"
    assert len(h.slept) == 2 and all(0 < s < 1 for s in h.slept)
    assert h.conserved()


def test_persistent_conflict_fails_the_message_for_sqs_to_retry():
    h = Harness()
    h.inventory.store = h.store = Conflicting(STOCK, conflicts=99)
    with pytest.raises(Contention):
        h.reserve(order(("SKU-MOUSE", 1)))
    assert h.store.on_hand == STOCK and h.store.records == {}


class CancellingClient:
    """A DynamoDB client whose TransactWriteItems is cancelled with the given reasons."""

    def __init__(self, reasons, stock_item=None):
        self.reasons, self.stock_item, self.calls = reasons, stock_item, []

    def transact_write_items(self, TransactItems):  # noqa: N803
        self.calls.append(TransactItems)
        raise ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                           "CancellationReasons": self.reasons}, "TransactWriteItems")

    def get_item(self, **kwargs):
        return {"Item": self.stock_item} if self.stock_item else {}


HELD_TWO = Reservation("ord-1", Status.HELD, (Line("SKU-MOUSE", 2), Line("SKU-DOCK", 5)), "t", "t",
                       AgentOutput(RESERVED, {"reason": "r"}))


def test_store_reads_shortfalls_from_cancellation_reasons():
    client = CancellingClient([
        {"Code": "None"},
        {"Code": "ConditionalCheckFailed", "Item": {"on_hand": {"N": "3"}, "sku": {"S": "SKU-DOCK"}}},
        {"Code": "None"},
    ])
    with pytest.raises(OutOfStock) as raised:
        DynamoInventoryStore(client, "inv").hold(HELD_TWO)
    assert raised.value.shortfalls == [Shortfall("SKU-DOCK", 5, 3)]
    [actions] = client.calls
    assert len(actions) == 3 and actions[-1]["Put"]["ConditionExpression"] == "attribute_not_exists(pk)"
    assert actions[0]["Update"]["ConditionExpression"] == "attribute_exists(pk) AND on_hand >= :q"


def test_store_names_an_unknown_sku_only_after_checking_it_is_missing():
    missing = CancellingClient([{"Code": "ConditionalCheckFailed"}, {"Code": "None"}, {"Code": "None"}])
    with pytest.raises(OutOfStock) as raised:
        DynamoInventoryStore(missing, "inv").hold(HELD_TWO)
    assert raised.value.shortfalls == [Shortfall("SKU-MOUSE", 2, None)]
    present = CancellingClient([{"Code": "ConditionalCheckFailed"}, {"Code": "None"}, {"Code": "None"}],
                               stock_item={"on_hand": {"N": "1"}})
    with pytest.raises(OutOfStock) as raised:
        DynamoInventoryStore(present, "inv").hold(HELD_TWO)
    assert raised.value.shortfalls == [Shortfall("SKU-MOUSE", 2, 1)]


def test_store_reports_an_existing_record_and_conflicts():
    exists = CancellingClient([{"Code": "None"}, {"Code": "None"}, {"Code": "ConditionalCheckFailed"}])
    with pytest.raises(ReservationExists):
        DynamoInventoryStore(exists, "inv").hold(HELD_TWO)
    conflict = CancellingClient([{"Code": "TransactionConflict"}, {"Code": "None"}, {"Code": "None"}])
    with pytest.raises(Contention):
        DynamoInventoryStore(conflict, "inv").hold(HELD_TWO)
    with pytest.raises(Contention):
        DynamoInventoryStore(conflict, "inv").release(HELD_TWO, "t", "why")
    not_held = CancellingClient([{"Code": "ConditionalCheckFailed"}, {"Code": "None"}, {"Code": "None"}])
    assert DynamoInventoryStore(not_held, "inv").release(HELD_TWO, "t", "why") is False


def test_store_reraises_what_it_does_not_understand():
    odd = CancellingClient([{"Code": "ValidationError", "Message": "bad"}, {"Code": "None"}, {"Code": "None"}])
    with pytest.raises(ClientError):
        DynamoInventoryStore(odd, "inv").hold(HELD_TWO)
