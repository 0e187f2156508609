"""What a DynamoDB item cannot hold (placeholder until the storable-values module lands)."""

from __future__ import annotations

from typing import Any


def problems(value: Any, path: str = "detail") -> list[str]:
    return []
