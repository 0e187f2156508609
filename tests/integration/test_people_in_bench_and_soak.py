"""The benchmark and the soak copy a workflow's ``samples``, the requests its agents decide alone (review bb4c F5):
a copy that waits for a person all the same (a sample asking for one, listed in ``samples``) stops the
benchmark at its first request with one line naming the workflow, instead of a silent wait for ever; the soak
reports it as waiting for a person, not as "no outcome" after its whole timeout, and its invariants hold for the
rest."""

from __future__ import annotations

import dataclasses
import io
import json
import time

import pytest
from rich.console import Console

from agentbus.bench import Harness
from agentbus.bench.soak import run_soak
from agentbus.bench.workload import soak_traffic
from agentbus.local.provision import REPO_ROOT
from agentbus.operations import OperationError
from functions.access.workflow import ACCESS_REQUEST
from functions.access.workflow import TABLES as ACCESS_TABLES
from functions.common.spec import Manifest
from functions.manifest import MANIFEST

HIGH_RISK = "events/access-requested-high-risk.json"  # the risk agent asks for the manager's approval
GRANTED = "events/access-requested.json"


# The access workflow with its sample that waits for a person listed first among its samples; the functions find
# this manifest by its import path (AGENTBUS_MANIFEST).
ASKING_FIRST = Manifest(
    workflows=(dataclasses.replace(ACCESS_REQUEST, samples=(HIGH_RISK, GRANTED), people_samples=()),),
    tables=ACCESS_TABLES, import_path=f"{__name__}:ASKING_FIRST")


def test_the_soak_takes_no_people_sample():
    """The shipped access workflow's request that waits for the manager is a people sample: no soak copy of it."""
    def without_id(detail: str) -> dict:
        return {k: v for k, v in json.loads(detail).items() if k != "request_id"}

    [high_risk] = [without_id(e["Detail"]) for e in json.loads((REPO_ROOT / HIGH_RISK).read_text())]
    access = [e["Detail"] for r in soak_traffic(60, "t", MANIFEST) if r.workflow == "access-request"
              for e in r.entries]
    assert access and high_risk not in [without_id(d) for d in access]


def test_the_benchmark_stops_at_its_first_request_that_waits_for_a_person():
    started = time.monotonic()
    with Harness(chained=False, work_profile={}, manifest=ASKING_FIRST) as harness, \
            pytest.raises(OperationError) as refused:
        harness.run_level(1, "people", timeout_s=120, workflow="access-request")
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("workflow 'access-request': a request copied from its samples waits for a person "
                              "(manager-approval)"), message
    assert "people_samples" in message
    assert time.monotonic() - started < 60, "the benchmark waited for the person instead of saying so"


def test_the_soak_reports_a_request_that_waits_for_a_person_as_such_not_as_no_outcome():
    output = io.StringIO()
    started = time.monotonic()
    code = run_soak(4, chaos_rate=0.0, seed=7, console=Console(file=output, width=400, highlight=False),
                    deadline_s=60, timeout_s=150, manifest=ASKING_FIRST, in_flight=10)
    text = output.getvalue()
    assert code == 1, text
    assert "no outcome" not in text and "nothing final" not in text, text
    assert ("workflow 'access-request': a request copied from its samples waits for a person (manager-approval)"
            in text), text
    assert "(2 requests, e.g. access-request/soak-" in text, text
    assert "  access-request: COMPLETED 2" in text, text  # the copies of the other sample were decided alone
    assert time.monotonic() - started < 120, "the soak waited its whole timeout for the person"
