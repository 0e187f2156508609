"""The coordinator's aggregation rules, as plain Python (no AWS, no moto)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from functions.common.models import MAX_OUTCOME_REASON_CHARS, MAX_REASON_CHARS, BusEvent, WorkflowOutcome
from functions.coordinator.deadlines import schedule_name
from functions.coordinator.logic import PUBLISH_LEASE_MARGIN_S, PUBLISH_LEASE_S, Coordinator, publish_lease_s
from functions.coordinator.outcome import build_outcome, finished_workflow, timings
from functions.coordinator.record import DEADLINE_REASON, NO_TRIGGER_REASON, WorkflowRecord, decide
from functions.coordinator.times import ceil_to_second, epoch_ms, placed_at
from functions.manifest import Agent, Outcome, ResultType, WorkflowStatus
from functions.orders.projection import order_item
from tests.conftest import load_detail
from tests.pinned import MANIFEST  # the shipped workflows with the agents these tests name (not any a user adds)

WORKFLOW = MANIFEST.workflow("order-fulfillment")
ORDER = load_detail("order-placed.json")
COMPLETED, REJECTED, TIMED_OUT = WorkflowStatus.COMPLETED, WorkflowStatus.REJECTED, WorkflowStatus.TIMED_OUT


VERSION = "v1"


def res(agent: str, ok: bool = True, started_at: str = "2026-11-26T11:07:08.200Z", duration_ms: float = 100,
        version: str = VERSION) -> dict:
    return {
        "agent": agent, "outcome": "success" if ok else "failure", "reason": None if ok else f"{agent} said no",
        "detail_type": "x", "started_at": started_at, "duration_ms": duration_ms, "trigger_digest": version,
    }


def record(*results: dict, trigger: bool = True, **fields) -> WorkflowRecord:
    return WorkflowRecord(
        workflow_id="ord-1001", workflow=WORKFLOW.name,
        trigger=dict(ORDER) if trigger else None,
        trigger_digest=VERSION if trigger else None,
        trigger_received_at="2026-11-26T11:07:08.123Z" if trigger else None,
        results={r["agent"]: r for r in results}, **fields,
    )


# --- the required set -------------------------------------------------------------------------------

def test_required_set_is_every_agent_of_the_manifest():
    assert WORKFLOW.required_agents == {"fraud", "inventory", "shipping"}


def test_open_until_every_required_agent_succeeded():
    assert decide(record(), WORKFLOW) is None
    assert decide(record(res("fraud"), res("inventory")), WORKFLOW) is None
    decision = decide(record(res("fraud"), res("inventory"), res("shipping")), WORKFLOW)
    assert decision is not None and decision.status is COMPLETED and decision.reason is None
    assert decision.missing == ()


def test_all_successes_without_the_trigger_do_not_complete():
    assert decide(record(res("fraud"), res("inventory"), res("shipping"), trigger=False), WORKFLOW) is None


def test_optional_agent_neither_blocks_nor_rejects():
    optional = Agent(name="loyalty", handler="x", source="agentbus.agent.loyalty", subscriptions=(),
                     results=(ResultType("Points Added", Outcome.SUCCESS), ResultType("No Points", Outcome.FAILURE)),
                     required=False)
    workflow = replace(WORKFLOW, agents=(*WORKFLOW.agents, optional))
    assert "loyalty" not in workflow.required_agents
    done = record(res("fraud"), res("inventory"), res("shipping"))
    assert decide(done, workflow).status is COMPLETED
    assert decide(record(res("fraud"), res("inventory"), res("shipping"), res("loyalty", ok=False)),
                  workflow).status is COMPLETED


# --- failure wins -----------------------------------------------------------------------------------

def test_failure_rejects_at_once_with_its_reason():
    decision = decide(record(res("inventory", ok=False)), WORKFLOW)
    assert decision.status is REJECTED and decision.reason == "inventory: inventory said no"
    assert decision.missing == ("fraud", "shipping")


def test_failure_wins_over_successes_and_over_the_deadline():
    mixed = record(res("fraud"), res("inventory"), res("shipping", ok=False))
    assert decide(mixed, WORKFLOW).status is REJECTED
    assert decide(mixed, WORKFLOW, deadline_reached=True).status is REJECTED


def test_nothing_is_decided_before_the_trigger_not_even_a_failure():
    # A failure may be for another version of the request than the one the trigger will bring.
    assert decide(record(res("fraud", ok=False), trigger=False), WORKFLOW) is None


def test_deadline_without_the_trigger_times_out_saying_so():
    decision = decide(record(res("fraud"), trigger=False), WORKFLOW, deadline_reached=True)
    assert decision.status is TIMED_OUT and decision.reason == NO_TRIGGER_REASON
    assert decision.missing == ("fraud", "inventory", "shipping")


def test_only_results_of_the_stored_version_count():
    other = record(res("fraud"), res("inventory"), res("shipping", version="v2"))
    assert set(other.counted_results) == {"fraud", "inventory"}
    assert decide(other, WORKFLOW) is None  # shipping's result is for another version
    flagged_elsewhere = record(res("fraud", ok=False, version="v2"), res("inventory"), res("shipping"))
    assert decide(flagged_elsewhere, WORKFLOW) is None
    timed_out = decide(other, WORKFLOW, deadline_reached=True)
    assert timed_out.status is TIMED_OUT and timed_out.missing == ("shipping",)
    rec = record(res("fraud"), res("inventory"), res("shipping", version="v2"))
    outcome = build_outcome(rec, WORKFLOW, timed_out, datetime(2026, 11, 26, 11, 7, 9, tzinfo=UTC))
    assert list(outcome["results"]) == ["fraud", "inventory"]


def test_several_failures_name_each_agent_in_order():
    decision = decide(record(res("shipping", ok=False), res("fraud", ok=False)), WORKFLOW)
    assert decision.reason == "fraud: fraud said no; shipping: shipping said no"


def test_an_outcome_joining_many_long_reasons_is_cut_to_its_bound():
    # 30 failing agents' reasons of 2,048 characters each: the outcome (and the main-table row built from it) stays
    # far below DynamoDB's 400 KB item, saying how long the whole reason was.
    agents = [f"agent-{n:02d}" for n in range(30)]
    workflow = replace(WORKFLOW, agents=tuple(
        Agent(name=name, handler="x", source=f"agentbus.agent.{name}", subscriptions=(),
              results=(ResultType("Fine", Outcome.SUCCESS), ResultType("Not Fine", Outcome.FAILURE)))
        for name in agents))
    failures = [res(name, ok=False) | {"reason": "z" * MAX_REASON_CHARS} for name in agents]
    decision = decide(record(*failures), workflow)
    assert decision.status is REJECTED
    assert len(decision.reason) == MAX_OUTCOME_REASON_CHARS
    assert decision.reason.startswith("agent-00: zzz") and decision.reason.endswith(" characters in all]")


def test_failure_without_reason_falls_back_to_its_detail_type():
    failure = res("fraud", ok=False) | {"reason": None, "detail_type": "Order Flagged"}
    assert decide(record(failure), WORKFLOW).reason == "fraud: Order Flagged"


def test_invalid_order_rejects_naming_the_field():
    decision = decide(record(res("fraud"), trigger_error="items.0.quantity: Input should be greater than 0"),
                      WORKFLOW)
    assert decision.status is REJECTED
    assert decision.reason == "invalid Order Placed: items.0.quantity: Input should be greater than 0"


# --- deadline ---------------------------------------------------------------------------------------

def test_deadline_times_out_what_is_open_listing_missing_agents():
    decision = decide(record(res("fraud")), WORKFLOW, deadline_reached=True)
    assert decision.status is TIMED_OUT and decision.reason == DEADLINE_REASON
    assert decision.missing == ("inventory", "shipping")


def test_a_deadline_past_before_the_request_arrived_says_so():
    late = record(res("fraud"), placed_at="2026-11-26T10:00:00.000Z", deadline_at="2026-11-26T10:02:00.000Z")
    decision = decide(late, WORKFLOW, deadline_reached=True)
    assert decision.status is TIMED_OUT
    assert decision.reason == ("deadline reached: it had passed when the request arrived (2026-11-26T11:07:08.123Z); "
                               "the deadline counts from the event's time (2026-11-26T10:00:00.000Z)")
    in_time = record(res("fraud"), placed_at="2026-11-26T11:07:08.000Z", deadline_at="2026-11-26T11:09:08.000Z")
    assert decide(in_time, WORKFLOW, deadline_reached=True).reason == DEADLINE_REASON


def test_deadline_after_every_result_is_in_still_completes():
    done = record(res("fraud"), res("inventory"), res("shipping"))
    assert decide(done, WORKFLOW, deadline_reached=True).status is COMPLETED


def test_deadline_with_nothing_in():
    decision = decide(record(), WORKFLOW, deadline_reached=True)
    assert decision.status is TIMED_OUT and decision.missing == ("fraud", "inventory", "shipping")


def test_placement_time_is_the_events_time_but_never_later_than_its_arrival():
    arrived = datetime(2026, 11, 26, 11, 7, 30, tzinfo=UTC)

    def event(time):
        return BusEvent.model_validate({"id": "e", "source": "s", "detail-type": "d", "detail": {}, "time": time})

    assert placed_at(event("2026-11-26T11:07:08Z"), arrived) == datetime(2026, 11, 26, 11, 7, 8, tzinfo=UTC)
    assert placed_at(event("2099-01-01T00:00:00Z"), arrived) == arrived  # a producer cannot push it later
    assert placed_at(event("not a time"), arrived) == arrived
    assert placed_at(event(None), arrived) == arrived


# --- late results -----------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [COMPLETED, REJECTED, TIMED_OUT])
def test_finished_workflow_decides_nothing_more(status):
    late = record(res("fraud", ok=False), res("inventory"), res("shipping"), status=status)
    assert decide(late, WORKFLOW) is None
    assert decide(late, WORKFLOW, deadline_reached=True) is None


# --- outcome and timings ----------------------------------------------------------------------------

def test_timings_end_to_end_per_agent_and_chained():
    rec = record(res("fraud", started_at="2026-11-26T11:07:08.100Z", duration_ms=300),
                 res("inventory", started_at="2026-11-26T11:07:08.150Z", duration_ms=100),
                 res("shipping", started_at="not a time", duration_ms=200.5))
    t = timings(rec, datetime(2026, 11, 26, 11, 7, 8, 600000, tzinfo=UTC))
    assert t["started_at"] == "2026-11-26T11:07:08.100Z"  # an agent started before the trigger was received
    assert t["finished_at"] == "2026-11-26T11:07:08.600Z"
    assert t["duration_ms"] == 500
    assert t["agents"] == {"fraud": 300, "inventory": 100, "shipping": 200.5}
    assert t["agents_sum_ms"] == 600.5 and t["slowest_agent_ms"] == 300
    assert t["trigger_received_at"] == "2026-11-26T11:07:08.123Z"


def test_timings_while_open_have_no_end():
    t = timings(record(), None)
    assert t["started_at"] == "2026-11-26T11:07:08.123Z" and t["duration_ms"] is None
    assert t["agents"] == {} and t["agents_sum_ms"] == 0 and t["slowest_agent_ms"] == 0


def test_outcome_is_a_valid_workflow_outcome_with_its_idempotency_key():
    rec = record(res("shipping"), res("fraud", ok=False))
    decision = decide(rec, WORKFLOW)
    detail = build_outcome(rec, WORKFLOW, decision, datetime(2026, 11, 26, 11, 7, 9, tzinfo=UTC))
    outcome = WorkflowOutcome.model_validate(detail)
    assert outcome.status == "REJECTED" and outcome.idempotency_key == "ord-1001:REJECTED"
    assert detail["order_id"] == "ord-1001" and outcome.missing == ["inventory"]
    assert list(detail)[-1] == "order_id"  # the workflow's own id field closes the detail
    assert list(outcome.results) == ["fraud", "shipping"]  # stable order
    assert outcome.timings["finished_at"] == "2026-11-26T11:07:09.000Z"


def test_order_projection_carries_the_order_and_a_results_summary():
    rec = record(res("fraud"), res("inventory"), res("shipping"))
    rec.outcome = build_outcome(rec, WORKFLOW, decide(rec, WORKFLOW), datetime(2026, 11, 26, 11, 7, 9, tzinfo=UTC))
    rec.status = COMPLETED
    item = order_item(finished_workflow(rec, WORKFLOW))
    assert item["order_id"] == "ord-1001" and item["status"] == "COMPLETED"
    assert item["customer_id"] == "cus-42" and item["currency"] == "EUR"
    assert item["total"] == Decimal("1349.0")
    assert item["results"]["fraud"] == {"detail_type": "x", "outcome": "success", "reason": None, "duration_ms": 100}
    assert item["idempotency_key"] == "ord-1001:COMPLETED"


@pytest.mark.parametrize(("price", "quantity"), [
    ("x", 1), ("NaN", 1), ("Infinity", 1),
    # An infinite quantity (JSON 1e400 reads as a float infinity): int() of it raises OverflowError, which once
    # failed the projection, so the rejected order was dead-lettered unpublished.
    (25.0, float("inf")), (25.0, float("-inf")), (25.0, float("nan")),
])
def test_order_projection_of_an_invalid_order_has_no_total(price, quantity):
    rec = record(trigger_error="bad")
    rec.trigger = load_detail("order-placed.json") | {"items": [{"sku": "A", "quantity": quantity,
                                                                  "unit_price": price}]}
    rec.outcome, rec.status = {}, REJECTED
    assert order_item(finished_workflow(rec, WORKFLOW))["total"] is None


# --- names and times --------------------------------------------------------------------------------

def test_schedule_name_is_readable_when_it_can_be():
    assert schedule_name("order-fulfillment", "ord-1001") == "order-fulfillment-ord-1001"


@pytest.mark.parametrize("workflow_id", ["x" * 300, "ord 1001/é", "a:b", "ord-" + "9" * 46])
def test_schedule_name_is_valid_for_any_id(workflow_id):
    name = schedule_name("order-fulfillment", workflow_id)
    assert len(name) <= 64 and re.fullmatch(r"[0-9A-Za-z_.-]+", name)
    assert name == schedule_name("order-fulfillment", workflow_id)  # derived, not random


def test_schedule_names_of_similar_long_ids_differ():
    a, b = "x" * 100 + "a", "x" * 100 + "b"
    assert schedule_name("order-fulfillment", a) != schedule_name("order-fulfillment", b)
    assert schedule_name("order-fulfillment", "a:b") != schedule_name("order-fulfillment", "a/b")


def test_no_id_can_take_another_ids_hashed_schedule_name():
    """Black-box pass 7B, F1: ``order-fulfillment-victim/1`` hashes (it has a ``/``) to
    ``order-fulfillment-victim_1-<digest>``, which was also the readable name of the id ``victim_1-<digest>``: anyone
    could compute it, and the invalid order of that id, rejected at once, deleted the victim's deadline."""
    victim = schedule_name("order-fulfillment", "order-fulfillment-victim/1")
    assert victim.startswith("_")  # hashed names have a shape no readable one has
    for workflow in MANIFEST.workflows:
        for prefix in ("", f"{workflow.name}-"):
            taken = victim.removeprefix(prefix)
            if taken and re.fullmatch(r"[A-Za-z0-9._:@#/+=-]{1,128}", taken):
                assert schedule_name(workflow.name, taken) != victim
    for workflow in MANIFEST.workflows:
        readable = schedule_name(workflow.name, "ord-1001")
        assert not readable.startswith("_") and readable == f"{workflow.name}-ord-1001"


def test_schedule_names_of_two_workflows_differ_where_one_name_prefixes_the_other():
    # A manifest with workflows "access" and "access-request": both requests below read "access-request-1", so
    # the second create found the first's schedule (taken for a duplicate), the first's finish deleted it, and the
    # second workflow was left with no deadline (no outcome if an agent never answers).
    from functions.coordinator.store import WorkflowStore

    manifest = replace(MANIFEST, workflows=tuple(replace(w, name="access") if w.name == "order-fulfillment" else w
                                                 for w in MANIFEST.workflows))
    coordinator = Coordinator(store=None, deadlines=None, publish=None, manifest=manifest)  # type: ignore[arg-type]
    store = WorkflowStore(None, "workflows", manifest)
    first, second = coordinator.schedule_name("access", "request-1"), coordinator.schedule_name("access-request", "1")
    assert first != second
    for name in (first, second):
        assert len(name) <= 64 and re.fullmatch(r"[0-9A-Za-z_.-]+", name)
    # The store derives the same names: a header need not keep them, and reads back the one its deadline has.
    assert (store.derived_schedule_name("access", "request-1"), store.derived_schedule_name("access-request", "1")) \
        == (first, second)
    # Where no workflow's name prefixes another's (the shipped manifest), the names stay as they were.
    shipped = Coordinator(store=None, deadlines=None, publish=None, manifest=MANIFEST)  # type: ignore[arg-type]
    assert [shipped.schedule_name(w.name, "ord-1001") for w in MANIFEST.workflows] == \
        [f"{w.name}-ord-1001" for w in MANIFEST.workflows]


def test_two_workflows_outcomes_for_one_id_share_the_idempotency_key_and_name_their_workflow():
    # What the README tells a subscriber: deduplicate on the key and the workflow (the key alone is ID:STATUS).
    access = MANIFEST.workflow("access-request")
    at = datetime(2026, 11, 26, 11, 7, 9, tzinfo=UTC)
    order = build_outcome(record(), WORKFLOW, decide(record(), WORKFLOW, deadline_reached=True), at)
    request = replace(record(), workflow=access.name)
    other = build_outcome(request, access, decide(request, access, deadline_reached=True), at)
    assert order["idempotency_key"] == other["idempotency_key"] == "ord-1001:TIMED_OUT"
    assert (order["workflow"], other["workflow"]) == ("order-fulfillment", "access-request")


def test_deadline_rounds_up_to_the_second():
    assert ceil_to_second(datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC)) == datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)
    exact = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    assert ceil_to_second(exact) == exact


# --- the stored layout ------------------------------------------------------------------------------

def test_result_slot_stores_only_what_cannot_be_derived_and_reads_back_identical():
    from functions.coordinator.layout import compact_slot, expand_slot

    slot = {"workflow": WORKFLOW.name, "workflow_id": "ord-1001", "agent": "fraud",
            "outcome": "success", "reason": None, "data": {"score": 0}, "started_at": "s", "finished_at": "f",
            "duration_ms": 3, "idempotency_key": "ord-1001:fraud:v1", "trigger_digest": "v1",
            "detail_type": "Order Verified", "event_id": "e", "received_at": "r"}
    stored = compact_slot("ord-1001", "fraud", slot, WORKFLOW.name)
    assert not {"workflow", "workflow_id", "agent", "idempotency_key"} & set(stored)
    restored = expand_slot("ord-1001", "fraud", stored, WORKFLOW.name)
    assert restored == slot and list(restored) == list(slot)
    # A slot from another workflow than the record's keeps its name.
    assert compact_slot("ord-1001", "fraud", slot, "other-workflow")["workflow"] == WORKFLOW.name
    # Values that differ from what the key and the slot name give are kept as they came.
    odd = slot | {"idempotency_key": "agent-chose-this"}
    assert {"idempotency_key"} <= set(compact_slot("ord-1001", "fraud", odd, WORKFLOW.name))
    assert expand_slot("ord-1001", "fraud", compact_slot("ord-1001", "fraud", odd, WORKFLOW.name), WORKFLOW.name) == odd


def test_outcome_stored_without_results_reads_back_as_the_detail_the_finish_built():
    from functions.coordinator.layout import compact_outcome, expand_outcome

    rec = record(res("fraud"), res("inventory", ok=False))
    detail = build_outcome(rec, WORKFLOW, decide(rec, WORKFLOW), datetime(2026, 11, 26, 11, 7, 9, tzinfo=UTC))
    stored = compact_outcome("ord-1001", detail, WORKFLOW.name, WORKFLOW.id_field)
    assert not {"workflow", "workflow_id", "order_id", "idempotency_key"} & set(stored)
    assert stored["results"] == ["fraud", "inventory"]  # by name: the slots hold them
    restored = expand_outcome("ord-1001", stored, rec.results, WORKFLOW.name, WORKFLOW.id_field)
    assert restored == detail and list(restored) == list(detail)
    assert list(restored["results"]) == ["fraud", "inventory"]


def test_a_large_result_is_kept_without_its_data_so_the_record_stays_small():
    from functions.coordinator.record import MAX_RESULT_DATA_BYTES, bounded_result

    small = res("fraud") | {"data": {"score": 1}}
    assert bounded_result(small) == small
    big = res("fraud") | {"data": {"evidence": "é" * MAX_RESULT_DATA_BYTES}}
    kept = bounded_result(big)
    assert kept["outcome"] == big["outcome"] and kept["reason"] == big["reason"]
    assert "omitted" in kept["data"] and kept["data"]["omitted"].startswith(f"{2 * MAX_RESULT_DATA_BYTES + 16} bytes")


# --- k of n (issue 13): a quorum of reviewers ----------------------------------------------------------

def _review_record(*verdicts: tuple[str, bool], **fields) -> WorkflowRecord:
    from tests.workflows.manifest import MANIFEST as TEST_MANIFEST

    workflow = TEST_MANIFEST.workflow("change-review")
    return replace(record(*(res(agent, ok) for agent, ok in verdicts), **fields), workflow=workflow.name), workflow


def test_quorum_completes_with_k_successes_without_waiting_for_the_rest():
    rec, workflow = _review_record(("reviewer-usual", True), ("reviewer-lenient", True))
    decision = decide(rec, workflow)
    assert decision is not None and decision.status is COMPLETED
    outcome = build_outcome(rec, workflow, decision, datetime(2026, 12, 1, tzinfo=UTC))
    assert outcome["quorum"] == {"needed": 2, "agents": ["reviewer-strict", "reviewer-usual", "reviewer-lenient"],
                                 "agreed": ["reviewer-usual", "reviewer-lenient"], "disagreed": [],
                                 "pending": ["reviewer-strict"]}


def test_quorum_waits_while_k_is_still_reachable():
    rec, workflow = _review_record(("reviewer-strict", False), ("reviewer-usual", True))
    assert decide(rec, workflow) is None
    assert decide(rec, workflow, deadline_reached=True).missing == ("reviewer-lenient",)


def test_quorum_fails_as_soon_as_k_is_out_of_reach_naming_who_did_not_agree():
    rec, workflow = _review_record(("reviewer-strict", False), ("reviewer-usual", False))
    decision = decide(rec, workflow)
    assert decision is not None and decision.status is REJECTED
    assert decision.reason == ("quorum out of reach: 2 of 3 needed; 0 agreed, 2 did not (reviewer-strict, "
                               "reviewer-usual), 1 not answered (reviewer-lenient)")


def test_quorum_members_are_not_required_one_by_one():
    _, workflow = _review_record()
    assert workflow.required_agents == frozenset()


def test_a_cancel_in_the_record_decides_cancelled_before_anything_else():
    rec = record(res("fraud", ok=False), cancel={"by": "ops", "reason": "duplicate order"})
    decision = decide(rec, WORKFLOW)
    assert decision is not None and decision.status is WorkflowStatus.CANCELLED
    assert decision.reason == "cancelled by ops: duplicate order"


def test_the_publication_lease_outlasts_the_coordinators_timeout_whatever_the_manifest_sets():
    """Code review bb10d, finding 9: the lease was a constant 30 s, and ``coordinator_settings`` may raise the
    timeout past it. It is now the timeout plus a margin, and still shorter than the visibility timeout (6x the
    timeout), so that a crashed holder's redelivery finds it expired."""
    for timeout_s in (1, 30, 120, 900):
        manifest = replace(MANIFEST, coordinator_settings={"timeout_s": timeout_s})
        coordinator = Coordinator(store=None, deadlines=None, publish=None, manifest=manifest)  # type: ignore[arg-type]
        assert coordinator.publish_lease_s == publish_lease_s(timeout_s) == timeout_s + PUBLISH_LEASE_MARGIN_S
        assert timeout_s < coordinator.publish_lease_s <= manifest.coordinator.visibility_timeout_s
        at = datetime(2026, 11, 26, 11, 7, 8, tzinfo=UTC)
        assert coordinator._lease_until(at) - epoch_ms(at) == (timeout_s + PUBLISH_LEASE_MARGIN_S) * 1000
    assert Coordinator(store=None, deadlines=None, publish=None, manifest=MANIFEST,  # type: ignore[arg-type]
                       publish_lease_s=7).publish_lease_s == 7
    assert publish_lease_s(MANIFEST.coordinator.timeout_s) == PUBLISH_LEASE_S
