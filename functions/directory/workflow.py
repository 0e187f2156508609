"""The new-user audit: a standalone subscription. A security agent audits every ``User Created`` event in the
background and publishes its findings; nobody waits for it (no workflow record, no deadline, no outcome)."""

from __future__ import annotations

from functions.common.spec import (
                            AGENT_SOURCE_PREFIX,
                            Agent,
                            Outcome,
                            Parameter,
                            ResultType,
                            Subscription,
                            Trigger,
                            Workflow,
)

PRODUCER_SOURCE = "agentbus.directory"
USER_CREATED = Subscription(name="trigger", sources=(PRODUCER_SOURCE,), detail_types=("User Created",))

COMPANY_DOMAINS = Parameter("COMPANY_DOMAINS", "agentbus.example", "the company's e-mail domains, comma-separated",
                            context="company_domains", check="functions.directory.audit.logic:parse_domains")

NEW_USER_AUDIT = Workflow(
    name="new-user-audit",
    description="A new user is audited in the background: privileged groups, external e-mail, odd hours, creator.",
    trigger=Trigger(USER_CREATED, model="functions.directory.models:UserCreated", id_field="user_id"),
    samples=('events/user-created.json', 'events/user-created-privileged.json'),
    agents=(
        Agent(
            name="security-audit",
            simulated_work_ms=200,
            description="Audits a new user account and publishes its findings, each with a severity.",
            handler="functions.directory.audit.handler.handler",
            source=f"{AGENT_SOURCE_PREFIX}security-audit",
            tables=("directory",),
            read_only=("directory",),
            parameters=(COMPANY_DOMAINS,),
            results=(ResultType("User Audit Completed", Outcome.SUCCESS, "findings with severities; empty = clean"),),
        ),
    ),
)
