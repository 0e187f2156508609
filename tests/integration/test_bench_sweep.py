"""The sweep on the local stack, with small points: a synthetic workflow of 3 agents answering 1 KB each
completes; one answering more than EventBridge accepts is reported failed, with its reason, and the run goes on."""

from __future__ import annotations

import json

from rich.console import Console

from agentbus.bench import run_bench
from agentbus.bench.sweep import POINT_KEYS


def test_a_sweep_measures_each_point_and_reports_a_failing_one_with_its_reason(tmp_path):
    output = tmp_path / "results.json"
    output.write_text(json.dumps({"workflow": "kept", "cost_per_million_usd": 1.0}))  # the levels' figures
    console = Console(record=True, width=200)
    code = run_bench(agents=[3], payloads=[1024, 300 * 1024], sweep_requests=3, sweep_only=True,
                     output=str(output), console=console)
    assert code == 1  # a point failed: non-zero exit
    results = json.loads(output.read_text())
    assert results["workflow"] == "kept" and results["cost_per_million_usd"] == 1.0  # only the sweep's keys change
    small, big = results["sweep"]
    assert set(small) == set(big) == set(POINT_KEYS)
    assert (small["agents"], small["payload_bytes"], small["requests"], small["completed"]) == (3, 1024, 3, 3)
    # Today's store: the trigger, 3 results, the finish and its publication each update the record (and more).
    assert small["write_units_per_request"] >= 6
    assert 10 <= small["api_calls_per_request"] <= 40
    assert small["cost_per_million_usd"] > 0 and small["p50_ms"] > 0
    assert (big["payload_bytes"], big["completed"], big["p50_ms"]) == (300 * 1024, 0, None)
    (failure,) = results["sweep_failures"]
    assert (failure["agents"], failure["payload_bytes"]) == (3, 300 * 1024)
    assert any("REJECTED" in r and "result too large to publish" in r for r in failure["reasons"])
    text = console.export_text()
    assert "sweep 3 agents × 300 KB failed: 1 × REJECTED" in text
