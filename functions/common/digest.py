"""A trigger's version: the digest of its detail, as received.

Two events with the same workflow id and different contents are two versions of one request. Every agent
stamps its result with the digest of the trigger detail it acted on, and the coordinator counts a result only
toward the version it stored (the first trigger it received): the outcome, the main-table row and every result
counted toward them refer to one version. The digest is taken over the detail as parsed from the event
(keys sorted, no whitespace, UTF-8, and a number with a fraction of zero written as the integer it equals), so the
agents and the coordinator compute the same value from the same event, any change of content gives another, and
a spelling that changes no value does not: ``{"b": 25, "a": 1}`` and ``{"a": 1.0, "b": 25.0}`` are one version
(JSON readers take ``25`` and ``25.0`` as one number; a producer's retry from another serializer writes either).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from functions.common.json_tree import mapped

DIGEST_LENGTH = 32  # hex characters: 128 bits


def trigger_digest(detail: dict[str, Any]) -> str:
    canonical = json.dumps(integral_floats_as_ints(detail), sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False, allow_nan=True)
    # surrogatepass: a lone surrogate (``"\ud800"`` is valid JSON text, and no UTF-8) still has a digest, so that
    # the request is told apart and refused naming the field (functions.common.storable), not retried.
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:DIGEST_LENGTH]


def integral_floats_as_ints(value: Any) -> Any:
    """``value`` with every float whose fraction is zero (``25.0``, ``1e2``) as the int it equals; a copy, built
    without recursion (a hostile detail may nest as deep as the JSON reader went)."""
    return mapped(value, lambda item: int(item) if isinstance(item, float) and item.is_integer() else item)
