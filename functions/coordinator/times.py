"""The coordinator's time arithmetic: reading its ISO-8601 times back, when a request was placed, deadlines rounded
for EventBridge Scheduler, epoch milliseconds for the publication lease, durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from functions.common.models import BusEvent


def parse_iso(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def start_of_next_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0) + timedelta(minutes=1)


def ceil_to_second(moment: datetime) -> datetime:
    """Scheduler's ``at()`` has second precision: never fire before the deadline."""
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment


def placed_at(event: BusEvent, received: datetime) -> datetime:
    """When the request was placed: the event's ``time`` (EventBridge stamps it at PutEvents, or takes the
    producer's), never later than its arrival here, so a producer cannot push a deadline into the future."""
    stamped = parse_iso(event.time)
    return min(stamped, received) if stamped else received


def ms_between(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds() * 1000, 3)
