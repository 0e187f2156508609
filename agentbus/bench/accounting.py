"""Call accounting: every AWS API call of a run, counted on the wire and attributed to who made it.

The endpoint's observer counts every request on the wire; a botocore hook on the session attributes each call
on the client side, by the thread that made it, so that the harness's own calls (its PutEvents, its observer
queue, its queue checks) and the calls that exist only locally (the pause check of the emulated poller, the
emulated Scheduler's listing) can be excluded. The Lambda poller's receives and deletes stay in: on AWS they
are billed SQS requests too.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

# Wire names of REST operations (method + first path segment) -> the API's operation names.
REST_OPERATIONS = {
    "scheduler:POST /schedules": "scheduler:CreateSchedule",
    "scheduler:DELETE /schedules": "scheduler:DeleteSchedule",
    "scheduler:GET /schedules": "scheduler:GetSchedule/ListSchedules",
    "scheduler:PUT /schedules": "scheduler:UpdateSchedule",
}
# EventBridge bills a published event, and SQS a request, per 64 KB chunk of its payload.
BILLING_CHUNK_BYTES = 64 * 1024
# Calls the Lambda SQS poller (event source mapping) makes: billed SQS requests on AWS too.
POLLER_ACKS = frozenset({"sqs:DeleteMessageBatch", "sqs:ChangeMessageVisibilityBatch"})


def wire_key(service: str, action: str) -> str:
    """``service:Action`` as the API names it (REST operations are seen on the wire as method + path)."""
    key = f"{service}:{action}"
    return REST_OPERATIONS.get(key, key)


def chunks(size_bytes: int) -> int:
    """Billed units of a payload this big: one per 64 KB chunk, at least one."""
    return max(1, math.ceil(size_bytes / BILLING_CHUNK_BYTES))


def entry_size(entry: dict[str, Any]) -> int:
    """A PutEvents entry's size as EventBridge measures it: the UTF-8 bytes of its source, detail-type, detail
    and resources."""
    parts = [entry.get("Source") or "", entry.get("DetailType") or "", entry.get("Detail") or "",
             *(entry.get("Resources") or [])]
    return sum(len(str(part).encode("utf-8")) for part in parts)


def per_order(counts: Counter[str], requests: int) -> dict[str, float]:
    """``{"total": …, "service:Action": …}``: calls per request, largest first."""
    if requests <= 0:
        raise ValueError("per-request figures need at least one request")
    figures = {key: round(count / requests, 3) for key, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
               if count > 0}
    return {"total": round(sum(counts.values()) / requests, 3), **figures}


def system_calls(wire: Counter[str], excluded: Iterable[Counter[str]]) -> Counter[str]:
    """The calls counted on the wire minus those attributed to the harness or to local-only emulation."""
    remaining = Counter(wire)
    for counts in excluded:
        remaining.subtract(counts)
    return Counter({key: count for key, count in remaining.items() if count > 0})


# --- counting API calls ----------------------------------------------------------------------------

THREAD_ROLES = ("harness", "function", "poller", "emulation")


HARNESS_THREADS = ("MainThread", "observer-", "bench-")


def role_of(thread_name: str, key: str) -> str:
    """Who made a call, from the thread that made it (see ``agentbus.local.runtime``'s thread names).

    - the harness's own threads (the main thread, its bus observer ``observer-…``, its chained orchestrator
      ``bench-…``): its PutEvents, its observer's queue, its queue checks;
    - ``poller-<fn>``: the emulated event source mapping's receives; anything else there (the pause
      check) exists only locally;
    - ``scheduler``: the emulated EventBridge Scheduler firing (listing schedules exists only locally);
    - any other thread runs a function (``lambda-<fn>_N``, or the threads a function starts to handle a
      batch's records at once), except the acknowledgements the emulated poller sends from the
      invocation's thread once the handler has returned (Lambda's event source mapping does those).
    """
    if thread_name.startswith(HARNESS_THREADS):
        return "harness"
    if thread_name.startswith("poller-"):
        return "poller" if key == "sqs:ReceiveMessage" else "emulation"
    if thread_name == "scheduler":
        return "emulation"
    return "poller" if key in POLLER_ACKS else "function"


@dataclass
class CallCounter:
    """Counts API calls on the wire (the endpoint's own counts) and by caller (botocore hooks on the session)."""

    by_role: dict[str, Counter[str]] = field(default_factory=lambda: {role: Counter() for role in THREAD_ROLES})
    empty_receives: Counter[str] = field(default_factory=Counter)  # by role
    put_entries: Counter[str] = field(default_factory=Counter)  # PutEvents entries, by role
    # Function calls as "Op@table" (TransactWriteItems: its items; BatchGetItem: its keys, per table).
    dynamodb: Counter[str] = field(default_factory=Counter)
    # Billing chunks (64 KB) by role: of PutEvents entries; beyond the first of each receive's payload (a receive
    # of 10 messages of 100 KB is 16 requests); of each message received (the SendMessage that delivered it).
    put_chunks: Counter[str] = field(default_factory=Counter)
    receive_extra_chunks: Counter[str] = field(default_factory=Counter)
    delivered_chunks: Counter[str] = field(default_factory=Counter)
    # The endpoint's own count of the calls it served so far, by "service:Action" (``LocalEndpoint.wire_calls``).
    wire_source: Callable[[], Counter[str]] = Counter
    # The endpoint's DynamoDB write units charged so far, by table (``LocalEndpoint.write_units``): measured from
    # the items' sizes before and after each write.
    write_units_source: Callable[[], Counter[str]] = Counter
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def install(self, session: Any) -> None:
        """Hook every client the session creates from now on (the runtime's, the functions', ours)."""
        session.events.register("before-parameter-build", self._before_call)
        session.events.register("after-call.sqs.ReceiveMessage", self._after_receive)

    def _key(self, model: Any) -> str:
        service = model.service_model.signing_name
        # S3's request URIs start with the bucket: its operation name says what the call is (PutObject, GetObject).
        if model.service_model.protocol.startswith("rest") and service != "s3":
            segment = model.http.get("requestUri", "/").strip("/").split("/")[0].split("?")[0]
            return wire_key(service, f"{model.http.get('method', 'GET')} /{segment}")
        return wire_key(service, model.name)

    def _before_call(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        """Once per API call, with the call's parameters (before botocore serializes them)."""
        key = self._key(model)
        role = role_of(threading.current_thread().name, key)
        with self._lock:
            self.by_role[role][key] += 1
            if key == "events:PutEvents":
                self.put_entries[role] += len(params.get("Entries", []))
                self.put_chunks[role] += sum(chunks(entry_size(e)) for e in params.get("Entries", []))
            if role == "function" and key.startswith("dynamodb:"):
                operation = key.split(":", 1)[1]
                if operation == "TransactWriteItems":
                    for action in params.get("TransactItems", []):
                        (_, body), = action.items()
                        self.dynamodb[f"TransactWriteItems@{body.get('TableName')}"] += 1
                elif operation == "BatchGetItem":  # no TableName: its keys by table (each an item read)
                    for table, request in (params.get("RequestItems") or {}).items():
                        self.dynamodb[f"BatchGetItem@{table}"] += len(request.get("Keys", []))
                else:
                    self.dynamodb[f"{operation}@{params.get('TableName')}"] += 1

    def _after_receive(self, parsed: dict[str, Any], **_: Any) -> None:
        role = role_of(threading.current_thread().name, "sqs:ReceiveMessage")
        messages = parsed.get("Messages") or []
        sizes = [len(str(m.get("Body", "")).encode("utf-8")) for m in messages]
        with self._lock:
            if not messages:
                self.empty_receives[role] += 1
                return
            self.receive_extra_chunks[role] += chunks(sum(sizes)) - 1
            self.delivered_chunks[role] += sum(chunks(size) for size in sizes)

    def snapshot(self) -> CallSnapshot:
        wire: Counter[str] = Counter()
        for key, count in self.wire_source().items():
            wire[wire_key(*key.split(":", 1))] += count
        write_units = Counter(self.write_units_source())
        with self._lock:
            return CallSnapshot(wire,
                                {r: Counter(c) for r, c in self.by_role.items()}, Counter(self.empty_receives),
                                Counter(self.put_entries), Counter(self.dynamodb), Counter(self.put_chunks),
                                Counter(self.receive_extra_chunks), Counter(self.delivered_chunks), write_units)


@dataclass
class CallSnapshot:
    wire: Counter[str]
    by_role: dict[str, Counter[str]]
    empty_receives: Counter[str]
    put_entries: Counter[str]
    dynamodb: Counter[str]
    put_chunks: Counter[str] = field(default_factory=Counter)
    receive_extra_chunks: Counter[str] = field(default_factory=Counter)
    delivered_chunks: Counter[str] = field(default_factory=Counter)
    # DynamoDB write units by table name, measured on the endpoint (empty when it does not measure them).
    write_units: Counter[str] = field(default_factory=Counter)

    def __sub__(self, other: CallSnapshot) -> CallSnapshot:
        return CallSnapshot(self.wire - other.wire, {r: self.by_role[r] - other.by_role[r] for r in self.by_role},
                            self.empty_receives - other.empty_receives, self.put_entries - other.put_entries,
                            self.dynamodb - other.dynamodb, self.put_chunks - other.put_chunks,
                            self.receive_extra_chunks - other.receive_extra_chunks,
                            self.delivered_chunks - other.delivered_chunks, self.write_units - other.write_units)

