"""The customer-managed KMS key that encrypts the bus, its archive, every queue, table and the alarm topic."""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


def encryption_key(scope: Construct, id: str) -> kms.Key:
    """A rotated symmetric key; its policy lets the services that encrypt on agentbus's behalf use it.

    Functions and the operator use it through their IAM policies (the default key policy delegates to
    IAM). Services need it in the key policy:
    - EventBridge (``events.amazonaws.com``): the bus and archive, and delivering to the encrypted queues;
    - CloudWatch (``cloudwatch.amazonaws.com``): alarm notifications published to the encrypted topic;
    - EventBridge Scheduler (``scheduler.amazonaws.com``): the deadline DLQ (allow_scheduler_dead_letters).
    SQS, DynamoDB and SNS use the key with the caller's permissions, through the IAM policies.
    The key is retained with the orders table it protects, except when the stack operation that created it rolls
    back (``RetainExceptOnCreate``): a failed first deploy leaves no key behind, billed monthly and deletable only
    7 to 30 days ahead (black-box pass 9B, F12).
    """
    key = kms.Key(
        scope, id,
        description="agentbus: bus, archive, queues, tables and alarm topic",
        enable_key_rotation=True,
        removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    )
    # EventBridge validates the key (symmetric? its ARN?) with DescribeKey when the bus or the archive is created
    # or updated. Both of AWS's example key policies give it DescribeKey with no condition, the crypto operations
    # under conditions (EventBridge user guide, "Encrypting EventBridge event buses with AWS KMS keys" and
    # "Encrypting EventBridge archives with AWS KMS keys"): the validation need not carry aws:SourceAccount, and
    # never an encryption context, so under the conditions below alone it could be refused and the deploy fail.
    # DescribeKey returns the key's metadata only.
    key.add_to_resource_policy(iam.PolicyStatement(
        sid="EventBridgeValidatesKey",
        principals=[iam.ServicePrincipal("events.amazonaws.com")],
        actions=["kms:DescribeKey"],
        resources=["*"],
    ))
    # The bus and its archive: EventBridge encrypts with the key on this account's behalf. AWS documents
    # aws:SourceAccount as a condition for this use (EventBridge user guide, "Authorizing EventBridge to
    # use a customer managed key": docs.aws.amazon.com/eventbridge/latest/userguide/eb-encryption-key-policy.html).
    key.add_to_resource_policy(iam.PolicyStatement(
        sid="EventBridgeBusAndArchive",
        principals=[iam.ServicePrincipal("events.amazonaws.com")],
        actions=["kms:DescribeKey", "kms:GenerateDataKey", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo"],
        resources=["*"],
        conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
    ))
    # Rule targets: EventBridge sending to the encrypted queues and DLQs. SQS calls KMS on the sender's
    # behalf, and AWS documents this grant without a source condition (SQS developer guide, "Enable
    # compatibility between event sources from AWS services and encrypted queues":
    # docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html);
    # aws:SourceAccount is documented as unsupported for EventBridge delivering to an encrypted SNS topic,
    # so under that condition alone no event might ever reach a queue. The queue policies still let only
    # this stack's rules send (aws:SourceArn, infrastructure/consumer.py).
    key.add_to_resource_policy(iam.PolicyStatement(
        sid="EventBridgeToEncryptedQueues",
        principals=[iam.ServicePrincipal("events.amazonaws.com")],
        actions=["kms:GenerateDataKey", "kms:Decrypt"],
        resources=["*"],
    ))
    key.add_to_resource_policy(iam.PolicyStatement(
        sid="CloudWatchAlarmsToEncryptedTopic",
        principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
        actions=["kms:GenerateDataKey", "kms:Decrypt"],
        resources=["*"],
    ))
    return key


def allow_scheduler_dead_letters(key: kms.Key, schedule_group_name: str) -> None:
    """Let EventBridge Scheduler use the key for the deadline schedules' encrypted dead-letter queue.

    The schedules' execution role already has kms:GenerateDataKey/Decrypt on the key through IAM; the Scheduler
    troubleshooting guide also asks for the key policy to allow ``scheduler.amazonaws.com`` itself, for a DLQ
    encrypted with a KMS key. Without it, a deadline that could not reach the bus might not be dead-lettered
    either, and its workflow would never time out. Only this account's schedules of the deadline group.
    """
    schedules = Stack.of(key).format_arn(service="scheduler", resource="schedule",
                                         resource_name=f"{schedule_group_name}/*")
    key.add_to_resource_policy(iam.PolicyStatement(
        sid="SchedulerToDeadlineDeadLetterQueue",
        principals=[iam.ServicePrincipal("scheduler.amazonaws.com")],
        actions=["kms:GenerateDataKey", "kms:Decrypt"],
        resources=["*"],
        conditions={
            "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
            "ArnLike": {"aws:SourceArn": schedules},
        },
    ))
