"""Claim check: an event too big for the bus travels as a reference to an S3 object in the stack's bucket.

EventBridge accepts at most 256 KB per PutEvents entry. The publisher (``publisher.py``) stores the detail of
an entry larger than ``threshold`` bytes (``CLAIM_CHECK_THRESHOLD_BYTES``, default 200 KB, measured as
EventBridge measures an entry) as one S3 object in the claim-check bucket (``CLAIM_CHECK_BUCKET``) and puts on
the bus a small detail instead::

    {"claim_check": {"bucket": "<the stack's bucket>", "key": "<function>/<source>/<detail-type>/<idempotency
                     key>/<sha256>.json", "bytes": 1048713, "sha256": "<hex of the object's bytes>"},
     "workflow": "...", "workflow_id": "...", "agent": "...", "outcome": "...", "status": "...",
     "trigger_digest": "...", "idempotency_key": "...", "<the workflow's id field>": "..."}

The object holds the whole original detail (compact UTF-8 JSON, as the publisher would have sent it). Beside
the reference the detail keeps the routing fields (``ROUTING_FIELDS`` and every workflow's id field, those
present in the original detail with a short scalar value), so that a rule, a log line or the coordinator can
route the event without fetching. The key is derived from the publishing function (``claim_check_prefix``:
its name, the only prefix its role may write), the source, the detail-type, the idempotency key and the
content's sha256: publishing the same detail again puts the same bytes under the same key (an idempotent put),
and two different details never share a key.

Every consumer resolves a reference before it validates the event (``consumer.py``). Its key must be one a
publisher of that event writes, checked before anything is fetched: the envelope's source and detail-type, under
the prefix of the function that publishes that source (``claim_check_writers``: the manifest's agents and the
coordinator; a producer outside the stack publishes none, so its event cannot carry a claim check). The object
is then fetched from the stack's own bucket, its size and sha256 checked against the reference and its routing
fields against the envelope's. A reference that cannot be resolved (a key no publisher of the event writes; no
such object: expired or deleted; content that does not match; another bucket) is a poison message naming the
reference, dead-lettered with that reason at once; an S3 error that may pass (throttling, a timeout) is retried
like any other failure.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from functions.common.dead_letters import PoisonMessage, UnreadableJson, read_json
from functions.common.models import BusEvent
from functions.common.settings import DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES as DEFAULT_THRESHOLD_BYTES
from functions.common.settings import Settings
from functions.common.spec import DEFAULT_MANIFEST, MANIFEST_VARIABLE, Consumer, Manifest, load_manifest

REFERENCE_FIELD = "claim_check"
# The bucket's lifecycle expiry: longer than an event can wait in a queue (14 days) and then in its DLQ (14
# days more), so a message still kept anywhere finds its object. An archive replay after that finds none and
# is dead-lettered naming the reference.
QUEUE_RETENTION_DAYS = 14
OBJECT_EXPIRY_DAYS = 2 * QUEUE_RETENTION_DAYS + 2


def object_expiry_days(longest_open_s: int) -> int:
    """The bucket's expiry: ``OBJECT_EXPIRY_DAYS`` after the longest a workflow may stay open (whole days). A
    result's object is referenced by its workflow's record while it is open (``agentbus status`` reads it) and
    then by the outcome, which waits in its subscribers' queues and DLQs like any event: a workflow open for
    35 days (``-c deadline_seconds``) found the objects of its first results expired."""
    return OBJECT_EXPIRY_DAYS + -(-max(0, longest_open_s) // 86400)


# Fields a reference detail keeps from the original when present (plus every workflow's id field).
ROUTING_FIELDS = ("workflow", "workflow_id", "agent", "outcome", "status", "trigger_digest", "idempotency_key")
# A routing field longer than this (as JSON) is left out: the reference detail stays small.
MAX_ROUTING_VALUE_BYTES = 1024
_KEY_PART = re.compile(r"[^A-Za-z0-9._=-]+")
_KEY_PART_MAX = 160
_SHA256 = re.compile(r"[0-9a-f]{64}")
# How much of a refused reference's key a message repeats (a key no publisher wrote may be of any length).
_NAMED_KEY_MAX = 300
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound", "NoSuchBucket"})


class ClaimCheckError(PoisonMessage):
    """A claim-check reference that can never be resolved; the message names the reference."""


@dataclass(frozen=True)
class Reference:
    bucket: str
    key: str
    bytes: int
    sha256: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def to_json(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "key": self.key, "bytes": self.bytes, "sha256": self.sha256}

    @classmethod
    def of(cls, detail: dict[str, Any]) -> Reference:
        """The reference a detail carries; ``ClaimCheckError`` naming what is wrong with a malformed one."""
        raw = detail.get(REFERENCE_FIELD)
        if not isinstance(raw, dict):
            raise ClaimCheckError(f"{REFERENCE_FIELD} must be an object with bucket, key, bytes and sha256")
        bucket, key, size, digest = (raw.get(name) for name in ("bucket", "key", "bytes", "sha256"))
        problems = [name for name, ok in (("bucket", isinstance(bucket, str) and bucket),
                                          ("key", isinstance(key, str) and key),
                                          ("bytes", isinstance(size, int) and not isinstance(size, bool)
                                           and size >= 0),
                                          ("sha256", isinstance(digest, str) and _SHA256.fullmatch(digest)))
                    if not ok]
        if problems:
            raise ClaimCheckError(f"malformed claim check {json.dumps(raw)[:300]}: bad or missing "
                                  f"{', '.join(problems)}")
        return cls(str(bucket), str(key), int(size), str(digest))  # type: ignore[arg-type]


def is_reference(detail: Any) -> bool:
    """Whether an event detail is a claim-check reference (``claim_check`` is a reserved detail field)."""
    return isinstance(detail, dict) and REFERENCE_FIELD in detail


def _key_part(text: str) -> str:
    return _KEY_PART.sub("_", text)[:_KEY_PART_MAX] or "_"


def object_key(prefix: str, source: str, detail_type: str, detail: dict[str, Any], sha256: str) -> str:
    """``<prefix>/<source>/<detail-type>/<idempotency key>/<sha256>.json``, each part made key-safe."""
    idempotency = detail.get("idempotency_key")
    parts = [prefix, source, detail_type, str(idempotency) if idempotency else "-"]
    return "/".join(_key_part(part) for part in parts) + f"/{sha256}.json"


def claim_check_prefix(consumer: Consumer) -> str:
    """The key prefix ``consumer``'s function stores its claim checks under: its name, the only prefix its role
    may write (``infrastructure/claim_check.py``). The publisher writes there and every reader expects it there."""
    return consumer.name


def claim_check_writers(manifest: Manifest) -> dict[str, frozenset[str]]:
    """source -> the key prefixes of the functions that publish under it: each agent its own source, the
    coordinator ``COORDINATOR_SOURCE``. A source missing here (a producer's) never carries a claim check."""
    writers: dict[str, set[str]] = {}
    for consumer in manifest.consumers:
        writers.setdefault(consumer.source, set()).add(_key_part(claim_check_prefix(consumer)))
    return {source: frozenset(prefixes) for source, prefixes in writers.items()}


def _named(reference: Reference) -> str:
    """``s3://bucket/key`` of a refused reference, its key cut to a readable length."""
    if len(reference.key) <= _NAMED_KEY_MAX:
        return str(reference)
    return f"s3://{reference.bucket}/{reference.key[:_NAMED_KEY_MAX]}… ({len(reference.key)} characters)"


def written_by_publisher(reference: Reference, source: str, detail_type: str,
                         writers: Mapping[str, frozenset[str]]) -> None:
    """Nothing when ``reference``'s key is one a publisher of an event from ``source`` with ``detail_type`` writes
    (``object_key`` under a prefix ``writers`` gives that source); else ``ClaimCheckError`` saying what is wrong."""
    expected = writers.get(source, frozenset())
    parts = reference.key.split("/")
    problem = None
    if not expected:
        problem = (f"written by no function that publishes source {source!r} (only the stack's functions store "
                   "claim checks, each for the source it publishes)")
    elif len(parts) != 5 or any(not part or _key_part(part) != part for part in parts):
        problem = ("the key is not <function>/<source>/<detail-type>/<idempotency key>/<sha256>.json as a "
                   "publisher writes it")
    elif parts[0] not in expected:
        problem = (f"written under {parts[0]!r}, not by the function that publishes source {source!r} "
                   f"({', '.join(sorted(expected))})")
    elif parts[1] != _key_part(source):
        problem = f"stored for source {parts[1]!r}, not this event's {source!r}"
    elif parts[2] != _key_part(detail_type):
        problem = f"stored for detail-type {parts[2]!r}, not this event's {detail_type!r}"
    elif parts[4] != f"{reference.sha256}.json":
        problem = f"the key names content {parts[4]!r}, not the reference's sha256"
    if problem is not None:
        raise ClaimCheckError(f"claim check {_named(reference)} on {detail_type!r} from {source!r}: {problem}; "
                              "refused")


@dataclass(frozen=True)
class ClaimCheckStore:
    """Offloads big details to ``bucket`` under ``prefix`` (the function's own) and resolves references."""

    client: Any  # an S3 client
    bucket: str
    prefix: str
    threshold: int = DEFAULT_THRESHOLD_BYTES
    routing_fields: tuple[str, ...] = ROUTING_FIELDS
    # source -> the prefixes its publishers write under (``claim_check_writers``); None: those of the manifest
    # the environment names (``AGENTBUS_MANIFEST``), as a function finds its own.
    writers: Mapping[str, frozenset[str]] | None = None

    @classmethod
    def for_function(cls, settings: Settings, s3_client: Any) -> ClaimCheckStore | None:
        """The store of the function ``settings`` describe, or None when it has no claim-check bucket."""
        if not settings.claim_check_bucket:
            return None
        manifest = settings.manifest
        id_fields = sorted({workflow.trigger.id_field for workflow in manifest.workflows})
        fields = ROUTING_FIELDS + tuple(f for f in id_fields if f not in ROUTING_FIELDS)
        return cls(s3_client, settings.claim_check_bucket, claim_check_prefix(manifest.consumer(settings.function)),
                   settings.claim_check_threshold, fields, claim_check_writers(manifest))

    def publishers(self) -> Mapping[str, frozenset[str]]:
        """source -> the key prefixes of the functions that publish under it."""
        if self.writers is not None:
            return self.writers
        return claim_check_writers(load_manifest(os.environ.get(MANIFEST_VARIABLE, "").strip() or DEFAULT_MANIFEST))

    def routing(self, detail: dict[str, Any]) -> dict[str, Any]:
        """The routing fields of ``detail`` a reference keeps: present, scalar and short."""
        kept = {}
        for name in self.routing_fields:
            value = detail.get(name)
            if value is None or isinstance(value, dict | list):
                continue
            if len(json.dumps(value, ensure_ascii=False).encode("utf-8")) <= MAX_ROUTING_VALUE_BYTES:
                kept[name] = value
        return kept

    def offload(self, source: str, detail_type: str, detail: dict[str, Any], body: str) -> dict[str, Any]:
        """Store ``body`` (``detail`` as the publisher serialized it) and return the reference detail."""
        data = body.encode("utf-8")
        digest = hashlib.sha256(data).hexdigest()
        key = object_key(self.prefix, source, detail_type, detail, digest)
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/json",
                               Metadata={"source": _key_part(source), "sha256": digest})
        reference = Reference(self.bucket, key, len(data), digest)
        return {REFERENCE_FIELD: reference.to_json(), **self.routing(detail)}

    def resolve(self, detail: dict[str, Any], source: str | None = None,
                detail_type: str | None = None) -> dict[str, Any]:
        """The original detail a reference detail stands for; ``ClaimCheckError`` when it can never be had.

        ``source`` and ``detail_type``: the envelope the reference came in (for ``agentbus status``, the one the
        record says the result came in), whose publisher must have written its key (``written_by_publisher``).
        Only a reader that cannot know the envelope (a record of an agent this manifest does not list) passes
        neither."""
        reference = Reference.of(detail)
        if reference.bucket != self.bucket:
            raise ClaimCheckError(f"claim check {_named(reference)}: bucket {reference.bucket!r} is not this "
                                  f"stack's claim-check bucket {self.bucket!r}; refused")
        if (source is None) != (detail_type is None):
            raise ValueError("resolve takes the envelope's source and detail_type together, or neither")
        if source is not None and detail_type is not None:
            written_by_publisher(reference, source, detail_type, self.publishers())
        try:
            body = self.client.get_object(Bucket=reference.bucket, Key=reference.key)["Body"].read()
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in _MISSING_CODES:
                raise ClaimCheckError(f"claim check {reference}: no such object ({code}); it expired or was "
                                      "deleted, and the event cannot be processed without it") from None
            raise
        digest = hashlib.sha256(body).hexdigest()
        if len(body) != reference.bytes or digest != reference.sha256:
            raise ClaimCheckError(f"claim check {reference}: the object does not match its reference "
                                  f"({len(body)} bytes, sha256 {digest}; the reference says {reference.bytes} "
                                  f"bytes, sha256 {reference.sha256})")
        try:
            original = read_json(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ClaimCheckError(f"claim check {reference}: the object is not JSON ({error})") from None
        except UnreadableJson as error:  # fails the same every time: never retried
            raise ClaimCheckError(f"claim check {reference}: the object is not readable JSON: {error}") from None
        if not isinstance(original, dict) or is_reference(original):
            raise ClaimCheckError(f"claim check {reference}: the object is not an event detail")
        disagree = sorted(name for name, value in detail.items()
                          if name != REFERENCE_FIELD and original.get(name) != value)
        if disagree:
            raise ClaimCheckError(f"claim check {reference}: the event's {', '.join(disagree)} disagree with "
                                  "the stored detail's")
        return original


def resolve_event(event: BusEvent, store: ClaimCheckStore | None) -> BusEvent:
    """``event`` with its full detail when it carries a claim-check reference (else ``event`` itself). The
    resolved event remembers its reference (``BusEvent.claim_check``)."""
    if not is_reference(event.detail):
        return event
    if store is None:
        reference = Reference.of(event.detail)
        raise ClaimCheckError(f"claim check {reference}: this function has no claim-check bucket "
                              "(CLAIM_CHECK_BUCKET) to resolve it from")
    resolved = event.model_copy(update={"detail": store.resolve(event.detail, event.source, event.detail_type)})
    resolved._claim_check = Reference.of(event.detail).to_json()
    return resolved
