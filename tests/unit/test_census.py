"""The census of workflows waiting for a person (functions/coordinator/census.py): per workflow with external
agents, how many wait and how long the oldest has waited, zero included; EMF metrics the alarm reads."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from functions.coordinator.census import (
    CENSUS_SHARE,
    OLDEST_WAIT_METRIC,
    PARTIAL_METRIC,
    WAITING_METRIC,
    Census,
    PowertoolsCensusMetrics,
    WorkflowCensus,
)
from functions.coordinator.reads import WaitingViews
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
    def __init__(self, views: list[dict], unfinished: tuple[str, ...] = ()) -> None:
        self.views = views
        self.unfinished = unfinished
        self.asked: list[str | None] = []
        self.out_of_time: list = []

    def waiting(self, workflow: str | None = None, *, out_of_time=None) -> list[dict]:
        self.asked.append(workflow)
        self.out_of_time.append(out_of_time)
        found = WaitingViews(v for v in self.views if workflow in (None, v["workflow"]))
        found.unfinished = self.unfinished
        return found


class FakeMetrics:
    def __init__(self) -> None:
        self.emitted: list[tuple[str, int, float]] = []
        self.partials: list[int] = []

    def waiting(self, workflow: str, count: int, oldest_wait_s: float) -> None:
        self.emitted.append((workflow, count, oldest_wait_s))

    def partial(self, unfinished: int) -> None:
        self.partials.append(unfinished)


def test_counts_the_waiting_workflows_and_measures_the_oldest_wait():
    store = FakeStore([waiting_view("acc-1", "2026-11-24T11:57:00Z"), waiting_view("acc-2", "2026-11-24T08:00:00Z"),
                       waiting_view("acc-3", "2026-11-24T11:59:30.500Z")])
    metrics = FakeMetrics()
    counted = Census(store, MANIFEST, metrics, clock=lambda: NOW).count()
    assert counted == [WorkflowCensus("access-request", 3, 14400.0, "acc-2")]
    assert metrics.emitted == [("access-request", 3, 14400.0)] and metrics.partials == [0]
    # One call of the store serves every workflow; only those that can wait for a person are measured.
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
    assert metrics.emitted == [] and metrics.partials == []


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


def two_workflows_with_people() -> Any:
    """What the census reads of a manifest, with two workflows that wait for people (a real manifest refuses two
    that share agents and detail-types)."""
    access = MANIFEST.workflow("access-request")
    return SimpleNamespace(coordinated=(access, SimpleNamespace(name="access-copy", external=access.external)),
                           coordinator=MANIFEST.coordinator)


def test_the_census_reads_for_at_most_its_budget_half_the_coordinators_timeout_by_default():
    ticks = iter([100.0, 100.0, 114.9, 115.0])
    store = FakeStore([])
    census = Census(store, MANIFEST, FakeMetrics(), clock=lambda: NOW, monotonic=lambda: next(ticks))
    census.count()
    assert MANIFEST.coordinator.timeout_s * CENSUS_SHARE == 15.0
    [out_of_time] = store.out_of_time
    assert [out_of_time(), out_of_time(), out_of_time()] == [False, False, True]
    longer = replace(MANIFEST, coordinator_settings={"timeout_s": 120})
    assert Census(store, longer)._budget_s() == 60.0
    assert Census(store, MANIFEST, budget_s=3.0)._budget_s() == 3.0


def test_a_census_cut_short_emits_lower_bounds_no_false_zero_and_says_it_was_partial(caplog):
    """The time ran out while reading access-request's waiting headers, before access-copy's: access-request's
    figures are what was read (at least that many wait, the oldest at least that long); access-copy gets no
    figure at all (missing data, which the alarm treats as not breaching, rather than a false 0); CensusPartial
    says 2 workflows were not read to the end, and a warning names them."""
    manifest = two_workflows_with_people()
    store = FakeStore([waiting_view("acc-1", "2026-11-24T11:00:00Z")], unfinished=("access-request", "access-copy"))
    metrics = FakeMetrics()
    with caplog.at_level("WARNING"):
        counted = Census(store, manifest, metrics, clock=lambda: NOW).count()
    assert counted == [WorkflowCensus("access-request", 1, 3600.0, "acc-1", complete=False)]
    assert metrics.emitted == [("access-request", 1, 3600.0)] and metrics.partials == [2]
    [warning] = [r for r in caplog.records if "census partial" in r.getMessage()]
    assert warning.unfinished == ["access-copy", "access-request"]


def test_the_powertools_sink_emits_census_partial_with_the_service_dimension_only(capsys):
    PowertoolsCensusMetrics(service="coordinator", namespace="agentbus").partial(2)
    [blob] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    [directive] = blob["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [["service"]] and blob["service"] == "coordinator"
    [metric] = directive["Metrics"]
    assert (metric["Name"], metric["Unit"], blob[PARTIAL_METRIC]) == (PARTIAL_METRIC, "Count", [2.0])
