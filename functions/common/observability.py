"""Powertools Logger, Tracer and Metrics, created once and shared by every function, and ``emit_metric`` for a
metric with dimensions of its own."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "agentbus")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "agentbus")

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def emf_enabled() -> bool:
    """EMF lines on stdout are metrics only where CloudWatch Logs reads them: in Lambda. Elsewhere (the local
    runtime, the demo, tests) they are printed only when asked for with POWERTOOLS_METRICS_DISABLED=false."""
    if is_metrics_disabled():
        return False
    explicitly_enabled = os.environ.get("POWERTOOLS_METRICS_DISABLED", "").strip().lower() == "false"
    return explicitly_enabled or bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def emit_metric(name: str, unit: MetricUnit, value: float, dimensions: dict[str, str],
                namespace: str = NAMESPACE) -> None:
    """One metric as its own EMF record with exactly ``dimensions`` (``single_metric``): the shared ``metrics``
    set's dimensions are process-wide, so a per-agent or per-workflow dimension cannot go there (several agents
    run in one process locally; one coordinator serves every workflow)."""
    if not emf_enabled():  # single_metric prints even when metrics are disabled
        return
    with single_metric(name=name, unit=unit, value=value, namespace=namespace, default_dimensions=dimensions):
        pass
