"""Publishes events to the bus: batches of at most 10 entries, retrying only the entries that failed.

With a claim-check store (``claim_check.py``), an entry larger than the store's threshold has its detail stored
in S3 and carries a small reference instead, so a result of any size can be published; without one, an entry
over agentbus's 256 KB entry limit (EventBridge's until January 2026) raises ``EventTooLargeError`` before
anything is sent.

PutEvents answers 200 with per-entry failures (``ThrottlingException``, ``InternalFailure``) that botocore does
not retry; the publisher retries those entries only, up to ``max_attempts`` calls, sleeping between them a full
jitter back-off (uniform in ``[0, min(max_delay_s, base_delay_s * 2 ** (attempt - 1))]``: concurrent functions
throttled together do not retry in lockstep) within ``retry_budget_s`` of sleep in all (3 s: well inside a
function's timeout, 30 s by default). What still fails raises ``PublishError``, and the caller's message is
retried (``consumer.py``, retry timing).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from functions.common.backoff import backoff_ceiling
from functions.common.batching import batched
from functions.common.observability import logger
from functions.common.storable import problems as storable_problems

if TYPE_CHECKING:
    from functions.common.claim_check import ClaimCheckStore

MAX_ENTRIES_PER_CALL = 10
# The most agentbus puts in one entry (and in one call): 256 KB, as AWS computes it. EventBridge's own limit was
# 256 KB until January 2026 and is 1 MB since; keeping to the old one lets every consumer, queue and bus in the path
# take what agentbus publishes, and bigger details go to S3 anyway (claim check).
MAX_ENTRY_BYTES = 256 * 1024
MAX_REQUEST_BYTES = MAX_ENTRY_BYTES


class PublishError(RuntimeError):
    """Some entries were still rejected after every retry; the caller's message must be retried."""

    def __init__(self, failed: list[dict[str, Any]]):
        self.failed = failed
        codes = ", ".join(sorted({f"{f.get('ErrorCode')}: {f.get('ErrorMessage')}" for f in failed}))
        super().__init__(f"{len(failed)} event(s) not accepted by EventBridge after retries ({codes})")


class EventTooLargeError(ValueError):
    """An entry exceeds the PutEvents size limit: it would never be accepted, so it is not sent.

    ``size`` is the entry's size as EventBridge counts it, ``limit`` the most it accepts; retrying cannot
    help, so a caller turns this into a failure result or a refusal at once.
    """

    def __init__(self, size: int, limit: int, detail_type: str, source: str | None = None):
        self.size = size
        self.limit = limit
        self.detail_type = detail_type
        self.source = source
        origin = f" from {source}" if source else ""
        super().__init__(
            f"event {detail_type!r}{origin} is {size} bytes as a PutEvents entry (UTF-8 bytes of Source, "
            f"DetailType, Detail and Resources, +14 with Time); EventBridge accepts at most {limit} bytes "
            f"({limit // 1024} KB)"
        )


@dataclass(frozen=True)
class Event:
    detail_type: str
    detail: dict[str, Any]
    source: str
    resources: tuple[str, ...] = ()
    time: datetime | None = None


def entry_size(event: Event | dict[str, Any]) -> int:
    """Size of a PutEvents entry as EventBridge computes it, for an ``Event`` or an entry already built.

    As documented in "Calculating Amazon EventBridge PutEvents event entry size": the UTF-8 bytes of
    Source, DetailType, Detail and each of Resources, plus 14 bytes when Time is set. An ``Event``'s
    detail is measured as the publisher serializes it (``to_json``), so a caller can decide before
    publishing whether a result fits (``entry_size(event) <= MAX_ENTRY_BYTES``).
    """
    if isinstance(event, Event):
        return entry_size(_fields(event))
    entry = event
    size = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        if entry.get(key):
            size += len(entry[key].encode("utf-8"))
    size += sum(len(r.encode("utf-8")) for r in entry.get("Resources", []))
    return size


def batches(entries: Sequence[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    """Consecutive batches of at most 10 entries and at most 256 KB in total (both PutEvents limits)."""
    return batched(entries, entry_size, MAX_ENTRIES_PER_CALL, MAX_REQUEST_BYTES)


def _fields(event: Event) -> dict[str, Any]:
    """The parts of an ``Event``'s PutEvents entry that depend on the event alone (not bus or trace)."""
    fields: dict[str, Any] = {"Source": event.source, "DetailType": event.detail_type, "Detail": to_json(event.detail)}
    if event.resources:
        fields["Resources"] = list(event.resources)
    if event.time is not None:
        fields["Time"] = event.time
    return fields


def _json_default(value: Any) -> Any:
    # DynamoDB hands back Decimals; sets come from string sets.
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(value: Any) -> str:
    """Compact JSON with non-ASCII characters kept as they are (EventBridge counts UTF-8 bytes: an escaped
    ``\\u20ac`` costs 6 bytes where ``€`` costs 3), always valid JSON: NaN and Infinity, which JSON does not
    have, raise ``ValueError`` naming their paths. A string with an unpaired surrogate (which has no UTF-8
    form) is written escaped instead, so the text can always be encoded.
    """
    try:
        text = json.dumps(value, default=_json_default, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError as error:
        if "Out of range float values" not in str(error):
            raise
        found = [p for p in storable_problems(value, "value", max_bytes=None) if "not a finite number" in p]
        raise ValueError(f"not valid JSON: {'; '.join(found) or error}") from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, default=_json_default, separators=(",", ":"), allow_nan=False)
    return text


@dataclass
class EventPublisher:
    client: Any
    bus_name: str
    max_attempts: int = 6
    base_delay_s: float = 0.2
    max_delay_s: float = 2.0
    # The most the retries of one batch sleep in all (module docstring).
    retry_budget_s: float = 3.0
    sleep: Callable[[float], None] = time.sleep
    uniform: Callable[[float, float], float] = field(default=random.uniform, repr=False)
    # Fault injection for the local runtime's chaos mode: given the entries, may fail some of them.
    put_events: Callable[..., dict[str, Any]] | None = field(default=None, repr=False)
    # Where details over its threshold go instead of the bus (None: such an event is refused over 256 KB).
    claim_checks: ClaimCheckStore | None = None

    def entry(self, event: Event) -> dict[str, Any]:
        """The PutEvents entry of ``event``; a detail over the claim-check threshold is stored in S3 first
        and the entry carries its reference."""
        entry: dict[str, Any] = {"EventBusName": self.bus_name, **_fields(event)}
        trace_header = os.environ.get("_X_AMZN_TRACE_ID")
        if trace_header:
            entry["TraceHeader"] = trace_header
        size = entry_size(entry)
        if self.claim_checks is not None and size > self.claim_checks.threshold:
            reference = self.claim_checks.offload(event.source, event.detail_type, event.detail, entry["Detail"])
            logger.info("event detail stored as a claim check", extra={
                "detail_type": event.detail_type, "bytes": size, "claim_check": reference.get("claim_check")})
            entry["Detail"] = to_json(reference)
            size = entry_size(entry)
        if size > MAX_ENTRY_BYTES:
            raise EventTooLargeError(size, MAX_ENTRY_BYTES, event.detail_type, event.source)
        return entry

    def check(self, event: Event) -> None:
        """Raise ``EventTooLargeError`` if ``event`` could not be published, without storing or sending
        anything: over 256 KB with no claim-check store (a reference detail is always far smaller)."""
        if self.claim_checks is not None:
            return
        size = entry_size(event)
        if size > MAX_ENTRY_BYTES:
            raise EventTooLargeError(size, MAX_ENTRY_BYTES, event.detail_type, event.source)

    def publish(self, events: Iterable[Event]) -> None:
        entries = [self.entry(event) for event in events]  # size errors surface before anything is sent
        for batch in batches(entries):
            self._put_batch(batch)

    def _put_batch(self, entries: Sequence[dict[str, Any]]) -> None:
        put = self.put_events or self.client.put_events
        pending = list(entries)
        failed: list[dict[str, Any]] = []
        slept = 0.0
        for attempt in range(1, self.max_attempts + 1):
            response = put(Entries=pending)
            if not response.get("FailedEntryCount"):
                return
            # Results are positional: the i-th result belongs to the i-th entry.
            results = response["Entries"]
            failed = [result for result in results if result.get("ErrorCode")]
            pending = [entry for entry, result in zip(pending, results, strict=True) if result.get("ErrorCode")]
            left_s = self.retry_budget_s - slept
            if attempt == self.max_attempts or left_s <= 0:
                logger.warning("PutEvents partial failure; giving up on the failed entries",
                               extra={"failed": len(pending), "attempt": attempt, "errors": failed[:3]})
                break
            delay = min(left_s, self.uniform(0, backoff_ceiling(attempt, self.base_delay_s, self.max_delay_s)))
            logger.warning(
                "PutEvents partial failure; retrying the failed entries only",
                extra={"failed": len(pending), "attempt": attempt, "errors": failed[:3], "retry_in_s": round(delay, 3)},
            )
            self.sleep(delay)
            slept += delay
        raise PublishError(failed)
