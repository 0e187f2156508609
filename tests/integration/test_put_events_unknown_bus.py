"""An entry for an event bus that does not exist, on the local endpoint (agentbus/local/put_events.py, rule 4).

EventBridge fails neither that entry nor the call: the entry gets an ``EventId``, does not count in
``FailedEntryCount``, and its event is dropped (user guide, "Sending events with PutEvents"). moto failed the whole
call with ``ResourceNotFoundException`` after putting the entries before it, so a caller (``agentbus put``
included) was told nothing was put while an order was already on its way, and a producer that trusted the error
put it twice. Here every entry is answered, the valid ones are put and reach their outcome, and an event for a
bus that does not exist (by name, or by the ARN of another account's or region's bus of the same name) reaches
no bus.
"""

from __future__ import annotations

import json
import time

import pytest

from agentbus import cli
from tests.conftest import observed_stack, order_entry

TIMEOUT_S = 90
OTHER_ACCOUNT = "999999999999"
OTHER_REGION = "eu-west-1"


@pytest.fixture(scope="module")
def stack():
    with observed_stack() as stack:
        yield stack


def _bus_arn(stack) -> str:
    return stack.client("events").describe_event_bus(Name=stack.resources.bus_name)["Arn"]


def _assert_all_put(response: dict, count: int) -> None:
    """EventBridge's answer: every entry has an EventId (none an error), none counts as failed."""
    assert response["FailedEntryCount"] == 0, response
    assert len(response["Entries"]) == count
    assert all(entry.keys() == {"EventId"} for entry in response["Entries"]), response
    assert len({entry["EventId"] for entry in response["Entries"]}) == count


def _assert_outcomes(stack, put: list[str], dropped: list[str]) -> None:
    """Every order in ``put`` reaches one outcome; no order in ``dropped`` reaches any (it was on no bus of the
    stack: the coordinator would answer even an order it rejects)."""
    observer = stack.observer_
    assert observer.wait_for_outcomes(put, TIMEOUT_S) == set()
    time.sleep(2)  # an outcome of a dropped order would have come by now, with the put ones'
    for order_id in put:
        assert [o.detail["status"] for o in observer.outcomes(order_id)] == ["COMPLETED"], order_id
    for order_id in dropped:
        assert observer.outcomes(order_id) == [], order_id


def test_a_call_with_an_entry_for_a_bus_that_does_not_exist_puts_the_others_and_answers_each(stack):
    events = stack.client("events")
    entries = [order_entry("put-fresh-1"), {**order_entry("put-other"), "EventBusName": "other-bus"},
               order_entry("put-fresh-2")]
    response = events.put_events(Entries=entries)  # was: ResourceNotFoundException, put-fresh-1 already put
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    _assert_all_put(response, 3)
    _assert_outcomes(stack, put=["put-fresh-1", "put-fresh-2"], dropped=["put-other"])
    with pytest.raises(events.exceptions.ResourceNotFoundException):  # nothing created it on the way
        events.describe_event_bus(Name="other-bus")


def test_an_event_bus_arn_names_the_bus_of_its_own_account_and_region(stack):
    arn = _bus_arn(stack)
    _, _, _, region, account, resource = arn.split(":")
    bus = resource.removeprefix("event-bus/")
    assert bus == stack.resources.bus_name
    buses = {
        "put-arn-own": arn,                                                       # the stack's bus: put
        "put-arn-account": f"arn:aws:events:{region}:{OTHER_ACCOUNT}:event-bus/{bus}",  # same name, no such bus
        "put-arn-region": f"arn:aws:events:{OTHER_REGION}:{account}:event-bus/{bus}",   # same name, no such bus
        "put-arn-missing": f"arn:aws:events:{region}:{account}:event-bus/no-such-bus",
        "put-no-bus": None,  # the caller's default bus, which exists: put there, where no rule takes it
    }
    entries = []
    for order_id, name in buses.items():
        entry = {k: v for k, v in order_entry(order_id).items() if k != "EventBusName"}
        entries.append({**entry, "EventBusName": name} if name else entry)
    response = stack.client("events").put_events(Entries=entries)
    _assert_all_put(response, len(entries))
    # moto took the name at the end of any ARN: the other account's and the other region's orders went on the
    # stack's bus and were fulfilled.
    _assert_outcomes(stack, put=["put-arn-own"], dropped=[o for o in buses if o != "put-arn-own"])


def test_agentbus_put_reports_every_entry_put_across_its_calls(stack, tmp_path, monkeypatch, capsys):
    # 12 entries go in calls of 10 and 2, each with an entry for a bus that does not exist. Was: the first call
    # failed whole after putting put-cli-0, and `agentbus put` exited 2 with that error, the rest never sent;
    # with the unknown bus only in a later call, every entry of that call was reported failed, valid ones too.
    valid = [f"put-cli-{i}" for i in range(10)]
    entries = [order_entry(order_id) for order_id in valid]
    entries.insert(1, {**order_entry("put-cli-other-1"), "EventBusName": "other-bus"})
    entries.append({**order_entry("put-cli-other-2"), "EventBusName": "other-bus"})
    path = tmp_path / "entries.json"
    path.write_text(json.dumps(entries))
    credentials = stack.session.get_credentials()
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", stack.session.region_name)
    monkeypatch.delenv("AWS_REGION", raising=False)

    code = cli.main(["put", str(path), "--endpoint-url", stack.url])
    out, err = capsys.readouterr()
    assert code == 0, (out, err)
    _assert_all_put(json.loads(out), len(entries))
    _assert_outcomes(stack, put=valid, dropped=["put-cli-other-1", "put-cli-other-2"])
