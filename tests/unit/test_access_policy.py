"""Policy check: the level order, every way of not being permitted, the rules file's validation."""

from __future__ import annotations

import json

import pytest

from functions.access.directory import MemoryDirectory
from functions.access.models import ACCESS_LEVELS, Employee
from functions.access.policy.logic import NOT_PERMITTED, PERMITTED, PolicyCheck
from functions.access.rules import RULES_FILE, AccessRules, load_rules, parse_rules
from tests.unit.access_samples import access_request, seed_directory, seed_employees

RULES = AccessRules.model_validate({
    "resources": {"wiki": {"sensitivity": "low"}, "vault": {"sensitivity": "high"}},
    "roles": {"engineer": {"wiki": "write"}, "admin": {"wiki": "admin", "vault": "admin"}},
})


def person(role: str = "engineer", employee_id: str = "emp-1", **fields) -> Employee:
    return Employee.model_validate({"employee_id": employee_id, "name": "P", "email": "p@agentbus.example",
                                    "role": role, "department": "D", "status": "active", **fields})


def policy(*employees: Employee, rules: AccessRules = RULES) -> PolicyCheck:
    return PolicyCheck(MemoryDirectory(employees or (person(),)), rules)


@pytest.mark.parametrize(("level", "permitted"), [("read", True), ("write", True), ("admin", False)])
def test_a_role_is_permitted_every_level_up_to_its_highest(level, permitted):
    decision = policy().decide(access_request(employee_id="emp-1", resource="wiki", access_level=level))
    assert decision.detail_type == (PERMITTED if permitted else NOT_PERMITTED)
    assert decision.data == {"employee_id": "emp-1", "resource": "wiki", "level_requested": level,
                             "sensitivity": "low", "role": "engineer", "level_allowed": "write"}


def test_not_permitted_names_role_resource_level_asked_and_allowed():
    decision = policy().decide(access_request(employee_id="emp-1", resource="wiki", access_level="admin"))
    assert decision.reason == "role engineer allows at most write on wiki; admin asked"


def test_permitted_says_what_the_role_allows():
    decision = policy().decide(access_request(employee_id="emp-1", resource="wiki", access_level="read"))
    assert decision.reason == "role engineer allows up to write on wiki; read asked"


def test_a_resource_the_role_has_no_rule_for_is_not_permitted_even_to_read():
    decision = policy().decide(access_request(employee_id="emp-1", resource="vault", access_level="read"))
    assert decision.detail_type == NOT_PERMITTED
    assert decision.reason == "role engineer allows no access to vault; read asked"
    assert decision.data["level_allowed"] is None and decision.data["sensitivity"] == "high"


def test_a_role_without_any_rules_is_not_permitted():
    decision = policy(person(role="visitor")).decide(access_request(employee_id="emp-1", resource="wiki",
                                                                    access_level="read"))
    assert decision.detail_type == NOT_PERMITTED
    assert decision.reason == "role visitor allows no access to wiki; read asked"


def test_unknown_resource_is_not_permitted_with_that_reason():
    decision = policy().decide(access_request(employee_id="emp-1", resource="moon-base", access_level="read"))
    assert decision.detail_type == NOT_PERMITTED
    assert decision.reason == "unknown resource 'moon-base': the policy has no rules for it"
    assert decision.data["role"] is None and decision.data["level_allowed"] is None


def test_unknown_employee_is_not_permitted_with_that_reason():
    decision = policy().decide(access_request(employee_id="emp-404", resource="wiki", access_level="read"))
    assert decision.detail_type == NOT_PERMITTED
    assert decision.reason == "unknown employee emp-404: no role to check"


def test_policy_judges_the_role_not_whether_the_employee_is_active():
    inactive = person(status="inactive", inactive_since="2026-01-31")
    decision = policy(inactive).decide(access_request(employee_id="emp-1", resource="wiki", access_level="read"))
    assert decision.detail_type == PERMITTED  # the identity agent rejects an inactive employee


def test_the_top_role_is_permitted_admin():
    decision = policy(person(role="admin")).decide(access_request(employee_id="emp-1", resource="vault",
                                                                  access_level="admin"))
    assert decision.detail_type == PERMITTED


def test_shipped_rules_load_and_name_every_seed_role():
    rules = load_rules()
    assert set(ACCESS_LEVELS) == {"read", "write", "admin"}
    assert {e.role for e in seed_employees()} <= set(rules.roles)
    assert {r.sensitivity for r in rules.resources.values()} == {"low", "medium", "high"}
    assert rules.sensitivity("wiki") == "low" and rules.sensitivity("nope") is None
    assert rules.highest_level("contractor", "source-code") == "write"


def test_rules_naming_an_unknown_resource_are_refused_at_load():
    text = json.dumps({"resources": {"wiki": {"sensitivity": "low"}}, "roles": {"engineer": {"vault": "read"}}})
    with pytest.raises(ValueError, match="role 'engineer' names unknown resource"):
        parse_rules(text, "test rules")


@pytest.mark.parametrize(("patch", "field"), [
    ({"resources": {"wiki": {"sensitivity": "extreme"}}}, "resources.wiki.sensitivity"),
    ({"roles": {"engineer": {"wiki": "owner"}}}, "roles.engineer.wiki"),
    ({"rolez": {}}, "rolez"),
])
def test_malformed_rules_name_the_bad_field(patch, field):
    rules = json.loads(RULES_FILE.read_text())
    rules.update(patch)
    with pytest.raises(ValueError, match=rf"^test rules is not a valid access policy: .*{field}"):
        parse_rules(json.dumps(rules), "test rules")


def test_sample_requests_meet_the_policy_their_names_promise():
    check = PolicyCheck(seed_directory())
    assert check.decide(access_request("access-requested.json")).detail_type == PERMITTED
    assert check.decide(access_request("access-requested-inactive.json")).detail_type == PERMITTED
    assert check.decide(access_request("access-requested-risky.json")).detail_type == PERMITTED
    contractor = check.decide(access_request("access-requested-contractor-admin.json"))
    assert contractor.detail_type == NOT_PERMITTED
    assert contractor.reason == "role contractor allows at most write on source-code; admin asked"
