"""Shipping quotes: by destination zone and total parcel weight.

price = zone base price + zone price per kg x total weight, rounded half-up to the cent. A destination
no zone serves, or a consignment over the parcel weight limit, is ``Shipping Unavailable`` with a reason
naming the country or the weight.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from functions.common.decisions import Decision
from functions.orders.models import OrderPlaced
from functions.orders.shipping.catalog import DEFAULT_WEIGHT_KG, MAX_WEIGHT_KG, TARIFF_CURRENCY, WEIGHT_KG, zone_for

QUOTED = "Shipping Quoted"
UNAVAILABLE = "Shipping Unavailable"

CENT = Decimal("0.01")


def parcel_weight(order: OrderPlaced) -> tuple[Decimal, list[str]]:
    """Total weight in kg, and the SKUs whose weight was estimated (not in the catalogue)."""
    estimated = [line.sku for line in order.items if line.sku not in WEIGHT_KG]
    weight = sum((WEIGHT_KG.get(line.sku, DEFAULT_WEIGHT_KG) * line.quantity for line in order.items), Decimal("0"))
    return weight.quantize(CENT, rounding=ROUND_HALF_UP), estimated


def quote(order: OrderPlaced) -> Decision:
    country = order.shipping_address.country
    weight, estimated = parcel_weight(order)
    data: dict[str, Any] = {"country": country, "weight_kg": str(weight), "estimated_weight_skus": estimated}
    zone = zone_for(country)
    if zone is None:
        return Decision(UNAVAILABLE, f"no carrier serves destination country {country}", data)
    if weight > MAX_WEIGHT_KG:
        return Decision(UNAVAILABLE, f"{weight} kg to {country} exceeds the parcel limit of {MAX_WEIGHT_KG} kg",
                        {**data, "zone": zone.name})
    price = (zone.base_price + zone.price_per_kg * weight).quantize(CENT, rounding=ROUND_HALF_UP)
    data.update({
        "zone": zone.name,
        "carrier": zone.carrier,
        "price": str(price),
        "currency": TARIFF_CURRENCY,
        "delivery_days": zone.delivery_days,
    })
    reason = f"{zone.carrier} to {country} ({zone.name}): {weight} kg, {price} {TARIFF_CURRENCY}, " \
             f"{zone.delivery_days} days"
    return Decision(QUOTED, reason, data)
