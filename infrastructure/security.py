"""The customer-managed KMS key that encrypts the bus, its archive, every queue, table and the alarm topic."""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


def encryption_key(scope: Construct, id: str) -> kms.Key:
    """A rotated symmetric key; its policy lets the services that encrypt on agentbus's behalf use it.

    Functions and the operator use it through their IAM policies (the default key policy delegates to
    IAM). Services need it in the key policy:
    - EventBridge (``events.amazonaws.com``): the bus and archive, and delivering to the encrypted queues;
    - CloudWatch (``cloudwatch.amazonaws.com``): alarm notifications published to the encrypted topic.
    SQS, DynamoDB and SNS use the key with the caller's permissions, through the IAM policies.
    The key is retained with the orders table it protects.
    """
    key = kms.Key(
        scope, id,
        description="agentbus: bus, archive, queues, tables and alarm topic",
        enable_key_rotation=True,
        removal_policy=RemovalPolicy.RETAIN,
    )
    key.add_to_resource_policy(iam.PolicyStatement(
        sid="EventBridgeBusArchiveAndQueueTargets",
        principals=[iam.ServicePrincipal("events.amazonaws.com")],
        actions=["kms:DescribeKey", "kms:GenerateDataKey", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo"],
        resources=["*"],
        conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
    ))
    key.add_to_resource_policy(iam.PolicyStatement(
        sid="CloudWatchAlarmsToEncryptedTopic",
        principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
        actions=["kms:GenerateDataKey", "kms:Decrypt"],
        resources=["*"],
    ))
    return key
