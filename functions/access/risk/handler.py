"""Lambda entry point of the risk agent: ``Access Requested`` -> ``Risk Accepted`` | ``Risk Too High``.

No table: the score depends on the request and ``functions/access/rules.json`` (resource sensitivity) only, and,
when its environment turns a model on (``REASONER=bedrock``, ``MODEL_ID``), on the model's advice, which may only
raise it (``logic.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from functions.access.risk.logic import ADVICE_TOOL, ADVICE_TOOL_DESCRIPTION, RiskAdvice, decide
from functions.access.rules import load_rules
from functions.common.agent import agent_function
from functions.common.clients import Clients
from functions.common.entry import lambda_handler
from functions.common.reasoner import reasoner_for
from functions.common.settings import Settings

NAME = "risk"


def build(settings: Settings, clients: Clients) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    reasoner = reasoner_for(NAME, settings, RiskAdvice, tool_name=ADVICE_TOOL,
                            tool_description=ADVICE_TOOL_DESCRIPTION)
    return agent_function(NAME, settings, clients, decide=partial(decide, rules=load_rules(), reasoner=reasoner))


handler = lambda_handler(build)
