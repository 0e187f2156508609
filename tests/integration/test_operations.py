"""Operator verbs that change things: seeding stock, replaying the archive."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from agentbus import operations
from agentbus.discovery import Deployment
from tests.conftest import EVENTS_DIR, order_entry


def deployment(stack) -> Deployment:
    return Deployment(stack.session, stack.url, stack.resources)


def stock_of(stack, sku: str) -> tuple[int, int]:
    item = stack.client("dynamodb").get_item(TableName=stack.resources.tables["inventory"],
                                             Key={"pk": {"S": f"sku#{sku}"}}, ConsistentRead=True)["Item"]
    return int(item["on_hand"]["N"]), int(item["reserved"]["N"])


def test_seed_adds_new_skus_and_never_overwrites_live_stock(local_stack, tmp_path):
    [order_id] = [json.loads(e["Detail"])["order_id"] for e in [order_entry("ord-seed-1")]]
    local_stack.client("events").put_events(Entries=[order_entry(order_id)])
    assert local_stack.observer_.wait_for_outcomes([order_id], 60) == set()
    before = stock_of(local_stack, "SKU-MOUSE")
    assert before == (9998, 2)

    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"stock": {"SKU-MOUSE": 50, "SKU-NEW": 7}}))
    [(table, new, total)] = operations.seed(deployment(local_stack), "inventory", str(seed))
    assert (table, new, total) == (local_stack.resources.tables["inventory"], 1, 2)
    assert stock_of(local_stack, "SKU-MOUSE") == before
    assert stock_of(local_stack, "SKU-NEW") == (7, 0)


@pytest.mark.parametrize(("table", "says"), [("workflows", "the coordinator's own"), ("stock", "unknown")])
def test_seed_refuses_a_table_that_is_no_workflow_table_naming_those_it_can_seed(local_stack, tmp_path, table, says):
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps([{"workflow_id": "x", "workflow": "y"}]))
    with pytest.raises(operations.OperationError) as refused:
        operations.seed(deployment(local_stack), table, str(seed))
    assert says in str(refused.value) and "orders, inventory" in str(refused.value)


def test_seed_refuses_a_malformed_file(local_stack, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"stock": {"SKU-MOUSE": -1}}))
    try:
        operations.seed(deployment(local_stack), "inventory", str(bad))
    except operations.OperationError as error:
        assert "whole number >= 0" in str(error) and "SKU-MOUSE" in str(error)
    else:
        raise AssertionError("a negative stock level was accepted")
    # Every table with a seed file, new items only: the provisioned stack has them all already.
    done = operations.seed(deployment(local_stack))
    assert {table: (new, total) for table, new, total in done} == {
        local_stack.resources.tables["inventory"]: (0, 6), local_stack.resources.tables["directory"]: (0, 11)}
    assert len(operations.seed(deployment(local_stack), "inventory", str(EVENTS_DIR / "seed-stock.json"))) == 1


def test_replay_puts_archived_events_back_and_changes_no_outcome(local_stack):
    order_id = "ord-replay-1"
    local_stack.client("events").put_events(Entries=[order_entry(order_id)])
    assert local_stack.observer_.wait_for_outcomes([order_id], 60) == set()
    stock_after_order = stock_of(local_stack, "SKU-MOUSE")

    now = datetime.now(UTC)
    started = operations.replay(deployment(local_stack), now - timedelta(hours=1), now + timedelta(minutes=1))
    assert started["replay"].startswith("agentbus-")
    assert started["state"] == "COMPLETED"  # locally done when the verb returns (it said STARTING)
    with pytest.raises(operations.OperationError, match="--from .* is in the future"):
        operations.replay(deployment(local_stack), now + timedelta(hours=1), now + timedelta(hours=2))
    deadline = time.monotonic() + 30
    placed = []
    while time.monotonic() < deadline and len(placed) < 2:
        placed = [e for e in local_stack.observer_.by_workflow[order_id] if e.detail_type == "Order Placed"]
        time.sleep(0.2)
    assert len(placed) == 2, "the archived trigger was not replayed"
    time.sleep(3)  # the replayed trigger and results go through every consumer again
    outcomes = local_stack.observer_.outcomes(order_id)
    assert {e.detail["idempotency_key"] for e in outcomes} == {f"{order_id}:COMPLETED"}
    assert stock_of(local_stack, "SKU-MOUSE") == stock_after_order
    view = operations.workflow_status(deployment(local_stack), order_id)
    assert view["status"] == "COMPLETED"


def test_replay_puts_back_only_the_events_inside_its_window(local_stack):
    """moto replays the whole archive whatever the window; the local endpoint honours it, as EventBridge does."""
    events, observer = local_stack.client("events"), local_stack.observer_
    before, inside = "ord-replay-before", "ord-replay-inside"
    events.put_events(Entries=[order_entry(before)])
    assert observer.wait_for_outcomes([before], 60) == set()
    time.sleep(1.0)
    window_start = datetime.now(UTC)
    time.sleep(1.0)
    events.put_events(Entries=[order_entry(inside)])
    assert observer.wait_for_outcomes([inside], 60) == set()
    seen_before = len(observer.by_workflow[before])

    operations.replay(deployment(local_stack), window_start, datetime.now(UTC) + timedelta(minutes=1))

    def placed(order_id: str) -> int:
        return sum(e.detail_type == "Order Placed" for e in observer.by_workflow[order_id])

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and placed(inside) < 2:
        time.sleep(0.2)
    assert placed(inside) == 2, "the trigger inside the window was not replayed"
    time.sleep(3)  # anything replayed from before the window would have arrived by now
    assert placed(before) == 1
    assert len(observer.by_workflow[before]) == seen_before, "events from before the window were replayed"
