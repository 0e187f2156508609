"""The manifest: the one declarative definition of every workflow agentbus runs.

Everything else is derived from it: the CDK rules, queues, functions and IAM
(``infrastructure/``), the coordinator's required-results set (``functions/coordinator``),
the local runtime's provisioning (``agentbus/local``) and the event catalogue (``agentbus catalogue``).

Adding an agent means: one ``Agent`` entry here, one handler folder under ``functions/``,
one events file under ``events/``, and tests. No infrastructure code changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

BUS_NAME = "agentbus"
PRODUCER_SOURCE = "agentbus.orders"
COORDINATOR_SOURCE = "agentbus.coordinator"
DEADLINE_SOURCE = "agentbus.deadline"
DEADLINE_DETAIL_TYPE = "Workflow Deadline Reached"
AGENT_SOURCE_PREFIX = "agentbus.agent."


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


class WorkflowStatus(StrEnum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    TIMED_OUT = "TIMED_OUT"

    @property
    def is_final(self) -> bool:
        return self is not WorkflowStatus.RUNNING


@dataclass(frozen=True)
class ResultType:
    """An event an agent may publish: its detail-type and whether it lets the workflow go on."""

    detail_type: str
    outcome: Outcome
    description: str = ""


@dataclass(frozen=True)
class Subscription:
    """One EventBridge rule: which events a consumer receives. ``pattern()`` is the exact rule pattern."""

    name: str
    sources: tuple[str, ...]
    detail_types: tuple[str, ...]

    def pattern(self) -> dict[str, Any]:
        # Only `source` and `detail-type` equality lists: both AWS and the local emulator evaluate
        # these identically (moto's matcher differs from AWS on arrays of objects and operators).
        return {"source": list(self.sources), "detail-type": list(self.detail_types)}

    def matches(self, source: str, detail_type: str) -> bool:
        return source in self.sources and detail_type in self.detail_types


@dataclass(frozen=True)
class Consumer:
    """Anything with a queue and a Lambda function: an agent or the coordinator.

    ``handler`` is the Lambda handler path relative to the repository root, which is also the root
    of the Lambda code asset (``functions.<name>.handler.handler``).
    """

    name: str
    handler: str
    source: str
    subscriptions: tuple[Subscription, ...]
    description: str = ""
    batch_size: int = 10
    max_batching_window_s: int = 0
    max_concurrency: int = 10
    timeout_s: int = 30
    memory_mb: int = 256
    max_receive_count: int = 5
    # Records of one batch processed at once (threads in one invocation); 1 = one after the other.
    record_concurrency: int = 1
    # Tables the function reads or writes, by logical name (see Manifest.tables).
    tables: tuple[str, ...] = ()
    schedules: bool = False

    @property
    def visibility_timeout_s(self) -> int:
        # AWS guidance for SQS event sources: at least 6x the function timeout.
        return self.timeout_s * 6


@dataclass(frozen=True)
class Agent(Consumer):
    results: tuple[ResultType, ...] = ()
    required: bool = True
    # Terminal detail-types on which this agent undoes its side effect (compensation).
    compensate_on: tuple[str, ...] = ()

    def result(self, detail_type: str) -> ResultType:
        for result in self.results:
            if result.detail_type == detail_type:
                return result
        raise KeyError(f"agent {self.name!r} does not emit {detail_type!r}")


@dataclass(frozen=True)
class Workflow:
    name: str
    trigger: Subscription
    id_field: str
    agents: tuple[Agent, ...]
    completed_detail_type: str
    rejected_detail_type: str
    timed_out_detail_type: str
    deadline_s: int = 300
    description: str = ""

    @property
    def terminal_detail_types(self) -> dict[WorkflowStatus, str]:
        return {
            WorkflowStatus.COMPLETED: self.completed_detail_type,
            WorkflowStatus.REJECTED: self.rejected_detail_type,
            WorkflowStatus.TIMED_OUT: self.timed_out_detail_type,
        }

    @property
    def required_agents(self) -> frozenset[str]:
        return frozenset(agent.name for agent in self.agents if agent.required)

    def agent(self, name: str) -> Agent:
        for agent in self.agents:
            if agent.name == name:
                return agent
        raise KeyError(f"unknown agent {name!r}; known: {', '.join(a.name for a in self.agents)}")

    def agent_for_result(self, source: str, detail_type: str) -> Agent | None:
        for agent in self.agents:
            if agent.source == source and any(r.detail_type == detail_type for r in agent.results):
                return agent
        return None

    @property
    def result_subscription(self) -> Subscription:
        return Subscription(
            name="results",
            sources=tuple(agent.source for agent in self.agents),
            detail_types=tuple(r.detail_type for agent in self.agents for r in agent.results),
        )

    @property
    def deadline_subscription(self) -> Subscription:
        return Subscription(name="deadline", sources=(DEADLINE_SOURCE,), detail_types=(DEADLINE_DETAIL_TYPE,))


@dataclass(frozen=True)
class Table:
    logical_name: str
    partition_key: str
    description: str
    retain: bool = False
    seed_file: str | None = None


@dataclass(frozen=True)
class Manifest:
    workflows: tuple[Workflow, ...]
    tables: tuple[Table, ...]
    bus_name: str = BUS_NAME
    coordinator: Consumer = field(default=None)  # type: ignore[assignment]

    def workflow(self, name: str) -> Workflow:
        for workflow in self.workflows:
            if workflow.name == name:
                return workflow
        raise KeyError(f"unknown workflow {name!r}")

    def workflow_for_trigger(self, source: str, detail_type: str) -> Workflow | None:
        return next((w for w in self.workflows if w.trigger.matches(source, detail_type)), None)

    def workflow_for_result(self, source: str, detail_type: str) -> tuple[Workflow, Agent] | None:
        for workflow in self.workflows:
            agent = workflow.agent_for_result(source, detail_type)
            if agent:
                return workflow, agent
        return None

    @property
    def agents(self) -> tuple[Agent, ...]:
        return tuple(agent for workflow in self.workflows for agent in workflow.agents)

    def agent(self, name: str) -> Agent:
        for agent in self.agents:
            if agent.name == name:
                return agent
        raise KeyError(f"unknown agent {name!r}; known: {', '.join(a.name for a in self.agents)}")

    @property
    def consumers(self) -> tuple[Consumer, ...]:
        """Every queue-fed function: the agents, then the coordinator."""
        return (*self.agents, self.coordinator)

    def consumer(self, name: str) -> Consumer:
        for consumer in self.consumers:
            if consumer.name == name:
                return consumer
        raise KeyError(f"unknown agent {name!r}; known: {', '.join(c.name for c in self.consumers)}")

    def subscriptions(self, consumer: Consumer) -> tuple[Subscription, ...]:
        """Every rule feeding ``consumer``'s queue, derived for agents' compensation and the coordinator."""
        subscriptions = list(consumer.subscriptions)
        if isinstance(consumer, Agent) and consumer.compensate_on:
            subscriptions.append(
                Subscription(name="compensation", sources=(COORDINATOR_SOURCE,), detail_types=consumer.compensate_on)
            )
        if consumer is self.coordinator:
            for workflow in self.workflows:
                prefix = "" if len(self.workflows) == 1 else f"{workflow.name}-"
                subscriptions += [
                    Subscription(f"{prefix}trigger", workflow.trigger.sources, workflow.trigger.detail_types),
                    Subscription(
                        f"{prefix}results",
                        workflow.result_subscription.sources,
                        workflow.result_subscription.detail_types,
                    ),
                    Subscription(
                        f"{prefix}deadline",
                        workflow.deadline_subscription.sources,
                        workflow.deadline_subscription.detail_types,
                    ),
                ]
        return tuple(subscriptions)

    def rules(self) -> list[tuple[Consumer, Subscription]]:
        return [(consumer, sub) for consumer in self.consumers for sub in self.subscriptions(consumer)]


ORDER_PLACED = Subscription(name="trigger", sources=(PRODUCER_SOURCE,), detail_types=("Order Placed",))

ORDER_FULFILLMENT = Workflow(
    name="order-fulfillment",
    description="An order is checked for fraud, its items reserved and its shipping quoted, in parallel.",
    trigger=ORDER_PLACED,
    id_field="order_id",
    deadline_s=300,
    completed_detail_type="Order Completed",
    rejected_detail_type="Order Rejected",
    timed_out_detail_type="Order Timed Out",
    agents=(
        Agent(
            name="fraud",
            description="Scores the order: total against a limit, quantity and destination signals.",
            handler="functions.fraud.handler.handler",
            source=f"{AGENT_SOURCE_PREFIX}fraud",
            record_concurrency=10,
            subscriptions=(ORDER_PLACED,),
            results=(
                ResultType("Order Verified", Outcome.SUCCESS, "score below the threshold"),
                ResultType("Order Flagged", Outcome.FAILURE, "score at or above the threshold, with reasons"),
            ),
        ),
        Agent(
            name="inventory",
            description="Reserves every line atomically, or none; releases the reservation on rejection or time-out.",
            handler="functions.inventory.handler.handler",
            source=f"{AGENT_SOURCE_PREFIX}inventory",
            record_concurrency=10,
            subscriptions=(ORDER_PLACED,),
            results=(
                ResultType("Items Reserved", Outcome.SUCCESS, "every line reserved"),
                ResultType("Items Unavailable", Outcome.FAILURE, "a line could not be reserved; nothing reserved"),
            ),
            compensate_on=("Order Rejected", "Order Timed Out"),
            tables=("inventory",),
        ),
        Agent(
            name="shipping",
            description="Quotes shipping by destination zone and parcel weight.",
            handler="functions.shipping.handler.handler",
            source=f"{AGENT_SOURCE_PREFIX}shipping",
            record_concurrency=10,
            subscriptions=(ORDER_PLACED,),
            results=(
                ResultType("Shipping Quoted", Outcome.SUCCESS, "a carrier, price and delivery estimate"),
                ResultType("Shipping Unavailable", Outcome.FAILURE, "no carrier serves the destination"),
            ),
        ),
    ),
)

COORDINATOR = Consumer(
    name="coordinator",
    description="Gathers results per workflow and finalizes each exactly once.",
    handler="functions.coordinator.handler.handler",
    source=COORDINATOR_SOURCE,
    subscriptions=(),
    max_concurrency=20,
    # Its writes are conditional (one finisher, results counted once), so records of a batch can race safely.
    record_concurrency=10,
    tables=("workflows", "orders"),
    schedules=True,
)

TABLES = (
    Table("workflows", "workflow_id", "one record per workflow: status, results, timings"),
    Table("orders", "order_id", "the main database: each order's final record", retain=True),
    Table("inventory", "pk", "stock per SKU (`sku#…`) and reservations per order (`reservation#…`)",
          seed_file="events/seed-stock.json"),
)

MANIFEST = Manifest(workflows=(ORDER_FULFILLMENT,), tables=TABLES, coordinator=COORDINATOR)
