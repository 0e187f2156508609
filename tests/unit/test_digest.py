"""A trigger's version (functions/common/digest.py): what changes it and what does not."""

from __future__ import annotations

import json

from functions.common.digest import DIGEST_LENGTH, integral_floats_as_ints, trigger_digest


def test_a_number_written_with_or_without_a_zero_fraction_is_one_version():
    # A producer's retry from another serializer (JSON.stringify(25.0) is "25") was another version: dead-lettered
    # as conflicting, and when both raced, inventory refused the kept one and a valid order was REJECTED.
    assert trigger_digest(json.loads('{"items": [{"unit_price": 25.0, "quantity": 1}]}')) == \
        trigger_digest(json.loads('{"items": [{"quantity": 1.0, "unit_price": 25}]}'))
    assert trigger_digest({"n": 1e2}) == trigger_digest({"n": 100})
    assert trigger_digest({"n": -0.0}) == trigger_digest({"n": 0})


def test_any_change_of_value_is_another_version():
    assert trigger_digest({"n": 25.5}) != trigger_digest({"n": 25})
    assert trigger_digest({"n": 25}) != trigger_digest({"n": "25"})
    assert trigger_digest({"n": True}) != trigger_digest({"n": 1})
    assert trigger_digest({"a": 1}) != trigger_digest({"a": 1, "b": None})
    assert len(trigger_digest({})) == DIGEST_LENGTH


def test_key_order_and_whitespace_change_nothing():
    assert trigger_digest(json.loads('{"a": 1, "b": [1, 2]}')) == trigger_digest(json.loads('{"b":[1,2],"a":1}'))


def test_the_detail_is_not_changed_and_any_depth_is_read():
    detail = {"a": [1.0, {"b": 2.0, "c": [3.5, "x", None, True, float("inf")]}]}
    assert integral_floats_as_ints(detail) == {"a": [1, {"b": 2, "c": [3.5, "x", None, True, float("inf")]}]}
    assert isinstance(detail["a"][0], float), "a copy: the caller's detail keeps its floats"
    deep = json.loads('{"a": ' + "[" * 500 + "1.0" + "]" * 500 + "}")  # deeper than a trigger may be (24 levels)
    assert trigger_digest(deep) == trigger_digest(json.loads('{"a": ' + "[" * 500 + "1" + "]" * 500 + "}"))
