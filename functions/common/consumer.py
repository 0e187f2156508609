"""The SQS side of every function: one batch in, partial batch failures out.

Each record is an EventBridge event delivered by a rule to the function's queue. A record that can
never be processed (not JSON, nested deeper than Python reads or processes, not an event, invalid detail) is
a poison message: it is kept in the function's dead-letter queue with its reason and acknowledged, so it is
neither lost nor retried forever. Any other exception fails only that record and SQS delivers it again; on
its last allowed receive (``ApproximateReceiveCount >= max_receive_count``, the queue's ``maxReceiveCount``)
the function keeps it in the dead-letter queue itself, with the last error's type and message as the reason,
and acknowledges it. The redrive policy stays as the backstop for what the function cannot report: a crash
or a timeout on the last receive, or a failure to send to the dead-letter queue (those arrive there without a
reason).

With ``concurrency > 1`` (the manifest's ``record_concurrency``, passed as RECORD_CONCURRENCY) the records
of a batch are processed concurrently, each in its own thread: an agent's work is mostly waiting on
downstream APIs, and processing a batch of ten one after the other would make the tenth request wait for the
nine before it. Nothing relies on the order of records within a batch, except that records ``last`` picks (the
coordinator's deadlines) are handled after the others.

Retry timing. A record returned in ``batchItemFailures`` becomes visible again only when its visibility timeout
runs out, and that is the queue's, 6 x the function's timeout (180 s for a 30 s function): longer than a
workflow's deadline may be (the access request's is 120 s), so one transient failure would time the request
out. With a ``RetryBackoff`` (every function of the manifest has one), a record that failed and will be
delivered again (not its last allowed receive, not kept in the dead-letter queue) is first given a shorter
visibility with ``ChangeMessageVisibility``: a capped exponential back-off with full jitter on its
``ApproximateReceiveCount`` n, a whole number of seconds drawn uniformly in
``[RETRY_MIN_S, min(RETRY_CAP_S, RETRY_BASE_S * 2 ** (n - 1))]``: at most 2, 4, 8, 16 s after receives 1 to 4, so
with the default ``maxReceiveCount`` of 5 a record that always fails reaches its last receive within about
30 s (15 s on average), and the records of many failing functions do not come back in lockstep. The 6x
visibility timeout stays the backstop for what the function cannot report: a crash or a timeout of the
invocation; so that a stalled AWS call does not time the invocation out, the functions' clients give up on it
within ``clients.CALL_BOUND_S`` (``functions/common/clients.py``). Changing the visibility is best effort: when
it fails (the queue's URL or the call refused, the receipt handle no longer valid) that is logged and the record
comes back after the visibility timeout, as before; the batch's response is the same either way. (The local
runtime sets a failed message's visibility to ``RuntimeOptions.retry_after_s`` once the handler has returned;
its call comes last, so locally that wins.)

Running out of time. Each call is bounded, a batch is not: ten records handled one after the other, each slowed
to seconds by a dependency's brownout, would time the invocation out, and every record of the batch, handled or
not, would come back only after the visibility timeout. So a record is not started when the invocation has less
time left than the longest record of the invocation took so far plus ``START_MARGIN_MS``: it fails at once
(``OutOfTime``) and gets its back-off like any failed record. The first record always starts, and so does one on
its last allowed receive (it has no other chance): a batch's records with the most receives are handled first.

Every log line written while a record is handled carries its ``correlation_id``: the request's id. ``consume``
takes it from ``correlation`` (``correlation_of(manifest)`` for every function of a manifest: a trigger's id
field as its workflow names it, else the ``workflow_id`` results, deadlines, cancels and outcomes carry).
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    BatchProcessor,
    EventType,
    async_process_partial_response,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel, ValidationError

from functions.common.backoff import backoff_ceiling
from functions.common.claim_check import ClaimCheckError, ClaimCheckStore, resolve_event
from functions.common.dead_letters import (
    KEEP_VISIBILITY_MARK,
    TOO_DEEP,
    DeadLetterSink,
    PoisonMessage,
    UnreadableJson,
    failure_reason,
    read_json,
)
from functions.common.models import BusEvent, describe_validation_error
from functions.common.observability import logger

if TYPE_CHECKING:
    from functions.common.spec import Manifest

Model = TypeVar("Model", bound=BaseModel)

RecordHandler = Callable[[BusEvent], None]
Correlation = Callable[[BusEvent], "str | None"]

# A failed record's next delivery (module docstring, retry timing): full jitter under a ceiling that doubles
# from RETRY_BASE_S with each receive, up to RETRY_CAP_S; never sooner than RETRY_MIN_S (0 would make it
# visible at once, while this invocation still runs).
RETRY_BASE_S = 2
RETRY_CAP_S = 60
RETRY_MIN_S = 1
# A correlation id longer than this is cut: it is repeated on every log line of the record.
MAX_CORRELATION_CHARS = 256
# Time kept, beyond the longest record so far, for failing the records not started (their back-off calls).
START_MARGIN_MS = 2000


class OutOfTime(Exception):
    """A record not started: the invocation had too little time left (module docstring, running out of time)."""


def parse_record(body: str) -> BusEvent:
    try:
        payload = read_json(body)
    except json.JSONDecodeError as error:
        raise PoisonMessage(f"body is not JSON: {error.msg} at position {error.pos}") from None
    except UnreadableJson as error:  # as unreadable as malformed JSON, however often it is tried
        raise PoisonMessage(f"body is not readable JSON: {error}") from None
    if not isinstance(payload, dict):
        raise PoisonMessage(f"body is not an EventBridge event: a JSON {type(payload).__name__}")
    try:
        return BusEvent.model_validate(payload)
    except ValidationError as error:
        raise PoisonMessage(f"not an EventBridge event: {describe_validation_error(error)}") from None


def _correlation_value(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None  # not an id (a request refused for it still gets its lines, without one)
    return str(value)[:MAX_CORRELATION_CHARS] or None


def workflow_id_of(event: BusEvent) -> str | None:
    """``detail.workflow_id``: what results, deadlines, cancels and outcomes carry."""
    return _correlation_value(event.detail.get("workflow_id"))


def correlation_of(manifest: Manifest) -> Correlation:
    """The request's id of an event, as the manifest names it: for a trigger (an event some workflow's trigger
    matches by source and detail-type) the value of that workflow's id field (its ``Trigger.id_field``),
    else ``detail.workflow_id``."""

    def correlation(event: BusEvent) -> str | None:
        for id_field in manifest.trigger_id_fields(event.source, event.detail_type):
            value = _correlation_value(event.detail.get(id_field))
            if value is not None:
                return value
        return workflow_id_of(event)

    return correlation


@dataclass
class RetryBackoff:
    """Gives a failed record that SQS will deliver again a capped exponential back-off with full jitter
    (module docstring, retry timing) instead of the queue's whole visibility timeout.

    ``sqs`` is the function's SQS client; its endpoint (AWS's, or the local one) gives the queue's URL for the
    record's ``eventSourceARN`` (``GetQueueUrl``, once per queue and execution environment)."""

    sqs: Any
    base_s: int = RETRY_BASE_S
    cap_s: int = RETRY_CAP_S
    min_s: int = RETRY_MIN_S
    uniform: Callable[[float, float], float] = random.uniform
    _queue_urls: dict[str, str] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def ceiling_s(self, receives: int) -> int:
        """The longest back-off after receive ``receives`` (1 for the first)."""
        return max(self.min_s, int(backoff_ceiling(receives, self.base_s, self.cap_s)))

    def seconds(self, receives: int) -> int:
        """A visibility timeout drawn in ``[min_s, ceiling_s(receives)]``: full jitter, whole seconds."""
        ceiling = self.ceiling_s(receives)
        return max(self.min_s, min(ceiling, round(self.uniform(0, ceiling))))

    def queue_url(self, queue_arn: str) -> str:
        """The URL of the queue ``queue_arn`` names, asked of ``sqs``'s endpoint once, then remembered."""
        with self._lock:
            known = self._queue_urls.get(queue_arn)
        if known is not None:
            return known
        parts = (queue_arn or "").split(":")
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs" or not parts[5]:
            raise ValueError(f"not an SQS queue ARN: {queue_arn!r}")
        account, name = parts[4], parts[5]
        arguments = {"QueueName": name, **({"QueueOwnerAWSAccountId": account} if account else {})}
        url = str(self.sqs.get_queue_url(**arguments)["QueueUrl"])
        with self._lock:
            self._queue_urls[queue_arn] = url
        return url

    def delay(self, record: SQSRecord, receives: int) -> int | None:
        """Make ``record`` visible again in ``seconds(receives)``; returns them, or None (logged) if SQS refused
        or could not be asked: the record then comes back after the queue's visibility timeout. Never raises."""
        seconds = self.seconds(receives)
        try:
            self.sqs.change_message_visibility(QueueUrl=self.queue_url(record.event_source_arn),
                                               ReceiptHandle=record.receipt_handle, VisibilityTimeout=seconds)
        except Exception as error:
            logger.warning("could not shorten the failed record's visibility; it comes back after the queue's "
                           "visibility timeout", extra={"error": f"{type(error).__name__}: {error}",
                                                        "receive_count": receives, "back_off_s": seconds})
            return None
        return seconds


class InvocationTime:
    """Whether the invocation (its Lambda ``context``) has time left for another record: at least the longest record
    it has handled so far took, plus ``START_MARGIN_MS`` (module docstring, running out of time)."""

    def __init__(self, context: Any) -> None:
        self._remaining_ms: Callable[[], int] | None = getattr(context, "get_remaining_time_in_millis", None)
        self._longest_ms = 0.0
        self._lock = threading.Lock()

    def refuse_if_short(self) -> None:
        """Raises ``OutOfTime`` when too little time is left; the first record always starts."""
        with self._lock:
            longest = self._longest_ms
        if not longest or self._remaining_ms is None:
            return
        left = self._remaining_ms()
        if not isinstance(left, int | float) or isinstance(left, bool):
            return  # a test's stand-in context (a MagicMock): no time to go by
        if left < longest + START_MARGIN_MS:
            raise OutOfTime(f"not started: {left} ms left in the invocation, and its longest record took "
                            f"{longest:.0f} ms")

    def timed(self, handle: Callable[[SQSRecord], None], record: SQSRecord) -> None:
        """``handle(record)``, its time counted toward the longest (failed or not)."""
        started = time.monotonic()
        try:
            handle(record)
        finally:
            took = (time.monotonic() - started) * 1000
            with self._lock:
                self._longest_ms = max(self._longest_ms, took, 1.0)


@dataclass(frozen=True)
class QueueConsumer:
    """How a function consumes its queue: one ``handle`` call per record of a batch; ``consume`` runs a batch.

    ``last(body)``: records it picks are handled after the batch's others are done (the coordinator's deadlines:
    an answer sent before the deadline and read in the same batch as the deadline's event must be counted first,
    not race it; black-box pass 9D, F10).

    An event whose detail is a claim-check reference is resolved from ``claim_checks`` (the stack's bucket)
    before ``handle`` sees it, so every consumer validates and handles the full detail; a reference that can
    never be resolved is a poison message naming it (``claim_check.ClaimCheckError``), unless ``unresolvable``
    takes the event as it came, with the error (the coordinator: a trigger it cannot read still ends REJECTED).

    ``max_receive_count``: the queue's redrive ``maxReceiveCount``. When given (with a ``dead_letters``
    sink), a record failing on that receive is dead-lettered with its error as the reason and acknowledged;
    None leaves every failure to SQS's retries and redrive policy.

    ``backoff``: a failed record SQS will deliver again (not on its last allowed receive) comes back after its
    back-off rather than the queue's visibility timeout (module docstring, retry timing); None: the latter.

    ``correlation(event)``: the ``correlation_id`` of every log line written while the record is handled.
    """

    handle: RecordHandler
    dead_letters: DeadLetterSink | None
    concurrency: int = 1
    max_receive_count: int | None = None
    claim_checks: ClaimCheckStore | None = None
    unresolvable: Callable[[BusEvent, ClaimCheckError], None] | None = None
    last: Callable[[str], bool] | None = None
    backoff: RetryBackoff | None = None
    correlation: Correlation = workflow_id_of

    def __post_init__(self) -> None:
        if self.max_receive_count is not None and self.max_receive_count < 1:
            raise ValueError(f"max_receive_count must be at least 1, got {self.max_receive_count}")

    def consume(self, event: dict[str, Any], context: Any,
                time_left: InvocationTime | None = None) -> dict[str, Any]:
        """The partial batch response to an SQS batch. ``time_left``: the invocation's (one is made from
        ``context`` when not given): a record is not started when too little of it is left (module docstring,
        running out of time), but for one on its last allowed receive, which has no other chance; the records
        with the most receives are handled first."""
        clock = time_left if time_left is not None else InvocationTime(context)
        # The records with the most receives first: they have the fewest chances left if time runs out.
        records = sorted(event.get("Records") or [], key=lambda r: -(_receive_count(SQSRecord(r)) or 0))
        if self.last is not None:
            picked = [_picked(self.last, r) for r in records]  # each body read once
            later = [r for r, is_last in zip(records, picked, strict=True) if is_last]
            if later and len(later) < len(records):
                first = [r for r, is_last in zip(records, picked, strict=True) if not is_last]
                failures = [failure for part in (first, later)
                            for failure in self._run({**event, "Records": part}, context, clock)["batchItemFailures"]]
                return {"batchItemFailures": failures}
        return self._run({**event, "Records": records}, context, clock)

    def _run(self, event: dict[str, Any], context: Any, clock: InvocationTime) -> dict[str, Any]:
        """Every record of ``event``, through Powertools' batch processor: one after the other, or each in a thread
        of its own with ``concurrency > 1``."""

        def record_handler(record: SQSRecord) -> None:
            self._handle_record(record, clock)

        records = event["Records"]
        if self.concurrency <= 1 or len(records) <= 1:
            return cast(dict[str, Any], process_partial_response(  # a PartialItemFailureResponse TypedDict
                event=event,
                record_handler=record_handler,
                processor=BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False),
                context=context,
            ))
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(records)), thread_name_prefix="record") as pool:

            async def concurrent_record_handler(record: SQSRecord) -> None:
                await asyncio.get_running_loop().run_in_executor(pool, record_handler, record)

            return cast(dict[str, Any], async_process_partial_response(
                event=event,
                record_handler=concurrent_record_handler,
                processor=AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False),
                context=context,
            ))

    def _handle_record(self, record: SQSRecord, clock: InvocationTime) -> None:
        """One record, timed; a failure SQS will deliver again gets its back-off first."""
        try:
            clock.timed(lambda timed: self._process(timed, clock), record)
        except Exception as error:
            # It fails: SQS delivers it again, unless this was its last allowed receive (the redrive policy
            # moves it then, and a shorter visibility would only hurry that).
            if (self.backoff is not None and self._final_receive(record) is None
                    and not getattr(error, KEEP_VISIBILITY_MARK, False)):
                self.backoff.delay(record, _receive_count(record) or 1)
            raise
        finally:
            logger.thread_safe_clear_keys()

    def _process(self, record: SQSRecord, clock: InvocationTime) -> None:
        """Parses, resolves and handles the record; a poison message, or a failure on the record's last allowed
        receive, is kept in the dead-letter queue with its reason and acknowledged; any other failure is raised."""
        try:
            if self._final_receive(record) is None:
                clock.refuse_if_short()
            bus_event = parse_record(record.body)
            # Thread-local keys: records of one batch are handled in parallel threads. A claim-check reference
            # keeps every workflow's id field, so the correlation id is known before it is resolved.
            logger.thread_safe_append_keys(correlation_id=self.correlation(bus_event),
                                           detail_type=bus_event.detail_type, event_id=bus_event.id)
            try:
                resolved = resolve_event(bus_event, self.claim_checks)
            except ClaimCheckError as error:
                if self.unresolvable is None:
                    raise
                self.unresolvable(bus_event, error)
            else:
                self.handle(resolved)
        except (PoisonMessage, RecursionError, UnreadableJson) as poison:
            # RecursionError: data nested deeper than the code that walks it goes (read at a shallower stack than
            # the code that failed); UnreadableJson: stored JSON the handler reads back (a record's trigger) that
            # Python does not read (21E M1). Each fails the same on every receive: poison, not a transient failure.
            if isinstance(poison, PoisonMessage):
                reason = str(poison)
            elif isinstance(poison, UnreadableJson):
                reason = f"data the event needs holds JSON Python does not read: {poison}"
            else:
                reason = f"event {TOO_DEEP}: {poison}"
            self._keep_poison(record, reason, poison)
        except Exception as error:
            self._keep_if_final(record, error)

    def _keep_poison(self, record: SQSRecord, reason: str, poison: Exception) -> None:
        """A poison message is kept with its reason; without a sink ``poison`` is raised (the redrive policy moves
        the record after ``maxReceiveCount``)."""
        if self.dead_letters is None:
            logger.error("poison message; no dead-letter sink, SQS will retry it until its redrive policy "
                         "moves it", extra={"reason": reason})
            raise poison
        try:
            self.dead_letters.keep(record.body, reason, record.event_source_arn)
        except Exception:
            logger.exception("poison message could not be dead-lettered; SQS will retry it", extra={"reason": reason})
            raise
        logger.error("poison message kept in the dead-letter queue", extra={"reason": reason})

    def _keep_if_final(self, record: SQSRecord, error: Exception) -> None:
        """A failed record on its last allowed receive is kept with its reason; otherwise ``error`` is raised
        (SQS delivers it again)."""
        final = self._final_receive(record)
        if final is None or self.dead_letters is None:
            receives = record.attributes.approximate_receive_count
            logger.warning("record failed; SQS will deliver it again", exc_info=error,
                           extra={"error": f"{type(error).__name__}: {error}", "receive_count": receives})
            raise error
        reason = failure_reason(error, final, self.max_receive_count)
        try:
            self.dead_letters.keep(record.body, reason, record.event_source_arn)
        except Exception:
            logger.exception("record failed on its last receive and could not be dead-lettered; "
                             "the redrive policy will move it without a reason", extra={"reason": reason})
            raise error from None
        logger.error("record failed on its last allowed receive; kept in the dead-letter queue with its reason",
                     exc_info=error, extra={"reason": reason, "receive_count": final})

    def _final_receive(self, record: SQSRecord) -> int | None:
        """The record's receive count if this is its last allowed receive, else None (also when unknown: left to
        SQS rather than dead-lettered early)."""
        receives = _receive_count(record)
        if self.max_receive_count is None or receives is None:
            return None
        return receives if receives >= self.max_receive_count else None


def consume(event: dict[str, Any], context: Any, handle: RecordHandler, dead_letters: DeadLetterSink | None,
            concurrency: int = 1, max_receive_count: int | None = None, claim_checks: ClaimCheckStore | None = None,
            unresolvable: Callable[[BusEvent, ClaimCheckError], None] | None = None,
            last: Callable[[str], bool] | None = None, backoff: RetryBackoff | None = None,
            correlation: Correlation = workflow_id_of, time_left: InvocationTime | None = None) -> dict[str, Any]:
    """Process an SQS batch, one ``handle`` call per record; returns the partial batch response
    (``QueueConsumer``, whose fields the other arguments are)."""
    consumer = QueueConsumer(handle, dead_letters, concurrency, max_receive_count, claim_checks, unresolvable, last,
                             backoff, correlation)
    return consumer.consume(event, context, time_left)


def _receive_count(record: SQSRecord) -> int | None:
    """The record's ``ApproximateReceiveCount``; None when it has none that reads as a number."""
    try:
        return int(record.attributes.approximate_receive_count)
    except (KeyError, TypeError, ValueError):
        return None


def _picked(last: Callable[[str], bool], record: dict[str, Any]) -> bool:
    try:
        return bool(last(record.get("body") or ""))
    except Exception:  # an unreadable body is handled (and dead-lettered) with the others
        return False


