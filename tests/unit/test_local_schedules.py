"""The local runtime's scheduler pass with a schedule it cannot fire in the group (hostile findings D7).

Someone created ``rate(5 minutes)`` in the agentbus schedule group with the ``aws scheduler`` CLI: the pass raised on
it, logged a traceback about 4 times a second, started over, and every deadline listed after it never fired.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from agentbus.local.runtime import LocalRuntime, RuntimeOptions
from agentbus.resources import Resources


class _NotFound(Exception):
    pass


class FakeScheduler:
    """The calls the pass makes, on schedules kept in a dict (in listing order)."""

    class exceptions:  # noqa: N801 - as boto3 clients name it
        ResourceNotFoundException = _NotFound
        ClientError = RuntimeError

    def __init__(self, schedules: dict[str, str]):
        past = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
        self.schedules = {name: {
            "Name": name, "GroupName": "g", "ActionAfterCompletion": "DELETE",
            "ScheduleExpression": expression.replace("PAST", past),
            "Target": {"Arn": "arn:aws:events:us-east-1:123456789012:event-bus/agentbus",
                       "Input": f'{{"name": "{name}"}}',
                       "EventBridgeParameters": {"DetailType": "Workflow Deadline Reached",
                                                 "Source": "agentbus.deadline"}},
        } for name, expression in schedules.items()}
        self.lock = threading.Lock()

    def get_paginator(self, _name: str):
        scheduler = self

        class Paginator:
            def paginate(self, GroupName: str):  # noqa: N803 - boto3's parameter name
                with scheduler.lock:
                    return [{"Schedules": [{"Name": name} for name in scheduler.schedules]}]

        return Paginator()

    def get_schedule(self, GroupName: str, Name: str) -> dict:  # noqa: N803
        with self.lock:
            if Name not in self.schedules:
                raise _NotFound(Name)
            return dict(self.schedules[Name])

    def delete_schedule(self, GroupName: str, Name: str) -> dict:  # noqa: N803
        with self.lock:
            if self.schedules.pop(Name, None) is None:
                raise _NotFound(Name)
        return {}


class RecordingEvents:
    def __init__(self):
        self.put: list[str] = []

    def put_events(self, Entries: list[dict]) -> dict:  # noqa: N803
        self.put += [entry["Detail"] for entry in Entries]
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "e"} for _ in Entries]}


def _runtime(scheduler: FakeScheduler) -> LocalRuntime:
    runtime = LocalRuntime.__new__(LocalRuntime)  # only what the scheduler pass uses
    runtime.resources = Resources(bus_name="agentbus", bus_arn="arn:bus", archive_name="a", schedule_group="g",
                                  scheduler_role_arn="arn:role", tables={}, consumers={}, local=True)
    runtime.options = RuntimeOptions(schedule_poll_s=0.01)
    runtime.scheduler, runtime.events = scheduler, RecordingEvents()
    runtime.fired_deadlines, runtime._stop = 0, threading.Event()
    return runtime


def test_a_schedule_that_is_not_at_is_skipped_once_and_the_deadlines_listed_after_it_fire(caplog):
    scheduler = FakeScheduler({"deadline-a": "at(PAST)", "bad-0": "rate(5 minutes)", "deadline-b": "at(PAST)",
                               "bad-1": "cron(0 12 * * ? *)", "bad-2": "at(not a time)", "deadline-c": "at(PAST)"})
    runtime = _runtime(scheduler)
    thread = threading.Thread(target=runtime._fire_schedules, daemon=True)
    with caplog.at_level(logging.WARNING, logger="agentbus.runtime"):
        thread.start()
        give_up = time.monotonic() + 5
        while runtime.fired_deadlines < 3 and time.monotonic() < give_up:
            time.sleep(0.01)
        time.sleep(0.2)  # some more passes over the schedules it cannot fire
        runtime._stop.set()
        thread.join(timeout=5)

    assert sorted(runtime.events.put) == ['{"name": "deadline-a"}', '{"name": "deadline-b"}',
                                          '{"name": "deadline-c"}']
    assert sorted(scheduler.schedules) == ["bad-0", "bad-1", "bad-2"]  # the fired ones were deleted, as on AWS
    records = [r for r in caplog.records if r.name == "agentbus.runtime"]
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in records)  # no traceback, no error
    messages = sorted(r.getMessage() for r in records)
    assert messages == [
        "schedule 'bad-0' of group g is not fired locally: only one-time at(...) schedules are fired locally, got "
        "'rate(5 minutes)'",
        "schedule 'bad-1' of group g is not fired locally: only one-time at(...) schedules are fired locally, got "
        "'cron(0 12 * * ? *)'",
        "schedule 'bad-2' of group g is not fired locally: not a time in at(yyyy-mm-ddThh:mm:ss): 'at(not a time)'",
    ]  # once each, however many passes
