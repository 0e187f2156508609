"""The shipping agent's reference data: product weights and the zones served from the warehouse (DE).

Prices are in EUR, the carriers' tariff currency, whatever the order's currency.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

# Shipping weight per unit, packaging included.
WEIGHT_KG: dict[str, Decimal] = {
    "SKU-LAPTOP-14": Decimal("2.10"),
    "SKU-MOUSE": Decimal("0.15"),
    "SKU-KEYBOARD": Decimal("0.90"),
    "SKU-MONITOR-27": Decimal("7.50"),
    "SKU-DOCK": Decimal("0.60"),
    "SKU-SERVER-RACK": Decimal("48.00"),
}
# A SKU missing from the catalogue is quoted at this weight per unit (and the quote says so).
DEFAULT_WEIGHT_KG = Decimal("1.00")
# Heavier consignments need a freight quote, which this agent does not give.
MAX_WEIGHT_KG = Decimal("1000.00")
TARIFF_CURRENCY = "EUR"


@dataclass(frozen=True)
class Zone:
    name: str
    carrier: str
    base_price: Decimal
    price_per_kg: Decimal
    delivery_days: int
    countries: frozenset[str]


ZONES: tuple[Zone, ...] = (
    Zone("domestic", "agentbus-parcel", Decimal("4.90"), Decimal("0.50"), 2, frozenset({"DE"})),
    Zone("eu", "agentbus-parcel", Decimal("9.90"), Decimal("1.20"), 4, frozenset({
        "AT", "BE", "BG", "CY", "CZ", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT", "LU",
        "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
    })),
    Zone("europe", "agentbus-parcel", Decimal("14.90"), Decimal("2.00"), 5, frozenset({
        "CH", "GB", "IS", "LI", "NO",
    })),
    Zone("north-america", "agentbus-air", Decimal("24.90"), Decimal("4.50"), 7, frozenset({"CA", "US"})),
    Zone("asia-pacific", "agentbus-air", Decimal("34.90"), Decimal("6.00"), 9, frozenset({
        "AU", "JP", "KR", "NZ", "SG",
    })),
)


def zone_for(country: str) -> Zone | None:
    return next((zone for zone in ZONES if country in zone.countries), None)
