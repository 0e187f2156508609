"""The entry-point contract of tests/functions/test_agent_contracts.py holds for an agent whose workflow is
started by another workflow's outcome (review bb4c F6): its sample is that other workflow's trigger (README "Add a
workflow"), so the test feeds the agent the outcome the coordinator publishes for it, not the sample itself; a
workflow with no usable sample fails naming the problem, not with an unpacking error."""

from __future__ import annotations

import dataclasses

import pytest
from moto import mock_aws

from agentbus.local.provision import provision
from functions.common.spec import COORDINATOR_SOURCE, Manifest
from tests.functions.test_agent_contracts import agent_trigger, check_entry_point
from tests.workflows.followups.manifest import MANIFEST as FOLLOW_UPS


@pytest.fixture
def follow_ups():
    import boto3

    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        yield session, provision(session, manifest=FOLLOW_UPS)


@pytest.mark.parametrize("agent", FOLLOW_UPS.agents, ids=lambda a: a.name)
def test_every_agent_of_a_manifest_with_a_follow_on_workflow_answers_its_real_trigger(agent, follow_ups,
                                                                                       monkeypatch):
    session, resources = follow_ups
    check_entry_point(FOLLOW_UPS, agent, session, resources, monkeypatch)


def test_the_follow_on_agent_gets_the_outcome_of_the_workflow_its_sample_starts():
    filed = FOLLOW_UPS.workflow("report-filed")
    report = FOLLOW_UPS.workflow("report")
    assert report.outcomes is not None
    detail_type, source, detail = agent_trigger(FOLLOW_UPS, filed)
    assert (detail_type, source) == (report.outcomes.completed, COORDINATOR_SOURCE)
    assert (detail["workflow"], detail["status"], detail["report_id"]) == ("report", "COMPLETED", "rep-7001")


def test_a_workflow_without_a_usable_sample_fails_naming_the_problem():
    filed = dataclasses.replace(FOLLOW_UPS.workflow("report-filed"), name="lonely", samples=())
    # With the workflow whose outcome starts it: a trigger no workflow publishes is refused by the manifest check.
    manifest = Manifest(workflows=(FOLLOW_UPS.workflow("report"), filed))
    with pytest.raises(pytest.fail.Exception, match="workflow 'lonely': no sample of its trigger"):
        agent_trigger(manifest, filed)
