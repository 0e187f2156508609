"""The soak's own promises beyond the generic invariants, checked on observed outcomes."""

from __future__ import annotations

from agentbus.bench.soak import edge_case_violations, wait_for_results
from agentbus.bench.workload import SoakRequest
from agentbus.observe import ObservedEvent
from functions.manifest import MANIFEST


class Observed:
    """A bus observer's answers: outcomes and events by (workflow, id)."""

    def __init__(self, outcomes=None, events=None):
        self._outcomes = outcomes or {}
        self._events = events or {}

    def outcomes(self, workflow_id, workflow=None):
        return self._outcomes.get((workflow, workflow_id), [])

    def events(self, workflow_id, workflow=None):
        return self._events.get((workflow, workflow_id), [])


def _outcome(detail):
    return ObservedEvent("Outcome", "agentbus.coordinator", detail, 0.0, "w", "id")


def test_an_unstorable_value_must_end_rejected_naming_its_field():
    requests = [SoakRequest("w", "1", "unstorable", (), field="loyalty_points"),
                SoakRequest("w", "2", "unstorable", (), field="unit_price"),
                SoakRequest("w", "3", "unstorable", (), field="x"),  # no outcome: the generic invariants report it
                SoakRequest("w", "4", "sample", ())]
    observer = Observed({("w", "1"): [_outcome({"status": "REJECTED", "reason": "loyalty_points: too large"})],
                         ("w", "2"): [_outcome({"status": "COMPLETED", "reason": None})],
                         ("w", "4"): [_outcome({"status": "COMPLETED"})]})
    assert edge_case_violations(requests, observer) == [
        "w 2 (unstorable): COMPLETED with reason '', expected REJECTED naming 'unit_price'"]


def test_a_conflicting_pairs_outcome_must_count_one_version_of_the_trigger():
    requests = [SoakRequest("w", "1", "conflict", ()), SoakRequest("w", "2", "conflict", ())]
    one = {"a": {"trigger_digest": "d1"}, "b": {"trigger_digest": "d1"}}
    two = {"a": {"trigger_digest": "d1"}, "b": {"trigger_digest": "d2"}}
    observer = Observed({("w", "1"): [_outcome({"status": "COMPLETED", "results": one})],
                         ("w", "2"): [_outcome({"status": "COMPLETED", "results": two})]})
    assert edge_case_violations(requests, observer) == [
        "w 2 (conflict): the outcome counts results of 2 versions of the trigger"]


def test_a_standalone_request_waits_for_a_result_of_every_agent():
    workflow = next(w for w in MANIFEST.workflows if not w.coordinated)
    sources = [a.source for a in workflow.agents]
    seen = [ObservedEvent("Result", s, {}, 0.0, workflow.name, "1") for s in sources]
    observer = Observed(events={(workflow.name, "1"): seen, (workflow.name, "2"): seen[:-1]})
    assert wait_for_results(observer, workflow, ["1", "2"], timeout_s=0) == {"2"}
