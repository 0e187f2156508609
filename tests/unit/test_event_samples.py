"""events/ holds a sample of every event the shipped manifest's catalogue (docs/events.md) lists, each a valid
``aws events put-events --entries`` file whose detail is what its publisher puts."""

from __future__ import annotations

import json

import pytest

from functions.common.models import WorkflowOutcome
from functions.common.spec import (
    CANCEL_DETAIL_TYPE,
    CENSUS_DETAIL_TYPE,
    COORDINATOR_SOURCE,
    DEADLINE_DETAIL_TYPE,
    DEADLINE_SOURCE,
    OPERATOR_SOURCE,
)
from functions.manifest import MANIFEST as YOURS  # with the workflows a user added: their outcome samples checked
from tests.conftest import EVENTS_DIR
from tests.pinned import MANIFEST  # the shipped workflows' samples: a user's own are theirs to keep


def catalogued() -> set[tuple[str, str]]:
    """(source, detail-type) of every event the catalogue lists for the shipped manifest."""
    events = {(OPERATOR_SOURCE, CANCEL_DETAIL_TYPE), (DEADLINE_SOURCE, DEADLINE_DETAIL_TYPE),
              (DEADLINE_SOURCE, CENSUS_DETAIL_TYPE)}
    for workflow in MANIFEST.workflows:
        trigger = workflow.trigger.subscription
        events |= {(source, detail_type) for source in trigger.sources for detail_type in trigger.detail_types}
        events |= {(agent.source, result.detail_type) for agent in workflow.agents for result in agent.results}
        events |= {(external.source, result.detail_type) for external in workflow.external
                   for result in external.results}
        events |= {(COORDINATOR_SOURCE, detail_type) for detail_type in workflow.terminal_detail_types.values()}
    return events


def samples() -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for path in sorted(EVENTS_DIR.glob("*.json")):
        entries = json.loads(path.read_text())
        if isinstance(entries, list):  # seed files are objects, not entries
            for entry in entries:
                found.setdefault((entry["Source"], entry["DetailType"]), []).append(path.name)
    return found


def test_every_catalogued_event_has_a_sample_in_events():
    missing = sorted(catalogued() - set(samples()))
    assert not missing, f"no sample in events/ for {missing} (docs/events.md says every event has one)"


def test_every_sample_entry_is_a_put_events_entry_for_the_agentbus_bus_with_an_object_detail():
    for path in sorted(EVENTS_DIR.glob("*.json")):
        entries = json.loads(path.read_text())
        if not isinstance(entries, list):
            continue
        assert 1 <= len(entries) <= 10, path.name
        for entry in entries:
            assert set(entry) <= {"Source", "DetailType", "EventBusName", "Detail", "Resources", "Time"}, path.name
            assert entry["EventBusName"] == "agentbus", path.name
            assert isinstance(json.loads(entry["Detail"]), dict), path.name


@pytest.mark.parametrize("workflow", YOURS.coordinated, ids=lambda w: w.name)
def test_each_outcome_sample_is_an_outcome_of_its_workflow_with_its_status(workflow):
    found = samples()
    for status, detail_type in workflow.terminal_detail_types.items():
        for name in found.get((COORDINATOR_SOURCE, detail_type), []):
            [entry] = json.loads((EVENTS_DIR / name).read_text())
            outcome = WorkflowOutcome.model_validate_json(entry["Detail"])
            assert (outcome.workflow, outcome.status) == (workflow.name, status), name
            assert outcome.idempotency_key == f"{outcome.workflow_id}:{status.value}", name
            agents = {agent.name for agent in workflow.agents} | {external.name for external in workflow.external}
            assert set(outcome.results) <= agents and set(outcome.missing) <= agents, name


def _shape(value):
    """A JSON value's shape: its type, and for an object its keys' shapes (a list: its first item's)."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return "number" if isinstance(value, int | float) and not isinstance(value, bool) else type(value).__name__


@pytest.mark.parametrize("workflow", YOURS.coordinated, ids=lambda w: w.name)
def test_the_results_an_outcome_sample_lists_look_like_their_result_samples(workflow):
    """Black-box pass 10B, F2: order-completed.json listed a fraud score of 0.12 and a shipping price as a number
    (the agents publish 0-100 and text), and no inventory reservation: a subscriber coding against the outcome
    sample would break on the real event."""
    found = samples()
    sources = {agent.name: agent.source for agent in (*workflow.agents, *workflow.external)}
    for detail_type in workflow.terminal_detail_types.values():
        for name in found.get((COORDINATOR_SOURCE, detail_type), []):
            [entry] = json.loads((EVENTS_DIR / name).read_text())
            for agent, result in json.loads(entry["Detail"])["results"].items():
                samples_of_result = found.get((sources[agent], result["detail_type"]), [])
                assert samples_of_result, f"{name}: no sample of {agent}'s {result['detail_type']!r}"
                if agent not in {a.name for a in workflow.agents}:
                    continue  # a person's answer: its sample is the answer sent, not a result published
                shape = _shape(result["data"])
                for sample in samples_of_result:
                    for e in json.loads((EVENTS_DIR / sample).read_text()):
                        if (e["Source"], e["DetailType"]) != (sources[agent], result["detail_type"]):
                            continue
                        expected = _shape(json.loads(e["Detail"])["data"])
                        # What the result sample has, the outcome's copy has, shaped alike (a result may carry
                        # more: a risk that asks for an approval adds its approval_threshold).
                        assert set(expected) <= set(shape), f"{name}: {agent}'s data lacks {set(expected) - set(shape)}"
                        assert {k: shape[k] for k in expected} == expected, \
                            f"{name}: {agent}'s data {result['data']} is not shaped as in {sample}"
