"""The shipped manifest: every workflow agentbus runs, composed from each workflow's own folder.

Each workflow declares itself in ``functions/<workflow>/workflow.py`` (its trigger, agents, results, deadline,
outcomes, projection and tables) with the vocabulary of ``functions/common/spec.py``; this file only lists
them. Everything else is derived: the CDK rules, queues, functions and IAM (``infrastructure/``), the
coordinator's required-results sets, the local runtime's provisioning (``agentbus/local``) and the event
catalogue (``agentbus catalogue``).

Adding a workflow: a folder with its ``workflow.py``, models and agents, one line below, events and tests.
Adding an agent: one ``Agent`` entry in its workflow, one handler folder, one events file, tests.
No infrastructure or core code changes (see README "Add a workflow").
"""

from __future__ import annotations

from functions.access.workflow import ACCESS_REQUEST
from functions.access.workflow import TABLES as ACCESS_TABLES
from functions.common.spec import (  # noqa: F401 - re-exported: the vocabulary with the manifest
    AGENT_SOURCE_PREFIX,
    BUS_NAME,
    COORDINATOR_SOURCE,
    DEADLINE_DETAIL_TYPE,
    DEADLINE_SOURCE,
    Agent,
    Consumer,
    Manifest,
    Outcome,
    Outcomes,
    Parameter,
    Projection,
    ResultType,
    Subscription,
    Table,
    Trigger,
    Workflow,
    WorkflowStatus,
)
from functions.directory.workflow import NEW_USER_AUDIT
from functions.orders.workflow import ORDER_FULFILLMENT, ORDER_PLACED, PRODUCER_SOURCE  # noqa: F401
from functions.orders.workflow import TABLES as ORDER_TABLES

__all__ = [  # the vocabulary re-exported with the manifest, and the shipped workflows
    "AGENT_SOURCE_PREFIX",
    "BUS_NAME",
    "COORDINATOR_SOURCE",
    "DEADLINE_DETAIL_TYPE",
    "DEADLINE_SOURCE",
    "Agent",
    "Consumer",
    "Manifest",
    "Outcome",
    "Outcomes",
    "Parameter",
    "Projection",
    "ResultType",
    "Subscription",
    "Table",
    "Trigger",
    "Workflow",
    "WorkflowStatus",
    "MANIFEST", "ORDER_FULFILLMENT", "ORDER_PLACED", "PRODUCER_SOURCE", "ACCESS_REQUEST", "NEW_USER_AUDIT",
]

MANIFEST = Manifest(
    workflows=(ORDER_FULFILLMENT, ACCESS_REQUEST, NEW_USER_AUDIT),
    tables=(*ORDER_TABLES, *ACCESS_TABLES),
)
