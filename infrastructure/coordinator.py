"""The coordinator's state: the manifest's tables, the deadline schedule group and the scheduler's role."""

from __future__ import annotations

import json

from aws_cdk import Aws, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from functions.common.spec import CENSUS_DETAIL_TYPE, DEADLINE_SOURCE, WAITING_INDEX, WORKFLOW_TABLE, Manifest

from .consumer import construct_id, protected_queue

SCHEDULER_PRINCIPAL = "scheduler.amazonaws.com"
# The census of workflows waiting for a person (functions/coordinator/census.py): how often, and its schedule's
# name in the deadline group (a deadline's name always has a hyphen: ``<workflow>-<id>`` or ``<id>-<hash>``).
CENSUS_RATE_MINUTES = 5
CENSUS_SCHEDULE_NAME = "census"


class CoordinatorState(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        manifest: Manifest,
        bus: events.IEventBus,
        key: kms.IKey,
        schedule_group_name: str,
    ) -> None:
        super().__init__(scope, id)

        self.tables: dict[str, dynamodb.Table] = {}
        for table in manifest.all_tables:
            self.tables[table.logical_name] = dynamodb.Table(
                self, f"{construct_id(table.logical_name)}Table",
                partition_key=dynamodb.Attribute(name=table.partition_key, type=dynamodb.AttributeType.STRING),
                sort_key=(dynamodb.Attribute(name=table.sort_key, type=dynamodb.AttributeType.STRING)
                          if table.sort_key else None),
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
                encryption_key=key,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True),
                # A retained table stays `Retain`, not `RetainExceptOnCreate` like the key and the claim-check
                # bucket (black-box pass 9B, F12): CloudFormation's rollback of a failed first deploy would then
                # delete it, which its deletion protection refuses, and the stack would end ROLLBACK_FAILED (to
                # be deleted by hand) instead of ROLLBACK_COMPLETE. An empty table left behind costs nothing.
                deletion_protection=manifest.retains(table),
                removal_policy=RemovalPolicy.RETAIN if manifest.retains(table) else RemovalPolicy.DESTROY,
            )
            for index in table.indexes:
                self.tables[table.logical_name].add_global_secondary_index(
                    index_name=index.name,
                    partition_key=dynamodb.Attribute(name=index.partition_key, type=dynamodb.AttributeType.STRING),
                    sort_key=(dynamodb.Attribute(name=index.sort_key, type=dynamodb.AttributeType.STRING)
                              if index.sort_key else None),
                    projection_type=dynamodb.ProjectionType.KEYS_ONLY,
                )

        # One-time schedules, one per running workflow, each putting "Workflow Deadline Reached" on the bus.
        self.schedule_group = scheduler.CfnScheduleGroup(self, "ScheduleGroup", name=schedule_group_name)
        # Ref gives the name and makes users of the name depend on the group.
        self.schedule_group_name: str = self.schedule_group.ref

        self.scheduler_role = iam.Role(
            self, "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                SCHEDULER_PRINCIPAL, conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}),
            description="EventBridge Scheduler: puts workflow deadline events on the agentbus bus, nothing else",
        )
        self.scheduler_role.add_to_policy(iam.PolicyStatement(
            sid="PutDeadlineEvents",
            actions=["events:PutEvents"],
            resources=[bus.event_bus_arn],
            conditions={"StringEquals": {"events:source": DEADLINE_SOURCE}},
        ))

        # A deadline Scheduler could not put on the bus (retries exhausted) lands here instead of being
        # dropped; Scheduler sends it with the schedule's execution role, so that role may send to it.
        self.deadline_dlq = protected_queue(self, "DeadlineDeadLetterQueue", key)
        self.scheduler_role.add_to_policy(iam.PolicyStatement(
            sid="DeadLetterUndeliveredDeadlines",
            actions=["sqs:SendMessage"],
            resources=[self.deadline_dlq.queue_arn],
        ))
        self.scheduler_role.add_to_policy(iam.PolicyStatement(
            sid="EncryptedDeadLetterQueue",
            actions=["kms:GenerateDataKey", "kms:Decrypt"],
            resources=[key.key_arn],
        ))

        # Every 5 minutes the coordinator counts the workflows waiting for a person (metrics, the approval alarm).
        # Only a manifest with external agents has anyone to count. A missed census is harmless (the next one
        # comes 5 minutes later): no dead-letter queue, Scheduler's failure metrics alarm on the group.
        self.census_schedule: scheduler.CfnSchedule | None = None
        if any(workflow.external for workflow in manifest.coordinated):
            self.census_schedule = scheduler.CfnSchedule(
                self, "CensusSchedule",
                name=CENSUS_SCHEDULE_NAME,
                group_name=self.schedule_group_name,
                description="puts 'Workflow Census Due' on the bus: the coordinator counts who waits for a person",
                schedule_expression=f"rate({CENSUS_RATE_MINUTES} minutes)",
                flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
                state="ENABLED",
                target=scheduler.CfnSchedule.TargetProperty(
                    arn=bus.event_bus_arn,
                    role_arn=self.scheduler_role.role_arn,
                    input=json.dumps({"census": "workflows waiting for a person"}),
                    event_bridge_parameters=scheduler.CfnSchedule.EventBridgeParametersProperty(
                        detail_type=CENSUS_DETAIL_TYPE, source=DEADLINE_SOURCE),
                    retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                        maximum_event_age_in_seconds=CENSUS_RATE_MINUTES * 60, maximum_retry_attempts=3),
                ),
            )

    @property
    def schedules_arn(self) -> str:
        """Every schedule in the deadline group (schedule names are per workflow, created at run time)."""
        return Stack.of(self).format_arn(
            service="scheduler", resource="schedule", resource_name=f"{self.schedule_group_name}/*")

    def grant_census(self, role: iam.IRole) -> None:
        """Let ``role`` (the coordinator's) query the workflow table's waiting index: the census finds the
        workflows waiting for a person there (``WorkflowStore.waiting``), never by scanning the whole table.
        Without it every census is refused (AccessDenied), dead-lettered after its retries, and the approval
        alarm never sees a wait. It then reads their headers with ``dynamodb:BatchGetItem`` on the table itself,
        which the coordinator's grant on the tables it writes already holds (``consumer.TABLE_ACTIONS``)."""
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="CensusQueriesWaitingWorkflows",
            actions=["dynamodb:Query"],
            resources=[f"{self.tables[WORKFLOW_TABLE].table_arn}/index/{WAITING_INDEX}"],
        ))

    def grant_scheduling(self, role: iam.IRole) -> None:
        """Let ``role`` create and delete the group's schedules, and hand them the scheduler role only."""
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="DeadlineSchedules",
            # UpdateSchedule: a deadline that fired early is re-armed (Scheduler fires within its minute), and one
            # whose name another schedule took is put back (GetSchedule tells which).
            actions=["scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule",
                     "scheduler:GetSchedule"],
            resources=[self.schedules_arn],
        ))
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="PassSchedulerRole",
            actions=["iam:PassRole"],
            resources=[self.scheduler_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": SCHEDULER_PRINCIPAL}},
        ))
