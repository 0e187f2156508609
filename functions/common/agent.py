"""The shared agent runner: one ``Order Placed`` in, one agent result event out.

Every agent does the same around its own decision: validate the trigger's detail (invalid detail is a
poison message naming the bad field), optionally sleep the benchmark-only simulated work time, time the
work, build the ``AgentResult`` detail from the manifest (the outcome comes from the agent's
``ResultType``) and publish it with the agent's source. Only the decision differs:

- a pure ``decide(order) -> Decision`` (fraud, shipping), or
- an ``act(order, finish) -> AgentOutput`` (inventory), for an agent whose decision has a side effect
  and must be recorded with it: ``finish(decision)`` stamps the timings and builds the exact result
  that will be published, so the agent can store it and republish it verbatim on a retry.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from functions.common.clients import Clients
from functions.common.consumer import RecordHandler, consume, validate
from functions.common.dead_letters import DeadLetterSink, PoisonMessage
from functions.common.models import AgentResult, BusEvent, OrderPlaced
from functions.common.observability import NAMESPACE, SERVICE, logger
from functions.common.publisher import Event, EventPublisher
from functions.common.settings import Settings
from functions.manifest import MANIFEST, Agent, Manifest, Workflow

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_ms(moment: datetime) -> str:
    """``2026-11-26T11:07:08.123Z``: ISO-8601, UTC, milliseconds."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Decision:
    """What an agent decided: one of its result detail-types, why, and the data that goes with it."""

    detail_type: str
    reason: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AgentOutput:
    """The result event an agent publishes: its detail-type and its ``AgentResult`` detail."""

    detail_type: str
    detail: dict[str, Any]


Finish = Callable[[Decision], AgentOutput]
Decide = Callable[[OrderPlaced], Decision]
Act = Callable[[OrderPlaced, Finish], AgentOutput]


def locate(agent_name: str, manifest: Manifest = MANIFEST) -> tuple[Agent, Workflow]:
    """The manifest's agent of that name and the workflow it belongs to."""
    for workflow in manifest.workflows:
        for agent in workflow.agents:
            if agent.name == agent_name:
                return agent, workflow
    raise KeyError(f"unknown agent {agent_name!r}; known: {', '.join(a.name for a in manifest.agents)}")


def emf_enabled() -> bool:
    """EMF lines on stdout are metrics only where CloudWatch Logs reads them: in Lambda. Elsewhere (the local
    runtime, the demo, tests) they are printed only when asked for with POWERTOOLS_METRICS_DISABLED=false."""
    if is_metrics_disabled():
        return False
    explicitly_enabled = os.environ.get("POWERTOOLS_METRICS_DISABLED", "").strip().lower() == "false"
    return explicitly_enabled or bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


class AgentMetrics:
    """Per-agent metrics with the dimension ``agent``.

    Each metric is its own EMF record (``single_metric``): several agents may run in one process (the
    local runtime), so the shared aggregated ``Metrics`` object's process-wide dimensions cannot carry
    the agent's name.
    """

    def __init__(self, agent: str, namespace: str = NAMESPACE, service: str = SERVICE) -> None:
        self.agent = agent
        self.namespace = namespace
        self.service = service

    def duration(self, milliseconds: float) -> None:
        self.emit("AgentDuration", MetricUnit.Milliseconds, milliseconds)

    def error(self) -> None:
        self.emit("AgentErrors", MetricUnit.Count, 1)

    def poison(self) -> None:
        self.emit("AgentPoisonMessages", MetricUnit.Count, 1)

    def emit(self, name: str, unit: MetricUnit, value: float) -> None:
        if not emf_enabled():
            return
        with single_metric(name=name, unit=unit, value=value, namespace=self.namespace,
                           default_dimensions={"service": self.service}) as metric:
            metric.add_dimension(name="agent", value=self.agent)


class AgentRunner:
    """Runs one agent's decision for one ``Order Placed`` event and publishes the result."""

    def __init__(
        self,
        agent: Agent,
        workflow: Workflow,
        publisher: EventPublisher,
        *,
        decide: Decide | None = None,
        act: Act | None = None,
        simulated_work_ms: Mapping[str, int] | None = None,
        clock: Clock = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        metrics: AgentMetrics | None = None,
    ) -> None:
        if (decide is None) == (act is None):
            raise ValueError("give the runner exactly one of decide= or act=")
        self.agent = agent
        self.workflow = workflow
        self.publisher = publisher
        self.act: Act = act or (lambda order, finish: finish(decide(order)))  # type: ignore[misc]
        self.work_ms = (simulated_work_ms or {}).get(agent.name)
        self.clock = clock
        self.sleep = sleep
        self.metrics = metrics or AgentMetrics(agent.name)

    def handle(self, event: BusEvent) -> AgentOutput:
        if not self.workflow.trigger.matches(event.source, event.detail_type):
            raise PoisonMessage(
                f"agent {self.agent.name!r} handles {', '.join(self.workflow.trigger.detail_types)} "
                f"from {', '.join(self.workflow.trigger.sources)}, not {event.detail_type!r} from {event.source!r}"
            )
        try:
            order = validate(OrderPlaced, event.detail)
        except PoisonMessage:
            self.metrics.poison()
            raise
        try:
            output = self._run(order)
            self.publisher.publish([Event(detail_type=output.detail_type, detail=output.detail,
                                          source=self.agent.source)])
        except Exception:
            self.metrics.error()
            raise
        logger.info("agent result published", extra={
            "agent": self.agent.name, "result": output.detail_type, "reason": output.detail.get("reason"),
        })
        return output

    def _run(self, order: OrderPlaced) -> AgentOutput:
        started = self.clock()
        if self.work_ms:
            self.sleep(self.work_ms / 1000)

        produced: list[AgentOutput] = []

        def finish(decision: Decision) -> AgentOutput:
            output = self.result(order, decision, started, self.clock())
            produced.append(output)
            return output

        output = self.act(order, finish)
        if produced and output is produced[-1]:  # not a stored result republished
            self.metrics.duration(output.detail["duration_ms"])
        return output

    def result(self, order: OrderPlaced, decision: Decision, started: datetime, finished: datetime) -> AgentOutput:
        """The ``AgentResult`` detail of ``decision``; its outcome is the manifest's, never the agent's say."""
        result_type = self.agent.result(decision.detail_type)  # KeyError: not one of this agent's results
        duration_ms = max(0.0, round((finished - started).total_seconds() * 1000, 3))
        detail = AgentResult(
            workflow=self.workflow.name,
            workflow_id=order.order_id,
            order_id=order.order_id,
            agent=self.agent.name,
            outcome=result_type.outcome.value,
            reason=decision.reason,
            data=decision.data,
            started_at=iso_ms(started),
            finished_at=iso_ms(finished),
            duration_ms=duration_ms,
            idempotency_key=f"{order.order_id}:{self.agent.name}",
        ).model_dump(mode="json")
        return AgentOutput(detail_type=decision.detail_type, detail=detail)


def dead_letter_sink(settings: Settings, clients: Clients, name: str) -> DeadLetterSink | None:
    if not settings.dead_letter_queue_url:
        return None
    return DeadLetterSink(clients.sqs, settings.dead_letter_queue_url, name)


def sqs_function(handle: RecordHandler, dead_letters: DeadLetterSink | None,
                 concurrency: int = 1) -> Callable[[dict, Any], dict]:
    """The Lambda-style ``(event, context) -> partial batch response`` around a per-record handler;
    ``concurrency`` records of a batch are handled at once (settings.record_concurrency)."""

    def function(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return consume(event, context, handle, dead_letters, concurrency=concurrency)

    return function
