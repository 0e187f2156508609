"""A schedule in the deadlines' group under a deadline's name that is not that deadline (black-box pass 9D, F7).

Someone created ``order-fulfillment-ord-squat1`` in the group with the ``aws scheduler`` CLI (any target, any time):
the coordinator's create met ConflictException, took it for a duplicate trigger's deadline, and the order never timed
out; its finish then deleted the other's schedule. The deadline now replaces it; its own schedule is left alone.
"""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from functions.coordinator.deadlines import DeadlineScheduler

AT = datetime(2099, 12, 1, 12, 0, 0, tzinfo=UTC)
DETAIL = {"workflow": "order-fulfillment", "workflow_id": "ord-squat1"}
NAME = "order-fulfillment-ord-squat1"
BUS = "arn:aws:events:us-east-1:123456789012:event-bus/agentbus"


@pytest.fixture
def scheduler():
    with mock_aws():
        client = boto3.client("scheduler", region_name="us-east-1")
        client.create_schedule_group(Name="agentbus")
        yield client


def test_a_squatting_schedule_is_replaced_by_the_deadline(scheduler):
    scheduler.create_schedule(
        Name=NAME, GroupName="agentbus", ScheduleExpression="at(2099-01-01T00:00:00)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": "arn:aws:sqs:us-east-1:123456789012:user-reminders", "RoleArn": "arn:role", "Input": "{}"})
    deadlines = DeadlineScheduler(scheduler, "agentbus", BUS, "arn:aws:iam::123456789012:role/scheduler")
    assert deadlines.create(NAME, AT, DETAIL) is True
    replaced = scheduler.get_schedule(Name=NAME, GroupName="agentbus")
    assert replaced["Target"]["Arn"] == BUS
    assert replaced["Target"]["EventBridgeParameters"]["Source"] == "agentbus.deadline"
    assert replaced["ScheduleExpression"] == "at(2099-12-01T12:00:00)"


def test_the_deadlines_own_schedule_is_a_duplicate_and_left_alone(scheduler):
    deadlines = DeadlineScheduler(scheduler, "agentbus", BUS, "arn:aws:iam::123456789012:role/scheduler")
    assert deadlines.create(NAME, AT, DETAIL) is True
    before = scheduler.get_schedule(Name=NAME, GroupName="agentbus")["LastModificationDate"]
    assert deadlines.create(NAME, datetime(2099, 12, 2, tzinfo=UTC), DETAIL) is False  # a duplicate trigger's
    assert scheduler.get_schedule(Name=NAME, GroupName="agentbus")["LastModificationDate"] == before
