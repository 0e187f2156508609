"""Issue 11, point 8: a fourth workflow, declared only in a test-only manifest (tests/workflows), runs end to
end on the local runtime with no edit of the core: its rules, queues, functions, table and projection all come
from the manifest, and every function finds that manifest through AGENTBUS_MANIFEST."""

from __future__ import annotations

import json

import pytest

from functions.common.settings import FUNCTION, Settings
from functions.common.spec import MANIFEST_VARIABLE
from functions.coordinator.store import WorkflowStore
from tests.conftest import REPO_ROOT, observed_stack
from tests.workflows.manifest import IMPORT_PATH
from tests.workflows.manifest import MANIFEST as TEST_MANIFEST

WORKFLOW = "expense-claim"
EVENTS = "tests/workflows/expenses/events"
TIMEOUT_S = 60


def entries(name: str, folder: str = EVENTS) -> list[dict]:
    return json.loads((REPO_ROOT / folder / name).read_text())


@pytest.fixture(scope="module")
def stack():
    with observed_stack(manifest=TEST_MANIFEST) as local:
        yield local


def test_every_function_is_told_the_test_manifest_and_loads_it(stack):
    for consumer in TEST_MANIFEST.consumers:
        environment = stack.runtime.environment_for(consumer)
        assert (environment[FUNCTION], environment[MANIFEST_VARIABLE]) == (consumer.name, IMPORT_PATH)
        settings = Settings.from_env(environment)
        assert settings.manifest is TEST_MANIFEST
        assert settings.consumer == consumer


def test_the_new_workflows_topology_is_provisioned_from_the_manifest(stack):
    resources = stack.resources
    assert {"receipts", "budget", "coordinator"} <= set(resources.consumers)
    assert {"expense-budgets", "expense-claims"} <= set(resources.tables)
    events = stack.client("events")
    patterns = {rule["Name"]: json.loads(rule["EventPattern"])
                for rule in events.list_rules(EventBusName=resources.bus_name)["Rules"]}
    expected = {"receipts-trigger", "budget-trigger", "coordinator-expense-claim-trigger",
                "coordinator-expense-claim-results"}
    for consumer, subscription in TEST_MANIFEST.rules():
        name = f"agentbus-{consumer.name}-{subscription.name}"
        assert patterns[name] == subscription.pattern(), name
        expected.discard(f"{consumer.name}-{subscription.name}")
    assert not expected, f"rules of the new workflow not derived: {expected}"


def test_a_claim_is_approved_and_projected_and_a_claim_without_receipt_is_refused(stack):
    put = stack.client("events").put_events(
        Entries=entries("expense-submitted.json") + entries("expense-submitted-refused.json"))
    assert put["FailedEntryCount"] == 0, put
    observer = stack.observer_
    keys = [f"{WORKFLOW}/exp-5001", f"{WORKFLOW}/exp-5002"]
    assert observer.wait_for_outcomes(keys, TIMEOUT_S) == set()

    [approved] = observer.outcomes("exp-5001", WORKFLOW)
    assert (approved.detail_type, approved.source) == ("Expense Approved", "agentbus.coordinator")
    assert approved.detail["claim_id"] == "exp-5001"
    assert approved.detail["status"] == "COMPLETED"
    assert {agent: r["outcome"] for agent, r in approved.detail["results"].items()} == \
        {"receipts": "success", "budget": "success"}

    [refused] = observer.outcomes("exp-5002", WORKFLOW)
    assert (refused.detail_type, refused.detail["status"]) == ("Expense Refused", "REJECTED")
    # Both agents fail this one (no receipt for 260.00 > 25.00; 260.00 > 200 left in meals). The first failure
    # decides at once: the reason names every failing agent whose result was in by then, and only those.
    failed = sorted(agent for agent, r in refused.detail["results"].items() if r["outcome"] == "failure")
    assert failed and set(failed) <= {"receipts", "budget"}
    assert all(agent in refused.detail["reason"] for agent in failed)

    dynamodb = stack.client("dynamodb")
    table = stack.resources.tables["expense-claims"]
    row = dynamodb.get_item(TableName=table, Key={"claim_id": {"S": "exp-5001"}}, ConsistentRead=True)["Item"]
    assert (row["status"]["S"], row["category"]["S"], row["amount"]["S"]) == ("COMPLETED", "travel", "420.00")
    refused_row = dynamodb.get_item(TableName=table, Key={"claim_id": {"S": "exp-5002"}}, ConsistentRead=True)
    assert refused_row["Item"]["status"]["S"] == "REJECTED"

    store = WorkflowStore(dynamodb, stack.resources.tables["workflows"], TEST_MANIFEST, stack.resources.tables)
    [record] = store.find("exp-5001")
    assert (record.workflow, record.status) == (WORKFLOW, "COMPLETED")
    # Nothing of the new workflow leaked into the shipped workflows' main tables or anyone's DLQ.
    assert dynamodb.scan(TableName=stack.resources.tables["orders"])["Count"] == 0
    sqs = stack.client("sqs")
    for name in ("receipts", "budget", "coordinator"):
        attributes = sqs.get_queue_attributes(QueueUrl=stack.resources.consumers[name].dlq_url,
                                              AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        assert attributes["ApproximateNumberOfMessages"] == "0", name


def change(change_id: str, lines_changed: int) -> dict:
    [entry] = entries("change-proposed.json", "tests/workflows/reviews/events")
    detail = json.loads(entry["Detail"]) | {"change_id": change_id, "lines_changed": lines_changed}
    return entry | {"Detail": json.dumps(detail)}



def test_change_review_merges_with_two_approvals_of_three(stack):
    """k of n (issue 13): 300 lines: the strict reviewer (100) declines, the others approve: merged."""
    assert stack.client("events").put_events(Entries=[change("chg-300", 300)])["FailedEntryCount"] == 0
    observer = stack.observer_
    assert observer.wait_for_outcomes(["change-review/chg-300"], TIMEOUT_S) == set()
    [merged] = observer.outcomes("chg-300", "change-review")
    assert (merged.detail_type, merged.detail["status"]) == ("Change Merged", "COMPLETED")
    quorum = merged.detail["quorum"]
    assert quorum["needed"] == 2
    assert quorum["agreed"] == ["reviewer-usual", "reviewer-lenient"]
    # The strict reviewer's decline is named if it came in before the finish; it never counts against.
    assert set(quorum["disagreed"]) | set(quorum["pending"]) == {"reviewer-strict"}


def test_change_review_is_refused_once_two_reviewers_declined(stack):
    """3000 lines: every reviewer declines; the second decline already puts two approvals out of reach."""
    assert stack.client("events").put_events(Entries=[change("chg-3000", 3000)])["FailedEntryCount"] == 0
    observer = stack.observer_
    assert observer.wait_for_outcomes(["change-review/chg-3000"], TIMEOUT_S) == set()
    [refused] = observer.outcomes("chg-3000", "change-review")
    assert (refused.detail_type, refused.detail["status"]) == ("Change Refused", "REJECTED")
    assert refused.detail["reason"].startswith("quorum out of reach: 2 of 3 needed; 0 agreed")
    assert len(refused.detail["quorum"]["disagreed"]) >= 2
