"""What every agent of the manifest owes: a Lambda entry point wired from its environment, and a sample of
each result it may emit that is a valid `aws events put-events --entries` file the bus routes."""

from __future__ import annotations

import importlib
import json

import pytest

from agentbus.local.lambda_events import LambdaContext, eventbridge_envelope, sqs_event, sqs_record
from functions.common.models import AgentResult
from functions.manifest import MANIFEST, Outcome
from tests.conftest import EVENTS_DIR, delivered_to_coordinator, load_entries

AGENTS = MANIFEST.agents
RESULTS = [(agent, result) for agent in AGENTS for result in agent.results]


def sample_file(detail_type: str) -> str:
    return detail_type.lower().replace(" ", "-") + ".json"


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
def test_lambda_entry_point_builds_from_its_environment(agent, aws, monkeypatch):
    session, resources = aws
    for key, value in resources.function_environment(agent.name, MANIFEST).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RECORD_CONCURRENCY", "1")  # moto in-process is not thread-safe
    module = importlib.import_module(agent.handler.rpartition(".")[0])
    module.handler.reset()
    try:
        [order] = load_entries("order-placed.json")
        body = eventbridge_envelope(order["DetailType"], order["Source"], json.loads(order["Detail"]))
        event = sqs_event([sqs_record(body, resources.consumers[agent.name].queue_arn)])
        assert module.handler(event, LambdaContext(agent.name)) == {"batchItemFailures": []}
    finally:
        module.handler.reset()
    [published] = delivered_to_coordinator(session, resources)
    success = next(r.detail_type for r in agent.results if r.outcome is Outcome.SUCCESS)
    assert (published["source"], published["detail-type"]) == (agent.source, success)


@pytest.mark.parametrize(("agent", "result"), RESULTS, ids=lambda x: getattr(x, "detail_type", getattr(x, "name", "")))
def test_each_result_has_a_valid_put_events_sample(agent, result, aws):
    session, resources = aws
    entries = json.loads((EVENTS_DIR / sample_file(result.detail_type)).read_text())
    [entry] = entries
    assert (entry["EventBusName"], entry["Source"], entry["DetailType"]) == ("agentbus", agent.source,
                                                                            result.detail_type)
    detail = AgentResult.model_validate(json.loads(entry["Detail"]))
    assert (detail.workflow_id, detail.agent) == ("ord-1001", agent.name)
    assert detail.outcome == result.outcome.value
    assert detail.idempotency_key == f"ord-1001:{agent.name}"
    # What `aws events put-events --entries file://events/<sample>` does: the bus routes it to the coordinator.
    assert session.client("events").put_events(Entries=entries)["FailedEntryCount"] == 0
    [delivered] = delivered_to_coordinator(session, resources)
    assert (delivered["detail-type"], delivered["detail"]) == (entry["DetailType"], json.loads(entry["Detail"]))
