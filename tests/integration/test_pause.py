"""Pause holds from the moment `agentbus agent pause` returns, locally as on AWS."""

from __future__ import annotations

import time
import uuid

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
