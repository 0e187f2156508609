"""Identity check: the requesting employee is in the directory and active.

- unknown employee -> ``Identity Rejected`` ("employee emp-9 is not in the directory");
- inactive employee -> ``Identity Rejected`` ("employee emp-5 is inactive since 2026-06-30");
- otherwise -> ``Identity Verified``, with the employee's role and department.
"""

from __future__ import annotations

from functions.access.models import AccessRequested, Directory
from functions.common.decisions import Decision

VERIFIED = "Identity Verified"
REJECTED = "Identity Rejected"


class IdentityCheck:
    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    def decide(self, request: AccessRequested) -> Decision:
        employee_id = request.employee_id
        employee = self.directory.get(employee_id)
        if employee is None:
            return Decision(REJECTED, f"employee {employee_id} is not in the directory",
                            {"employee_id": employee_id, "status": "unknown"})
        if not employee.active:
            since = f" since {employee.inactive_since.isoformat()}" if employee.inactive_since else ""
            data: dict[str, object] = {"employee_id": employee_id, "status": employee.status}
            if employee.inactive_since:
                data["inactive_since"] = employee.inactive_since.isoformat()
            return Decision(REJECTED, f"employee {employee_id} is inactive{since}", data)
        return Decision(VERIFIED, f"employee {employee_id} is active ({employee.role}, {employee.department})", {
            "employee_id": employee_id, "status": employee.status,
            "role": employee.role, "department": employee.department,
        })
