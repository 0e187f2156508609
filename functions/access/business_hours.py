"""Business hours, in UTC: Monday to Friday, from 07:00 (inclusive) to 19:00 (exclusive).

Used by the risk agent (a request outside them is riskier) and the security-audit agent (a user created
outside them is a finding). One clock for the company; a deployment in another time zone changes it here.
"""

from __future__ import annotations

from datetime import UTC, datetime, time

OPENS = time(7, 0)
CLOSES = time(19, 0)
WORKDAYS = frozenset({0, 1, 2, 3, 4})  # datetime.weekday(): Monday is 0
DESCRIPTION = "Mon-Fri 07:00-19:00 UTC"


def outside_business_hours(moment: datetime) -> str | None:
    """Why ``moment`` (timezone-aware) is outside business hours, e.g. ``Saturday 10:15 UTC is a weekend``;
    None when it is inside them."""
    utc = moment.astimezone(UTC)
    when = f"{utc:%A %H:%M} UTC"
    if utc.weekday() not in WORKDAYS:
        return f"{when} is a weekend"
    if not OPENS <= utc.time() < CLOSES:
        return f"{when} is outside business hours ({DESCRIPTION})"
    return None
