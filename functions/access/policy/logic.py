"""Policy check: the employee's role permits the level asked on the resource (rules: ``functions/access/rules.json``).

- ``Access Permitted`` when the role's highest level on the resource is at least the level asked;
- ``Access Not Permitted`` otherwise, naming the role, the resource, the level asked and the level allowed
  ("no access" when the role has none on the resource), and also for an unknown resource or an employee the
  directory does not know (the identity agent judges whether the employee is active; the policy does not).
"""

from __future__ import annotations

from functions.access.models import AccessRequested, Directory
from functions.access.rules import AccessRules, load_rules
from functions.common.decisions import Decision

PERMITTED = "Access Permitted"
NOT_PERMITTED = "Access Not Permitted"


class PolicyCheck:
    def __init__(self, directory: Directory, rules: AccessRules | None = None) -> None:
        self.directory = directory
        self.rules = rules or load_rules()

    def decide(self, request: AccessRequested) -> Decision:
        resource, requested = request.resource, request.access_level
        data: dict[str, object] = {"employee_id": request.employee_id, "resource": resource,
                                   "level_requested": requested}
        sensitivity = self.rules.sensitivity(resource)
        if sensitivity is None:
            return Decision(NOT_PERMITTED, f"unknown resource {resource!r}: the policy has no rules for it",
                            {**data, "role": None, "level_allowed": None})
        data["sensitivity"] = sensitivity
        employee = self.directory.get(request.employee_id)
        if employee is None:
            return Decision(NOT_PERMITTED, f"unknown employee {request.employee_id}: no role to check",
                            {**data, "role": None, "level_allowed": None})
        role = employee.role
        allowed = self.rules.highest_level(role, resource)
        data.update(role=role, level_allowed=allowed)
        if self.rules.permits(allowed, requested):
            return Decision(PERMITTED, f"role {role} allows up to {allowed} on {resource}; {requested} asked", data)
        if allowed is None:
            return Decision(NOT_PERMITTED, f"role {role} allows no access to {resource}; {requested} asked", data)
        return Decision(NOT_PERMITTED, f"role {role} allows at most {allowed} on {resource}; {requested} asked", data)
