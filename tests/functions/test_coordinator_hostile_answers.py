"""Answers whose values would break the store, refused at once as poison naming the field (not retried)."""

from __future__ import annotations

import pytest

from agentbus.local.lambda_events import eventbridge_envelope
from functions.common.dead_letters import PoisonMessage
from functions.common.models import BusEvent
from functions.coordinator.logic import Coordinator
from tests.conftest import workflow_store
from tests.pinned import MANIFEST  # the shipped workflows with the agents the tests name

ACCESS = MANIFEST.workflow("access-request")
[APPROVER] = ACCESS.external


class NoSchedules:
    def create(self, *args) -> bool:
        return True

    def rearm(self, *args) -> None:
        pass

    def delete(self, *args) -> bool:
        return True


@pytest.mark.parametrize("digest", ["a" * 1100, "a" * 65, "ab#result#x", "ab cd", ""])
def test_an_answer_naming_a_trigger_version_no_digest_can_be_is_poison_naming_the_field(aws, digest):
    # 1,100 characters went into the result item's sort key: DynamoDB refused the write (1,024 bytes), the
    # coordinator took it for a transient error, retried it 5 times and dead-lettered DynamoDB's message.
    session, resources = aws
    store = workflow_store(session.client("dynamodb"), resources, MANIFEST)
    coordinator = Coordinator(store=store, deadlines=NoSchedules(), publish=lambda event: None, manifest=MANIFEST)
    assert APPROVER.approval is not None
    detail = {"workflow": ACCESS.name, "workflow_id": "acc-1", "agent": APPROVER.name, "by": "grace.hopper",
              "trigger_digest": digest}
    event = BusEvent.model_validate(eventbridge_envelope(APPROVER.approval.detail_type, APPROVER.source, detail))
    with pytest.raises(PoisonMessage, match="trigger_digest"):
        coordinator.handle(event)
