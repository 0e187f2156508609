"""The standalone invariant: one result per agent and version of the trigger (copies share its key)."""

from __future__ import annotations

from typing import Any

from agentbus.invariants import _check_standalone
from agentbus.observe import ObservedEvent
from agentbus.resources import Resources
from functions.common.ids import result_idempotency_key
from functions.manifest import MANIFEST

AUDIT = next(w for w in MANIFEST.workflows if w.outcomes is None)
[AGENT] = AUDIT.agents


class Observer:
    def __init__(self, events: list[ObservedEvent]) -> None:
        self._events = events

    def events(self, workflow_id: str, workflow: str | None = None) -> list[ObservedEvent]:
        return [e for e in self._events if e.workflow_id == workflow_id]


class NoRecords:
    def get_item(self, **_: Any) -> dict[str, Any]:
        return {}


def result(version: str, key: str | None = None) -> ObservedEvent:
    detail = {"workflow_id": "usr-1", "agent": AGENT.name, "trigger_digest": version,
              "idempotency_key": key or result_idempotency_key("usr-1", AGENT.name, version)}
    return ObservedEvent("User Audit Completed", AGENT.source, detail, 0.0, AUDIT.name, "usr-1")


def check(*events: ObservedEvent) -> list[str]:
    resources = Resources(bus_name="agentbus", bus_arn="", archive_name="", schedule_group="", scheduler_role_arn="",
                          tables={"workflows": "workflows"}, consumers={})
    return _check_standalone(NoRecords(), resources, Observer(list(events)), AUDIT, ["usr-1"])  # type: ignore[arg-type]


def test_a_changed_request_audited_again_is_a_second_result_not_a_violation():
    assert check(result("a" * 32), result("a" * 32), result("b" * 32)) == []


def test_two_results_for_one_version_or_none_at_all_are_violations():
    [twice] = check(result("a" * 32), result("a" * 32, key="usr-1:other"))
    assert "2 different results" in twice and "1 version(s)" in twice
    [none] = check()
    assert f"0 different results from {AGENT.name}" in none
