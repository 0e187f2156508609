"""A Decision the manifest or the result model refuses is a programming error, the same on every retry: poison at
once, naming the agent (a reason that is not text was retried 5 times and dead-lettered as a bare TypeError)."""

from __future__ import annotations

import pytest

from functions.common.dead_letters import PoisonMessage
from functions.common.decisions import Decision
from tests.unit.test_agent_mistakes import order_placed, runner


@pytest.mark.parametrize(("decision", "named"), [
    (Decision("Order Verified", reason=5), "reason"),  # type: ignore[arg-type]
    (Decision("Order Kinda Verified"), "Order Kinda Verified"),
    (Decision("Order Verified", asks_for=("manager-approval",)), "manager-approval"),
])
def test_a_decision_that_cannot_be_published_is_poison_at_once(decision, named):
    run, events, _ = runner(decide=lambda order: decision)
    with pytest.raises(PoisonMessage) as poisoned:
        run.handle(order_placed())
    assert str(poisoned.value).startswith("agent 'fraud': its Decision cannot be published: ")
    assert named in str(poisoned.value)
    assert events.entries == []
