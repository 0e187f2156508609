"""Issue 15, claim check, on the local runtime (moto's S3 behind the local endpoint): a 1 MB result (four times
what EventBridge carries) completes its workflow with one outcome; a result whose object was deleted before the
coordinator read it is dead-lettered with a reason naming the reference, and nothing is retried."""

from __future__ import annotations

import json
import time

import pytest

from agentbus import operations
from agentbus.control import AgentControl
from agentbus.discovery import Deployment
from functions.common.dead_letters import REASON_ATTRIBUTE
from functions.coordinator.store import WorkflowStore
from tests.conftest import observed_stack
from tests.workflows.reports.manifest import MANIFEST as REPORTS
from tests.workflows.reports.workflow import PRODUCER_SOURCE, REPORT_REQUESTED

MEGABYTE = 1024 * 1024
TIMEOUT_S = 60


@pytest.fixture(scope="module")
def stack():
    with observed_stack(manifest=REPORTS) as local:
        yield local


def request(stack, report_id: str, payload_bytes: int) -> None:
    response = stack.client("events").put_events(Entries=[{
        "Source": PRODUCER_SOURCE, "DetailType": REPORT_REQUESTED, "EventBusName": stack.resources.bus_name,
        "Detail": json.dumps({"report_id": report_id, "payload_bytes": payload_bytes})}])
    assert response["FailedEntryCount"] == 0, response


def view(stack, report_id: str) -> dict:
    store = WorkflowStore(stack.client("dynamodb"), stack.resources.tables["workflows"], REPORTS,
                          stack.resources.tables)
    [record] = store.find(report_id)
    deployment = Deployment(stack.session, stack.url, stack.resources)
    return operations.claim_checked(deployment, store.view(record), REPORTS)


def test_a_1_mb_result_completes_the_workflow_with_one_outcome(stack):
    request(stack, "rep-mega", MEGABYTE)
    observer = stack.observer_
    assert observer.wait_for_outcomes(["rep-mega"], TIMEOUT_S) == set()
    time.sleep(1)  # a duplicate outcome would arrive now
    [outcome] = observer.outcomes("rep-mega")
    assert (outcome.detail_type, outcome.detail["status"]) == ("Report Completed", "COMPLETED")
    # What crossed the bus for the result: the reference and its routing fields, not the megabyte.
    [written] = [e for e in observer.events("rep-mega") if e.detail_type == "Report Written"]
    reference = written.detail["claim_check"]
    assert set(written.detail) == {"claim_check", "workflow", "workflow_id", "agent", "outcome", "trigger_digest",
                                   "idempotency_key"}
    assert reference["bucket"] == stack.resources.claim_check_bucket and reference["bytes"] > MEGABYTE
    assert outcome.detail["results"]["writer"]["data"] == {"claim_check": reference}
    # The status view reads the megabyte back from the bucket.
    result = view(stack, "rep-mega")["results"]["writer"]
    assert "claim_check_error" not in result, result.get("claim_check_error")
    assert result["claim_check"] == reference and result["data"] == {"text": "r" * MEGABYTE}
    assert "claim_check_error" not in result


def test_a_result_whose_object_was_deleted_is_dead_lettered_with_the_reason(stack):
    control = AgentControl(stack.resources, stack.client("sqs"))
    s3, sqs = stack.client("s3"), stack.client("sqs")
    bucket = stack.resources.claim_check_bucket
    control.set_paused("coordinator", True)
    try:
        request(stack, "rep-gone", 300 * 1024)
        deadline = time.monotonic() + TIMEOUT_S
        keys: list[str] = []
        while not keys and time.monotonic() < deadline:
            listed = s3.list_objects_v2(Bucket=bucket, Prefix="writer/").get("Contents", [])
            keys = [o["Key"] for o in listed if "/rep-gone_writer_" in o["Key"]]
            time.sleep(0.2)
        assert keys, "the writer stored no claim check"
        [key] = keys
        s3.delete_object(Bucket=bucket, Key=key)
    finally:
        control.set_paused("coordinator", False)

    dlq = stack.resources.consumers["coordinator"].dlq_url
    letters: list[dict] = []
    deadline = time.monotonic() + TIMEOUT_S
    while not letters and time.monotonic() < deadline:
        letters = sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"], WaitTimeSeconds=1,
                                      MaxNumberOfMessages=10).get("Messages", [])
    [letter] = letters
    reason = letter["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
    assert f"claim check s3://{bucket}/{key}: no such object" in reason, reason
    assert json.loads(letter["Body"])["detail"]["claim_check"]["key"] == key  # the original event, kept
    assert json.loads(letter["Body"])["detail"]["workflow_id"] == "rep-gone"
    # Poison, kept at its first receive (not "failed on receive N of at most M" after retries); the workflow
    # still waits for the result, and its deadline decides.
    assert "failed on receive" not in reason
    status = view(stack, "rep-gone")
    assert status["status"] == "RUNNING" and status["missing"] == ["writer"]
