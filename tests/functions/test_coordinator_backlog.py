"""The coordinator behind its deadlines (paused, or a backlog), on moto: what decides the outcome, and what
``agentbus status`` and ``trace`` show of it (black-box pass 10A, F2).

The deadline is applied when the coordinator reads a message after it: the trigger, a result that comes before
the trigger, or the deadline's own event. Which messages are counted by then decides between COMPLETED and
TIMED_OUT; either is one outcome, agreeing with the record. A result read before its trigger, past the deadline,
times the request out "the trigger never arrived", and the trigger read afterwards changes nothing: the record
then holds a result of the trigger's version that no outcome reports, and ``status`` must still show it, with
why it did not count, and say when the trigger came.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from rich.console import Console

from agentbus import cli
from agentbus.local.lambda_events import eventbridge_envelope
from agentbus.operations import render_trace
from functions.common.digest import trigger_digest
from functions.common.ids import result_idempotency_key
from functions.common.models import BusEvent
from functions.common.spec import DEADLINE_DETAIL_TYPE, DEADLINE_SOURCE
from functions.coordinator.logic import Coordinator as LogicCoordinator
from functions.coordinator.record import NO_TRIGGER_REASON
from functions.coordinator.store import WorkflowStore
from functions.coordinator.times import parse_iso
from tests.conftest import load_detail, load_entries, workflow_store
from tests.functions.coordinator_harness import Coordinator, NoSchedules
from tests.pinned import MANIFEST  # the shipped workflows with the agents these tests name

ORDERS = MANIFEST.workflow("order-fulfillment")
SAMPLES = {"fraud": "order-verified.json", "inventory": "items-reserved.json", "shipping": "shipping-quoted.json"}


@pytest.fixture
def c(aws):
    return Coordinator(*aws)


def stamped(event: dict, moment) -> dict:
    """``event`` as EventBridge stamps it when sent at ``moment``."""
    return {**event, "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}


def placed(c) -> dict:
    """An order sent at the coordinator's clock's now (not delivered)."""
    [entry] = load_entries("order-placed.json")
    return stamped(eventbridge_envelope(entry["DetailType"], entry["Source"], load_detail("order-placed.json")),
                   c.clock.now)


def answered(order: dict, agent: str) -> dict:
    """``agent``'s success for ``order``, sent when the order was (the agents answer within milliseconds)."""
    [entry] = load_entries(SAMPLES[agent])
    detail = json.loads(entry["Detail"])
    order_id = order["detail"]["order_id"]
    detail |= {"workflow_id": order_id, "trigger_digest": trigger_digest(order["detail"])}
    detail["idempotency_key"] = result_idempotency_key(order_id, agent, detail["trigger_digest"])
    return {**eventbridge_envelope(entry["DetailType"], entry["Source"], detail), "time": order["time"]}


def deadline(order: dict) -> dict:
    return eventbridge_envelope(DEADLINE_DETAIL_TYPE, DEADLINE_SOURCE,
                                {"workflow": ORDERS.name, "workflow_id": order["detail"]["order_id"]})


def printed_status(view: dict, monkeypatch) -> str:
    console = Console(record=True, width=400)
    monkeypatch.setattr(cli, "console", console)
    cli._print_status(view)
    return console.export_text()


# --- the display: a result that came before a trigger that came after the finish ------------------------

def test_a_result_read_before_its_trigger_past_the_deadline_is_shown_once_the_trigger_comes(c, monkeypatch):
    """Order ``p/3`` of run C: its shipping result reached the coordinator before its trigger, both after the
    deadline. The result timed the record out ("the trigger never arrived"); the trigger came minutes later. The
    shipping result was then shown nowhere (not in results, late or before-trigger results; the table said
    ``missing``) and trace said "trigger received, workflow opened" after TIMED_OUT."""
    order = placed(c)
    order_id = order["detail"]["order_id"]
    c.clock.advance(seconds=ORDERS.deadline_s + 50)  # the coordinator was paused past the deadline
    c.deliver(answered(order, "shipping"))
    [timed_out] = c.outcomes()
    assert (timed_out["detail"]["status"], timed_out["detail"]["reason"]) == ("TIMED_OUT", NO_TRIGGER_REASON)
    before = c.view(ORDERS, order_id)
    assert [r["agent"] for r in before["before_trigger_results"]] == ["shipping"]
    assert not before["trigger_after_finish"]
    assert any(note.startswith("received before the trigger, not counted (the workflow finished before its "
                               "trigger came): shipping (Shipping Quoted)") for note in cli.status_notes(before))

    c.clock.advance(minutes=4)
    c.deliver(order)  # the trigger, read last
    assert c.outcomes() == []  # one outcome: the trigger changes nothing
    view = c.view(ORDERS, order_id)
    assert view["outcome"] == timed_out["detail"]
    assert (view["status"], view["reason"], view["results"]) == ("TIMED_OUT", NO_TRIGGER_REASON, {})
    assert view["trigger_after_finish"] is True
    assert view["before_trigger_results"] == [] and view["other_version_results"] == []
    [shipping] = view["late_results"]  # every result the record holds is shown, with why it did not count
    assert (shipping["agent"], shipping["kind"], shipping["detail_type"]) == (
        "shipping", "before-trigger", "Shipping Quoted")
    assert shipping["late_reason"] == (
        f"reached the coordinator before its trigger, and the workflow had finished (TIMED_OUT, "
        f"{view['finished_at']}) before the trigger came in ({view['trigger_received_at']}): decided nothing, "
        "not part of the outcome")

    notes = cli.status_notes(view)
    assert (f"the trigger arrived later, at {view['trigger_received_at']}, after the workflow had finished "
            f"(TIMED_OUT, {view['finished_at']}): its outcome was decided and published without it and does not "
            "change (one outcome per request)") in notes
    assert not any("never arrived: this record was opened" in note for note in notes)
    shown = printed_status(view, monkeypatch)
    assert "not counted: shipping Shipping Quoted" in shown and "late, not counted: shipping" not in shown
    assert "Shipping Quoted (not counted: came before the trigger)" in shown
    assert "│ shipping  │ missing" not in shown.replace("┃", "│")

    trace = render_trace(view)
    assert "workflow opened" not in trace
    lines = trace.splitlines()
    finish = next(i for i, line in enumerate(lines) if "TIMED_OUT — " in line)
    arrival = next(i for i, line in enumerate(lines) if "trigger received after the finish" in line)
    assert finish < arrival  # in time order: the trigger came after the finish, and trace says so
    assert any("shipping" in line and "not counted (reached the coordinator before its trigger" in line
               for line in lines)


def test_results_held_before_a_trigger_that_came_after_the_deadline_event_are_shown_with_why(c):
    """The same when the deadline's own event times the record out: every result it held is shown."""
    order = placed(c)
    order_id = order["detail"]["order_id"]
    c.deliver(answered(order, "fraud"), answered(order, "inventory"))  # in time, no trigger yet
    c.clock.advance(seconds=ORDERS.deadline_s + 1)
    c.deliver(deadline(order))
    c.deliver(order)
    view = c.view(ORDERS, order_id)
    assert (view["status"], view["reason"], view["trigger_after_finish"]) == ("TIMED_OUT", NO_TRIGGER_REASON, True)
    assert [(r["agent"], r.get("kind")) for r in view["late_results"]] == [
        ("fraud", "before-trigger"), ("inventory", "before-trigger")]
    assert sorted(view["missing"]) == ["fraud", "inventory", "shipping"]  # as the outcome recorded it


def test_a_workflow_that_finished_with_its_trigger_is_not_said_to_have_had_it_after_the_finish(c):
    order = placed(c)
    c.deliver(order, *(answered(order, agent) for agent in SAMPLES))
    view = c.view(ORDERS, order["detail"]["order_id"])
    assert (view["status"], view["trigger_after_finish"], view["late_results"]) == ("COMPLETED", False, [])
    assert "trigger received, workflow opened" in render_trace(view)
    assert not any("arrived later" in note for note in cli.status_notes(view))


# --- which outcome, when the coordinator reads everything after the deadline ---------------------------
# The coordinator was paused before the order was placed, so no deadline schedule exists: on resuming, it reads
# the trigger and the results (sent in time) after the deadline.

def test_behind_past_the_deadline_the_trigger_read_before_the_results_times_out_and_they_are_late(c):
    order = placed(c)
    c.clock.advance(seconds=ORDERS.deadline_s + 30)
    c.deliver(order)
    [published] = c.outcomes()
    assert published["detail"]["status"] == "TIMED_OUT"
    assert published["detail"]["reason"].startswith("deadline reached: it had passed when the request arrived")
    c.deliver(*(answered(order, agent) for agent in SAMPLES))
    view = c.view(ORDERS, order["detail"]["order_id"])
    assert {late["late_reason"] for late in view["late_results"]} == {
        "reached the coordinator after the deadline: the workflow had timed out"}
    assert len(view["late_results"]) == 3 and c.outcomes() == []


def test_behind_past_the_deadline_results_counted_before_the_triggers_decision_complete(aws):
    """Read in one batch, the trigger and the results are handled at once (``record_concurrency``): the trigger
    finds the deadline passed, but decides on the record as it reads it back after writing the trigger in, and
    its finish loses to any result counted before it is stored. Here the results are counted (by another
    invocation) between the trigger's write and its read: the order completes, as the reviewer's 6 orders did."""
    session, resources = aws
    published: list = []
    store = workflow_store(session.client("dynamodb"), resources, MANIFEST)
    order = placed(Coordinator(*aws))
    sent = parse_iso(order["time"])
    assert sent is not None
    late = sent + timedelta(seconds=ORDERS.deadline_s + 30)

    def coordinator(on: WorkflowStore) -> LogicCoordinator:
        return LogicCoordinator(store=on, deadlines=NoSchedules(), publish=published.append, manifest=MANIFEST,
                                clock=lambda: late)

    other = coordinator(store)

    class ResultsCountedMeanwhile(WorkflowStore):
        counted = False

        def load(self, *args, **kwargs):
            if not self.counted:  # the batch's results, handled beside the trigger, are counted now
                self.counted = True
                for agent in SAMPLES:
                    other.handle(BusEvent.model_validate(answered(order, agent)))
            return super().load(*args, **kwargs)

    racing = ResultsCountedMeanwhile(store.client, store.workflow_table, MANIFEST, store.tables)
    coordinator(racing).handle(BusEvent.model_validate(order))
    [outcome] = [event.detail for event in published if event.detail.get("status")]
    assert outcome["status"] == "COMPLETED" and sorted(outcome["results"]) == sorted(SAMPLES)


def test_behind_past_the_deadline_a_result_read_before_the_trigger_times_out_the_trigger_never_arrived(c):
    order = placed(c)
    c.clock.advance(seconds=ORDERS.deadline_s + 30)
    c.deliver(answered(order, "fraud"))  # a standard queue keeps no order: a result may come first
    c.deliver(order, answered(order, "inventory"), answered(order, "shipping"))
    [published] = c.outcomes()
    assert (published["detail"]["status"], published["detail"]["reason"]) == ("TIMED_OUT", NO_TRIGGER_REASON)
    view = c.view(ORDERS, order["detail"]["order_id"])
    assert view["trigger_after_finish"] is True
    assert sorted((r["agent"], r.get("kind")) for r in view["late_results"]) == [
        ("fraud", "before-trigger"), ("inventory", None), ("shipping", None)]


# The coordinator read the trigger in time (its deadline schedule exists) and was paused: the deadline's event
# waits in its queue with the results.

@pytest.mark.parametrize("batches, status", [
    ("deadline and results in one batch", "COMPLETED"),  # a batch's deadline events are handled last
    ("results, then the deadline", "COMPLETED"),
    ("the deadline, then the results", "TIMED_OUT"),
])
def test_paused_after_the_trigger_the_results_count_if_read_before_the_deadlines_event(c, batches, status):
    order = placed(c)
    c.deliver(order)
    c.clock.advance(seconds=ORDERS.deadline_s + 30)
    # Sent after the deadline, even: an agent's result is judged by when the coordinator reads it.
    results = [stamped(answered(order, agent), c.clock.now) for agent in SAMPLES]
    if batches == "deadline and results in one batch":
        c.deliver(deadline(order), *results)
    elif batches == "results, then the deadline":
        c.deliver(*results)
        c.deliver(deadline(order))
    else:
        c.deliver(deadline(order))
        c.deliver(*results)
    [published] = c.outcomes()
    assert published["detail"]["status"] == status
    view = c.view(ORDERS, order["detail"]["order_id"])
    if status == "TIMED_OUT":
        assert published["detail"]["reason"] == "deadline reached"
        assert len(view["late_results"]) == 3
    else:
        assert sorted(view["results"]) == sorted(SAMPLES) and view["late_results"] == []
