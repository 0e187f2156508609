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
nine before it. Nothing relies on the order of records within a batch.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    BatchProcessor,
    EventType,
    async_process_partial_response,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel, ValidationError

from functions.common.claim_check import ClaimCheckError, ClaimCheckStore, resolve_event
from functions.common.dead_letters import TOO_DEEP, DeadLetterSink, PoisonMessage, failure_reason
from functions.common.digest import integral_floats_as_ints
from functions.common.models import BusEvent, describe_validation_error
from functions.common.observability import logger

Model = TypeVar("Model", bound=BaseModel)

RecordHandler = Callable[[BusEvent], None]


def parse_record(body: str) -> BusEvent:
    try:
        payload = json.loads(body)
    except json.JSONDecodeError as error:
        raise PoisonMessage(f"body is not JSON: {error.msg} at position {error.pos}") from None
    except RecursionError:  # as unreadable as malformed JSON, however often it is tried
        raise PoisonMessage(f"body is not readable JSON: {TOO_DEEP}") from None
    if not isinstance(payload, dict):
        raise PoisonMessage(f"body is not an EventBridge event: a JSON {type(payload).__name__}")
    try:
        return BusEvent.model_validate(payload)
    except ValidationError as error:
        raise PoisonMessage(f"not an EventBridge event: {describe_validation_error(error)}") from None


def workflow_id_of(event: BusEvent) -> str | None:
    detail = event.detail
    value = detail.get("workflow_id")
    return str(value) if value is not None else None


def consume(
    event: dict[str, Any],
    context: Any,
    handle: RecordHandler,
    dead_letters: DeadLetterSink | None,
    concurrency: int = 1,
    max_receive_count: int | None = None,
    claim_checks: ClaimCheckStore | None = None,
    unresolvable: Callable[[BusEvent, ClaimCheckError], None] | None = None,
    last: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """Process an SQS batch, one ``handle`` call per record; returns the partial batch response.

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
    """
    if max_receive_count is not None and max_receive_count < 1:
        raise ValueError(f"max_receive_count must be at least 1, got {max_receive_count}")

    def last_receive(record: SQSRecord) -> int | None:
        """The record's receive count if this is its last allowed receive (and we can keep it), else None."""
        if max_receive_count is None or dead_letters is None:
            return None
        try:
            receives = int(record.attributes.approximate_receive_count)
        except (TypeError, ValueError):
            return None  # unknown: leave it to SQS rather than dead-letter early
        return receives if receives >= max_receive_count else None

    def record_handler(record: SQSRecord) -> None:
        try:
            bus_event = parse_record(record.body)
            # Thread-local keys: records of one batch are handled in parallel threads.
            logger.thread_safe_append_keys(correlation_id=workflow_id_of(bus_event),
                                           detail_type=bus_event.detail_type, event_id=bus_event.id)
            try:
                resolved = resolve_event(bus_event, claim_checks)
            except ClaimCheckError as error:
                if unresolvable is None:
                    raise
                unresolvable(bus_event, error)
            else:
                handle(resolved)
        except (PoisonMessage, RecursionError) as poison:
            # RecursionError: data nested deeper than the code that walks it goes (read at a shallower stack than
            # the code that failed); it fails the same on every receive, so it is poison, not a transient failure.
            reason = str(poison) if isinstance(poison, PoisonMessage) else f"event {TOO_DEEP}: {poison}"
            logger.error("poison message kept in the dead-letter queue", extra={"reason": reason})
            if dead_letters is None:
                raise  # no sink configured: let the redrive policy move it after maxReceiveCount
            dead_letters.keep(record.body, reason, record.event_source_arn)
        except Exception as error:
            final = last_receive(record)
            if final is None or dead_letters is None:  # last_receive is None without a sink
                # Not poison, not its last receive: SQS delivers it again.
                receives = record.attributes.approximate_receive_count
                logger.warning("record failed; SQS will deliver it again", exc_info=True,
                               extra={"error": f"{type(error).__name__}: {error}", "receive_count": receives})
                raise
            reason = failure_reason(error, final, max_receive_count)
            try:
                dead_letters.keep(record.body, reason, record.event_source_arn)
            except Exception:
                logger.exception("record failed on its last receive and could not be dead-lettered; "
                                 "the redrive policy will move it without a reason", extra={"reason": reason})
                raise error from None
            logger.error("record failed on its last allowed receive; kept in the dead-letter queue with its reason",
                         exc_info=error, extra={"reason": reason, "receive_count": final})
        finally:
            logger.thread_safe_clear_keys()

    records = event.get("Records") or []
    if last is not None:
        picked = [_picked(last, r) for r in records]  # each body read once
        later = [r for r, is_last in zip(records, picked, strict=True) if is_last]
        if later and len(later) < len(records):
            first = [r for r, is_last in zip(records, picked, strict=True) if not is_last]
            responses = [consume({**event, "Records": part}, context, handle, dead_letters, concurrency,
                                 max_receive_count, claim_checks, unresolvable) for part in (first, later)]
            return {"batchItemFailures": [f for response in responses for f in response["batchItemFailures"]]}
    if concurrency <= 1 or len(records) <= 1:
        return cast(dict[str, Any], process_partial_response(  # a PartialItemFailureResponse TypedDict
            event=event,
            record_handler=record_handler,
            processor=BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False),
            context=context,
        ))
    with ThreadPoolExecutor(max_workers=min(concurrency, len(records)), thread_name_prefix="record") as pool:

        async def concurrent_record_handler(record: SQSRecord) -> None:
            await asyncio.get_running_loop().run_in_executor(pool, record_handler, record)

        return cast(dict[str, Any], async_process_partial_response(
            event=event,
            record_handler=concurrent_record_handler,
            processor=AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False),
            context=context,
        ))


def _picked(last: Callable[[str], bool], record: dict[str, Any]) -> bool:
    try:
        return bool(last(record.get("body") or ""))
    except Exception:  # an unreadable body is handled (and dead-lettered) with the others
        return False


def validate(model: type[Model], detail: dict[str, Any], name: str | None = None) -> Model:
    """Parse an event detail into its model; invalid detail is a poison message naming the bad fields (and the
    event as ``name`` says, e.g. its detail-type, else the model's class name)."""
    try:
        return model.model_validate(detail)
    except ValidationError as error:
        raise PoisonMessage(f"invalid {name or model.__name__}: {describe_validation_error(error)}") from None


def validate_trigger(model: type[Model], detail: dict[str, Any], name: str | None = None) -> Model:
    """``validate`` of a trigger's detail as its version is taken (``digest.integral_floats_as_ints``): ``1.0``
    and ``1`` are one version of a request, so they must get one verdict, whichever copy a consumer sees first
    (a strict ``int`` field refused ``1.0``: one agent acted, another dead-lettered, on the same version)."""
    return validate(model, integral_floats_as_ints(detail), name)
