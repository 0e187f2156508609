"""A trigger's version: the digest of its detail, as received.

Two events with the same workflow id and different contents are two versions of one request. Every agent
stamps its result with the digest of the trigger detail it acted on, and the coordinator counts a result only
toward the version it stored (the first trigger it received): the outcome, the main-table row and every result
counted toward them refer to one version. The digest is taken over the detail exactly as parsed from the event
(keys sorted, no whitespace, UTF-8), so the agents and the coordinator compute the same value from the same
event, and any change of content gives another.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

DIGEST_LENGTH = 32  # hex characters: 128 bits


def trigger_digest(detail: dict[str, Any]) -> str:
    canonical = json.dumps(detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:DIGEST_LENGTH]
