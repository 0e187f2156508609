"""The security-audit agent's handler on moto (new-user-audit, a standalone subscriber): it publishes
``User Audit Completed`` with its findings and nothing else happens - the coordinator never hears of it; the
creator is looked up in the directory provisioning seeded; poison goes to its DLQ with the reason."""

from __future__ import annotations

import json
from typing import Any

from agentbus.local.lambda_events import LambdaContext, eventbridge_envelope, sqs_event, sqs_record
from functions.common.clients import Clients
from functions.common.dead_letters import REASON_ATTRIBUTE
from functions.common.digest import trigger_digest
from functions.directory.audit import handler as audit
from tests.conftest import delivered_to_coordinator, drain_queue, load_detail, load_entries, settings_for, tap, tapped

NAME = "security-audit"
SOURCE = "agentbus.agent.security-audit"


def body(name: str, index: int = 0, **changes: Any) -> str:
    entry = load_entries(name)[index]
    detail = {**json.loads(entry["Detail"]), **changes}
    return json.dumps(eventbridge_envelope(entry["DetailType"], entry["Source"], detail))


def run(session, resources, *bodies: str, **overrides: Any) -> dict:
    settings = settings_for(resources, NAME, record_concurrency=1, **overrides)
    arn = resources.consumers[NAME].queue_arn
    event = sqs_event([sqs_record(b, arn, message_id=f"m{i}") for i, b in enumerate(bodies)])
    return audit.build(settings, Clients.create(session))(event, LambdaContext(function_name=NAME))


def test_a_clean_new_user_gets_one_clean_audit_and_the_coordinator_hears_nothing(aws):
    session, resources = aws
    url = tap(session, resources, SOURCE)
    assert run(session, resources, body("user-created.json")) == {"batchItemFailures": []}
    [event] = tapped(session, url)
    assert (event["source"], event["detail-type"]) == (SOURCE, "User Audit Completed")
    detail = event["detail"]
    assert (detail["workflow"], detail["workflow_id"], detail["outcome"]) == ("new-user-audit", "usr-5001", "success")
    assert detail["reason"] == "clean: no findings"
    assert detail["data"]["findings"] == [] and detail["data"]["clean"] is True
    assert detail["trigger_digest"] == trigger_digest(load_detail("user-created.json"))
    assert delivered_to_coordinator(session, resources) == []
    workflows = resources.tables.get("workflows")
    assert workflows and session.client("dynamodb").scan(TableName=workflows)["Count"] == 0


def test_a_privileged_user_gets_the_findings_of_its_sample(aws):
    session, resources = aws
    url = tap(session, resources, SOURCE)
    run(session, resources, body("user-created-privileged.json"))
    [event] = tapped(session, url)
    [sample] = load_entries("user-audit-completed.json")
    want = json.loads(sample["Detail"])
    assert event["detail-type"] == sample["DetailType"]
    assert (event["detail"]["reason"], event["detail"]["data"]) == (want["reason"], want["data"])
    assert event["detail"]["trigger_digest"] == want["trigger_digest"]
    severities = {(f["code"], f["severity"]) for f in event["detail"]["data"]["findings"]}
    assert {("privileged_group", "high"), ("external_email", "medium"), ("creator_not_admin", "high"),
            ("created_outside_business_hours", "low")} == severities


def test_the_creator_is_read_from_the_seeded_directory(aws):
    session, resources = aws
    url = tap(session, resources, SOURCE)
    run(session, resources, body("user-created.json", user_id="usr-6001", created_by="emp-1009"),
        body("user-created.json", user_id="usr-6002", created_by="emp-0000"))
    findings = {e["detail"]["workflow_id"]: {f["code"] for f in e["detail"]["data"]["findings"]}
                for e in tapped(session, url)}
    assert findings == {"usr-6001": {"creator_inactive"}, "usr-6002": {"unknown_creator"}}


def test_company_domains_come_from_the_functions_parameter(aws):
    session, resources = aws
    url = tap(session, resources, SOURCE)
    run(session, resources, body("user-created.json"), parameters={"COMPANY_DOMAINS": "corp.example"})
    [event] = tapped(session, url)
    assert [f["code"] for f in event["detail"]["data"]["findings"]] == ["external_email"]
    assert "corp.example" in event["detail"]["reason"]


def test_poison_goes_to_the_dlq_with_its_reason_and_the_rest_is_processed(aws):
    session, resources = aws
    url = tap(session, resources, SOURCE)
    no_email = body("user-created.json", user_id="usr-7001", email="not-an-address")
    access = body("access-requested.json")
    bodies = ["{}", no_email, access, body("user-created.json")]
    assert run(session, resources, *bodies) == {"batchItemFailures": []}
    kept = {m["Body"]: m["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
            for m in drain_queue(session.client("sqs"), resources.consumers[NAME].dlq_url)}
    assert set(kept) == set(bodies[:3])
    assert "not an EventBridge event" in kept["{}"]
    assert "email" in kept[no_email]
    assert "User Created" in kept[access] and "Access Requested" in kept[access]
    assert [e["detail"]["workflow_id"] for e in tapped(session, url)] == ["usr-5001"]
