"""The sweep's synthetic workflow: a generated manifest that functions find again by import path, agents that
share one handler and answer with the size their trigger asks for."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentbus.bench.synthetic import (
    ANSWERED,
    FAILED,
    REQUESTED,
    SOURCE,
    SweepRequested,
    build,
    decide,
    import_path,
    requests,
    synthetic_manifest,
)
from agentbus.local.lambda_events import LambdaContext, eventbridge_envelope, sqs_event, sqs_record
from functions.common.clients import Clients
from functions.common.settings import Settings, function_environment
from functions.common.spec import MANIFEST_VARIABLE, Outcome, load_manifest


def test_a_manifest_of_n_agents_is_generated_and_found_again_by_its_import_path():
    manifest = synthetic_manifest(30)
    (workflow,) = manifest.workflows
    assert workflow.coordinated and len(workflow.agents) == 30
    assert len({a.name for a in workflow.agents}) == len({a.source for a in workflow.agents}) == 30
    assert {a.handler for a in workflow.agents} == {"agentbus.bench.synthetic.handler"}  # one shared handler
    assert all([r.outcome for r in a.results] == [Outcome.SUCCESS, Outcome.FAILURE] for a in workflow.agents)
    assert workflow.required_agents == {a.name for a in workflow.agents}
    assert manifest.import_path == import_path(30) == "agentbus.bench.synthetic:AGENTS_30"
    assert load_manifest(manifest.import_path) is manifest
    assert synthetic_manifest(3).workflows[0].name != workflow.name  # one workflow name per N
    with pytest.raises(ValueError, match="1 to 99 agents, not 0"):
        synthetic_manifest(0)
    with pytest.raises(ValueError, match="no attribute 'AGENTS_100'"):
        load_manifest("agentbus.bench.synthetic:AGENTS_100")


def test_requests_ask_for_the_payload_and_fit_the_trigger_model():
    workflow = synthetic_manifest(3).workflows[0]
    entries = requests(workflow, "p", 2, 100 * 1024)
    assert [e["Source"] for e in entries] == [SOURCE] * 2 and [e["DetailType"] for e in entries] == [REQUESTED] * 2
    details = [SweepRequested.model_validate(json.loads(e["Detail"])) for e in entries]
    assert [(d.sweep_id, d.payload_bytes) for d in details] == [("p-00000", 102_400), ("p-00001", 102_400)]
    assert workflow.trigger.matches(entries[0]["Source"], entries[0]["DetailType"])
    with pytest.raises(ValueError, match="payload must be"):
        requests(workflow, "p", 1, -1)


def test_the_decision_carries_data_of_the_size_asked():
    decision = decide(SweepRequested(sweep_id="r-1", payload_bytes=1024))
    assert decision.detail_type == ANSWERED and len(decision.data["data"]) == 1024


class FakeEvents:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def put_events(self, Entries):  # noqa: N803
        self.entries += Entries
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(i)} for i, _ in enumerate(Entries)]}


def _handle(agent: str, payload: int) -> list[dict[str, Any]]:
    manifest = synthetic_manifest(3)
    environment = function_environment(manifest.consumer(agent), manifest, bus_name="bus", bus_arn="arn:bus",
                                       tables={}, dead_letter_queue_url="")
    assert environment[MANIFEST_VARIABLE] == "agentbus.bench.synthetic:AGENTS_3"
    settings = Settings.from_env(environment)  # as the function reads it at cold start
    events = FakeEvents()
    function = build(settings, Clients(events=events, sqs=None, dynamodb=None, scheduler=None))
    body = eventbridge_envelope(REQUESTED, SOURCE, {"sweep_id": "r-1", "payload_bytes": payload})
    response = function(sqs_event([sqs_record(body, "arn:aws:sqs:us-east-1:1:q", message_id="m1")]),
                        LambdaContext(agent))
    assert response == {"batchItemFailures": []}
    return events.entries


def test_every_agent_runs_the_one_handler_under_its_own_name():
    (entry,) = _handle("sweep-agent-02", 2048)
    detail = json.loads(entry["Detail"])
    assert entry["Source"] == "agentbus.agent.sweep-agent-02" and entry["DetailType"] == ANSWERED
    assert detail["agent"] == "sweep-agent-02" and detail["outcome"] == "success"
    assert len(detail["data"]["data"]) == 2048


def test_a_result_over_eventbridges_limit_becomes_the_agents_failure_with_the_reason():
    (entry,) = _handle("sweep-agent-01", 300 * 1024)
    detail = json.loads(entry["Detail"])
    assert entry["DetailType"] == FAILED and detail["outcome"] == "failure"
    assert "result too large to publish" in detail["reason"] and "256 KB" in detail["reason"]
