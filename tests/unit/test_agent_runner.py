"""The shared agent runner: validation, timing, the AgentResult detail, publishing and metrics (no AWS)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from agentbus.local.lambda_events import eventbridge_envelope
from functions.common.agent import (
    AgentMetrics,
    AgentOutput,
    AgentRunner,
    Decision,
    iso_ms,
    locate,
)
from functions.common.dead_letters import PoisonMessage
from functions.common.digest import trigger_digest
from functions.common.models import MAX_REASON_CHARS, AgentResult, BusEvent
from functions.common.publisher import EventPublisher, PublishError
from functions.manifest import MANIFEST

EVENTS = Path(__file__).resolve().parents[2] / "events"
T0 = datetime(2026, 11, 26, 11, 7, 8, 123000, tzinfo=UTC)


def order_placed(name: str = "order-placed.json", **changes: Any) -> BusEvent:
    entry = json.loads((EVENTS / name).read_text())[0]
    detail = {**json.loads(entry["Detail"]), **changes}
    return BusEvent.model_validate(eventbridge_envelope(entry["DetailType"], entry["Source"], detail))


class FakeEvents:
    def __init__(self, fail: bool = False):
        self.entries: list[dict[str, Any]] = []
        self.fail = fail

    def put_events(self, Entries):  # noqa: N803
        self.entries += Entries
        if self.fail:
            return {"FailedEntryCount": len(Entries),
                    "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "down"} for _ in Entries]}
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "1"} for _ in Entries]}


class RecordingMetrics(AgentMetrics):
    def __init__(self, agent: str):
        super().__init__(agent)
        self.emitted: list[tuple[str, float]] = []

    def emit(self, name, unit, value):
        self.emitted.append((name, value))


class Clock:
    """Each call returns the next instant, ``step`` apart."""

    def __init__(self, start: datetime = T0, step: timedelta = timedelta(milliseconds=250)):
        self.now, self.step = start, step

    def __call__(self) -> datetime:
        now, self.now = self.now, self.now + self.step
        return now


def runner(decide=None, act=None, *, agent: str = "fraud", events: FakeEvents | None = None,
           **kwargs: Any) -> tuple[AgentRunner, FakeEvents, RecordingMetrics]:
    events = events or FakeEvents()
    metrics = RecordingMetrics(agent)
    agent_, workflow = locate(agent, MANIFEST)
    publisher = EventPublisher(events, "agentbus", sleep=lambda s: None, max_attempts=2)
    kwargs.setdefault("clock", Clock())
    return AgentRunner(agent_, workflow, publisher, decide=decide, act=act, metrics=metrics, **kwargs), events, metrics


def verified(order):
    return Decision("Order Verified", "score 0 < 100", {"score": 0})


def test_builds_and_publishes_the_agent_result():
    run, events, metrics = runner(verified)
    output = run.handle(order_placed())
    assert len(events.entries) == 1
    entry = events.entries[0]
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == \
        ("agentbus.agent.fraud", "Order Verified", "agentbus")
    detail = json.loads(entry["Detail"])
    assert detail == output.detail
    AgentResult.model_validate(detail)
    assert detail == {
        "workflow": "order-fulfillment", "workflow_id": "ord-1001", "agent": "fraud",
        "outcome": "success", "reason": "score 0 < 100", "data": {"score": 0},
        "started_at": "2026-11-26T11:07:08.123Z", "finished_at": "2026-11-26T11:07:08.373Z",
        "duration_ms": 250.0,
        "idempotency_key": f"ord-1001:fraud:{trigger_digest(order_placed().detail)}",
        "trigger_digest": trigger_digest(order_placed().detail),
    }
    assert metrics.emitted == [("AgentDuration", 250.0)]


def test_a_reason_longer_than_a_result_carries_is_cut_saying_how_long_it_was():
    # A model-backed agent explaining itself at length: its 300,000 characters made the outcome's main-table row
    # too large for DynamoDB, and the outcome was never published.
    run, events, _ = runner(lambda order: Decision("Order Flagged", "too risky " + "x" * 300_000))
    run.handle(order_placed())
    reason = json.loads(events.entries[0]["Detail"])["reason"]
    assert len(reason) == MAX_REASON_CHARS
    assert reason.startswith("too risky xxx") and reason.endswith("… [cut: 300,010 characters in all]")
    AgentResult.model_validate(json.loads(events.entries[0]["Detail"]))


def test_a_reason_that_fits_is_kept_as_it_is():
    run, events, _ = runner(lambda order: Decision("Order Flagged", "y" * MAX_REASON_CHARS))
    run.handle(order_placed())
    assert json.loads(events.entries[0]["Detail"])["reason"] == "y" * MAX_REASON_CHARS


@pytest.mark.parametrize(("agent", "detail_type", "outcome"), [
    ("fraud", "Order Verified", "success"), ("fraud", "Order Flagged", "failure"),
    ("inventory", "Items Reserved", "success"), ("inventory", "Items Unavailable", "failure"),
    ("shipping", "Shipping Quoted", "success"), ("shipping", "Shipping Unavailable", "failure"),
])
def test_outcome_comes_from_the_manifest(agent, detail_type, outcome):
    run, events, _ = runner(lambda order: Decision(detail_type), agent=agent)
    run.handle(order_placed())
    assert json.loads(events.entries[0]["Detail"])["outcome"] == outcome
    assert events.entries[0]["Source"] == f"agentbus.agent.{agent}"
    version = trigger_digest(order_placed().detail)
    assert json.loads(events.entries[0]["Detail"])["idempotency_key"] == f"ord-1001:{agent}:{version}"


def test_a_detail_type_the_agent_does_not_emit_is_refused_and_nothing_published():
    run, events, metrics = runner(lambda order: Decision("Items Reserved"))
    with pytest.raises(PoisonMessage, match="does not emit"):  # the same on every retry: kept at once
        run.handle(order_placed())
    assert events.entries == []
    assert ("AgentErrors", 1) in metrics.emitted


@pytest.mark.parametrize(("change", "field"), [
    ({"items": [{"sku": "SKU-MOUSE", "quantity": -2, "unit_price": 25.0}]}, "items.0.quantity"),
    ({"customer_id": None}, "customer_id"),
    ({"shipping_address": {"country": "DE"}}, "shipping_address.postal_code"),
    ({"items": []}, "items"),
])
def test_invalid_order_is_poison_naming_the_field(change, field):
    decided = []
    run, events, metrics = runner(lambda order: decided.append(order) or Decision("Order Verified"))
    with pytest.raises(PoisonMessage, match=f"invalid Order Placed: {field}"):
        run.handle(order_placed(**change))
    assert decided == [] and events.entries == []
    assert metrics.emitted == [("AgentPoisonMessages", 1)]


def test_missing_field_is_poison_naming_it():
    event = order_placed()
    del event.detail["currency"]
    run, events, _ = runner(verified)
    with pytest.raises(PoisonMessage, match="currency: Field required"):
        run.handle(event)


def test_an_event_other_than_the_trigger_is_poison():
    run, events, _ = runner(verified)
    other = BusEvent.model_validate(eventbridge_envelope("Order Rejected", "agentbus.coordinator", {}))
    with pytest.raises(PoisonMessage, match="not 'Order Rejected'"):
        run.handle(other)
    assert events.entries == []


def test_simulated_work_is_slept_and_timed():
    slept: list[float] = []
    clock = Clock(step=timedelta(0))
    run, events, _ = runner(verified, simulated_work_ms={"fraud": 300, "shipping": 9000},
                            sleep=lambda s: (slept.append(s), setattr(clock, "now", clock.now + timedelta(seconds=s))),
                            clock=clock)
    output = run.handle(order_placed())
    assert slept == [0.3]
    assert output.detail["duration_ms"] == 300.0


def test_no_simulated_work_unless_configured_for_this_agent():
    slept: list[float] = []
    run, _, _ = runner(verified, simulated_work_ms={"shipping": 200}, sleep=slept.append)
    run.handle(order_placed())
    run2, _, _ = runner(verified, sleep=slept.append)
    run2.handle(order_placed())
    assert slept == []


def test_publish_failure_propagates_and_counts_an_error():
    run, events, metrics = runner(verified, events=FakeEvents(fail=True))
    with pytest.raises(PublishError):
        run.handle(order_placed())
    assert ("AgentErrors", 1) in metrics.emitted


def test_act_may_republish_a_stored_result_verbatim():
    stored = AgentOutput("Items Reserved", {"workflow": "order-fulfillment", "idempotency_key": "ord-1001:inventory",
                                            "started_at": "2026-01-01T00:00:00.000Z"})
    run, events, metrics = runner(act=lambda order, finish: stored, agent="inventory")
    assert run.handle(order_placed()) is stored
    assert json.loads(events.entries[0]["Detail"]) == stored.detail
    assert events.entries[0]["DetailType"] == "Items Reserved"
    assert metrics.emitted == []  # no fresh work was timed


def test_decide_and_act_are_exclusive():
    agent, workflow = locate("fraud", MANIFEST)
    publisher = EventPublisher(FakeEvents(), "agentbus")
    with pytest.raises(ValueError):
        AgentRunner(agent, workflow, publisher)
    with pytest.raises(ValueError):
        AgentRunner(agent, workflow, publisher, decide=verified, act=lambda o, f: f(verified(o)))


def test_locate_finds_agent_and_workflow():
    agent, workflow = locate("inventory", MANIFEST)
    assert agent.name == "inventory" and workflow.name == "order-fulfillment"
    with pytest.raises(KeyError):
        locate("billing", MANIFEST)


def test_iso_ms_is_utc_with_milliseconds():
    assert iso_ms(datetime(2026, 11, 26, 12, 7, 8, 123999, tzinfo=UTC)) == "2026-11-26T12:07:08.123Z"
    local = datetime(2026, 11, 26, 14, 7, 8, tzinfo=timezone(timedelta(hours=2)))
    assert iso_ms(local) == "2026-11-26T12:07:08.000Z"


def test_metrics_carry_the_agent_dimension(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    AgentMetrics("shipping", namespace="agentbus", service="shipping").duration(12.5)
    emf = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert emf["agent"] == "shipping" and emf["service"] == "shipping"
    assert emf["AgentDuration"] == [12.5]
    definition = emf["_aws"]["CloudWatchMetrics"][0]
    assert "agent" in definition["Dimensions"][0]
    assert definition["Metrics"][0]["Name"] == "AgentDuration"
    assert definition["Metrics"][0]["Unit"] == "Milliseconds"


def test_metrics_are_silent_when_disabled(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    AgentMetrics("shipping").error()
    assert capsys.readouterr().out == ""


def test_metrics_are_printed_in_lambda_only_unless_asked_for(monkeypatch, capsys):
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    AgentMetrics("fraud").error()  # the local runtime, the demo: no EMF noise on stdout
    assert capsys.readouterr().out == ""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "agentbus-fraud")
    AgentMetrics("fraud").error()
    assert json.loads(capsys.readouterr().out)["AgentErrors"] == [1.0]
