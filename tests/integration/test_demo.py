"""`make demo`: every workflow's samples reach their outcomes, the summaries and the timeline are produced."""

from __future__ import annotations

import io

from rich.console import Console

from agentbus.demo import run_demo


def test_demo_runs_every_workflows_samples_to_their_outcomes(tmp_path):
    output = io.StringIO()
    timeline = tmp_path / "timeline.html"
    work = {"fraud": 50, "inventory": 20, "shipping": 30, "identity": 20, "policy": 20, "risk": 30,
            "security-audit": 20}
    code = run_demo(work_profile=work, interval_s=0.1, timeline_path=str(timeline),
                    console=Console(file=output, width=200, highlight=False))
    text = output.getvalue()
    assert code == 0, text
    for title in ("order-fulfillment: per-request summary", "access-request: per-request summary",
                  "new-user-audit: per-request summary"):
        assert title in text
    for request_id in ("ord-1001", "ord-2001", "ord-2002", "ord-2003", "ord-2004", "ord-2005",
                       "acc-3001", "acc-3002", "acc-3003", "usr-5001", "usr-5002"):
        assert request_id in text
    assert text.count("COMPLETED") >= 6 and "REJECTED" in text and "AUDITED" in text
    assert "Access Granted" in text and "Access Denied" in text and "User Audit Completed" in text
    assert "invariants held for 11 requests" in text
    page = timeline.read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page and "ord-2004" in page and "acc-3001" in page


def test_demo_of_one_workflow(tmp_path):
    output = io.StringIO()
    code = run_demo(workflows=["access-request"], work_profile={}, interval_s=0, timeline_path=str(tmp_path / "t.html"),
                    console=Console(file=output, width=200, highlight=False))
    text = output.getvalue()
    assert code == 0, text
    assert "access-request: per-request summary" in text and "order-fulfillment" not in text
    assert "invariants held for 3 requests" in text
    assert "could use a model: risk (off here: rules only" in text  # and no model was called: no account here
