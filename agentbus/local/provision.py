"""Provisions the manifest's topology on an AWS-compatible endpoint (moto), the way the CDK stack does on AWS.

Locally every rule targets an SQS queue (moto's put_events cannot deliver to Lambda); the local runtime
then plays Lambda's SQS poller. Names carry a prefix so several runtimes can share one endpoint in tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentbus.resources import LOCAL_RESOURCES_PARAMETER, ConsumerResources, Resources
from agentbus.seeds import put_new, seed_items, seeded_tables
from functions.common.claim_check import object_expiry_days
from functions.common.spec import QUEUE_MAX_MESSAGE_BYTES, Manifest, Table
from functions.manifest import MANIFEST

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"


def provision(session: Any, *, manifest: Manifest = MANIFEST, prefix: str = "agentbus",
              bus_name: str | None = None, endpoint_url: str | None = None) -> Resources:
    """Create the bus, archive, tables with their seed items, queues with DLQs and rules; return their names."""
    kwargs = {"endpoint_url": endpoint_url} if endpoint_url else {}
    events = session.client("events", **kwargs)
    sqs = session.client("sqs", **kwargs)
    dynamodb = session.client("dynamodb", **kwargs)
    scheduler = session.client("scheduler", **kwargs)
    ssm = session.client("ssm", **kwargs)
    iam = session.client("iam", **kwargs)
    s3 = session.client("s3", **kwargs)

    bus_name = bus_name or manifest.bus_name
    bus_arn = events.create_event_bus(Name=bus_name)["EventBusArn"]
    archive_name = f"{prefix}-archive"
    events.create_archive(ArchiveName=archive_name, EventSourceArn=bus_arn, RetentionDays=0,
                          Description="every event on the bus, for replay")

    tables: dict[str, str] = {}
    for table in manifest.all_tables:
        name = f"{prefix}-{table.logical_name}"
        dynamodb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **key_schema(table))
        tables[table.logical_name] = name

    for table in seeded_tables(manifest):
        put_new(dynamodb, tables[table.logical_name], table, seed_items(table))

    consumers: dict[str, ConsumerResources] = {}
    for consumer in manifest.consumers:
        dlq_url = sqs.create_queue(QueueName=f"{prefix}-{consumer.name}-dlq",
                                   Attributes={"MessageRetentionPeriod": "1209600",
                                               "MaximumMessageSize": str(QUEUE_MAX_MESSAGE_BYTES)})["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_url = sqs.create_queue(QueueName=f"{prefix}-{consumer.name}", Attributes={
            "MessageRetentionPeriod": "1209600",
            "MaximumMessageSize": str(QUEUE_MAX_MESSAGE_BYTES),
            # As the stack sets it (6 x the function's timeout): a record still being handled is not handed to
            # another poller. A failed record does not wait for it: the local poller makes it visible again itself
            # (``RuntimeOptions.retry_after_s``).
            "VisibilityTimeout": str(consumer.visibility_timeout_s),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                         "maxReceiveCount": consumer.max_receive_count}),
        })["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        consumers[consumer.name] = ConsumerResources(queue_url=queue_url, queue_arn=queue_arn,
                                                     dlq_url=dlq_url, dlq_arn=dlq_arn)
        for subscription in manifest.subscriptions(consumer):
            rule = f"{prefix}-{consumer.name}-{subscription.name}"
            events.put_rule(Name=rule, EventBusName=bus_name, EventPattern=json.dumps(subscription.pattern()),
                            State="ENABLED", Description=f"{subscription.name} events for {consumer.name}")
            events.put_targets(Rule=rule, EventBusName=bus_name,
                               Targets=[{"Id": f"{consumer.name}-queue", "Arn": queue_arn}])

    claim_check_bucket = create_claim_check_bucket(s3, f"{prefix}-claim-checks",
                                                   object_expiry_days(manifest.longest_open_s()))

    schedule_group = prefix
    if manifest.coordinated:
        scheduler.create_schedule_group(Name=schedule_group)
    role = iam.create_role(RoleName=f"{prefix}-scheduler", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"},
                       "Action": "sts:AssumeRole"}]}))
    resources = Resources(
        bus_name=bus_name, bus_arn=bus_arn, archive_name=archive_name, schedule_group=schedule_group,
        scheduler_role_arn=role["Role"]["Arn"], tables=tables, consumers=consumers, local=True,
        claim_check_bucket=claim_check_bucket,
    )
    ssm.put_parameter(Name=parameter_name(prefix), Value=resources.to_json(), Type="String", Overwrite=True)
    return resources


def _keys(partition_key: str, sort_key: str | None) -> list[dict[str, str]]:
    return [{"AttributeName": partition_key, "KeyType": "HASH"},
            *([{"AttributeName": sort_key, "KeyType": "RANGE"}] if sort_key else [])]


def key_schema(table: Table) -> dict[str, Any]:
    """CreateTable's keys, attribute definitions and global secondary indexes (keys only) of ``table``, as the
    stack creates them (infrastructure/coordinator.py)."""
    schema: dict[str, Any] = {"KeySchema": _keys(table.partition_key, table.sort_key)}
    attributes = [table.partition_key, *([table.sort_key] if table.sort_key else [])]
    if table.indexes:
        schema["GlobalSecondaryIndexes"] = [
            {"IndexName": index.name, "KeySchema": _keys(index.partition_key, index.sort_key),
             "Projection": {"ProjectionType": "KEYS_ONLY"}} for index in table.indexes]
        attributes += [key for index in table.indexes for key in (index.partition_key, index.sort_key) if key]
    schema["AttributeDefinitions"] = [{"AttributeName": key, "AttributeType": "S"} for key in dict.fromkeys(attributes)]
    return schema


def create_claim_check_bucket(s3: Any, name: str, expiry_days: int) -> str:
    """The claim-check bucket on moto's S3, with the stack's lifecycle expiry (infrastructure/claim_check.py).
    moto's S3 has no KMS or TLS to enforce: those are the deployed bucket's."""
    region = s3.meta.region_name
    configuration = {} if region in (None, "us-east-1") else {
        "CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=name, **configuration)
    s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [
        {"ID": "expire-claim-checks", "Status": "Enabled", "Filter": {"Prefix": ""},
         "Expiration": {"Days": expiry_days}}]})
    return name


def parameter_name(prefix: str) -> str:
    return LOCAL_RESOURCES_PARAMETER if prefix == "agentbus" else f"{LOCAL_RESOURCES_PARAMETER}/{prefix}"
