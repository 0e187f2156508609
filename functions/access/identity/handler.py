"""Lambda entry point of the identity agent: ``Access Requested`` -> ``Identity Verified`` | ``Identity Rejected``.

Reads the directory table (logical name ``directory``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from functions.access.directory import DynamoDirectory
from functions.access.identity.logic import IdentityCheck
from functions.common.agent import agent_function
from functions.common.clients import Clients
from functions.common.entry import lambda_handler
from functions.common.settings import Settings

NAME = "identity"


def build(settings: Settings, clients: Clients) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    directory = DynamoDirectory(clients.dynamodb, settings.table("directory"))
    return agent_function(NAME, settings, clients, decide=IdentityCheck(directory).decide)


handler = lambda_handler(build)
