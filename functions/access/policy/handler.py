"""Lambda entry point of the policy agent: ``Access Requested`` -> ``Access Permitted`` | ``Access Not Permitted``.

Reads the directory table (logical name ``directory``) for the employee's role; the rules are
``functions/access/rules.json``, shipped with the code and validated at cold start.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from functions.access.directory import DynamoDirectory
from functions.access.policy.logic import PolicyCheck
from functions.access.rules import load_rules
from functions.common.agent import agent_function
from functions.common.clients import Clients
from functions.common.entry import lambda_handler
from functions.common.settings import Settings

NAME = "policy"


def build(settings: Settings, clients: Clients) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    directory = DynamoDirectory(clients.dynamodb, settings.table("directory"))
    return agent_function(NAME, settings, clients, decide=PolicyCheck(directory, load_rules()).decide)


handler = lambda_handler(build)
