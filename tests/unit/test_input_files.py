"""Files the CLI reads (`put FILE`, `seed --file`): text that is not UTF-8 is one clear error, not a traceback
(and exit 1, which `put` gives to a failed entry); a UTF-8 BOM, as Windows tools write, is taken."""

from __future__ import annotations

import json

import pytest

from agentbus.operations import OperationError, read_entries
from agentbus.seeds import SeedError, seed_items
from functions.manifest import MANIFEST

ENTRY = {"Source": "agentbus.orders", "DetailType": "Order Placed",
         "Detail": json.dumps({"order_id": "o-é"}, ensure_ascii=False)}


def test_put_names_a_file_that_is_not_utf8_and_takes_one_with_a_bom(tmp_path):
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes(json.dumps([ENTRY], ensure_ascii=False).encode("latin-1"))
    with pytest.raises(OperationError, match=r"latin1.json is not UTF-8 text \(byte 0xe9 at offset \d+\)"):
        read_entries(str(latin1))
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps([ENTRY], ensure_ascii=False).encode())
    assert read_entries(f"file://{bom}") == [ENTRY]


def test_seed_names_a_file_that_is_not_utf8(tmp_path):
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe{}")
    [table] = [t for t in MANIFEST.all_tables if t.seed_file and t.logical_name == "inventory"]
    with pytest.raises(SeedError, match=r"not UTF-8 text \(byte 0xff at offset 0\)"):
        seed_items(table, binary)


def test_seed_names_an_integer_longer_than_python_reads(tmp_path):
    # Review 21E: "it is Exceeds the limit (4300 digits) for integer string conversion..."
    long = tmp_path / "long.json"
    long.write_text('[{"sku": "x", "on_hand": ' + "9" * 5000 + "}]")
    [table] = [t for t in MANIFEST.all_tables if t.seed_file and t.logical_name == "inventory"]
    with pytest.raises(SeedError, match=r"long.json: not readable JSON: an integer of more than 4,300 digits"):
        seed_items(table, long)
