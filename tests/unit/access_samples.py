"""Helpers shared by the access-request and new-user-audit tests: the seed directory and the samples in events/."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from functions.access.directory import MemoryDirectory
from functions.access.models import AccessRequested, Employee
from functions.directory.models import UserCreated
from tests.conftest import EVENTS_DIR, load_detail, load_entries

SEED_DIRECTORY = EVENTS_DIR / "seed-directory.json"

# Every sample this workflow pair adds, by kind. Triggers: file -> detail-type; results: file -> (agent, trigger
# sample the result was produced from).
ACCESS_TRIGGERS = ("access-requested.json", "access-requested-contractor-admin.json",
                   "access-requested-inactive.json", "access-requested-risky.json",
                   "access-requested-high-risk.json")
INVALID_ACCESS_TRIGGER = "access-requested-invalid.json"
USER_TRIGGERS = ("user-created.json", "user-created-privileged.json")
RESULTS = {
    "identity-verified.json": ("identity", "access-requested.json"),
    "identity-rejected.json": ("identity", "access-requested-inactive.json"),
    "access-permitted.json": ("policy", "access-requested.json"),
    "access-not-permitted.json": ("policy", "access-requested-contractor-admin.json"),
    "risk-accepted.json": ("risk", "access-requested.json"),
    "risk-too-high.json": ("risk", "access-requested-risky.json"),
    "user-audit-completed.json": ("security-audit", "user-created-privileged.json"),
}


def seed_employees() -> list[Employee]:
    return [Employee.model_validate(item) for item in json.loads(SEED_DIRECTORY.read_text())["items"]]


def seed_directory() -> MemoryDirectory:
    return MemoryDirectory(seed_employees())


def access_request(name: str = "access-requested.json", **overrides: Any) -> AccessRequested:
    return AccessRequested.model_validate({**load_detail(name), **overrides})


def user_created(name: str = "user-created.json", **overrides: Any) -> UserCreated:
    return UserCreated.model_validate({**load_detail(name), **overrides})


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


__all__ = ["ACCESS_TRIGGERS", "INVALID_ACCESS_TRIGGER", "RESULTS", "SEED_DIRECTORY", "USER_TRIGGERS",
           "access_request", "at", "load_detail", "load_entries", "seed_directory", "seed_employees",
           "user_created"]
