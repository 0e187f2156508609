"""``report-filed``: a test-only standalone workflow started by another workflow's outcome (``report``'s
``Report Completed``, put by the coordinator), so that no sample can start it: ``agentbus demo`` must find its
requests on the bus. Never shipped; its manifest is ``tests/workflows/followups/manifest.py``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from functions.common.models import WorkflowIdField
from functions.common.spec import (
    AGENT_SOURCE_PREFIX,
    COORDINATOR_SOURCE,
    Agent,
    Outcome,
    ResultType,
    Subscription,
    Trigger,
    Workflow,
)
from tests.workflows.reports.workflow import REPORT


class ReportCompleted(BaseModel):
    model_config = ConfigDict(extra="ignore")

    report_id: WorkflowIdField


assert REPORT.outcomes is not None
REPORT_FILED = Workflow(
    name="report-filed",
    description="Files every completed report; nobody waits for it.",
    trigger=Trigger(Subscription(name="trigger", sources=(COORDINATOR_SOURCE,),
                                 detail_types=(REPORT.outcomes.completed,)),
                    model="tests.workflows.followups.workflow:ReportCompleted", id_field="report_id"),
    samples=("tests/workflows/followups/events/report-requested.json",),
    agents=(
        Agent(
            name="filer",
            description="Files the report.",
            handler="tests.workflows.followups.filer.handler.handler",
            source=f"{AGENT_SOURCE_PREFIX}filer",
            results=(ResultType("Report Filed", Outcome.SUCCESS, "the report is filed"),),
        ),
    ),
)
