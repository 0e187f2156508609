"""The demo's people in the loop come from the manifest (review bb4c F2): each workflow's ``people_samples``
(read only when that workflow runs, a missing file naming it), and the answer is signed as the external agent the
request waits for, not "the employee's manager" for every workflow."""

from __future__ import annotations

import dataclasses
import io

import pytest
from rich.console import Console

import agentbus.demo as demo
from agentbus.operations import OperationError
from functions.access.workflow import ACCESS_REQUEST
from functions.access.workflow import TABLES as ACCESS_TABLES
from functions.common.spec import ExternalAgent, Manifest, Outcome, ResultType
from functions.orders.workflow import ORDER_FULFILLMENT
from functions.orders.workflow import TABLES as ORDER_TABLES

HIGH_RISK = "events/access-requested-high-risk.json"


class StackStarted(Exception):
    """Raised instead of starting the local stack: the test only looks at what the demo read before."""


@pytest.fixture
def read(monkeypatch):
    """The files the demo reads before it starts its stack (it is stopped right there)."""
    paths: list[str] = []
    load = demo.load_entries

    def recording(files):
        paths.extend(files)
        return load(files)

    def no_stack(*args, **kwargs):
        raise StackStarted

    monkeypatch.setattr(demo, "load_entries", recording)
    monkeypatch.setattr(demo, "LocalStack", no_stack)
    return paths


def run(manifest: Manifest, workflows=None) -> None:
    demo.run_demo(manifest=manifest, workflows=workflows, console=Console(file=io.StringIO()), work_profile={})


def test_a_manifest_without_the_access_workflow_reads_no_access_sample(read):
    manifest = Manifest(workflows=(ORDER_FULFILLMENT,), tables=ORDER_TABLES)
    with pytest.raises(StackStarted):
        run(manifest)
    assert read and HIGH_RISK not in read
    assert not any("access" in path for path in read), read


def test_the_shipped_access_workflow_declares_its_sample_that_waits_for_a_person(read):
    assert ACCESS_REQUEST.people_samples == (HIGH_RISK,)
    assert HIGH_RISK not in ACCESS_REQUEST.samples  # the benchmark and the soak take `samples` only
    with pytest.raises(StackStarted):
        run(Manifest(workflows=(ACCESS_REQUEST,), tables=ACCESS_TABLES))
    assert read[-1] == HIGH_RISK  # after the samples, as before


def test_a_missing_people_sample_names_its_workflow_only_when_that_workflow_runs(read):
    broken = dataclasses.replace(ACCESS_REQUEST, people_samples=("events/no-such-request.json",))
    manifest = Manifest(workflows=(ORDER_FULFILLMENT, broken), tables=(*ORDER_TABLES, *ACCESS_TABLES))
    with pytest.raises(OperationError, match=r"workflow 'access-request': people_samples: cannot read .*"
                                             r"no-such-request\.json"):
        run(manifest)
    with pytest.raises(StackStarted):  # the other workflow alone runs
        run(manifest, ["order-fulfillment"])


def test_the_demo_answers_as_the_external_agent_the_request_waits_for():
    cfo = ExternalAgent(name="cfo-approval", source="acme.cfo", kind="a person (the CFO)",
                        results=(ResultType("Invoice Signed Off", Outcome.SUCCESS),))
    assert demo.approver(cfo) == "demo (as cfo-approval: a person (the CFO))"
    [manager] = ACCESS_REQUEST.external
    assert demo.approver(manager) == "demo (as manager-approval: a person (the employee's manager))"
