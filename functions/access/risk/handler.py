"""Lambda entry point of the risk agent: ``Access Requested`` -> ``Risk Accepted`` | ``Risk Too High``.

No table: the score depends on the request and ``functions/access/rules.json`` (resource sensitivity) only.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from functions.access.risk.logic import decide
from functions.access.rules import load_rules
from functions.common.agent import agent_function
from functions.common.clients import Clients
from functions.common.entry import lambda_handler
from functions.common.settings import Settings

NAME = "risk"


def build(settings: Settings, clients: Clients) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    return agent_function(NAME, settings, clients, decide=partial(decide, rules=load_rules()))


handler = lambda_handler(build)
