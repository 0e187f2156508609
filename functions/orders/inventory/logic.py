"""Inventory: reserve every line of an order atomically or none, once; release it, once, on compensation.

One reservation record per order (``reservation#<order_id>``) is the idempotency key of both sides:

- reserving writes the stock changes and a ``HELD`` record, with the result it is about to publish, in
  one transaction; if the record already exists, nothing is reserved again and the stored result is
  published again (a retry after a crash between reserving and publishing publishes the same result);
- a shortfall records ``UNAVAILABLE`` with its result, so a retry publishes the same decision;
- compensation (``Order Rejected`` / ``Order Timed Out``) flips ``HELD`` to ``RELEASED`` and gives the
  stock back in one transaction conditioned on ``HELD``, so it happens at most once; with no record yet
  it writes a ``CANCELLED`` tombstone, so a reservation arriving later reserves nothing.

Invariant: for every SKU, on_hand + reserved = initial stock, and reserved = the sum of HELD lines.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from functions.common.decisions import AgentOutput, Decision, Finish
from functions.common.models import WorkflowOutcome
from functions.common.moments import iso_ms, utc_now
from functions.orders.models import OrderPlaced

RESERVED = "Items Reserved"
UNAVAILABLE = "Items Unavailable"
ALREADY_FINISHED = "order already finished"

# TransactWriteItems takes at most 100 actions: one per line, plus the reservation record.
MAX_TRANSACTION_ITEMS = 100
MAX_LINES = MAX_TRANSACTION_ITEMS - 1
# Attempts after losing a race on the reservation record (a concurrent copy of the same event) or a
# transaction conflict on a hot SKU; after that the message is retried by SQS.
MAX_ATTEMPTS = 3
CONFLICT_BACKOFF_S = 0.05


class Status(StrEnum):
    HELD = "HELD"
    RELEASED = "RELEASED"
    UNAVAILABLE = "UNAVAILABLE"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int


@dataclass(frozen=True)
class Reservation:
    order_id: str
    status: Status
    lines: tuple[Line, ...]
    created_at: str
    updated_at: str
    # The result published for this reservation (none for a CANCELLED tombstone).
    result: AgentOutput | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Shortfall:
    sku: str
    requested: int
    available: int | None  # None: no such SKU

    def describe(self) -> str:
        if self.available is None:
            return f"unknown SKU {self.sku}"
        return f"{self.sku}: {self.requested} requested, {self.available} available"


class ReservationExists(Exception):
    """The order's reservation record was written meanwhile (a concurrent copy, or compensation)."""


class OutOfStock(Exception):
    def __init__(self, shortfalls: list[Shortfall]):
        self.shortfalls = shortfalls
        super().__init__("; ".join(s.describe() for s in shortfalls))


class Contention(RuntimeError):
    """Transient: the records kept changing under us (or DynamoDB reported a transaction conflict)."""


class InventoryStore(Protocol):
    def get(self, order_id: str) -> Reservation | None: ...

    def hold(self, reservation: Reservation) -> None:
        """Atomically take every line from on_hand into reserved and write ``reservation`` if absent.

        Raises ReservationExists (nothing written) or OutOfStock naming each short or unknown SKU.
        """

    def record(self, reservation: Reservation) -> None:
        """Write ``reservation`` if the order has none yet; else raise ReservationExists."""

    def release(self, reservation: Reservation, released_at: str, reason: str) -> bool:
        """Atomically mark it RELEASED and give its lines back, if it is still HELD; False if it was not."""


class Inventory:
    def __init__(self, store: InventoryStore, clock: Callable[[], datetime] = utc_now,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.store = store
        self.clock = clock
        self.sleep = sleep

    def _back_off(self, attempt: int) -> None:
        # Jittered, so that transactions that conflicted on a hot SKU do not collide again in step.
        self.sleep(CONFLICT_BACKOFF_S * (2 ** attempt) * random.uniform(0.5, 1.5))

    # -- Order Placed ---------------------------------------------------------------------------------

    def reserve(self, order: OrderPlaced, finish: Finish) -> AgentOutput:
        lines = tuple(Line(line.sku, line.quantity) for line in order.items)
        for attempt in range(MAX_ATTEMPTS):
            # The first attempt writes without reading: the reservation record's own condition
            # (attribute_not_exists) says when the order has one already (a redelivery, another version, a
            # tombstone), and only then is it read and replayed. One read less per order.
            existing = self.store.get(order.order_id) if attempt else None
            if existing is not None:
                return self._replay(existing, finish)
            if len(lines) > MAX_LINES:
                output = finish(Decision(
                    UNAVAILABLE,
                    f"{len(lines)} lines: at most {MAX_LINES} lines can be reserved in one transaction",
                    {"lines": len(lines), "max_lines": MAX_LINES},
                ))
            else:
                output = finish(Decision(
                    RESERVED,
                    f"reserved {sum(line.quantity for line in lines)} units of {len(lines)} SKU(s)",
                    {"reservation": f"reservation#{order.order_id}",
                     "lines": [{"sku": line.sku, "quantity": line.quantity} for line in lines]},
                ))
                try:
                    self.store.hold(self._reservation(order.order_id, Status.HELD, lines, output))
                    return output
                except ReservationExists:
                    continue
                except Contention:
                    if attempt == MAX_ATTEMPTS - 1:
                        raise
                    self._back_off(attempt)
                    continue
                except OutOfStock as short:
                    output = finish(Decision(UNAVAILABLE, f"nothing reserved: {short}", {
                        "shortfalls": [
                            {"sku": s.sku, "requested": s.requested, "available": s.available}
                            for s in short.shortfalls
                        ],
                    }))
            try:
                self.store.record(self._reservation(order.order_id, Status.UNAVAILABLE, lines, output))
                return output
            except ReservationExists:
                continue
        raise Contention(f"the reservation of order {order.order_id} kept changing; retry")

    def _replay(self, existing: Reservation, finish: Finish) -> AgentOutput:
        if existing.status is Status.CANCELLED or existing.result is None:
            return finish(Decision(UNAVAILABLE, ALREADY_FINISHED, {"finished": existing.reason}))
        held_for = existing.result.detail.get("trigger_digest")
        this_version = getattr(finish, "trigger_digest", None)
        if held_for and this_version and held_for != this_version:
            # Another version of the same order id (other contents) made the reservation: nothing is reserved
            # for this one. Its result says so, so the workflow that stored this version is rejected and the
            # compensation releases what the other version holds.
            return finish(Decision(UNAVAILABLE, (
                f"conflicting versions of order {existing.order_id}: the reservation was made for trigger "
                f"version {held_for}, this is version {this_version}; nothing reserved for it"),
                {"conflict": {"held_for": held_for, "this_version": this_version}}))
        return existing.result  # the very result published the first time

    def _reservation(self, order_id: str, status: Status, lines: tuple[Line, ...],
                     output: AgentOutput) -> Reservation:
        now = iso_ms(self.clock())
        return Reservation(order_id=order_id, status=status, lines=lines, created_at=now, updated_at=now,
                           result=output, reason=output.detail.get("reason"))

    # -- Order Rejected / Order Timed Out (compensation) ----------------------------------------------

    def release(self, outcome: WorkflowOutcome) -> str:
        """Undo the order's reservation once. Returns what happened: released, tombstoned or nothing."""
        why = f"order {outcome.status}" + (f": {outcome.reason}" if outcome.reason else "")
        for attempt in range(MAX_ATTEMPTS):
            existing = self.store.get(outcome.workflow_id)
            now = iso_ms(self.clock())
            if existing is None:
                try:
                    self.store.record(Reservation(order_id=outcome.workflow_id, status=Status.CANCELLED, lines=(),
                                                  created_at=now, updated_at=now, reason=why))
                    return "tombstoned"
                except ReservationExists:
                    continue
            if existing.status is not Status.HELD:
                return "nothing"
            try:
                if self.store.release(existing, now, why):
                    return "released"
            except Contention:
                if attempt == MAX_ATTEMPTS - 1:
                    raise
                self._back_off(attempt)
        raise Contention(f"the reservation of order {outcome.workflow_id} kept changing; retry")
