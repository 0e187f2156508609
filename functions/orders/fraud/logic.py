"""Fraud scoring: deterministic signals, each worth points; a score at or above the threshold flags.

- ``over_limit``: the order total exceeds the limit (default 10,000.00). Worth the whole threshold, so an
  order over the limit is always flagged. Exactly the limit is not over it. The limit applies to the
  amount in the order's own currency.
- ``bulk_quantity``: more than ``max_units_per_sku`` units of one SKU (typical of reselling stolen cards).
- ``high_risk_destination``: the destination country is on the high-risk list.
- ``currency_mismatch``: the currency is not the one usual for the destination country (only for
  countries whose usual currency is known).

Each of the last three is worth half the threshold: one alone is reported but verifies, any two flag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from functions.common.decisions import Decision
from functions.orders.models import OrderPlaced

VERIFIED = "Order Verified"
FLAGGED = "Order Flagged"

THRESHOLD = 100
OVER_LIMIT_POINTS = THRESHOLD
SIGNAL_POINTS = THRESHOLD // 2

DEFAULT_LIMIT = Decimal("10000.00")
DEFAULT_MAX_UNITS_PER_SKU = 50

# An illustrative list for the sample workflow (destinations under comprehensive embargoes), not a
# risk assessment; a real deployment would load its own.
HIGH_RISK_COUNTRIES = frozenset({"CU", "IR", "KP", "SY"})

_EURO_AREA = ("AT", "BE", "CY", "DE", "EE", "ES", "FI", "FR", "GR", "HR", "IE", "IT", "LT", "LU", "LV", "MT",
              "NL", "PT", "SI", "SK")
USUAL_CURRENCY: Mapping[str, str] = {
    **dict.fromkeys(_EURO_AREA, "EUR"),
    "GB": "GBP", "US": "USD", "CA": "CAD", "CH": "CHF", "SE": "SEK", "NO": "NOK", "DK": "DKK",
    "PL": "PLN", "CZ": "CZK", "HU": "HUF", "JP": "JPY", "AU": "AUD", "NZ": "NZD",
}


@dataclass(frozen=True)
class Signal:
    name: str
    points: int
    reason: str


@dataclass(frozen=True)
class Assessment:
    score: int
    signals: tuple[Signal, ...]

    @property
    def flagged(self) -> bool:
        return self.score >= THRESHOLD


def money(amount: Decimal) -> str:
    return f"{amount:.2f}"


@dataclass(frozen=True)
class FraudPolicy:
    limit: Decimal = DEFAULT_LIMIT
    max_units_per_sku: int = DEFAULT_MAX_UNITS_PER_SKU
    high_risk_countries: frozenset[str] = HIGH_RISK_COUNTRIES
    usual_currency: Mapping[str, str] = field(default_factory=lambda: dict(USUAL_CURRENCY))

    def assess(self, order: OrderPlaced) -> Assessment:
        signals: list[Signal] = []
        total = order.total
        if total > self.limit:
            signals.append(Signal("over_limit", OVER_LIMIT_POINTS,
                                  f"total {money(total)} {order.currency} exceeds the limit {money(self.limit)}"))
        for line in order.items:
            if line.quantity > self.max_units_per_sku:
                signals.append(Signal("bulk_quantity", SIGNAL_POINTS,
                                      f"{line.quantity} units of {line.sku} (more than {self.max_units_per_sku})"))
                break  # one bulk line or several: the same signal, counted once
        country = order.shipping_address.country
        if country in self.high_risk_countries:
            signals.append(Signal("high_risk_destination", SIGNAL_POINTS,
                                  f"destination {country} is on the high-risk list"))
        usual = self.usual_currency.get(country)
        if usual is not None and order.currency != usual:
            signals.append(Signal("currency_mismatch", SIGNAL_POINTS,
                                  f"currency {order.currency} is unusual for destination {country} "
                                  f"(usually {usual})"))
        return Assessment(score=sum(s.points for s in signals), signals=tuple(signals))

    def decide(self, order: OrderPlaced) -> Decision:
        assessment = self.assess(order)
        reasons = [signal.reason for signal in assessment.signals]
        data = {
            "score": assessment.score,
            "threshold": THRESHOLD,
            "signals": [signal.name for signal in assessment.signals],
            "reasons": reasons,
            "total": money(order.total),
            "currency": order.currency,
            "limit": money(self.limit),
        }
        if assessment.flagged:
            reason = f"score {assessment.score} >= {THRESHOLD}: " + "; ".join(reasons)
            return Decision(FLAGGED, reason, data)
        reason = f"score {assessment.score} < {THRESHOLD}" + (": " + "; ".join(reasons) if reasons else "")
        return Decision(VERIFIED, reason, data)
