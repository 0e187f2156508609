"""The shared agent runner: one trigger event in, one agent result event out, for any workflow.

Every agent does the same around its own decision: validate the trigger's detail with the workflow's trigger
model from the manifest (invalid detail is a poison message naming the bad field), optionally sleep the
benchmark-only simulated work time, time the work, build the ``AgentResult`` detail from the manifest (the
outcome comes from the agent's ``ResultType``, never from the agent's say), stamp it with the digest of the
trigger version it acted on, and publish it with the agent's source. Only the decision differs:

- a pure ``decide(request) -> Decision``, or
- an ``act(request, finish) -> AgentOutput``, for an agent whose decision has a side effect and must be
  recorded with it: ``finish(decision)`` stamps the timings and builds the exact result that will be
  published, so the agent can store it and republish it verbatim on a retry.

``request`` is an instance of the workflow's trigger model. An agent with a side effect may also undo it
(``compensate(outcome)``) on the terminal detail-types the manifest lists in its ``compensate_on``, for its own
workflow's outcomes only (another workflow's outcome is logged and left alone).

A result over the claim-check threshold (``CLAIM_CHECK_THRESHOLD_BYTES``, 200 KB) is stored in the stack's
claim-check bucket and published as a reference (``functions.common.claim_check``); only without a claim-check
bucket does a result that cannot be published (over EventBridge's 256 KB entry limit, measured as EventBridge
measures it) become at once the agent's first failure result with that reason, not a retried message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from functions.common.claim_check import ClaimCheckStore
from functions.common.clients import Clients
from functions.common.consumer import (
    Correlation,
    QueueConsumer,
    RecordHandler,
    RetryBackoff,
    correlation_of,
    workflow_id_of,
)
from functions.common.dead_letters import DeadLetterSink, PoisonMessage

# Re-exported: agents written before decisions.py import these from here.
from functions.common.decisions import Act, Compensate, Decide
from functions.common.decisions import AgentOutput as AgentOutput
from functions.common.decisions import Decision as Decision
from functions.common.decisions import Finish as Finish
from functions.common.digest import trigger_digest
from functions.common.ids import result_idempotency_key
from functions.common.models import (
    MAX_REASON_CHARS,
    AgentResult,
    BusEvent,
    WorkflowOutcome,
    shortened,
    validate,
    validate_trigger,
)
from functions.common.moments import iso_ms, utc_now
from functions.common.observability import NAMESPACE, SERVICE, emit_metric, logger
from functions.common.publisher import Event, EventPublisher, EventTooLargeError
from functions.common.settings import Settings, SettingsError
from functions.common.spec import COORDINATOR_SOURCE, Agent, Manifest, Workflow

Clock = Callable[[], datetime]


# Measures an entry as a publisher without a claim-check store would (the 256 KB limit), sending nothing.
_WITHOUT_CLAIM_CHECKS = EventPublisher(client=None, bus_name="size-check")


def locate(agent_name: str, manifest: Manifest) -> tuple[Agent, Workflow]:
    """The manifest's agent of that name and the workflow it belongs to."""
    return manifest.agent(agent_name), manifest.workflow_of(agent_name)


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
        emit_metric(name, unit, value, {"service": self.service, "agent": self.agent}, self.namespace)


class AgentRunner:
    """Runs one agent's decision for one trigger event of its workflow and publishes the result."""

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
        self.act: Act = act or (lambda request, finish: finish(decide(request)))  # type: ignore[misc]
        self.decides = act is None  # what to name when the agent's code returns something else
        self.model = workflow.trigger_model  # ValueError: its id_field is not one of the model's fields
        self.work_ms = (simulated_work_ms or {}).get(agent.name)
        self.clock = clock
        self.sleep = sleep
        self.metrics = metrics or AgentMetrics(agent.name)

    def handle(self, event: BusEvent) -> AgentOutput:
        trigger = self.workflow.trigger.subscription
        if not trigger.matches(event.source, event.detail_type):
            raise PoisonMessage(
                f"agent {self.agent.name!r} handles {', '.join(trigger.detail_types)} "
                f"from {', '.join(trigger.sources)}, not {event.detail_type!r} from {event.source!r}"
            )
        try:
            request = validate_trigger(self.model, event.detail, event.detail_type)
        except PoisonMessage:
            self.metrics.poison()
            raise
        try:
            output = self._run(request, trigger_digest(event.detail))
            self.publisher.publish([self.event(output)])
        except Exception:
            self.metrics.error()
            raise
        # The request's id as the consumer's keys carry it (correlation_of), also where the runner is called alone.
        logger.info("agent result published", extra={
            "agent": self.agent.name, "result": output.detail_type, "reason": output.detail.get("reason"),
            "correlation_id": self.workflow_id(request),
        })
        return output

    def event(self, output: AgentOutput) -> Event:
        return Event(detail_type=output.detail_type, detail=output.detail, source=self.agent.source)

    def workflow_id(self, request: Any) -> str:
        return str(getattr(request, self.workflow.id_field))

    def _run(self, request: Any, digest: str | None = None) -> AgentOutput:
        started = self.clock()
        if self.work_ms:
            self.sleep(self.work_ms / 1000)

        produced: list[AgentOutput] = []

        def finish(decision: Decision) -> AgentOutput:
            if not isinstance(decision, Decision):
                # A programming error, the same on every retry: dead-lettered at once, saying what is wrong.
                what = "decide must return" if self.decides else "act must give finish()"
                raise PoisonMessage(f"agent {self.agent.name!r}: {what} a Decision, got {_kind(decision)}")
            if decision.reason is not None and not isinstance(decision.reason, str):
                raise PoisonMessage(f"agent {self.agent.name!r}: its Decision cannot be published: reason must be "
                                    f"text or None, got {_kind(decision.reason)}")
            try:
                output = self.result(request, decision, started, self.clock(), digest)
            except PoisonMessage:
                raise
            except (KeyError, ValueError, TypeError) as error:
                # A Decision the manifest or the result model refuses (a detail-type the agent does not emit, an
                # agent its result type may not ask for, a reason that is not text): the same on every retry.
                message = error.args[0] if isinstance(error, KeyError) and error.args else error
                raise PoisonMessage(f"agent {self.agent.name!r}: its Decision cannot be published: "
                                    f"{type(error).__name__}: {message}") from None
            produced.append(output)
            return output

        # The version of the trigger this run acts on, for an agent that stores its result (functions.common.digest).
        finish.trigger_digest = digest  # type: ignore[attr-defined]

        output = self.act(request, finish)
        if not isinstance(output, AgentOutput):
            raise PoisonMessage(f"agent {self.agent.name!r}: act must return an AgentOutput (what finish() "
                                f"returns, or one it stored), got {_kind(output)}")
        if produced and output is produced[-1]:  # not a stored result republished
            self.metrics.duration(output.detail["duration_ms"])
        return output

    def result(self, request: Any, decision: Decision, started: datetime, finished: datetime,
               digest: str | None = None, *, fallback: bool = False) -> AgentOutput:
        """The ``AgentResult`` detail of ``decision``; its outcome is the manifest's, never the agent's say.
        A result too large to publish becomes the agent's first failure result, naming its size."""
        result_type = self.agent.result(decision.detail_type)  # KeyError: not one of this agent's results
        undeclared = sorted(set(decision.asks_for) - set(result_type.may_ask_for))
        if undeclared:
            raise ValueError(f"{decision.detail_type!r} of agent {self.agent.name!r} asks for {', '.join(undeclared)}, "
                             "which its result type does not declare (may_ask_for in the manifest)")
        duration_ms = max(0.0, round((finished - started).total_seconds() * 1000, 3))
        workflow_id = self.workflow_id(request)
        reason = decision.reason
        if reason is not None and len(reason) > MAX_REASON_CHARS:
            logger.warning("the agent's reason is longer than a result carries: cut",
                           extra={"reason_chars": len(reason), "max_reason_chars": MAX_REASON_CHARS})
            reason = shortened(reason)
        detail = AgentResult(
            workflow=self.workflow.name,
            workflow_id=workflow_id,
            agent=self.agent.name,
            outcome=result_type.outcome.value,
            reason=reason,
            data=decision.data,
            started_at=iso_ms(started),
            finished_at=iso_ms(finished),
            duration_ms=duration_ms,
            idempotency_key=result_idempotency_key(workflow_id, self.agent.name, digest),
            trigger_digest=digest,
            asks_for=list(dict.fromkeys(decision.asks_for)),
        ).model_dump(mode="json")
        if not detail["asks_for"]:
            del detail["asks_for"]  # the usual case: results keep their shape
        output = AgentOutput(detail_type=decision.detail_type, detail=detail)
        try:
            # Measured as the publisher will, nothing stored or sent; a stand-in publisher without check()
            # (tests) is held to the 256 KB limit.
            getattr(self.publisher, "check", _WITHOUT_CLAIM_CHECKS.check)(self.event(output))
        except EventTooLargeError as error:
            failures = self.agent.failure_results
            if fallback or not failures:
                raise PoisonMessage(f"result cannot be published: {error}") from None
            logger.error("result too large to publish; publishing a failure result instead",
                         extra={"error": str(error)})
            return self.result(request, Decision(failures[0].detail_type,
                                                 reason=shortened(f"result too large to publish: {error}")),
                               started, finished, digest, fallback=True)
        return output


def _kind(value: Any) -> str:
    """``dict {...}`` / ``None`` / ``str '...'``: what agent code returned, for a dead letter's reason."""
    if value is None:
        return "None"
    text = repr(value)
    return f"{type(value).__name__} {text[:80] + '...' if len(text) > 80 else text}"


def dead_letter_sink(settings: Settings, clients: Clients, name: str) -> DeadLetterSink | None:
    if not settings.dead_letter_queue_url:
        return None
    return DeadLetterSink(clients.sqs, settings.dead_letter_queue_url, name)


def sqs_function(handle: RecordHandler, dead_letters: DeadLetterSink | None, concurrency: int = 1,
                 max_receive_count: int | None = None, claim_checks: ClaimCheckStore | None = None,
                 backoff: RetryBackoff | None = None,
                 correlation: Correlation = workflow_id_of) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda-style ``(event, context) -> partial batch response`` around a per-record handler;
    ``concurrency`` records of a batch are handled at once (settings.record_concurrency); claim-check
    references are resolved from ``claim_checks`` before ``handle`` sees the event; a failed record comes back
    after ``backoff``'s delay; ``correlation`` gives each record's log lines their ``correlation_id``
    (``consumer.QueueConsumer``)."""

    consumer = QueueConsumer(handle, dead_letters, concurrency=concurrency, max_receive_count=max_receive_count,
                             claim_checks=claim_checks, backoff=backoff, correlation=correlation)

    def function(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return consumer.consume(event, context)

    return function


def agent_function(name: str, settings: Settings, clients: Clients, *, decide: Decide | None = None,
                   act: Act | None = None, compensate: Compensate | None = None,
                   **runner_options: Any) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """An agent's whole Lambda function, from its manifest entry and its decision: the trigger goes to
    ``decide``/``act``, the compensating outcomes (``compensate_on``) to ``compensate``, anything else is a
    poison message naming what the agent handles. ``name`` must be the agent the function runs as (its
    ``AGENTBUS_FUNCTION``): a handler copied from another agent and still naming it fails here, at cold start."""
    if name != settings.function:
        raise SettingsError(f"{settings.function}: its handler builds agent {name!r}, but this function is agent "
                            f"{settings.function!r} of the manifest: name {settings.function!r} in its handler "
                            "(NAME in handler.py)")
    agent, workflow = locate(name, settings.manifest)
    claim_checks = ClaimCheckStore.for_function(settings, clients.s3)
    runner = AgentRunner(agent, workflow,
                         EventPublisher(clients.events, settings.event_bus_name, claim_checks=claim_checks),
                         decide=decide, act=act, simulated_work_ms=settings.simulated_work_ms, **runner_options)
    if agent.compensate_on and compensate is None:
        raise ValueError(f"agent {name!r} compensates on {', '.join(agent.compensate_on)}: give it compensate=")

    def route(event: BusEvent) -> None:
        if compensate and event.source == COORDINATOR_SOURCE and event.detail_type in agent.compensate_on:
            outcome = validate(WorkflowOutcome, event.detail)
            if outcome.workflow != workflow.name:
                # Another workflow's outcome of the same detail-type (its rule matches detail.workflow, and the
                # manifest refuses shared outcome detail-types; a rule deployed before either may still deliver
                # one): undoing this agent's side effect for it would undo a request of its own workflow that
                # happens to have the same id.
                logger.info("outcome of another workflow: not compensated", extra={
                    "agent": agent.name, "workflow": outcome.workflow, "workflow_id": outcome.workflow_id,
                    "detail_type": event.detail_type})
                return
            done = compensate(outcome)
            logger.info("compensation", extra={"workflow_id": outcome.workflow_id, "status": outcome.status,
                                               "done": done})
        else:
            runner.handle(event)

    return sqs_function(route, dead_letter_sink(settings, clients, agent.name),
                        concurrency=settings.record_concurrency, max_receive_count=settings.max_receive_count,
                        claim_checks=claim_checks, backoff=RetryBackoff(clients.sqs),
                        correlation=correlation_of(settings.manifest))
