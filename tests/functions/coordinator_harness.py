"""The coordinator's handler on moto, driven as Lambda drives it, for the handler tests of several workflows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agentbus.local.lambda_events import LambdaContext, sqs_event, sqs_record
from functions.common.clients import Clients
from functions.common.dead_letters import REASON_ATTRIBUTE
from functions.coordinator.handler import build
from functions.manifest import COORDINATOR_SOURCE
from tests.conftest import drain_queue, settings_for, tap, tapped, workflow_store
from tests.pinned import MANIFEST  # the shipped workflows with the agents the tests name (not any a user adds)


class Clock:
    """A clock a test moves (``advance``): deadlines and a person's wait come due when it says."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Coordinator:
    """The built coordinator handler (one record at a time: moto in-process is not thread-safe), a tap on what it
    publishes, its dead letters and its store. ``settings`` override the coordinator's settings."""

    def __init__(self, session, resources, **settings):
        self.session, self.resources = session, resources
        self.clients = Clients.create(session)
        self.clock = Clock()
        self.handler = build(settings_for(resources, "coordinator", MANIFEST, record_concurrency=1, **settings),
                             self.clients, clock=self.clock)
        self.store = workflow_store(self.clients.dynamodb, resources, MANIFEST)
        self.capture = tap(session, resources, COORDINATOR_SOURCE)

    def deliver(self, *envelopes: dict, receive_count: int = 1) -> dict:
        arn = self.resources.consumers["coordinator"].queue_arn
        event = sqs_event([sqs_record(e, arn, message_id=f"m{i}", receive_count=receive_count)
                           for i, e in enumerate(envelopes)])
        return self.handler(event, LambdaContext("coordinator"))

    def outcomes(self) -> list[dict]:
        return tapped(self.session, self.capture)

    def dead_letters(self) -> dict[str, str]:
        """Body -> reason of every message the coordinator dead-lettered so far (drained)."""
        return {m["Body"]: m["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
                for m in drain_queue(self.clients.sqs, self.resources.consumers["coordinator"].dlq_url)}

    def row(self, table: str, key: str, value: str) -> dict | None:
        return self.store.get_row(table, {key: value})

    def view(self, workflow, workflow_id: str) -> dict:
        view = self.store.get(workflow.name, workflow_id)
        assert view is not None
        return view


class NoSchedules:
    """Deadlines for a logic-level ``Coordinator`` that never fire: every call succeeds and does nothing."""

    def create(self, *args) -> bool:
        return True

    def rearm(self, *args) -> None:
        pass

    def refire(self, *args) -> str:
        return "refired"

    def delete(self, *args) -> bool:
        return True
