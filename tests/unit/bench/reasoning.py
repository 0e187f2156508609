"""Agents that declare a reasoner, as the manifest will once ``Agent.reasoner`` lands (the bench reads it with
getattr, so it works before and after)."""

from __future__ import annotations

import dataclasses

from functions.common.spec import Agent


@dataclasses.dataclass(frozen=True)
class Reasoner:
    model_id: str | None = None


@dataclasses.dataclass(frozen=True)
class ReasoningAgent(Agent):
    """An agent as the manifest will declare one with a model (``Agent.reasoner``, landing separately)."""

    reasoner: Reasoner | None = None


def with_reasoners(workflow, *declared):
    """``workflow`` with its first agents declaring the reasoners given (the others unchanged)."""
    agents = tuple(ReasoningAgent(**{f.name: getattr(a, f.name) for f in dataclasses.fields(a) if f.name != "reasoner"},
                                  reasoner=r)
                   for a, r in zip(workflow.agents, declared, strict=False))
    return dataclasses.replace(workflow, agents=agents + workflow.agents[len(agents):])
