"""The local endpoint's PutEvents answers as EventBridge does (agentbus/local/put_events.py), from boto3 and from
the ``aws`` CLI: a Detail that is not a JSON object fails its entry alone (``MalformedDetail``), a call whose
entries add up to more than the limit is refused whole (HTTP 400 ``ValidationException``) and puts nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from agentbus.local.put_events import MALFORMED_DETAIL, MAX_REQUEST_BYTES, REQUEST_TOO_LARGE
from agentbus.local.server import NOT_AUTHORIZED_FOR_SOURCE, LocalEndpoint, SourceGuard

AWS_CLI = Path(sys.executable).parent / "aws"
RESERVED = "test.reserved"
DETAIL_TYPE = "Sized"
# A resource with a character of 3 UTF-8 bytes: sizes count bytes, not characters.
RESOURCE = "arn:aws:s3:::bucket/€"
# JSON has no NaN or Infinity (RFC 8259): Python's reader takes them, EventBridge's "valid JSON object" does not.
NOT_OBJECTS = ['"hello"', "null", "true", "42", "[1, 2, 3]", "{not json", '{"price": NaN}', '{"n": -Infinity}']


def _session():
    return boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")


@dataclass
class Bus:
    endpoint: LocalEndpoint
    events: object
    sqs: object

    def subscribe(self, source: str) -> str:
        """A queue receiving every event of ``source`` on the default bus."""
        name = source.replace(".", "-")
        queue_url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.events.put_rule(Name=name, EventPattern=json.dumps({"source": [source]}))
        self.events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn}])
        return queue_url

    def delivered(self, queue_url: str, wait_s: float = 1) -> list[dict]:
        """Every event the queue has received (deleted as read)."""
        events: list[dict] = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                                WaitTimeSeconds=int(wait_s)).get("Messages", [])
            if not messages:
                return events
            for message in messages:
                events.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def cli(self, tmp_path: Path, entries: list[dict]) -> tuple[subprocess.CompletedProcess, Counter]:
        """``aws events put-events`` with ``entries``: its result, and the API calls the endpoint served for it."""
        path = tmp_path / "entries.json"
        path.write_text(json.dumps(entries))  # ASCII: a character beyond it is escaped, the Detail is the same
        env = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_PAGER": "", "PATH": str(AWS_CLI.parent), "HOME": str(tmp_path)}
        before = self.endpoint.wire_calls()
        result = subprocess.run([str(AWS_CLI), "--endpoint-url", self.endpoint.url, "--output", "json", "events",
                                 "put-events", "--entries", f"file://{path}"],
                                capture_output=True, text=True, env=env, timeout=120)
        return result, self.endpoint.wire_calls() - before


@pytest.fixture(scope="module")
def bus():
    with LocalEndpoint(guard=SourceGuard("default", {RESERVED: "its-owner"})) as endpoint:
        session = _session()
        yield Bus(endpoint, session.client("events", endpoint_url=endpoint.url),
                  session.client("sqs", endpoint_url=endpoint.url))


def _entry(source: str, detail: str) -> dict:
    return {"Source": source, "DetailType": "Checked", "Detail": detail}


def _sized(source: str, size: int, char: str = "x") -> dict:
    """An entry of exactly ``size`` bytes as EventBridge counts them: Time (14), and the UTF-8 bytes of Source,
    DetailType, Detail and Resources. The Detail is mostly ``char`` ('€': 3 bytes, 1 character).

    moto delivers an event's detail to SQS with every non-ASCII character escaped (6 bytes for '€'; EventBridge
    sends UTF-8), so an event meant to be delivered near the limit is padded with 'x'."""
    fixed = 14 + len(source.encode()) + len(DETAIL_TYPE.encode()) + len(RESOURCE.encode())
    pad, width = size - fixed - len('{"pad":""}'), len(char.encode())
    detail = json.dumps({"pad": char * (pad // width) + "x" * (pad % width)}, ensure_ascii=False,
                        separators=(",", ":"))
    assert fixed + len(detail.encode()) == size
    return {"Source": source, "DetailType": DETAIL_TYPE, "Detail": detail, "Resources": [RESOURCE],
            "Time": datetime(2026, 1, 1, tzinfo=UTC)}


def _for_cli(entry: dict) -> dict:
    return {**entry, "Time": entry["Time"].strftime("%Y-%m-%dT%H:%M:%SZ")} if "Time" in entry else entry


def _mixed(source: str) -> list[dict]:
    """Two good entries around every kind of Detail that is not a JSON object, and a reserved source."""
    return [_entry(source, '{"n": "first"}'), *(_entry(source, d) for d in NOT_OBJECTS),
            _entry(RESERVED, '{"n": "forged"}'), _entry(source, '{"n": "last"}')]


def _assert_mixed_answer(response: dict, entries: list[dict]) -> None:
    assert response["FailedEntryCount"] == len(NOT_OBJECTS) + 1, response
    assert len(response["Entries"]) == len(entries)
    first, *malformed, refused, last = response["Entries"]
    assert malformed == [MALFORMED_DETAIL] * len(NOT_OBJECTS)
    assert malformed[0] == {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
    assert refused["ErrorCode"] == NOT_AUTHORIZED_FOR_SOURCE
    assert first.keys() == last.keys() == {"EventId"}


def test_a_detail_that_is_not_a_json_object_fails_alone_and_the_rest_is_delivered(bus):
    queue_url = bus.subscribe("test.detail")
    entries = _mixed("test.detail")
    response = bus.events.put_events(Entries=entries)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    _assert_mixed_answer(response, entries)
    delivered = bus.delivered(queue_url)
    assert sorted(e["detail"]["n"] for e in delivered) == ["first", "last"]
    assert {e["id"] for e in delivered} == {response["Entries"][0]["EventId"], response["Entries"][-1]["EventId"]}


def test_the_cli_gets_the_same_answer_at_once_instead_of_retrying_a_500(bus, tmp_path):
    queue_url = bus.subscribe("test.cli-detail")
    entries = _mixed("test.cli-detail")
    result, calls = bus.cli(tmp_path, entries)
    assert result.returncode == 0, result.stderr
    assert calls == Counter({"events:PutEvents": 1})  # one call: no 500 for the CLI to retry
    _assert_mixed_answer(json.loads(result.stdout), entries)
    assert sorted(e["detail"]["n"] for e in bus.delivered(queue_url)) == ["first", "last"]


def test_a_call_of_exactly_the_limit_is_put_and_delivered_one_byte_more_is_refused_whole(bus):
    queue_url = bus.subscribe("test.size")
    half = MAX_REQUEST_BYTES // 2
    at_limit = [_sized("test.size", half), _sized("test.size", MAX_REQUEST_BYTES - half)]
    response = bus.events.put_events(Entries=at_limit)
    assert response["FailedEntryCount"] == 0 and all("EventId" in e for e in response["Entries"])
    assert {e["id"] for e in bus.delivered(queue_url)} == {e["EventId"] for e in response["Entries"]}

    # Bytes, not characters: the same at the limit in '€' is accepted, one byte more (a third as many
    # characters) refused.
    response = bus.events.put_events(Entries=[_sized("test.size", half, "€"),
                                              _sized("test.size", MAX_REQUEST_BYTES - half, "€")])
    assert response["FailedEntryCount"] == 0 and all("EventId" in e for e in response["Entries"])
    bus.delivered(queue_url)
    for over in ([_sized("test.size", half, "€"), _sized("test.size", MAX_REQUEST_BYTES - half + 1, "€")],
                 [_entry("test.size", '{"n": "small"}'), _sized("test.size", MAX_REQUEST_BYTES)],
                 [_sized("test.size", 3 * MAX_REQUEST_BYTES)]):
        with pytest.raises(ClientError) as raised:
            bus.events.put_events(Entries=over)
        error = raised.value.response
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert error["Error"] == {"Code": "ValidationException", "Message": REQUEST_TOO_LARGE}
    assert bus.delivered(queue_url) == []  # not even the small entry of a refused call


def test_an_entry_of_the_whole_limit_is_put_though_its_queue_cannot_take_the_event(bus):
    """EventBridge wraps an entry in the event envelope: at the limit it no longer fits an SQS message (1 MiB).
    The delivery fails after the call, as on AWS; moto's SQS error used to fail the PutEvents itself."""
    queue_url = bus.subscribe("test.whole")
    response = bus.events.put_events(Entries=[_sized("test.whole", MAX_REQUEST_BYTES)])
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["FailedEntryCount"] == 0 and "EventId" in response["Entries"][0]
    assert bus.delivered(queue_url) == []
    small = bus.events.put_events(Entries=[_entry("test.whole", '{"n": "after"}')])  # the rule still delivers
    assert [e["detail"] for e in bus.delivered(queue_url)] == [{"n": "after"}]
    assert small["FailedEntryCount"] == 0


def test_the_cli_gets_the_validation_error_for_an_over_size_call_and_nothing_is_put(bus, tmp_path):
    queue_url = bus.subscribe("test.cli-size")
    over = [_for_cli(_entry("test.cli-size", '{"n": "small"}')),
            _for_cli(_sized("test.cli-size", MAX_REQUEST_BYTES - 10))]
    result, calls = bus.cli(tmp_path, over)
    assert result.returncode != 0
    assert "(ValidationException)" in result.stderr and REQUEST_TOO_LARGE in result.stderr, result.stderr
    assert calls == Counter({"events:PutEvents": 1})  # a client error: not retried
    time.sleep(0.5)
    assert bus.delivered(queue_url) == []

    under = [_for_cli(_sized("test.cli-size", MAX_REQUEST_BYTES // 2)),
             _for_cli(_sized("test.cli-size", MAX_REQUEST_BYTES // 2 - 1))]
    result, _ = bus.cli(tmp_path, under)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["FailedEntryCount"] == 0
    assert len(bus.delivered(queue_url)) == 2


def test_an_input_transformers_output_is_delivered_as_it_is_whatever_its_time_key_holds(bus):
    """Rule 7: a user's rule whose template writes a ``time`` that is no epoch number (or a text output) gets it
    as written; moto converted every delivered ``time`` as epoch seconds and failed the whole call with HTTP 500."""
    name = "test-transformed"
    queue_url = bus.sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = bus.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus.events.put_rule(Name=name, EventPattern=json.dumps({"source": ["test.transformed"]}))
    bus.events.put_targets(Rule=name, Targets=[
        {"Id": "object", "Arn": arn, "InputTransformer": {
            "InputPathsMap": {"when": "$.detail.when", "n": "$.detail.n"},
            "InputTemplate": '{"time": "<when>", "n": "<n>", "at": <aws.events.event.ingestion-time>}'}},
        {"Id": "text", "Arn": arn, "InputTransformer": {
            "InputPathsMap": {"n": "$.detail.n"}, "InputTemplate": '"time of <n>"'}}])
    response = bus.events.put_events(Entries=[
        _entry("test.transformed", json.dumps({"when": "tomorrow", "n": "first"})),
        _entry("test.transformed", json.dumps({"when": "2026-12-02T10:00:00Z", "n": "second"}))])
    assert response["FailedEntryCount"] == 0, response
    delivered = bus.delivered(queue_url)
    objects = sorted((e["n"], e["time"]) for e in delivered if isinstance(e, dict))
    assert objects == [("first", "tomorrow"), ("second", "2026-12-02T10:00:00Z")]
    assert sorted(e for e in delivered if isinstance(e, str)) == ["time of first", "time of second"]


@pytest.mark.parametrize(("field", "value", "named"), [
    ("Source", [RESERVED], "Entries[1].Source: expected a string, got a list"),
    ("DetailType", ["Checked"], "Entries[1].DetailType: expected a string, got a list"),
    ("Detail", {"ok": True}, "Entries[1].Detail: expected a string, got an object"),
    ("EventBusName", ["default"], "Entries[1].EventBusName: expected a string, got a list"),
    ("EventBusName", 7, "Entries[1].EventBusName: expected a string, got a number"),
])
def test_a_field_of_another_json_type_refuses_the_whole_call_and_puts_nothing(bus, field, value, named):
    """Black-box pass 7B, F2/F3: a Source sent as a list (["<reserved source>"]) passed the reserved-source rule and
    was delivered to every rule on one of its elements (a forged outcome); a Detail object or an EventBusName list
    failed the call with HTTP 500 after its first entry was put, and botocore's retries put that entry again."""
    from botocore.config import Config

    session = _session()
    raw = session.client("events", endpoint_url=bus.endpoint.url,
                         config=Config(parameter_validation=False, retries={"max_attempts": 1}))
    queue_url = bus.subscribe(RESERVED)
    good = _entry(RESERVED, '{"n": 1}')
    with pytest.raises(ClientError) as refused:
        raw.put_events(Entries=[{**good, "Source": "test.someone-else"}, {**good, field: value}])
    error = refused.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert (error["Error"]["Code"], error["Error"]["Message"]) == ("SerializationException", named)
    assert bus.delivered(queue_url) == []


@pytest.mark.parametrize(("field", "value", "named"), [
    ("Resources", "arn:aws:s3:::b", "Entries[0].Resources: expected a list of strings, got a string"),
    ("Resources", [7], "Entries[0].Resources: expected a list of strings, got a list holding another type"),
    ("Time", {"at": 1}, "Entries[0].Time: expected a timestamp, got an object"),
    ("TraceHeader", 5, "Entries[0].TraceHeader: expected a string, got a number"),
])
def test_fields_botocore_will_not_send_mistyped_are_refused_from_any_http_client(bus, field, value, named):
    import urllib.error
    import urllib.request

    entry = {**_entry("test.anyone", '{"n": 1}'), field: value}
    request = urllib.request.Request(bus.endpoint.url, data=json.dumps({"Entries": [entry]}).encode(), headers={
        "X-Amz-Target": "AWSEvents.PutEvents", "Content-Type": "application/x-amz-json-1.1"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 400
    assert json.loads(refused.value.read()) == {"__type": "SerializationException", "message": named}


@pytest.mark.parametrize("query", ["?Action=PutEvents&Action=ListRules", "?Action=&Action=ListRules"])
def test_a_mistyped_call_the_screen_does_not_see_as_put_events_is_refused_by_the_backend(bus, query):
    """Black-box pass 8B, F1: the endpoint read the last Action of the query string, moto the first: such a call
    reached moto's PutEvents unscreened, failed with HTTP 500 and had put its first entry."""
    import urllib.error
    import urllib.request

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    queue_url = bus.subscribe("test.mistyped")
    entries = [_entry("test.mistyped", '{"n": 1}'), {**_entry("test.mistyped", "{}"), "Detail": {"a": 1}}]
    url, body = bus.endpoint.url + "/" + query, json.dumps({"Entries": entries})
    signed = AWSRequest(method="POST", url=url, data=body, headers={
        "X-Amz-Target": "AWSEvents.PutEvents", "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials("x", "x"), "events", "us-east-1").add_auth(signed)  # as an SDK sends it: routed to events
    request = urllib.request.Request(url, data=body.encode(), headers=dict(signed.headers))
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 400
    assert json.loads(refused.value.read())["__type"] == "SerializationException"
    assert bus.delivered(queue_url) == []


def test_a_source_that_is_not_text_is_refused_at_the_backend_too():
    """The backstop: a request that reached moto without the screen (put_events rule 6) gets no way around the
    reserved-source rule with a Source of another type."""
    refused = SourceGuard("default", {RESERVED: "its-owner"}).refusals("someone", [{"Source": [RESERVED]}])
    assert refused[0]["ErrorCode"] == "InvalidArgument"


def _bodies(bus, queue_url: str) -> list[str]:
    """Every message body the queue has received, as text (deleted as read)."""
    bodies: list[str] = []
    while True:
        messages = bus.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=1).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            bus.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_each_target_gets_its_input_as_eventbridge_builds_it_and_none_fails_the_call(bus):
    """Rule 9 (black-box pass 9A, F2-F4). A text value at an unquoted placeholder (EventBridge writes it as a JSON
    string), a text template, a constant Input and an InputPath are what EventBridge delivers; before, the first two
    failed every PutEvents with HTTP 500 after the earlier rules had delivered (five times, with botocore's
    retries), and the last two delivered the whole event."""
    source = "test.rule-nine"
    plain = bus.subscribe(source)  # a rule evaluated beside the others: it gets each event once
    name = "test-rule-nine-inputs"
    queue_url = bus.sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = bus.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus.events.put_rule(Name=name, EventPattern=json.dumps({"source": [source]}))
    bus.events.put_targets(Rule=name, Targets=[
        {"Id": "unquoted", "Arn": arn, "InputTransformer": {
            "InputPathsMap": {"id": "$.detail.id", "n": "$.detail.n", "gone": "$.detail.nothing"},
            "InputTemplate": '{"kind": "unquoted", "id": <id>, "n": <n>, "said": "id <id> is \\"<id>\\"", '
                             '"gone": <gone>, "rule": <aws.events.rule-name>}'}},
        {"Id": "text", "Arn": arn, "InputTransformer": {
            "InputPathsMap": {"n": "$.detail.n"}, "InputTemplate": "value <n> arrived, a < b"}},
        {"Id": "constant", "Arn": arn, "Input": '{"constant": true}'},
        {"Id": "path", "Arn": arn, "InputPath": "$.detail.id"},
    ])
    response = bus.events.put_events(Entries=[_entry(source, json.dumps({"id": "ord-1", "n": 7}))])
    assert response["FailedEntryCount"] == 0, response

    bodies = sorted(_bodies(bus, queue_url))
    assert bodies == sorted([
        '{"kind":"unquoted","id":"ord-1","n":7,"said":"id ord-1 is \\"ord-1\\"","gone":null,'
        '"rule":"test-rule-nine-inputs"}',
        "value 7 arrived, a < b",
        '{"constant": true}',
        '"ord-1"',
    ])
    assert len(bus.delivered(plain)) == 1


def test_the_event_a_target_receives_has_eventbridges_envelope_account_included(bus):
    """Black-box pass 9A, F2: an event delivered to a queue lacked ``account``; a replayed one had moto's own
    ``ingestion-time``. EventBridge's envelope, in its order."""
    source = "test.envelope"
    queue_url = bus.subscribe(source)
    bus.events.put_events(Entries=[_entry(source, '{"n": 1}')])
    [body] = _bodies(bus, queue_url)
    event = json.loads(body)
    assert list(event) == ["version", "id", "detail-type", "source", "account", "time", "region", "resources",
                           "detail"]
    assert event["account"] == "123456789012"
    assert event["version"] == "0"
    assert datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ")


def test_a_target_moto_cannot_serve_or_that_does_not_exist_fails_neither_the_call_nor_the_others(bus):
    """Black-box pass 9D, F1/F2: a rule with a Lambda or SNS target (moto raises NotImplementedError) or a log
    group that does not exist failed every PutEvents it matched, after the rules before it had delivered: an
    outcome was never published and was delivered 30 times elsewhere."""
    source = "test.odd-targets"
    plain = bus.subscribe(source)
    name = "test-odd-targets"
    bus.events.put_rule(Name=name, EventPattern=json.dumps({"source": [source]}))
    bus.events.put_targets(Rule=name, Targets=[
        {"Id": "lambda", "Arn": "arn:aws:lambda:us-east-1:123456789012:function:nope"},
        {"Id": "sns", "Arn": "arn:aws:sns:us-east-1:123456789012:nope"},
        {"Id": "logs", "Arn": "arn:aws:logs:us-east-1:123456789012:log-group:/nope/x"},
    ])
    response = bus.events.put_events(Entries=[_entry(source, '{"n": 1}')])
    assert response["FailedEntryCount"] == 0, response
    assert len(bus.delivered(plain)) == 1


def test_a_rule_forwarding_to_its_own_bus_forwards_once_not_forever(bus):
    """Black-box pass 9D, F3: moto recursed through a rule targeting its own bus (or two buses forwarding to each
    other) about 240 times, delivering the event at every level. A bus-to-bus hop is made once."""
    source = "test.self-bus"
    plain = bus.subscribe(source)
    name = "test-self-bus"
    bus.events.put_rule(Name=name, EventPattern=json.dumps({"source": [source]}))
    bus.events.put_targets(Rule=name, Targets=[
        {"Id": "self", "Arn": "arn:aws:events:us-east-1:123456789012:event-bus/default"}])
    response = bus.events.put_events(Entries=[_entry(source, '{"n": 1}')])
    assert response["FailedEntryCount"] == 0, response
    assert len(bus.delivered(plain)) == 2  # the event, and its one forwarded copy


def test_text_that_looks_like_markup_or_a_bracket_stays_text_in_a_template(bus):
    """Black-box pass 9D, F8: ``[alert] <s> happened`` was taken for a JSON array template (its value quoted), and
    ``<b>`` (no such variable) was deleted."""
    source = "test.text-templates"
    name = "test-text-templates-inputs"
    queue_url = bus.sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = bus.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus.events.put_rule(Name=name, EventPattern=json.dumps({"source": [source]}))
    bus.events.put_targets(Rule=name, Targets=[{"Id": "text", "Arn": arn, "InputTransformer": {
        "InputPathsMap": {"s": "$.detail.s"},
        "InputTemplate": "[alert] <s> happened: <b>bold</b> by <aws.events.rule-name>"}}])
    bus.events.put_events(Entries=[_entry(source, json.dumps({"s": "disk full"}))])
    assert _bodies(bus, queue_url) == [f"[alert] disk full happened: <b>bold</b> by {name}"]


@pytest.mark.parametrize(("target", "says"), [
    ({"Input": "constant text <x>"}, "Input for target t is not a valid JSON text"),
    ({"InputPath": "$..[?(@"}, "InputPath for target t is not a valid JSON path: '$..[?(@' cannot be read"),
    ({"InputPath": "detail.id"}, "InputPath for target t is not a valid JSON path: 'detail.id' must be text starting "
                                 "with $"),
    ({"InputTransformer": {"InputPathsMap": {"v": "$.[[["}, "InputTemplate": "<v>"}},
     "InputPathsMap for target t: the path of 'v' is not a valid JSON path"),
    ({"InputTransformer": {"InputPathsMap": {"aws.events.rule-name": "$.detail.s"}, "InputTemplate": "<s>"}},
     "'aws.events.rule-name' is not a variable name"),
    ({"Input": "{}", "InputPath": "$.detail"}, "only one of Input, InputPath and InputTransformer may be given, got "
                                               "Input, InputPath"),
])
def test_put_targets_refuses_what_eventbridge_refuses_and_stores_no_target_of_the_call(bus, target, says):
    """Black-box pass 9D, F6: such a target was accepted locally and then got nothing, a warning in the log only;
    EventBridge refuses it at PutTargets with a ValidationException."""
    name = "test-refused-targets"
    arn = "arn:aws:sqs:us-east-1:123456789012:test-refused-targets"
    bus.events.put_rule(Name=name, EventPattern=json.dumps({"source": ["test.refused"]}))
    with pytest.raises(ClientError) as raised:
        bus.events.put_targets(Rule=name, Targets=[{"Id": "good", "Arn": arn}, {"Id": "t", "Arn": arn, **target}])
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert says in raised.value.response["Error"]["Message"]
    assert bus.events.list_targets_by_rule(Rule=name)["Targets"] == []
