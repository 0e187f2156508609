"""Time as the functions write it: ISO-8601 UTC with milliseconds and a ``Z`` (``2026-11-26T11:07:08.123Z``), one
helper for the agents, the coordinator and the local endpoint. ``isoformat`` pads the year to four digits on every
Python; ``strftime("%Y")`` does not on glibc's 3.11 (``999-12-31T...``, which no ISO reader reads back)."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_ms(moment: datetime) -> str:
    """``2026-11-26T11:07:08.123Z``: ISO-8601, UTC, milliseconds."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_s(moment: datetime) -> str:
    """``2026-11-26T11:07:08Z``: ISO-8601, UTC, whole seconds (EventBridge's event ``time``)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
