"""The chart: each workflow's parallel and chained latency at each level, as an HTML page."""

from __future__ import annotations

from agentbus.bench import chart_series, write_chart


def _results():
    levels = [{"concurrency": 1, "p50_ms": 400.0, "p95_ms": 450.0, "chained": {"p50_ms": 900.0, "p95_ms": 950.0}},
              {"concurrency": 10, "p50_ms": 800.0, "p95_ms": 1200.0, "chained": {"p50_ms": 1500.0}},
              {"concurrency": 50}]  # a level without outcomes: no point drawn
    other = [{"concurrency": 1, "p50_ms": 300.0, "p95_ms": 310.0}]
    return {"workflow": "first-flow", "slowest_agent_ms": 300, "generated_at": "2026-12-01T00:00:00Z",
            "machine": {"cpu": "test cpu", "cores": 2},
            "workflows": {"first-flow": {"levels": levels, "work_profile_ms": {"a": 300}},
                          "second-flow": {"levels": other, "work_profile_ms": {}}}}


def test_series_per_workflow_mode_and_percentile_over_the_first_workflows_levels():
    levels, series = chart_series(_results())
    assert levels == [1, 10]
    assert series["first-flow parallel p50"] == [400.0, 800.0]
    assert series["first-flow chained p95"] == [950.0, None]  # not measured: a gap, not a zero
    assert series["second-flow parallel p50"] == [300.0, None]
    assert len(series) == 8


def test_the_html_chart_draws_each_series_and_names_the_machine(tmp_path):
    path = write_chart(tmp_path / "out" / "chart.html", _results())
    page = path.read_text()
    assert path.is_absolute() and page.startswith("<!doctype html>")
    assert page.count("<polyline") == 8
    assert "first-flow parallel p50: 400 ms" in page and "slowest agent (first-flow)" in page
    assert "test cpu, 2 cores" in page and "first-flow: a 300 ms" in page
