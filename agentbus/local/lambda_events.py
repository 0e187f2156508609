"""What Lambda hands a function: SQS batch events built from received messages, and a context object."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from functions.common.moments import iso_s

REGION = "us-east-1"


def eventbridge_envelope(detail_type: str, source: str, detail: dict[str, Any], *, event_id: str | None = None,
                         time_: str | None = None, resources: list[str] | None = None) -> dict[str, Any]:
    """An event as EventBridge delivers it to a target."""
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": time_ or iso_s(datetime.now(UTC)),
        "region": REGION,
        "resources": resources or [],
        "detail": detail,
    }


def sqs_record(body: str | dict[str, Any], queue_arn: str, *, message_id: str | None = None,
               receipt_handle: str | None = None, receive_count: int = 1,
               attributes: dict[str, str] | None = None) -> dict[str, Any]:
    if not isinstance(body, str):
        body = json.dumps(body)
    now_ms = str(int(time.time() * 1000))
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": receipt_handle or str(uuid.uuid4()),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": now_ms,
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": now_ms,
            **(attributes or {}),
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def sqs_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": records}


def sqs_event_from_messages(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """Turn ``sqs.receive_message`` output into the event Lambda's SQS poller would deliver."""
    return sqs_event([
        sqs_record(
            m["Body"], queue_arn, message_id=m["MessageId"], receipt_handle=m["ReceiptHandle"],
            receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
        )
        for m in messages
    ])


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 256
    timeout_s: int = 30
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = ""
    function_version: str = "$LATEST"
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:{self.function_name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self._started)) * 1000))
