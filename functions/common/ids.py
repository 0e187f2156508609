"""The rules for workflow ids and for the names derived keys are built from, enforced in one place.

**A workflow id** (the value of the trigger's id field, ``Trigger.id_field``) is 1 to 128 characters, each one of
``A-Z a-z 0-9 . _ : @ # / + = -``: ASCII letters and digits plus the punctuation real id schemes use
(UUIDs and ULIDs, ``req-2024-001``, ``tenant/42``, ``user@example.com``, base64 ``+/=``,
``urn:ord:1``, ``#``-joined keys). No whitespace, no control characters, nothing outside ASCII.

Why 128: every key built from an id must stay within its limit, with room to spare:

- idempotency keys ``<id>:<agent name>`` and ``<id>:<STATUS>`` are at most 256 characters (our contract):
  128 + 1 + 32 (longest name) = 161, and 128 + 1 + 9 (``TIMED_OUT``) = 138;
- the DynamoDB partition key ``<workflow name>#<id>`` is at most 2048 bytes: 32 + 1 + 128 = 161 bytes
  (ASCII only, so characters = bytes; a non-ASCII character would count up to 4 bytes);
- EventBridge Scheduler names (64 characters of ``[0-9A-Za-z_.-]``) are hashed when the id does not fit
  (``functions.coordinator.deadlines.schedule_name``), so they set no bound here;
- 128 is also the limit of an SQS FIFO ``MessageGroupId``/``MessageDeduplicationId``, whose allowed
  characters include all of ours: the id can become one without another rule.

Why this character set: ASCII only makes "characters" and "bytes" the same everywhere the id is counted
(DynamoDB counts bytes, our contract counts characters) and rules out look-alike ids (``req-1`` with a
Cyrillic ``о``). No whitespace or control characters: an id is copied into terminals, logs and shell
commands, and ``" req-1"`` must not be a different request from ``"req-1"`` (ids are not stripped: one with
a space is refused, not silently turned into another id). ``:`` and ``#`` are allowed although derived
keys use them as separators: the other part of each key (an agent or workflow name) never contains them,
so the key splits unambiguously at the last ``:`` or the first ``#``.

``[`` and ``]`` are refused. They are harmless to AWS, but no id scheme needs them, and a set is easy to
widen later and impossible to narrow without breaking producers. This is *not* the fix for Rich markup
in the CLI (issue 10, case 10): other fields (reasons, SKUs) carry brackets, so the CLI must still print
data escaped, never as markup.

**Names** (agents, workflows, consumers) are 1 to 32 characters: lowercase ASCII letters, digits and
single hyphens, starting with a letter (``checker``, ``my-workflow``). 32 keeps the derived AWS names
within theirs: queue names ``agentbus-<name>-dlq`` within SQS's 80, Lambda function names within 64, and
local rule names ``agentbus-<consumer>-<subscription>`` within EventBridge's 64 as long as subscription names
stay at most 22 characters (today's longest, ``compensation``, has 12).

Use ``WorkflowId`` as the field type in any trigger or result model, ``check_workflow_id(value, field)``
anywhere else (CLI arguments, the coordinator), ``idempotency_key`` and ``record_key`` to build keys.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, cast

from pydantic import AfterValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

MAX_ID_LENGTH = 128
ID_CHARACTERS = "A-Za-z0-9._:@#/+=-"
# For JSON Schema and other languages; Python code uses ``ID_REGEX.fullmatch`` (``$`` accepts a final newline).
ID_PATTERN = f"^[{ID_CHARACTERS}]{{1,{MAX_ID_LENGTH}}}$"
ID_REGEX = re.compile(f"[{ID_CHARACTERS}]{{1,{MAX_ID_LENGTH}}}")
ID_RULE = f"1 to {MAX_ID_LENGTH} characters from A-Z a-z 0-9 . _ : @ # / + = -"

MAX_NAME_LENGTH = 32
NAME_PATTERN = f"^(?=.{{1,{MAX_NAME_LENGTH}}}$)[a-z][a-z0-9]*(-[a-z0-9]+)*$"
NAME_REGEX = re.compile(f"(?=.{{1,{MAX_NAME_LENGTH}}}\\Z)[a-z][a-z0-9]*(-[a-z0-9]+)*")
NAME_RULE = (f"1 to {MAX_NAME_LENGTH} characters: lowercase letters, digits and single hyphens, "
             "starting with a letter")

MAX_IDEMPOTENCY_KEY_LENGTH = 256
MAX_PARTITION_KEY_BYTES = 2048

_ID_CHAR = re.compile(f"[{ID_CHARACTERS}]")


def json_type(value: Any) -> str:
    """The JSON name of a parsed JSON value's type (an event's detail is JSON: ``null``, not ``NoneType``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def id_problem(value: Any) -> str | None:
    """What is wrong with ``value`` as a workflow id (one sentence, no field name), or None if it is valid."""
    if not isinstance(value, str):
        return f"must be a string ({ID_RULE}), got {json_type(value)}"
    if not value:
        return f"must not be empty ({ID_RULE})"
    if len(value) > MAX_ID_LENGTH:
        return f"is {len(value)} characters long; at most {MAX_ID_LENGTH} are allowed ({ID_RULE})"
    for position, char in enumerate(value):
        if not _ID_CHAR.fullmatch(char):
            # repr() and the code point: a control character or a look-alike is shown, never printed raw.
            return (f"character {char!r} (U+{ord(char):04X}) at position {position} is not allowed "
                    f"({ID_RULE})")
    return None


def check_workflow_id(value: Any, field: str | None = None) -> str:
    """``value`` if it is a valid workflow id; else ValueError naming the field (``<id field>: ...``)."""
    problem = id_problem(value)
    if problem is not None:
        raise ValueError(f"{field or 'workflow id'}: {problem}")
    return cast(str, value)  # id_problem found nothing: a valid id is a string


def name_problem(value: Any) -> str | None:
    """What is wrong with ``value`` as an agent/workflow/consumer name, or None if it is valid."""
    if not isinstance(value, str):
        return f"must be a string ({NAME_RULE}), got {json_type(value)}"
    if NAME_REGEX.fullmatch(value):
        return None
    if not value:
        return f"must not be empty ({NAME_RULE})"
    if len(value) > MAX_NAME_LENGTH:
        return f"is {len(value)} characters long; at most {MAX_NAME_LENGTH} are allowed ({NAME_RULE})"
    return f"{value[:MAX_NAME_LENGTH]!r} is not a valid name ({NAME_RULE})"


def check_name(value: Any, what: str = "name") -> str:
    """``value`` if it is a valid agent/workflow name; else ValueError (``agent name: ...``)."""
    problem = name_problem(value)
    if problem is not None:
        raise ValueError(f"{what}: {problem}")
    return cast(str, value)  # name_problem found nothing: a valid name is a string


def idempotency_key(workflow_id: str, part: str) -> str:
    """``<id>:<part>`` (part: an agent name or a status), checked to stay within 256 characters."""
    check_workflow_id(workflow_id)
    key = f"{workflow_id}:{part}"
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise ValueError(f"idempotency key for {part[:40]!r} is {len(key)} characters; "
                         f"at most {MAX_IDEMPOTENCY_KEY_LENGTH} are allowed")
    return key


def result_idempotency_key(workflow_id: str, agent: str, version: str | None) -> str:
    """``<id>:<agent>:<version>`` of an agent's result (``<id>:<agent>`` without a trigger version): one key per
    result an agent gives for one version of a request, another for another version (a changed request, e.g. a
    user audited again after a change, is a new result, not a copy to drop)."""
    return idempotency_key(workflow_id, f"{agent}:{version}" if version else agent)


def record_key(workflow: str, workflow_id: str) -> str:
    """``<workflow name>#<id>``, the workflow record's partition key (at most 2048 bytes)."""
    check_name(workflow, "workflow name")
    check_workflow_id(workflow_id)
    return f"{workflow}#{workflow_id}"  # at most 32 + 1 + 128 ASCII bytes, far below 2048


def _validate(value: str) -> str:
    problem = id_problem(value)
    if problem is not None:
        # The message goes in the context, not the template: a "{" in it must not be read as a placeholder.
        raise PydanticCustomError("workflow_id", "{problem}", {"problem": problem})
    return value


def _validate_name(value: str) -> str:
    problem = name_problem(value)
    if problem is not None:
        raise PydanticCustomError("name", "{problem}", {"problem": problem})
    return value


WorkflowId = Annotated[
    str,
    AfterValidator(_validate),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": ID_PATTERN,
                    "description": f"workflow id: {ID_RULE}"}),
]
"""A workflow id as a pydantic field type: ``ticket_id: WorkflowId``; the error names the rule."""

Name = Annotated[
    str,
    AfterValidator(_validate_name),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH, "pattern": NAME_PATTERN}),
]
"""An agent/workflow name as a pydantic field type."""
