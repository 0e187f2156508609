"""Workflow-id and name rules: every key derived from a valid id stays within its AWS or contract limit."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, ValidationError

from functions.common.digest import DIGEST_LENGTH
from functions.common.ids import (
    ID_PATTERN,
    MAX_ID_LENGTH,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PARTITION_KEY_BYTES,
    Name,
    WorkflowId,
    check_name,
    check_workflow_id,
    idempotency_key,
    record_key,
    result_idempotency_key,
)
from functions.common.models import describe_validation_error
from functions.manifest import MANIFEST, WorkflowStatus


class Trigger(BaseModel):
    order_id: WorkflowId


def test_boundary_lengths():
    assert MAX_ID_LENGTH == 128
    assert check_workflow_id("a") == "a"
    assert check_workflow_id("x" * MAX_ID_LENGTH) == "x" * MAX_ID_LENGTH
    with pytest.raises(ValueError, match=r"^order_id: is 129 characters long; at most 128 are allowed"):
        check_workflow_id("x" * (MAX_ID_LENGTH + 1), "order_id")
    with pytest.raises(ValueError, match=r"^order_id: must not be empty \(1 to 128 characters"):
        check_workflow_id("", "order_id")


def test_every_allowed_punctuation_is_accepted():
    for value in ("ord-1", "01HZX3T9K2M4N5P6Q7R8S9T0VW", "123e4567-e89b-12d3-a456-426614174000",
                  "tenant/42", "user@example.com", "urn:ord:1", "a#b", "YWJj+/==", "v1.2_3"):
        assert check_workflow_id(value) == value


@pytest.mark.parametrize(("value", "shown"), [
    ("ord 1", "' ' (U+0020) at position 3"),
    (" ord-1", "' ' (U+0020) at position 0"),  # not stripped: a different id is refused, not merged
    ("ord-1\n", "'\\n' (U+000A) at position 5"),  # a final newline is not let through by a `$` anchor
    ("ord\x00", "'\\x00' (U+0000) at position 3"),
    ("ord\t1", "'\\t' (U+0009) at position 3"),
    ("ordé", "'é' (U+00E9) at position 3"),
    ("оrd-1", "'о' (U+043E) at position 0"),  # Cyrillic o: a look-alike of "ord-1"
    ("ord-１", "'１' (U+FF11) at position 4"),  # full-width digit
    ("ord-[/bold]", "'[' (U+005B) at position 4"),
    ("a{b}", "'{' (U+007B) at position 1"),
    ("a,b", "',' (U+002C) at position 1"),
    ("a\"b", "'\"' (U+0022) at position 1"),
])
def test_bad_characters_are_named_with_their_position(value, shown):
    with pytest.raises(ValueError) as raised:
        check_workflow_id(value, "order_id")
    message = str(raised.value)
    assert message.startswith(f"order_id: character {shown} is not allowed")
    assert "1 to 128 characters from A-Z a-z 0-9" in message
    assert "\n" not in message and "\x00" not in message


def test_not_a_string():
    with pytest.raises(ValueError, match=r"^workflow id: must be a string .*got a number$"):
        check_workflow_id(123)
    with pytest.raises(ValueError, match=r"^workflow id: must be a string .*got null$"):
        check_workflow_id(None)


def test_a_huge_id_is_not_echoed_in_the_message():
    with pytest.raises(ValueError) as raised:
        check_workflow_id("x" * 100_000, "order_id")
    assert len(str(raised.value)) < 200


def test_pydantic_field_names_the_field_and_the_rule():
    assert Trigger(order_id="ord-1").order_id == "ord-1"
    with pytest.raises(ValidationError) as raised:
        Trigger(order_id="x" * 300)
    assert describe_validation_error(raised.value) == (
        "order_id: is 300 characters long; at most 128 are allowed (1 to 128 characters from "
        "A-Z a-z 0-9 . _ : @ # / + = -)")
    with pytest.raises(ValidationError) as raised:
        Trigger.model_validate_json(json.dumps({"order_id": "ord-{x}"}))  # braces are not a template
    assert describe_validation_error(raised.value).startswith("order_id: character '{' (U+007B) at position 4")
    with pytest.raises(ValidationError) as raised:
        Trigger(order_id=42)
    assert describe_validation_error(raised.value).startswith("order_id: Input should be a valid string")


def test_json_schema_states_the_rule():
    schema = Trigger.model_json_schema()["properties"]["order_id"]
    assert schema["maxLength"] == MAX_ID_LENGTH and schema["pattern"] == ID_PATTERN


def test_derived_keys_of_the_longest_id_and_name_fit_their_limits():
    longest_id = "x" * MAX_ID_LENGTH
    longest_name = "a" * MAX_NAME_LENGTH
    assert len(idempotency_key(longest_id, longest_name)) <= MAX_IDEMPOTENCY_KEY_LENGTH
    for status in WorkflowStatus:
        assert len(idempotency_key(longest_id, status.value)) <= MAX_IDEMPOTENCY_KEY_LENGTH
    assert len(record_key(longest_name, longest_id).encode("utf-8")) <= MAX_PARTITION_KEY_BYTES
    assert record_key("order-fulfillment", "ord-1") == "order-fulfillment#ord-1"
    assert idempotency_key("ord-1", "inventory") == "ord-1:inventory"
    assert len(result_idempotency_key(longest_id, longest_name, "f" * DIGEST_LENGTH)) <= MAX_IDEMPOTENCY_KEY_LENGTH


def test_a_result_key_names_the_version_of_the_trigger_it_answers():
    # A changed request (another version) is another result, not a copy a subscriber should drop.
    first, second = result_idempotency_key("usr-1", "security-audit", "a" * 32), \
        result_idempotency_key("usr-1", "security-audit", "b" * 32)
    assert first == f"usr-1:security-audit:{'a' * 32}" and first != second
    assert result_idempotency_key("usr-1", "security-audit", None) == "usr-1:security-audit"


def test_key_builders_refuse_what_breaks_the_rules():
    with pytest.raises(ValueError, match="^workflow id: is 247 characters long"):
        idempotency_key("x" * 247, "inventory")
    with pytest.raises(ValueError, match="at most 256 are allowed"):
        idempotency_key("x" * 128, "y" * 200)
    with pytest.raises(ValueError, match="^workflow name: "):
        record_key("Orders", "ord-1")


def test_names():
    for name in ("fraud", "order-fulfillment", "a", "a1-b2", "a" * MAX_NAME_LENGTH):
        assert check_name(name, "agent name") == name
    for name, problem in [("", "must not be empty"), ("a" * 33, "is 33 characters long"),
                          ("Fraud", "'Fraud' is not a valid name"), ("1x", "is not a valid name"),
                          ("a--b", "is not a valid name"), ("a-", "is not a valid name"),
                          ("a_b", "is not a valid name"), ("a:b", "is not a valid name"),
                          ("a#b", "is not a valid name"), ("fraud\n", "is not a valid name")]:
        with pytest.raises(ValueError) as raised:
            check_name(name, "agent name")
        assert str(raised.value).startswith("agent name: ") and problem in str(raised.value)


def test_every_manifest_name_follows_the_rules():
    for workflow in MANIFEST.workflows:
        check_name(workflow.name, "workflow name")
    for consumer in MANIFEST.consumers:
        check_name(consumer.name, "consumer name")


def test_name_as_a_pydantic_field():
    class Result(BaseModel):
        agent: Name

    assert Result(agent="inventory").agent == "inventory"
    with pytest.raises(ValidationError) as raised:
        Result(agent="Inventory")
    assert describe_validation_error(raised.value).startswith("agent: 'Inventory' is not a valid name")
