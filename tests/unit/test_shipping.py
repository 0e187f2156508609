"""Shipping quotes: zones, weights, prices, countries not served, and every SKU/country in events/."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from functions.orders.models import OrderPlaced
from functions.orders.shipping.catalog import DEFAULT_WEIGHT_KG, MAX_WEIGHT_KG, WEIGHT_KG, ZONES, zone_for
from functions.orders.shipping.logic import QUOTED, UNAVAILABLE, parcel_weight, quote

EVENTS = Path(__file__).resolve().parents[2] / "events"


def order(items: list[tuple[str, int]], country: str = "DE") -> OrderPlaced:
    return OrderPlaced.model_validate({
        "order_id": "ord-1", "customer_id": "cus-1", "currency": "EUR",
        "items": [{"sku": sku, "quantity": q, "unit_price": 1} for sku, q in items],
        "shipping_address": {"country": country, "postal_code": "1"},
    })


def sample_orders() -> list[dict]:
    details = []
    for path in sorted(EVENTS.glob("*.json")):
        entries = json.loads(path.read_text())
        if isinstance(entries, list):
            details += [json.loads(e["Detail"]) for e in entries if e.get("DetailType") == "Order Placed"]
    return details


def test_sample_order_is_quoted_by_zone_and_weight():
    detail = json.loads(json.loads((EVENTS / "order-placed.json").read_text())[0]["Detail"])
    decision = quote(OrderPlaced.model_validate(detail))
    assert decision.detail_type == QUOTED
    # 1 laptop (2.10 kg) + 2 mice (0.15 kg): 2.40 kg, domestic: 4.90 + 0.50 x 2.40 = 6.10
    assert decision.data == {
        "country": "DE", "weight_kg": "2.40", "estimated_weight_skus": [], "zone": "domestic",
        "carrier": "agentbus-parcel", "price": "6.10", "currency": "EUR", "delivery_days": 2,
    }


SHIPPED_SAMPLE_ORDERS = {"ord-1001", "ord-1002", "ord-2001", "ord-2002", "ord-2003", "ord-2004", "ord-2005"}


def test_every_sku_and_country_in_events_is_handled():
    # The shipped samples (not ord-1003, the invalid one); an order sample a user adds for an agent of their own
    # (an embargoed country, README "Add an agent") is theirs to judge.
    details = [d for d in sample_orders() if d["order_id"] in SHIPPED_SAMPLE_ORDERS]
    assert {d["order_id"] for d in details} == SHIPPED_SAMPLE_ORDERS
    for detail in details:
        subject = OrderPlaced.model_validate(detail)
        assert all(line.sku in WEIGHT_KG for line in subject.items), detail["order_id"]
        assert quote(subject).detail_type == QUOTED, detail["order_id"]
    seeded = json.loads((EVENTS / "seed-stock.json").read_text())["stock"]
    assert set(seeded) <= set(WEIGHT_KG)


@pytest.mark.parametrize(("country", "zone", "price"), [
    ("DE", "domestic", "5.40"),        # 4.90 + 0.50 x 1
    ("FR", "eu", "11.10"),             # 9.90 + 1.20 x 1
    ("GB", "europe", "16.90"),         # 14.90 + 2.00 x 1
    ("US", "north-america", "29.40"),  # 24.90 + 4.50 x 1
    ("JP", "asia-pacific", "40.90"),   # 34.90 + 6.00 x 1
])
def test_price_by_zone(country, zone, price):
    decision = quote(order([("SKU-UNLISTED", 1)], country))  # default weight: 1 kg
    assert (decision.data["zone"], decision.data["price"]) == (zone, price)


def test_zones_do_not_overlap():
    countries = [c for zone in ZONES for c in zone.countries]
    assert len(countries) == len(set(countries))


def test_unknown_sku_gets_the_default_weight_and_is_named():
    weight, estimated = parcel_weight(order([("SKU-MOUSE", 2), ("SKU-NEW", 3)]))
    assert weight == Decimal("0.30") + DEFAULT_WEIGHT_KG * 3
    assert estimated == ["SKU-NEW"]
    assert quote(order([("SKU-NEW", 1)])).data["estimated_weight_skus"] == ["SKU-NEW"]


@pytest.mark.parametrize("country", ["KP", "BR", "ZA"])
def test_country_not_served_is_unavailable_naming_it(country):
    decision = quote(order([("SKU-MOUSE", 1)], country))
    assert decision.detail_type == UNAVAILABLE
    assert decision.reason == f"no carrier serves destination country {country}"
    assert zone_for(country) is None


def test_weight_limit_boundary():
    at_limit = int(MAX_WEIGHT_KG / WEIGHT_KG["SKU-SERVER-RACK"])  # 20 racks = 960 kg
    assert quote(order([("SKU-SERVER-RACK", at_limit), ("SKU-UNLISTED", 40)])).detail_type == QUOTED  # 1000 kg
    over = quote(order([("SKU-SERVER-RACK", at_limit), ("SKU-UNLISTED", 40), ("SKU-MOUSE", 1)]))
    assert over.detail_type == UNAVAILABLE
    assert "1000.15 kg" in over.reason and "parcel limit" in over.reason


def test_price_rounds_half_up_to_the_cent():
    # 3 mice = 0.45 kg domestic: 4.90 + 0.50 x 0.45 = 5.125 -> 5.13 (half-even would give 5.12)
    assert quote(order([("SKU-MOUSE", 3)], "DE")).data["price"] == "5.13"
    # 3 mice to FR: 9.90 + 1.20 x 0.45 = 10.44 exactly
    assert quote(order([("SKU-MOUSE", 3)], "FR")).data["price"] == "10.44"
