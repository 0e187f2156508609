"""The endpoint's guard against moto's lost updates: one request at a time, long polls waited outside."""

from __future__ import annotations

import io
import json
import threading
import time

from agentbus.local.server import SerializingMiddleware


def _environ(body: bytes = b"{}", target: str = "DynamoDB_20120810.UpdateItem") -> dict:
    return {"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)), "HTTP_X_AMZ_TARGET": target,
            "REQUEST_METHOD": "POST", "PATH_INFO": "/", "CONTENT_TYPE": "application/x-amz-json-1.0"}


def test_requests_are_serialized_so_read_modify_write_loses_nothing():
    state = {"n": 0}

    def racy_app(environ, start_response):  # what moto does to an item, with a thread switch in the middle
        value = state["n"]
        time.sleep(0.0005)
        state["n"] = value + 1
        start_response("200 OK", [])
        return [b"{}"]

    middleware = SerializingMiddleware(racy_app)

    def hammer():
        for _ in range(20):
            middleware(_environ(), lambda *a: None)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert state["n"] == 160


def test_long_poll_is_forwarded_as_short_polls_and_waits_outside_the_lock():
    seen_waits: list[int] = []
    polls = {"count": 0}

    def sqs_app(environ, start_response):
        request = json.loads(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))
        seen_waits.append(request["WaitTimeSeconds"])
        polls["count"] += 1
        start_response("200 OK", [])
        return [b'{"Messages": [{"Body": "x"}]}' if polls["count"] >= 3 else b"{}"]

    middleware = SerializingMiddleware(sqs_app)
    body = json.dumps({"QueueUrl": "q", "WaitTimeSeconds": 5}).encode()
    holder = {}

    def poll():
        holder["response"] = b"".join(middleware(_environ(body, "AmazonSQS.ReceiveMessage"), lambda *a: None))

    poller = threading.Thread(target=poll)
    poller.start()
    poller.join(timeout=10)
    assert holder["response"] == b'{"Messages": [{"Body": "x"}]}'
    assert seen_waits == [0, 0, 0]
    # Between polls the lock is free: another request goes straight through.
    assert middleware.lock.acquire(timeout=1)
    middleware.lock.release()


def test_observer_sees_service_and_action():
    calls = []
    middleware = SerializingMiddleware(lambda e, s: (s("200 OK", []), [b"{}"])[1],
                                       observer=lambda service, action: calls.append((service, action)))
    middleware(_environ(target="AWSEvents.PutEvents"), lambda *a: None)
    middleware(_environ(target="AmazonSQS.SendMessage"), lambda *a: None)
    assert calls == [("events", "PutEvents"), ("sqs", "SendMessage")]


def test_the_action_is_read_as_moto_reads_it_the_first_of_the_query_string():
    """Black-box pass 8B, F1: the endpoint took the last Action of the query string and moto the first, so a
    PutEvents the endpoint took for ListRules reached moto unscreened."""
    from agentbus.local.server import _service_and_action

    environ = {"HTTP_X_AMZ_TARGET": "AWSEvents.PutEvents", "QUERY_STRING": "Action=PutEvents&Action=ListRules"}
    assert _service_and_action(environ, b"")[1] == "PutEvents"
    environ["QUERY_STRING"] = "Action=&Action=ListRules"  # a blank first Action falls through to the target's
    assert _service_and_action(environ, b"")[1] == "PutEvents"
