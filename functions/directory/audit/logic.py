"""Security audit of a newly created user: findings, each with a severity; always ``User Audit Completed``.

Findings (``code``, severity):
- ``privileged_group`` (high), one per privileged group the user is in (``PRIVILEGED_GROUPS``);
- ``external_email`` (medium): the e-mail domain is not a company domain nor a subdomain of one;
- ``created_outside_business_hours`` (low): created on a weekend or outside 07:00-19:00 UTC;
- the creator, looked up in the employee directory: ``unknown_creator`` (high) when it is not there,
  ``creator_inactive`` (high) when inactive, ``creator_not_admin`` (high) when it holds no admin rights.

The result's data carries the findings, the highest severity (None when there is none) and ``clean``.
Nobody waits for this result: it is an audit trail and an alerting hook, never a gate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Literal

from functions.access.business_hours import outside_business_hours
from functions.access.models import Directory
from functions.common.decisions import Decision
from functions.directory.models import UserCreated

COMPLETED = "User Audit Completed"

Severity = Literal["low", "medium", "high"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high")

PRIVILEGED_GROUPS = frozenset({"admins", "domain-admins", "enterprise-admins", "security-admins", "global-admins"})
# The default of the agent's COMPANY_DOMAINS parameter.
DEFAULT_COMPANY_DOMAINS = ("agentbus.example",)


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    message: str


def parse_domains(text: str) -> tuple[str, ...]:
    """The COMPANY_DOMAINS parameter: ``"agentbus.example, corp.example"`` -> ``("agentbus.example",
    "corp.example")``; at least one. Its ValueError says what is wrong (the caller names the parameter)."""
    domains = tuple(dict.fromkeys(part.strip().lower().lstrip("@") for part in text.split(",") if part.strip()))
    if not domains:
        raise ValueError(f"must name at least one domain, got {text!r}")
    for domain in domains:
        if "." not in domain or any(char.isspace() or char == "@" for char in domain):
            raise ValueError(f"{domain!r} is not a domain name")
    return domains


def highest(findings: Iterable[Finding]) -> Severity | None:
    ranks = [SEVERITIES.index(finding.severity) for finding in findings]
    return SEVERITIES[max(ranks)] if ranks else None


class SecurityAudit:
    def __init__(self, directory: Directory, company_domains: Iterable[str] = DEFAULT_COMPANY_DOMAINS,
                 privileged_groups: Iterable[str] = PRIVILEGED_GROUPS) -> None:
        self.directory = directory
        self.company_domains = tuple(domain.lower() for domain in company_domains)
        self.privileged_groups = frozenset(group.lower() for group in privileged_groups)
        if not self.company_domains:
            raise ValueError("the audit needs at least one company domain")

    def internal(self, domain: str) -> bool:
        return any(domain == company or domain.endswith("." + company) for company in self.company_domains)

    def audit(self, user: UserCreated) -> list[Finding]:
        findings = [
            Finding("privileged_group", "high", f"member of privileged group {group}")
            for group in user.groups if group in self.privileged_groups
        ]
        if not self.internal(user.domain):
            findings.append(Finding("external_email", "medium",
                                    f"e-mail domain {user.domain} is not a company domain "
                                    f"({', '.join(self.company_domains)})"))
        when = outside_business_hours(user.created_at)
        if when:
            findings.append(Finding("created_outside_business_hours", "low", f"created {when}"))
        findings += self.creator_findings(user.created_by)
        return findings

    def creator_findings(self, creator_id: str) -> list[Finding]:
        creator = self.directory.get(creator_id)
        if creator is None:
            return [Finding("unknown_creator", "high", f"creator {creator_id} is not in the directory")]
        findings = []
        if not creator.active:
            since = f" since {creator.inactive_since.isoformat()}" if creator.inactive_since else ""
            findings.append(Finding("creator_inactive", "high", f"creator {creator_id} is inactive{since}"))
        if not creator.is_admin:
            findings.append(Finding("creator_not_admin", "high",
                                    f"creator {creator_id} ({creator.role}) holds no admin rights"))
        return findings

    def decide(self, user: UserCreated) -> Decision:
        findings = self.audit(user)
        severity = highest(findings)
        data = {
            "user_id": user.user_id,
            "created_by": user.created_by,
            "findings": [asdict(finding) for finding in findings],
            "highest_severity": severity,
            "clean": not findings,
        }
        if not findings:
            return Decision(COMPLETED, "clean: no findings", data)
        summary = "; ".join(f"{f.code} ({f.severity}): {f.message}" for f in findings)
        return Decision(COMPLETED, f"{len(findings)} finding(s), highest {severity}: {summary}", data)
