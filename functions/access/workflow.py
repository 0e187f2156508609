"""The access-request workflow: an employee asks for access to a secure application; identity, policy and
risk judge it in parallel; the coordinator grants it when all three agree, and writes the request's row to
the access-requests table."""

from __future__ import annotations

from functions.access.risk.prompt import SYSTEM_PROMPT as RISK_PROMPT
from functions.common.spec import (
    AGENT_SOURCE_PREFIX,
    Agent,
    ExternalAgent,
    Outcome,
    Outcomes,
    Projection,
    Reasoner,
    ResultType,
    Subscription,
    Table,
    Trigger,
    Workflow,
)

PRODUCER_SOURCE = "agentbus.access"
# Where a manager's answer comes from (`agentbus approve|decline`, or any tool of the account's principals).
APPROVALS_SOURCE = "agentbus.approvals"
ACCESS_REQUESTED = Subscription(name="trigger", sources=(PRODUCER_SOURCE,), detail_types=("Access Requested",))

TABLES = (
    Table("directory", "employee_id", "the employee directory (role, status, admin rights)",
          seed_file="events/seed-directory.json", seeder="functions.access.directory:seed_items"),
    Table("access-requests", "request_id", "each access request's final record", retain=True),
)

ACCESS_REQUEST = Workflow(
    name="access-request",
    description="An employee's request for access is checked for identity, policy and risk, in parallel.",
    trigger=Trigger(ACCESS_REQUESTED, model="functions.access.models:AccessRequested", id_field="request_id"),
    deadline_s=120,
    outcomes=Outcomes(completed="Access Granted", rejected="Access Denied", timed_out="Access Request Timed Out",
                      cancelled="Access Request Cancelled"),
    projection=Projection(table="access-requests", function="functions.access.projection:request_item"),
    samples=("events/access-requested.json", "events/access-requested-contractor-admin.json",
             "events/access-requested-inactive.json"),
    # Waits for the manager (risk from 40 on asks for manager-approval): the demo approves it for them.
    people_samples=("events/access-requested-high-risk.json",),
    external=(
        ExternalAgent(
            name="manager-approval",
            source=APPROVALS_SOURCE,
            kind="a person (the employee's manager)",
            description="A manager approves or declines a request the risk agent found risky enough to ask.",
            wait_s=24 * 60 * 60,
            results=(
                ResultType("Access Approved", Outcome.SUCCESS, "a manager approved: who, and their note"),
                ResultType("Access Declined", Outcome.FAILURE, "a manager declined: who, and their note"),
            ),
        ),
    ),
    agents=(
        Agent(
            name="identity",
            simulated_work_ms=150,
            description="The employee exists in the directory and is active.",
            handler="functions.access.identity.handler.handler",
            source=f"{AGENT_SOURCE_PREFIX}identity",
            tables=("directory",),
            read_only=("directory",),
            results=(
                ResultType("Identity Verified", Outcome.SUCCESS, "the employee is in the directory and active"),
                ResultType("Identity Rejected", Outcome.FAILURE, "unknown employee, or inactive (since when)"),
            ),
        ),
        Agent(
            name="policy",
            simulated_work_ms=100,
            description="The employee's role permits the level asked on the resource (rules kept as data).",
            handler="functions.access.policy.handler.handler",
            source=f"{AGENT_SOURCE_PREFIX}policy",
            tables=("directory",),
            read_only=("directory",),
            results=(
                ResultType("Access Permitted", Outcome.SUCCESS, "the role allows the level asked on the resource"),
                ResultType("Access Not Permitted", Outcome.FAILURE,
                           "role, resource, level asked and level allowed; or an unknown resource or employee"),
            ),
        ),
        Agent(
            name="risk",
            simulated_work_ms=250,
            description="Scores level, resource sensitivity, request hour and justification.",
            handler="functions.access.risk.handler.handler",
            source=f"{AGENT_SOURCE_PREFIX}risk",
            # With a model on (-c reasoner=bedrock), each record may wait up to the time budget: the records of a
            # batch are consulted at once so that a batch fits in the function's timeout (20 s + 5 s <= 30 s).
            record_concurrency=10,
            reasoner=Reasoner(system_prompt=RISK_PROMPT, max_tokens=512, time_budget_s=20.0),
            results=(
                ResultType("Risk Accepted", Outcome.SUCCESS,
                           "score below the threshold, with its signals; from 40 on it asks for a manager's approval",
                           may_ask_for=("manager-approval",)),
                ResultType("Risk Too High", Outcome.FAILURE, "score at or above the threshold, with its signals"),
            ),
        ),
    ),
)
