"""The ``Access Requested`` model (every field's rule and the justification's 2,000-character boundary), and
every sample this workflow pair adds to events/: the triggers parse and lead to the decisions their names
promise on the seed directory; each result sample is what its agent decides on its trigger sample."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from functions.access.identity.logic import IdentityCheck
from functions.access.models import MAX_JUSTIFICATION_CHARS, AccessRequested
from functions.access.policy.logic import PolicyCheck
from functions.access.risk import logic as risk
from functions.common.decisions import Decision
from functions.common.digest import trigger_digest
from functions.common.models import describe_validation_error
from functions.directory.audit.logic import SecurityAudit
from functions.directory.models import UserCreated
from tests.unit.access_samples import (
    ACCESS_TRIGGERS,
    INVALID_ACCESS_TRIGGER,
    RESULTS,
    USER_TRIGGERS,
    load_detail,
    load_entries,
    seed_directory,
)

VALID = load_detail("access-requested.json")


def parse(**overrides) -> AccessRequested:
    return AccessRequested.model_validate({**VALID, **overrides})


def error_of(**overrides) -> str:
    with pytest.raises(ValidationError) as raised:
        parse(**overrides)
    return describe_validation_error(raised.value)


# --- the model ----------------------------------------------------------------------------------------------


def test_valid_request_parses():
    request = parse()
    assert (request.request_id, request.employee_id, request.resource, request.access_level) == (
        "acc-3001", "emp-1001", "source-code", "read")
    assert request.requested_at.utcoffset() is not None


@pytest.mark.parametrize("level", ["read", "write", "admin"])
def test_each_access_level_is_accepted(level):
    assert parse(access_level=level).access_level == level


@pytest.mark.parametrize("level", ["superuser", "READ", "", None, 1])
def test_any_other_access_level_is_refused_naming_the_field(level):
    assert error_of(access_level=level).startswith("access_level: Input should be 'read', 'write' or 'admin'")


def test_justification_of_exactly_2000_characters_is_accepted():
    assert len(parse(justification="x" * MAX_JUSTIFICATION_CHARS).justification) == 2000


def test_justification_of_2001_characters_is_refused_naming_the_field():
    assert error_of(justification="x" * (MAX_JUSTIFICATION_CHARS + 1)) == (
        "justification: String should have at most 2000 characters")


def test_empty_justification_is_a_valid_request_for_the_risk_agent_to_judge():
    assert parse(justification="").justification == ""


@pytest.mark.parametrize(("when", "message"), [
    ("2026-11-24T10:15:00", "requested_at: Input should have timezone info"),
    ("next tuesday", "requested_at: Input should be a valid datetime"),
])
def test_requested_at_must_be_an_iso_datetime_with_timezone(when, message):
    assert error_of(requested_at=when).startswith(message)


def test_requested_at_keeps_its_offset():
    assert parse(requested_at="2026-11-24T12:15:00+02:00").requested_at.hour == 12


@pytest.mark.parametrize("field", ["request_id", "employee_id", "resource", "access_level", "justification",
                                   "requested_at"])
def test_each_field_is_required(field):
    detail = {name: value for name, value in VALID.items() if name != field}
    with pytest.raises(ValidationError) as raised:
        AccessRequested.model_validate(detail)
    assert describe_validation_error(raised.value) == f"{field}: Field required"


@pytest.mark.parametrize("field", ["employee_id", "resource"])
def test_ids_and_resource_must_not_be_blank(field):
    assert error_of(**{field: "   "}).startswith(f"{field}: must not be blank")


@pytest.mark.parametrize("bad", ["   ", "", "x" * 129, "acc 1", "acc-é"])
def test_the_request_id_follows_the_workflow_id_rule(bad):
    error = error_of(request_id=bad)
    assert error.startswith("request_id: ") and "128" in error


def test_unknown_fields_are_ignored():
    assert not hasattr(parse(priority="urgent"), "priority")


# --- the samples ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*ACCESS_TRIGGERS, INVALID_ACCESS_TRIGGER])
def test_access_samples_are_put_events_entries(name):
    [entry] = load_entries(name)
    assert set(entry) == {"Source", "DetailType", "EventBusName", "Detail"}
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == ("agentbus.access", "Access Requested",
                                                                             "agentbus")
    assert isinstance(json.loads(entry["Detail"]), dict)


@pytest.mark.parametrize("name", ACCESS_TRIGGERS)
def test_access_trigger_samples_parse(name):
    AccessRequested.model_validate(load_detail(name))


def test_invalid_sample_names_both_bad_fields():
    with pytest.raises(ValidationError) as raised:
        AccessRequested.model_validate(load_detail(INVALID_ACCESS_TRIGGER))
    message = describe_validation_error(raised.value)
    assert "access_level: Input should be 'read', 'write' or 'admin'" in message
    assert "justification: String should have at most 2000 characters" in message


def test_sample_request_ids_are_distinct():
    ids = [load_detail(name)["request_id"] for name in (*ACCESS_TRIGGERS, INVALID_ACCESS_TRIGGER)]
    assert len(ids) == len(set(ids))


def decisions(name: str) -> dict[str, Decision]:
    directory = seed_directory()
    request = AccessRequested.model_validate(load_detail(name))
    return {"identity": IdentityCheck(directory).decide(request), "policy": PolicyCheck(directory).decide(request),
            "risk": risk.decide(request)}


# What each sample's name promises: the agents that fail it (none: the coordinator grants it).
PROMISES = {
    "access-requested.json": {},
    "access-requested-contractor-admin.json": {"policy": "Access Not Permitted"},
    "access-requested-inactive.json": {"identity": "Identity Rejected"},
    "access-requested-risky.json": {"risk": "Risk Too High"},
    # Every agent agrees, but the risk is high enough to ask for a manager's approval (the workflow waits).
    "access-requested-high-risk.json": {},
}
# The samples whose accepted risk asks for a person (the contractor's admin request too, though the policy
# rejects it before anyone is asked); the rest finish without waiting for anyone.
ASKS_FOR_APPROVAL = {"access-requested-high-risk.json", "access-requested-contractor-admin.json"}
SUCCESS = {"identity": "Identity Verified", "policy": "Access Permitted", "risk": "Risk Accepted"}


@pytest.mark.parametrize("name", ACCESS_TRIGGERS)
def test_sample_requests_lead_to_the_decisions_their_names_promise(name):
    got = {agent: decision.detail_type for agent, decision in decisions(name).items()}
    assert got == {**SUCCESS, **PROMISES[name]}


@pytest.mark.parametrize("name", ACCESS_TRIGGERS)
def test_risk_asks_for_a_managers_approval_from_the_approval_threshold(name):
    risk_decision = decisions(name)["risk"]
    expected = ("manager-approval",) if name in ASKS_FOR_APPROVAL else ()
    assert tuple(risk_decision.asks_for) == expected


def test_the_high_risk_sample_is_permitted_and_scores_between_the_approval_and_the_rejection_thresholds():
    """The one sample that waits for a person: every agent agrees, and only the manager decides."""
    got = decisions("access-requested-high-risk.json")
    assert {agent: d.detail_type for agent, d in got.items()} == SUCCESS
    assert risk.APPROVAL_THRESHOLD <= got["risk"].data["score"] < risk.THRESHOLD
    assert got["identity"].data["role"] == "sre"
    assert got["policy"].data["level_requested"] == "write"


def test_the_granted_sample_is_an_active_engineer_reading_in_business_hours():
    got = decisions("access-requested.json")
    assert got["identity"].data["role"] == "engineer"
    assert got["policy"].data["level_requested"] == "read"
    assert got["policy"].data["sensitivity"] in {"low", "medium"}
    assert not any(s["name"] == "outside_business_hours" for s in got["risk"].data["signals"])


RESULT_KEYS = {"workflow", "workflow_id", "agent", "outcome", "reason", "data", "started_at", "finished_at",
               "duration_ms", "idempotency_key", "trigger_digest"}
OUTCOMES = {"Identity Verified": "success", "Identity Rejected": "failure", "Access Permitted": "success",
            "Access Not Permitted": "failure", "Risk Accepted": "success", "Risk Too High": "failure",
            "User Audit Completed": "success"}


def decide_for(agent: str, trigger: str) -> tuple[str, str, Decision]:
    """(workflow, workflow id, decision) of ``agent`` on the ``trigger`` sample, with the seed directory."""
    detail = load_detail(trigger)
    if agent == "security-audit":
        user = UserCreated.model_validate(detail)
        return "new-user-audit", user.user_id, SecurityAudit(seed_directory()).decide(user)
    return "access-request", detail["request_id"], decisions(trigger)[agent]


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_result_samples_are_what_their_agent_decides_on_their_trigger(name):
    agent, trigger = RESULTS[name]
    workflow, workflow_id, decision = decide_for(agent, trigger)
    [entry] = load_entries(name)
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (
        f"agentbus.agent.{agent}", decision.detail_type, "agentbus")
    assert name == decision.detail_type.lower().replace(" ", "-") + ".json"
    detail = json.loads(entry["Detail"])
    assert set(detail) == RESULT_KEYS
    assert (detail["workflow"], detail["workflow_id"], detail["agent"]) == (workflow, workflow_id, agent)
    assert detail["outcome"] == OUTCOMES[decision.detail_type]
    assert (detail["reason"], detail["data"]) == (decision.reason, json.loads(json.dumps(decision.data)))
    assert detail["idempotency_key"] == f"{workflow_id}:{agent}:{detail['trigger_digest']}"
    assert detail["trigger_digest"] == trigger_digest(load_detail(trigger)), "it answers that very trigger"
    assert detail["started_at"] <= detail["finished_at"] and detail["duration_ms"] >= 0


def test_every_result_detail_type_has_a_sample():
    produced = {decide_for(agent, trigger)[2].detail_type for agent, trigger in RESULTS.values()}
    assert produced == set(OUTCOMES)


@pytest.mark.parametrize("name", USER_TRIGGERS)
def test_user_trigger_samples_parse(name):
    UserCreated.model_validate(load_detail(name))
