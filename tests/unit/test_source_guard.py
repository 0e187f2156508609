"""The local endpoint's SourceGuard, on its own: which PutEvents entries it refuses, and the merged answer."""

from __future__ import annotations

import json

from agentbus.local import put_events
from agentbus.local.principals import LocalPrincipals
from agentbus.local.server import NOT_AUTHORIZED_FOR_SOURCE, SourceGuard, _access_key
from functions.manifest import DEADLINE_SOURCE, MANIFEST


def _environ(key: str | None) -> dict:
    if key is None:
        return {}
    return {"HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential={key}/20261201/us-east-1/events/aws4_request, "
                                  "SignedHeaders=host, Signature=abc"}


def _body(*entries: dict) -> bytes:
    return json.dumps({"Entries": list(entries)}).encode()


def test_every_consumer_owns_its_source_and_the_scheduler_owns_the_deadline_source():
    principals = LocalPrincipals()
    owners = principals.reserved_sources(MANIFEST)
    for consumer in MANIFEST.consumers:
        assert owners[consumer.source] == principals.function_key(consumer.name)
    assert owners[DEADLINE_SOURCE] == principals.scheduler_key
    assert len(set(owners.values())) == len(owners), "two owners share a key"
    assert LocalPrincipals().token != principals.token, "keys must not be guessable from one run to the next"


def test_only_the_owner_may_publish_a_reserved_source_on_the_bus():
    guard = SourceGuard("agentbus", {"agentbus.agent.fraud": "fraud-key"})
    entry = {"Source": "agentbus.agent.fraud", "DetailType": "Order Verified", "Detail": "{}",
             "EventBusName": "agentbus"}

    def screen(key: str | None, body: bytes) -> put_events.Screened:  # as the endpoint screens a PutEvents
        return put_events.screen(body, lambda entries: guard.refusals(_access_key(_environ(key)), entries))

    for key in (None, "someone", "FRAUD-KEY"):
        screened = screen(key, _body(entry))
        assert screened.total == 1 and screened.refused[0]["ErrorCode"] == NOT_AUTHORIZED_FOR_SOURCE
        assert json.loads(screened.body)["Entries"] == []
    assert screen("fraud-key", _body(entry)).refused == {}
    by_arn = {**entry, "EventBusName": "arn:aws:events:us-east-1:123456789012:event-bus/agentbus"}
    assert 0 in screen("someone", _body(by_arn)).refused
    # Other buses, other sources and malformed requests are not the guard's business.
    assert screen("someone", _body({**entry, "EventBusName": "mine"})).refused == {}
    assert screen("someone", _body({**entry, "Source": "agentbus.orders"})).refused == {}
    assert screen("someone", b"not json") == put_events.Screened(b"not json")


def test_the_answer_keeps_every_entry_at_its_place():
    refused = {0: {"ErrorCode": NOT_AUTHORIZED_FOR_SOURCE, "ErrorMessage": "no"},
               2: {"ErrorCode": NOT_AUTHORIZED_FOR_SOURCE, "ErrorMessage": "no"}}
    backend = json.dumps({"FailedEntryCount": 0, "Entries": [{"EventId": "a"}, {"EventId": "b"}]}).encode()
    merged = json.loads(SourceGuard.merge(backend, refused, 4))
    assert merged["FailedEntryCount"] == 2
    assert [e.get("EventId") or e["ErrorCode"] for e in merged["Entries"]] == [
        NOT_AUTHORIZED_FOR_SOURCE, "a", NOT_AUTHORIZED_FOR_SOURCE, "b"]
    everything_refused = json.loads(SourceGuard.merge(None, {0: refused[0]}, 1))
    assert everything_refused == {"FailedEntryCount": 1, "Entries": [refused[0]]}
