"""Lambda entry point shared by the three reviewers: the agent's name comes from its settings (the function it
runs as), its limit from its MAX_LINES parameter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from functions.common.agent import Decision, agent_function
from functions.common.clients import Clients
from functions.common.entry import lambda_handler
from functions.common.settings import Settings
from tests.workflows.reviews.models import ChangeProposed, line_count


def build(settings: Settings, clients: Clients) -> Callable[[dict, Any], dict]:
    name = settings.function
    limit = line_count(settings.parameter("MAX_LINES"))
    agent = settings.manifest.agent(name)
    approved, declined = (result.detail_type for result in agent.results)

    def decide(change: ChangeProposed) -> Decision:
        data = {"lines_changed": change.lines_changed, "max_lines": limit}
        if change.lines_changed <= limit:
            return Decision(approved, data=data)
        return Decision(declined, reason=f"{change.lines_changed} lines changed > {limit}", data=data)

    return agent_function(name, settings, clients, decide=decide)


handler = lambda_handler(build)
