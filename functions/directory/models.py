"""Models of the new-user-audit workflow: its trigger ``User Created`` (source ``agentbus.directory``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from functions.common.models import Instant, NonEmpty, WorkflowIdField

Email = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, max_length=254,
                                         pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Group = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=256)]


class UserCreated(BaseModel):
    """Detail of ``User Created``: a user account was created in the company directory."""

    model_config = ConfigDict(extra="ignore")

    user_id: WorkflowIdField
    email: Email
    groups: list[Group] = Field(max_length=100)
    created_by: NonEmpty  # the creator's employee id, looked up in the directory
    created_at: Instant

    @property
    def domain(self) -> str:
        return self.email.rsplit("@", 1)[1]

    @field_validator("groups")
    @classmethod
    def _groups_unique(cls, groups: list[str]) -> list[str]:
        return list(dict.fromkeys(groups))
