"""The soak's own promises beyond the generic invariants, checked on observed outcomes."""

from __future__ import annotations

import pytest

from agentbus.bench.soak import edge_case_violations, submit_paced, wait_for_results
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


def _requests(*workflows):
    return [SoakRequest(w, str(i), "sample", ({"Detail": str(i)},)) for i, w in enumerate(workflows)]


class Backlog:
    """Coordinated requests put and still without an outcome; each wait lets ``finish_per_wait`` of them end."""

    def __init__(self, finish_per_wait):
        self.open, self.finish_per_wait, self.waits, self.peak = 0, finish_per_wait, 0, 0

    def put(self, batch):
        self.open += sum(1 for r in batch if r.workflow == "c")
        self.peak = max(self.peak, self.open)

    def sleep(self, _):
        self.waits += 1
        self.open = max(0, self.open - self.finish_per_wait)


def test_paced_requests_never_have_more_coordinated_ones_waiting_than_the_limit():
    backlog = Backlog(finish_per_wait=1)
    batches = [_requests("c", "c", "s"), _requests("c", "s", "s"), _requests("c", "c", "c"), _requests("s")]
    put = []
    submit_paced(batches, lambda b: (put.append(b), backlog.put(b)), lambda: backlog.open, {"c"}, in_flight=3,
                 sleep=backlog.sleep)
    assert put == batches  # every batch, in order
    assert backlog.peak == 3 and backlog.waits == 3  # the third batch (3 coordinated) waited until none was open


def test_a_standalone_batch_is_never_held_back_and_a_batch_over_the_limit_goes_once_nothing_waits():
    backlog = Backlog(finish_per_wait=5)
    batches = [_requests("c", "c"), _requests("s", "s"), _requests("c", "c", "c", "c")]
    submit_paced(batches, backlog.put, lambda: backlog.open, {"c"}, in_flight=2, sleep=backlog.sleep)
    assert backlog.waits == 1 and backlog.peak == 4


def test_a_batch_is_held_back_at_most_max_wait_so_outcomes_that_stop_coming_do_not_hang_the_soak():
    backlog = Backlog(finish_per_wait=0)  # nothing ever ends
    batches = [_requests("c", "c"), _requests("c")]
    submit_paced(batches, backlog.put, lambda: backlog.open, {"c"}, in_flight=2, max_wait_s=1.0, poll_s=0.25,
                 sleep=backlog.sleep)
    assert backlog.waits == 4 and backlog.open == 3  # held 4 x 0.25 s, then put anyway


def test_pacing_needs_room_for_one_request():
    with pytest.raises(ValueError, match="in_flight must be at least 1"):
        submit_paced([], lambda b: None, lambda: 0, set(), in_flight=0)
