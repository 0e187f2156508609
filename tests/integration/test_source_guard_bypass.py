"""The local endpoint's reserved-source rule holds however a PutEvents reaches moto: a target prefix other than
``AWSEvents`` (moto takes the action after the last dot and the service from the credential scope), an ``Action``
in the query string, a gzip body. Each way once put an outsider's entry with a reserved source on the bus (a forged
``Order Rejected`` released a completed order's stock; a forged ``Order Verified`` let an over-limit order pass)."""

from __future__ import annotations

import gzip
import json
import urllib.request
from typing import Any

import boto3
import pytest

from agentbus.local.server import NOT_AUTHORIZED_FOR_SOURCE, LocalEndpoint, SourceGuard

RESERVED = "test.reserved"
AUTH = ("AWS4-HMAC-SHA256 Credential={key}/20261202/us-east-1/events/aws4_request, SignedHeaders=host, "
        "Signature=00")


@pytest.fixture(scope="module")
def endpoint():
    with LocalEndpoint(guard=SourceGuard("default", {RESERVED: "its-owner"})) as running:
        yield running


def clients(endpoint: LocalEndpoint) -> tuple[Any, Any]:
    """An outsider's SQS and EventBridge clients of the endpoint."""
    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    return session.client("sqs", endpoint_url=endpoint.url), session.client("events", endpoint_url=endpoint.url)


def queue_for(endpoint: LocalEndpoint, name: str, pattern: dict | None = None) -> tuple[Any, str]:
    """A queue receiving what a rule of ``pattern`` (default: the reserved source) matches on the default bus."""
    sqs, events = clients(endpoint)
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventPattern=json.dumps(pattern or {"source": [RESERVED]}))
    events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn}])
    return sqs, url


def raw_put(endpoint: LocalEndpoint, *, target: str, key: str = "outsider", query: str = "",
            compress: bool = False) -> dict:
    body = json.dumps({"Entries": [{"Source": RESERVED, "DetailType": "Forged", "Detail": "{}"}]}).encode()
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target,
               "Authorization": AUTH.format(key=key)}
    if compress:
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    request = urllib.request.Request(f"{endpoint.url}/{query}", data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.parametrize(("name", "way"), [
    ("lowercase-prefix", {"target": "awsevents.PutEvents"}),
    ("other-prefix", {"target": "Foo.PutEvents"}),
    ("bare-action", {"target": "PutEvents"}),
    ("nested-prefix", {"target": "X.AWSEvents.PutEvents"}),
    ("query-action", {"target": "AWSEvents.ListRules", "query": "?Action=PutEvents"}),
    ("gzip-body", {"target": "AWSEvents.PutEvents", "compress": True}),
])
def test_an_outsiders_reserved_source_is_refused_whatever_the_way_in(endpoint, name, way):
    sqs, url = queue_for(endpoint, name)
    answer = raw_put(endpoint, **way)
    if "Entries" in answer:  # moto answered a PutEvents: the entry is refused, as EventBridge refuses it
        assert answer["FailedEntryCount"] == 1
        assert answer["Entries"][0]["ErrorCode"] == NOT_AUTHORIZED_FOR_SOURCE
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []) == []


def test_the_owner_still_puts_its_source_those_ways(endpoint):
    sqs, url = queue_for(endpoint, "owner-gzip")
    answer = raw_put(endpoint, target="AWSEvents.PutEvents", key="its-owner", compress=True)
    assert answer["FailedEntryCount"] == 0
    [message] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)["Messages"]
    assert json.loads(message["Body"])["source"] == RESERVED


def test_a_quote_in_a_source_cannot_rewrite_the_envelope_a_queue_receives(endpoint):
    """moto put the values into a text template unescaped: the last duplicate key won, and an outsider's entry
    arrived as the reserved source's. The envelope is JSON-encoded now: the source is the one put."""
    sqs, url = queue_for(endpoint, "by-detail-type", {"detail-type": ["Cancel"]})
    _, events = clients(endpoint)
    injected = f'x", "detail-type": "Forged", "source": "{RESERVED}'
    answer = events.put_events(Entries=[{"Source": injected, "DetailType": "Cancel", "Detail": "{}"},
                                        {"Source": "ctl\x1bsource", "DetailType": "Cancel", "Detail": "{}"}])
    assert answer["FailedEntryCount"] == 0
    received = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                                    WaitTimeSeconds=2)["Messages"]]
    assert sorted((e["source"], e["detail-type"]) for e in received) == sorted(
        [(injected, "Cancel"), ("ctl\x1bsource", "Cancel")])


def test_a_detail_nested_deeper_than_moto_reads_fails_alone(endpoint):
    _, events = clients(endpoint)
    entries = [{"Source": "plain", "DetailType": "Deep", "Detail": '{"a":' * depth + "1" + "}" * depth}
               for depth in range(940, 1000, 5)][:10]
    answer = events.put_events(Entries=entries)
    failed = [e for e in answer["Entries"] if "ErrorCode" in e]
    assert answer["FailedEntryCount"] == len(failed) and {e["ErrorCode"] for e in failed} <= {"MalformedDetail"}
    assert len(answer["Entries"]) == len(entries)


@pytest.mark.parametrize("field", ["Source", "DetailType", "Resources"])
def test_text_with_no_utf8_form_in_an_entry_fails_that_entry_alone(endpoint, field):
    """A lone surrogate in Source, DetailType or Resources failed the whole call with HTTP 500, none of its other
    entries put and nothing named."""
    _, events = clients(endpoint)
    bad = {"Source": "plain", "DetailType": "Odd", "Detail": "{}"}
    bad[field] = ["arn:x\ud800"] if field == "Resources" else "x\ud800"  # type: ignore[assignment]
    answer = events.put_events(Entries=[bad, {"Source": RESERVED, "DetailType": "Fine", "Detail": "{}"}])
    assert answer["FailedEntryCount"] == 2  # the bad one; the reserved source from an outsider, as before
    assert answer["Entries"][0]["ErrorCode"] == "InvalidArgument" and field in answer["Entries"][0]["ErrorMessage"]
    assert answer["Entries"][1]["ErrorCode"] == NOT_AUTHORIZED_FOR_SOURCE


def test_the_other_entries_of_such_a_call_are_put(endpoint):
    sqs, url = queue_for(endpoint, "plain-source", {"source": ["plain"]})
    _, events = clients(endpoint)
    answer = events.put_events(Entries=[{"Source": "plain", "DetailType": "x\ud800", "Detail": "{}"},
                                        {"Source": "plain", "DetailType": "Fine", "Detail": "{}"}])
    assert answer["FailedEntryCount"] == 1
    [message] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)["Messages"]
    assert json.loads(message["Body"])["detail-type"] == "Fine"
