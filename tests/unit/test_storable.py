"""Storable values: what DynamoDB cannot hold or EventBridge refuses is found, with the field's path."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from boto3.dynamodb.types import TypeSerializer

from functions.common.storable import (
    MAX_DETAIL_BYTES,
    MAX_DETAIL_DEPTH,
    UnstorableValue,
    check_storable,
    number_problem,
    problems,
    serialized_size,
)

FORTY_DIGITS = 1234567890123456789012345678901234567890


def order(**extra) -> dict:
    """A valid order as json.loads produces it, with extra fields."""
    detail = json.loads((Path(__file__).parents[2] / "events" / "order-placed.json").read_text())[0]["Detail"]
    return {**json.loads(detail), **extra}


def dynamo_accepts(value) -> bool:
    """boto3's serializer on the value as the store turns it (JSON text, floats parsed as Decimal)."""
    try:
        TypeSerializer().serialize(json.loads(json.dumps(value), parse_float=Decimal))
    except Exception:  # noqa: BLE001 - decimal signals, TypeError: refused either way
        return False
    return True


def test_a_valid_order_has_no_problem():
    assert problems(order()) == []
    check_storable(order())


# boto3: whether boto3's serializer already refuses it (the store fails) or only DynamoDB's documented
# range does (boto3's context allows up to 9.99E+126 and subnormals down to 1E-165; the service refuses).
@pytest.mark.parametrize(("value", "words", "boto3_refuses"), [
    (1e308, "1e+308 is too large", True),
    (FORTY_DIGITS, "has 40 digits", True),
    (10**38, "has 39 digits", True),  # boto3 refuses it although the digits end in zeros
    (-(10**38), "has 39 digits", True),
    (5e-324, "is too small", True),
    (1e126, "1e+126 is too large", False),
    (1e-131, "1e-131 is too small", False),
])
def test_numbers_dynamodb_cannot_hold_are_named_by_path(value, words, boto3_refuses):
    found = problems(order(loyalty_points=value))
    assert len(found) == 1 and found[0].startswith("detail.loyalty_points: ")
    assert words in found[0]
    assert dynamo_accepts(value) is not boto3_refuses


@pytest.mark.parametrize("value", [1e125, -1e125, 9.99999999999999e125, 1e-130, 0.1, -0.0, 0, 10**38 - 1,
                                   -(10**38 - 1), 123.456, True, False, None])
def test_numbers_at_the_edges_of_the_range_are_accepted_and_boto3_agrees(value):
    assert problems({"n": value}) == []
    assert dynamo_accepts(value)


def test_json_literal_1e400_reads_as_infinity_and_is_refused():
    detail = json.loads('{"loyalty_points": 1e400, "other": -1e400, "bad": NaN}')
    found = problems(detail)
    assert [f.split(":")[0] for f in found] == ["detail.loyalty_points", "detail.other", "detail.bad"]
    assert "inf is not a finite number" in found[0] and "1e400" in found[0]
    assert "-inf is not a finite number" in found[1]
    assert "nan is not a finite number" in found[2]


def test_nan_and_infinity_as_strings_are_fine():
    assert problems({"unit_price": "NaN", "b": "Infinity", "c": "1e400"}) == []


def test_decimals_are_judged_as_dynamodb_stores_them():
    assert number_problem(Decimal("9.9999999999999999999999999999999999999E+125")) is None
    assert number_problem(Decimal("1E-130")) is None
    assert number_problem(Decimal("1E+39")) is None  # one significant digit, in range
    assert "too large" in number_problem(Decimal("1E+126"))
    assert "too small" in number_problem(Decimal("1E-131"))
    assert "has 39 significant digits" in number_problem(Decimal("1." + "0" * 38))
    assert "not a finite number" in number_problem(Decimal("NaN"))
    assert "not a finite number" in number_problem(Decimal("-Infinity"))
    assert "not a finite number" in number_problem(Decimal("sNaN"))
    assert "cannot be serialized for DynamoDB exactly (Clamped)" in number_problem(Decimal("0E-200"))
    assert problems({"price": Decimal("19.99"), "qty": Decimal(3)}) == []


def test_every_offending_field_of_a_nested_value_is_named():
    detail = order(items=[{"sku": "A", "quantity": 1, "unit_price": 1e300},
                          {"sku": "B", "quantity": FORTY_DIGITS, "unit_price": 2}],
                   meta={"deep": {"x": float("inf")}})
    found = problems(detail)
    assert [f.split(":")[0] for f in found] == [
        "detail.items.0.unit_price", "detail.items.1.quantity", "detail.meta.deep.x"]
    with pytest.raises(UnstorableValue) as raised:
        check_storable(detail)
    assert isinstance(raised.value, ValueError)
    assert raised.value.problems == found
    assert str(raised.value) == "; ".join(found)


def nested(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def test_nesting_up_to_the_limit_is_accepted_and_one_deeper_refused():
    assert problems(nested(MAX_DETAIL_DEPTH)) == []
    found = problems(nested(MAX_DETAIL_DEPTH + 1))
    assert found == [f"detail{'.a' * MAX_DETAIL_DEPTH}: nested deeper than 24 levels (DynamoDB holds 32, "
                     "and the workflow record keeps 8 for itself)"]
    assert problems([[[]]], max_depth=2)[0].startswith("detail.0.0: nested deeper than 2 levels")


def test_very_deep_and_cyclic_values_do_not_blow_the_stack():
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    assert len(problems(deep)) == 1
    cyclic: dict = {}
    cyclic["self"] = cyclic
    assert "nested deeper than" in problems(cyclic)[0]


def test_size_is_counted_in_utf8_bytes_with_non_ascii_kept():
    sku = "Ünïcødé-ŠKU-€-" * 10
    detail = {"items": [{"sku": sku}]}
    assert serialized_size(detail) == len(json.dumps(detail, ensure_ascii=False, separators=(",", ":")).encode())
    assert serialized_size(detail) < len(json.dumps(detail, separators=(",", ":")))  # escapes would be 6 bytes


def test_a_detail_over_the_size_bound_is_refused_with_its_size():
    assert MAX_DETAIL_BYTES == 256 * 1024
    big = {"pad": "€" * (MAX_DETAIL_BYTES // 3)}  # 3 bytes each: just over the bound in UTF-8
    found = problems(big)
    assert found == [f"detail: {serialized_size(big):,} bytes as JSON (UTF-8); at most 262,144 are accepted"]
    fits = {"pad": "€" * (MAX_DETAIL_BYTES // 3 - 5)}
    assert serialized_size(fits) <= MAX_DETAIL_BYTES and problems(fits) == []
    assert problems(big, max_bytes=None) == []


def test_non_string_keys_are_refused():
    found = problems({"items": {1: "a", (1, 2): "b", "ok": 1}})
    assert found == ["detail.items: key 1 is a int; keys must be strings",
                     "detail.items: key (1, 2) is a tuple; keys must be strings"]


def test_unpaired_surrogates_from_json_loads_are_refused():
    detail = json.loads('{"sku": "A\\ud800", "\\udfff": 1}')
    found = problems(detail)
    assert found == [
        "detail: a key contains an unpaired surrogate (U+DFFF) at position 0: not valid Unicode, it has no UTF-8 form",
        "detail.sku: string contains an unpaired surrogate (U+D800) at position 1: not valid Unicode, "
        "it has no UTF-8 form",
    ]  # a bad key is reported while its object is read, before the values inside it
    assert problems({"sku": "😀 emoji is fine"}) == []


def test_values_that_are_not_json_are_refused():
    found = problems({"when": {1, 2}, "raw": b"x", "pair": (1, 2)})
    assert found == ["detail.when: a set is not a JSON value", "detail.raw: a bytes is not a JSON value"]


def test_many_problems_are_capped_to_a_readable_message():
    found = problems([float("nan")] * 1000)
    assert len(found) == 21 and found[-1] == "and 980 more problem(s)"


def test_path_of_the_root_is_configurable():
    assert problems({"x": 1e308}, path="order")[0].startswith("order.x: ")
