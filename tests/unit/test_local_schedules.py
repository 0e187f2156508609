"""The local runtime's scheduler pass with a schedule it cannot fire in the group (hostile findings D7).

Someone created ``rate(5 minutes)`` in the agentbus schedule group with the ``aws scheduler`` CLI: the pass raised on
it, logged a traceback about 4 times a second, started over, and every deadline listed after it never fired.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from agentbus.local.runtime import LocalRuntime, RuntimeOptions, parse_at_expression
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


class VersionedScheduler(FakeScheduler):
    """Lists each schedule with its modification date, as the Scheduler API does, and takes any field."""

    def __init__(self, schedules: dict[str, dict]):
        super().__init__({name: fields.pop("expression", "at(PAST)") for name, fields in schedules.items()})
        for name, fields in schedules.items():
            self.schedules[name].update(fields)
            self.schedules[name].setdefault("LastModificationDate", 1.0)

    def get_paginator(self, _name: str):
        scheduler = self

        class Paginator:
            def paginate(self, GroupName: str):  # noqa: N803 - boto3's parameter name
                with scheduler.lock:
                    return [{"Schedules": [{"Name": n, "LastModificationDate": s["LastModificationDate"]}
                                           for n, s in scheduler.schedules.items()]}]

        return Paginator()


class RecordingQueues:
    def __init__(self):
        self.sent: list[tuple[str, str]] = []

    def get_queue_url(self, QueueName: str) -> dict:  # noqa: N803
        return {"QueueUrl": f"http://local/123456789012/{QueueName}"}

    def send_message(self, QueueUrl: str, MessageBody: str) -> dict:  # noqa: N803
        self.sent.append((QueueUrl, MessageBody))
        return {}


def _run_passes(runtime: LocalRuntime, seconds: float = 0.3) -> None:
    thread = threading.Thread(target=runtime._fire_schedules, daemon=True)
    thread.start()
    time.sleep(seconds)
    runtime._stop.set()
    thread.join(timeout=5)


def test_a_users_schedule_fires_once_stays_and_fires_again_only_when_updated_to_a_new_time():
    """Black-box pass 9A, F1: a one-time schedule with ActionAfterCompletion NONE (the aws CLI's default) was fired
    on every 0.25 s tick from its time on, forever. EventBridge Scheduler fires it once and keeps it."""
    scheduler = VersionedScheduler({"users-own": {"ActionAfterCompletion": "NONE"}})
    runtime = _runtime(scheduler)
    runtime.options = RuntimeOptions(schedule_poll_s=0.01)
    _run_passes(runtime)
    assert runtime.events.put == ['{"name": "users-own"}']
    assert "users-own" in scheduler.schedules  # kept, as on AWS

    with scheduler.lock:  # aws scheduler update-schedule: a new time (due now) and a new modification date
        scheduler.schedules["users-own"]["Target"] = {**scheduler.schedules["users-own"]["Target"],
                                                      "Input": '{"name": "again"}'}
        scheduler.schedules["users-own"]["LastModificationDate"] = 2.0
    runtime._stop = threading.Event()
    _run_passes(runtime)
    assert runtime.events.put == ['{"name": "users-own"}', '{"name": "again"}']


def test_a_disabled_schedule_is_not_fired_until_it_is_enabled():
    scheduler = VersionedScheduler({"off": {"State": "DISABLED"}, "on": {}})
    runtime = _runtime(scheduler)
    _run_passes(runtime)
    assert runtime.events.put == ['{"name": "on"}']
    with scheduler.lock:
        scheduler.schedules["off"].update(State="ENABLED", LastModificationDate=2.0)
    runtime._stop = threading.Event()
    _run_passes(runtime)
    assert runtime.events.put == ['{"name": "on"}', '{"name": "off"}']


def test_a_schedule_fires_at_its_time_in_its_own_time_zone():
    """``at(...)`` is read in ScheduleExpressionTimezone: a New York time due in hours is not fired now (it was,
    read as UTC), one that was due an hour ago is."""
    new_york = ZoneInfo("America/New_York")
    in_two_hours = (datetime.now(new_york) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")
    an_hour_ago = (datetime.now(new_york) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    scheduler = VersionedScheduler({
        "later": {"expression": f"at({in_two_hours})", "ScheduleExpressionTimezone": "America/New_York"},
        "due": {"expression": f"at({an_hour_ago})", "ScheduleExpressionTimezone": "America/New_York"},
    })
    runtime = _runtime(scheduler)
    _run_passes(runtime)
    assert runtime.events.put == ['{"name": "due"}']
    assert parse_at_expression("at(2026-07-01T12:00:00)", "Europe/Paris") == datetime(2026, 7, 1, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match="unknown ScheduleExpressionTimezone 'Mars/Olympus'"):
        parse_at_expression("at(2026-07-01T12:00:00)", "Mars/Olympus")


def test_a_schedule_for_a_queue_sends_its_input_and_another_target_is_skipped_once(caplog):
    scheduler = VersionedScheduler({
        "to-queue": {"Target": {"Arn": "arn:aws:sqs:us-east-1:123456789012:my-jobs", "Input": "hello"}},
        "to-lambda": {"Target": {"Arn": "arn:aws:lambda:us-east-1:123456789012:function:f", "Input": "{}"}},
    })
    runtime = _runtime(scheduler)
    runtime.sqs = RecordingQueues()
    with caplog.at_level(logging.WARNING, logger="agentbus.runtime"):
        _run_passes(runtime)
    assert runtime.sqs.sent == [("http://local/123456789012/my-jobs", "hello")]
    assert runtime.events.put == []
    warnings = [r.getMessage() for r in caplog.records if r.name == "agentbus.runtime"]
    assert warnings == ["schedule 'to-lambda' of group g is not fired locally: only an event bus or an SQS queue "
                        "target is fired locally, got 'arn:aws:lambda:us-east-1:123456789012:function:f'"]


class FailingQueues(RecordingQueues):
    def get_queue_url(self, QueueName: str) -> dict:  # noqa: N803
        if QueueName == "does-not-exist":
            raise RuntimeError("AWS.SimpleQueueService.NonExistentQueue")
        return super().get_queue_url(QueueName)


def test_a_schedule_whose_target_fails_does_not_stop_the_deadlines_listed_after_it(caplog):
    """Black-box pass 9D, F4: a user's schedule to a queue that does not exist raised on every tick, the pass
    started over, and the deadline listed after it never fired (a traceback 4 times a second)."""
    scheduler = VersionedScheduler({
        "users-bad": {"Target": {"Arn": "arn:aws:sqs:us-east-1:123456789012:does-not-exist", "Input": "{}"}},
        "deadline-a": {},
    })
    runtime = _runtime(scheduler)
    runtime.sqs = FailingQueues()
    with caplog.at_level(logging.WARNING, logger="agentbus.runtime"):
        _run_passes(runtime, seconds=0.5)
    assert runtime.events.put == ['{"name": "deadline-a"}']
    records = [r for r in caplog.records if r.name == "agentbus.runtime"]
    assert [r.getMessage() for r in records] == [
        "schedule 'users-bad' of group g could not be fired (tried again, backing off): "
        "AWS.SimpleQueueService.NonExistentQueue"]
    assert all(r.exc_info is None for r in records)
