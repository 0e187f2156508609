"""How long a dead letter has left (review bb4b D6), on moto in-process with the whole topology provisioned.

SQS deletes a message its retention period after it was first enqueued, and a message its queue's redrive policy
moves to the dead-letter queue keeps that time: an event that waited 13 days in a paused agent's queue has one
day left in the DLQ, not 14. `agentbus dead-letters` (and --json) name each letter's SentTimestamp, its age and
when SQS deletes it (SentTimestamp + the dead-letter queue's MessageRetentionPeriod).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from agentbus import cli, discovery, operations
from agentbus.discovery import Deployment
from agentbus.operations import DeadLetter

DAY_S = 86_400


def sent_time(sqs, queue_url: str) -> datetime:
    """The SentTimestamp of the queue's one message, left visible."""
    [message] = sqs.receive_message(QueueUrl=queue_url, AttributeNames=["SentTimestamp"],
                                    VisibilityTimeout=0)["Messages"]
    return datetime.fromtimestamp(int(message["Attributes"]["SentTimestamp"]) / 1000, UTC)


def test_each_letter_names_when_it_was_sent_its_age_and_when_sqs_deletes_it(aws, capsys, monkeypatch):
    session, resources = aws
    sqs = session.client("sqs")
    dlq = resources.consumers["fraud"].dlq_url
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"detail-type": "Order Placed", "detail": {}}))
    sent = sent_time(sqs, dlq)
    retention = int(sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["MessageRetentionPeriod"])
                    ["Attributes"]["MessageRetentionPeriod"])
    assert retention == 14 * DAY_S

    deployment = Deployment(session, None, resources)
    [letter] = operations.dead_letters(deployment, "fraud", now=sent + timedelta(days=13, seconds=1))
    assert letter.sent_at == sent.isoformat(timespec="seconds").replace("+00:00", "Z")
    assert letter.age_s == 13 * DAY_S + 1
    assert letter.retention_s == retention
    assert letter.expires_at == (sent + timedelta(seconds=retention)).isoformat(timespec="seconds").replace(
        "+00:00", "Z")
    assert cli.dead_letter_lifetime(letter) == (f"sent {letter.sent_at} (13 d ago); SQS deletes it at "
                                                f"{letter.expires_at} (in 23 h 59 min)")

    monkeypatch.setattr(discovery, "find_deployment", lambda *_: deployment)
    assert cli.main(["dead-letters", "--agent", "fraud"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[1].startswith("  reason: ")
    [sent] = [line for line in lines if line.startswith("  sent ")]  # after the reason, however many lines it wraps
    assert lines.index(sent) > 1
    assert re.fullmatch(rf"  sent {re.escape(letter.sent_at)} \(\d+ s ago\); SQS deletes it at "
                        rf"{re.escape(letter.expires_at)} \(in (14 d|13 d 23 h)\)", sent), sent

    assert cli.main(["dead-letters", "--agent", "fraud", "--json"]) == 0
    out, _ = capsys.readouterr()
    [listed] = json.loads(out)
    assert (listed["sent_at"], listed["retention_s"], listed["expires_at"]) == (letter.sent_at, retention,
                                                                              letter.expires_at)
    assert 0 <= listed["age_s"] < 60


def test_a_retention_that_cannot_be_read_leaves_the_expiry_unknown_not_the_listing(aws, monkeypatch):
    session, resources = aws
    sqs = session.client("sqs")
    dlq = resources.consumers["fraud"].dlq_url
    sqs.send_message(QueueUrl=dlq, MessageBody="{}")
    sent = sent_time(sqs, dlq)
    deployment = Deployment(session, None, resources)
    monkeypatch.setattr(operations, "_retention_s", lambda *_: None)  # as with no sqs:GetQueueAttributes
    [letter] = operations.dead_letters(deployment, "fraud", now=sent + timedelta(minutes=3))
    assert (letter.age_s, letter.retention_s, letter.expires_at) == (180, None, None)
    assert cli.dead_letter_lifetime(letter) == (f"sent {letter.sent_at} (3 min ago); when SQS deletes it is "
                                                "unknown (the dead-letter queue's retention cannot be read)")


def test_a_letter_without_a_sent_time_keeps_its_two_lines():
    letter = DeadLetter(agent="fraud", message_id="m-1", reason="r", event={}, receive_count=1)
    assert (letter.sent_at, letter.age_s, letter.expires_at) == (None, None, None)
