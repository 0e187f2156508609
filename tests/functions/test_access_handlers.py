"""The access-request agents' handlers on moto (identity, policy, risk): each sample request gets the result
its sample in `events/` shows, published on the bus for the coordinator; the directory they read is the one
provisioning seeded; poison goes to the agent's DLQ with its reason."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest

from agentbus.local.lambda_events import LambdaContext, eventbridge_envelope, sqs_event, sqs_record
from functions.common.clients import Clients
from functions.common.dead_letters import REASON_ATTRIBUTE
from functions.common.digest import trigger_digest
from functions.manifest import MANIFEST
from tests.conftest import EVENTS_DIR, load_detail, load_entries, settings_for
from tests.conftest import delivered_to_coordinator as published
from tests.conftest import drain_queue as drain

WORKFLOW = MANIFEST.workflow("access-request")
AGENTS = [agent.name for agent in WORKFLOW.agents]


def body(name: str, index: int = 0, **changes: Any) -> str:
    entry = load_entries(name)[index]
    detail = {**json.loads(entry["Detail"]), **changes}
    return json.dumps(eventbridge_envelope(entry["DetailType"], entry["Source"], detail))


def run(session, resources, agent: str, *bodies: str) -> dict:
    """One SQS batch through ``agent``'s handler, wired as its Lambda function is (one record at a time:
    moto in-process is not thread-safe)."""
    module = importlib.import_module(MANIFEST.agent(agent).handler.rpartition(".")[0])
    handler = module.build(settings_for(resources, agent, record_concurrency=1), Clients.create(session))
    arn = resources.consumers[agent].queue_arn
    event = sqs_event([sqs_record(b, arn, message_id=f"m{i}") for i, b in enumerate(bodies)])
    return handler(event, LambdaContext(function_name=agent))


def dead_letters(session, resources, agent: str) -> dict[str, str]:
    return {m["Body"]: m["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
            for m in drain(session.client("sqs"), resources.consumers[agent].dlq_url)}


# (agent, trigger sample, the result sample it must reproduce)
SAMPLES = [
    ("identity", "access-requested.json", "identity-verified.json"),
    ("identity", "access-requested-inactive.json", "identity-rejected.json"),
    ("policy", "access-requested.json", "access-permitted.json"),
    ("policy", "access-requested-contractor-admin.json", "access-not-permitted.json"),
    ("risk", "access-requested.json", "risk-accepted.json"),
    ("risk", "access-requested-risky.json", "risk-too-high.json"),
]


@pytest.mark.parametrize(("agent", "trigger", "sample"), SAMPLES, ids=[f"{a}-{s}" for a, _, s in SAMPLES])
def test_sample_request_gets_the_result_of_its_sample(aws, agent, trigger, sample):
    session, resources = aws
    assert run(session, resources, agent, body(trigger)) == {"batchItemFailures": []}
    [event] = published(session, resources)
    [expected] = load_entries(sample)
    want = json.loads(expected["Detail"])
    assert (event["source"], event["detail-type"]) == (expected["Source"], expected["DetailType"])
    got = event["detail"]
    assert (got["workflow"], got["workflow_id"], got["agent"], got["outcome"]) == \
        (want["workflow"], want["workflow_id"], want["agent"], want["outcome"])
    assert (got["reason"], got["data"]) == (want["reason"], want["data"])
    assert got["trigger_digest"] == trigger_digest(load_detail(trigger)) == want["trigger_digest"]
    assert got["idempotency_key"] == f"{want['workflow_id']}:{agent}:{got['trigger_digest']}"


def test_directory_is_seeded_by_provisioning(aws):
    session, resources = aws
    dynamodb = session.client("dynamodb")
    items = dynamodb.scan(TableName=resources.tables["directory"])["Items"]
    seeded = json.loads((EVENTS_DIR / "seed-directory.json").read_text())["items"]
    assert sorted(i["employee_id"]["S"] for i in items) == sorted(e["employee_id"] for e in seeded)
    contractor = next(i for i in items if i["employee_id"]["S"] == "emp-1004")
    assert (contractor["role"]["S"], contractor["status"]["S"]) == ("contractor", "active")


def test_identity_rejects_an_unknown_employee_naming_it(aws):
    session, resources = aws
    run(session, resources, "identity", body("access-requested.json", employee_id="emp-9999"))
    [event] = published(session, resources)
    assert (event["detail-type"], event["detail"]["outcome"]) == ("Identity Rejected", "failure")
    assert "emp-9999" in event["detail"]["reason"] and "not in the directory" in event["detail"]["reason"]


def test_identity_follows_the_directory_as_it_changes(aws):
    session, resources = aws
    session.client("dynamodb").update_item(
        TableName=resources.tables["directory"], Key={"employee_id": {"S": "emp-1001"}},
        UpdateExpression="SET #s = :inactive, inactive_since = :since",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":inactive": {"S": "inactive"}, ":since": {"S": "2026-11-01"}})
    run(session, resources, "identity", body("access-requested.json"))
    [event] = published(session, resources)
    assert event["detail-type"] == "Identity Rejected"
    assert event["detail"]["reason"] == "employee emp-1001 is inactive since 2026-11-01"


def test_policy_refuses_an_unknown_resource_naming_it(aws):
    session, resources = aws
    run(session, resources, "policy", body("access-requested.json", resource="moon-base"))
    [event] = published(session, resources)
    assert event["detail-type"] == "Access Not Permitted"
    assert "moon-base" in event["detail"]["reason"]


@pytest.mark.parametrize("agent", AGENTS)
def test_poison_goes_to_the_agents_dlq_with_its_reason_and_the_rest_is_processed(aws, agent):
    session, resources = aws
    order = body("order-placed.json")
    bodies = ["[]", body("access-requested-invalid.json"), order, body("access-requested.json")]
    assert run(session, resources, agent, *bodies) == {"batchItemFailures": []}
    kept = dead_letters(session, resources, agent)
    assert set(kept) == set(bodies[:3])
    assert "not an EventBridge event" in kept["[]"]
    invalid = kept[bodies[1]]
    assert "access_level" in invalid and "justification" in invalid
    assert "Access Requested" in kept[order] and "Order Placed" in kept[order]
    assert [e["detail"]["workflow_id"] for e in published(session, resources)] == ["acc-3001"]
