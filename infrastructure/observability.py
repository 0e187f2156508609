"""Operations: one dashboard, alarms on everything that needs a human, an encrypted SNS topic for them."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Aws, Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .consumer import QueueConsumer, construct_id

METRICS_NAMESPACE = "agentbus"  # POWERTOOLS_METRICS_NAMESPACE of every function of the default (unstaged) stack
# EventBridge rule target failures (AWS/Events, dimensions EventBusName + RuleName for a custom bus):
# deliveries that failed for good, and those that could not even reach the target's DLQ.
RULE_FAILURE_METRICS = ("FailedInvocations", "InvocationsFailedToBeSentToDlq")
# EventBridge Scheduler (AWS/Scheduler, dimension ScheduleGroup): the deadline could not be put on the bus,
# was dropped after its retries, or could not reach the deadline DLQ either.
SCHEDULER_FAILURE_METRICS = ("TargetErrorCount", "InvocationDroppedCount", "InvocationsFailedToBeSentToDeadLetterCount")
TIMED_OUT_METRIC = "WorkflowsTimedOut"  # emitted by the coordinator with Powertools Metrics
# Emitted by the coordinator's census every 5 minutes, per workflow (functions/coordinator/census.py).
WAITING_METRIC = "WorkflowsWaitingForPerson"
OLDEST_WAIT_METRIC = "OldestWaitSeconds"
# The most alarms one alarm-status widget lists (CloudWatch's dashboard body: 1 to 100 alarm ARNs per widget).
ALARMS_PER_WIDGET = 100
# Alarm when a workflow has waited this long for a person (CDK context ``approval_alarm_seconds``).
DEFAULT_APPROVAL_ALARM_S = 4 * 60 * 60
MIN_MESSAGE_AGE_ALARM_S = 300
# The dimension sets of agentbus's own metrics (the dashboard searches each): the shared Powertools metrics
# (service), each agent's (functions/common/agent.py: service, agent), the census' (service, workflow).
DASHBOARD_DIMENSION_SETS = ("service", "service,agent", "service,workflow")


def metrics_namespace(stage: str | None) -> str:
    """The CloudWatch namespace of a stage's own metrics: ``agentbus`` unstaged, ``agentbus/<stage>`` otherwise.

    A metric is its namespace, name and exact dimension set: with one namespace for every stage, two stages in
    one account and region would share ``WorkflowsTimedOut`` and ``OldestWaitSeconds`` (service=coordinator), and
    each stage's alarms and dashboard would see the other's. CloudWatch allows ``/`` in a namespace (not a leading
    ``AWS/``), and a stage is letters, digits and ``-`` only.
    """
    return f"{METRICS_NAMESPACE}/{stage}" if stage else METRICS_NAMESPACE


def oldest_message_threshold_s(consumer: QueueConsumer) -> int:
    """A healthy message leaves the queue within all its receives; older means stuck, paused or throttled."""
    spec = consumer.consumer
    return max(MIN_MESSAGE_AGE_ALARM_S, spec.visibility_timeout_s * spec.max_receive_count)


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        consumers: Sequence[QueueConsumer],
        coordinator_service: str,
        bus_name: str,
        schedule_group_name: str,
        deadline_dlq: sqs.IQueue,
        bus_dlq: sqs.IQueue | None = None,
        key: kms.IKey,
        alarm_email: str | None = None,
        waiting_workflows: Sequence[str] = (),
        approval_alarm_s: int = DEFAULT_APPROVAL_ALARM_S,
        namespace: str = METRICS_NAMESPACE,
    ) -> None:
        super().__init__(scope, id)
        self.namespace = namespace  # the functions' POWERTOOLS_METRICS_NAMESPACE (metrics_namespace(stage))
        self.topic = sns.Topic(
            self, "AlarmTopic",
            display_name="agentbus alarms",
            master_key=key,
            enforce_ssl=True,
        )
        # enforce_ssl gives the topic a policy of its own, so CloudWatch needs an explicit allow.
        self.topic.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchAlarmsPublish",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[self.topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                "ArnLike": {"aws:SourceArn": Stack.of(self).format_arn(
                    service="cloudwatch", resource="alarm", resource_name="*",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME)},
            },
        ))
        self.email_subscription: sns.Subscription | None = None
        if alarm_email:
            self.email_subscription = self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))

        self.alarms: list[cw.Alarm] = []
        self.dlq_alarms: dict[str, cw.Alarm] = {}
        one_minute, five_minutes = Duration.minutes(1), Duration.minutes(5)
        for consumer in consumers:
            name = consumer.consumer.name
            prefix = construct_id(name)
            self.dlq_alarms[name] = self._alarm(
                f"{prefix}DeadLetters",
                consumer.dlq.metric_approximate_number_of_messages_visible(period=one_minute, statistic="Maximum"),
                threshold=1,
                description=f"{name}: messages in the dead-letter queue (see `agentbus dead-letters`)",
            )
            self._alarm(
                f"{prefix}OldestMessage",
                consumer.queue.metric_approximate_age_of_oldest_message(period=one_minute, statistic="Maximum"),
                threshold=oldest_message_threshold_s(consumer),
                description=f"{name}: oldest queued message older than all its retries (paused? throttled?)",
            )
            if consumer.function is not None:
                self._alarm(
                    f"{prefix}Errors",
                    consumer.function.metric_errors(period=five_minutes, statistic="Sum"),
                    threshold=1,
                    description=f"{name}: function errors (whole-batch failures)",
                )
                self._alarm(
                    f"{prefix}Throttles",
                    consumer.function.metric_throttles(period=five_minutes, statistic="Sum"),
                    threshold=1,
                    description=f"{name}: function throttled",
                )
            for subscription, rule in consumer.rules.items():
                rule_id = construct_id(subscription)
                for metric_name in RULE_FAILURE_METRICS:
                    self._alarm(
                        f"{prefix}{rule_id}{metric_name}",
                        cw.Metric(namespace="AWS/Events", metric_name=metric_name,
                                  dimensions_map={"EventBusName": bus_name, "RuleName": str(rule.name)},
                                  statistic="Sum", period=five_minutes),
                        threshold=1,
                        description=f"{name}: rule {rule.name} could not deliver to the queue ({metric_name})",
                    )
        for metric_name in SCHEDULER_FAILURE_METRICS:
            self._alarm(
                f"Deadline{metric_name}",
                cw.Metric(namespace="AWS/Scheduler", metric_name=metric_name,
                          dimensions_map={"ScheduleGroup": schedule_group_name}, statistic="Sum",
                          period=five_minutes),
                threshold=1,
                description=f"deadline schedules failed to reach the bus ({metric_name})",
            )
        self.deadline_dlq_alarm = self._alarm(
            "DeadlineDeadLetters",
            deadline_dlq.metric_approximate_number_of_messages_visible(period=one_minute, statistic="Maximum"),
            threshold=1,
            description="deadline events Scheduler could not put on the bus: their workflows never time out",
        )
        self.bus_dlq_alarm: cw.Alarm | None = None
        if bus_dlq is not None:
            self.bus_dlq_alarm = self._alarm(
                "BusDeadLetters",
                bus_dlq.metric_approximate_number_of_messages_visible(period=one_minute, statistic="Maximum"),
                threshold=1,
                description="events the bus could not encrypt or decrypt with the stack's key (disabled? its policy?): "
                            "'Encrypted Events' in the bus dead-letter queue (README, Operate)",
            )
        self.timed_out = cw.Metric(
            namespace=self.namespace,
            metric_name=TIMED_OUT_METRIC,
            dimensions_map={"service": coordinator_service},
            statistic="Sum",
            period=five_minutes,
        )
        self.timed_out_alarm = self._alarm(
            "WorkflowsTimedOut", self.timed_out, threshold=1,
            description="workflows finished as TIMED_OUT: an agent did not answer before the deadline",
        )

        # People in the loop: how many workflows wait for a person, and how long the oldest has waited.
        self.waiting: dict[str, cw.Metric] = {}
        self.oldest_wait: dict[str, cw.Metric] = {}
        self.approval_alarms: dict[str, cw.Alarm] = {}
        for workflow in waiting_workflows:
            dimensions = {"service": coordinator_service, "workflow": workflow}
            # No label here: an alarm on a labelled metric is rendered as a metric math query.
            self.waiting[workflow] = cw.Metric(namespace=self.namespace, metric_name=WAITING_METRIC,
                                               dimensions_map=dimensions, statistic="Maximum", period=five_minutes)
            self.oldest_wait[workflow] = cw.Metric(namespace=self.namespace, metric_name=OLDEST_WAIT_METRIC,
                                                   dimensions_map=dimensions, statistic="Maximum",
                                                   period=five_minutes)
            self.approval_alarms[workflow] = self._alarm(
                f"{construct_id(workflow)}WaitsForAPerson", self.oldest_wait[workflow], threshold=approval_alarm_s,
                description=f"{workflow}: a workflow has waited {approval_alarm_s} s or more for a person "
                            "(see `agentbus pending`; README, People in the loop)",
            )

        self.dashboard = cw.Dashboard(self, "Dashboard", default_interval=Duration.hours(3))
        # An alarm widget lists at most ALARMS_PER_WIDGET alarms (each consumer adds 4, each rule 2: a manifest of a
        # few more workflows passes 100): one widget per hundred, or PutDashboard fails and the deploy rolls back.
        chunks = [self.alarms[i:i + ALARMS_PER_WIDGET] for i in range(0, len(self.alarms), ALARMS_PER_WIDGET)]
        self.dashboard.add_widgets(
            cw.AlarmStatusWidget(title="Alarms" + (f" (1 of {len(chunks)})" if len(chunks) > 1 else ""),
                                 alarms=chunks[0], width=12, height=6),
            cw.GraphWidget(
                title="Workflows (every agentbus metric: per service, per agent, per workflow)",
                # A search schema matches exactly its dimension set: one per set the functions emit with
                # (workflow metrics by service, each agent's by service and agent, the census by service and workflow).
                # The namespace is quoted: a stage's may hold a "-", which a search term must quote.
                left=[cw.MathExpression(
                    expression=f"SEARCH('{{\"{self.namespace}\",{dimensions}}}', 'Sum', 300)",
                    label="", period=five_minutes) for dimensions in DASHBOARD_DIMENSION_SETS],
                width=12, height=6,
            ),
        )
        for number, chunk in enumerate(chunks[1:], start=2):
            self.dashboard.add_widgets(cw.AlarmStatusWidget(title=f"Alarms ({number} of {len(chunks)})",
                                                            alarms=chunk, width=24, height=6))
        if waiting_workflows:
            self.dashboard.add_widgets(cw.GraphWidget(
                title="Waiting for a person (census every 5 min)",
                left=[m.with_(label=f"{w}: waiting") for w, m in self.waiting.items()],
                right=[m.with_(label=f"{w}: oldest wait (s)") for w, m in self.oldest_wait.items()],
                right_annotations=[cw.HorizontalAnnotation(value=approval_alarm_s, label="alarm")],
                width=24, height=6,
            ))
        for consumer in consumers:
            name = consumer.consumer.name
            widgets: list[cw.IWidget] = [
                cw.GraphWidget(
                    title=f"{name}: queue",
                    left=[
                        consumer.queue.metric_approximate_number_of_messages_visible(label="visible"),
                        consumer.queue.metric_approximate_number_of_messages_not_visible(label="in flight"),
                        consumer.dlq.metric_approximate_number_of_messages_visible(label="dead letters"),
                    ],
                    right=[consumer.queue.metric_approximate_age_of_oldest_message(label="oldest (s)")],
                    width=12, height=6,
                ),
            ]
            if consumer.function is not None:
                function = consumer.function
                widgets.append(cw.GraphWidget(
                    title=f"{name}: function",
                    left=[
                        function.metric_invocations(label="invocations"),
                        function.metric_errors(label="errors"),
                        function.metric_throttles(label="throttles"),
                        function.metric("ConcurrentExecutions", statistic="Maximum", label="concurrency"),
                    ],
                    right=[function.metric_duration(statistic="p99", label="p99 duration (ms)")],
                    width=12, height=6,
                ))
            self.dashboard.add_widgets(*widgets)

    def _alarm(self, id: str, metric: cw.IMetric, *, threshold: float, description: str) -> cw.Alarm:
        alarm = cw.Alarm(
            self, id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        action = cw_actions.SnsAction(self.topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        self.alarms.append(alarm)
        return alarm
