"""The coordinator's workflow metrics carry the workflow (black-box pass 10D, finding 5): they had only ``service``,
so an access request timing out and an order completing were one series, and a 24 h approval wait was averaged into
the orders' duration. The service-only series stays: the timed-out alarm reads it."""

from __future__ import annotations

import json

from functions.common.observability import metrics
from functions.coordinator.handler import PowertoolsWorkflowMetrics
from functions.manifest import WorkflowStatus


def _emitted(out: str) -> list[tuple[str, dict[str, str], float]]:
    found = []
    for line in out.splitlines():
        if line.startswith('{"_aws"'):
            blob = json.loads(line)
            [directive] = blob["_aws"]["CloudWatchMetrics"]
            for metric in directive["Metrics"]:
                dimensions = {name: blob[name] for name in directive["Dimensions"][0]}
                value = blob[metric["Name"]]
                found.append((metric["Name"], dimensions, value[0] if isinstance(value, list) else value))
    return found


def test_each_workflow_metric_is_emitted_per_workflow_and_in_the_shared_set(monkeypatch, capsys) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    sink = PowertoolsWorkflowMetrics(service="coordinator")
    sink.started("access-request")
    sink.finished("access-request", WorkflowStatus.TIMED_OUT, 120_000.0)
    per_workflow = _emitted(capsys.readouterr().out)
    assert per_workflow == [
        ("WorkflowsStarted", {"service": "coordinator", "workflow": "access-request"}, 1.0),
        ("WorkflowsTimedOut", {"service": "coordinator", "workflow": "access-request"}, 1.0),
        ("WorkflowDuration", {"service": "coordinator", "workflow": "access-request"}, 120_000.0),
    ]
    shared = metrics.serialize_metric_set()
    metrics.clear_metrics()
    assert {"WorkflowsStarted", "WorkflowsTimedOut", "WorkflowDuration"} <= set(shared) - {"_aws"}
    assert ["service"] in shared["_aws"]["CloudWatchMetrics"][0]["Dimensions"]


def test_nothing_is_printed_outside_lambda_unless_asked(monkeypatch, capsys) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    PowertoolsWorkflowMetrics().started("order-fulfillment")
    metrics.clear_metrics()
    assert _emitted(capsys.readouterr().out) == []
