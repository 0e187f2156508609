"""`make demo`: the sample orders reach their outcomes, the summary and the timeline are produced."""

from __future__ import annotations

import io

from rich.console import Console

from agentbus.demo import run_demo


def test_demo_runs_the_sample_orders_to_their_outcomes(tmp_path):
    output = io.StringIO()
    timeline = tmp_path / "timeline.html"
    code = run_demo(work_profile={"fraud": 50, "inventory": 20, "shipping": 30}, interval_s=0.1,
                    timeline_path=str(timeline), console=Console(file=output, width=200, highlight=False))
    text = output.getvalue()
    assert code == 0, text
    assert "per-order summary" in text
    for order_id in ("ord-1001", "ord-2001", "ord-2002", "ord-2003", "ord-2004", "ord-2005"):
        assert order_id in text
    assert text.count("COMPLETED") >= 5 and "REJECTED" in text
    assert "invariants held for 6 orders" in text
    page = timeline.read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page and "ord-2004" in page
