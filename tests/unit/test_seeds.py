"""`agentbus seed`'s reading of seed files: whatever a file holds, one clear error naming the file, no traceback."""

from __future__ import annotations

import json

import pytest

from agentbus.seeds import SeedError, seed_items
from functions.manifest import MANIFEST

INVENTORY = MANIFEST.table("inventory")


@pytest.mark.parametrize("content", [[{"stock": {"SKU-1": 1}}], "stock", 42, None, {"stock": []}, {}])
def test_a_seed_file_of_another_shape_is_one_error_naming_the_file_and_the_shape(tmp_path, content):
    # A top-level list once reached the stock seeder as is: AttributeError, a traceback and exit code 1.
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(content))
    with pytest.raises(SeedError, match=r"seed\.json: a stock seed file looks like"):
        seed_items(INVENTORY, seed)


def test_a_seeder_that_fails_on_an_unexpected_file_is_one_error_naming_it(tmp_path, monkeypatch):
    import dataclasses

    def fragile(data):
        return [{"pk": {"S": data["rows"][0]}}]  # a user's seeder expecting its own format

    monkeypatch.setitem(globals(), "fragile", fragile)
    table = dataclasses.replace(INVENTORY, seeder=f"{__name__}:fragile")
    seed = tmp_path / "other.json"
    seed.write_text(json.dumps({"stock": {"SKU-1": 1}}))
    with pytest.raises(SeedError, match=r"other\.json: .*:fragile cannot read it \(KeyError: 'rows'\)"):
        seed_items(table, seed)


def test_the_shipped_stock_seed_reads_as_items():
    items = seed_items(INVENTORY)
    assert items and all(item["pk"]["S"].startswith("sku#") for item in items)


@pytest.mark.parametrize("sku", ["", " SKU-1", "SKU-1 ", "S" * 257])
def test_a_stock_seed_refuses_a_sku_no_order_can_name(tmp_path, sku):
    # An order's sku is stripped and 1 to 256 characters: an empty or padded one was seeded, and never ordered.
    seed = tmp_path / "stock.json"
    seed.write_text(json.dumps({"stock": {"SKU-OK": 1, sku: 5}}))
    with pytest.raises(SeedError, match=r"stock\.json: .*is not one an order can name"):
        seed_items(INVENTORY, seed)
