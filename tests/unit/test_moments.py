"""One time format for every function (black-box pass 10D, finding 10): ``strftime("%Y")`` does not pad the year on
glibc's Python 3.11, so a backdated year-999 ``Time`` became ``999-12-31T...``, which ``parse_iso`` could not read
back (Lambda's 3.13 pads: the local stack and AWS differed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from functions.common.moments import iso_ms, iso_s
from functions.coordinator.deadlines import at_expression
from functions.coordinator.times import parse_iso


def test_iso_ms_is_iso_8601_utc_with_milliseconds_for_any_year_and_zone() -> None:
    assert iso_ms(datetime(2026, 11, 26, 11, 7, 8, 123456, tzinfo=UTC)) == "2026-11-26T11:07:08.123Z"
    assert iso_ms(datetime(2026, 11, 26, 12, 7, 8, tzinfo=timezone(timedelta(hours=1)))) == "2026-11-26T11:07:08.000Z"
    early = datetime(999, 12, 31, 23, 0, tzinfo=UTC)
    assert iso_ms(early) == "0999-12-31T23:00:00.000Z"
    assert parse_iso(iso_ms(early)) == early


def test_iso_s_and_the_schedule_expression_pad_the_year_too() -> None:
    assert iso_s(datetime(999, 1, 2, 3, 4, 5, 999999, tzinfo=UTC)) == "0999-01-02T03:04:05Z"
    assert at_expression(datetime(2026, 11, 26, 12, 12, 8, 500000, tzinfo=timezone(timedelta(hours=1)))) \
        == "at(2026-11-26T11:12:08)"
