"""New-user security audit: the ``User Created`` model, each finding and its severity, the highest severity, the
company-domains parameter, the samples in events/."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from functions.access.directory import MemoryDirectory
from functions.access.models import Employee
from functions.common.models import describe_validation_error
from functions.directory.audit.logic import (
    COMPLETED,
    DEFAULT_COMPANY_DOMAINS,
    PRIVILEGED_GROUPS,
    Finding,
    SecurityAudit,
    highest,
    parse_domains,
)
from functions.directory.models import UserCreated
from tests.unit.access_samples import USER_TRIGGERS, load_detail, load_entries, seed_directory, user_created

TUESDAY_10 = "2026-11-24T10:00:00Z"


def creator(employee_id: str = "emp-admin", **fields) -> Employee:
    return Employee.model_validate({"employee_id": employee_id, "name": "Creator", "email": "c@agentbus.example",
                                    "role": "it-admin", "department": "IT", "status": "active", "is_admin": True,
                                    **fields})


def audit(*employees: Employee, **options) -> SecurityAudit:
    return SecurityAudit(MemoryDirectory(employees or (creator(),)), **options)


def user(**overrides) -> UserCreated:
    fields = {"user_id": "usr-1", "email": "new.person@agentbus.example", "groups": ["engineering"],
              "created_by": "emp-admin", "created_at": TUESDAY_10}
    return UserCreated.model_validate({**fields, **overrides})


def codes(findings: list[Finding]) -> list[str]:
    return [finding.code for finding in findings]


# --- the model ----------------------------------------------------------------------------------------------


def test_user_created_normalizes_email_and_groups():
    subject = user(email="  New.Person@AgentBus.Example ", groups=["Engineering", " engineering", "VPN-Users"])
    assert subject.email == "new.person@agentbus.example" and subject.domain == "agentbus.example"
    assert subject.groups == ["engineering", "vpn-users"]


@pytest.mark.parametrize(("overrides", "field"), [
    ({"email": "no-at-sign"}, "email"),
    ({"groups": "admins"}, "groups"),
    ({"groups": [""]}, "groups.0"),
    ({"created_at": "2026-11-24T10:00:00"}, "created_at"),  # no timezone
    ({"created_at": "yesterday"}, "created_at"),
    ({"user_id": "   "}, "user_id"),
    ({"created_by": None}, "created_by"),
])
def test_user_created_rejects_bad_fields_naming_them(overrides, field):
    with pytest.raises(ValidationError) as raised:
        user(**overrides)
    assert describe_validation_error(raised.value).startswith(f"{field}: ")


def test_user_created_may_have_no_groups_and_ignores_extra_fields():
    assert user(groups=[], extra="ignored").groups == []


# --- the findings -------------------------------------------------------------------------------------------


def test_a_clean_user_has_no_findings():
    decision = audit().decide(user())
    assert decision.detail_type == COMPLETED
    assert decision.reason == "clean: no findings"
    assert decision.data == {"user_id": "usr-1", "created_by": "emp-admin", "findings": [],
                             "highest_severity": None, "clean": True}


@pytest.mark.parametrize("group", sorted(PRIVILEGED_GROUPS))
def test_each_privileged_group_is_a_high_finding(group):
    [finding] = audit().audit(user(groups=["engineering", group]))
    assert finding == Finding("privileged_group", "high", f"member of privileged group {group}")


def test_one_finding_per_privileged_group():
    assert codes(audit().audit(user(groups=["admins", "domain-admins"]))) == ["privileged_group"] * 2


@pytest.mark.parametrize(("email", "external"), [
    ("a@agentbus.example", False),
    ("a@eu.agentbus.example", False),      # a subdomain of a company domain
    ("a@agentbus.example.net", True),      # a look-alike is not a subdomain
    ("a@notagentbus.example", True),
    ("a@gmail.com", True),
])
def test_external_email_domain_is_a_medium_finding(email, external):
    findings = audit().audit(user(email=email))
    assert (findings == [Finding("external_email", "medium",
                                 f"e-mail domain {email.split('@')[1]} is not a company domain "
                                 f"(agentbus.example)")]) is external
    assert (findings == []) is not external


@pytest.mark.parametrize(("when", "outside"), [
    ("2026-11-24T06:59:59Z", True), ("2026-11-24T07:00:00Z", False),
    ("2026-11-24T18:59:59Z", False), ("2026-11-24T19:00:00Z", True),
    ("2026-11-29T12:00:00Z", True),
])
def test_creation_outside_business_hours_is_a_low_finding(when, outside):
    findings = audit().audit(user(created_at=when))
    assert (codes(findings) == ["created_outside_business_hours"]) is outside
    assert all(f.severity == "low" for f in findings)


def test_unknown_creator_is_a_high_finding():
    [finding] = audit().audit(user(created_by="emp-404"))
    assert finding == Finding("unknown_creator", "high", "creator emp-404 is not in the directory")


def test_creator_without_admin_rights_is_a_high_finding():
    [finding] = audit(creator(is_admin=False, role="hr")).audit(user())
    assert finding == Finding("creator_not_admin", "high", "creator emp-admin (hr) holds no admin rights")


def test_inactive_creator_is_a_high_finding_even_with_admin_rights():
    [finding] = audit(creator(status="inactive", inactive_since="2026-09-15")).audit(user())
    assert finding == Finding("creator_inactive", "high", "creator emp-admin is inactive since 2026-09-15")


def test_highest_severity_is_reported():
    assert highest([]) is None
    assert highest([Finding("a", "low", ""), Finding("b", "medium", "")]) == "medium"
    assert highest([Finding("a", "high", ""), Finding("b", "low", "")]) == "high"
    decision = audit().decide(user(email="a@gmail.com", created_at="2026-11-28T10:00:00Z"))
    assert decision.data["highest_severity"] == "medium" and decision.data["clean"] is False
    assert decision.reason.startswith("2 finding(s), highest medium: external_email (medium): ")


@pytest.mark.parametrize(("text", "domains"), [
    ("agentbus.example", ("agentbus.example",)),
    (" AgentBus.Example , corp.example,", ("agentbus.example", "corp.example")),
    ("@corp.example", ("corp.example",)),
])
def test_company_domains_parameter_parses(text, domains):
    assert parse_domains(text) == domains


@pytest.mark.parametrize(("text", "message"), [
    ("", "^must name at least one domain, got ''$"), (" , ", "must name at least one domain"),
    ("localhost", "^'localhost' is not a domain name$"), ("a b.example", "is not a domain name"),
])
def test_company_domains_parameter_refuses_nonsense(text, message):
    with pytest.raises(ValueError, match=message):
        parse_domains(text)


def test_company_domains_are_configurable():
    subject = user(email="a@corp.example")
    assert codes(audit().audit(subject)) == ["external_email"]
    assert audit(company_domains=parse_domains("agentbus.example,corp.example")).audit(subject) == []
    assert DEFAULT_COMPANY_DOMAINS == ("agentbus.example",)
    with pytest.raises(ValueError, match="at least one company domain"):
        audit(company_domains=())


# --- the samples in events/ ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", USER_TRIGGERS)
def test_user_created_samples_are_put_events_entries_that_parse(name):
    [entry] = load_entries(name)
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == ("agentbus.directory", "User Created",
                                                                             "agentbus")
    UserCreated.model_validate(load_detail(name))


def test_user_created_sample_is_clean_on_the_seed_directory():
    decision = SecurityAudit(seed_directory()).decide(user_created("user-created.json"))
    assert decision.data["findings"] == [] and decision.data["clean"] is True


def test_privileged_sample_has_several_findings_on_the_seed_directory():
    decision = SecurityAudit(seed_directory()).decide(user_created("user-created-privileged.json"))
    assert [f["code"] for f in decision.data["findings"]] == [
        "privileged_group", "privileged_group", "external_email", "created_outside_business_hours",
        "creator_not_admin",
    ]
    assert decision.data["highest_severity"] == "high"


def test_seed_directory_creators_cover_the_creator_findings():
    directory = seed_directory()
    employees = list(directory.employees.values())
    inactive_admin = next(e for e in employees if not e.active and e.is_admin)
    [finding] = SecurityAudit(directory).audit(user(created_by=inactive_admin.employee_id))
    assert finding.code == "creator_inactive"
