"""``report``: a test-only workflow whose one agent writes a report of the size the request asks for, so that a
result of any size (a megabyte: over EventBridge's 256 KB entry limit) can cross the bus as a claim check
(functions/common/claim_check.py). Never shipped; its manifest is ``tests/workflows/reports/manifest.py``."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from functions.common.models import WorkflowIdField
from functions.common.spec import (
    AGENT_SOURCE_PREFIX,
    Agent,
    Outcome,
    Outcomes,
    ResultType,
    Subscription,
    Trigger,
    Workflow,
)

PRODUCER_SOURCE = "agentbus.reports"
REPORT_REQUESTED = "Report Requested"
MAX_REPORT_BYTES = 8 * 1024 * 1024


class ReportRequested(BaseModel):
    model_config = ConfigDict(extra="ignore")

    report_id: WorkflowIdField
    payload_bytes: Annotated[int, Field(ge=0, le=MAX_REPORT_BYTES)]


REPORT = Workflow(
    name="report",
    description="One agent writes a report of the requested size (a result bigger than the bus carries).",
    trigger=Trigger(Subscription(name="trigger", sources=(PRODUCER_SOURCE,), detail_types=(REPORT_REQUESTED,)),
                    model="tests.workflows.reports.workflow:ReportRequested", id_field="report_id"),
    deadline_s=60,
    outcomes=Outcomes(completed="Report Completed", rejected="Report Refused", timed_out="Report Timed Out"),
    agents=(
        Agent(
            name="writer",
            description="Writes payload_bytes characters of report.",
            handler="tests.workflows.reports.writer.handler",
            source=f"{AGENT_SOURCE_PREFIX}writer",
            results=(
                ResultType("Report Written", Outcome.SUCCESS, "the report, in data.text"),
                ResultType("Report Failed", Outcome.FAILURE, "no report"),
            ),
        ),
    ),
)
