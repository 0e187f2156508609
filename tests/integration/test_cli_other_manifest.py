"""The shipped CLI against a deployment of another manifest (black-box findings pass 2, F8).

README: "A deployment of another manifest … needs no code change", and "Errors are one line on stderr with a
non-zero exit code". A deployment may have agents the operator's CLI does not list (a user added them, or the
CLI is a release behind): `agentbus dead-letters` looked each of the deployment's agents up in the CLI's own
manifest and died with a traceback (KeyError, exit 1) on the first it did not know, dead letters or none; `agent
list` listed the CLI's agents only, leaving the deployment's others out without a word. Every verb works from what
the deployment has, the CLI's manifest only for what it knows.

The stack runs the test-only manifest (tests/workflows: the shipped workflows plus expense-claim's `receipts` and
`budget`, change-review's reviewers); the CLI is the shipped one (functions.manifest), in-process, and finds the
deployment as an operator's would, from --endpoint-url.
"""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from agentbus import cli, operations
from agentbus.discovery import Deployment, find_deployment
from functions.common.dead_letters import CONSUMER_ATTRIBUTE, REASON_ATTRIBUTE
from functions.manifest import MANIFEST as SHIPPED
from tests.conftest import REPO_ROOT, observed_stack
from tests.pinned import MANIFEST as PINNED
from tests.workflows.manifest import MANIFEST as TEST_MANIFEST

EXTRA = "receipts"  # an agent of expense-claim: the stack has it, the shipped CLI's manifest does not
TIMEOUT_S = 60


def clashes() -> list[str]:
    """The test-only workflows' and agents' names a user's manifest also uses: then the shipped CLI knows them,
    and what these tests check (a CLI that lacks them) cannot be seen."""
    ours = {w.name for w in SHIPPED.workflows} | {c.name for c in SHIPPED.consumers}
    shipped_names = {w.name for w in PINNED.workflows} | {c.name for c in PINNED.consumers}
    test_only = ({w.name for w in TEST_MANIFEST.workflows} | {c.name for c in TEST_MANIFEST.consumers}) - shipped_names
    return sorted(test_only & ours)


@pytest.fixture(scope="module")
def stack():
    clash = clashes()
    assert not clash, (f"functions/manifest.py names {', '.join(clash)} as tests/workflows' test-only workflows do: "
                       "these tests run the shipped CLI against a stack of those and need it not to know them; "
                       "rename yours")
    assert EXTRA not in {c.name for c in SHIPPED.consumers}
    with observed_stack(manifest=TEST_MANIFEST) as local:
        yield local


def run(capsys, stack, *argv: str) -> tuple[int, str, str]:
    code = cli.main([*argv, "--endpoint-url", stack.url])
    out, err = capsys.readouterr()
    return code, out, err


def extras() -> list[str]:
    known = {c.name for c in SHIPPED.consumers}
    return [c.name for c in TEST_MANIFEST.consumers if c.name not in known]


def test_the_deployment_has_agents_the_cli_does_not_know(stack):
    assert EXTRA in extras() and set(extras()) <= set(stack.resources.consumers)


def test_dead_letters_with_none_says_so(stack, capsys):
    code, out, err = run(capsys, stack, "dead-letters")
    assert (code, err) == (0, "")
    assert out.strip() == "no dead letters"
    code, out, err = run(capsys, stack, "dead-letters", "--json")
    assert (code, err, json.loads(out)) == (0, "", [])
    code, out, err = run(capsys, stack, "dead-letters", "--agent", EXTRA)
    assert (code, err, out.strip()) == (0, "", "no dead letters")


def test_agent_list_lists_every_agent_of_the_deployment_and_names_those_the_cli_does_not_know(stack, capsys):
    code, out, err = run(capsys, stack, "agent", "list")
    assert (code, err) == (0, "")
    listed = [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")]
    # The CLI's own that the deployment has (an agent a user added to the shipped manifest is not in this stack)
    # first, in its manifest's order; then the deployment's others, by name.
    known = [c.name for c in SHIPPED.consumers if c.name in stack.resources.consumers]
    assert listed == known + sorted(extras())
    assert set(listed) == set(stack.resources.consumers)
    [note] = [line for line in out.splitlines() if "not in this CLI's manifest" in line]
    assert note.endswith(": " + ", ".join(sorted(extras())))

    rows = operations.agent_list(find_deployment(stack.url), EXTRA)
    assert rows == [{"agent": EXTRA, "state": "running", "waiting": 0, "in_flight": 0, "dead_letters": 0,
                     "known": False}]


def test_an_unknown_agents_dead_letters_are_listed_and_redriven(stack, capsys):
    sqs = stack.client("sqs")
    queue = stack.resources.consumers[EXTRA]
    # The reason of a letter without one comes from what the deployment's queue says (its RedrivePolicy), not
    # the CLI's manifest, which does not know this agent.
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=queue.queue_url, AttributeNames=["RedrivePolicy"])
                        ["Attributes"]["RedrivePolicy"])
    sqs.set_queue_attributes(QueueUrl=queue.queue_url,
                             Attributes={"RedrivePolicy": json.dumps({**policy, "maxReceiveCount": 7})})
    event = {"detail-type": "Expense Submitted", "source": "agentbus.expenses", "detail": {"claim_id": "exp-dl-1"}}
    try:
        sqs.send_message(QueueUrl=queue.dlq_url, MessageBody=json.dumps(event))  # as SQS moves it: no reason
        sqs.send_message(QueueUrl=queue.dlq_url, MessageBody=json.dumps({**event, "detail": {"claim_id": "exp-dl-2"}}),
                         MessageAttributes={REASON_ATTRIBUTE: {"DataType": "String", "StringValue": "bad receipt"},
                                            CONSUMER_ATTRIBUTE: {"DataType": "String", "StringValue": EXTRA}})

        code, out, err = run(capsys, stack, "dead-letters")
        assert (code, err) == (0, ""), err
        assert "reason: moved by its queue's redrive policy after being received 7 times without being deleted" in out
        assert "reason: bad receipt" in out
        assert out.count(f"{EXTRA} ") == 2 and "2 dead letter(s)" in out

        code, out, err = run(capsys, stack, "dead-letters", "--agent", EXTRA, "--json")
        assert (code, err) == (0, "")
        letters = json.loads(out)
        assert sorted(letter["event"]["detail"]["claim_id"] for letter in letters) == ["exp-dl-1", "exp-dl-2"]
        assert {letter["agent"] for letter in letters} == {EXTRA}

        code, out, err = run(capsys, stack, "agent", "list", EXTRA)
        assert (code, err) == (0, "")
        [row] = [line for line in out.splitlines() if line.startswith(f"│ {EXTRA} ")]
        assert row.split("│")[5].strip() == "2"  # dead letters

        # Paused first: redriven back to its queue, the letters must not reach the agent (they are no claims).
        code, out, err = run(capsys, stack, "agent", "pause", EXTRA)
        assert (code, err) == (0, "") and f"agent {EXTRA} paused" in out
        code, out, err = run(capsys, stack, "redrive", EXTRA)
        assert code == 0 and f"redrove 2 message(s) from {EXTRA}'s dead-letter queue" in out
        code, out, err = run(capsys, stack, "dead-letters", "--agent", EXTRA)
        assert (code, err, out.strip()) == (0, "", "no dead letters")
    finally:
        sqs.set_queue_attributes(QueueUrl=queue.queue_url, Attributes={"RedrivePolicy": json.dumps(policy)})
        sqs.purge_queue(QueueUrl=queue.queue_url)
        sqs.purge_queue(QueueUrl=queue.dlq_url)
        stack.control.set_paused(EXTRA, False)


def test_pause_and_resume_an_agent_the_cli_does_not_know(stack, capsys):
    code, out, err = run(capsys, stack, "agent", "pause", EXTRA)
    assert (code, err) == (0, "") and out.strip() == f"agent {EXTRA} paused: its events wait in its queue"
    assert stack.control.is_paused(EXTRA)
    code, out, _ = run(capsys, stack, "agent", "list", EXTRA)
    assert code == 0 and "paused" in out
    code, out, err = run(capsys, stack, "agent", "resume", EXTRA)
    assert (code, err) == (0, "") and out.strip() == f"agent {EXTRA} resumed: it processes its queue again"
    assert not stack.control.is_paused(EXTRA)


def test_status_of_a_workflow_the_cli_does_not_know(stack, capsys):
    entries = json.loads((REPO_ROOT / "tests/workflows/expenses/events/expense-submitted.json").read_text())
    [claim_id] = {json.loads(e["Detail"])["claim_id"] for e in entries}
    assert stack.client("events").put_events(Entries=entries)["FailedEntryCount"] == 0
    assert stack.observer_.wait_for_outcomes([f"expense-claim/{claim_id}"], TIMEOUT_S) == set()

    for argv in (["status", claim_id], ["status", claim_id, "--workflow", "expense-claim"]):
        code, out, err = run(capsys, stack, *argv)
        assert (code, err) == (0, ""), argv
        assert f"workflow {claim_id}: COMPLETED" in out and EXTRA in out
    assert "is not in this CLI's manifest" not in out  # its outcome names what was missing: none
    code, out, err = run(capsys, stack, "trace", claim_id, "--workflow", "expense-claim")
    assert (code, err) == (0, "") and f"workflow {claim_id} — COMPLETED" in out
    # A name neither the CLI's manifest nor the deployment's records have: a typo, one line, exit 2.
    code, out, err = run(capsys, stack, "status", claim_id, "--workflow", "expense-clam")
    assert (code, out) == (2, "")
    assert err.startswith("agentbus status: unknown workflow 'expense-clam'; known: order-fulfillment")
    assert err.count("\n") == 1


def test_status_of_a_running_workflow_the_cli_does_not_know_says_its_missing_agents_are_unknown(stack, capsys):
    entries = json.loads((REPO_ROOT / "tests/workflows/expenses/events/expense-submitted.json").read_text())
    detail = json.loads(entries[0]["Detail"]) | {"claim_id": "exp-other-manifest-running"}
    stack.control.set_paused(EXTRA, True)
    try:
        entry = entries[0] | {"Detail": json.dumps(detail)}
        assert stack.client("events").put_events(Entries=[entry])["FailedEntryCount"] == 0
        view: dict = {}
        for _ in range(200):  # until the coordinator has opened the record
            try:
                view = operations.workflow_status(find_deployment(stack.url), detail["claim_id"],
                                                  manifest=SHIPPED)
                break
            except operations.OperationError:
                time.sleep(0.1)
        assert view["status"] == "RUNNING" and view["missing"] == []
        code, out, err = run(capsys, stack, "status", detail["claim_id"])
        assert (code, err) == (0, "")
        assert "workflow 'expense-claim' is not in this CLI's manifest" in " ".join(out.split())
        code, out, _ = run(capsys, stack, "status", detail["claim_id"], "--json")
        assert "run the CLI of the checkout the deployment was made from" in json.loads(out)["manifest_note"]
    finally:
        stack.control.set_paused(EXTRA, False)
    assert stack.observer_.wait_for_outcomes([f"expense-claim/{detail['claim_id']}"], TIMEOUT_S) == set()


def test_seed_of_a_deployment_without_a_table_the_cli_seeds_is_one_line_and_writes_nothing(stack, capsys):
    deployment = find_deployment(stack.url)
    tables = {k: v for k, v in deployment.resources.tables.items() if k != "directory"}
    without = Deployment(deployment.session, deployment.endpoint_url,
                         dataclasses.replace(deployment.resources, tables=tables))
    dynamodb = stack.client("dynamodb")
    # One item of the first table seeded gone: a seed that went ahead table by table would put it back.
    key_name = SHIPPED.table("inventory").partition_key
    item = dynamodb.scan(TableName=tables["inventory"], Limit=1)["Items"][0]
    key = {key_name: item[key_name]}
    dynamodb.delete_item(TableName=tables["inventory"], Key=key)
    try:
        with pytest.raises(operations.OperationError,
                           match="^this deployment has no table 'directory' \\(its tables: "):
            operations.seed(without)
        assert "Item" not in dynamodb.get_item(TableName=tables["inventory"], Key=key, ConsistentRead=True)
    finally:
        dynamodb.put_item(TableName=tables["inventory"], Item=item)


def test_dead_letters_someone_else_is_reading_are_counted_not_hidden(stack, capsys):
    """Black-box pass 9C, F7: while another reader held the letters (an interrupted listing, another operator's
    redrive), `dead-letters` said "no dead letters" and `redrive` "redrove 0", exit 0, without a word."""
    sqs = stack.client("sqs")
    queue = stack.resources.consumers[EXTRA]
    sqs.send_message(QueueUrl=queue.dlq_url, MessageBody=json.dumps({"detail-type": "x", "source": "y"}))
    held = sqs.receive_message(QueueUrl=queue.dlq_url, VisibilityTimeout=60, WaitTimeSeconds=1)["Messages"]
    assert len(held) == 1
    try:
        code, out, err = run(capsys, stack, "dead-letters", "--agent", EXTRA)
        assert (code, out.strip()) == (0, "no dead letters")
        assert "1 more dead letter(s) are being read by someone else" in err
        code, out, err = run(capsys, stack, "redrive", EXTRA)
        assert code == 0 and "redrove 0 message(s)" in out
        assert "1 more dead letter(s) are being read by someone else" in err
    finally:
        sqs.delete_message(QueueUrl=queue.dlq_url, ReceiptHandle=held[0]["ReceiptHandle"])
