"""Messages that will never be processed are kept, with their reason, in the consumer's own dead-letter queue.

Two kinds arrive there with a reason (message attribute ``agentbus.reason``, read by ``agentbus dead-letters``):
poison messages (malformed or invalid: retrying cannot help) at once, and messages whose processing failed
on every allowed receive, with the last error's type and message. Only a crash or a timeout on the last
receive leaves a message to SQS's redrive policy, which moves it without a reason.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from typing import Any

REASON_ATTRIBUTE = "agentbus.reason"
CONSUMER_ATTRIBUTE = "agentbus.consumer"
SOURCE_QUEUE_ATTRIBUTE = "agentbus.source_queue"
MAX_REASON_CHARS = 1024

# SQS accepts in attribute values only #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF; an error
# message quoting bad data (a NUL, an unpaired surrogate) would make the send itself fail.
_NOT_SQS_TEXT = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_WHITESPACE_RUN = re.compile(r"\s+")


# Python's JSON reader, and any code that walks data recursively, raises RecursionError on data nested deeper than
# the interpreter's recursion limit (about 1,000 levels, less the stack in use): the same data fails on every try,
# so a message that raises it is poison (kept at once), not a transient failure.
TOO_DEEP = "nested deeper than Python reads (RecursionError)"


class UnreadableJson(Exception):
    """Valid JSON that Python cannot read, the same on every try (``read_json``); its message says why."""


def read_json(text: str | bytes, **options: Any) -> Any:
    """``json.loads``, with what Python cannot read of valid JSON raised as ``UnreadableJson`` instead of a
    ``RecursionError`` or a bare ``ValueError``: nesting past the recursion limit (``TOO_DEEP``), and an integer
    literal longer than Python converts (``sys.get_int_max_str_digits()``, 4,300 digits; JSON sets no limit).
    Malformed JSON is still ``json.JSONDecodeError``, and bytes that are not UTF-8 ``UnicodeDecodeError``;
    ``options`` are ``json.loads``'s (``parse_float=Decimal``)."""
    try:
        return json.loads(text, **options)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise
    except RecursionError:
        raise UnreadableJson(TOO_DEEP) from None
    except ValueError as error:  # int() of a literal past the limit: the only other error the reader raises
        if "digits" not in str(error):
            raise
        raise UnreadableJson(f"an integer of more than {sys.get_int_max_str_digits():,} digits (the longest "
                             "Python reads)") from None


def unreadable_reason(error: RecursionError | UnreadableJson) -> str:
    """Why data could not be read or walked: an ``UnreadableJson``'s reason, or ``TOO_DEEP``."""
    return TOO_DEEP if isinstance(error, RecursionError) else str(error)


class PoisonMessage(Exception):
    """The message can never be processed (malformed or invalid): retrying it would not help."""


def bounded(reason: str, limit: int = MAX_REASON_CHARS) -> str:
    """One line of at most ``limit`` characters that SQS accepts as an attribute value."""
    text = _NOT_SQS_TEXT.sub(lambda m: f"\\u{ord(m.group()):04x}", reason)
    text = _WHITESPACE_RUN.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text or "unknown"


def failure_reason(error: BaseException, receives: int | None = None, max_receives: int | None = None,
                   limit: int = MAX_REASON_CHARS) -> str:
    """``ValueError: boom (failed on receive 3 of at most 3)``: the last error, bounded, on one line."""
    message = str(error)
    what = f"{type(error).__name__}: {message}" if message else type(error).__name__
    suffix = f" (failed on receive {receives} of at most {max_receives})" if receives and max_receives else ""
    return bounded(bounded(what, limit - len(suffix)) + suffix, limit)


@dataclass
class DeadLetterSink:
    client: Any
    queue_url: str
    consumer: str

    def keep(self, body: str, reason: str, source_queue_arn: str | None = None) -> None:
        attributes: dict[str, Any] = {
            REASON_ATTRIBUTE: {"DataType": "String", "StringValue": bounded(reason)},
            CONSUMER_ATTRIBUTE: {"DataType": "String", "StringValue": self.consumer},
        }
        if source_queue_arn:
            attributes[SOURCE_QUEUE_ATTRIBUTE] = {"DataType": "String", "StringValue": source_queue_arn}
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=body, MessageAttributes=attributes)


# The mark ``keep_visibility`` puts on an error (read by ``consumer.QueueConsumer``).
KEEP_VISIBILITY_MARK = "agentbus_keep_visibility"


def keep_visibility(error: BaseException) -> BaseException:
    """Mark ``error`` so that its record comes back only after the queue's whole visibility timeout, never after
    a back-off: for a failure that leaves something held which a sooner retry would take for another invocation's
    work in progress (the coordinator's publication lease when it could not be released: the lease is shorter
    than the visibility timeout, but longer than a back-off)."""
    setattr(error, KEEP_VISIBILITY_MARK, True)
    return error
