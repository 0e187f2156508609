"""cdk-nag v3 acknowledgements, each naming the rule (or the single finding) and why it does not apply.

v3 acknowledges through CDK's own ``Validations.of(construct).acknowledge(...)``; an acknowledgement on
a construct covers the resources under it. Findings are acknowledged one by one (``Rule[finding]``),
never a whole rule for the stack.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct

if TYPE_CHECKING:
    from .stack import AgentbusStack


@dataclass(frozen=True)
class Ack:
    rule: str
    reason: str


RUNTIME = (
    Ack("AwsSolutions-L1",
        "Python 3.13 on purpose: the Powertools public layer used here is built for python313-arm64, and the "
        "code is tested on 3.13; the runtime moves with that layer, not with each new Lambda runtime."),
    Ack("Serverless-LambdaLatestVersion",
        "Python 3.13 on purpose: the Powertools public layer used here is built for python313-arm64, and the "
        "code is tested on 3.13; the runtime moves with that layer, not with each new Lambda runtime."),
)
SQS_INVOKED = (
    Ack("Serverless-LambdaDLQ",
        "Invoked only synchronously by its SQS event source mapping, so a function DLQ (async invocations) "
        "never receives anything; failed messages go to the queue's own DLQ through its redrive policy."),
    Ack("Serverless-LambdaEventSourceMappingDestination",
        "SQS event source mappings do not take an on-failure destination; the queue's redrive policy moves "
        "a message that keeps failing to the consumer's DLQ (maxReceiveCount from the manifest), and "
        "partial batch responses retry only the failed messages."),
)
XRAY = Ack(
    "AwsSolutions-IAM5[Resource::*]",
    "Active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords (added by CDK for Tracing.ACTIVE) "
    "do not support resource-level permissions, so their resource must be '*'. Nothing else in this role "
    "uses a wildcard.",
)
DEAD_LETTER_QUEUE = Ack(
    "Serverless-SQSRedrivePolicy",
    "This queue is itself a dead-letter queue (of a consumer's queue and its rule targets, of the deadline schedules, "
    "or of the bus); a DLQ of a DLQ would only hide messages. Its messages are alarmed on.",
)

DEADLINE_DLQ = Ack(
    "AwsSolutions-SQS3",
    "This queue is the dead-letter queue of the deadline schedules' target (DeadLetterConfig set per schedule "
    "at run time, which cdk-nag cannot see); a DLQ of it would only hide messages. It is alarmed on.",
)

BUS_DLQ = Ack(
    "AwsSolutions-SQS3",
    "This queue is the event bus's own dead-letter queue (DeadLetterConfig of the bus, for events the bus could "
    "not encrypt or decrypt), not a queue's; a DLQ of it would only hide messages. It is alarmed on.",
)

ALARM_EMAIL = Ack(
    "Serverless-SNSRedrivePolicy",
    "E-mail subscription for alarm notifications: a DLQ of undelivered alarm mail would need its own "
    "watcher; the alarm state stays in CloudWatch and on the dashboard whether or not the mail arrives.",
)


CLAIM_CHECK_ACCESS_LOGS = Ack(
    "AwsSolutions-S1",
    "The claim-check bucket is written and read only by this stack's function roles (put under their own "
    "prefix, get), with TLS and the stack's KMS key; every KMS use is in CloudTrail. Server access logs would "
    "need a second bucket that cannot use the KMS key (S3 log delivery supports SSE-S3 only) for objects that "
    "expire within a month; CloudTrail S3 data events are the audit trail where one is required.",
)


def claim_check_findings(stack: AgentbusStack, consumer: str) -> tuple[Ack, ...]:
    """The IAM5 findings of a function's claim-check grant (its own prefix, and every object to read)."""
    bucket = stack.get_logical_id(stack.claim_checks.cfn_bucket)
    return (
        Ack(f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/{consumer}/*]",
            "Claim-check objects are named per event at run time (source, detail-type, idempotency key, sha256): "
            "the function may put any object, but only under its own prefix."),
        Ack(f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/*]",
            "A function resolves claim-check references of events from any publisher, so it may read (GetObject "
            "only) every object of the stack's claim-check bucket; it writes only under its own prefix."),
    )


def schedules_finding(stack: AgentbusStack) -> str:
    """The IAM5 finding for the coordinator's schedule permissions, as cdk-nag spells it."""
    group = stack.get_logical_id(stack.state.schedule_group)
    return ("AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:"
            f"schedule/<{group}>/*]")


def acknowledge(stack: AgentbusStack) -> None:
    if stack.observability.email_subscription is not None:
        _acknowledge(stack.observability.email_subscription, (ALARM_EMAIL,))
    _acknowledge(stack.state.deadline_dlq, (DEAD_LETTER_QUEUE, DEADLINE_DLQ))
    _acknowledge(stack.bus.dead_letter_queue, (DEAD_LETTER_QUEUE, BUS_DLQ))
    _acknowledge(stack.claim_checks.bucket, (CLAIM_CHECK_ACCESS_LOGS,))
    for built in stack.consumers.values():
        if built.function is not None:
            _acknowledge(built.function, (*RUNTIME, *SQS_INVOKED))
        _acknowledge(built.role, (XRAY, *claim_check_findings(stack, built.consumer.name)))
        _acknowledge(built.dlq, (DEAD_LETTER_QUEUE,))
        if built.consumer.schedules:
            _acknowledge(built.role, (Ack(
                schedules_finding(stack),
                "One-time deadline schedules are named per workflow at run time, so the coordinator may "
                "create and delete any schedule, but only inside agentbus's own schedule group.",
            ),))


def acknowledge_on(construct: IConstruct, acks: Iterable[Ack]) -> None:
    """Acknowledge ``acks`` on ``construct`` (and what is under it)."""
    _acknowledge(construct, acks)


def _acknowledge(construct: IConstruct, acks: Iterable[Ack]) -> None:
    for ack in acks:
        Validations.of(construct).acknowledge(Acknowledgment(id=ack.rule, reason=ack.reason))
