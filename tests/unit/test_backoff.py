"""The one exponential back-off ceiling the functions' retry loops draw under (functions/common/backoff.py)."""

from __future__ import annotations

from functions.common.backoff import backoff_ceiling


def test_the_ceiling_doubles_from_its_base_with_each_retry_up_to_its_cap() -> None:
    assert [backoff_ceiling(n, 0.25, 4.0) for n in range(1, 8)] == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_a_first_or_absurd_retry_count_stays_in_bounds() -> None:
    assert backoff_ceiling(0, 2, 60) == backoff_ceiling(-5, 2, 60) == 2
    assert backoff_ceiling(10**9, 2, 60) == 60  # no overflow
