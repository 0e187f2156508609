"""The catalogue says what a result does as the coordinator decides it (review bb4c F7): an optional agent's
failure decides nothing, a quorum member's counts for or against its quorum, and a trigger put by the coordinator
(another workflow's outcome) is published by the coordinator, not "a producer"."""

from __future__ import annotations

import dataclasses

from agentbus.catalogue import render
from functions.common.spec import Manifest
from functions.orders.workflow import ORDER_FULFILLMENT
from functions.orders.workflow import TABLES as ORDER_TABLES
from tests.workflows.followups.manifest import MANIFEST as FOLLOW_UPS
from tests.workflows.manifest import MANIFEST as TEST_MANIFEST


def rows(text: str, source: str, detail_type: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"| `{detail_type}` | `{source}` |")]


def test_an_optional_agents_failure_decides_nothing():
    optional = ORDER_FULFILLMENT.agents[-1]
    agents = (*ORDER_FULFILLMENT.agents[:-1], dataclasses.replace(optional, required=False))
    manifest = Manifest(workflows=(dataclasses.replace(ORDER_FULFILLMENT, agents=agents),), tables=ORDER_TABLES)
    text = render(manifest)
    for result in optional.results:
        [row] = rows(text, optional.source, result.detail_type)
        assert "rejects the workflow" not in row and "counts toward completion" not in row, row
        assert "decides nothing" in row
    # The required agents' still decide.
    required = ORDER_FULFILLMENT.agents[0]
    failure = required.failure_results[0]
    [row] = rows(text, required.source, failure.detail_type)
    assert "rejects the workflow, naming the reason" in row


def test_a_quorum_members_results_count_for_or_against_the_quorum():
    review = TEST_MANIFEST.workflow("change-review")
    assert review.quorum is not None
    text = render(TEST_MANIFEST)
    for agent in review.agents:
        for result in agent.results:
            [row] = rows(text, agent.source, result.detail_type)
            assert "quorum (2 of 3)" in row, row
            assert "counts toward completion" not in row and "rejects the workflow, naming" not in row


def test_a_trigger_that_is_another_workflows_outcome_is_published_by_the_coordinator():
    filed = FOLLOW_UPS.workflow("report-filed")
    [source] = filed.trigger.subscription.sources
    [detail_type] = filed.trigger.subscription.detail_types
    text = render(FOLLOW_UPS)
    section = text[text.index("## Workflow `report-filed`"):]
    [row] = rows(section, source, detail_type)
    assert "a producer" not in row
    assert f"| `{detail_type}` | `{source}` | coordinator (`report`'s outcome) |" in row
