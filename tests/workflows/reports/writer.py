"""Lambda entry point of the ``writer`` agent: ``Report Requested`` -> ``Report Written`` with payload_bytes of text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from functions.common.agent import Decision, agent_function
from functions.common.clients import Clients
from functions.common.entry import lambda_handler
from functions.common.settings import Settings
from tests.workflows.reports.workflow import ReportRequested


def write(request: ReportRequested) -> Decision:
    return Decision("Report Written", data={"text": "r" * request.payload_bytes})


def build(settings: Settings, clients: Clients) -> Callable[[dict, Any], dict]:
    return agent_function("writer", settings, clients, decide=write)


handler = lambda_handler(build)
