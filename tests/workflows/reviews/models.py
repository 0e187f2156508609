"""The trigger of ``change-review``: ``Change Proposed`` (source ``agentbus.changes``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from functions.common.models import NonEmpty, WorkflowIdField


class ChangeProposed(BaseModel):
    model_config = ConfigDict(extra="ignore")

    change_id: WorkflowIdField
    author: NonEmpty
    lines_changed: int = Field(ge=0, le=10_000_000)


def line_count(text: str) -> int:
    """A whole number of lines >= 0 (the MAX_LINES parameter)."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"must be a whole number of lines, got {text!r}") from None
    if value < 0:
        raise ValueError(f"must be >= 0, got {text!r}")
    return value
