"""Lambda entry point of the security-audit agent (folder ``audit``, agent name ``security-audit``):
``User Created`` -> ``User Audit Completed`` with its findings. A standalone subscriber: nothing waits for it.

Reads the directory table (logical name ``directory``) for the creator; parameter ``COMPANY_DOMAINS``
(comma-separated; default ``agentbus.example``) names the company's e-mail domains.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from functions.access.directory import DynamoDirectory
from functions.common.agent import agent_function
from functions.common.clients import Clients
from functions.common.entry import lambda_handler
from functions.common.settings import Settings
from functions.directory.audit.logic import SecurityAudit, parse_domains

NAME = "security-audit"


def build(settings: Settings, clients: Clients) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    directory = DynamoDirectory(clients.dynamodb, settings.table("directory"))
    audit = SecurityAudit(directory, company_domains=parse_domains(settings.parameter("COMPANY_DOMAINS")))
    return agent_function(NAME, settings, clients, decide=audit.decide)


handler = lambda_handler(build)
