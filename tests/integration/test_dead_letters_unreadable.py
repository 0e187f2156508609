"""A letter nested too deep to read (hostile findings D6), on moto in-process with the whole topology provisioned.

A body nested 5,000 deep reached the fraud agent's queue: fraud took Python's RecursionError for a transient failure
(5 receives, then the DLQ), and `agentbus dead-letters` then died with a traceback on it, so no other dead letter of
fraud could be listed. Such a body is poison at once, with its reason; the listing names it (id, size, why) and lists
the others; redrive moves it like any other. A body Python can read is processed as before, however deep: the
coordinator refuses a detail nested deeper than 24 levels with a REJECTED outcome naming the field.
"""

from __future__ import annotations

import json

import pytest

from agentbus import cli, discovery, operations
from agentbus.discovery import Deployment
from agentbus.local.lambda_events import LambdaContext, eventbridge_envelope, sqs_event, sqs_record
from functions.common.clients import Clients
from functions.common.consumer import parse_record
from functions.common.dead_letters import REASON_ATTRIBUTE, PoisonMessage
from functions.common.spec import WAITING_ATTRIBUTE
from tests.conftest import load_detail, settings_for

TOO_DEEP = "body is not readable JSON: nested deeper than Python reads (RecursionError)"
# JSON sets no limit on an integer's digits; Python reads at most sys.get_int_max_str_digits() (4,300) of them.
TOO_LONG = "an integer of more than 4,300 digits (the longest Python reads)"


def nested(depth: int) -> str:
    """An Order Placed event as EventBridge delivers it, its detail holding ``meta`` nested ``depth`` arrays deep."""
    detail = json.dumps({**load_detail("order-placed.json"), "order_id": "h-deep"})
    event = json.dumps(eventbridge_envelope("Order Placed", "agentbus.orders", {"placeholder": 0}))
    return event.replace('{"placeholder": 0}', detail[:-1] + ', "meta": ' + "[" * depth + "]" * depth + "}")


def too_long(order_id: str = "h-long") -> str:
    """An Order Placed event as EventBridge delivers it, its detail holding a valid JSON integer of 5,000 digits."""
    detail = json.dumps({**load_detail("order-placed.json"), "order_id": order_id})
    event = json.dumps(eventbridge_envelope("Order Placed", "agentbus.orders", {"placeholder": 0}))
    return event.replace('{"placeholder": 0}', detail[:-1] + ', "meta": ' + "9" * 5000 + "}")


def run_fraud(session, resources, *bodies: str) -> dict:
    from functions.orders.fraud.handler import build

    handler = build(settings_for(resources, "fraud", record_concurrency=1), Clients.create(session))
    arn = resources.consumers["fraud"].queue_arn
    event = sqs_event([sqs_record(b, arn, message_id=f"m{i}", receive_count=1) for i, b in enumerate(bodies)])
    return handler(event, LambdaContext(function_name="fraud"))


def test_a_body_nested_deeper_than_python_reads_is_poison_in_any_function():
    with pytest.raises(PoisonMessage) as poison:
        parse_record(nested(5000))
    assert str(poison.value) == TOO_DEEP
    # One Python reads reaches the function (the coordinator rejects it naming the field, as it always did).
    assert parse_record(nested(300)).detail["order_id"] == "h-deep"


def test_a_body_holding_an_integer_longer_than_python_reads_is_poison_not_a_transient_failure():
    # It raised a bare ValueError, which the consumer took for a transient failure: 5 receives, then the DLQ with
    # the reason "ValueError: Exceeds the limit (4300 digits)..." (black-box pass 21B, F1).
    with pytest.raises(PoisonMessage) as poison:
        parse_record(too_long())
    assert str(poison.value) == f"body is not readable JSON: {TOO_LONG}"
    assert parse_record(too_long().replace("9" * 5000, "9" * 4300)).detail["meta"] == int("9" * 4300)


def test_a_recursion_error_while_processing_is_poison_at_once_not_retried():
    # Read at a shallower stack than the code that then walks it: it fails the same on every receive.
    from functions.common.consumer import consume

    class Kept:
        def __init__(self):
            self.kept: list[str] = []

        def keep(self, body, reason, source_queue_arn=None):
            self.kept.append(reason)

    def handle(event):
        def walk(value):
            return 1 + max((walk(v) for v in value), default=0) if isinstance(value, list) else 0

        walk(event.detail["meta"])

    letters = Kept()
    response = consume(sqs_event([sqs_record(nested(900), "arn:aws:sqs:us-east-1:1:q", message_id="m0")]),
                       LambdaContext("test"), handle, letters, max_receive_count=5)
    assert response == {"batchItemFailures": []}  # acknowledged on its first receive
    [reason] = letters.kept
    assert reason.startswith("event nested deeper than Python reads (RecursionError): maximum recursion depth "
                             "exceeded")


def test_the_agent_keeps_a_deep_body_at_once_and_the_listing_names_it_beside_the_others(aws, capsys, monkeypatch):
    session, resources = aws
    deep = nested(5000)
    detail = load_detail("order-placed.json")
    detail.update(order_id="h-deep", items=[{**detail["items"][0], "quantity": 0}])
    invalid = json.dumps(eventbridge_envelope("Order Placed", "agentbus.orders", detail))
    response = run_fraud(session, resources, deep, invalid)
    assert response == {"batchItemFailures": []}  # both kept on their first receive: no retry

    deployment = Deployment(session, None, resources)
    letters = {letter.message_id: letter for letter in operations.dead_letters(deployment, "fraud")}
    assert len(letters) == 2
    [unreadable] = [letter for letter in letters.values() if letter.unreadable]
    [other] = [letter for letter in letters.values() if not letter.unreadable]
    assert unreadable.reason == TOO_DEEP  # the agent's reason, at once
    assert unreadable.unreadable == "nested deeper than Python reads (RecursionError)"
    assert unreadable.event == deep and unreadable.body_bytes == len(deep.encode())
    assert other.reason.startswith("invalid Order Placed: items.0.quantity")
    assert other.event["detail"]["order_id"] == "h-deep"

    monkeypatch.setattr(discovery, "find_deployment", lambda *_: deployment)
    assert cli.main(["dead-letters", "--agent", "fraud"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert (f"fraud {unreadable.message_id}  unreadable body ({len(deep.encode()):,} bytes): nested deeper than "
            "Python reads (RecursionError)\n  reason: " + TOO_DEEP) in out
    assert f"fraud {other.message_id}  Order Placed h-deep\n" in out and "2 dead letter(s)" in out

    assert cli.main(["dead-letters", "--agent", "fraud", "--json"]) == 0
    out, err = capsys.readouterr()
    listed = {letter["message_id"]: letter for letter in json.loads(out)}
    assert listed[unreadable.message_id]["event"] == deep and listed[unreadable.message_id]["unreadable"]
    assert listed[other.message_id]["unreadable"] is None

    assert operations.redrive(deployment, "fraud") == 2
    sqs = session.client("sqs")
    back = sqs.receive_message(QueueUrl=resources.consumers["fraud"].queue_url, MaxNumberOfMessages=10,
                               MessageAttributeNames=["All"])["Messages"]
    assert sorted(m["Body"] for m in back) == sorted([deep, invalid])
    assert all(REASON_ATTRIBUTE not in m.get("MessageAttributes", {}) for m in back)


def test_the_agent_keeps_a_body_with_a_too_long_integer_at_once_and_the_listing_names_it(aws, capsys, monkeypatch):
    # The listing died with a traceback on such a letter, listing none of the others (21B F1).
    session, resources = aws
    body = too_long()
    assert run_fraud(session, resources, body) == {"batchItemFailures": []}  # kept on its first receive
    sqs = session.client("sqs")
    sqs.send_message(QueueUrl=resources.consumers["fraud"].dlq_url, MessageBody=too_long("h-long-2"))  # by hand
    deployment = Deployment(session, None, resources)
    letters = operations.dead_letters(deployment, "fraud")
    assert [letter.unreadable for letter in letters] == [TOO_LONG, TOO_LONG]
    assert f"body is not readable JSON: {TOO_LONG}" in {letter.reason for letter in letters}  # the agent's reason
    monkeypatch.setattr(discovery, "find_deployment", lambda *_: deployment)
    assert cli.main(["dead-letters", "--agent", "fraud"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and f"unreadable body ({len(body.encode()):,} bytes): {TOO_LONG}" in out
    assert out.count(f" bytes): {TOO_LONG}") == 2
    assert "2 dead letter(s)" in out


def test_a_letter_that_is_not_json_at_all_is_listed_as_unreadable_saying_why(aws):
    # 21F: listed as if its text were its event ("unreadable": null in --json).
    session, resources = aws
    session.client("sqs").send_message(QueueUrl=resources.consumers["fraud"].dlq_url, MessageBody="not json {")
    [letter] = operations.dead_letters(Deployment(session, None, resources), "fraud")
    assert letter.event == "not json {"
    assert letter.unreadable == "not JSON: Expecting value at position 0"


def test_a_letter_nested_too_deep_put_in_the_dead_letter_queue_by_hand_is_listed_too(aws):
    # Not from an agent (no reason attribute): the listing must still not read it as an event.
    session, resources = aws
    sqs = session.client("sqs")
    shallow_enough_to_parse = nested(300)  # Python reads it; writing it back as JSON from a dataclass would not
    sqs.send_message(QueueUrl=resources.consumers["fraud"].dlq_url, MessageBody=shallow_enough_to_parse)
    [letter] = operations.dead_letters(Deployment(session, None, resources), "fraud")
    assert letter.event == shallow_enough_to_parse
    assert letter.unreadable == "nested deeper than 100 levels of JSON objects and arrays"
    assert json.loads(operations.as_json([letter]))[0]["event"] == shallow_enough_to_parse  # --json too


def test_a_claim_checked_detail_nested_too_deep_is_poison_naming_it():
    import hashlib

    import boto3
    from moto import mock_aws

    from functions.common.claim_check import ClaimCheckError, ClaimCheckStore, resolve_event
    from functions.common.models import BusEvent

    body = ('{"workflow": "order-fulfillment", "workflow_id": "ord-1", "data": ' + "[" * 5000 + "]" * 5000
            + "}").encode()
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="claims")
        digest = hashlib.sha256(body).hexdigest()
        key = f"fraud/agentbus.agent.fraud/Order_Verified/-/{digest}.json"  # where fraud's publisher writes it
        s3.put_object(Bucket="claims", Key=key, Body=body)
        reference = {"bucket": "claims", "key": key, "bytes": len(body), "sha256": digest}
        event = BusEvent.model_validate({"id": "e-1", "source": "agentbus.agent.fraud", "detail-type": "Order Verified",
                                         "detail": {"claim_check": reference, "workflow_id": "ord-1"}})
        with pytest.raises(ClaimCheckError) as poison:  # a PoisonMessage: kept at once, not retried
            resolve_event(event, ClaimCheckStore(s3, "claims", "fraud"))
    assert str(poison.value).endswith("the object is not readable JSON: nested deeper than Python reads "
                                      "(RecursionError)")


def test_status_trace_and_pending_of_a_record_holding_json_too_deep_to_read_are_one_line(aws, capsys, monkeypatch):
    # The coordinator stores only triggers it could read; a record written otherwise (by hand, or before the
    # consumer refused deep bodies) must not end the verbs with a traceback.
    session, resources = aws
    deployment = Deployment(session, None, resources)
    monkeypatch.setattr(discovery, "find_deployment", lambda *_: deployment)
    table = resources.tables["workflows"]
    session.client("dynamodb").put_item(TableName=table, Item={
        "workflow_id": {"S": "h-deep"}, "workflow": {"S": "order-fulfillment"}, "status": {"S": "RUNNING"},
        "version": {"N": "1"}, "trigger_digest": {"S": "d" * 32},
        "trigger": {"S": '{"order_id": "h-deep", "meta": ' + "[" * 5000 + "]" * 5000 + "}"}})
    for argv in (["status", "h-deep"], ["status", "h-deep", "--json"], ["trace", "h-deep"]):
        assert cli.main(argv) == 2
        out, err = capsys.readouterr()
        assert out == ""
        assert err == (f"agentbus {argv[0]}: the record of 'h-deep' in {table} cannot be read: it holds JSON Python "
                       "does not read: nested deeper than Python reads (RecursionError)\n")
    # pending reads the records the waiting index holds: one that may wait for a person, as the coordinator marks it.
    session.client("dynamodb").put_item(TableName=table, Item={
        "workflow_id": {"S": "h-deep-wait"}, "workflow": {"S": "access-request"}, "status": {"S": "RUNNING"},
        "version": {"N": "1"}, "trigger_digest": {"S": "d" * 32}, WAITING_ATTRIBUTE: {"S": "access-request"},
        "trigger": {"S": '{"request_id": "h-deep-wait", "meta": ' + "[" * 5000 + "]" * 5000 + "}"}})
    assert cli.main(["pending"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("agentbus pending: a record in ") and "\n" not in err.rstrip("\n")
    # A trigger holding an integer longer than Python reads: one line too, naming why.
    session.client("dynamodb").put_item(TableName=table, Item={
        "workflow_id": {"S": "h-long"}, "workflow": {"S": "order-fulfillment"}, "status": {"S": "RUNNING"},
        "version": {"N": "1"}, "trigger_digest": {"S": "d" * 32},
        "trigger": {"S": '{"order_id": "h-long", "meta": ' + "9" * 5000 + "}"}})
    assert cli.main(["status", "h-long"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (f"agentbus status: the record of 'h-long' in {table} cannot be read: it holds JSON "
                                 f"Python does not read: {TOO_LONG}\n")


def test_put_of_a_file_holding_an_integer_longer_than_python_reads_is_one_line(tmp_path):
    entries = tmp_path / "long.json"
    entries.write_text('[{"Source": "agentbus.orders", "DetailType": "Order Placed", "Detail": {"n": '
                       + "9" * 5000 + "}}]")
    with pytest.raises(operations.OperationError) as error:  # a traceback before: a bare ValueError
        operations.read_entries(str(entries))
    assert str(error.value) == f"{entries} cannot be read as JSON: {TOO_LONG}"
