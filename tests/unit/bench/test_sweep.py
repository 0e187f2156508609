"""The sweep's arithmetic: its arguments, a point's figures, the fit of cost against N, what results.json keeps."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from rich.console import Console

from agentbus.bench import REPO_ROOT, THREAD_ROLES, CallSnapshot, LevelRun, load_pricing
from agentbus.bench.sweep import (
    POINT_DETAIL_KEYS,
    POINT_KEYS,
    PointResult,
    describe_fit,
    fit,
    parse_agents,
    parse_size,
    parse_sizes,
    point_figures,
    print_sweep,
    shorten,
    size_label,
    sweep_fits,
    sweep_results,
)
from agentbus.bench.synthetic import synthetic_manifest


@pytest.mark.parametrize(("text", "size"), [
    ("1KB", 1024), ("100KB", 102_400), ("1MB", 1_048_576), ("1mb", 1_048_576), ("512", 512), ("2 KB", 2048),
    ("1.5KB", 1536), ("10B", 10),
])
def test_payload_sizes_are_bytes_or_kb_or_mb(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "KB", "1GB", "-1KB", "1 K B", "0", "9MB", "1e3"])
def test_a_bad_payload_size_is_refused_naming_it(text):
    with pytest.raises(ValueError, match=f"payload size {text!r}"):
        parse_size(text)


def test_comma_lists_of_sizes_and_agent_counts():
    assert parse_sizes("1KB,100KB,1MB") == [1024, 102_400, 1_048_576]
    assert parse_sizes("1KB, 1024") == [1024]  # each size once
    assert parse_agents("3,10,30") == [3, 10, 30]
    with pytest.raises(ValueError, match="payload sizes ','"):
        parse_sizes(",")
    for bad in ("3,x", "0", "100", "3,,10", "-3"):
        with pytest.raises(ValueError, match="agent count .* a whole number from 1 to 99"):
            parse_agents(bad)
    assert [size_label(s) for s in (1024, 102_400, 1_048_576, 1500)] == ["1 KB", "100 KB", "1 MB", "1500 B"]


def test_a_straight_line_fits_exactly_and_needs_no_quadratic_term():
    found = fit([3, 10, 30], [2 * n + 5 for n in (3, 10, 30)])
    assert found == {"slope": 2.0, "intercept": 5.0, "r2": 1.0, "points": 3}
    assert fit([3, 3], [1.0, 2.0]) is None  # one N: nothing to fit
    assert fit([3, 10], [11.0, 25.0])["slope"] == 2.0  # two points: the line only


def test_a_cost_growing_with_the_square_of_n_gets_its_quadratic_term():
    xs = [3, 10, 20, 30]
    found = fit(xs, [0.05 * n * n + n + 4 for n in xs])
    assert found["r2"] < 1
    quadratic = found["quadratic"]
    assert quadratic["a"] == pytest.approx(0.05) and quadratic["b"] == pytest.approx(1.0, abs=1e-3)
    assert quadratic["c"] == pytest.approx(4.0, abs=1e-3)
    assert quadratic["r2"] == 1.0 and quadratic["exact"] is False
    three = fit([3, 10, 30], [0.05 * n * n + n + 4 for n in (3, 10, 30)])
    assert three["quadratic"]["exact"] is True  # a parabola passes through any 3 points: said so
    assert describe_fit(three) == (
        f"cost per million ≈ {three['slope']:,.4f} × N − {abs(three['intercept']):,.4f} (r² {three['r2']:.4f}, "
        "3 points); quadratic fits better: 0.050000 × N² + 1.0000 × N + 4.0000 (r² 1.0000, exact through 3 points)")


def _point(agents, payload, cost, failures=()):
    figures = {"agents": agents, "payload_bytes": payload, "requests": 10, "completed": 0 if failures else 10,
               "write_units_per_request": 3.0 * agents, "api_calls_per_request": 5.0 + agents,
               "cost_per_million_usd": cost, "p50_ms": None if failures else 400.0}
    return PointResult(figures, list(failures))


def test_fits_are_per_payload_over_the_points_that_did_not_fail():
    points = [_point(3, 1024, 10.0), _point(10, 1024, 24.0), _point(30, 1024, 64.0),
              _point(3, 1_048_576, 11.0, ["1 × REJECTED: too large"]), _point(10, 1_048_576, 25.0)]
    fits = sweep_fits(points)
    assert list(fits) == ["1024"]  # the 1 MB size has one point left: nothing to fit
    assert fits["1024"]["slope"] == 2.0 and fits["1024"]["intercept"] == 4.0
    results = sweep_results(points, fits)
    assert [set(p) for p in results["sweep"]] == [set(POINT_KEYS)] * 5  # _point's figures have no details
    assert set(POINT_KEYS) == {"agents", "payload_bytes", "requests", "completed", "write_units_per_request",
                               "api_calls_per_request", "cost_per_million_usd", "p50_ms"}
    assert results["sweep_failures"] == [{"agents": 3, "payload_bytes": 1_048_576,
                                          "reasons": ["1 × REJECTED: too large"]}]
    assert results["sweep_fit"]["by_payload_bytes"] == fits
    console = Console(record=True, width=200)
    print_sweep(console, points, fits)
    text = console.export_text()
    assert "fit at 1 KB: cost per million ≈ 2.0000 × N + 4.0000 (r² 1.0000, 3 points)" in text
    assert "sweep 3 agents × 1 MB failed: 1 × REJECTED: too large" in text


def test_a_points_figures_come_from_its_calls_and_the_lambda_time_of_the_request_alone():
    manifest = synthetic_manifest(2)
    workflow = manifest.workflows[0]
    roles = {role: Counter() for role in THREAD_ROLES}
    roles["harness"].update({"events:PutEvents": 1})
    roles["function"].update({"events:PutEvents": 6, "dynamodb:UpdateItem": 8})
    roles["poller"].update({"sqs:ReceiveMessage": 4})
    calls = CallSnapshot(wire=Counter({"events:PutEvents": 7, "dynamodb:UpdateItem": 8, "sqs:ReceiveMessage": 4}),
                         by_role=roles, empty_receives=Counter(), put_entries=Counter({"function": 6}),
                         dynamodb=Counter({"UpdateItem@p-workflows": 8}))
    usage = {name: {"invocations": 2.0, "records": 2.0 if name != "coordinator" else 6.0, "busy_ms": 1000.0,
                    "redelivered": 3 if name == "coordinator" else 0}
             for name in ("sweep-agent-01", "sweep-agent-02", "coordinator")}
    run = LevelRun("parallel", 2, [300.0, 500.0], [], 0.0, 1.0, Counter({"COMPLETED": 2}), [], calls, usage,
                   workflow=workflow.name, ids=["a", "b"])
    quiet = LevelRun("parallel", 1, [250.0], [], 0.0, 1.0, Counter({"COMPLETED": 1}), [], calls,
                     {name: {"invocations": 1.0, "records": 1.0, "busy_ms": 10.0} for name in usage})
    prices = load_pricing()["prices"]
    figures = point_figures(2, 1024, run, quiet, {"workflows": "p-workflows"},
                            {"workflows": 2000}, prices, workflow, manifest)
    assert figures == {"agents": 2, "payload_bytes": 1024, "requests": 2, "completed": 2,
                       "write_units_per_request": 8.0,  # 4 updates per request at 2 units each
                       "api_calls_per_request": 9.0,  # (7 + 8 + 4 - the harness's PutEvents) / 2
                       "api_calls_by_operation": {"events:PutEvents": 3.0, "dynamodb:UpdateItem": 4.0,
                                                  "sqs:ReceiveMessage": 2.0},
                       "records_redelivered_per_request": 1.5,  # 3 records received again, for 2 requests
                       "cost_per_million_usd": figures["cost_per_million_usd"], "p50_ms": 400.0}
    # Per request: 8 write units, 3 PutEvents entries, 2 receives + 5 deliveries as SQS requests, 3 invocations,
    # 5 records of 10 ms each (the request alone's time, not the run's 500 ms) at 256 MB
    expected = (8 * 6.25e-7 + 3 * 1e-6 + 7 * 4e-7 + 3 * 2e-7 + 5 * 0.01 * 0.25 * prices["lambda_gb_s"]) * 1e6
    assert figures["cost_per_million_usd"] == pytest.approx(expected, abs=1e-3)
    rejected = LevelRun("parallel", 1, [250.0], [], 0.0, 1.0, Counter({"REJECTED": 1}), [], calls, usage)
    failed = point_figures(2, 300_000, rejected, None, {}, {}, prices, workflow, manifest)
    assert failed["completed"] == 0 and failed["p50_ms"] is None  # no latency for a point that failed


def test_reasons_are_shortened_to_their_first_clause():
    assert shorten("a: too large; b: too large") == "a: too large (and more)"
    assert shorten("x" * 400, limit=10) == "x" * 9 + "…"
    assert shorten("fine") == "fine"


def test_the_committed_results_carry_a_sweep_and_its_fit():
    results = json.loads((REPO_ROOT / "bench" / "results.json").read_text())
    points = results["sweep"]
    assert points and all(set(POINT_KEYS) <= set(p) <= set(POINT_KEYS) | set(POINT_DETAIL_KEYS) for p in points)
    assert {p["agents"] for p in points} >= {3, 10} and {p["payload_bytes"] for p in points} >= {1024}
    assert results["sweep_fit"]["by_payload_bytes"]
    failed = {(f["agents"], f["payload_bytes"]) for f in results["sweep_failures"]}
    for point in points:  # a point either completed every request or is listed with its reasons
        assert point["completed"] == point["requests"] or (point["agents"], point["payload_bytes"]) in failed
    assert results["durable_functions_cost_per_million_usd"] > 0
