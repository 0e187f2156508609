"""Poison messages are kept, with their reason, in the consumer's own dead-letter queue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REASON_ATTRIBUTE = "agentbus.reason"
CONSUMER_ATTRIBUTE = "agentbus.consumer"
SOURCE_QUEUE_ATTRIBUTE = "agentbus.source_queue"


class PoisonMessage(Exception):
    """The message can never be processed (malformed or invalid): retrying it would not help."""


@dataclass
class DeadLetterSink:
    client: Any
    queue_url: str
    consumer: str

    def keep(self, body: str, reason: str, source_queue_arn: str | None = None) -> None:
        attributes: dict[str, Any] = {
            REASON_ATTRIBUTE: {"DataType": "String", "StringValue": reason[:1024] or "unknown"},
            CONSUMER_ATTRIBUTE: {"DataType": "String", "StringValue": self.consumer},
        }
        if source_queue_arn:
            attributes[SOURCE_QUEUE_ATTRIBUTE] = {"DataType": "String", "StringValue": source_queue_arn}
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=body, MessageAttributes=attributes)
