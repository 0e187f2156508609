"""Orders through the whole topology on the local runtime, in-process: rules → queues → functions → bus."""

from __future__ import annotations

import json
import time

import pytest

from agentbus import invariants, operations
from agentbus.discovery import Deployment
from agentbus.local.chaos import Chaos
from agentbus.local.runtime import RuntimeOptions
from tests.conftest import ORDERS, agents_of, load_entries, order_entry

TIMEOUT_S = 60


def put(stack, entries):
    response = stack.client("events").put_events(Entries=entries)
    assert response["FailedEntryCount"] == 0, response
    return [json.loads(e["Detail"])["order_id"] for e in entries]


def deployment(stack) -> Deployment:
    return Deployment(stack.session, stack.url, stack.resources)


def wait_status(stack, order_id, predicate, timeout_s=TIMEOUT_S):
    deadline = time.monotonic() + timeout_s
    view = None
    while time.monotonic() < deadline:
        try:
            view = operations.workflow_status(deployment(stack), order_id)
        except operations.OperationError:
            view = None
        if view and predicate(view):
            return view
        time.sleep(0.2)
    raise AssertionError(f"{order_id}: condition not met in {timeout_s}s; last status {view}")


def test_sample_orders_reach_their_outcomes_once_and_the_orders_table_agrees(local_stack):
    entries = load_entries("order-placed.json") + load_entries("orders-batch.json")
    order_ids = put(local_stack, entries)
    observer = local_stack.observer_
    assert observer.wait_for_outcomes(order_ids, TIMEOUT_S) == set()
    time.sleep(1)  # any duplicate outcome would arrive now

    statuses = {o: observer.outcomes(o)[0].detail["status"] for o in order_ids}
    assert statuses == {"ord-1001": "COMPLETED", "ord-2001": "COMPLETED", "ord-2002": "COMPLETED",
                        "ord-2003": "COMPLETED", "ord-2004": "REJECTED", "ord-2005": "COMPLETED"}
    for order_id in order_ids:
        assert len(observer.outcomes(order_id)) == 1, order_id
    rejected = observer.outcomes("ord-2004")[0].detail
    assert rejected["results"]["fraud"]["outcome"] == "failure"
    assert "limit" in (rejected["reason"] or "").lower()

    dynamodb = local_stack.client("dynamodb")
    report = invariants.check(dynamodb, local_stack.resources, observer, {ORDERS: order_ids})
    assert report.violations == []
    assert report.outcomes == {"COMPLETED": 5, "REJECTED": 1}
    order = dynamodb.get_item(TableName=local_stack.resources.tables["orders"],
                              Key={"order_id": {"S": "ord-1001"}})["Item"]
    assert order["status"]["S"] == "COMPLETED"


def test_status_reports_every_agent_result_and_the_timings(local_stack):
    [order_id] = put(local_stack, [order_entry("ord-status-1")])
    view = wait_status(local_stack, order_id, lambda v: v["status"] != "RUNNING")
    assert view["status"] == "COMPLETED"
    assert set(view["results"]) == set(agents_of())  # the order workflow's agents, any a user added too
    assert view["missing"] == []
    assert view["timings"]["duration_ms"] >= max(r["duration_ms"] for r in view["results"].values())
    trace = operations.render_trace(view)
    for agent in (*agents_of(), "COMPLETED"):
        assert agent in trace


def test_a_paused_agent_loses_nothing_its_events_wait_until_resumed(local_stack):
    local_stack.control.set_paused("inventory", True)
    time.sleep(1.0)  # the poller re-reads the state every 0.5 s
    [order_id] = put(local_stack, [order_entry("ord-paused-1")])
    others = set(agents_of()) - {"inventory"}
    view = wait_status(local_stack, order_id, lambda v: others <= set(v["results"]))
    assert view["status"] == "RUNNING"
    assert view["missing"] == ["inventory"]
    assert local_stack.control.queue_depth("inventory")["waiting"] == 1

    local_stack.control.set_paused("inventory", False)
    view = wait_status(local_stack, order_id, lambda v: v["status"] != "RUNNING")
    assert view["status"] == "COMPLETED"


@pytest.mark.parametrize("local_stack", [RuntimeOptions(deadline_seconds=2)], indirect=True)
def test_deadline_times_out_a_workflow_and_releases_its_reservation(local_stack):
    local_stack.control.set_paused("shipping", True)
    time.sleep(1.0)
    [order_id] = put(local_stack, [order_entry("ord-deadline-1")])
    view = wait_status(local_stack, order_id, lambda v: v["status"] != "RUNNING", timeout_s=30)
    assert view["status"] == "TIMED_OUT"
    assert view["missing"] == ["shipping"]

    # The late result, once shipping is back, changes nothing.
    local_stack.control.set_paused("shipping", False)
    time.sleep(2.5)
    assert operations.workflow_status(deployment(local_stack), order_id)["status"] == "TIMED_OUT"
    assert [e.detail["status"] for e in local_stack.observer_.outcomes(order_id)] == ["TIMED_OUT"]
    report = invariants.check(local_stack.client("dynamodb"), local_stack.resources, local_stack.observer_,
                              {ORDERS: [order_id]})
    assert report.violations == []


def test_poison_order_is_rejected_with_its_reason_and_kept_in_dead_letters(local_stack):
    entries = load_entries("order-placed-invalid.json") + [order_entry("ord-healthy-1")]
    put(local_stack, entries)
    view = wait_status(local_stack, "ord-1003", lambda v: v["status"] != "RUNNING")
    assert view["status"] == "REJECTED"
    assert "quantity" in view["reason"]
    assert wait_status(local_stack, "ord-healthy-1", lambda v: v["status"] != "RUNNING")["status"] == "COMPLETED"

    deadline = time.monotonic() + 10
    letters = []
    while time.monotonic() < deadline and len(letters) < len(agents_of()):
        letters = operations.dead_letters(deployment(local_stack))
        time.sleep(0.2)
    assert sorted(letter.agent for letter in letters) == sorted(agents_of())  # every agent refuses it
    assert all("quantity" in letter.reason for letter in letters)
    assert all(letter.event["detail"]["order_id"] == "ord-1003" for letter in letters)

    # Listing does not consume them; a redrive puts them back (and, still invalid, they come back with reasons).
    assert len(operations.dead_letters(deployment(local_stack), "fraud")) == 1
    assert operations.redrive(deployment(local_stack), "fraud") == 1


def _diagnosis(stack, order_ids) -> str:
    """What a request without an outcome left behind: its record, the agents' state, the dead letters."""
    lines = []
    for order_id in sorted(order_ids):
        try:
            lines.append(f"{order_id}: {operations.as_json(operations.workflow_status(deployment(stack), order_id))}")
        except operations.OperationError as error:
            lines.append(f"{order_id}: {error}")
    lines.append(f"agents: {operations.as_json(operations.agent_list(deployment(stack)))}")
    lines.append(f"dead letters: {[(d.agent, d.reason) for d in operations.dead_letters(deployment(stack))]}")
    lines.append(f"chaos injected: {dict(stack.runtime.options.chaos.injected)}")
    return "\n".join(lines)


@pytest.mark.parametrize("local_stack", [RuntimeOptions(deadline_seconds=30, chaos=Chaos(0.3, seed=7))],
                         indirect=True)
def test_invariants_hold_under_chaos(local_stack):
    order_ids = put(local_stack, [order_entry(f"ord-chaos-{i}") for i in range(10)])
    order_ids += put(local_stack, [order_entry(f"ord-chaos-big-{i}", base="order-placed-over-limit.json")
                                   for i in range(3)])
    missing = local_stack.observer_.wait_for_outcomes(order_ids, 90)
    assert missing == set(), _diagnosis(local_stack, missing)
    # Compensations are eventual (and chaos delays and crashes them too): a real leak outlasts the wait.
    report = invariants.check_until_held(local_stack.client("dynamodb"), local_stack.resources,
                                         local_stack.observer_, {ORDERS: order_ids}, timeout_s=30)
    assert report.violations == []
    assert sum(local_stack.runtime.options.chaos.injected.values()) > 0
