"""The sweep on the local stack, with small points: a synthetic workflow of 3 agents answering 1 KB each
completes, and so does one answering more than EventBridge accepts (300 KB each): its results travel as claim
checks (S3), which the point's API calls show. (A failed point's report: tests/unit/bench/test_sweep.py.)"""

from __future__ import annotations

import json

from rich.console import Console

from agentbus.bench import run_bench
from agentbus.bench.sweep import POINT_DETAIL_KEYS, POINT_KEYS


def test_a_sweep_measures_each_point_and_big_results_complete_through_the_claim_check(tmp_path):
    output = tmp_path / "results.json"
    output.write_text(json.dumps({"workflow": "kept", "cost_per_million_usd": 1.0}))  # the levels' figures
    console = Console(record=True, width=200)
    code = run_bench(agents=[3], payloads=[1024, 300 * 1024], sweep_requests=3, sweep_only=True,
                     output=str(output), console=console)
    assert code == 0
    results = json.loads(output.read_text())
    assert results["workflow"] == "kept" and results["cost_per_million_usd"] == 1.0  # only the sweep's keys change
    small, big = results["sweep"]
    assert set(small) == set(big) == set(POINT_KEYS) | set(POINT_DETAIL_KEYS)
    assert small["records_redelivered_per_request"] == 0 and small["api_calls_by_operation"]["events:PutEvents"] >= 4
    assert (small["agents"], small["payload_bytes"], small["requests"], small["completed"]) == (3, 1024, 3, 3)
    assert (big["agents"], big["payload_bytes"], big["requests"], big["completed"]) == (3, 300 * 1024, 3, 3)
    # Today's store: the trigger, 3 results, the finish and its publication each update the record (and more).
    assert small["write_units_per_request"] >= 6
    assert 10 <= small["api_calls_per_request"] <= 40
    assert small["cost_per_million_usd"] > 0 and small["p50_ms"] > 0
    # Each big result is put in S3 once and read back by the coordinator: more calls, and S3's price in the cost.
    assert big["api_calls_per_request"] >= small["api_calls_per_request"] + 3
    assert big["cost_per_million_usd"] > small["cost_per_million_usd"]
    assert results["sweep_failures"] == []
    assert "sweep: 3 agents × 300 KB: ok (3/3 completed)" in console.export_text()
