"""The sweep's synthetic workflow: a coordinated workflow of N agents, each answering with ``data`` of about
the size its trigger asks for (``payload_bytes``), generated at run time.

A function finds its manifest again through ``AGENTBUS_MANIFEST`` (an import path, ``Manifest.import_path``),
so the generated manifest of N agents has one: ``agentbus.bench.synthetic:AGENTS_<N>``, which this module
resolves on first use (a module ``__getattr__``). Every synthetic agent runs the one handler of this module,
which takes its agent's name from its settings (``Settings.function``); no agent declares simulated work, so
the figures are the orchestration's own.

The payload is a field of the trigger, not of the manifest: one stack per N serves every payload size.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from functions.common.agent import agent_function
from functions.common.clients import Clients
from functions.common.decisions import Decision
from functions.common.entry import lambda_handler
from functions.common.models import WorkflowIdField
from functions.common.settings import Settings
from functions.common.spec import (
    AGENT_SOURCE_PREFIX,
    Agent,
    Manifest,
    Outcome,
    Outcomes,
    ResultType,
    Subscription,
    Trigger,
    Workflow,
)

MODULE = __name__
MANIFEST_PREFIX = "AGENTS_"
MAX_AGENTS = 99
# A detail larger than EventBridge accepts (256 KB) makes the agent answer its failure result instead.
MAX_PAYLOAD_BYTES = 8 * 1024 * 1024
SOURCE = "agentbus.bench.sweep"
REQUESTED = "Sweep Requested"
ANSWERED = "Sweep Answered"
FAILED = "Sweep Failed"
DEFAULT_PAYLOAD_BYTES = 1024


class SweepRequested(BaseModel):
    """The synthetic trigger: which request, and how much data each agent answers with."""

    model_config = ConfigDict(extra="forbid")

    sweep_id: WorkflowIdField
    payload_bytes: int = Field(ge=0, le=MAX_PAYLOAD_BYTES)


def workflow_name(agents: int) -> str:
    return f"sweep-{agents}-agents"


def agent_name(index: int) -> str:
    return f"sweep-agent-{index:02d}"


def import_path(agents: int) -> str:
    return f"{MODULE}:{MANIFEST_PREFIX}{agents}"


@cache
def synthetic_manifest(agents: int) -> Manifest:
    """A manifest of one coordinated workflow of ``agents`` synthetic agents (1..99), all required, no
    tables of its own, no projection."""
    if not 1 <= agents <= MAX_AGENTS:
        raise ValueError(f"a synthetic workflow has 1 to {MAX_AGENTS} agents, not {agents}")
    trigger = Subscription(name="trigger", sources=(SOURCE,), detail_types=(REQUESTED,))
    members = tuple(
        Agent(
            name=agent_name(index),
            handler=f"{MODULE}.handler",
            source=f"{AGENT_SOURCE_PREFIX}{agent_name(index)}",
            description="synthetic sweep agent: answers with data of the size the trigger asks for",
            results=(ResultType(ANSWERED, Outcome.SUCCESS), ResultType(FAILED, Outcome.FAILURE)),
        )
        for index in range(1, agents + 1)
    )
    workflow = Workflow(
        name=workflow_name(agents),
        trigger=Trigger(trigger, model=f"{MODULE}:SweepRequested", id_field="sweep_id"),
        agents=members,
        outcomes=Outcomes(completed="Sweep Completed", rejected="Sweep Rejected", timed_out="Sweep Timed Out"),
        description=f"benchmark sweep: {agents} agents in parallel",
        workload=f"{MODULE}:default_requests",
    )
    return Manifest(workflows=(workflow,), import_path=import_path(agents))


def __getattr__(name: str) -> Manifest:
    """``AGENTS_<N>``: the synthetic manifest of N agents (how a function resolves its ``AGENTBUS_MANIFEST``)."""
    if name.startswith(MANIFEST_PREFIX) and name[len(MANIFEST_PREFIX):].isdigit():
        try:
            return synthetic_manifest(int(name[len(MANIFEST_PREFIX):]))
        except ValueError as error:
            raise AttributeError(str(error)) from None
    raise AttributeError(f"module {MODULE!r} has no attribute {name!r}")


def filler(size: int) -> str:
    """``size`` bytes of text."""
    return "x" * size


def decide(request: SweepRequested) -> Decision:
    """Every synthetic agent's decision: success, with ``data`` of about the requested size."""
    return Decision(ANSWERED, data={"data": filler(request.payload_bytes)})


def build(settings: Settings, clients: Clients) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    return agent_function(settings.function, settings, clients, decide=decide)


handler = lambda_handler(build)


def requests(workflow: Workflow, prefix: str, count: int, payload_bytes: int) -> list[dict[str, Any]]:
    """``count`` triggers of a synthetic workflow, ids ``<prefix>-00000``…, each asking for ``payload_bytes``."""
    if not 0 <= payload_bytes <= MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload must be 0..{MAX_PAYLOAD_BYTES} bytes, got {payload_bytes}")
    return [{"Source": SOURCE, "DetailType": REQUESTED,
             "Detail": json.dumps({"sweep_id": f"{prefix}-{index:05d}", "payload_bytes": payload_bytes})}
            for index in range(count)]


def default_requests(workflow: Workflow, prefix: str, count: int) -> list[dict[str, Any]]:
    """The workflow's ``workload``: triggers asking for ``DEFAULT_PAYLOAD_BYTES`` each."""
    return requests(workflow, prefix, count, DEFAULT_PAYLOAD_BYTES)
