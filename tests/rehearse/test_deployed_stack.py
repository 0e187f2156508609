"""What `cdk deploy` deploys, working: the real template on MiniStack, its functions run by MiniStack's
Lambda from the SQS event source mappings, its rules, its Scheduler schedules and its archive."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.rehearse.conftest import DEADLINE_SECONDS, Rehearsal, new_order_id


def test_an_order_completes_through_the_deployed_functions(rehearsal: Rehearsal, tmp_path: Path) -> None:
    order_id = rehearsal.put_order_file("events/order-placed.json", new_order_id("ok"), tmp_path)
    view = rehearsal.wait_outcome(order_id)
    assert view["status"] == "COMPLETED", view
    assert set(view["results"]) == {"fraud", "inventory", "shipping"}
    trace = rehearsal.agentbus("trace", order_id)
    assert trace.returncode == 0 and order_id in trace.stdout, trace.stderr


def test_an_order_over_the_limit_is_rejected_by_fraud(rehearsal: Rehearsal, tmp_path: Path) -> None:
    order_id = rehearsal.put_order_file("events/order-placed-over-limit.json", new_order_id("big"), tmp_path)
    view = rehearsal.wait_outcome(order_id)
    assert view["status"] == "REJECTED", view
    assert view["results"]["fraud"]["detail_type"] == "Order Flagged"


def test_an_invalid_order_is_dead_lettered_listed_and_redriven(rehearsal: Rehearsal, tmp_path: Path) -> None:
    order_id = rehearsal.put_order_file("events/order-placed-invalid.json", new_order_id("bad"), tmp_path)
    deadline = time.monotonic() + 120
    letters: list[dict] = []
    while time.monotonic() < deadline and len(letters) < 3:
        listed = rehearsal.agentbus("dead-letters", "--json")
        assert listed.returncode == 0, listed.stderr
        letters = [x for x in json.loads(listed.stdout) if x["event"]["detail"].get("order_id") == order_id]
        time.sleep(2)  # each look is a CLI process of its own
    assert sorted(x["agent"] for x in letters) == ["fraud", "inventory", "shipping"], letters
    assert all("quantity" in x["reason"] for x in letters)
    human = rehearsal.agentbus("dead-letters", "--agent", "fraud")
    assert "reason:" in human.stdout

    redriven = rehearsal.agentbus("redrive", "fraud")
    assert redriven.returncode == 0, redriven.stderr
    assert "redrove" in redriven.stdout
    view = rehearsal.wait_outcome(order_id)
    assert view["status"] == "REJECTED", view


def _mapping_state(rehearsal: Rehearsal, agent: str) -> str:
    function = rehearsal.resources["consumers"][agent]["function_name"]
    (mapping,) = rehearsal.aws("lambda", "list-event-source-mappings", "--function-name", function)[
        "EventSourceMappings"]
    return str(mapping["State"])


def test_pause_disables_the_real_event_source_mapping_and_resume_completes_the_order(
        rehearsal: Rehearsal, tmp_path: Path) -> None:
    paused = rehearsal.agentbus("agent", "pause", "shipping")
    assert paused.returncode == 0, paused.stderr
    assert _mapping_state(rehearsal, "shipping") in ("Disabled", "Disabling")
    try:
        order_id = rehearsal.put_order_file("events/order-placed.json", new_order_id("pause"), tmp_path)
        view = rehearsal.wait_status(order_id, lambda v: {"fraud", "inventory"} <= set(v["results"]))
        assert view["status"] == "RUNNING" and view["missing"] == ["shipping"], view
    finally:
        resumed = rehearsal.agentbus("agent", "resume", "shipping")
    assert resumed.returncode == 0, resumed.stderr
    assert _mapping_state(rehearsal, "shipping") in ("Enabled", "Enabling")
    view = rehearsal.wait_outcome(order_id)
    assert view["status"] == "COMPLETED", view


def test_the_deployed_scheduler_fires_the_deadline_of_an_unanswered_order(
        rehearsal: Rehearsal, tmp_path: Path) -> None:
    assert rehearsal.agentbus("agent", "pause", "shipping").returncode == 0
    try:
        order_id = rehearsal.put_order_file("events/order-placed.json", new_order_id("late"), tmp_path)
        schedules = rehearsal.aws("scheduler", "list-schedules", "--group-name",
                                  rehearsal.resources["schedule_group"])["Schedules"]
        assert schedules, "the coordinator created no deadline schedule"
        view = rehearsal.wait_outcome(order_id, timeout_s=DEADLINE_SECONDS + 90)
    finally:
        assert rehearsal.agentbus("agent", "resume", "shipping").returncode == 0
    assert view["status"] == "TIMED_OUT", view
    assert view["missing"] == ["shipping"]


def test_replay_from_the_archive_puts_archived_events_back_on_the_bus(
        rehearsal: Rehearsal, tmp_path: Path) -> None:
    start = datetime.now(UTC) - timedelta(seconds=5)
    order_id = rehearsal.put_order_file("events/order-placed.json", new_order_id("replay"), tmp_path)
    assert rehearsal.wait_outcome(order_id)["status"] == "COMPLETED"

    # A listener of our own, created after the order: only a replay can bring the order's events to it.
    bus = rehearsal.resources["bus_name"]
    queue_url = rehearsal.aws("sqs", "create-queue", "--queue-name", f"listener-{order_id}")["QueueUrl"]
    queue_arn = rehearsal.aws("sqs", "get-queue-attributes", "--queue-url", queue_url, "--attribute-names",
                              "QueueArn")["Attributes"]["QueueArn"]
    rule = f"listener-{order_id}"
    rehearsal.aws("events", "put-rule", "--name", rule, "--event-bus-name", bus, "--event-pattern",
                  json.dumps({"detail-type": ["Order Placed"], "detail": {"order_id": [order_id]}}))
    rehearsal.aws("events", "put-targets", "--rule", rule, "--event-bus-name", bus, "--targets",
                  json.dumps([{"Id": "listener", "Arn": queue_arn}]))
    try:
        end = datetime.now(UTC) + timedelta(seconds=1)
        replayed = rehearsal.agentbus("replay", "--from", start.isoformat(), "--to", end.isoformat())
        assert replayed.returncode == 0, replayed.stderr
        assert json.loads(replayed.stdout)["replay"]
        deadline = time.monotonic() + 60
        bodies: list[dict] = []
        while time.monotonic() < deadline and not bodies:
            received = rehearsal.aws("sqs", "receive-message", "--queue-url", queue_url, "--wait-time-seconds", "2")
            bodies = [json.loads(m["Body"]) for m in received.get("Messages", [])]
        assert [b["detail"]["order_id"] for b in bodies] == [order_id]
        # A replayed trigger is a duplicate: the workflow keeps its one outcome.
        assert rehearsal.status(order_id)["status"] == "COMPLETED"  # type: ignore[index]
    finally:
        rehearsal.aws("events", "remove-targets", "--rule", rule, "--event-bus-name", bus, "--ids", "listener")
        rehearsal.aws("events", "delete-rule", "--name", rule, "--event-bus-name", bus)
        rehearsal.aws("sqs", "delete-queue", "--queue-url", queue_url)
