"""Models of the access-request workflow: its trigger ``Access Requested`` and the directory's employees.

``Directory`` is the port the agents read employees through (the DynamoDB adapter is in
``functions/access/directory.py``); the logic depends on this module only, never on boto3.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from functions.common.models import Instant, NonEmpty, WorkflowIdField

AccessLevel = Literal["read", "write", "admin"]
# From least to most privilege: a role allowed a level is allowed every level before it.
ACCESS_LEVELS: tuple[AccessLevel, ...] = ("read", "write", "admin")
MAX_JUSTIFICATION_CHARS = 2000


class AccessRequested(BaseModel):
    """Detail of ``Access Requested`` (source ``agentbus.access``): the trigger of ``access-request``."""

    model_config = ConfigDict(extra="ignore")

    request_id: WorkflowIdField
    employee_id: NonEmpty
    resource: NonEmpty
    access_level: AccessLevel
    # Free text, kept as written (the risk agent judges it); may be empty, which the risk agent scores.
    justification: Annotated[str, StringConstraints(max_length=MAX_JUSTIFICATION_CHARS)]
    requested_at: Instant


class Employee(BaseModel):
    """One item of the directory table (partition key ``employee_id``), as in ``events/seed-directory.json``."""

    model_config = ConfigDict(extra="ignore")

    employee_id: NonEmpty
    name: NonEmpty
    email: Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True,
                                            pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    role: NonEmpty
    department: NonEmpty
    status: Literal["active", "inactive"]
    is_admin: bool = False
    inactive_since: date | None = None

    @property
    def active(self) -> bool:
        return self.status == "active"

    @model_validator(mode="after")
    def _inactive_since_only_when_inactive(self) -> Employee:
        if self.inactive_since is not None and self.active:
            raise ValueError(f"employee {self.employee_id} is active but has inactive_since {self.inactive_since}")
        return self


class Directory(Protocol):
    """Where the agents look employees up."""

    def get(self, employee_id: str) -> Employee | None:
        """The employee of that id, or None when the directory has no such employee."""
        ...
