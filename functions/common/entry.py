"""The Lambda entry point every function shares: built once per cold start, wrapped in Powertools.

On Lambda the wiring (settings, the manifest, the clients) is built when the handler module is imported, in the
init phase, which runs with a full vCPU burst and is not the first request's latency; a failure there is logged
and the first invocation tries again (and fails its records, which then retry and dead-letter as any failure).
Elsewhere (tests, the local runtime) it is built on first use, after the environment is set."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from functions.common.clients import Clients, default_clients
from functions.common.observability import logger, metrics, tracer
from functions.common.settings import Settings, settings

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def lambda_handler(build: Callable[[Settings, Clients], Handler]) -> Handler:
    """``handler = lambda_handler(build)``: settings and clients from the environment, wired on first use
    (tests set the environment first), then reused by every invocation of the execution environment.
    ``handler.reset()`` forgets the wiring, the settings and the clients (tests that change the environment)."""

    @cache
    def built() -> Handler:
        return build(settings(), default_clients())

    # clear_state: keys an agent's code appends on the main thread do not leak into the next invocation.
    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics
    @tracer.capture_lambda_handler
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        metrics.add_metric(name="RecordsReceived", unit=MetricUnit.Count, value=len(event.get("Records", [])))
        return built()(event, context)

    def reset() -> None:
        for cached in (built, settings, default_clients):
            cached.cache_clear()

    handler.reset = reset  # type: ignore[attr-defined]
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        try:
            built()
        except Exception:  # noqa: BLE001 - the first invocation builds again and fails its records with the error
            logger.exception("the function could not be wired in the init phase; the first invocation tries again")
    return handler
