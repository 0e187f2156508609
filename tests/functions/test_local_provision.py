"""What the local runtime provisions for each consumer's queue, as the stack does (tests/infrastructure)."""

from __future__ import annotations

import json

from functions.manifest import MANIFEST


def test_each_queue_hides_a_record_being_handled_as_long_as_on_aws_and_redrives_after_the_manifests_receives(aws):
    """6 x the function's timeout, as the stack sets it: a record still being handled on a slow machine is not
    handed to a second poller after 30 s (the local poller makes a failed record visible again itself)."""
    session, resources = aws
    sqs = session.client("sqs")
    for consumer in MANIFEST.consumers:
        queue = resources.consumers[consumer.name]
        attributes = sqs.get_queue_attributes(QueueUrl=queue.queue_url, AttributeNames=["All"])["Attributes"]
        assert int(attributes["VisibilityTimeout"]) == consumer.visibility_timeout_s == 6 * consumer.timeout_s
        redrive = json.loads(attributes["RedrivePolicy"])
        assert redrive == {"deadLetterTargetArn": queue.dlq_arn, "maxReceiveCount": consumer.max_receive_count}


def test_each_queue_and_dlq_takes_the_largest_message_sqs_allows_as_on_aws(aws):
    session, resources = aws
    sqs = session.client("sqs")
    for consumer in MANIFEST.consumers:
        queue = resources.consumers[consumer.name]
        for url in (queue.queue_url, queue.dlq_url):
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["MaximumMessageSize"])["Attributes"]
            assert attributes["MaximumMessageSize"] == str(1024 * 1024), url
