"""What the CLI says about models (functions/common/reasoner.py): which agents could use one (``agentbus demo``),
and what a result's model cost (``agentbus status``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from functions.common.spec import Agent


def could_use_a_model(agents: Iterable[Agent]) -> str | None:
    """One line naming the agents that declare a reasoner (None when none does)."""
    names = [agent.name for agent in agents if agent.reasoner is not None]
    if not names:
        return None
    return (f"could use a model: {', '.join(names)} (off here: rules only; on AWS: make deploy "
            "ARGS=\"-c reasoner=bedrock -c model_id=...\")")


def model_usage(view: dict[str, Any]) -> list[str]:
    """One line per result that consulted a model: which, its tokens, and whether its answer was used."""
    lines = []
    for agent, result in sorted((view.get("results") or {}).items()):
        model = (result.get("data") or {}).get("reasoner") if isinstance(result, dict) else None
        if not isinstance(model, dict) or "input_tokens" not in model:
            continue
        used = "answer used" if model.get("used") else f"not used ({model.get('fallback')}): rules only"
        raised = f", raised the score by {model['raised_by']}" if model.get("raised_by") else ""
        lines.append(f"{agent}: model {model.get('model_id')}, {model['input_tokens']} input + "
                     f"{model.get('output_tokens', 0)} output tokens, {used}{raised}")
    return lines
