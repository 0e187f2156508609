"""Typed models for every event detail on the bus (the public contracts in DESIGN.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
)

from functions.common.dead_letters import PoisonMessage
from functions.common.digest import integral_floats_as_ints
from functions.common.ids import WorkflowId

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]


def _one_line(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must be one line of text, without control characters (a newline, a tab)")
    return value


# Why an agent decided as it did, why a cancel was asked, a person's note: carried by the outcome event, copied into
# the main table's row (an outcome holds every failing agent's reason) and the workflow record, so bounded: an agent
# that explains itself at length (a model's answer) has its reason cut by the runner (``shortened``) and a result on
# the bus with a longer one is refused naming the field, where an unbounded one made the row too large to write
# (DynamoDB's 400 KB item) and the outcome was never published.
MAX_REASON_CHARS = 2048
Reason = Annotated[str, StringConstraints(max_length=MAX_REASON_CHARS)]
# An outcome's reason joins every failing agent's: bounded too (``shortened``), whatever the number of agents.
MAX_OUTCOME_REASON_CHARS = 8192
# ``started_at`` / ``finished_at`` of a result: ISO-8601 text, as the runner writes it.
Timestamp = Annotated[str, StringConstraints(max_length=64)]


def shortened(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """``text`` if it fits in ``limit`` characters, else its beginning and how long it was."""
    if len(text) <= limit:
        return text
    suffix = f" … [cut: {len(text):,} characters in all]"
    return text[: limit - len(suffix)] + suffix


# Who answered or cancelled: printed in reasons, traces and log lines, so one line of text.
Person = Annotated[NonEmpty, AfterValidator(_one_line)]

# The version of a trigger a result names: ``functions.common.digest`` gives 32 hex digits. It becomes part of a
# DynamoDB sort key (1,024 bytes at most, ``#`` separating its parts), so it is bounded and plain.
TriggerDigest = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]{1,64}$")]

def _in_utc(value: datetime) -> datetime:
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must be a time that exists in UTC (0001-01-01 to 9999-12-31): its offset moves it past "
                         "the calendar's first or last day") from None
    return value


# A moment with its offset (ISO-8601) that agents may turn into UTC: 0001-01-01T00:00:00+14:00 is a valid
# AwareDatetime whose UTC falls before year 1 (Python raises OverflowError converting it).
Instant = Annotated[AwareDatetime, AfterValidator(_in_utc)]

# A workflow id as a trigger model's id field (the rules: functions/common/ids.py).
WorkflowIdField = WorkflowId


class BusEvent(BaseModel):
    """The EventBridge envelope as delivered to an SQS target.

    Powertools' ``EventBridgeModel`` requires ``account``, which the local emulator omits, so this
    envelope keeps only what agentbus reads.
    """

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    id: str
    source: str
    detail_type: str = Field(alias="detail-type")
    time: str | None = None
    account: str | None = None
    region: str | None = None
    resources: list[str] = Field(default_factory=list)
    detail: dict[str, Any]
    replay_name: str | None = Field(default=None, alias="replay-name")
    # Set by the consumer when the detail was resolved from a claim-check reference (functions/common/
    # claim_check.py): that reference. Private, so no event on the bus can claim it.
    _claim_check: dict[str, Any] | None = PrivateAttr(default=None)

    @property
    def claim_check(self) -> dict[str, Any] | None:
        """The claim-check reference this event's detail was resolved from, or None."""
        return self._claim_check


class AgentResult(BaseModel):
    """Detail of every agent result event, whatever the workflow.

    ``trigger_digest`` names the version of the trigger the agent acted on (``functions.common.digest``): the
    coordinator counts a result only toward the version of the trigger it stored.
    """

    model_config = ConfigDict(extra="ignore")

    workflow: NonEmpty
    workflow_id: WorkflowId
    agent: NonEmpty
    outcome: Literal["success", "failure"]
    reason: Reason | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    started_at: Timestamp
    finished_at: Timestamp
    duration_ms: float = Field(ge=0)
    idempotency_key: NonEmpty
    trigger_digest: TriggerDigest | None = None
    # Agents this result adds to the workflow's required set (only those its ResultType's may_ask_for declares).
    asks_for: list[NonEmpty] = Field(default_factory=list, max_length=20)


class ExternalResult(BaseModel):
    """Detail of an external agent's result (a person approving or declining, another system answering).

    The outcome is the detail-type's (the manifest's ``ExternalAgent.results``). ``trigger_digest`` may name the
    version of the request the person saw (``agentbus approve`` sends it); without it the answer is for the
    version the workflow holds, which must have arrived.
    """

    model_config = ConfigDict(extra="ignore")

    workflow: NonEmpty
    workflow_id: WorkflowId
    agent: NonEmpty
    by: Person
    note: Reason | None = None
    trigger_digest: TriggerDigest | None = None


class CancelRequested(BaseModel):
    """Detail of ``Workflow Cancel Requested``: cancel a running workflow (a finished one stays as it is)."""

    model_config = ConfigDict(extra="ignore")

    workflow: NonEmpty
    workflow_id: WorkflowId
    by: Person
    reason: Reason | None = None


class DeadlineReached(BaseModel):
    """Detail of ``Workflow Deadline Reached``, sent by the workflow's one-time schedule."""

    model_config = ConfigDict(extra="ignore")

    workflow: NonEmpty
    workflow_id: NonEmpty


class WorkflowOutcome(BaseModel):
    """Detail of every terminal event (a coordinated workflow's ``Outcomes``: completed, rejected, timed out,
    cancelled). A workflow with a quorum (k of n) adds ``quorum``: ``needed``, ``agents``, ``agreed``,
    ``disagreed``, ``pending``.

    The workflow's own id field (the manifest's ``Trigger.id_field``, e.g. ``ticket_id``) is there
    too, beside ``workflow_id``, as an extra field: a consumer of one workflow's outcomes reads its own name.
    """

    model_config = ConfigDict(extra="allow")

    workflow: NonEmpty
    workflow_id: NonEmpty
    status: Literal["COMPLETED", "REJECTED", "TIMED_OUT", "CANCELLED"]
    reason: str | None = None
    results: dict[str, dict[str, Any]]
    missing: list[str] = Field(default_factory=list)
    timings: dict[str, Any]
    idempotency_key: NonEmpty


def describe_validation_error(error: Exception) -> str:
    """One line naming each bad field, e.g. ``items.0.quantity: Input should be greater than 0``."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return str(error)
    parts = []
    for item in errors():
        location = ".".join(str(part) for part in item.get("loc", ())) or "detail"
        message = item.get("msg")
        if item.get("type") == "string_too_short" and isinstance(item.get("input"), str) \
                and not item["input"].strip():
            message = "must not be blank"  # empty, or only whitespace (stripped first): not "at least 1 character"
        parts.append(f"{location}: {message}")
    return "; ".join(parts)


Model = TypeVar("Model", bound=BaseModel)


def validate(model: type[Model], detail: dict[str, Any], name: str | None = None) -> Model:
    """Parse an event detail into its model; invalid detail is a poison message naming the bad fields (and the
    event as ``name`` says, e.g. its detail-type, else the model's class name)."""
    try:
        return model.model_validate(detail)
    except ValidationError as error:
        raise PoisonMessage(f"invalid {name or model.__name__}: {describe_validation_error(error)}") from None


def validate_trigger(model: type[Model], detail: dict[str, Any], name: str | None = None) -> Model:
    """``validate`` of a trigger's detail as its version is taken (``digest.integral_floats_as_ints``): ``1.0``
    and ``1`` are one version of a request, so they must get one verdict, whichever copy a consumer sees first
    (a strict ``int`` field refused ``1.0``: one agent acted, another dead-lettered, on the same version)."""
    return validate(model, integral_floats_as_ints(detail), name)
