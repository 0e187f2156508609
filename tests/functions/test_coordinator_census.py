"""The census wired into the coordinator's Lambda handler (moto): on ``Workflow Census Due`` from the deadline
source, it scans the workflows waiting for a person and emits, per workflow with external agents, how many wait
and the oldest wait, as Powertools EMF metrics with the dimensions the alarm reads."""

from __future__ import annotations

import json

import pytest

from agentbus.local.lambda_events import eventbridge_envelope
from functions.common.spec import CENSUS_DETAIL_TYPE, DEADLINE_SOURCE
from functions.coordinator import census
from tests.functions.coordinator_harness import Coordinator
from tests.functions.test_coordinator_people import ACCESS, access_results, person, risky_request

CENSUS = eventbridge_envelope(CENSUS_DETAIL_TYPE, DEADLINE_SOURCE, {"census": "workflows waiting for a person"})


@pytest.fixture(autouse=True)
def metrics_printed(monkeypatch):
    """Outside Lambda, metrics are printed only when asked for (functions.common.observability.emf_enabled)."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")


@pytest.fixture
def c(aws):
    return Coordinator(*aws)


def emitted(capsys) -> dict[str, tuple[dict, list]]:
    """Every census metric printed (EMF JSON lines): name -> (dimensions, values)."""
    found = {}
    for line in capsys.readouterr().out.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        blob = json.loads(line)
        [directive] = blob["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]:
            if metric["Name"] in (census.WAITING_METRIC, census.OLDEST_WAIT_METRIC):
                dims = {name: blob[name] for name in directive["Dimensions"][0]}
                found[metric["Name"]] = (dims, blob[metric["Name"]])
    return found


def test_the_census_event_counts_who_waits_for_a_person_and_since_when(c, capsys):
    request = risky_request("acc-9101")
    assert c.deliver(request, *access_results(request)) == {"batchItemFailures": []}
    capsys.readouterr()
    c.clock.advance(minutes=7)
    assert c.deliver(CENSUS) == {"batchItemFailures": []}
    got = emitted(capsys)
    dims = {"service": "coordinator", "workflow": "access-request"}
    assert got[census.WAITING_METRIC] == (dims, [1.0])
    dims_oldest, [oldest] = got[census.OLDEST_WAIT_METRIC]
    assert dims_oldest == dims and 420 <= oldest < 425


def test_an_answered_workflow_no_longer_counts(c, capsys):
    request = risky_request("acc-9102")
    c.deliver(request, *access_results(request))
    c.deliver(person("acc-9102"))
    assert c.view(ACCESS, "acc-9102")["status"] == "COMPLETED"
    capsys.readouterr()
    assert c.deliver(CENSUS) == {"batchItemFailures": []}
    got = emitted(capsys)
    assert got[census.WAITING_METRIC][1] == [0.0] and got[census.OLDEST_WAIT_METRIC][1] == [0.0]
