"""`make demo`: every workflow's samples reach their outcomes, the summaries and the timeline are produced."""

from __future__ import annotations

import io
import time

from rich.console import Console

from agentbus.demo import run_demo
from tests.pinned import MANIFEST as SHIPPED  # the shipped workflows, not any a user adds (their samples count too)
from tests.workflows.followups.manifest import MANIFEST as FOLLOW_UPS


def test_demo_runs_every_workflows_samples_to_their_outcomes(tmp_path):
    output = io.StringIO()
    timeline = tmp_path / "timeline.html"
    work = {"fraud": 50, "inventory": 20, "shipping": 30, "identity": 20, "policy": 20, "risk": 30,
            "security-audit": 20}
    code = run_demo(work_profile=work, interval_s=0.1, timeline_path=str(timeline), manifest=SHIPPED,
                    console=Console(file=output, width=200, highlight=False))
    text = output.getvalue()
    assert code == 0, text
    for title in ("order-fulfillment: per-request summary", "access-request: per-request summary",
                  "new-user-audit: per-request summary"):
        assert title in text
    for request_id in ("ord-1001", "ord-2001", "ord-2002", "ord-2003", "ord-2004", "ord-2005",
                       "acc-3001", "acc-3002", "acc-3003", "acc-3006", "acc-3006-cancel", "usr-5001", "usr-5002"):
        assert request_id in text
    assert text.count("COMPLETED") >= 7 and "REJECTED" in text and "ANSWERED" in text and "CANCELLED" in text
    assert "Access Granted" in text and "Access Denied" in text and "User Audit Completed" in text
    assert "invariants held for 13 requests" in text
    page = timeline.read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page and "ord-2004" in page and "acc-3001" in page


def test_demo_of_one_workflow(tmp_path):
    output = io.StringIO()
    code = run_demo(workflows=["access-request"], work_profile={}, interval_s=0, timeline_path=str(tmp_path / "t.html"),
                    manifest=SHIPPED, console=Console(file=output, width=200, highlight=False))
    text = output.getvalue()
    assert code == 0, text
    assert "access-request: per-request summary" in text and "order-fulfillment" not in text
    assert "invariants held for 5 requests" in text
    assert "could use a model: risk (off here: rules only" in text  # and no model was called: no account here


def test_demo_approves_a_request_that_waits_for_a_person_and_cancels_another(tmp_path):
    """Issue 13, done when: `make demo` includes a request that waits for an approval, is approved through the
    CLI's code path and completes, and one that is cancelled."""
    output = io.StringIO()
    code = run_demo(workflows=["access-request"], work_profile={}, interval_s=0, timeline_path=str(tmp_path / "t.html"),
                    manifest=SHIPPED, console=Console(file=output, width=240, highlight=False))
    text = output.getvalue()
    assert code == 0, text
    lines = text.splitlines()

    def line_of(fragment: str) -> int:
        return next(i for i, line in enumerate(lines) if fragment in line)

    waits = line_of("acc-3006   waits for manager-approval: a person (the employee's manager), asked")
    approved = line_of("`agentbus approve acc-3006`: Access Approved by demo (as manager-approval: a person (the "
                       "employee's manager))")
    granted = line_of("acc-3006   Access Granted")
    assert waits < approved < granted
    cancelled = line_of("Access Request Cancelled — cancelled by demo (as an operator)")
    assert line_of("`agentbus cancel acc-3006-cancel`: Workflow Cancel Requested") < cancelled
    summary = next(line for line in lines if line.startswith("│ acc-3006-cancel"))
    assert "CANCELLED" in summary
    assert next(line for line in lines if line.startswith("│ acc-3006 ")).split("│")[2].strip() == "COMPLETED"


def test_a_sample_the_bus_refuses_is_named_with_its_reason_and_not_waited_for(tmp_path):
    # A sample with a reserved source (here an agent's result; a workflow triggered by an outcome names the
    # coordinator's) was counted as put: the demo waited its whole timeout for it, then said nothing of why.
    output = io.StringIO()
    started = time.monotonic()
    code = run_demo(workflows=["order-fulfillment"], event_files=["events/order-verified.json"], work_profile={},
                    interval_s=0, timeout_s=60, timeline_path=str(tmp_path / "t.html"), manifest=SHIPPED,
                    console=Console(file=output, width=400, highlight=False))
    text = output.getvalue()
    assert code == 1, text
    assert "Order Verified from agentbus.agent.fraud: NotAuthorizedForSourceException: " in text
    assert "put 0 requests on the bus" in text and "no outcome within" not in text
    assert time.monotonic() - started < 45, text


def test_a_workflow_started_by_another_workflows_outcome_is_found_on_the_bus_and_summarized(tmp_path):
    # report-filed's trigger is report's outcome (put by the coordinator): no sample can start it, so the demo
    # keyed nothing to it and printed an empty summary, though its agent ran.
    output = io.StringIO()
    code = run_demo(workflows=["report-filed"], work_profile={}, interval_s=0, timeout_s=60,
                    timeline_path=str(tmp_path / "t.html"), manifest=FOLLOW_UPS,
                    console=Console(file=output, width=400, highlight=False))
    text = output.getvalue()
    assert code == 0, text
    assert "started by an outcome on the bus: report-filed/rep-7001" in text
    row = next(line for line in text.splitlines() if line.startswith("│ rep-7001"))
    assert row.split("│")[2].strip() == "ANSWERED", text
