"""The event catalogue (docs/events.md) is derived from the manifest, for any workflow of any manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentbus.catalogue import STANDALONE, render
from functions.manifest import MANIFEST
from tests.workflows.manifest import MANIFEST as TEST_MANIFEST

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def test_docs_events_md_is_the_rendered_catalogue():
    assert DOCS.read_text() == render(MANIFEST) + "\n", "docs/events.md is stale: run `make catalogue`"


def section(text: str, workflow: str) -> str:
    start = text.index(f"## Workflow `{workflow}`")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


@pytest.mark.parametrize("manifest", [MANIFEST, TEST_MANIFEST], ids=["shipped", "test-only"])
def test_every_workflow_has_its_trigger_agents_results_and_outcomes_or_standalone(manifest):
    text = render(manifest)
    for workflow in manifest.workflows:
        part = section(text, workflow.name)
        assert workflow.description in part
        for detail_type in workflow.trigger.subscription.detail_types:
            # Published by a producer, or (a workflow started by another's outcome) by the coordinator.
            assert f"| `{detail_type}` | `{workflow.trigger.subscription.sources[0]}` | " in part
        assert f"the trigger's `{workflow.id_field}`" in part
        for agent in workflow.agents:
            assert f"| {agent.name} — {agent.description} |" in part
            for result in agent.results:
                assert f"| `{result.detail_type}` | `{agent.source}` | {agent.name} |" in part
        if workflow.coordinated:
            assert f"{workflow.deadline_s} s" in part
            for detail_type in workflow.terminal_detail_types.values():
                assert f"| `{detail_type}` | `agentbus.coordinator` | coordinator |" in part
            projection = f"table `{workflow.projection.table}`" if workflow.projection else "| projection | none |"
            assert projection in part
        else:
            assert f"({STANDALONE})" in part and f"| outcomes | {STANDALONE} |" in part
            assert "| deadline | none |" in part
            started_by_an_outcome = "agentbus.coordinator" in workflow.trigger.subscription.sources
            assert started_by_an_outcome or "agentbus.coordinator" not in part
    for table in manifest.all_tables:
        assert f"| `{table.logical_name}` | `{table.partition_key}`" in text


def test_a_standalone_result_goes_to_anyone_a_coordinated_one_to_the_coordinator():
    text = render(MANIFEST)
    assert "| `User Audit Completed` | `agentbus.agent.security-audit` | security-audit | anyone (subscribe a rule) |" \
        in text
    assert "| `Identity Verified` | `agentbus.agent.identity` | identity | coordinator |" in text
    # Compensation: the agent that undoes its side effect consumes the outcomes it compensates on.
    assert "| `Order Rejected` | `agentbus.coordinator` | coordinator | inventory |" in text


def test_the_test_only_workflow_is_catalogued_with_its_projection_and_tables():
    part = section(render(TEST_MANIFEST), "expense-claim")
    assert "| projection | table `expense-claims`, row from `tests.workflows.expenses.projection:claim_item` |" in part
    assert "| budget — " in part and "`expense-budgets`" in part
    assert "`RECEIPT_THRESHOLD` (default `25.00`)" in part


def test_external_agents_what_asks_for_them_and_cancel_are_catalogued():
    text = render(MANIFEST)
    part = section(text, "access-request")
    assert ("| external agents | manager-approval: a person (the employee's manager), results from "
            "`agentbus.approvals`, waited for once a result asks for it, waits 24 h") in part
    assert "| `Access Approved` | `agentbus.approvals` | manager-approval: a person (the employee's manager) " \
           "(`agentbus approve`) | coordinator |" in part
    assert "| `Access Declined` | `agentbus.approvals` | manager-approval: a person (the employee's manager) " \
           "(`agentbus decline`) | coordinator |" in part
    assert "may ask for manager-approval (`asks_for`)" in part
    assert "`Access Request Cancelled` (CANCELLED)" in part
    assert "| cancel | `Workflow Cancel Requested` from `agentbus.operator` (`agentbus cancel`) |" in part
    assert "| `Workflow Cancel Requested` | `agentbus.operator` |" in text
    assert "| `Workflow Census Due` | `agentbus.deadline` | EventBridge Scheduler (every 5 min) | coordinator |" in text


def test_a_workflow_without_external_agents_or_cancel_says_so():
    part = section(render(TEST_MANIFEST), "expense-claim")
    assert "external agents" not in part
    assert "| cancel | cannot be cancelled |" in part
