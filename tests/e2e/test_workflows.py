"""Issue 11's "done when", against `agentbus up` with the real `aws` CLI: access requests granted or denied
naming the failing agent, the new-user audit running in the background with no workflow record, and an order
and an access request sharing an id kept apart. One `agentbus up` for the whole module."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.conftest import agents_of, load_entries, order_entry

pytestmark = pytest.mark.e2e

TIMEOUT_S = 60


class Listener:
    """A client's own rule + queue on the bus, made with the aws CLI: what the coordinator and the audit
    agent publish, kept by (detail-type, workflow id)."""

    def __init__(self, up):
        self.up = up
        name = f"e2e-listener-{uuid.uuid4().hex[:6]}"
        self.sqs, events = up.boto3("sqs"), up.boto3("events")
        self.url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=name, EventBusName="agentbus",
                        EventPattern=json.dumps({"source": ["agentbus.coordinator", "agentbus.agent.security-audit"]}))
        events.put_targets(Rule=name, EventBusName="agentbus", Targets=[{"Id": "listener", "Arn": arn}])
        self.heard: list[dict] = []

    def drain(self) -> None:
        while messages := self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10,
                                                   WaitTimeSeconds=1).get("Messages", []):
            for message in messages:
                self.heard.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])

    def events(self, workflow: str, workflow_id: str) -> list[dict]:
        return [e for e in self.heard
                if e["detail"].get("workflow") == workflow and e["detail"].get("workflow_id") == workflow_id]

    def wait(self, workflow: str, workflow_id: str, detail_types: set[str]) -> list[dict]:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            self.drain()
            found = [e for e in self.events(workflow, workflow_id) if e["detail-type"] in detail_types]
            if found:
                time.sleep(1)  # a duplicate would arrive now
                self.drain()
                return [e for e in self.events(workflow, workflow_id) if e["detail-type"] in detail_types]
        raise AssertionError(f"{workflow}/{workflow_id}: none of {detail_types} in {TIMEOUT_S}s")


SAMPLES = ("access-requested.json", "access-requested-contractor-admin.json", "access-requested-inactive.json",
           "user-created.json")
SHARED_ID = f"same-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def listener(up):
    """Listening first, then every sample of this module put at once with the aws CLI, so that their
    workflows run side by side (one wait, not one per test)."""
    listening = Listener(up)
    for sample in SAMPLES:
        assert up.aws("events", "put-events", "--entries", f"file://events/{sample}")["FailedEntryCount"] == 0
    [access] = load_entries("access-requested.json")
    access = access | {"Detail": json.dumps(json.loads(access["Detail"]) | {"request_id": SHARED_ID})}
    entries = [order_entry(SHARED_ID), access]
    assert up.aws("events", "put-events", "--entries", json.dumps(entries))["FailedEntryCount"] == 0
    return listening


ACCESS_OUTCOMES = {"Access Granted", "Access Denied", "Access Request Timed Out"}


@pytest.mark.parametrize(("sample", "request_id", "detail_type", "named", "not_named"), [
    ("access-requested.json", "acc-3001", "Access Granted", None, None),
    ("access-requested-contractor-admin.json", "acc-3002", "Access Denied", "policy", "identity"),
    ("access-requested-inactive.json", "acc-3003", "Access Denied", "identity", None),
], ids=["granted", "contractor-admin-denied-by-policy", "inactive-denied-by-identity"])
def test_access_request_sample_ends_as_expected(up, listener, sample, request_id, detail_type, named, not_named):
    assert sample in SAMPLES
    [outcome] = listener.wait("access-request", request_id, ACCESS_OUTCOMES)
    assert outcome["detail-type"] == detail_type
    assert outcome["detail"]["request_id"] == request_id
    reason = outcome["detail"].get("reason") or ""
    if named:
        assert named in reason, reason
    if not_named:
        assert not_named not in reason, reason
    assert outcome["detail"]["status"] == ("COMPLETED" if detail_type == "Access Granted" else "REJECTED")


def test_a_new_user_is_audited_once_in_the_background_with_no_workflow_record(up, listener):
    [audit] = listener.wait("new-user-audit", "usr-5001", {"User Audit Completed"})
    assert audit["source"] == "agentbus.agent.security-audit"
    assert audit["detail"]["outcome"] == "success" and "findings" in audit["detail"]["data"]
    assert [e for e in listener.events("new-user-audit", "usr-5001") if e["source"] == "agentbus.coordinator"] == []

    status = up.agentbus("status", "usr-5001")
    assert status.returncode != 0
    lines = status.stderr.strip().splitlines()
    assert len(lines) == 1 and "usr-5001" in lines[0] and "unknown workflow id" in lines[0], status.stderr


def test_an_order_and_an_access_request_with_the_same_id_do_not_disturb_each_other(up, listener):
    shared = SHARED_ID
    [order_outcome] = listener.wait("order-fulfillment", shared, {"Order Completed", "Order Rejected",
                                                                  "Order Timed Out"})
    [access_outcome] = listener.wait("access-request", shared, ACCESS_OUTCOMES)
    assert (order_outcome["detail-type"], order_outcome["detail"]["order_id"]) == ("Order Completed", shared)
    assert (access_outcome["detail-type"], access_outcome["detail"]["request_id"]) == ("Access Granted", shared)

    ambiguous = up.agentbus("status", shared)
    assert ambiguous.returncode != 0 and "--workflow" in ambiguous.stderr, ambiguous.stderr
    for workflow in ("order-fulfillment", "access-request"):
        agents = set(agents_of(workflow))  # as shipped, and any agent a user added
        result = up.agentbus("status", shared, "--workflow", workflow, "--json")
        assert result.returncode == 0, result.stderr
        view = json.loads(result.stdout)
        assert (view["workflow"], view["workflow_id"], view["status"]) == (workflow, shared, "COMPLETED")
        assert set(view["results"]) == agents and view["missing"] == []
