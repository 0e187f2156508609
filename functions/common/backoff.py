"""The exponential back-off every retry loop of the functions draws its wait under (the publisher's failed
entries, a failed record's next delivery, the census' unprocessed keys, the reasoner's model calls): each draws
within ``backoff_ceiling`` by its own rule (full jitter, whole seconds, a time budget)."""

from __future__ import annotations

# 2**32 times any base is past any cap: the exponent stops there, so an absurd retry count cannot overflow.
_MAX_DOUBLINGS = 32


def backoff_ceiling(retry: int, base: float, cap: float) -> float:
    """The longest wait before retry ``retry`` (1 for the first): ``base``, doubled with each retry after it, at most
    ``cap``."""
    return min(cap, base * (1 << min(max(retry, 1) - 1, _MAX_DOUBLINGS)))
