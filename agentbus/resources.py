"""Where a deployment's resources are: from the CloudFormation stack on AWS, or the local runtime."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from functions.manifest import MANIFEST

LOCAL_RESOURCES_PARAMETER = "/agentbus/resources"
DEFAULT_STACK_NAME = "AgentbusStack"
# The stack exports every resource name in one JSON output, so the CLI needs one call to find them.
RESOURCES_OUTPUT_KEY = "AgentbusResources"


@dataclass
class ConsumerResources:
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    function_name: str | None = None


@dataclass
class Resources:
    bus_name: str
    bus_arn: str
    archive_name: str
    schedule_group: str
    scheduler_role_arn: str
    tables: dict[str, str]
    consumers: dict[str, ConsumerResources]
    local: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # Where Scheduler puts a deadline it could not deliver (the deployed stack; None locally).
    deadline_dlq_arn: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Resources:
        data = json.loads(text)
        data["consumers"] = {name: ConsumerResources(**c) for name, c in data["consumers"].items()}
        return cls(**data)

    def function_environment(self, consumer_name: str) -> dict[str, str]:
        """The environment every function gets (see functions/common/settings.py for the parser)."""
        return {
            "EVENT_BUS_NAME": self.bus_name,
            "EVENT_BUS_ARN": self.bus_arn,
            "WORKFLOW_TABLE": self.tables["workflows"],
            "ORDERS_TABLE": self.tables["orders"],
            "INVENTORY_TABLE": self.tables["inventory"],
            "DEAD_LETTER_QUEUE_URL": self.consumers[consumer_name].dlq_url,
            "SCHEDULE_GROUP": self.schedule_group,
            "SCHEDULER_ROLE_ARN": self.scheduler_role_arn,
            "POWERTOOLS_SERVICE_NAME": consumer_name,
            "RECORD_CONCURRENCY": str(MANIFEST.consumer(consumer_name).record_concurrency),
            **({"DEADLINE_DEAD_LETTER_ARN": self.deadline_dlq_arn} if self.deadline_dlq_arn else {}),
        }
