"""agentbus.bench.people: which requests of a run wait for a person, and the line that says so (review bb4c F5;
the runs themselves: tests/integration/test_people_in_bench_and_soak.py)."""

from __future__ import annotations

from types import SimpleNamespace

from agentbus.bench.people import waiting_for_people, waits_for_a_person
from functions.manifest import MANIFEST


def test_the_line_names_the_workflow_whom_it_waits_for_and_the_fix():
    line = waits_for_a_person("invoice-approval", ["cfo-approval", "cfo-approval"], "the soak")
    assert "\n" not in line
    assert line.startswith("workflow 'invoice-approval': a request copied from its samples waits for a person "
                           "(cfo-approval), whom the soak does not play")
    assert "move that sample to people_samples" in line


def test_a_workflow_without_external_agents_is_never_asked_about():
    # No client call at all: the orders workflow has nobody outside to wait for.
    resources = SimpleNamespace(tables={"workflows": "agentbus-workflows"})
    assert waiting_for_people(None, resources, MANIFEST, {"order-fulfillment/ord-1"}) == {}  # type: ignore[arg-type]
    assert waiting_for_people(None, resources, MANIFEST, set()) == {}  # type: ignore[arg-type]
