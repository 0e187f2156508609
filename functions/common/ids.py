"""Workflow-id rules (placeholder until the id-rules module lands)."""

from __future__ import annotations

from typing import Any

MAX_ID_LENGTH = 128


def check_workflow_id(value: Any, field: str = "workflow_id") -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise ValueError(f"{field}: missing or not a string")
    text = str(value).strip()
    if len(text) > MAX_ID_LENGTH:
        raise ValueError(f"{field}: longer than {MAX_ID_LENGTH} characters")
    return text
