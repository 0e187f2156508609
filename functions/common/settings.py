"""Configuration: environment variables parsed once, at cold start, into a typed object."""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from functions.manifest import BUS_NAME


@dataclass(frozen=True)
class Settings:
    event_bus_name: str = BUS_NAME
    workflow_table: str = "agentbus-workflows"
    orders_table: str = "agentbus-orders"
    inventory_table: str = "agentbus-inventory"
    # This function's own dead-letter queue: poison messages go there with their reason.
    dead_letter_queue_url: str | None = None
    schedule_group: str = "agentbus"
    scheduler_role_arn: str = "arn:aws:iam::123456789012:role/agentbus-scheduler"
    event_bus_arn: str | None = None
    fraud_limit: Decimal = Decimal("10000.00")
    # Overrides every workflow's deadline (local runs, tests).
    deadline_seconds: int | None = None
    # How many records of one SQS batch are processed at once (the manifest's record_concurrency).
    record_concurrency: int = 1
    # Benchmark-only: simulated work time per agent, e.g. "fraud=300,inventory=100,shipping=200".
    simulated_work_ms: dict[str, int] | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | os._Environ = os.environ) -> Settings:
        def optional_int(name: str) -> int | None:
            value = env.get(name)
            if value in (None, ""):
                return None
            try:
                return int(value)
            except ValueError:
                raise ValueError(f"{name} must be an integer number of seconds, got {value!r}") from None

        return cls(
            event_bus_name=env.get("EVENT_BUS_NAME", BUS_NAME),
            workflow_table=env.get("WORKFLOW_TABLE", cls.workflow_table),
            orders_table=env.get("ORDERS_TABLE", cls.orders_table),
            inventory_table=env.get("INVENTORY_TABLE", cls.inventory_table),
            dead_letter_queue_url=env.get("DEAD_LETTER_QUEUE_URL") or None,
            schedule_group=env.get("SCHEDULE_GROUP", cls.schedule_group),
            scheduler_role_arn=env.get("SCHEDULER_ROLE_ARN", cls.scheduler_role_arn),
            event_bus_arn=env.get("EVENT_BUS_ARN") or None,
            fraud_limit=Decimal(env.get("FRAUD_LIMIT", str(cls.fraud_limit))),
            deadline_seconds=optional_int("DEADLINE_SECONDS"),
            simulated_work_ms=parse_work_profile(env.get("SIMULATED_WORK_MS", "")),
            record_concurrency=optional_int("RECORD_CONCURRENCY") or 1,
        )


def parse_work_profile(text: str) -> dict[str, int] | None:
    """``"fraud=300,inventory=100"`` -> ``{"fraud": 300, "inventory": 100}``; empty -> None."""
    if not text.strip():
        return None
    profile: dict[str, int] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not value.strip().isdigit():
            raise ValueError(f"SIMULATED_WORK_MS entries look like name=milliseconds, got {part!r}")
        profile[name.strip()] = int(value)
    return profile


@cache
def settings() -> Settings:
    return Settings.from_env()
