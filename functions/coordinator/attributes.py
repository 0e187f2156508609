"""DynamoDB attribute values (the low-level client's ``{"S": ...}`` form) from and to plain JSON-like values: exact
decimals for floats, numbers read back as ``int`` or ``float``, and a lenient form for a main table's row, which must
be written even when a value is one DynamoDB cannot hold."""

from __future__ import annotations

import json
import math
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow, Rounded, Underflow
from typing import Any, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from functions.common.publisher import to_json
from functions.common.storable import has_utf8_form, utf8_form

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
# DynamoDB numbers: 38 significant digits, magnitude 1E-130 to 9.99...E+125 (boto3's own context).
_DYNAMODB_NUMBERS = Context(Emin=-128, Emax=126, prec=38, traps=[Inexact, Rounded, Overflow, Underflow,
                                                                 InvalidOperation])


def to_attribute(value: Any) -> dict[str, Any]:
    """A plain JSON-like value as a DynamoDB attribute value (floats become exact decimals)."""
    plain = json.loads(to_json(value), parse_float=Decimal)
    return cast(dict[str, Any], _serializer.serialize(plain))  # boto3-stubs: a private TypedDict


def to_lenient_attribute(value: Any) -> dict[str, Any]:
    """Like ``to_attribute``, but a number DynamoDB cannot hold (NaN, infinite, out of range, over 38 digits)
    is kept as its text, and a string with no UTF-8 form (a lone surrogate) as its escaped text (``\\ud800``):
    a main table's row of an invalid request must still be written."""
    return cast(dict[str, Any], _serializer.serialize(_lenient(json.loads(to_json_lenient(value), parse_float=Decimal,
                                                                          parse_constant=str))))


def to_json_lenient(value: Any) -> str:
    def default(item: Any) -> Any:
        if isinstance(item, Decimal):
            return str(item) if not item.is_finite() else (int(item) if item == item.to_integral_value()
                                                            else float(item))
        if isinstance(item, set | frozenset):
            return sorted(item)
        raise TypeError(f"{type(item).__name__} is not JSON serializable")

    text = json.dumps(value, default=default, separators=(",", ":"), ensure_ascii=False, allow_nan=True)
    if not has_utf8_form(text):  # a lone surrogate (refused as a value): kept as its JSON escape, which reads back
        return json.dumps(value, default=default, separators=(",", ":"), ensure_ascii=True, allow_nan=True)
    return text


def _lenient(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | Decimal):
        try:
            _DYNAMODB_NUMBERS.create_decimal(value)
        except (Inexact, Rounded, Overflow, Underflow, InvalidOperation):
            return str(value)
        return value
    if isinstance(value, float):
        return str(value) if not math.isfinite(value) else value
    if isinstance(value, str):
        return utf8_form(value)
    if isinstance(value, dict):
        return {utf8_form(str(key)): _lenient(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_lenient(item) for item in value]
    return value


def from_attribute(value: dict[str, Any]) -> Any:
    return _plain(_deserializer.deserialize(cast(Any, value)))  # boto3-stubs: a private TypedDict


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, set):
        return sorted(_plain(item) for item in value)
    return value
