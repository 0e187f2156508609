"""Where a deployment's resources are: from the CloudFormation stack on AWS, or the local runtime."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from functions.common.settings import function_environment
from functions.common.spec import Manifest

LOCAL_RESOURCES_PARAMETER = "/agentbus/resources"
# `agentbus up`'s stack lives in this region, whatever the environment or the profile says.
LOCAL_REGION = "us-east-1"
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
    # Where details too big for the bus are stored (functions/common/claim_check.py).
    claim_check_bucket: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Resources:
        data = json.loads(text)
        data["consumers"] = {name: ConsumerResources(**c) for name, c in data["consumers"].items()}
        return cls(**data)

    def function_environment(self, consumer_name: str, manifest: Manifest, *,
                             parameters: dict[str, str] | None = None,
                             deadline_seconds: int | None = None,
                             external_wait_seconds: int | None = None) -> dict[str, str]:
        """The environment of one function of this deployment (the contract: functions/common/settings.py)."""
        return function_environment(
            manifest.consumer(consumer_name), manifest,
            bus_name=self.bus_name, bus_arn=self.bus_arn, tables=self.tables,
            dead_letter_queue_url=self.consumers[consumer_name].dlq_url,
            schedule_group=self.schedule_group, scheduler_role_arn=self.scheduler_role_arn,
            schedule_dead_letter_arn=self.deadline_dlq_arn,
            parameters=parameters, deadline_seconds=deadline_seconds,
            external_wait_seconds=external_wait_seconds,
            claim_check_bucket=self.claim_check_bucket,
        )
