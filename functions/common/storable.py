"""Detects, with the path of each offending field, what a DynamoDB item cannot hold or EventBridge refuses.

A trigger's detail is stored in the workflow record, projected into the main table and carried by events.
Anything those cannot survive must be refused at validation, with a reason naming the field
(``detail.loyalty_points: ...``), not discovered as a ``decimal.Overflow`` three retries later.

``problems(value, path="detail")`` works on what ``json.loads`` produces (dict, list, str, int, float,
bool, None) and on ``Decimal`` (what DynamoDB hands back, or ``json.loads(..., parse_float=Decimal)``):

- **Numbers** as DynamoDB stores them: magnitude at most 9.9999999999999999999999999999999999999E+125,
  non-zero magnitude at least 1E-130, at most 38 significant digits; no NaN or Infinity (JSON has neither:
  ``json.loads("1e400")`` gives ``inf``, and ``json.dumps`` would then write ``Infinity``, which is not
  JSON). A float is judged by its shortest repr, the text ``json.dumps`` writes and the store parses back
  (``1e308`` -> ``1E+308``: out of range); an int by all its digits, as boto3 serializes it (boto3 refuses
  an int of more than 38 digits even when they end in zeros); a Decimal as written. Each number is also
  passed through boto3's own ``DYNAMODB_CONTEXT``, so that anything its serializer would refuse is caught.
  Strings are never numbers here: ``"NaN"`` is a fine string.
- **Nesting**: DynamoDB holds at most 32 levels. The detail is stored below the record's own levels
  (``outcome.results.<agent>.detail``...), so a detail may use ``MAX_DETAIL_DEPTH`` = 24 of them (a
  container counts one level: ``{}`` is 1, ``{"a": []}`` is 2), leaving 8 for the record around it.
- **Size**: the detail serialized as compact UTF-8 JSON is at most ``MAX_DETAIL_BYTES`` = 256 KiB. The
  workflow record keeps a trigger over 1 KB in a DynamoDB item of its own (at most 400 KB, and nothing else
  in it), beside the header and an item per result (``functions/coordinator/layout.py``), so the bound is what
  that item holds with a wide margin: every event a function puts inline (at most 256 KB) fits, and so does
  another workflow's outcome used as a trigger, even one that crossed the bus as a claim check, up to
  256 KiB. (The single-item record this once lived in held the trigger, the results and the outcome together,
  and kept triggers to 64 KiB; another workflow's outcome over that was rejected as a trigger.)
- **Keys** must be strings (DynamoDB map keys and JSON object keys are strings; ``json.dumps`` would
  silently turn ``1`` into ``"1"`` and could merge two keys).
- **Strings** must be valid Unicode: ``json.loads('"\\ud800"')`` yields an unpaired surrogate, which has
  no UTF-8 form, so neither DynamoDB nor EventBridge can carry it.
- Any other type (set, bytes, datetime, objects) is not a JSON value and is reported; a tuple counts as a
  list, as ``json.dumps`` writes it.

``check_storable(value, path)`` raises ``UnstorableValue`` (a ``ValueError``) with every problem on one line.
"""

from __future__ import annotations

import decimal
import json
import math
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import DYNAMODB_CONTEXT

DYNAMODB_MAX_DEPTH = 32
MAX_DETAIL_DEPTH = 24
MAX_DETAIL_BYTES = 256 * 1024
# DynamoDB's number limits (Amazon DynamoDB Developer Guide, "Data types": Number).
MAX_SIGNIFICANT_DIGITS = 38
MAX_ADJUSTED_EXPONENT = 125  # 9.9999999999999999999999999999999999999E+125
MIN_ADJUSTED_EXPONENT = -130  # 1E-130
MAX_PROBLEMS = 20  # a detail with 10,000 NaNs gets a readable message, not a 1 MB one

NUMBER_RANGE = ("DynamoDB holds magnitudes from 1E-130 to 9.9999999999999999999999999999999999999E+125 "
                "and zero")


class UnstorableValue(ValueError):
    """The value cannot be stored in DynamoDB or carried by EventBridge; ``problems`` names each field."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


def _shown(value: Any, limit: int = 40) -> str:
    if isinstance(value, Decimal):
        text = str(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        text = _number_text(value)
    else:
        text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}…"


def _number_text(value: int | float) -> str:
    try:
        return repr(value)
    except ValueError:  # an int beyond Python's 4300-digit str() limit
        return f"an integer of about {int(int(value).bit_length() * math.log10(2)) + 1} digits"


def _digits(value: int) -> int:
    try:
        return len(str(abs(value)))
    except ValueError:
        return int(abs(value).bit_length() * math.log10(2)) + 1


def number_problem(value: int | float | Decimal) -> str | None:
    """What keeps DynamoDB (or boto3's serializer, or JSON) from holding this number, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return (f"{value!r} is not a finite number: JSON has no NaN or Infinity (a literal like 1e400 reads "
                    "as Infinity) and DynamoDB cannot store them")
        number = Decimal(repr(value))  # the text json.dumps writes and the store parses back
    elif isinstance(value, int):
        if abs(value) >= 10**MAX_SIGNIFICANT_DIGITS:
            return (f"{_shown(value)} has {_digits(value)} digits; DynamoDB numbers hold at most "
                    f"{MAX_SIGNIFICANT_DIGITS} significant digits")
        number = Decimal(value)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            return f"{value} is not a finite number: neither JSON nor DynamoDB can hold NaN or Infinity"
        number = value
    else:
        raise TypeError(f"not a number: {type(value).__name__}")
    shown = _shown(value)
    if not number.is_zero():
        digits = len(number.as_tuple().digits)
        if digits > MAX_SIGNIFICANT_DIGITS:
            return (f"{shown} has {digits} significant digits; DynamoDB numbers hold at most "
                    f"{MAX_SIGNIFICANT_DIGITS}")
        if number.adjusted() > MAX_ADJUSTED_EXPONENT:
            return f"{shown} is too large: {NUMBER_RANGE}"
        if number.adjusted() < MIN_ADJUSTED_EXPONENT:
            return f"{shown} is too small: {NUMBER_RANGE}"
    try:
        DYNAMODB_CONTEXT.create_decimal(number)  # exactly what boto3's TypeSerializer does
    except decimal.DecimalException as error:
        flagged = error.args[0] if error.args and isinstance(error.args[0], list) else [type(error)]
        signals = ", ".join(signal.__name__ for signal in flagged)
        return f"{shown} cannot be serialized for DynamoDB exactly ({signals})"
    return None


def has_utf8_form(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8: not when it holds a lone surrogate (a JSON ``"\\ud800"``)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def utf8_form(text: str) -> str:
    """``text``, each lone surrogate in it written as its escape (``\\ud800``), so that it can be stored or sent."""
    return text if has_utf8_form(text) else text.encode("utf-8", "backslashreplace").decode("utf-8")


def _string_problem(value: str) -> str | None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        return (f"contains an unpaired surrogate (U+{ord(value[error.start]):04X}) at position {error.start}: "
                "not valid Unicode, it has no UTF-8 form")
    return None


def _key_text(key: str) -> str:
    return key if len(key) <= 64 else f"{key[:64]}…"


def serialized_size(value: Any) -> int:
    """UTF-8 bytes of ``value`` as compact JSON with non-ASCII kept as is (how the publisher writes it)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"),
                      default=lambda v: float(v) if isinstance(v, Decimal) else str(v))
    return len(text.encode("utf-8", errors="replace"))


def problems(value: Any, path: str = "detail", *, max_bytes: int | None = MAX_DETAIL_BYTES,
             max_depth: int = MAX_DETAIL_DEPTH) -> list[str]:
    """Every reason ``value`` cannot be stored or published, each naming its field path; [] if none."""
    found: list[str] = []
    structural = False  # a value json.dumps cannot write (too deep, cyclic, not JSON): its size means nothing
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, dict | list | tuple):
            if depth + 1 > max_depth:
                found.append(f"{where}: nested deeper than {max_depth} levels (DynamoDB holds "
                             f"{DYNAMODB_MAX_DEPTH}, and the workflow record keeps {DYNAMODB_MAX_DEPTH - max_depth} "
                             "for itself)")
                structural = True
                continue
            if isinstance(item, dict):
                children = []
                for key, child in item.items():
                    if not isinstance(key, str):
                        found.append(f"{where}: key {_shown(key)} is a {type(key).__name__}; keys must be strings")
                        structural = True
                        continue
                    problem = _string_problem(key)
                    if problem:
                        found.append(f"{where}: a key {problem}")
                        structural = True
                        continue
                    children.append((child, f"{where}.{_key_text(key)}", depth + 1))
            else:
                children = [(child, f"{where}.{index}", depth + 1) for index, child in enumerate(item)]
            stack.extend(reversed(children))  # depth first, in document order
        elif item is None or isinstance(item, bool):
            continue
        elif isinstance(item, int | float | Decimal):
            problem = number_problem(item)
            if problem:
                found.append(f"{where}: {problem}")
        elif isinstance(item, str):
            problem = _string_problem(item)
            if problem:
                found.append(f"{where}: string {problem}")
                structural = True
        else:
            found.append(f"{where}: a {type(item).__name__} is not a JSON value")
            structural = True
    if max_bytes is not None and not structural:
        size = serialized_size(value)
        if size > max_bytes:
            found.append(f"{path}: {size:,} bytes as JSON (UTF-8); at most {max_bytes:,} are accepted")
    if len(found) > MAX_PROBLEMS:
        found = [*found[:MAX_PROBLEMS], f"and {len(found) - MAX_PROBLEMS} more problem(s)"]
    return found


def check_storable(value: Any, path: str = "detail", *, max_bytes: int | None = MAX_DETAIL_BYTES,
                   max_depth: int = MAX_DETAIL_DEPTH) -> None:
    """Raise ``UnstorableValue`` naming every offending field if ``value`` cannot be stored or published."""
    found = problems(value, path, max_bytes=max_bytes, max_depth=max_depth)
    if found:
        raise UnstorableValue(found)
