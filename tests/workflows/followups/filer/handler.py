"""Lambda entry point of the ``filer`` agent: ``Report Completed`` -> ``Report Filed``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from functions.common.agent import Decision, agent_function
from functions.common.clients import Clients
from functions.common.entry import lambda_handler
from functions.common.settings import Settings
from tests.workflows.followups.workflow import ReportCompleted


def file(report: ReportCompleted) -> Decision:
    return Decision("Report Filed", data={"filed": report.report_id})


def build(settings: Settings, clients: Clients) -> Callable[[dict, Any], dict]:
    return agent_function("filer", settings, clients, decide=file)


handler = lambda_handler(build)
