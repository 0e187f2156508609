"""Issue 13 on the coordinator (moto): a person in the loop, results that ask for more, cancels.

Each guarantee of docs/guarantees.md about people and cancels has its test here, named after it: an approval
delivered twice or racing a decline (one decision counts, the other is kept as late with the reason), an
approval after the deadline or after a cancel (inert, kept as late), a cancel racing the finish (one terminal
outcome), answers and cancels from a source the manifest does not allow (refused, kept with the reason).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from agentbus.approvals import late_lines
from agentbus.local.lambda_events import eventbridge_envelope
from functions.common.digest import trigger_digest
from functions.common.ids import result_idempotency_key
from functions.common.models import BusEvent
from functions.common.spec import CANCEL_DETAIL_TYPE, DEADLINE_DETAIL_TYPE, DEADLINE_SOURCE, OPERATOR_SOURCE
from functions.coordinator.logic import Coordinator as LogicCoordinator
from functions.coordinator.store import WorkflowStore
from tests.conftest import load_detail, load_entries
from tests.functions.coordinator_harness import Coordinator, NoSchedules
from tests.pinned import MANIFEST  # the shipped workflows with the agents these tests name (not any a user adds)

ACCESS = MANIFEST.workflow("access-request")
ORDERS = MANIFEST.workflow("order-fulfillment")
APPROVER = ACCESS.external_agent("manager-approval")
ORDER_RESULTS = {"fraud": "order-verified.json", "inventory": "items-reserved.json", "shipping": "shipping-quoted.json"}


@pytest.fixture
def c(aws):
    return Coordinator(*aws)


def risky_request(request_id: str = "acc-9001") -> dict:
    """Access Requested that the policy permits and the risk agent scores 50 (write on a high-sensitivity
    resource): it needs a manager's approval."""
    detail = load_detail("access-requested.json") | {"request_id": request_id, "employee_id": "emp-1003",
                                                      "resource": "customer-db", "access_level": "write"}
    [entry] = load_entries("access-requested.json")
    return eventbridge_envelope(entry["DetailType"], entry["Source"], detail)


def answer(sample: str, to: dict, **changes) -> dict:
    [entry] = load_entries(sample)
    detail = json.loads(entry["Detail"])
    workflow = MANIFEST.workflow(detail["workflow"])
    workflow_id = to["detail"][workflow.id_field]
    detail |= {"workflow_id": workflow_id, "trigger_digest": trigger_digest(to["detail"])} | changes
    detail["idempotency_key"] = result_idempotency_key(workflow_id, detail["agent"], detail["trigger_digest"])
    return eventbridge_envelope(entry["DetailType"], entry["Source"], detail)


def access_results(request: dict, *, ask: bool = True) -> list[dict]:
    risk = answer("risk-accepted.json", request, **({"asks_for": ["manager-approval"]} if ask else {}))
    return [answer("identity-verified.json", request), answer("access-permitted.json", request), risk]


def person(request_id: str, *, approve: bool = True, by: str = "grace.hopper", note: str | None = None,
           source: str = APPROVER.source) -> dict:
    result = APPROVER.approval if approve else APPROVER.refusal
    assert result is not None
    detail = {"workflow": ACCESS.name, "workflow_id": request_id, "agent": APPROVER.name, "by": by}
    if note:
        detail["note"] = note
    return eventbridge_envelope(result.detail_type, source, detail)


def cancel(workflow, workflow_id: str, *, by: str = "ops", reason: str | None = "customer asked",
           source: str = OPERATOR_SOURCE) -> dict:
    detail = {"workflow": workflow.name, "workflow_id": workflow_id, "by": by}
    if reason:
        detail["reason"] = reason
    return eventbridge_envelope(CANCEL_DETAIL_TYPE, source, detail)


def deadline(workflow, workflow_id: str) -> dict:
    return eventbridge_envelope(DEADLINE_DETAIL_TYPE, DEADLINE_SOURCE,
                                {"workflow": workflow.name, "workflow_id": workflow_id})


# --- results that ask for more ------------------------------------------------------------------------

def test_a_result_that_asks_for_an_approval_makes_the_workflow_wait_for_it(c):
    request = risky_request()
    assert c.deliver(request, *access_results(request)) == {"batchItemFailures": []}
    assert c.outcomes() == []
    view = c.view(ACCESS, "acc-9001")
    assert (view["status"], view["missing"]) == ("RUNNING", ["manager-approval"])
    [waiting] = view["waiting_for"]
    assert (waiting["agent"], waiting["kind"]) == ("manager-approval", APPROVER.kind)
    # The deadline moved out to the person's time (24 h from the ask), not the workflow's 120 s.
    asked = datetime.fromisoformat(waiting["asked_at"].replace("Z", "+00:00"))
    until = datetime.fromisoformat(view["deadline_at"].replace("Z", "+00:00"))
    assert timedelta(hours=24) <= until - asked < timedelta(hours=24, seconds=2)


def test_without_the_ask_the_same_results_grant_at_once(c):
    request = risky_request("acc-9002")
    c.deliver(request, *access_results(request, ask=False))
    [published] = c.outcomes()
    assert published["detail-type"] == "Access Granted"
    assert c.view(ACCESS, "acc-9002")["waiting_for"] == []


def test_approval_completes_the_request_naming_who_approved(c):
    request = risky_request()
    c.deliver(request, *access_results(request))
    c.deliver(person("acc-9001", note="ticket SEC-12"))
    [published] = c.outcomes()
    assert published["detail-type"] == "Access Granted"
    approval = published["detail"]["results"]["manager-approval"]
    assert approval["data"] == {"by": "grace.hopper", "note": "ticket SEC-12"}
    assert approval["reason"] == "approved by grace.hopper: ticket SEC-12"
    assert approval["trigger_digest"] == trigger_digest(request["detail"])
    assert c.store.get_row("access-requests", {"request_id": "acc-9001"})["status"] == "COMPLETED"


def test_decline_denies_the_request_naming_the_person(c):
    request = risky_request()
    c.deliver(request, *access_results(request))
    c.deliver(person("acc-9001", approve=False, by="grace.hopper", note="not for contractors"))
    [published] = c.outcomes()
    assert published["detail-type"] == "Access Denied"
    assert published["detail"]["reason"] == "manager-approval: declined by grace.hopper: not for contractors"


def test_a_person_s_longest_name_and_note_give_a_result_reason_within_its_limit_and_keep_the_whole_note(c):
    """Black-box pass 11B, F1: ``declined by <by>: <note>`` with both at their limits (256 and 2,048 characters)
    was a 2,318-character result reason, over the 2,048 a result's reason may have (AgentResult refused it)."""
    from functions.common.models import MAX_REASON_CHARS, AgentResult

    by, note = "b" * 256, "n" * MAX_REASON_CHARS
    request = risky_request()
    c.deliver(request, *access_results(request))
    c.deliver(person("acc-9001", approve=False, by=by, note=note))
    [published] = c.outcomes()
    result = published["detail"]["results"][APPROVER.name]
    assert len(result["reason"]) == MAX_REASON_CHARS
    assert result["reason"].startswith(f"declined by {by}: nnn")
    assert result["reason"].endswith(f"[cut: {len(f'declined by {by}: {note}'):,} characters in all]")
    assert result["data"] == {"by": by, "note": note}
    AgentResult.model_validate(result)


def test_an_approval_that_was_not_asked_for_decides_nothing(c):
    request = risky_request()
    c.deliver(request, person("acc-9001", approve=False))  # declined before anyone asked
    running = c.view(ACCESS, "acc-9001")
    assert "manager-approval" not in running["results"]
    [early] = running["late_results"]
    assert (early["agent"], early["kind"]) == ("manager-approval", "unasked")
    assert "counts if a result asks for it" in early["late_reason"]
    c.deliver(*access_results(request, ask=False))
    [published] = c.outcomes()
    assert published["detail-type"] == "Access Granted"
    # It decided nothing, so neither the outcome, nor the main table's row, nor status shows it as a result:
    # a reader saw access granted over the manager's recorded refusal.
    assert sorted(published["detail"]["results"]) == ["identity", "policy", "risk"]
    assert "manager-approval" not in published["detail"]["timings"]["agents"]
    row = c.store.get_row("access-requests", {"request_id": "acc-9001"})
    assert row["status"] == "COMPLETED" and "manager-approval" not in row["results"]
    view = c.view(ACCESS, "acc-9001")
    assert view["outcome"] == published["detail"] and "manager-approval" not in view["results"]
    [kept] = view["late_results"]
    assert (kept["agent"], kept["detail_type"]) == ("manager-approval", "Access Declined")
    assert "nothing did by the finish" in kept["late_reason"]
    assert any(line.startswith("not counted: manager-approval Access Declined by grace.hopper")
               for line in late_lines(view))


def test_a_result_asking_for_an_agent_its_type_does_not_declare_is_refused(c):
    request = risky_request()
    forged_ask = answer("identity-verified.json", request, asks_for=["manager-approval"])
    assert c.deliver(request, forged_ask)["batchItemFailures"] == []
    [reason] = c.dead_letters().values()
    assert "asks for manager-approval, which the manifest does not let it ask for" in reason
    assert "identity" not in c.view(ACCESS, "acc-9001")["results"]


def test_the_first_deadline_does_not_time_out_a_workflow_waiting_for_a_person(c):
    request = risky_request()
    c.deliver(request, *access_results(request))
    c.clock.advance(seconds=ACCESS.deadline_s + 60)  # the schedule made when the request opened fires
    c.deliver(deadline(ACCESS, "acc-9001"))
    assert c.outcomes() == []
    assert c.view(ACCESS, "acc-9001")["status"] == "RUNNING"


def test_external_wait_override_shortens_the_persons_time(aws):
    c = Coordinator(*aws, external_wait_seconds=600)
    request = risky_request()
    c.deliver(request, *access_results(request))
    c.clock.advance(seconds=601)
    c.deliver(deadline(ACCESS, "acc-9001"))
    [published] = c.outcomes()
    assert published["detail-type"] == "Access Request Timed Out"
    assert published["detail"]["missing"] == ["manager-approval"]


# --- guarantees: answers ------------------------------------------------------------------------------

def test_approval_delivered_twice_counts_once_and_keeps_the_second_as_late(c):
    request = risky_request()
    c.deliver(request, *access_results(request))
    first, second = person("acc-9001", by="grace.hopper"), person("acc-9001", by="grace.hopper")
    c.deliver(first, first)  # the same event twice (redelivery): nothing kept
    c.deliver(second)        # a second approval (clicked twice): kept aside
    [published] = c.outcomes()
    assert published["detail-type"] == "Access Granted"
    assert published["detail"]["results"]["manager-approval"]["event_id"] == first["id"]
    [late] = c.view(ACCESS, "acc-9001")["late_results"]
    assert late["event_id"] == second["id"]
    assert late["late_reason"].startswith("another answer already counted: Access Approved by grace.hopper")


def test_an_answer_for_another_version_is_kept_aside_naming_both_and_the_right_one_still_counts(c):
    request = risky_request()
    c.deliver(request, *access_results(request))
    stale = person("acc-9001", by="grace.hopper")
    stale["detail"]["trigger_digest"] = "0" * 32  # approved a version the workflow does not hold
    c.deliver(stale, stale)  # delivered twice: kept once
    assert c.outcomes() == []
    view = c.view(ACCESS, "acc-9001")
    assert view["status"] == "RUNNING" and [w["agent"] for w in view["waiting_for"]] == ["manager-approval"]
    [aside] = view["late_results"]
    assert aside["event_id"] == stale["id"] and aside["agent"] == "manager-approval"
    assert "0" * 32 in aside["late_reason"] and trigger_digest(request["detail"]) in aside["late_reason"]
    c.deliver(person("acc-9001", by="grace.hopper"))  # without a version: the one the record holds
    [published] = c.outcomes()
    assert published["detail-type"] == "Access Granted"


def test_approve_and_decline_racing_one_decision_counts_the_other_kept_late(c):
    request = risky_request()
    c.deliver(request, *access_results(request))
    decline, approve = person("acc-9001", approve=False, by="alan"), person("acc-9001", by="grace")
    c.deliver(decline, approve)  # one batch: whichever is written first is the decision
    [published] = c.outcomes()
    assert published["detail-type"] == "Access Denied"
    [late] = c.view(ACCESS, "acc-9001")["late_results"]
    assert (late["event_id"], late["detail_type"]) == (approve["id"], "Access Approved")
    assert "another answer already counted: Access Declined by alan" in late["late_reason"]


def test_approval_after_the_deadline_is_inert_and_kept_late(aws):
    c = Coordinator(*aws, external_wait_seconds=300)
    request = risky_request()
    c.deliver(request, *access_results(request))
    c.clock.advance(seconds=301)
    c.deliver(deadline(ACCESS, "acc-9001"))
    c.deliver(person("acc-9001"))
    [published] = c.outcomes()
    assert published["detail-type"] == "Access Request Timed Out"
    view = c.view(ACCESS, "acc-9001")
    assert view["status"] == "TIMED_OUT" and "manager-approval" not in view["results"]
    [late] = view["late_results"]
    assert late["late_reason"] == "reached the coordinator after the deadline: the workflow had timed out"


def test_approval_after_a_cancel_is_inert_and_kept_late(c):
    request = risky_request()
    c.deliver(request, *access_results(request))
    c.deliver(cancel(ACCESS, "acc-9001", reason="no longer needed"))
    c.deliver(person("acc-9001"))
    [published] = c.outcomes()
    assert published["detail-type"] == "Access Request Cancelled"
    assert published["detail"]["status"] == "CANCELLED"
    assert published["detail"]["reason"] == "cancelled by ops: no longer needed"
    [late] = c.view(ACCESS, "acc-9001")["late_results"]
    assert late["late_reason"] == "arrived after the workflow was cancelled"
    assert c.store.get_row("access-requests", {"request_id": "acc-9001"})["status"] == "CANCELLED"


def test_an_approval_between_the_cancels_write_and_the_finish_is_kept_late_not_counted(c):
    """Black-box pass 6A, D5: approve and cancel queued together (the coordinator paused). The cancel is written
    into the record first; the approval that came 6 ms later, before the finish applied the cancel, was counted
    and showed in the CANCELLED outcome's results."""
    request = risky_request()
    c.deliver(request, *access_results(request))
    kind, _ = c.store.request_cancel(ACCESS.name, "acc-9001", {"by": "ops", "reason": "no longer needed",
                                                               "event_id": "cancel-1", "received_at": "x"})
    assert kind == "recorded"  # written, not yet applied (the invocation that wrote it has not finished it)
    c.deliver(person("acc-9001"))
    [published] = c.outcomes()  # the approval's invocation applies the cancel it found
    assert (published["detail-type"], published["detail"]["status"]) == ("Access Request Cancelled", "CANCELLED")
    assert "manager-approval" not in published["detail"]["results"]
    view = c.view(ACCESS, "acc-9001")
    assert "manager-approval" not in view["results"]
    [late] = view["late_results"]
    assert (late["agent"], late["late_reason"]) == ("manager-approval", "arrived after the workflow was cancelled")


def test_a_run_counts_a_request_as_waiting_for_a_person_only_once_nothing_else_is_missing(c):
    """Black-box pass 7A, F4: a copy of the contractor-admin sample waited for the manager while policy had not
    answered yet; policy's refusal then ended it REJECTED, but the soak had counted it as waiting for a person and
    failed the run."""
    from agentbus.bench.people import still_waiting, waiting_for_people

    request = risky_request()
    identity, policy, risk = access_results(request)
    c.deliver(request, risk)  # risk asks for the manager; identity and policy have not answered
    key = f"{ACCESS.name}/acc-9001"
    assert c.view(ACCESS, "acc-9001")["waiting_for"]
    assert waiting_for_people(c.clients.dynamodb, c.resources, MANIFEST, {key}) == {}
    c.deliver(identity, policy)  # now only the person is missing
    assert waiting_for_people(c.clients.dynamodb, c.resources, MANIFEST, {key}) == {key: ["manager-approval"]}
    # Found waiting, then ended (here by a cancel): decided, no longer waiting.
    assert still_waiting({key: ["manager-approval"]}, without_outcome=set()) == {}
    assert still_waiting({key: ["manager-approval"]}, without_outcome={key}) == {key: ["manager-approval"]}


def test_answer_from_a_source_the_manifest_does_not_allow_is_refused_and_kept(c):
    request = risky_request()
    c.deliver(request, *access_results(request))
    assert c.deliver(person("acc-9001", source="evil.approvals")) == {"batchItemFailures": []}
    [reason] = c.dead_letters().values()
    assert "forged result" in reason and "'evil.approvals'" in reason
    view = c.view(ACCESS, "acc-9001")
    assert view["status"] == "RUNNING" and "manager-approval" not in view["results"]


def test_answer_for_a_request_that_never_arrived_waits_for_it_then_is_dead_lettered(c):
    # Tried again after its back-off (it may have overtaken its request); on its last receive, kept with the reason.
    assert c.deliver(person("acc-nobody")) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert c.dead_letters() == {}
    assert c.deliver(person("acc-nobody"), receive_count=5) == {"batchItemFailures": []}
    [reason] = c.dead_letters().values()
    assert "no such workflow (never opened), nothing to answer" in reason
    assert reason.startswith("RequestNotInYet: ") and reason.endswith("(failed on receive 5 of at most 5)")


def test_an_answer_that_overtook_its_request_counts_once_the_request_is_in_and_its_twin_changes_nothing(c):
    # Black-box pass 12B, F1: one delivery of the answer was dead-lettered as "has not arrived yet" while a
    # duplicate, read once the request was in, counted.
    request = risky_request("acc-9010")
    answer = person("acc-9010")
    assert c.deliver(answer) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    c.deliver(request, *access_results(request))
    assert c.deliver(answer, receive_count=2) == {"batchItemFailures": []}
    assert c.deliver(answer, receive_count=3) == {"batchItemFailures": []}  # its twin: the same event, once
    view = c.view(ACCESS, "acc-9010")
    assert view["status"] == "COMPLETED" and view["results"]["manager-approval"]["event_id"] == answer["id"]
    assert view["late_results"] == [] and c.dead_letters() == {}


# --- guarantees: cancels -------------------------------------------------------------------------------

def test_cancel_finishes_a_running_order_once_with_its_own_terminal_event(c):
    order = eventbridge_envelope("Order Placed", "agentbus.orders", load_detail("order-placed.json"))
    order_id = order["detail"]["order_id"]
    c.deliver(order, answer(ORDER_RESULTS["inventory"], order))  # shipping and fraud still out
    request = cancel(ORDERS, order_id)
    c.deliver(request, request)
    [published] = c.outcomes()
    assert (published["detail-type"], published["detail"]["status"]) == ("Order Cancelled", "CANCELLED")
    assert published["detail"]["missing"] == ["fraud", "shipping"]
    # Late results are kept aside as late, and change nothing.
    c.deliver(answer(ORDER_RESULTS["shipping"], order))
    assert c.outcomes() == []
    view = c.view(ORDERS, order_id)
    assert view["cancel"]["by"] == "ops"
    assert [late["agent"] for late in view["late_results"]] == ["shipping"]
    assert "Order Cancelled" in ORDERS.agent("inventory").compensate_on


def test_cancel_of_a_finished_workflow_changes_nothing_and_is_kept(c):
    request = risky_request()
    c.deliver(request, *access_results(request, ask=False))
    c.deliver(cancel(ACCESS, "acc-9001"))
    [published] = c.outcomes()
    assert published["detail-type"] == "Access Granted"
    view = c.view(ACCESS, "acc-9001")
    assert view["status"] == "COMPLETED" and view["cancel"] is None
    [late] = view["late_results"]
    assert (late["kind"], late["late_reason"]) == ("cancel", "arrived after the workflow had finished (COMPLETED)")


def test_cancel_racing_the_finish_gives_exactly_one_terminal_outcome(c):
    request = risky_request()
    c.deliver(request, *access_results(request))
    # The approval and the cancel in one batch, both orders: one terminal outcome, the other kept late.
    c.deliver(person("acc-9001"), cancel(ACCESS, "acc-9001"))
    request2 = risky_request("acc-9002")
    c.deliver(request2, *access_results(request2))
    c.deliver(cancel(ACCESS, "acc-9002"), person("acc-9002"))
    outcomes = {e["detail"]["request_id"]: e["detail-type"] for e in c.outcomes()}
    assert outcomes == {"acc-9001": "Access Granted", "acc-9002": "Access Request Cancelled"}
    assert c.view(ACCESS, "acc-9001")["late_results"][0]["kind"] == "cancel"
    assert c.view(ACCESS, "acc-9002")["late_results"][0]["agent"] == "manager-approval"


def test_cancel_written_between_the_decision_and_the_finish_wins_through_the_version_check(c):
    """The finish is conditional on the record's version: a cancel written after the coordinator read the
    record (and decided COMPLETED) makes that finish fail; the re-read decides CANCELLED. One outcome."""
    request = risky_request()
    c.deliver(request, *access_results(request))
    store = c.store

    class CancelJustBeforeTheFinish(WorkflowStore):
        fired = False

        def finish(self, *args, **kwargs):
            if not self.fired:
                self.fired = True
                store.request_cancel(ACCESS.name, "acc-9001", {"by": "ops", "event_id": "e-cancel",
                                                                "received_at": "2026-12-01T00:00:00.000Z"})
            return super().finish(*args, **kwargs)

    racing = CancelJustBeforeTheFinish(store.client, store.workflow_table, MANIFEST, store.tables)
    published: list = []
    logic = LogicCoordinator(store=racing, deadlines=NoSchedules(), publish=published.append, manifest=MANIFEST)
    logic.handle(BusEvent.model_validate(person("acc-9001")))
    assert racing.fired
    assert [(e.detail_type, e.detail["status"]) for e in published] == [("Access Request Cancelled", "CANCELLED")]
    assert c.view(ACCESS, "acc-9001")["results"]["manager-approval"]["data"]["by"] == "grace.hopper"


def test_a_deadline_passed_before_the_trigger_came_gives_the_person_their_time_if_a_result_asked_meanwhile(c):
    """A coordinator catching up with a backlog longer than the deadline: the trigger's deadline has passed when it
    opens the record, and the results (one asking for the manager) are counted by other invocations between that
    read and the finish. The finish decided on the first read fails its version check; the read again must judge
    the deadline again: it has moved out to the person's time, so the request waits for the manager. It was
    TIMED_OUT at once, the manager never asked."""
    old = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    request = risky_request("acc-9100")
    request["time"] = old
    store = c.store
    concurrent = LogicCoordinator(store=store, deadlines=NoSchedules(), publish=lambda event: None,
                                  manifest=MANIFEST)

    class ResultsJustBeforeTheFinish(WorkflowStore):
        fired = False

        def finish(self, *args, **kwargs):
            if not self.fired:
                self.fired = True
                for result in access_results(request):
                    concurrent.handle(BusEvent.model_validate(result))
            return super().finish(*args, **kwargs)

    racing = ResultsJustBeforeTheFinish(store.client, store.workflow_table, MANIFEST, store.tables)
    published: list = []
    logic = LogicCoordinator(store=racing, deadlines=NoSchedules(), publish=published.append, manifest=MANIFEST)
    logic.handle(BusEvent.model_validate(request))
    assert racing.fired
    assert published == []
    view = c.view(ACCESS, "acc-9100")
    assert view["status"] == "RUNNING" and [w["agent"] for w in view["waiting_for"]] == ["manager-approval"]


def test_cancel_from_a_source_the_manifest_does_not_allow_is_refused_and_kept(c):
    request = risky_request()
    c.deliver(request, *access_results(request))
    c.deliver(cancel(ACCESS, "acc-9001", source="evil.ops"))
    [reason] = c.dead_letters().values()
    assert "forged cancel: source 'evil.ops' may not cancel access-request" in reason
    assert c.view(ACCESS, "acc-9001")["status"] == "RUNNING"


def test_cancel_of_an_unknown_workflow_is_dead_lettered_with_the_reason_on_its_last_receive(c):
    assert c.deliver(cancel(ACCESS, "acc-never")) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert c.dead_letters() == {}
    c.deliver(cancel(ACCESS, "acc-never"), receive_count=5)
    [reason] = c.dead_letters().values()
    assert "no such workflow (never opened), nothing to cancel" in reason


def test_waiting_lists_the_workflows_waiting_for_a_person(c):
    for request_id in ("acc-9001", "acc-9002"):
        request = risky_request(request_id)
        c.deliver(request, *access_results(request, ask=request_id == "acc-9001"))
    [waiting] = c.store.waiting()
    assert (waiting["workflow_id"], waiting["waiting_for"][0]["agent"]) == ("acc-9001", "manager-approval")
    assert c.store.waiting("order-fulfillment") == []


def sent_now(c, event: dict) -> dict:
    """``event`` as EventBridge stamps it when sent at the coordinator's clock's now."""
    return {**event, "time": c.clock.now.strftime("%Y-%m-%dT%H:%M:%SZ")}


def open_risky_request(c) -> dict:
    """A risky access request and its agents' results, sent and read now: it waits for the manager."""
    request = sent_now(c, risky_request())
    c.deliver(request, *access_results(request))
    return request


def place_order(c, *results: str) -> tuple[dict, str]:
    """An order sent and read now, with the named agents' results."""
    order = sent_now(c, eventbridge_envelope("Order Placed", "agentbus.orders", load_detail("order-placed.json")))
    c.deliver(order, *(answer(ORDER_RESULTS[agent], order) for agent in results))
    return order, order["detail"]["order_id"]


def test_a_cancel_sent_after_the_deadline_times_the_workflow_out_first_and_is_kept_late(c):
    """Black-box pass 9C, F2: with the coordinator behind (paused, a backlog), a cancel sent a minute after the
    deadline found the order still RUNNING and cancelled it when it was read before the queued deadline event: the
    outcome hung on the queue's order. The deadline came first: TIMED_OUT, the cancel kept as late."""
    _, order_id = place_order(c, "inventory")
    c.clock.advance(seconds=ORDERS.deadline_s + 60)
    c.deliver(sent_now(c, cancel(ORDERS, order_id)))
    [published] = c.outcomes()
    assert (published["detail-type"], published["detail"]["status"]) == ("Order Timed Out", "TIMED_OUT")
    view = c.view(ORDERS, order_id)
    assert view["cancel"] is None
    [late] = view["late_results"]
    assert late["kind"] == "cancel"
    c.deliver(deadline(ORDERS, order_id))  # the deadline event read afterwards changes nothing
    assert c.outcomes() == []


def test_a_cancel_sent_before_the_deadline_still_cancels_when_it_is_read_after_it(c):
    _, order_id = place_order(c)
    c.clock.advance(seconds=ORDERS.deadline_s - 30)
    timely_cancel = sent_now(c, cancel(ORDERS, order_id))
    c.clock.advance(seconds=90)  # read 60 s after the deadline, before the deadline event
    c.deliver(timely_cancel)
    [published] = c.outcomes()
    assert (published["detail-type"], published["detail"]["status"]) == ("Order Cancelled", "CANCELLED")


def test_an_approval_sent_after_the_persons_time_ran_out_is_late_even_when_read_first(aws):
    """The same for a person's answer: read before the queued deadline event, it completed the request."""
    c = Coordinator(*aws, external_wait_seconds=300)
    open_risky_request(c)
    c.clock.advance(seconds=400)
    c.deliver(sent_now(c, person("acc-9001")))
    [published] = c.outcomes()
    assert published["detail-type"] == "Access Request Timed Out"
    [late] = c.view(ACCESS, "acc-9001")["late_results"]
    assert late["late_reason"] == "reached the coordinator after the deadline: the workflow had timed out"


def test_an_approval_sent_in_time_and_read_with_the_deadline_counts_first(aws):
    """Black-box pass 9D, F10: with the coordinator paused, an approval sent 4 s after the request and its deadline
    event were read in one batch; the deadline was handled first (or raced it) and the approval was kept late. The
    batch's deadlines are handled after its other records."""
    c = Coordinator(*aws, external_wait_seconds=300)
    open_risky_request(c)
    c.clock.advance(seconds=4)
    approval = sent_now(c, person("acc-9001"))
    c.clock.advance(seconds=400)  # the coordinator reads both long after the person's time ran out
    c.deliver(deadline(ACCESS, "acc-9001"), approval)
    [published] = c.outcomes()
    assert published["detail-type"] == "Access Granted"
    assert c.view(ACCESS, "acc-9001")["late_results"] == []


# --- replays (black-box pass 10A, F1) -------------------------------------------------------------------

def replayed(envelope: dict, replay: str = "agentbus-20261203-111500-abc123") -> dict:
    """A replayed copy of ``envelope``: EventBridge's replay (and moto's) gives it an id of its own."""
    return {**envelope, "id": f"{envelope['id']}-{replay}", "replay-name": replay}


def refused_then_replayed(c, early: dict, refusal: str) -> dict:
    """``early`` (an answer or a cancel) sent before its request is dead-lettered with ``refusal`` (on its last
    receive); the request then comes and waits for its manager, and a replay puts ``early`` back: the record's view
    after it."""
    c.deliver(early, receive_count=5)
    assert refusal in next(iter(c.dead_letters().values()))
    request_id = early["detail"]["workflow_id"]
    request = risky_request(request_id)
    c.deliver(request, *access_results(request))
    c.deliver(replayed(early))
    return c.view(ACCESS, request_id)


def test_an_answer_refused_before_its_request_does_not_count_when_a_replay_puts_it_back(c):
    """An approval sent before its request is dead-lettered; an archive replay of that window, while the request
    waits for its manager, put it back and it granted the request: a replay decided a workflow."""
    view = refused_then_replayed(c, person("acc-9301", by="early.bird"), "no such workflow (never opened)")
    assert (view["status"], view["missing"]) == ("RUNNING", ["manager-approval"])
    [kept] = view["late_results"]
    assert kept["agent"] == "manager-approval" and "replayed (agentbus-20261203-111500-abc123)" in kept["late_reason"]
    assert c.outcomes() == []
    c.deliver(person("acc-9301", by="grace.hopper"))  # the manager's own answer still counts
    [published] = c.outcomes()
    assert published["detail-type"] == "Access Granted"
    assert published["detail"]["results"]["manager-approval"]["data"]["by"] == "grace.hopper"


def test_a_replayed_copy_of_the_answer_that_counted_changes_nothing(c):
    request = risky_request("acc-9302")
    approval = person("acc-9302")
    c.deliver(request, *access_results(request), approval)
    [published] = c.outcomes()
    c.deliver(replayed(approval))
    assert c.outcomes() == []
    assert c.view(ACCESS, "acc-9302")["late_results"] == []


def test_a_cancel_refused_before_its_request_does_not_cancel_it_when_replayed(c):
    view = refused_then_replayed(c, cancel(ACCESS, "acc-9303", reason="too early"), "nothing to cancel")
    assert view["status"] == "RUNNING" and c.outcomes() == []
    assert any("replayed" in kept["late_reason"] for kept in view["late_results"])
    counted = cancel(ACCESS, "acc-9303", reason="the employee left")
    c.deliver(counted)
    [published] = c.outcomes()
    assert published["detail"]["status"] == "CANCELLED" and "the employee left" in published["detail"]["reason"]
    c.deliver(replayed(counted))  # the cancel that counted, replayed: nothing
    assert c.outcomes() == []


def test_replaying_a_window_again_and_again_keeps_each_answer_and_cancel_aside_once(c):
    """Black-box pass 21A, F1: each replay of a window kept its answers and cancels aside once more (each copy has
    an id of its own), until the record held 20 and the rest were dead-lettered."""
    from functions.coordinator.layout import MAX_LATE

    request = risky_request("acc-9304")
    counted, second = person("acc-9304", by="grace.hopper"), person("acc-9304", approve=False, by="ada.lovelace")
    late_cancel = cancel(ACCESS, "acc-9304", reason="after the finish")
    c.deliver(request, *access_results(request), counted, second, late_cancel)
    [published] = c.outcomes()
    first = c.view(ACCESS, "acc-9304")["late_results"]
    assert len(first) == 2  # the second answer and the cancel, as first sent
    for replay in range(MAX_LATE + 5):
        name = f"agentbus-20261204-0300{replay:02d}-r"
        assert c.deliver(*(replayed(e, name) for e in (counted, second, late_cancel))) == {"batchItemFailures": []}
    assert c.outcomes() == [] and c.dead_letters() == {}
    # A copy of the answer that counted, or of one kept aside when first sent, is nothing new (review 21E: each
    # late one used a second entry of the record's MAX_LATE).
    assert c.view(ACCESS, "acc-9304")["late_results"] == first
    other = person("acc-9304", by="alan.turing")  # an answer the coordinator never read, replayed twice: kept once
    for replay in ("agentbus-20261204-031500-a", "agentbus-20261204-031600-b"):
        c.deliver(replayed(other, replay))
    late = c.view(ACCESS, "acc-9304")["late_results"]
    assert len(late) == 3
    assert [entry["data"]["by"] for entry in late if "replayed (" in entry["late_reason"]] == ["alan.turing"]


# Nested 100,000 deep: Python 3.13's reader (Lambda's) reads 5,000 levels where 3.11's stops near 1,000.
@pytest.mark.parametrize("trigger", ['{"meta": ' + "[" * 100_000 + "]" * 100_000 + "}",
                                     '{"meta": ' + "9" * 5000 + "}"])
def test_a_record_whose_trigger_python_does_not_read_back_dead_letters_what_needs_it_at_once(c, trigger):
    """Review 21E, M1: reading a record back through read_json turned a RecursionError into UnreadableJson, which
    the consumer took for a transient failure (five receives). A record written by hand, or a trigger nested just
    deep enough to be written and not read back one frame deeper."""
    c.session.client("dynamodb").put_item(TableName=c.resources.tables["workflows"], Item={
        "workflow_id": {"S": "acc-9305"}, "workflow": {"S": ACCESS.name}, "status": {"S": "RUNNING"},
        "version": {"N": "1"}, "trigger_digest": {"S": "d" * 32}, "trigger": {"S": trigger}})
    assert c.deliver(cancel(ACCESS, "acc-9305")) == {"batchItemFailures": []}  # kept on its first receive
    [reason] = c.dead_letters().values()
    assert reason.startswith("data the event needs holds JSON Python does not read: ")


# --- entries aside past the record's limit (black-box pass 20A) ---------------------------------------------------

def test_answers_and_cancels_past_the_records_limit_are_dead_lettered_with_their_reason_not_dropped(c):
    """F1: the 21st answer after a cancel was acknowledged and kept nowhere."""
    from functions.coordinator.layout import MAX_LATE

    request = risky_request()
    c.deliver(request, *access_results(request))
    c.deliver(cancel(ACCESS, "acc-9001"))
    answers = [person("acc-9001", by=f"mgr-{i}") for i in range(MAX_LATE + 2)]
    for one in answers:  # one at a time: each a batch of its own
        assert c.deliver(one) == {"batchItemFailures": []}
    kept = {late["event_id"] for late in c.view(ACCESS, "acc-9001")["late_results"]}
    assert kept == {one["id"] for one in answers[:MAX_LATE]}
    over = [cancel(ACCESS, "acc-9001", by="late-ops"), *answers[MAX_LATE:]]
    c.deliver(over[0])
    letters = c.dead_letters()
    assert {json.loads(body)["id"] for body in letters} == {one["id"] for one in over}
    assert set(letters.values()) == {"arrived after the workflow was cancelled; the record keeps no more entries aside"}
    assert len(c.view(ACCESS, "acc-9001")["late_results"]) == MAX_LATE
    [published] = c.outcomes()
    assert published["detail-type"] == "Access Request Cancelled"


class FirstUpdateLost:
    """A DynamoDB client whose first ``update_item`` fails (the invocation ends between a result's two writes)."""

    def __init__(self, client) -> None:
        self.client, self.lost = client, False

    def update_item(self, **kwargs):
        if not self.lost:
            self.lost = True
            raise ConnectionError("connection lost")
        return self.client.update_item(**kwargs)

    def __getattr__(self, name):
        return getattr(self.client, name)


def test_answers_handled_together_after_a_cancel_are_each_kept_with_the_reason_they_are_late(c):
    """F2: answers to a finished record, handled at once, found each other's item (one per agent and version): all
    but one were kept as "another answer already counted: None by None (event None)", and one handled while another
    was between its two writes was not kept at all. Here the first answer's invocation ends between the two."""
    from dataclasses import replace

    from functions.coordinator.handler import build
    from tests.conftest import settings_for

    request = risky_request()
    c.deliver(request, *access_results(request))
    c.deliver(cancel(ACCESS, "acc-9001"))
    first, second = person("acc-9001", by="mgr-0"), person("acc-9001", by="mgr-1")
    handler = c.handler
    c.handler = build(settings_for(c.resources, "coordinator", MANIFEST, record_concurrency=1),
                      replace(c.clients, dynamodb=FirstUpdateLost(c.clients.dynamodb)), clock=c.clock)
    assert c.deliver(first) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}  # its item is written
    c.handler = handler
    assert c.deliver(second) == {"batchItemFailures": []}
    assert c.deliver(first, receive_count=2) == {"batchItemFailures": []}
    late = c.view(ACCESS, "acc-9001")["late_results"]
    cancelled = "arrived after the workflow was cancelled"
    assert {entry["event_id"]: entry["late_reason"] for entry in late} == {first["id"]: cancelled,
                                                                            second["id"]: cancelled}


def test_an_entry_past_the_limit_still_moves_the_record_on_before_it_is_dead_lettered(c):
    """Review rev20d, L2: a delivery that finds the record full is dead-lettered, but first does what any delivery
    does: here apply a cancel whose own delivery ended between its write and the finish."""
    from functions.coordinator.layout import MAX_LATE

    request = risky_request()
    c.deliver(request, *access_results(request))

    def stale(by: str) -> dict:
        answer = person("acc-9001", by=by)
        answer["detail"]["trigger_digest"] = "0" * 32  # for a version the workflow does not hold: kept aside
        return answer

    for number in range(MAX_LATE):
        c.deliver(stale(f"mgr-{number}"))
    kind, _ = c.store.request_cancel(ACCESS.name, "acc-9001", {"by": "ops", "event_id": "evt-cancel"})
    assert kind == "recorded" and c.outcomes() == []  # written, not applied: its delivery ended there
    over = stale("mgr-late")
    assert c.deliver(over) == {"batchItemFailures": []}
    [published] = c.outcomes()
    assert published["detail-type"] == "Access Request Cancelled"
    [reason] = c.dead_letters().values()
    assert reason.endswith("; the record keeps no more entries aside")
