"""Fault injection for the local runtime: what the broker and the functions do on a bad day.

At ``rate`` each of these happens to a delivery: a duplicate copy of the message, a handler crash
before it runs, a crash after it ran (side effects done, acknowledgement lost), a delayed delivery, and
PutEvents partial failures. Crashes are never injected into a delivery's last allowed receives, nor PutEvents
failures while a function works on a message's last allowed receive (``calm``), so chaos alone never
dead-letters a healthy message, whatever its rate; the redrive policy stays for real poison. (Before, a PutEvents
failure could hit the last receive too: at 0.9 the publisher's four attempts all failed about two times in three,
and most healthy messages were dead-lettered; black-box pass 9C, F6.)

A duplicate or a delayed delivery is a copy of the message sent again, marked with ``COPY_ATTRIBUTE``; a copy
is never copied again. Without the mark copies of copies made a chain reaction: each receive of a message
(and a crash brings a whole batch back) could add another, and under load the coordinator's queue grew to
hundreds of copies of a dozen requests, past their deadlines. SQS duplicates a delivery; it does not breed them.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

KINDS = ("duplicate", "crash_before", "crash_after", "delay", "put_events_partial_failure")
# The message attribute that marks a message chaos sent (a duplicate, a delayed delivery).
COPY_ATTRIBUTE = "agentbus-chaos-copy"
COPY_ATTRIBUTES = {COPY_ATTRIBUTE: {"DataType": "String", "StringValue": "true"}}


def is_copy(message: dict[str, Any]) -> bool:
    """Whether a received message is one chaos sent (``receive_message`` with its message attributes)."""
    return COPY_ATTRIBUTE in (message.get("MessageAttributes") or {})


class InjectedCrash(RuntimeError):
    pass


@dataclass
class Chaos:
    rate: float
    seed: int | None = None
    injected: Counter[str] = field(default_factory=Counter)
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Per function: how many of its invocations now work on a message's last allowed receive (no PutEvents fails).
    _calm: Counter[str] = field(default_factory=Counter, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.rate <= 1:
            raise ValueError(f"chaos rate must be between 0 and 1, got {self.rate}")
        if self.seed is None:  # drawn, so that a run can say which it was (`agentbus soak --seed N` replays it)
            self.seed = random.SystemRandom().randrange(2**31)
        self._rng = random.Random(self.seed)

    def roll(self, kind: str) -> bool:
        with self._lock:
            hit = self.rate > 0 and self._rng.random() < self.rate
            if hit:
                self.injected[kind] += 1
            return hit

    def uniform(self, low: float, high: float) -> float:
        with self._lock:
            return self._rng.uniform(low, high)

    @contextmanager
    def calm(self, function: str, when: bool = True) -> Iterator[None]:
        """While inside (and ``when``), ``function``'s PutEvents calls do not fail. Its clients serve every
        invocation at once (and the records of one on threads of their own), so this calms all of them: chaos is
        a little milder then, never harsher than SQS's retries can take."""
        if not when:
            yield
            return
        with self._lock:
            self._calm[function] += 1
        try:
            yield
        finally:
            with self._lock:
                self._calm[function] -= 1

    def is_calm(self, function: str) -> bool:
        with self._lock:
            return self._calm[function] > 0

    def wrap_events_client(self, client: Any, function: str = "") -> Any:
        return _FlakyEvents(client, self, function)


class _FlakyEvents:
    """An EventBridge client whose PutEvents sometimes rejects some entries, as the real one can."""

    def __init__(self, client: Any, chaos: Chaos, function: str) -> None:
        self._client = client
        self._chaos = chaos
        self._function = function

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def put_events(self, Entries: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:  # noqa: N803
        if self._chaos.is_calm(self._function) or not self._chaos.roll("put_events_partial_failure"):
            response: dict[str, Any] = self._client.put_events(Entries=Entries, **kwargs)
            return response
        failing = {i for i in range(len(Entries)) if self._chaos.uniform(0, 1) < 0.5} or {0}
        sent = [entry for i, entry in enumerate(Entries) if i not in failing]
        accepted = iter(self._client.put_events(Entries=sent, **kwargs)["Entries"] if sent else [])
        results = [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "injected by agentbus chaos"} if i in failing
            else next(accepted)
            for i in range(len(Entries))
        ]
        return {"FailedEntryCount": sum(1 for r in results if r.get("ErrorCode")), "Entries": results}
