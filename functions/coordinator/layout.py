"""The workflow table's layout: how one workflow is laid out in items and attributes, the names of its sort keys and
attributes, and what a result slot and an outcome store of what the coordinator built (``compact_slot``,
``compact_outcome``) and read back (``expand_slot``, ``expand_outcome``). ``store.py`` writes it, ``reads.py`` reads it.

Workflow table, partition key ``workflow_id`` (S) and sort key ``workflow`` (S). A workflow is a small **header**
item (sort key: the manifest's workflow name) and an **item per result** beside it (sort key
``<workflow>#result#<agent>#<version>``), so two workflows may use the same id, and what a write costs does not
depend on how many results came before it or how big they are (issue 15):

- a result is written twice: its own item first (once per agent and trigger version, ``attribute_not_exists``),
  then a *summary* into its slot of the header: the conditional write that counts it and bumps ``version``, as
  before. A header summary therefore always has its item; an item without a summary (a crash between the two,
  or refused by the header) counts for nothing, and the redelivery completes the pair;
- every decision is made from the header: the summaries hold what deciding needs (version, outcome,
  detail-type, whom the result asks for). The finish reads the whole record (one Query: header and items),
  decides again on it, builds the outcome and writes it into the header conditioned on the ``version`` it read:
  one winner, and its outcome matches the record it was decided from (faults 3, 9);
- a trigger up to ``TRIGGER_INLINE_BYTES`` is kept in the header; a larger one (up to
  ``MAX_STORED_TRIGGER_BYTES``) in its own item ``<workflow>#trigger#<version>``, written before the header;
- an entry kept aside (a late result, a second answer, a late cancel) is a marker in the header (its reason and
  time: the once-per-event, at-most-``MAX_LATE`` condition; an agent's result is kept once per version), written
  after an item ``<workflow>#late_<agent>~<e>`` with the whole entry.

A write of the header costs its size (a few hundred bytes plus a summary per answered agent); a result's item
costs the result's size, once. The old layout (one item rewritten whole on every update) cost the square of the
number of agents.

Header attributes:

=========================  ====  ===================================================================
attribute                  type  meaning
=========================  ====  ===================================================================
``workflow_id``            S     the workflow id (the value of the trigger's ``Trigger.id_field``)
``workflow``               S     the manifest's workflow name
``status``                 S     ``RUNNING`` | ``COMPLETED`` | ``REJECTED`` | ``TIMED_OUT`` | ``CANCELLED``
``version``                N     +1 on every write that can change the decision (trigger, result, cancel);
                                 the finish is conditional on it, so an outcome always matches its record
``trigger``                S     the trigger's detail as received, as JSON text (even when invalid: text
                                 keeps what a DynamoDB number or map could not), when at most
                                 ``TRIGGER_INLINE_BYTES``; absent when larger than ``MAX_STORED_TRIGGER_BYTES``
                                 (its error says so)
``trigger_apart``          BOOL  the trigger's text is in the item ``<workflow>#trigger#<trigger_digest>``
``trigger_digest``         S     the trigger's version (``functions.common.digest``); set once, by the
                                 first trigger delivery (``attribute_not_exists``): the record's version
``trigger_error``          S     why the trigger detail is invalid (names the bad fields); absent if valid
``trigger_received_at``    S     when the coordinator first received the trigger (ISO-8601 UTC, ms)
``trigger_event_id``       S     the id of that first trigger event
``placed_at``              S     when the request was placed (the trigger event's time)
``deadline_at``            S     when the deadline schedule fires; set by whatever opened the record, moved
                                 out (never in) when an external agent is asked for
``schedule_name``          S     the EventBridge Scheduler schedule (in the settings' schedule group);
                                 absent when it is the derived ``deadlines.schedule_name(workflow, id, workflows)``
``result_<agent>``         M     the summary of that agent's counted result: ``trigger_digest``, ``outcome``,
                                 ``detail_type`` (and ``asks_for`` with ``received_at`` when it asks); its
                                 item ``<workflow>#result#<agent>#<trigger_digest>`` holds the ``AgentResult``
                                 detail plus ``detail_type``, ``event_id``, ``received_at``, stored compact:
                                 ``workflow``, ``workflow_id``, ``agent`` and ``idempotency_key`` are left out
                                 when they equal what the key gives, and put back on reading. Written once
                                 while RUNNING, or overwritten once by a result of the stored version when it
                                 holds another version's result
``result_<agent>@<v>``      M     the summary of a result that arrived before the trigger for version ``v``
                                 while the slot held another version's: kept beside it, counted if ``v`` is
                                 the trigger's (at most ``MAX_REFUSED_VERSIONS``; ``alternative_count``)
``late_<agent>~<e>``       M     kept aside, decides nothing: ``late_reason``, ``event_id``, ``received_at``
                                 (the entry itself in the item ``<workflow>#late_<agent>~<e>``): a result after the
                                 finish, or an external agent's second answer; ``<e>`` a digest of its event
                                 id (one entry per event); ``late_@cancel~<e>``: a cancel that came after the
                                 finish (at most ``MAX_LATE`` entries, ``late_count``)
``cancel_request``         M     the cancel written while the workflow ran: ``by``, ``reason``, ``event_id``,
                                 ``received_at``; set once, bumps ``version``: the finish decides CANCELLED
``refused_<digest>``       M     another version of the trigger, refused: ``event_id``, ``received_at``
``refusal_count``          N     how many are kept (at most ``MAX_REFUSED_VERSIONS``)
``outcome``                M     the ``WorkflowOutcome`` detail, stored by the finish without what can be
                                 derived: ``workflow``, ``workflow_id``, the workflow's id field and
                                 ``idempotency_key`` (from the key), its ``results`` (the counted results'
                                 items, by name when stored), and, for a workflow whose trigger was in when it
                                 finished, every field the final record gives again exactly
                                 (``derived_outcome``: status, reason, the results' names, missing, timings,
                                 quorum): such a record no longer changes (slots are written only while it
                                 runs, the trigger's version and time once, an item once), so an order's stored
                                 outcome is usually empty. Reading puts the detail back together, always in the
                                 same key order, so every publication sends exactly the detail the finish built
``reason``                 S     why the workflow was rejected or timed out
``finished_at``            S     when the finish won
``published``              BOOL  the outcome event was accepted by EventBridge
``published_at``           S
``projection_error``       S     why the main table's row could not be written (the projection failed on this
                                 record, or DynamoDB refused the row); the outcome was published without it
``publish_lease_until``    N     epoch ms until which ``publish_lease_owner`` may publish; a final,
``publish_lease_owner``    S     unpublished record with an expired lease is published by the next message
=========================  ====  ===================================================================

Numbers are stored as DynamoDB numbers and read back as ``int`` or ``float``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from functions.common.ids import result_idempotency_key
from functions.common.models import AgentResult, WorkflowOutcome
from functions.common.storable import MAX_DETAIL_BYTES

# The workflow table's sort key: a header's is the workflow's name; every other item of the workflow is named
# ``<workflow>#<part>#...`` (names are ``[a-z0-9-]``, so ``#`` only ever separates, and ``<workflow>$`` ends the
# range of one workflow's items: ``$`` sorts right after ``#``).
SORT_KEY = "workflow"
ITEM_MARK = "#"
ITEM_RANGE_END = "$"
RESULT_PART = "result"
TRIGGER_PART = "trigger"
# An item's payload: a result (or late entry) as a map, a trigger as its JSON text.
RESULT_ATTRIBUTE = "result"
TRIGGER_ATTRIBUTE = "text"
# A header attribute: the trigger's text is in its own item (larger than ``TRIGGER_INLINE_BYTES``).
TRIGGER_APART = "trigger_apart"
# A trigger up to this size is kept in the header (one write less per request); a larger one in its own item.
TRIGGER_INLINE_BYTES = 1024
# What a result slot of the header keeps of the result (its item keeps all of it): what deciding needs.
SUMMARY_KEYS = ("trigger_digest", "outcome", "detail_type")
RESULT_PREFIX = "result_"
# ``result_<agent>@<version>``: a result received before the trigger, for another version than its slot holds.
VERSION_MARK = "@"
LATE_PREFIX = "late_"
LATE_MARK = "~"
CANCEL_LATE = "@cancel"
LATE_COUNT = "late_count"
CANCEL_REQUEST = "cancel_request"
PROJECTION_ERROR = "projection_error"
# Entries kept aside per record: a flood of late answers cannot grow it further.
MAX_LATE = 20
# Conflicting trigger versions kept in a record (each ~200 bytes): a flood of versions cannot grow it further.
MAX_REFUSED_VERSIONS = 10
REFUSED_PREFIX = "refused_"
# Shares the prefix: it is the counter, not a refused version (which reads back as a map).
REFUSED_COUNT = "refusal_count"  # not a refused_<digest> version, though near it
# The trigger kept in the record (in its own item over ``TRIGGER_INLINE_BYTES``): larger ones are refused at
# validation (functions.common.storable, the same bound) and only their digest and error are kept, so the trigger's
# item stays far below DynamoDB's 400 KB item limit.
MAX_STORED_TRIGGER_BYTES = MAX_DETAIL_BYTES


def result_sort_key(workflow: str, agent: str, version: str) -> str:
    return ITEM_MARK.join((workflow, RESULT_PART, agent, version))


def trigger_sort_key(workflow: str, version: str) -> str:
    return ITEM_MARK.join((workflow, TRIGGER_PART, version))


def late_sort_key(workflow: str, name: str) -> str:
    """The item of a kept-aside entry whose header marker is ``name`` (``late_key``)."""
    return ITEM_MARK.join((workflow, name))


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """A result slot's summary in the header: its version, outcome and detail-type, and whom it asks for (with
    when it arrived): enough to decide, small and of a bounded size whatever the result holds."""
    kept = {key: result[key] for key in SUMMARY_KEYS if key in result}
    if result.get("asks_for"):
        kept.update(asks_for=result["asks_for"], received_at=result.get("received_at"))
    return kept


def late_key(agent: str | None, once_per: str) -> str:
    """The header marker of an entry kept aside: once per ``once_per``, its event id, or ``per_version`` for an
    agent's result (kept once per version, however often it is published)."""
    return f"{LATE_PREFIX}{agent or CANCEL_LATE}{LATE_MARK}{hashlib.sha256(once_per.encode()).hexdigest()[:12]}"


def per_version(version: str) -> str:
    """What ``late_key`` keeps an agent's result once per, for ``version``: apart from every event id (a UUID or an
    id of EventBridge's, never with this prefix)."""
    return f"version {version}"


# The key order of a result slot and of an outcome as the coordinator builds them (``logic.Coordinator.on_result``,
# ``outcome.build_outcome``): reading puts elided fields back in this order.
SLOT_KEYS = (*AgentResult.model_fields, "detail_type", "event_id", "received_at")
OUTCOME_KEYS = tuple(WorkflowOutcome.model_fields)


def _slot_defaults(workflow_id: str, agent: str, workflow: str, version: Any) -> dict[str, str]:
    return {"workflow": workflow, "workflow_id": workflow_id, "agent": agent,
            "idempotency_key": result_idempotency_key(workflow_id, agent, str(version) if version else None)}


def _outcome_defaults(workflow_id: str, status: Any, workflow: str, id_field: str) -> dict[str, str]:
    return {"workflow": workflow, "workflow_id": workflow_id, "idempotency_key": f"{workflow_id}:{status}",
            id_field: workflow_id}


def _elide(value: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``value`` without the fields that equal what can be derived again (``defaults``)."""
    return {key: item for key, item in value.items() if not (key in defaults and item == defaults[key])}


def _restore(stored: dict[str, Any], defaults: dict[str, Any], order: tuple[str, ...],
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The value ``_elide`` was given: elided fields back, known keys in ``order``, unknown ones after."""
    source = {**defaults, **(extra or {}), **stored}
    restored = {key: source[key] for key in order if key in source}
    restored.update((key, item) for key, item in stored.items() if key not in restored)
    return restored


def compact_slot(workflow_id: str, agent: str, result: dict[str, Any], workflow: str) -> dict[str, Any]:
    """What a ``result_<agent>`` / ``late_<agent>`` slot stores of a result."""
    return _elide(result, _slot_defaults(workflow_id, agent, workflow, result.get("trigger_digest")))


def expand_slot(workflow_id: str, agent: str, stored: dict[str, Any], workflow: str) -> dict[str, Any]:
    return _restore(stored, _slot_defaults(workflow_id, agent, workflow, stored.get("trigger_digest")), SLOT_KEYS)


def compact_outcome(workflow_id: str, outcome: dict[str, Any], workflow: str, id_field: str,
                    derived: dict[str, Any] | None = None) -> dict[str, Any]:
    """What ``outcome`` stores of a ``WorkflowOutcome`` detail: its results by agent name only (their items hold
    them), no derivable ids, and none of the fields that equal what the final record gives again (``derived``:
    ``outcome.derived_outcome``)."""
    stored = {key: (sorted(item) if key == "results" else item) for key, item in outcome.items()}
    stored = _elide(stored, _outcome_defaults(workflow_id, outcome.get("status"), workflow, id_field))
    return _elide(stored, derived or {})


def expand_outcome(workflow_id: str, stored: dict[str, Any], slots: dict[str, dict[str, Any]],
                   workflow: str, id_field: str, derived: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``WorkflowOutcome`` detail back from its stored part, the record's result slots (those it named: a
    trigger that arrives after the finish must not change a published outcome) and what the final record gives
    (``derived``)."""
    source = {**(derived or {}), **stored}
    names = source.get("results") or []
    results = {name: slots[name] for name in sorted(names) if name in slots}
    return _restore({**source, "results": results},
                    _outcome_defaults(workflow_id, source.get("status"), workflow, id_field),
                    (*OUTCOME_KEYS, "quorum", id_field))

