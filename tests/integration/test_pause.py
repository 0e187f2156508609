"""Pause holds from the moment `agentbus agent pause` returns, locally as on AWS."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.conftest import order_entry


def _events_from(observer, order_id: str, agent: str) -> list:
    return [e for e in observer.by_workflow[order_id] if e.source == f"agentbus.agent.{agent}"]


def test_an_order_put_right_after_pause_waits_in_the_queue(local_stack):
    """A long poll already waiting when the pause lands returns the new order's message: it must go back
    to the queue unprocessed, not run the paused agent."""
    for delay_s in (0.01, 0.1, 0.3, 0.6):
        _pause_then_order(local_stack, delay_s)


def _pause_then_order(local_stack, delay_s: float) -> None:
    observer, control = local_stack.observer_, local_stack.control
    time.sleep(1.5)  # every poller is in its long poll, as in steady state
    control.set_paused("shipping", True)
    time.sleep(delay_s)
    order_id = f"ord-pause-{uuid.uuid4().hex[:8]}"
    local_stack.client("events").put_events(Entries=[order_entry(order_id)])

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (_events_from(observer, order_id, "fraud")
                                                and _events_from(observer, order_id, "inventory")):
        time.sleep(0.1)
    assert _events_from(observer, order_id, "fraud") and _events_from(observer, order_id, "inventory")
    time.sleep(2.0)  # two more long polls for the paused poller
    assert _events_from(observer, order_id, "shipping") == [], f"processed {delay_s} s after the pause"
    assert control.queue_depth("shipping")["waiting"] + control.queue_depth("shipping")["in_flight"] == 1

    control.set_paused("shipping", False)
    assert observer.wait_for_outcomes([order_id], 30) == set()
    assert observer.outcomes(order_id)[0].detail["status"] == "COMPLETED"


def test_status_of_a_request_queued_behind_a_paused_coordinator_says_so(local_stack):
    """Black-box pass 10C, F2: it said only "unknown workflow id ... a standalone workflow keeps no record", for a
    request safe in the paused coordinator's queue."""
    from agentbus import operations
    from agentbus.discovery import Deployment

    deployment = Deployment(local_stack.session, local_stack.url, local_stack.resources)
    order_id = f"ord-queued-{uuid.uuid4().hex[:8]}"
    local_stack.control.set_paused("coordinator", True)
    try:
        local_stack.client("events").put_events(Entries=[order_entry(order_id)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not local_stack.control.queue_depth("coordinator")["waiting"]:
            time.sleep(0.1)
        with pytest.raises(operations.UnknownWorkflowId) as raised:
            operations.workflow_status(deployment, order_id)
        assert f"unknown workflow id {order_id!r}" in str(raised.value)
        assert "but the coordinator is paused with" in str(raised.value)
        assert "`agentbus agent resume coordinator`" in str(raised.value)
    finally:
        local_stack.control.set_paused("coordinator", False)
    assert local_stack.observer_.wait_for_outcomes([order_id], 60) == set()
    assert operations.workflow_status(deployment, order_id)["status"] == "COMPLETED"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _backlog(local_stack.control.queue_depth("coordinator")):
        time.sleep(0.2)
    with pytest.raises(operations.UnknownWorkflowId) as raised:
        operations.workflow_status(deployment, "ord-never-put")
    assert "coordinator" not in str(raised.value), "nothing queued: no hint"


def _backlog(depth: dict[str, int]) -> int:
    return depth["waiting"] + depth["in_flight"]
