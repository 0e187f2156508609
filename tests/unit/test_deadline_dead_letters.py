"""The deadline schedule's target names its dead-letter queue when the stack gives one (issue 12)."""

from __future__ import annotations

from datetime import UTC, datetime

from functions.coordinator.deadlines import DeadlineScheduler

AT = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
DETAIL = {"workflow": "order-fulfillment", "workflow_id": "o-1"}


def test_schedule_target_has_the_dead_letter_queue_when_given() -> None:
    scheduler = DeadlineScheduler(None, "agentbus", "arn:bus", "arn:role", dead_letter_arn="arn:aws:sqs:r:1:dlq")
    target = scheduler.request("o-1", AT, DETAIL)["Target"]
    assert target["DeadLetterConfig"] == {"Arn": "arn:aws:sqs:r:1:dlq"}
    assert target["Arn"] == "arn:bus" and target["RoleArn"] == "arn:role"


def test_no_dead_letter_config_without_a_queue() -> None:
    target = DeadlineScheduler(None, "g", "arn:bus", "arn:role").request("o-1", AT, DETAIL)["Target"]
    assert "DeadLetterConfig" not in target
