"""The manifest's vocabulary: what a workflow, an agent, a subscription and a table are.

This module is the generic core's whole knowledge of workflows: it names none. A manifest (the shipped one is
``functions/manifest.py``; a test may bring its own) is a ``Manifest`` of ``Workflow`` entries, and every
reader derives what it needs from it:

- the CDK app (``infrastructure/``): rules, queues, DLQs, functions, IAM, alarms, tables;
- the coordinator (``functions/coordinator``): which events open a workflow, which results it waits for, which
  terminal event it publishes, what it writes to the workflow's main table (its *projection*);
- the agent runner (``functions/common/agent.py``): which trigger model an agent validates, which results it
  may publish;
- the local runtime (``agentbus/local``), the CLI, the event catalogue, the benchmark and the invariants.

Two kinds of workflow:

- **coordinated** (``outcomes`` given): a trigger, agents in parallel, one record per request, one outcome,
  a deadline, compensations and an optional projection into the workflow's own main table;
- **standalone** (``outcomes=None``): agents subscribed to an event, nothing else: no record, no deadline, no
  outcome, no table row. Nobody waits for them.

Code is named by import path (``"package.module:attribute"``), resolved when first used, so that reading the
manifest (the CDK app, the CLI) never imports an agent's code.

A Lambda function finds its manifest through the environment variable ``AGENTBUS_MANIFEST`` (an import path,
default ``functions.manifest:MANIFEST``), so a deployment of another manifest needs no code change.
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from pydantic import BaseModel

BUS_NAME = "agentbus"
COORDINATOR_SOURCE = "agentbus.coordinator"
DEADLINE_SOURCE = "agentbus.deadline"
DEADLINE_DETAIL_TYPE = "Workflow Deadline Reached"
# Any producer allowed by a workflow's ``cancel_sources`` asks the coordinator to cancel with this detail-type.
CANCEL_DETAIL_TYPE = "Workflow Cancel Requested"
# What ``agentbus cancel`` puts on the bus (every cancellable workflow allows it by default).
OPERATOR_SOURCE = "agentbus.operator"
# A recurring schedule asks the coordinator for a census of the workflows waiting for someone (metrics).
CENSUS_DETAIL_TYPE = "Workflow Census Due"
AGENT_SOURCE_PREFIX = "agentbus.agent."
DEFAULT_MANIFEST = "functions.manifest:MANIFEST"
MANIFEST_VARIABLE = "AGENTBUS_MANIFEST"
# The coordinator's own table: one record per coordinated workflow (layout: functions/coordinator/layout.py).
WORKFLOW_TABLE = "workflows"
# The workflow table's sparse index of the records that may wait for a person (an external agent): only their
# headers carry ``WAITING_ATTRIBUTE`` (the workflow's name), from the write that makes them wait until the finish.
# The census and `agentbus pending` query it instead of scanning a table that grows with every workflow run.
WAITING_INDEX = "waiting"
WAITING_ATTRIBUTE = "waits_in"
# The longest deadline or wait for a person (a workflow's deadline_s, an external agent's wait_s, and what
# `agentbus up --deadline/--approval-wait` and the context keys deadline_seconds/approval_wait_seconds may set):
# 366 days. Far beyond it the coordinator's deadline arithmetic overflows (datetime ends at year 9999) and every
# trigger would be dead-lettered; nobody means a workflow to wait longer than a year.
MAX_WAIT_S = 366 * 24 * 60 * 60
# The longest simulated work of one agent per record (`--work NAME=MS`): Lambda's 15-minute limit.
MAX_SIMULATED_WORK_MS = 15 * 60 * 1000
# Every agentbus queue takes SQS's largest message, set rather than left to the default (1 MiB in CloudFormation's
# schema today; 256 KiB before SQS raised its limit in 2025): EventBridge takes entries up to 1 MiB, and a queue on
# the old limit would refuse a trigger near 256 KiB once wrapped in its envelope, so the agent that would answer it
# REJECTED never saw it.
QUEUE_MAX_MESSAGE_BYTES = 1024 * 1024
# EventBridge refuses a rule whose event pattern is longer (PutRule, so the CloudFormation deploy of the rule, fails
# and the stack rolls back): "Event pattern size - 2,048 - Maximum size of an event pattern, in characters" (Amazon
# EventBridge quotas). Measured with a space after each separator (``Subscription.pattern_chars``).
EVENT_PATTERN_MAX_CHARS = 2048

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
# A table's logical name: its construct id and its functions' variable TABLE_<NAME> (Lambda takes a key of
# [a-zA-Z]([a-zA-Z0-9_])+; "-" becomes "_").
_TABLE_NAME = re.compile(r"^(?=.{2,64}$)[a-z][a-z0-9]*([_-][a-z0-9]+)*$")
# A DynamoDB index name: 3-255 of [a-zA-Z0-9_.-] (DynamoDB developer guide, naming rules).
_INDEX_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
# What Lambda sets itself and refuses in a function's configuration (Lambda developer guide, "Defined runtime
# environment variables"; the list CDK checks, aws-lambda Function.addEnvironment): a manifest parameter of one of
# these names fails the synth (CDK) or the deploy.
LAMBDA_RESERVED_VARIABLES = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
})
# Lambda's bounds on what the manifest sets per function (Lambda quotas; the SQS event source as CDK and Lambda take
# it; SQS's redrive policy): out of them the synth or the deploy fails, not naming the agent.
FUNCTION_DESCRIPTION_MAX = 256
MEMORY_MB = (128, 10240)
TIMEOUT_S = (1, 900)
MAX_RECEIVE_COUNT = (1, 1000)
MAX_CONCURRENCY = (2, 1000)
BATCH_SIZE = (1, 10)  # without a batching window
BATCH_SIZE_WINDOWED = (1, 10000)
MAX_BATCHING_WINDOW_S = (0, 300)
# A Bedrock model id (``anthropic.claude-3-5-haiku-20241022-v1:0``, ``amazon.nova-micro-v1:0``) or a
# cross-Region inference profile id: the same with a geography prefix (``us.``, ``eu.``, ``apac.``, ``global.``).
_MODEL_ID = re.compile(r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+(:[a-z0-9-]+){0,2}$")
INFERENCE_PROFILE_PREFIXES = ("us", "us-gov", "eu", "apac", "jp", "au", "ca", "global")
# What a function needs besides its reasoner's time budget: the connect timeout, the rules, publishing.
REASONER_MARGIN_S = 5.0


class ManifestRefused(ValueError):
    """What ``Manifest.check`` refuses: one line naming every problem (``invalid manifest: ...; ...``)."""


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


class WorkflowStatus(StrEnum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    TIMED_OUT = "TIMED_OUT"
    CANCELLED = "CANCELLED"

    @property
    def is_final(self) -> bool:
        return self is not WorkflowStatus.RUNNING


def resolve(path: str) -> Any:
    """``"package.module:attribute"`` -> the attribute (imported on first use)."""
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"an import path looks like 'package.module:attribute', got {path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"cannot import {module_name!r} (from {path!r}): {error}") from None
    try:
        value: Any = module
        for part in attribute.split("."):
            value = getattr(value, part)
    except AttributeError:
        raise ValueError(f"{module_name!r} has no attribute {attribute!r} (from {path!r})") from None
    return value


def handler_problem(handler: str) -> str | None:
    """What stops Lambda from loading ``handler`` (``package.module.function``, as the manifest names it), or None:
    its module must import and define that function. The same check the local runtime makes when it starts."""
    module_name, _, entry_point = handler.rpartition(".")
    if not module_name:
        return f"its handler {handler!r} (manifest) is not 'package.module.function'"
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        return f"its handler {handler!r} (manifest) cannot be imported ({type(error).__name__}: {error})"
    if not callable(getattr(module, entry_point, None)):
        return f"its handler {handler!r} (manifest) names {entry_point!r}, which {module_name} does not define"
    return None


@dataclass(frozen=True)
class ResultType:
    """An event an agent may publish: its detail-type and whether it lets the workflow go on.

    ``may_ask_for`` names the agents of the same workflow this result may add to the workflow's required set
    (its detail lists those it does ask for in ``asks_for``): e.g. a score over a threshold asks for a
    person's approval. Declared here so that the infrastructure and IAM still derive from the manifest; a
    result asking for an agent its type does not declare is refused.
    """

    detail_type: str
    outcome: Outcome
    description: str = ""
    may_ask_for: tuple[str, ...] = ()


@dataclass(frozen=True)
class Subscription:
    """One EventBridge rule: which events a consumer receives. ``pattern()`` is the exact rule pattern."""

    name: str
    sources: tuple[str, ...]
    detail_types: tuple[str, ...]
    # Only events whose detail names one of these workflows (``detail.workflow``); (): any. A compensation
    # takes only its own workflow's outcomes: another workflow's may carry the same detail-type.
    workflows: tuple[str, ...] = ()

    def pattern(self) -> dict[str, Any]:
        # Only equality lists of strings (`source`, `detail-type`, `detail.workflow`): both AWS and the local
        # emulator evaluate these identically (moto's matcher differs from AWS on arrays of objects and operators).
        # No sources: from any source (the coordinator receives forged approvals and cancels to keep them,
        # with the reason they were refused, in its dead-letter queue).
        pattern: dict[str, Any] = {"source": list(self.sources)} if self.sources else {}
        pattern["detail-type"] = list(self.detail_types)
        if self.workflows:
            pattern["detail"] = {"workflow": list(self.workflows)}
        return pattern

    def pattern_chars(self) -> int:
        """The pattern's length against ``EVENT_PATTERN_MAX_CHARS``, as JSON with a space after each ``,`` and
        ``:``: how CloudFormation writes the pattern it hands PutRule is not documented, so a pattern is measured
        as the roomier of the usual two forms (compact, it is shorter)."""
        return len(json.dumps(self.pattern(), ensure_ascii=False))

    def matches(self, source: str, detail_type: str, workflow: str | None = None) -> bool:
        """Whether the rule takes the event; ``workflow`` (its detail's, when known) is checked against
        ``workflows``."""
        return ((not self.sources or source in self.sources) and detail_type in self.detail_types
                and (not self.workflows or workflow is None or workflow in self.workflows))


# What every coordinated workflow's schedules put on the bus: one subscription of the coordinator for all
# (the census schedule uses the same source).
DEADLINES = Subscription(name="deadline", sources=(DEADLINE_SOURCE,),
                         detail_types=(DEADLINE_DETAIL_TYPE, CENSUS_DETAIL_TYPE))
# Cancel requests from any source: the coordinator checks each against its workflow's ``cancel_sources``.
CANCELS = Subscription(name="cancel", sources=(), detail_types=(CANCEL_DETAIL_TYPE,))


@dataclass(frozen=True)
class Parameter:
    """A setting of one function, declared in the manifest: its environment variable, its default, and the
    CDK context key that overrides it (``cdk deploy -c <context>=<value>``). ``check`` (an import path of a
    ``str -> object`` callable that raises ``ValueError``) validates it at synth time and at cold start."""

    env: str
    default: str
    description: str = ""
    context: str | None = None
    check: str | None = None

    def validate(self, value: str) -> None:
        if self.check:
            try:
                resolve(self.check)(value)
            except ValueError as error:
                raise ValueError(f"{self.env}: {error}") from None


@dataclass(frozen=True)
class Consumer:
    """Anything with a queue and a Lambda function: an agent or the coordinator.

    ``handler`` is the Lambda handler path relative to the repository root, which is also the root
    of the Lambda code asset (``functions.<workflow>.<agent>.handler.handler``).
    """

    name: str
    handler: str
    source: str
    # None: derived (an agent gets its workflow's trigger; the coordinator, triggers, results and deadlines);
    # () : subscribed to nothing (the benchmark's chained mode feeds the queue itself).
    subscriptions: tuple[Subscription, ...] | None = None
    description: str = ""
    batch_size: int = 10
    max_batching_window_s: int = 0
    max_concurrency: int = 10
    timeout_s: int = 30
    memory_mb: int = 256
    # AWS recommends at least 5 for a queue feeding Lambda: throttled batches return to the queue and count
    # as receives (Lambda developer guide, "Using Lambda with Amazon SQS", retries).
    max_receive_count: int = 5
    # Records of one batch processed at once (threads in one invocation); 1 = one after the other.
    record_concurrency: int = 1
    # Tables the function reads or writes, by logical name (see Manifest.tables).
    tables: tuple[str, ...] = ()
    # Of ``tables``, those it only reads: its role may read them but not write or delete (least privilege).
    read_only: tuple[str, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    schedules: bool = False

    def rounds(self, records: int) -> int:
        """How many rounds ``records`` records take in one invocation, ``record_concurrency`` at a time."""
        return -(-records // max(1, self.record_concurrency))

    @property
    def visibility_timeout_s(self) -> int:
        # AWS guidance for SQS event sources: at least 6x the function timeout.
        return self.timeout_s * 6

    @property
    def module(self) -> str:
        """The handler's module (``functions.<workflow>.<agent>.handler``)."""
        return self.handler.rpartition(".")[0]


@dataclass(frozen=True)
class Reasoner:
    """A language model an agent consults (``functions/common/reasoner.py``: Amazon Bedrock's Converse API).

    Off unless turned on at deploy (``-c reasoner=bedrock -c model_id=...``): without it the agent decides by
    its rules alone. ``model_id`` is the model or inference profile (None: the deploy's ``model_id``);
    ``time_budget_s`` bounds every attempt and retry together and stays below the function's timeout.
    """

    system_prompt: str
    model_id: str | None = None
    max_tokens: int = 1024
    temperature: float = 0.0
    time_budget_s: float = 20.0

    def problems(self, agent: Consumer) -> list[str]:
        """What is wrong with this reasoner on ``agent`` (its batch must fit in the function's timeout)."""
        problems: list[str] = []
        where = f"agent {agent.name!r}'s reasoner"
        if not self.system_prompt.strip():
            problems.append(f"{where}: system_prompt is empty")
        if self.model_id is not None:
            try:
                check_model_id(self.model_id)
            except ValueError as error:
                problems.append(f"{where}: {error}")
        if not 1 <= self.max_tokens <= 65536:
            problems.append(f"{where}: max_tokens must be 1..65536, got {self.max_tokens}")
        if not 0.0 <= self.temperature <= 1.0:
            problems.append(f"{where}: temperature must be 0..1, got {self.temperature}")
        # Records of a batch share one invocation: those processed one after the other each may spend the budget.
        rounds = agent.rounds(agent.batch_size)
        needed = self.time_budget_s * rounds + REASONER_MARGIN_S
        if self.time_budget_s <= 0:
            problems.append(f"{where}: time_budget_s must be > 0, got {self.time_budget_s}")
        elif needed > agent.timeout_s:
            problems.append(f"{where}: time_budget_s {self.time_budget_s:g} x {rounds} record(s) one after the other "
                            f"(batch_size {agent.batch_size} / record_concurrency {agent.record_concurrency}) + "
                            f"{REASONER_MARGIN_S:g} s must fit in timeout_s {agent.timeout_s}")
        return problems


def check_model_id(model_id: str) -> str:
    """A Bedrock model id or inference profile id, or ValueError naming the expected form."""
    if model_id.startswith("arn:"):
        raise ValueError(f"model_id {model_id!r}: an ARN (an application inference profile, a provisioned model) is "
                         "not supported, as the models behind it are not known at synth for the function's IAM; give "
                         "a model id or a cross-Region inference profile id (e.g. "
                         "us.anthropic.claude-3-5-haiku-20241022-v1:0)")
    if not _MODEL_ID.match(model_id) or len(model_id) > 200:
        raise ValueError(f"model_id {model_id!r} is not a Bedrock model id or inference profile id (e.g. "
                         "us.anthropic.claude-3-5-haiku-20241022-v1:0)")
    prefix, _, rest = model_id.partition(".")
    if prefix in INFERENCE_PROFILE_PREFIXES and "." not in rest:
        # No model provider is named like a Region prefix: "us.foo" is a profile without its model.
        raise ValueError(f"model_id {model_id!r}: an inference profile id names a Region prefix, then the model's "
                         f"provider and name ({prefix}.<provider>.<model>, e.g. "
                         "us.anthropic.claude-3-5-haiku-20241022-v1:0)")
    return model_id


def inference_profile_model(model_id: str) -> str | None:
    """The foundation model behind a cross-Region inference profile id (``us.x.y:0`` -> ``x.y:0``), or None
    when ``model_id`` is a foundation model id."""
    prefix, _, rest = model_id.partition(".")
    return rest if prefix in INFERENCE_PROFILE_PREFIXES and "." in rest else None


@dataclass(frozen=True)
class Agent(Consumer):
    results: tuple[ResultType, ...] = ()
    # False: its results are recorded but decide nothing, unless a counted result asks for it (``may_ask_for``).
    required: bool = True
    # How long the demo and the benchmark make this agent wait before deciding, standing in for the slow
    # downstream API a real agent calls (0: none). Never applied on AWS unless SIMULATED_WORK_MS is set.
    simulated_work_ms: int = 0
    # Terminal detail-types of its workflow on which this agent undoes its side effect (compensation).
    compensate_on: tuple[str, ...] = ()
    # A model the agent may consult (off by default); None: rules only.
    reasoner: Reasoner | None = None

    def result(self, detail_type: str) -> ResultType:
        for result in self.results:
            if result.detail_type == detail_type:
                return result
        raise KeyError(f"agent {self.name!r} does not emit {detail_type!r}")

    @property
    def failure_results(self) -> tuple[ResultType, ...]:
        return tuple(r for r in self.results if r.outcome is Outcome.FAILURE)


@dataclass(frozen=True)
class ExternalAgent:
    """An agent with no function: its results come from outside (a person approving, another system), put on
    the bus under ``source`` (the bus policy lets the account's principals use it and nobody else's; the
    coordinator refuses them from any other source). Its detail is an ``ExternalResult``
    (``functions.common.models``); its outcome is its detail-type's.

    ``required=False`` (the usual case): waited for only once a counted result asks for it; then the workflow
    waits at least ``wait_s`` from that moment (its deadline moves out), after which it times out as usual.
    ``kind`` says who answers, as ``agentbus status`` / ``pending`` show it ("approval by a person").
    """

    name: str
    source: str
    results: tuple[ResultType, ...]
    description: str = ""
    required: bool = False
    wait_s: int = 24 * 60 * 60
    kind: str = "a person"

    def result(self, detail_type: str) -> ResultType:
        for result in self.results:
            if result.detail_type == detail_type:
                return result
        raise KeyError(f"external agent {self.name!r} does not emit {detail_type!r}")

    @property
    def approval(self) -> ResultType | None:
        """What ``agentbus approve`` sends: its first success result."""
        return next((r for r in self.results if r.outcome is Outcome.SUCCESS), None)

    @property
    def refusal(self) -> ResultType | None:
        """What ``agentbus decline`` sends: its first failure result."""
        return next((r for r in self.results if r.outcome is Outcome.FAILURE), None)


@dataclass(frozen=True)
class Quorum:
    """A k-of-n completion rule: the workflow needs at least ``at_least`` successes among ``agents`` (which
    are then not required one by one), and fails as soon as that is out of reach."""

    agents: tuple[str, ...]
    at_least: int


@dataclass(frozen=True)
class Trigger:
    """What opens a workflow: the events (``subscription``), the Pydantic model of their detail (an import
    path) and the detail field holding the workflow id."""

    subscription: Subscription
    model: str
    id_field: str

    @property
    def model_class(self) -> type[BaseModel]:
        return cast("type[BaseModel]", resolve(self.model))

    def matches(self, source: str, detail_type: str) -> bool:
        return self.subscription.matches(source, detail_type)


@dataclass(frozen=True)
class Outcomes:
    """The terminal detail-types a coordinated workflow publishes, one per final status."""

    completed: str
    rejected: str
    timed_out: str
    # None: the workflow cannot be cancelled.
    cancelled: str | None = None

    def detail_type(self, status: WorkflowStatus) -> str:
        detail_type = {
            WorkflowStatus.COMPLETED: self.completed,
            WorkflowStatus.REJECTED: self.rejected,
            WorkflowStatus.TIMED_OUT: self.timed_out,
            WorkflowStatus.CANCELLED: self.cancelled,
        }[status]
        if detail_type is None:
            raise KeyError(f"no terminal detail-type for {status.value}")
        return detail_type

    @property
    def all(self) -> tuple[str, ...]:
        return (self.completed, self.rejected, self.timed_out, *((self.cancelled,) if self.cancelled else ()))


@dataclass(frozen=True)
class Projection:
    """Where a finished workflow is written: a table (logical name) and a function (import path) from the
    finished workflow (``functions.common.projection.FinishedWorkflow``) to that table's item."""

    table: str
    function: str


@dataclass(frozen=True)
class Index:
    """A global secondary index of a table (string keys, keys only projected)."""

    name: str
    partition_key: str
    sort_key: str | None = None


@dataclass(frozen=True)
class Table:
    logical_name: str
    partition_key: str
    description: str
    sort_key: str | None = None
    indexes: tuple[Index, ...] = ()
    # Kept when the stack is deleted, or when a change of its keys or logical name replaces it (CloudFormation
    # ``Retain``, deletion protection on). None: retained when it is some workflow's projection table (its main
    # database), not otherwise (``Manifest.retains``); False lets ``make destroy`` delete a projection table too.
    retain: bool | None = None
    # A JSON file of the table's first items, put by ``agentbus seed`` and by the local runtime, in the default
    # format of ``agentbus/seeds.py``, or in any format ``seeder`` (an import path) turns into items.
    seed_file: str | None = None
    seeder: str | None = None


@dataclass(frozen=True)
class Workflow:
    name: str
    trigger: Trigger
    agents: tuple[Agent, ...]
    # None: a standalone subscription (no record, no deadline, no outcome, nobody waits).
    outcomes: Outcomes | None = None
    deadline_s: int = 300
    projection: Projection | None = None
    description: str = ""
    # An import path of ``check(dynamodb, tables, statuses: {id: status}) -> [violation, ...]``: what this
    # workflow promises beyond the generic invariants (agentbus/invariants.py), e.g. a quantity conserved.
    invariants: str | None = None
    # Sample ``events/`` files (PutEvents entries) that ``agentbus demo`` puts for this workflow.
    samples: tuple[str, ...] = ()
    # Sample files of requests that wait for a person (an external agent): the demo puts them too and answers for
    # the person; the benchmark and the soak, which measure what the agents decide alone, leave them out.
    people_samples: tuple[str, ...] = ()
    # An import path of ``make(workflow, prefix, count) -> [PutEvents entry, ...]``: the benchmark's requests
    # for this workflow, ids ``<prefix>-00000`` on. None: copies of its first sample trigger under new ids.
    workload: str | None = None
    # Agents with no function (a person approving): their results come from outside.
    external: tuple[ExternalAgent, ...] = ()
    # A k-of-n completion rule over some of its agents.
    quorum: Quorum | None = None
    # Who may ask for a cancel (``Workflow Cancel Requested``) when the workflow can be cancelled
    # (``outcomes.cancelled``): ``agentbus cancel`` uses OPERATOR_SOURCE.
    cancel_sources: tuple[str, ...] = (OPERATOR_SOURCE,)

    @property
    def coordinated(self) -> bool:
        return self.outcomes is not None

    @property
    def cancellable(self) -> bool:
        return self.outcomes is not None and self.outcomes.cancelled is not None

    @property
    def participants(self) -> tuple[Agent | ExternalAgent, ...]:
        """Everyone whose results the coordinator gathers: the agents and the external agents."""
        return (*self.agents, *self.external)

    def participant(self, name: str) -> Agent | ExternalAgent:
        for participant in self.participants:
            if participant.name == name:
                return participant
        raise KeyError(f"unknown agent {name!r}; known: {', '.join(p.name for p in self.participants)}")

    def external_agent(self, name: str) -> ExternalAgent:
        for agent in self.external:
            if agent.name == name:
                return agent
        raise KeyError(f"unknown external agent {name!r}; known: {', '.join(a.name for a in self.external) or 'none'}")

    @property
    def id_field(self) -> str:
        return self.trigger.id_field

    @property
    def trigger_model(self) -> type[BaseModel]:
        """Its trigger model (imported), checked to hold its ``id_field``: the agent runner resolves it at cold
        start (and ``agentbus up``, which starts every agent); otherwise every request would be dead-lettered by
        every function, blaming the producer's event (``'X' object has no attribute ...``)."""
        model = self.trigger.model_class
        fields = getattr(model, "model_fields", None)
        if not isinstance(fields, dict):
            raise ValueError(f"workflow {self.name!r}: trigger model {self.trigger.model!r} is not a Pydantic model")
        if self.id_field not in fields:
            raise ValueError(f"workflow {self.name!r}: id_field {self.id_field!r} is not a field of its trigger model "
                             f"{model.__name__} ({self.trigger.model}); its fields: {', '.join(fields) or 'none'}")
        return model

    @property
    def terminal_detail_types(self) -> dict[WorkflowStatus, str]:
        if self.outcomes is None:
            return {}
        return {status: self.outcomes.detail_type(status) for status in WorkflowStatus
                if status.is_final and (status is not WorkflowStatus.CANCELLED or self.cancellable)}

    @property
    def required_agents(self) -> frozenset[str]:
        """Required from the start (a quorum's agents are counted by the quorum, not one by one)."""
        grouped = set(self.quorum.agents) if self.quorum else set()
        return frozenset(p.name for p in self.participants if p.required and p.name not in grouped)

    def may_ask_for(self, agent: str, detail_type: str) -> frozenset[str]:
        """The agents a result of that type may add to the required set."""
        try:
            return frozenset(self.participant(agent).result(detail_type).may_ask_for)
        except KeyError:
            return frozenset()

    def agent(self, name: str) -> Agent:
        for agent in self.agents:
            if agent.name == name:
                return agent
        raise KeyError(f"unknown agent {name!r}; known: {', '.join(a.name for a in self.agents)}")

    def agent_for_result(self, source: str, detail_type: str) -> Agent | ExternalAgent | None:
        for agent in self.participants:
            if agent.source == source and any(r.detail_type == detail_type for r in agent.results):
                return agent
        return None

    @property
    def result_subscription(self) -> Subscription:
        """The results of its agents with a function (external agents': ``external_result_subscription``)."""
        return Subscription(
            name="results",
            sources=tuple(agent.source for agent in self.agents),
            detail_types=tuple(dict.fromkeys(r.detail_type for agent in self.agents for r in agent.results)),
        )

    @property
    def result_subscriptions(self) -> tuple[Subscription, ...]:
        """The coordinator's rules for its agents' results: ``result_subscription`` when its pattern fits in
        EventBridge's ``EVENT_PATTERN_MAX_CHARS``, else groups of agents (sources and their detail-types), each
        pattern under the limit (``results``, ``results-2``, ...), filled in the agents' order so that an agent
        added at the end leaves the earlier rules as they were; an agent too large alone is split by detail-type."""
        whole = self.result_subscription
        if whole.pattern_chars() <= EVENT_PATTERN_MAX_CHARS:
            return (whole,)
        groups: list[tuple[tuple[str, ...], tuple[str, ...]]] = []  # (sources, detail-types)

        def fits(sources: tuple[str, ...], detail_types: tuple[str, ...]) -> bool:
            return Subscription("results", sources, detail_types).pattern_chars() <= EVENT_PATTERN_MAX_CHARS

        def add(source: str, detail_types: tuple[str, ...]) -> bool:
            """Into the last group, if it still fits."""
            if groups:
                grown = (tuple(dict.fromkeys((*groups[-1][0], source))),
                         tuple(dict.fromkeys((*groups[-1][1], *detail_types))))
                if fits(*grown):
                    groups[-1] = grown
                    return True
            return False

        for agent in self.agents:
            detail_types = tuple(dict.fromkeys(r.detail_type for r in agent.results))
            if add(agent.source, detail_types):
                continue
            if fits((agent.source,), detail_types):
                groups.append(((agent.source,), detail_types))
                continue
            for detail_type in detail_types:  # alone over the limit: its detail-types over several rules
                if not add(agent.source, (detail_type,)):
                    groups.append(((agent.source,), (detail_type,)))
        return tuple(Subscription("results" if number == 1 else f"results-{number}", sources, detail_types)
                     for number, (sources, detail_types) in enumerate(groups, start=1))

    @property
    def external_result_subscription(self) -> Subscription | None:
        """External agents' result detail-types from *any* source: a forged approval reaches the coordinator,
        which refuses it and keeps it with the reason (dead-letter queue). None without external agents."""
        if not self.external:
            return None
        return Subscription(name="external-results", sources=(),
                            detail_types=tuple(dict.fromkeys(r.detail_type for a in self.external for r in a.results)))


def coordinator_consumer(**overrides: Any) -> Consumer:
    """The coordinator: generic, the same for every manifest (its tables are added by ``Manifest``)."""
    settings: dict[str, Any] = {
        "name": "coordinator",
        "description": "Gathers results per workflow and finalizes each exactly once.",
        "handler": "functions.coordinator.handler.handler",
        "source": COORDINATOR_SOURCE,
        "max_concurrency": 20,
        # Its writes are conditional (one finisher, results counted once), so records of a batch can race safely.
        "record_concurrency": 10,
        "schedules": True,
    }
    settings.update(overrides)
    return Consumer(**settings)


@dataclass(frozen=True)
class Manifest:
    workflows: tuple[Workflow, ...]
    tables: tuple[Table, ...] = ()
    bus_name: str = BUS_NAME
    coordinator_settings: dict[str, Any] = field(default_factory=dict)
    # Where a Lambda function imports this manifest from (its AGENTBUS_MANIFEST).
    import_path: str = DEFAULT_MANIFEST

    def __post_init__(self) -> None:
        self.check()

    # -- validation: a wrong manifest fails where it is read (synth, cold start, CLI), naming the problem ----

    def check(self) -> None:
        from functions.common.settings import OWN_VARIABLES, TABLE_PREFIX  # settings reads this module

        own_variables, table_prefix = OWN_VARIABLES, TABLE_PREFIX
        problems: list[str] = []
        workflow_names = [w.name for w in self.workflows]
        consumers = [a for w in self.workflows for a in w.agents]
        table_names = [t.logical_name for t in self.tables]
        for kind, names in (("workflow", workflow_names), ("agent", [c.name for c in consumers]),
                            ("table", table_names)):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                problems.append(f"{kind} names must be unique: {', '.join(duplicates)} "
                                f"{'appears' if len(duplicates) == 1 else 'each appear'} more than once")
        for name in workflow_names + [c.name for c in consumers]:
            if not _NAME.match(name):
                problems.append(f"name {name!r}: 2-40 lowercase letters, digits and hyphens, starting with a letter")
        if "coordinator" in (c.name for c in consumers):
            problems.append("'coordinator' is the coordinator's name; an agent cannot use it")
        if WORKFLOW_TABLE in table_names:
            problems.append(f"table {WORKFLOW_TABLE!r} is the coordinator's own; give yours another name")
        problems += self._check_tables()
        known_tables = set(table_names)
        for workflow in self.workflows:
            if not workflow.agents:
                problems.append(f"workflow {workflow.name!r} has no agents")
            if workflow.projection and workflow.projection.table not in known_tables:
                problems.append(f"workflow {workflow.name!r} projects into unknown table "
                                f"{workflow.projection.table!r}")
            if workflow.projection and not workflow.coordinated:
                problems.append(f"workflow {workflow.name!r} is standalone (no outcomes): it cannot have a projection")
            if workflow.coordinated and not 0 < workflow.deadline_s <= MAX_WAIT_S:
                problems.append(f"workflow {workflow.name!r}: deadline_s must be > 0 and at most {MAX_WAIT_S} "
                                f"(366 days), got {workflow.deadline_s}")
            for agent in workflow.agents:
                for table in agent.tables:
                    if table not in known_tables:
                        problems.append(f"agent {agent.name!r} uses unknown table {table!r}")
                for table in agent.read_only:
                    if table not in agent.tables:
                        problems.append(f"agent {agent.name!r} reads only table {table!r}, which is not one of its "
                                        f"tables ({', '.join(agent.tables) or 'none'})")
                for parameter in agent.parameters:
                    if not _ENV_NAME.match(parameter.env):
                        problems.append(f"agent {agent.name!r}: parameter {parameter.env!r} is not an "
                                        "UPPER_CASE environment variable name")
                    elif parameter.env in LAMBDA_RESERVED_VARIABLES:
                        problems.append(f"agent {agent.name!r}: parameter {parameter.env!r} is reserved by Lambda "
                                        "(set by its runtime, refused in a function's configuration): name it "
                                        "otherwise")
                    elif parameter.env in own_variables or parameter.env.startswith(table_prefix):
                        problems.append(f"agent {agent.name!r}: parameter {parameter.env!r} is a variable agentbus "
                                        "sets itself (functions/common/settings.py): one would override the other; "
                                        "name it otherwise")
                envs = [p.env for p in agent.parameters]
                for env in sorted({e for e in envs if envs.count(e) > 1}):
                    problems.append(f"agent {agent.name!r}: parameter {env!r} is declared more than once")
                if not agent.results:
                    problems.append(f"agent {agent.name!r} declares no result types")
                if agent.reasoner is not None:
                    problems += agent.reasoner.problems(agent)
                if agent.compensate_on and not set(agent.compensate_on) <= set(workflow.terminal_detail_types.values()):
                    problems.append(f"agent {agent.name!r} compensates on {', '.join(agent.compensate_on)}, "
                                    f"not all terminal detail-types of workflow {workflow.name!r}")
            problems += _check_participants(workflow)
        problems += self._check_sources()
        problems += [problem for consumer in self.consumers for problem in _check_function(consumer)]
        if not problems:  # the rules derive from names checked above
            problems += self._check_patterns()
        triggers = [(s, d) for w in self.workflows if w.coordinated
                    for s in w.trigger.subscription.sources for d in w.trigger.subscription.detail_types]
        clashes = sorted({f"{d!r} from {s!r}" for s, d in triggers if triggers.count((s, d)) > 1})
        if clashes:
            problems.append(f"two coordinated workflows share a trigger: {', '.join(clashes)}")
        publishers: dict[str, list[str]] = {}
        for workflow in self.coordinated:
            for detail_type in dict.fromkeys(workflow.terminal_detail_types.values()):
                publishers.setdefault(detail_type, []).append(workflow.name)
        for detail_type, names in publishers.items():
            if len(names) > 1:
                # The coordinator publishes every outcome under one source: a compensation or a follow-on workflow
                # subscribed to one workflow's outcome would take the other's too.
                problems.append(f"workflows {' and '.join(repr(n) for n in names)} both publish the outcome "
                                f"{detail_type!r}: give each workflow outcome detail-types of its own")
        if problems:
            raise ManifestRefused("invalid manifest: " + "; ".join(problems))

    def _check_tables(self) -> list[str]:
        """Table and index names the stack and Lambda take: a table's logical name becomes its construct id and its
        functions' variable ``TABLE_<NAME>`` (two names must not make the same), an index name a GSI's."""
        from functions.common.settings import table_variable  # settings reads this module

        problems: list[str] = []
        for table in self.tables:
            if not _TABLE_NAME.match(table.logical_name):
                problems.append(f"table {table.logical_name!r}: 2-64 lowercase letters and digits, starting with a "
                                "letter, in words joined by single hyphens or underscores (its functions "
                                f"read it from {table_variable(table.logical_name)!r}, and Lambda takes a variable "
                                "name of letters, digits and _ only)")
        # Two names of the same words (their construct ids too: infrastructure/consumer.py construct_id).
        variables: dict[str, list[str]] = {}
        for table in self.all_tables:
            variables.setdefault(table_variable(table.logical_name), []).append(table.logical_name)
        for variable, names in variables.items():
            if len(set(names)) > 1:
                problems.append(f"tables {' and '.join(repr(n) for n in names)} both become variable {variable!r} "
                                "('-' and '_' are one): give one another name")
        for table in self.all_tables:
            names = [index.name for index in table.indexes]
            for index in table.indexes:
                if not _INDEX_NAME.match(index.name):
                    problems.append(f"table {table.logical_name!r}: index name {index.name!r} must be 3-255 letters, "
                                    "digits, '_', '.' or '-' (DynamoDB's naming rules)")
            for name in sorted({n for n in names if names.count(n) > 1}):
                problems.append(f"table {table.logical_name!r}: index {name!r} is declared more than once")
            if len(table.indexes) > 20:
                problems.append(f"table {table.logical_name!r} has {len(table.indexes)} indexes: DynamoDB takes "
                                "at most 20 global secondary indexes per table (its default quota)")
        return problems

    def _check_patterns(self) -> list[str]:
        """Every rule's event pattern within EventBridge's ``EVENT_PATTERN_MAX_CHARS``: past it the deploy fails
        (PutRule), after the tables, key and bus were made. The coordinator's results rule is split in time
        (``Workflow.result_subscriptions``); what the manifest declares itself (a trigger, a subscription, the
        outcomes compensated) cannot be."""
        problems: list[str] = []
        for consumer, subscription in self.rules():
            size = subscription.pattern_chars()
            if size > EVENT_PATTERN_MAX_CHARS:
                owner = ("the coordinator" if consumer.name == "coordinator"
                         else f"agent {consumer.name!r} (workflow {self.workflow_of(consumer.name).name!r})")
                problems.append(f"{owner}: rule {consumer.name}-{subscription.name}'s event pattern would be {size} "
                                f"characters, over EventBridge's limit of {EVENT_PATTERN_MAX_CHARS} (event pattern "
                                f"size quota): give it fewer or shorter sources and detail-types")
        return problems

    def _check_sources(self) -> list[str]:
        """Each function publishes under a source of its own, which the bus reserves to it (``reserved_sources``,
        ``infrastructure/bus.py``, the local endpoint's guard): a source shared by two agents, or taken from the
        core or from the producers of a trigger, would leave one of them unable to publish (every request then
        times out); a result must name one participant (``workflow_for_result``)."""
        problems: list[str] = []
        core = {COORDINATOR_SOURCE: "the coordinator's", DEADLINE_SOURCE: "the deadline and census schedules'",
                OPERATOR_SOURCE: "the operator's (agentbus cancel)"}
        owners: dict[str, str] = {}
        for workflow in self.workflows:
            for agent in workflow.agents:
                owner = f"agent {agent.name!r} (workflow {workflow.name!r})"
                if agent.source in core or agent.source.startswith("aws."):
                    problems.append(f"{owner} uses source {agent.source!r}, "
                                    f"{core.get(agent.source, 'AWS services')} own: give it its own "
                                    f"({AGENT_SOURCE_PREFIX}{agent.name})")
                elif agent.source in owners:
                    problems.append(f"{owners[agent.source]} and {owner} share source {agent.source!r}: each agent "
                                    f"publishes under a source of its own ({AGENT_SOURCE_PREFIX}<name>), which the bus "
                                    "reserves to its function")
                else:
                    owners[agent.source] = owner
        for workflow in self.workflows:
            for agent in workflow.agents:
                for trigger in self.workflows:
                    unpublished = [d for d in trigger.trigger.subscription.detail_types
                                   if d not in {r.detail_type for r in agent.results}]
                    if agent.source in trigger.trigger.subscription.sources and unpublished:
                        problems.append(f"agent {agent.name!r} (workflow {workflow.name!r}) uses source "
                                        f"{agent.source!r}, from which workflow {trigger.name!r}'s trigger "
                                        f"{', '.join(repr(d) for d in unpublished)} comes: the bus would reserve it "
                                        "to the agent, and no producer could publish the trigger")
            problems += self._check_trigger_sources(workflow)
            for external in workflow.external:
                owner = f"external agent {external.name!r} (workflow {workflow.name!r})"
                if external.source in core or external.source.startswith("aws."):
                    problems.append(f"{owner} uses source {external.source!r}, "
                                    f"{core.get(external.source, 'AWS services')} own")
                elif external.source in owners:
                    problems.append(f"{owner} uses source {external.source!r}, {owners[external.source]}'s own")
        publishers: dict[tuple[str, str], list[str]] = {}
        for workflow in self.workflows:
            for participant in workflow.participants:
                for result in participant.results:
                    publishers.setdefault((participant.source, result.detail_type), []).append(
                        f"{participant.name!r} (workflow {workflow.name!r})")
        for (source, detail_type), names in publishers.items():
            if len(names) > 1 and source not in owners:  # a function's shared source is named above
                problems.append(f"{' and '.join(names)} both publish {detail_type!r} from {source!r}: a result "
                                "must name the one agent that sent it")
        return problems

    def _check_trigger_sources(self, workflow: Workflow) -> list[str]:
        """A trigger from a source the core keeps for itself (black-box pass 10B, F5): the bus refuses the
        deadline's and the coordinator's to every producer (the demo then put 0 requests); people's answers and
        cancels are the account's only, the approvers' only with ``-c approver_arns``. The coordinator's source is
        a trigger only with a workflow's outcome detail-type: a workflow started by another's outcome."""
        outcomes = {d for w in self.coordinated for d in w.terminal_detail_types.values()}
        kept = {source: f"workflow {w.name!r}'s cancels" for w in self.coordinated if w.cancellable
                for source in w.cancel_sources}
        kept.update({external.source: f"external agent {external.name!r}'s answers (workflow {w.name!r})"
                     for w in self.workflows for external in w.external})
        kept[OPERATOR_SOURCE] = "the operator's cancels (agentbus cancel)"
        problems: list[str] = []
        subscription = workflow.trigger.subscription
        for source in subscription.sources:
            if source == COORDINATOR_SOURCE:
                others = [d for d in subscription.detail_types if d not in outcomes]
                if others:
                    problems.append(
                        f"workflow {workflow.name!r}'s trigger comes from {source!r} with "
                        f"{', '.join(repr(d) for d in others)}, which no workflow publishes as an outcome: the bus "
                        "reserves that source to the coordinator, so no producer could put the trigger (a workflow "
                        "started by another's outcome names one of that workflow's outcome detail-types)")
            elif source == DEADLINE_SOURCE:
                problems.append(f"workflow {workflow.name!r}'s trigger comes from {source!r}, the deadline and "
                                "census schedules' own: the bus reserves it to the scheduler, so no producer could "
                                "put the trigger; give it a source of its producers' own")
            elif source in kept:
                problems.append(f"workflow {workflow.name!r}'s trigger comes from {source!r}, the source of "
                                f"{kept[source]}: the bus lets only this account (only the approvers with -c "
                                "approver_arns) put it; give the trigger a source of its producers' own")
        return problems

    # -- lookups --------------------------------------------------------------------------------------

    def workflow(self, name: str) -> Workflow:
        for workflow in self.workflows:
            if workflow.name == name:
                return workflow
        raise KeyError(f"unknown workflow {name!r}; known: {', '.join(w.name for w in self.workflows)}")

    @property
    def coordinated(self) -> tuple[Workflow, ...]:
        return tuple(w for w in self.workflows if w.coordinated)

    def workflow_for_trigger(self, source: str, detail_type: str) -> Workflow | None:
        """The coordinated workflow this event opens, if any."""
        return next((w for w in self.coordinated if w.trigger.matches(source, detail_type)), None)

    def trigger_id_fields(self, source: str, detail_type: str) -> tuple[str, ...]:
        """The id fields of every workflow (coordinated or not) this event triggers, in manifest order: where a
        log line's correlation id is read from (``consumer.correlation_of``)."""
        return tuple(dict.fromkeys(w.id_field for w in self.workflows if w.trigger.matches(source, detail_type)))

    def workflow_for_result(self, source: str, detail_type: str) -> tuple[Workflow, Agent | ExternalAgent] | None:
        for workflow in self.coordinated:
            agent = workflow.agent_for_result(source, detail_type)
            if agent:
                return workflow, agent
        return None

    def workflow_of(self, agent_name: str) -> Workflow:
        for workflow in self.workflows:
            if any(agent.name == agent_name for agent in workflow.agents):
                return workflow
        raise KeyError(f"unknown agent {agent_name!r}; known: {', '.join(a.name for a in self.agents)}")

    @property
    def agents(self) -> tuple[Agent, ...]:
        return tuple(agent for workflow in self.workflows for agent in workflow.agents)

    def agent(self, name: str) -> Agent:
        for agent in self.agents:
            if agent.name == name:
                return agent
        raise KeyError(f"unknown agent {name!r}; known: {', '.join(a.name for a in self.agents)}")

    @property
    def all_tables(self) -> tuple[Table, ...]:
        """The manifest's tables and, when a workflow is coordinated, the coordinator's own."""
        own = (Table(WORKFLOW_TABLE, "workflow_id", "one record per coordinated workflow: status, results, timings",
                     sort_key="workflow", indexes=(Index(WAITING_INDEX, WAITING_ATTRIBUTE, "workflow_id"),)),
               ) if self.coordinated else ()
        return (*own, *self.tables)

    def retains(self, table: Table) -> bool:
        """Whether the stack keeps ``table`` when it is deleted or replaced: its ``retain``, or by default whether
        it is some workflow's projection table, the workflow's main database (black-box pass 9B, F8)."""
        if table.retain is not None:
            return table.retain
        return any(w.projection.table == table.logical_name for w in self.workflows if w.projection)

    def table(self, logical_name: str) -> Table:
        for table in self.all_tables:
            if table.logical_name == logical_name:
                return table
        raise KeyError(f"unknown table {logical_name!r}; known: {', '.join(t.logical_name for t in self.all_tables)}")

    @property
    def coordinator(self) -> Consumer | None:
        """The coordinator, with the tables it writes: its own and every projection's; None if nothing is
        coordinated (a manifest of standalone subscriptions only)."""
        if not self.coordinated:
            return None
        projections = tuple(dict.fromkeys(w.projection.table for w in self.coordinated if w.projection))
        return coordinator_consumer(tables=(WORKFLOW_TABLE, *projections), **self.coordinator_settings)

    @property
    def consumers(self) -> tuple[Consumer, ...]:
        """Every queue-fed function: the agents, then the coordinator."""
        coordinator = self.coordinator
        return (*self.agents, coordinator) if coordinator else self.agents

    def longest_open_s(self, deadline_s: int | None = None, external_wait_s: int | None = None) -> int:
        """The longest a coordinated workflow may stay open: its deadline, plus the longest wait of a person it
        may ask for (asked at the latest just before the deadline); the overrides are those of the deploy
        (``deadline_seconds``, ``approval_wait_seconds``) or of ``agentbus up``."""
        return max((((deadline_s or w.deadline_s)
                     + max((external_wait_s or e.wait_s for e in w.external), default=0)) for w in self.coordinated),
                   default=0)

    def import_problems(self) -> list[str]:
        """What of the code the manifest names cannot be loaded: each function's handler, and every import path
        (trigger models, projections, invariants, workloads, seeders, parameter checks). ``check`` leaves these to
        first use (a cold start, the CLI); ``cdk synth`` asks, so that a typo fails the synth, not every cold start
        on AWS."""
        problems = [f"function {consumer.name}: {problem}" for consumer in self.consumers
                    if (problem := handler_problem(consumer.handler))]
        paths = [(f"workflow {w.name}: trigger model", w.trigger.model) for w in self.workflows]
        paths += [(f"workflow {w.name}: projection", w.projection.function) for w in self.workflows if w.projection]
        paths += [(f"workflow {w.name}: invariants", w.invariants) for w in self.workflows if w.invariants]
        paths += [(f"workflow {w.name}: workload", w.workload) for w in self.workflows if w.workload]
        paths += [(f"table {t.logical_name}: seeder", t.seeder) for t in self.tables if t.seeder]
        paths += [(f"agent {a.name}: parameter {p.env} check", p.check) for a in self.agents for p in a.parameters
                  if p.check]
        for what, path in paths:
            try:
                resolve(path)
            except ValueError as error:
                problems.append(f"{what}: {error}")
        return problems

    def consumer(self, name: str) -> Consumer:
        for consumer in self.consumers:
            if consumer.name == name:
                return consumer
        raise KeyError(f"unknown agent {name!r}; known: {', '.join(c.name for c in self.consumers)}")

    @property
    def reserved_sources(self) -> dict[str, str]:
        """source -> the one consumer allowed to publish under it (the deadline source: the scheduler)."""
        owners = {consumer.source: consumer.name for consumer in self.consumers}
        if self.coordinated:
            owners[DEADLINE_SOURCE] = "scheduler"
        return owners

    def subscriptions(self, consumer: Consumer) -> tuple[Subscription, ...]:
        """Every rule feeding ``consumer``'s queue, derived for agents' compensation and the coordinator."""
        subscriptions = list(consumer.subscriptions or ())
        if isinstance(consumer, Agent):
            workflow = self.workflow_of(consumer.name)
            if consumer.subscriptions is None:
                subscriptions.append(workflow.trigger.subscription)
            if consumer.compensate_on:
                subscriptions.append(
                    Subscription(name="compensation", sources=(COORDINATOR_SOURCE,),
                                 detail_types=consumer.compensate_on, workflows=(workflow.name,))
                )
        elif consumer.name == "coordinator":
            coordinated = self.coordinated
            for workflow in coordinated:
                prefix = "" if len(coordinated) == 1 else f"{workflow.name}-"
                subscriptions.append(Subscription(f"{prefix}trigger", workflow.trigger.subscription.sources,
                                                  workflow.trigger.subscription.detail_types))
                # One rule, or several when one would pass EventBridge's pattern size (result_subscriptions).
                subscriptions += [Subscription(f"{prefix}{results.name}", results.sources, results.detail_types)
                                  for results in workflow.result_subscriptions]
                external = workflow.external_result_subscription
                if external is not None:
                    subscriptions.append(Subscription(f"{prefix}{external.name}", external.sources,
                                                      external.detail_types))
            subscriptions.append(DEADLINES)
            if any(workflow.cancellable for workflow in coordinated):
                subscriptions.append(CANCELS)
        return tuple(subscriptions)

    def rules(self) -> list[tuple[Consumer, Subscription]]:
        return [(consumer, sub) for consumer in self.consumers for sub in self.subscriptions(consumer)]


def _check_function(consumer: Consumer) -> list[str]:
    """What Lambda, SQS and CDK take of a consumer's settings: out of bounds, the synth failed deep in CDK (a jsii
    traceback not naming the agent) or, worse, the deploy (memory, maxReceiveCount)."""
    who = "the coordinator" if consumer.name == "coordinator" else f"agent {consumer.name!r}"
    problems: list[str] = []
    if len(consumer.description) > FUNCTION_DESCRIPTION_MAX:
        problems.append(f"{who}: description is {len(consumer.description)} characters; Lambda takes a function "
                        f"description of at most {FUNCTION_DESCRIPTION_MAX}")
    window = consumer.max_batching_window_s
    batch = BATCH_SIZE_WINDOWED if window else BATCH_SIZE
    for setting, value, (low, high), why in (
            ("memory_mb", consumer.memory_mb, MEMORY_MB, "Lambda's memory"),
            ("timeout_s", consumer.timeout_s, TIMEOUT_S, "Lambda's timeout, 15 minutes"),
            ("max_receive_count", consumer.max_receive_count, MAX_RECEIVE_COUNT, "SQS's redrive policy"),
            ("max_concurrency", consumer.max_concurrency, MAX_CONCURRENCY, "an SQS event source's maximum concurrency"),
            ("max_batching_window_s", window, MAX_BATCHING_WINDOW_S, "an SQS event source's batching window"),
            ("batch_size", consumer.batch_size, batch,
             "an SQS event source's batch size " + ("with a batching window" if window else
                                                    "without a batching window (max_batching_window_s)"))):
        if not low <= value <= high:
            problems.append(f"{who}: {setting} must be {low}..{high} ({why}), got {value}")
    return problems


def _check_participants(workflow: Workflow) -> list[str]:
    """External agents, results that ask for more, the quorum and cancels: what only a workflow can check."""
    problems: list[str] = []
    names = [p.name for p in workflow.participants]
    for agent in workflow.external:
        if not _NAME.match(agent.name):
            problems.append(f"name {agent.name!r}: 2-40 lowercase letters, digits and hyphens, starting with a letter")
        if names.count(agent.name) > 1:
            problems.append(f"workflow {workflow.name!r}: agent name {agent.name!r} appears twice")
        if not workflow.coordinated:
            problems.append(f"external agent {agent.name!r}: only a coordinated workflow can wait for one")
        if not agent.results:
            problems.append(f"external agent {agent.name!r} declares no result types")
        if not 0 < agent.wait_s <= MAX_WAIT_S:
            problems.append(f"external agent {agent.name!r}: wait_s must be > 0 and at most {MAX_WAIT_S} "
                            f"(366 days), got {agent.wait_s}")
    for participant in workflow.participants:
        for result in participant.results:
            unknown = sorted(set(result.may_ask_for) - set(names))
            if unknown:
                problems.append(f"{participant.name!r}'s {result.detail_type!r} may ask for unknown agent(s) "
                                f"{', '.join(unknown)} of workflow {workflow.name!r}")
            if participant.name in result.may_ask_for:
                problems.append(f"{participant.name!r}'s {result.detail_type!r} may not ask for itself")
    if workflow.quorum is not None:
        group = workflow.quorum.agents
        unknown = sorted(set(group) - set(names))
        if unknown:
            problems.append(f"workflow {workflow.name!r}: quorum names unknown agent(s) {', '.join(unknown)}")
        if len(set(group)) != len(group) or not 1 <= workflow.quorum.at_least <= len(group):
            problems.append(f"workflow {workflow.name!r}: quorum needs at least 1 and at most {len(set(group))} "
                            f"of {len(set(group))} distinct agents, got at_least={workflow.quorum.at_least}")
    if workflow.cancellable and not workflow.cancel_sources:
        problems.append(f"workflow {workflow.name!r} can be cancelled but names no cancel_sources")
    return problems


@cache
def load_manifest(path: str = DEFAULT_MANIFEST) -> Manifest:
    """The manifest at an import path (``AGENTBUS_MANIFEST``), checked."""
    manifest = resolve(path)
    if not isinstance(manifest, Manifest):
        raise ValueError(f"{path!r} is a {type(manifest).__name__}, not a Manifest")
    return manifest

