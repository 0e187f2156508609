"""One queue-fed consumer from the manifest: rules -> SQS queue (+DLQ) -> Lambda function, with its own role.

Built in two steps because every function's environment names every consumer's queues
(``agentbus.resources.Resources.function_environment``): first the queues and rules of all consumers,
then each function.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.common.spec import QUEUE_MAX_MESSAGE_BYTES, Consumer, Subscription

RETENTION = Duration.days(14)  # SQS maximum: an event outlives an agent that is offline for days
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
# EventBridge's own retry window for delivering to the queue; what still fails lands in the DLQ.
TARGET_RETRY_ATTEMPTS = 185
TARGET_MAX_EVENT_AGE = Duration.hours(24)
RULE_NAME_MAX = 64

# DynamoDB actions a function may use on the tables the manifest gives it (TransactWriteItems and
# TransactGetItems are authorized through these item-level actions).
READ_TABLE_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
)
TABLE_ACTIONS = (
    *READ_TABLE_ACTIONS,
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
)
# What a function needs on the customer-managed key: read/write encrypted queues and tables.
KEY_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey")


def protected_queue(scope: Construct, id: str, key: kms.IKey, *,
                    visibility_timeout: Duration | None = None,
                    dead_letter_queue: sqs.DeadLetterQueue | None = None) -> sqs.Queue:
    """Every agentbus queue: encrypted with the stack's key, TLS only, kept as long as SQS allows."""
    return sqs.Queue(scope, id, encryption=sqs.QueueEncryption.KMS, encryption_master_key=key, enforce_ssl=True,
                     retention_period=RETENTION, max_message_size_bytes=QUEUE_MAX_MESSAGE_BYTES,
                     visibility_timeout=visibility_timeout, dead_letter_queue=dead_letter_queue)


def rule_name(consumer: str, subscription: str) -> str:
    """``coordinator-results``: unique on the bus (each stage has its own bus), so alarms can name it."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", f"{consumer}-{subscription}")
    if len(name) > RULE_NAME_MAX:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = f"{name[:RULE_NAME_MAX - 9]}-{digest}"
    return name


def construct_id(name: str) -> str:
    """``"order-fulfillment"`` -> ``"OrderFulfillment"``."""
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-"))


class QueueConsumer(Construct):
    """Queue, DLQ, rules and role of one consumer; ``add_function`` adds its Lambda function."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        consumer: Consumer,
        subscriptions: Sequence[Subscription],
        bus: events.IEventBus,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, id)
        self.consumer = consumer
        self.key = key
        self.bus = bus

        self.dlq = protected_queue(self, "DeadLetterQueue", key)
        self.queue = protected_queue(
            self, "Queue", key,
            visibility_timeout=Duration.seconds(consumer.visibility_timeout_s),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=consumer.max_receive_count, queue=self.dlq),
        )

        # One rule per subscription, its pattern exactly the manifest's. Written at the L1 level so the
        # queue policy can name each rule (aws:SourceArn): CDK's SqsQueue target drops that condition for
        # KMS-encrypted queues. Events EventBridge cannot deliver land in this consumer's DLQ, where
        # `agentbus dead-letters` shows them and `agentbus redrive` puts them back.
        self.rules: dict[str, events.CfnRule] = {}
        for subscription in subscriptions:
            rule = events.CfnRule(
                self, f"{construct_id(subscription.name)}Rule",
                name=rule_name(consumer.name, subscription.name),
                event_bus_name=bus.event_bus_name,
                description=f"{subscription.name} events for {consumer.name}",
                event_pattern=subscription.pattern(),
                state="ENABLED",
                targets=[events.CfnRule.TargetProperty(
                    id=f"{consumer.name}-queue",
                    arn=self.queue.queue_arn,
                    dead_letter_config=events.CfnRule.DeadLetterConfigProperty(arn=self.dlq.queue_arn),
                    retry_policy=events.CfnRule.RetryPolicyProperty(
                        maximum_retry_attempts=TARGET_RETRY_ATTEMPTS,
                        maximum_event_age_in_seconds=int(TARGET_MAX_EVENT_AGE.to_seconds()),
                    ),
                )],
            )
            self.rules[subscription.name] = rule
        rule_arns = [rule.attr_arn for rule in self.rules.values()]
        if rule_arns:
            for target in (self.queue, self.dlq):
                target.add_to_resource_policy(iam.PolicyStatement(
                    sid="OnlyThisConsumersRules",
                    principals=[iam.ServicePrincipal("events.amazonaws.com")],
                    actions=["sqs:SendMessage"],
                    resources=[target.queue_arn],
                    conditions={"ArnEquals": {"aws:SourceArn": rule_arns}},
                ))

        self.role = iam.Role(
            self, "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"agentbus {consumer.name}: only what this function uses",
        )
        self.function: lambda_.Function | None = None

    def add_function(
        self,
        *,
        code: lambda_.Code,
        layers: Sequence[lambda_.ILayerVersion],
        environment: Mapping[str, str],
        tables: Mapping[str, dynamodb.ITable],
    ) -> lambda_.Function:
        consumer = self.consumer
        log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY)
        log_group.grant_write(self.role)

        self.function = lambda_.Function(
            self, "Function",
            description=consumer.description or consumer.name,
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            handler=consumer.handler,
            code=code,
            layers=list(layers),
            role=self.role,
            timeout=Duration.seconds(consumer.timeout_s),
            memory_size=consumer.memory_mb,
            tracing=lambda_.Tracing.ACTIVE,
            environment=dict(environment),
            log_group=log_group,
        )
        self.function.add_event_source(event_sources.SqsEventSource(
            self.queue,
            batch_size=consumer.batch_size,
            max_batching_window=(Duration.seconds(consumer.max_batching_window_s)
                                 if consumer.max_batching_window_s else None),
            report_batch_item_failures=True,
            max_concurrency=consumer.max_concurrency,
        ))

        # Publish results only under this consumer's own source (the bus policy also denies the others).
        self.role.add_to_policy(iam.PolicyStatement(
            sid="PublishOwnSource",
            actions=["events:PutEvents"],
            resources=[self.bus.event_bus_arn],
            conditions={"StringEquals": {"events:source": consumer.source}},
        ))
        # Poison messages go to the DLQ with their reason (functions/common/dead_letters.py).
        self.role.add_to_policy(iam.PolicyStatement(
            sid="DeadLetterPoisonMessages",
            actions=["sqs:SendMessage"],
            resources=[self.dlq.queue_arn],
        ))
        # A failed record it will see again comes back after a short back-off, not the whole visibility timeout:
        # the function shortens its visibility on its own queue (functions/common/consumer.py, retry timing),
        # finding the queue's URL from the record's eventSourceARN.
        self.role.add_to_policy(iam.PolicyStatement(
            sid="BackOffFailedRecords",
            actions=["sqs:ChangeMessageVisibility", "sqs:GetQueueUrl"],
            resources=[self.queue.queue_arn],
        ))
        written = [tables[name].table_arn for name in consumer.tables if name not in consumer.read_only]
        if written:
            self.role.add_to_policy(iam.PolicyStatement(
                sid="ManifestTables",
                actions=list(TABLE_ACTIONS),
                resources=written,
            ))
        read = [tables[name].table_arn for name in consumer.tables if name in consumer.read_only]
        if read:
            self.role.add_to_policy(iam.PolicyStatement(
                sid="ManifestTablesReadOnly",
                actions=list(READ_TABLE_ACTIONS),
                resources=read,
            ))
        self.role.add_to_policy(iam.PolicyStatement(
            sid="EncryptedQueuesAndTables",
            actions=list(KEY_ACTIONS),
            resources=[self.key.key_arn],
        ))
        return self.function
