"""The order-fulfillment workflow: an order is checked for fraud, its items reserved and its shipping quoted,
in parallel; the coordinator completes it when all three succeed and writes it to the orders table."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from functions.common.spec import (
    AGENT_SOURCE_PREFIX,
    Agent,
    Outcome,
    Outcomes,
    Parameter,
    Projection,
    ResultType,
    Subscription,
    Table,
    Trigger,
    Workflow,
)

PRODUCER_SOURCE = "agentbus.orders"
ORDER_PLACED = Subscription(name="trigger", sources=(PRODUCER_SOURCE,), detail_types=("Order Placed",))


# The largest amount (the FRAUD_LIMIT parameter) is what an order line's unit_price may be
# (functions/orders/models.py: at most 14 digits, 2 of them decimals): a limit of 1e300000 is a valid Decimal, but
# the fraud agent prints its limit with every result, 300 KB of digits each (1e999999999: a 1 GB string).
MAX_AMOUNT = Decimal("999999999999.99")
CENT = Decimal("0.01")


def amount(text: str) -> Decimal:
    """A non-negative decimal amount of at most 2 decimals and at most MAX_AMOUNT (the FRAUD_LIMIT parameter)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"must be a decimal amount, got {text!r}") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"must be a finite amount >= 0, got {text!r}")
    if value > MAX_AMOUNT:  # compared before quantize, which would fail on a value this large
        raise ValueError(f"must be at most {MAX_AMOUNT} (an order line's largest unit_price), got {text!r}")
    if value.quantize(CENT) != value:
        raise ValueError(f"must have at most 2 decimal places (cents), got {text!r}")
    return value


FRAUD_LIMIT = Parameter("FRAUD_LIMIT", "10000.00", "orders whose total exceeds this amount are flagged",
                        context="fraud_limit", check="functions.orders.workflow:amount")

TABLES = (
    Table("orders", "order_id", "the main database: each order's final record", retain=True),
    Table("inventory", "pk", "stock per SKU (`sku#…`) and reservations per order (`reservation#…`)",
          seed_file="events/seed-stock.json", seeder="functions.orders.inventory.store:seed_items"),
)

ORDER_FULFILLMENT = Workflow(
    name="order-fulfillment",
    description="An order is checked for fraud, its items reserved and its shipping quoted, in parallel.",
    trigger=Trigger(ORDER_PLACED, model="functions.orders.models:OrderPlaced", id_field="order_id"),
    deadline_s=300,
    outcomes=Outcomes(completed="Order Completed", rejected="Order Rejected", timed_out="Order Timed Out",
                      cancelled="Order Cancelled"),
    projection=Projection(table="orders", function="functions.orders.projection:order_item"),
    invariants="functions.orders.invariants:check",
    samples=('events/order-placed.json', 'events/orders-batch.json'),
    workload="functions.orders.workload:bench_orders",
    agents=(
        Agent(
            name="fraud",
            simulated_work_ms=300,
            description="Scores the order: total against a limit, quantity and destination signals.",
            handler="functions.orders.fraud.handler.handler",
            source=f"{AGENT_SOURCE_PREFIX}fraud",
            record_concurrency=10,
            parameters=(FRAUD_LIMIT,),
            results=(
                ResultType("Order Verified", Outcome.SUCCESS, "score below the threshold"),
                ResultType("Order Flagged", Outcome.FAILURE, "score at or above the threshold, with reasons"),
            ),
        ),
        Agent(
            name="inventory",
            simulated_work_ms=100,
            description="Reserves every line atomically, or none; releases the reservation on rejection or time-out.",
            handler="functions.orders.inventory.handler.handler",
            source=f"{AGENT_SOURCE_PREFIX}inventory",
            record_concurrency=10,
            results=(
                ResultType("Items Reserved", Outcome.SUCCESS, "every line reserved"),
                ResultType("Items Unavailable", Outcome.FAILURE, "a line could not be reserved; nothing reserved"),
            ),
            compensate_on=("Order Rejected", "Order Timed Out", "Order Cancelled"),
            tables=("inventory",),
        ),
        Agent(
            name="shipping",
            simulated_work_ms=200,
            description="Quotes shipping by destination zone and parcel weight.",
            handler="functions.orders.shipping.handler.handler",
            source=f"{AGENT_SOURCE_PREFIX}shipping",
            record_concurrency=10,
            results=(
                ResultType("Shipping Quoted", Outcome.SUCCESS, "a carrier, price and delivery estimate"),
                ResultType("Shipping Unavailable", Outcome.FAILURE, "no carrier serves the destination"),
            ),
        ),
    ),
)
