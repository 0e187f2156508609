"""What an agent's logic returns, with no I/O: the vocabulary its pure ``logic.py`` imports (the runner,
``functions.common.agent``, holds the adapters: boto3 clients, the publisher, the SQS batch consumer).

- a pure agent: ``decide(request) -> Decision``;
- an agent whose decision has a side effect: ``act(request, finish) -> AgentOutput``, where ``finish(decision)``
  builds the exact result the runner will publish, so the agent can store it with its side effect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from functions.common.models import WorkflowOutcome


@dataclass(frozen=True)
class Decision:
    """What an agent decided: one of its result detail-types, why, and the data that goes with it."""

    detail_type: str
    reason: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    # Agents this result adds to the workflow's required set (declared by its ResultType's ``may_ask_for``).
    asks_for: tuple[str, ...] = ()


@dataclass(frozen=True)
class AgentOutput:
    """The result event an agent publishes: its detail-type and its ``AgentResult`` detail."""

    detail_type: str
    detail: dict[str, Any]


Finish = Callable[[Decision], AgentOutput]
Decide = Callable[[Any], Decision]
Act = Callable[[Any, Finish], AgentOutput]
Compensate = Callable[[WorkflowOutcome], Any]
