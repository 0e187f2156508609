"""The census of workflows waiting for a person (functions/coordinator/census.py): per workflow with external
agents, how many wait and how long the oldest has waited, zero included; EMF metrics the alarm reads."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from functions.coordinator.census import (
    OLDEST_WAIT_METRIC,
    WAITING_METRIC,
    Census,
    PowertoolsCensusMetrics,
    WorkflowCensus,
)
from tests.pinned import MANIFEST  # the shipped workflows, none a user added

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def metrics_printed(monkeypatch):
    """Outside Lambda, metrics are printed only when asked for (functions.common.observability.emf_enabled)."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")


def waiting_view(workflow_id: str, asked_at: str, workflow: str = "access-request") -> dict:
    return {"workflow": workflow, "workflow_id": workflow_id, "status": "RUNNING",
            "waiting_for": [{"agent": "manager-approval", "kind": "a person", "asked_at": asked_at,
                             "wait_until": "2026-11-25T12:00:00Z"}]}


class FakeStore:
    def __init__(self, views: list[dict]) -> None:
        self.views = views
        self.asked: list[str | None] = []

    def waiting(self, workflow: str | None = None) -> list[dict]:
        self.asked.append(workflow)
        return [v for v in self.views if workflow in (None, v["workflow"])]


class FakeMetrics:
    def __init__(self) -> None:
        self.emitted: list[tuple[str, int, float]] = []

    def waiting(self, workflow: str, count: int, oldest_wait_s: float) -> None:
        self.emitted.append((workflow, count, oldest_wait_s))


def test_counts_the_waiting_workflows_and_measures_the_oldest_wait():
    store = FakeStore([waiting_view("acc-1", "2026-11-24T11:57:00Z"), waiting_view("acc-2", "2026-11-24T08:00:00Z"),
                       waiting_view("acc-3", "2026-11-24T11:59:30.500Z")])
    metrics = FakeMetrics()
    counted = Census(store, MANIFEST, metrics, clock=lambda: NOW).count()
    assert counted == [WorkflowCensus("access-request", 3, 14400.0, "acc-2")]
    assert metrics.emitted == [("access-request", 3, 14400.0)]
    # One scan of the running workflows serves every workflow; only those that can wait for a person are measured.
    assert store.asked == [None]
    assert [c.workflow for c in counted] == [w.name for w in MANIFEST.coordinated if w.external]


def test_no_waiting_workflow_still_emits_zero_so_the_alarm_sees_data():
    metrics = FakeMetrics()
    assert Census(FakeStore([]), MANIFEST, metrics, clock=lambda: NOW).count() == [
        WorkflowCensus("access-request", 0, 0.0, None)]
    assert metrics.emitted == [("access-request", 0, 0.0)]


def test_a_manifest_without_external_agents_has_nothing_to_count():
    manifest = replace(MANIFEST, workflows=(MANIFEST.workflow("order-fulfillment"),),
                       tables=tuple(t for t in MANIFEST.tables if t.logical_name in ("orders", "inventory")))
    metrics = FakeMetrics()
    assert Census(FakeStore([]), manifest, metrics, clock=lambda: NOW).count() == []
    assert metrics.emitted == []


def test_a_wait_asked_in_the_future_or_without_a_time_counts_but_does_not_age():
    store = FakeStore([waiting_view("acc-1", "2026-11-24T12:05:00Z"), waiting_view("acc-2", "")])
    metrics = FakeMetrics()
    [census] = Census(store, MANIFEST, metrics, clock=lambda: NOW).count()
    assert (census.waiting, census.oldest_wait_s) == (2, 0.0)


def test_the_powertools_sink_emits_both_metrics_with_service_and_workflow_dimensions(capsys):
    PowertoolsCensusMetrics(service="coordinator", namespace="agentbus").waiting("access-request", 2, 300.0)
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    got = {}
    for blob in blobs:
        [directive] = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "agentbus"
        assert directive["Dimensions"] == [["service", "workflow"]]
        assert (blob["service"], blob["workflow"]) == ("coordinator", "access-request")
        [metric] = directive["Metrics"]
        got[metric["Name"]] = (metric["Unit"], blob[metric["Name"]])
    assert got == {WAITING_METRIC: ("Count", [2.0]), OLDEST_WAIT_METRIC: ("Seconds", [300.0])}


def test_nothing_is_printed_when_metrics_are_disabled(capsys, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    PowertoolsCensusMetrics().waiting("access-request", 2, 300.0)
    assert capsys.readouterr().out == ""
