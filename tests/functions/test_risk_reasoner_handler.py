"""The risk agent's Lambda handler with a model turned on, on moto: the environment the stack writes
(``REASONER``/``MODEL_ID``) builds a reasoner, a recorded Converse answer (botocore's Stubber on a bedrock-runtime
client; moto has no Converse) raises the score in the published result, the token counts are metrics with the
agent's dimension, and a model call Bedrock refuses fails the record for SQS to deliver again."""

from __future__ import annotations

import importlib
import json

import boto3
import pytest
from botocore.stub import Stubber

from agentbus.local.lambda_events import LambdaContext, sqs_event, sqs_record
from functions.access.risk.logic import ADVICE_TOOL, TOO_HIGH
from functions.common import reasoner as reasoner_module
from functions.common.clients import Clients
from functions.common.settings import Settings, reasoner_environment
from functions.manifest import MANIFEST
from tests.conftest import delivered_to_coordinator as published
from tests.conftest import load_entries
from tests.functions.test_access_handlers import body

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"


@pytest.fixture
def bedrock(monkeypatch):
    """A stubbed bedrock-runtime client in place of the one the reasoner would create."""
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    timeouts: list[int] = []

    def client_for(read_timeout_s: int):
        timeouts.append(read_timeout_s)
        return client

    monkeypatch.setattr(reasoner_module, "bedrock_client", client_for)
    with Stubber(client) as stubber:
        stubber.timeouts = timeouts  # type: ignore[attr-defined]
        yield stubber
        stubber.assert_no_pending_responses()


def run(session, resources, *bodies: str) -> dict:
    environment = resources.function_environment("risk", MANIFEST)
    environment.update(reasoner_environment(MANIFEST.consumer("risk"), "bedrock", MODEL))
    environment["RECORD_CONCURRENCY"] = "1"  # moto in-process is not thread-safe
    module = importlib.import_module(MANIFEST.agent("risk").module)
    handler = module.build(Settings.from_env(environment), Clients.create(session))
    arn = resources.consumers["risk"].queue_arn
    return handler(sqs_event([sqs_record(b, arn, message_id=f"m{i}") for i, b in enumerate(bodies)]),
                   LambdaContext(function_name="risk"))


def answer(raise_by: int, reasons: list[str]) -> dict:
    return {
        "output": {"message": {"role": "assistant", "content": [
            {"toolUse": {"toolUseId": "tooluse_Q2l0ZWQ", "name": ADVICE_TOOL,
                         "input": {"raise_by": raise_by, "reasons": reasons}}}]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 1034, "outputTokens": 57, "totalTokens": 1091},
        "metrics": {"latencyMs": 1210},
    }


def test_the_model_raises_the_score_in_the_published_result(aws, bedrock, monkeypatch, capsys):
    session, resources = aws
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    bedrock.add_response("converse", answer(70, ["the justification asks the system to approve"]))
    # The sample request is accepted by the rules alone (its result sample: events/risk-accepted.json).
    rules_score = json.loads(load_entries("risk-accepted.json")[0]["Detail"])["data"]["score"]
    assert run(session, resources, body("access-requested.json")) == {"batchItemFailures": []}
    [event] = published(session, resources)
    detail = event["detail"]
    assert (event["detail-type"], detail["data"]["score"]) == (TOO_HIGH, rules_score + 70)
    model = detail["data"]["reasoner"]
    assert (model["model_id"], model["used"], model["raised_by"], model["rules_score"]) == (MODEL, True, 70,
                                                                                            rules_score)
    assert (model["input_tokens"], model["output_tokens"]) == (1034, 57)
    assert bedrock.timeouts == [int(MANIFEST.agent("risk").reasoner.time_budget_s)]
    emitted = {}
    for line in capsys.readouterr().out.splitlines():
        record = json.loads(line) if line.startswith("{") else {}
        for metric in record.get("_aws", {}).get("CloudWatchMetrics", [{}])[0].get("Metrics", []):
            emitted[metric["Name"]] = (record[metric["Name"]], record.get("agent"))
    assert emitted["ReasonerInputTokens"] == ([1034], "risk")
    assert emitted["ReasonerOutputTokens"] == ([57], "risk")


def test_a_call_bedrock_refuses_fails_the_record_for_redelivery(aws, bedrock):
    session, resources = aws
    bedrock.add_client_error("converse", service_error_code="AccessDeniedException", http_status_code=403,
                             service_message="You don't have access to the model with the specified model ID.")
    assert run(session, resources, body("access-requested.json")) == {"batchItemFailures": [
        {"itemIdentifier": "m0"}]}
    assert published(session, resources) == []


def test_without_the_switch_no_model_is_called(aws, bedrock):
    session, resources = aws
    environment = resources.function_environment("risk", MANIFEST)
    handler = importlib.import_module(MANIFEST.agent("risk").module).build(
        Settings.from_env({**environment, "RECORD_CONCURRENCY": "1"}), Clients.create(session))
    event = sqs_event([sqs_record(body("access-requested.json"), resources.consumers["risk"].queue_arn)])
    assert handler(event, LambdaContext(function_name="risk")) == {"batchItemFailures": []}
    [event] = published(session, resources)
    assert "reasoner" not in event["detail"]["data"] and bedrock.timeouts == []
