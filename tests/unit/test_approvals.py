"""People in the loop from the CLI (agentbus/approvals.py): approve, decline, cancel and pending read the record
first, refuse in one line with exit code 1 what would change nothing, send the same event `aws events put-events`
would, and `agentbus status` says what a workflow waits for, its cancel, its quorum and its late results."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agentbus import approvals, cli, discovery
from agentbus import operations as ops
from agentbus.local.runtime import LocalRuntime, RuntimeOptions
from agentbus.resources import ConsumerResources, Resources
from functions.common.models import CancelRequested, ExternalResult
from functions.common.settings import EXTERNAL_WAIT_SECONDS
from functions.manifest import MANIFEST
from tests.conftest import load_detail, load_entries

NOW = datetime(2026, 11, 24, 10, 33, 0, tzinfo=UTC)
HIGH_RISK = load_detail("access-requested-high-risk.json")
DIGEST = load_detail("access-approved.json")["trigger_digest"]


class FakeEvents:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail = fail

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.sent += Entries
        if self.fail:
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "AccessDenied", "ErrorMessage": "no"}]}
        return {"FailedEntryCount": 0, "Entries": [{"EventId": f"ev-{len(self.sent)}"}]}


class FakeDeployment(discovery.Deployment):
    def __init__(self, events: FakeEvents, local: bool = True) -> None:
        queue = ConsumerResources(queue_url="http://q", queue_arn="arn:q", dlq_url="http://dlq", dlq_arn="arn:dlq")
        resources = Resources(bus_name="agentbus", bus_arn="arn:bus", archive_name="a", schedule_group="g",
                              scheduler_role_arn="arn:role", tables={"workflows": "w"},
                              consumers={"coordinator": queue}, local=local)
        super().__init__(session=None, endpoint_url="http://127.0.0.1:9", resources=resources)
        self.events = events

    def client(self, service: str) -> Any:
        if service == "events":
            return self.events
        if service == "sts":
            return type("Sts", (), {"get_caller_identity": lambda _self: {
                "Arn": "arn:aws:sts::123456789012:assumed-role/Managers/grace"}})()
        raise AssertionError(f"the verb should not need {service}")


def access_view(**changes: Any) -> dict[str, Any]:
    view = {
        "workflow_id": "acc-3006", "workflow": "access-request", "status": "RUNNING", "reason": None,
        "trigger": HIGH_RISK, "trigger_digest": DIGEST, "missing": ["manager-approval"],
        "results": {"risk": {"detail_type": "Risk Accepted", "outcome": "success", "asks_for": ["manager-approval"]}},
        "waiting_for": [{"agent": "manager-approval", "kind": "a person (the employee's manager)",
                         "asked_at": "2026-11-24T10:30:00.000Z", "wait_until": "2099-11-25T10:30:00.000Z"}],
        "deadline_at": "2099-11-25T10:30:00.000Z", "cancel": None, "quorum": None, "late_results": [],
    }
    return {**view, **changes}


@pytest.fixture
def events() -> FakeEvents:
    return FakeEvents()


@pytest.fixture
def views(monkeypatch, events) -> dict[str, dict[str, Any]]:
    """The records the CLI reads, by id; an id not there is unknown, as ops.workflow_status says it."""
    known: dict[str, dict[str, Any]] = {"acc-3006": access_view()}

    def status(_deployment, workflow_id, workflow=None, _manifest=None, **_options):
        if workflow_id not in known or workflow not in (None, known[workflow_id]["workflow"]):
            raise ops.UnknownWorkflowId(f"unknown workflow id {workflow_id!r}: no such workflow in w")
        return known[workflow_id]

    monkeypatch.setattr(approvals, "workflow_status", status)
    monkeypatch.setattr(ops, "workflow_status", status)
    monkeypatch.setattr(discovery, "find_deployment", lambda *_: FakeDeployment(events))
    monkeypatch.setattr(approvals.getpass, "getuser", lambda: "ada")
    return known


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- approve / decline ----------------------------------------------------------------------------------------

def test_approve_sends_the_managers_approval_for_the_version_of_the_request_the_record_holds(views, events, capsys):
    code, out, err = run(capsys, "approve", "acc-3006", "--by", "grace.hopper@agentbus.example", "--note", "ok")
    assert (code, err) == (0, "")
    [entry] = events.sent
    assert (entry["EventBusName"], entry["Source"], entry["DetailType"]) == (
        "agentbus", "agentbus.approvals", "Access Approved")
    detail = ExternalResult.model_validate(json.loads(entry["Detail"]))
    assert detail.model_dump(exclude_none=True) == {
        "workflow": "access-request", "workflow_id": "acc-3006", "agent": "manager-approval",
        "by": "grace.hopper@agentbus.example", "note": "ok", "trigger_digest": DIGEST}
    assert "sent 'Access Approved' from agentbus.approvals for access-request acc-3006 (event ev-1)" in out
    assert "see `agentbus status acc-3006 --workflow access-request`" in out


def test_the_cli_sends_what_the_sample_file_holds(views, events, capsys):
    """`agentbus approve` and `aws events put-events --entries file://events/access-approved.json` are one event."""
    [sample] = load_entries("access-approved.json")
    sample_detail = json.loads(sample["Detail"])
    run(capsys, "approve", "acc-3006", "--by", sample_detail["by"], "--note", sample_detail["note"])
    [entry] = events.sent
    assert {k: entry[k] for k in ("Source", "DetailType", "EventBusName")} == {
        k: sample[k] for k in ("Source", "DetailType", "EventBusName")}
    assert json.loads(entry["Detail"]) == sample_detail


@pytest.mark.parametrize("verb", ["approve", "decline"])
def test_an_answer_nobody_asked_for_yet_is_refused_and_nothing_is_sent(views, events, capsys, verb):
    # Sent anyway, it was kept and counted once a result asked: an approval given before the risk was assessed.
    views["acc-3006"] = access_view(waiting_for=[], missing=[], results={})
    code, out, err = run(capsys, verb, "acc-3006")
    assert (code, out, events.sent) == (1, "", [])
    assert err == (f"agentbus {verb}: access-request acc-3006 does not wait for manager-approval: no result has "
                   f"asked for it (yet), so there is nothing to {verb}; nothing sent (`agentbus pending` lists what "
                   "waits for a person)\n")


def test_decline_sends_the_refusal_and_by_defaults_to_the_local_user(views, events, capsys):
    code, _, _ = run(capsys, "decline", "acc-3006")
    assert code == 0
    [entry] = events.sent
    assert (entry["Source"], entry["DetailType"]) == ("agentbus.approvals", "Access Declined")
    assert json.loads(entry["Detail"])["by"] == "ada"
    assert "note" not in json.loads(entry["Detail"])


def test_on_aws_by_defaults_to_the_callers_identity(events):
    assert approvals.default_by(FakeDeployment(events, local=False)) == (
        "arn:aws:sts::123456789012:assumed-role/Managers/grace")


@pytest.mark.parametrize("verb", ["approve", "decline"])
def test_an_unknown_id_is_refused_in_one_line_and_nothing_is_sent(views, events, capsys, verb):
    code, out, err = run(capsys, verb, "acc-9999")
    assert (code, out, events.sent) == (1, "", [])
    assert err == f"agentbus {verb}: unknown workflow id 'acc-9999': no such workflow in w\n"


@pytest.mark.parametrize("status", ["COMPLETED", "REJECTED", "TIMED_OUT", "CANCELLED"])
def test_a_finished_workflow_is_refused_naming_its_status(views, events, capsys, status):
    views["acc-3006"] = access_view(status=status, reason="risk: too high")
    code, out, err = run(capsys, "approve", "acc-3006")
    assert (code, out, events.sent) == (1, "", [])
    assert err == (f"agentbus approve: access-request acc-3006 is already {status} (risk: too high): nothing to "
                   "approve, nothing sent\n")


def test_an_answer_given_already_is_refused_naming_it(views, events, capsys):
    views["acc-3006"]["results"]["manager-approval"] = {"detail_type": "Access Approved", "data": {"by": "grace"}}
    code, _, err = run(capsys, "decline", "acc-3006")
    assert (code, events.sent) == (1, [])
    assert "manager-approval answered already (Access Approved by grace)" in err


def test_a_workflow_with_no_person_to_wait_for_is_refused(views, events, capsys):
    views["ord-1001"] = {"workflow_id": "ord-1001", "workflow": "order-fulfillment", "status": "RUNNING",
                         "trigger": {"order_id": "ord-1001"}, "results": {}}
    code, _, err = run(capsys, "approve", "ord-1001")
    assert (code, events.sent) == (1, [])
    assert "workflow order-fulfillment waits for no person" in err


def test_an_unknown_agent_is_a_usage_error_naming_the_known_ones(views, events, capsys):
    code, _, err = run(capsys, "approve", "acc-3006", "--agent", "ceo")
    assert (code, events.sent) == (2, [])
    assert "unknown external agent 'ceo'; known: manager-approval" in err


def test_a_request_that_never_arrived_cannot_be_approved(views, events, capsys):
    views["acc-3006"] = access_view(trigger=None)
    code, _, err = run(capsys, "approve", "acc-3006")
    assert (code, events.sent) == (1, [])
    assert "the request itself never arrived" in err


def test_a_note_too_long_is_a_usage_error_naming_the_field(views, events, capsys):
    code, _, err = run(capsys, "approve", "acc-3006", "--note", "x" * 2049)
    assert (code, events.sent) == (2, [])
    assert "note: String should have at most 2048 characters" in err and err.count("\n") == 1


@pytest.mark.parametrize("verb", ["approve", "decline", "cancel"])
def test_an_empty_by_is_a_usage_error_not_the_default_identity(views, events, capsys, verb):
    code, _, err = run(capsys, verb, "acc-3006", "--by", "")
    assert (code, events.sent) == (2, [])
    assert "by" in err and err.count("\n") == 1


@pytest.mark.parametrize("verb", ["approve", "decline", "cancel"])
def test_usage_errors_exit_2_as_in_every_other_verb(monkeypatch, events, capsys, verb):
    # What the real status read raises for them (only an id no workflow has is a refusal, exit 1).
    def status(_deployment, workflow_id, workflow=None, _manifest=None, **_options):
        raise ops.OperationError(f"id {workflow_id!r} is used by several workflows (a, b): pass --workflow NAME")

    monkeypatch.setattr(approvals, "workflow_status", status)
    monkeypatch.setattr(discovery, "find_deployment", lambda *_: FakeDeployment(events))
    code, out, err = run(capsys, verb, "acc-3006")
    assert (code, out, events.sent) == (2, "", [])
    assert err == f"agentbus {verb}: id 'acc-3006' is used by several workflows (a, b): pass --workflow NAME\n"


def test_a_put_the_bus_refuses_is_an_error_naming_it(views, monkeypatch, capsys):
    failing = FakeEvents(fail=True)
    monkeypatch.setattr(discovery, "find_deployment", lambda *_: FakeDeployment(failing))
    code, _, err = run(capsys, "approve", "acc-3006")
    assert code == 2
    assert err == "agentbus approve: the bus refused 'Access Approved' from agentbus.approvals: AccessDenied: no\n"


def test_several_external_agents_need_agent_unless_only_one_is_waited_for():
    from dataclasses import replace

    workflow = MANIFEST.workflow("access-request")
    second = replace(workflow.external[0], name="security-approval")
    two = replace(workflow, external=(*workflow.external, second))
    view = access_view()
    assert approvals.choose_agent(two, view, None).name == "manager-approval"
    with pytest.raises(ops.OperationError, match="several external agents .*: pass --agent NAME"):
        approvals.choose_agent(two, access_view(waiting_for=[]), None)
    assert approvals.choose_agent(two, view, "security-approval") is second


# --- cancel ---------------------------------------------------------------------------------------------------

def test_cancel_sends_an_operator_cancel_request(views, events, capsys):
    code, out, err = run(capsys, "cancel", "acc-3006", "--reason", "asked by mistake", "--by", "ops")
    assert (code, err) == (0, "")
    [entry] = events.sent
    assert (entry["Source"], entry["DetailType"]) == ("agentbus.operator", "Workflow Cancel Requested")
    assert CancelRequested.model_validate(json.loads(entry["Detail"])).model_dump() == {
        "workflow": "access-request", "workflow_id": "acc-3006", "by": "ops", "reason": "asked by mistake"}
    assert "sent 'Workflow Cancel Requested' from agentbus.operator" in out


@pytest.mark.parametrize("status", ["COMPLETED", "REJECTED", "TIMED_OUT", "CANCELLED"])
def test_cancelling_a_finished_workflow_changes_nothing_and_says_so(views, events, capsys, status):
    views["acc-3006"] = access_view(status=status)
    code, out, err = run(capsys, "cancel", "acc-3006")
    assert (code, out, events.sent) == (1, "", [])
    assert err == (f"agentbus cancel: access-request acc-3006 is already {status}: cancel changed nothing, "
                   "nothing sent\n")


def test_a_workflow_that_takes_no_cancel_from_the_operator_is_refused(views, events, monkeypatch, capsys):
    from dataclasses import replace

    workflow = MANIFEST.workflow("access-request")
    manifest = replace(MANIFEST, workflows=(replace(workflow, cancel_sources=("agentbus.crm",)),))
    with pytest.raises(approvals.Refused, match="takes cancels only from agentbus.crm, not from agentbus.operator"):
        approvals.cancel(FakeDeployment(events), "acc-3006", manifest=manifest)
    assert events.sent == []


# --- pending --------------------------------------------------------------------------------------------------

class FakeStore:
    def __init__(self, views: list[dict[str, Any]]) -> None:
        self.views = views
        self.asked: list[str | None] = []

    def waiting(self, workflow: str | None = None) -> list[dict[str, Any]]:
        self.asked.append(workflow)
        return [v for v in self.views if workflow in (None, v["workflow"])]


def test_pending_lists_who_waits_since_when_longest_first(events):
    older = access_view(workflow_id="acc-3001", waiting_for=[{
        "agent": "manager-approval", "kind": "a person", "asked_at": "2026-11-24T08:03:00.000Z",
        "wait_until": "2026-11-25T08:03:00.000Z"}])
    store = FakeStore([access_view(), older])
    rows = approvals.pending(FakeDeployment(events), "access-request", now=NOW, store=store)
    assert store.asked == ["access-request"]
    assert [(r["workflow_id"], r["waiting_s"]) for r in rows] == [("acc-3001", 9000), ("acc-3006", 180)]
    assert rows[1] == {"workflow": "access-request", "workflow_id": "acc-3006", "agent": "manager-approval",
                       "kind": "a person (the employee's manager)", "asked_at": "2026-11-24T10:30:00.000Z",
                       "waiting_s": 180, "wait_until": "2099-11-25T10:30:00.000Z"}


def test_pending_refuses_an_unknown_workflow(events):
    with pytest.raises(ops.OperationError, match="unknown workflow 'nope'"):
        approvals.pending(FakeDeployment(events), "nope", store=FakeStore([]))


@pytest.mark.parametrize("as_json", [False, True])
def test_pending_prints_a_table_or_json(views, monkeypatch, capsys, as_json):
    real = approvals.pending
    monkeypatch.setattr(approvals, "pending", lambda d, w=None: real(d, w, now=NOW, store=FakeStore([access_view()])))
    code, out, err = run(capsys, "pending", *(["--json"] if as_json else []))
    assert (code, err) == (0, "")
    if as_json:
        assert [r["workflow_id"] for r in json.loads(out)] == ["acc-3006"]
    else:
        assert "acc-3006" in out and "manager-approval" in out and "3 min ago" in out
        assert "1 waiting" in out


def test_pending_shows_long_ids_whole_so_they_can_be_copied(views, monkeypatch, capsys):
    """Two waiting ids sharing a 50-character prefix: each printed whole (rich cut them to fit 80 columns)."""
    prefix = "req-2026-12-02-platform-team-customer-db-backfill-"
    store = FakeStore([access_view(workflow_id=f"{prefix}A"), access_view(workflow_id=f"{prefix}B")])
    real = approvals.pending
    monkeypatch.setattr(approvals, "pending", lambda d, w=None: real(d, w, now=NOW, store=store))
    code, out, _ = run(capsys, "pending")
    assert code == 0 and f"{prefix}A" in out and f"{prefix}B" in out


def test_pending_says_when_nothing_waits(views, monkeypatch, capsys):
    monkeypatch.setattr(approvals, "pending", lambda d, w=None: [])
    assert run(capsys, "pending") == (0, "nothing waits for a person\n", "")


# --- status ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("seconds", "text"), [(0, "0 s"), (59, "59 s"), (180, "3 min"), (3600, "1 h"),
                                               (3900, "1 h 5 min"), (90000, "1 d 1 h"), (None, "?")])
def test_ago(seconds, text):
    assert approvals.ago(seconds) == text


def test_status_says_what_a_running_workflow_waits_for():
    assert cli.people_notes(access_view(), NOW) == [
        "waits for manager-approval: a person (the employee's manager), asked 3 min ago, "
        "waits until 2099-11-25T10:30:00.000Z"]


def test_status_of_a_finished_workflow_waits_for_nobody():
    assert cli.people_notes(access_view(status="COMPLETED"), NOW) == []


def test_status_shows_the_cancel_the_quorum_and_each_late_result_with_its_reason():
    view = access_view(
        status="CANCELLED", waiting_for=[],
        cancel={"by": "ops", "reason": "asked by mistake", "received_at": "2026-11-24T10:35:00.000Z"},
        quorum={"needed": 2, "agents": ["a", "b", "c"], "agreed": ["a"], "disagreed": ["b"], "pending": ["c"]},
        late_results=[{"agent": "manager-approval", "detail_type": "Access Approved", "data": {"by": "grace"},
                       "received_at": "2026-11-24T10:36:00.000Z", "late_reason": "after the cancel"}])
    assert cli.people_notes(view, NOW) == [
        "cancelled by ops at 2026-11-24T10:35:00.000Z: asked by mistake",
        "quorum: 2 of a, b, c must succeed; agreed: a; disagreed: b; pending: c",
        "late, not counted: manager-approval Access Approved by grace (2026-11-24T10:36:00.000Z): after the cancel",
    ]


def test_a_late_cancel_is_named_as_a_cancel():
    view = access_view(status="COMPLETED", late_results=[
        {"agent": None, "kind": "cancel", "by": "ops", "received_at": "2026-11-24T10:40:00.000Z",
         "late_reason": "arrived after the workflow had finished (COMPLETED)"}])
    assert cli.people_notes(view, NOW) == [
        "late, not counted: a cancel by ops (2026-11-24T10:40:00.000Z): arrived after the workflow had finished "
        "(COMPLETED)"]


def test_status_prints_the_wait_in_the_human_view(views, monkeypatch, capsys):
    views["acc-3006"] = access_view(waiting_for=[{**access_view()["waiting_for"][0],
                                                  "asked_at": (datetime.now(UTC) - timedelta(minutes=3)).isoformat()}])
    code, out, _ = run(capsys, "status", "acc-3006")
    assert code == 0
    assert "waits for manager-approval: a person (the employee's manager), asked 3 min ago, waits until" in out


# --- agentbus up --approval-wait ------------------------------------------------------------------------------

def test_up_defaults_to_a_short_local_approval_wait_and_takes_another():
    parser = cli.build_parser()
    assert parser.parse_args(["up"]).approval_wait == cli.LOCAL_APPROVAL_WAIT_S < 24 * 3600
    assert parser.parse_args(["up", "--approval-wait", "60"]).approval_wait == 60


def test_the_approval_wait_reaches_the_coordinators_environment_only():
    queue = ConsumerResources(queue_url="http://q", queue_arn="arn:q", dlq_url="http://dlq", dlq_arn="arn:dlq")
    resources = Resources(bus_name="agentbus", bus_arn="arn:bus", archive_name="a", schedule_group="g",
                          scheduler_role_arn="arn:role", tables={t.logical_name: t.logical_name
                                                                 for t in MANIFEST.all_tables},
                          consumers={c.name: queue for c in MANIFEST.consumers}, local=True)
    runtime = LocalRuntime("http://127.0.0.1:9", resources, options=RuntimeOptions(external_wait_seconds=60))
    assert runtime.environment_for(MANIFEST.consumer("coordinator"))[EXTERNAL_WAIT_SECONDS] == "60"
    assert runtime.settings_for(MANIFEST.consumer("coordinator")).external_wait_seconds == 60
    assert EXTERNAL_WAIT_SECONDS not in runtime.environment_for(MANIFEST.consumer("risk"))
    default = LocalRuntime("http://127.0.0.1:9", resources)
    assert EXTERNAL_WAIT_SECONDS not in default.environment_for(MANIFEST.consumer("coordinator"))


@pytest.mark.parametrize(("argv", "field"), [
    (["approve", "acc-3006", "--by", ""], "by"),
    (["decline", "acc-3006", "--note", "x" * 2049], "note"),
    (["cancel", "acc-3006", "--by", " "], "by"),
    (["cancel", "acc-3006", "--reason", "x" * 2049], "reason"),
    (["approve", "acc-9999", "--by", ""], "by"),  # an id no workflow has
    (["approve", "acc-3006", "--by", "ann\nshipped"], "by"),  # two lines would forge a line of the trace
    (["cancel", "acc-3006", "--by", "ops\tteam"], "by"),
])
def test_a_bad_option_is_a_usage_error_whatever_the_workflows_state(views, events, capsys, argv, field):
    # A finished workflow (or an unknown id) was refused first, exit 1: the README's usage error (exit 2) showed only
    # while the workflow ran.
    views["acc-3006"] = access_view(status="COMPLETED")
    code, out, err = run(capsys, *argv)
    assert (code, out, events.sent) == (2, "", [])
    assert f"cannot {argv[0]}: {field}: " in err and err.count("\n") == 1, err


def test_a_blank_by_is_named_blank_not_too_short(views, events, capsys):
    views["acc-3006"] = access_view(status="RUNNING")
    for blank in ("   ", "", "\t"):
        code, _, err = run(capsys, "approve", "acc-3006", "--by", blank)
        assert (code, events.sent) == (2, [])
        assert "cannot approve: by: must not be blank" in err, repr(blank)


@pytest.mark.parametrize("verb", ["approve", "decline", "cancel"])
def test_an_answer_or_cancel_after_the_deadline_is_refused_while_the_record_still_runs(views, events, capsys, verb):
    """Black-box pass 9C, F4: with the coordinator paused, the record still said RUNNING after its deadline and the
    verb said "sent" (exit 0); the coordinator then timed the request out and kept the answer or cancel as late."""
    views["acc-3006"] = access_view(deadline_at="2026-11-25T10:30:00.000Z", waiting_for=[
        {"agent": "manager-approval", "kind": "a person (the employee's manager)",
         "asked_at": "2026-11-24T10:30:00.000Z", "wait_until": "2026-11-25T10:30:00.000Z"}])
    code = cli.main([verb, "acc-3006", "--by", "grace"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "its deadline 2026-11-25T10:30:00.000Z has passed" in err and "nothing sent" in err
    assert events.sent == []


def test_pending_and_status_say_when_a_persons_time_has_passed_but_the_record_still_runs(capsys):
    view = access_view(waiting_for=[{"agent": "manager-approval", "kind": "a person (the employee's manager)",
                                     "asked_at": "2026-11-24T10:30:00.000Z", "wait_until": "2026-11-25T10:30:00.000Z"}])
    [line] = approvals.waiting_lines(view, now=datetime(2026, 11, 26, tzinfo=UTC))
    assert line.endswith("waited until 2026-11-25T10:30:00.000Z (passed: the coordinator has not timed it out "
                         "yet; is it paused or behind? `agentbus agent list`)")


def test_an_id_an_order_shares_with_an_access_request_needs_no_workflow_to_be_answered(monkeypatch, events):
    # Black-box pass 21B, F6: `approve dup-1` asked for --workflow, though orders never wait for a person.
    from types import SimpleNamespace

    class Store:
        workflow_table = "workflows"

        def find(self, workflow_id):
            return [SimpleNamespace(workflow=name) for name in ("access-request", "order-fulfillment")]

        def view(self, record):
            return {"workflow": record.workflow}

    people = frozenset({"access-request"})
    assert ops._record_view(Store(), "dup-1", None, people) == {"workflow": "access-request"}
    assert ops._record_view(Store(), "dup-1", "order-fulfillment", people) == {"workflow": "order-fulfillment"}
    with pytest.raises(ops.OperationError, match=r"used by several workflows \(access-request, order-fulfillment\)"):
        ops._record_view(Store(), "dup-1", None)  # status: both are its requests
    with pytest.raises(ops.OperationError, match="used by several workflows"):  # neither can be answered
        ops._record_view(Store(), "dup-1", None, frozenset({"change-review"}))

    seen = {}

    def status(_deployment, workflow_id, workflow=None, _manifest=None, **options):
        seen.update(options)
        raise ops.UnknownWorkflowId("stop here")

    monkeypatch.setattr(approvals, "workflow_status", status)
    with pytest.raises(approvals.Refused):
        approvals.answer(FakeDeployment(events), "dup-1", "approve")
    assert seen["among"] == {w.name for w in MANIFEST.workflows if w.external}
    assert "access-request" in seen["among"] and "order-fulfillment" not in seen["among"]
