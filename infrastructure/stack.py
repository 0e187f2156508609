"""AgentbusStack: a thin composition of the constructs, every name and pattern derived from the manifest."""

from __future__ import annotations

import configparser
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from aws_cdk import Annotations, ArnFormat, Aws, CfnCondition, CfnOutput, CfnRule, CfnRuleAssertion, Fn, Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from agentbus.resources import DEFAULT_STACK_NAME, RESOURCES_OUTPUT_KEY, ConsumerResources, Resources
from functions.common.claim_check import claim_check_prefix, object_expiry_days
from functions.common.settings import (
    MAX_CLAIM_CHECK_THRESHOLD_BYTES,
    METRICS_NAMESPACE,
    MODEL_ID,
    REASONERS,
    function_environment,
    table_variable,
)
from functions.common.spec import BUS_NAME, DEADLINE_SOURCE, MAX_WAIT_S, Manifest, Parameter, check_model_id
from functions.manifest import MANIFEST

from . import nag
from .bundling import functions_code
from .bus import Bus
from .claim_check import ClaimCheckBucket
from .consumer import QueueConsumer, construct_id
from .coordinator import CENSUS_RATE_MINUTES, CoordinatorState
from .limits import check_environment, check_resource_count
from .observability import DEFAULT_APPROVAL_ALARM_S, Observability, metrics_namespace
from .powertools import (
    LAYER_VERSION_ARN,
    POWERTOOLS_LAYER_ACCOUNT,
    POWERTOOLS_LAYER_CHINA_ACCOUNT,
    POWERTOOLS_LAYER_CHINA_REGION,
    POWERTOOLS_LAYER_GOVCLOUD_ACCOUNTS,
    POWERTOOLS_LAYER_NAME,
    POWERTOOLS_LAYER_VERSION,
)
from .reasoner import grant_model
from .security import allow_scheduler_dead_letters, encryption_key

STACK_NAME = DEFAULT_STACK_NAME

_STAGE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,31}$")
_BUS_NAME = re.compile(r"^[A-Za-z0-9._\-]{1,256}$")
MIN_CLAIM_CHECK_THRESHOLD_BYTES = 16 * 1024
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# What aws:PrincipalArn holds for a caller: its role's ARN (not the assumed-role session's), or its user's.
_PRINCIPAL_ARN = re.compile(r"^arn:[a-z*-]+:iam::([0-9]{12}|\*):(role|user)/[\w+=,.@/*-]+$")


def _arn_list(value: Any) -> tuple[str, ...]:
    """``-c approver_arns=a,b`` (or a JSON list in cdk.json): the ARNs, in order, each once."""
    items = value if isinstance(value, list) else str(value or "").split(",")
    return tuple(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))
# The schedule group is named like the bus ([stage-]bus_name): EventBridge Scheduler takes at most 64 characters
# (a bus up to 256), and both services already have a group and a bus named "default" in every account.
SCHEDULE_GROUP_NAME_MAX = 64
RESERVED_NAMES = ("default",)



# Where the CDK CLI finds the region it passes as CDK_DEFAULT_REGION, in its order (aws-cdk's SdkProvider.region):
# these variables, then the profile's region in the shared config file; it also asks EC2's metadata service, and
# falls back to us-east-1 when nothing answers.
_REGION_VARIABLES = ("AWS_REGION", "AMAZON_REGION", "AWS_DEFAULT_REGION", "AMAZON_DEFAULT_REGION")


def configured_region() -> tuple[str, str] | None:
    """The region a user configured (environment or shared config file) and where, or None: then the CDK CLI's
    CDK_DEFAULT_REGION may be its us-east-1 fallback, not where the stack will deploy. A region known only to
    EC2's metadata service or from ``cdk --profile`` is not seen here (the layer check then only warns)."""
    for variable in _REGION_VARIABLES:
        if os.environ.get(variable):
            return os.environ[variable], variable
    profile = os.environ.get("AWS_PROFILE") or os.environ.get("AWS_DEFAULT_PROFILE") or "default"
    path = os.environ.get("AWS_CONFIG_FILE") or os.path.join(os.path.expanduser("~"), ".aws", "config")
    parser = configparser.ConfigParser()
    try:
        parser.read(path)
    except configparser.Error:
        return None
    for section in dict.fromkeys((profile if profile == "default" else f"profile {profile}", "default")):
        if parser.has_option(section, "region") and parser.get(section, "region").strip():
            return parser.get(section, "region").strip(), f"{path} [{section}]"
    return None


@dataclass(frozen=True)
class StackConfig:
    """The CDK context the stack reads (``cdk synth -c bus_name=...``).

    ``stage`` (e.g. ``dev``) prefixes every name that must be unique per account and region: the stack
    (``dev-AgentbusStack``), the bus and the schedule group (``dev-agentbus``). Everything else is named by
    CloudFormation from the stack name, so two stages deploy side by side in one account.
    """

    bus_name: str = BUS_NAME
    stage: str | None = None
    # Manifest parameters by environment variable name, from their CDK context keys (``-c fraud_limit=5000``).
    parameters: dict[str, str] = field(default_factory=dict)
    alarm_email: str | None = None
    # ``-c approver_arns=ARN,ARN``: the only principals (IAM role or user ARNs, ``*`` wildcards) that may put
    # answers and cancels on the bus; empty: any principal of the account.
    approver_arns: tuple[str, ...] = ()
    deadline_seconds: int | None = None
    # Overrides every external agent's wait_s (how long a workflow waits for a person); None: the manifest's.
    approval_wait_seconds: int | None = None
    # Alarm when a workflow has waited this long for a person (the census' OldestWaitSeconds); None: 4 h, or half
    # the longest a person may be waited for when that is shorter (``approval_alarm_s``).
    approval_alarm_seconds: int | None = None
    powertools_layer_version: int = POWERTOOLS_LAYER_VERSION
    # The whole layer version ARN (``-c powertools_layer_arn=``), for a partition or region the publisher accounts
    # below do not cover; None: Powertools' own layer, its account chosen by partition and region at deploy time.
    powertools_layer_arn: str | None = None
    # Entry size (bytes) above which an event's detail goes to the claim-check bucket (None: the default).
    claim_check_threshold_bytes: int | None = None
    # ``-c reasoner=bedrock -c model_id=...``: the agents that declare a reasoner consult that model (off: None).
    reasoner: str | None = None
    model_id: str | None = None

    @classmethod
    def from_context(cls, node: Any, manifest: Manifest = MANIFEST) -> StackConfig:
        def get(name: str) -> Any:
            value = node.try_get_context(name)
            return None if value in (None, "") else value

        if get("powertools_layer_arn") is not None and get("powertools_layer_version") is not None:
            raise ValueError("powertools_layer_arn names its own version: leave out powertools_layer_version")
        parameters = {p.env: str(get(p.context)) for p in manifest_parameters(manifest)
                      if p.context and get(p.context) is not None}
        config = cls(
            bus_name=str(get("bus_name") or cls.bus_name),
            stage=str(get("stage")) if get("stage") else None,
            parameters=parameters,
            alarm_email=str(get("alarm_email")) if get("alarm_email") else None,
            approver_arns=_arn_list(get("approver_arns")),
            deadline_seconds=_positive_int("deadline_seconds", get("deadline_seconds"), maximum=MAX_WAIT_S),
            approval_wait_seconds=_positive_int("approval_wait_seconds", get("approval_wait_seconds"),
                                                maximum=MAX_WAIT_S),
            # An alarm on a wait longer than any wait may last would never fire: the same bound.
            approval_alarm_seconds=_positive_int("approval_alarm_seconds", get("approval_alarm_seconds"),
                                                 maximum=MAX_WAIT_S),
            powertools_layer_version=(_positive_int("powertools_layer_version", get("powertools_layer_version"))
                                      or cls.powertools_layer_version),
            powertools_layer_arn=str(get("powertools_layer_arn")) if get("powertools_layer_arn") else None,
            claim_check_threshold_bytes=_positive_int("claim_check_threshold_bytes",
                                                      get("claim_check_threshold_bytes")),
            reasoner=str(get("reasoner")) if get("reasoner") else None,
            model_id=str(get("model_id")) if get("model_id") else None,
        )
        config.validate(manifest)
        return config

    @property
    def stack_name(self) -> str:
        return f"{self.stage}-{STACK_NAME}" if self.stage else STACK_NAME

    @property
    def qualified_bus_name(self) -> str:
        """The deployed bus name, which is also the schedule group's: ``[stage-]bus_name``."""
        return f"{self.stage}-{self.bus_name}" if self.stage else self.bus_name

    @property
    def metrics_namespace(self) -> str:
        """The functions' metrics and the alarms on them: ``agentbus``, or ``agentbus/<stage>`` (one per stage)."""
        return metrics_namespace(self.stage)

    def validate(self, manifest: Manifest = MANIFEST) -> None:
        if self.stage is not None and not _STAGE.match(self.stage):
            raise ValueError(f"stage {self.stage!r}: a letter, then letters, digits or -, at most 32")
        if not _BUS_NAME.match(self.bus_name):
            raise ValueError(f"bus_name {self.bus_name!r}: letters, digits and . _ - only, at most 256")
        qualified = self.qualified_bus_name
        if len(qualified) > SCHEDULE_GROUP_NAME_MAX:
            raise ValueError(f"bus_name {self.bus_name!r}" + (f" with stage {self.stage!r}" if self.stage else "")
                             + f": the bus and its schedule group are named {qualified!r}, {len(qualified)} "
                             f"characters; a schedule group name has at most {SCHEDULE_GROUP_NAME_MAX}")
        if qualified in RESERVED_NAMES:
            raise ValueError(f"bus_name {self.bus_name!r}: every account already has an event bus and a schedule "
                             f"group named {qualified!r}; choose another name")
        for parameter in manifest_parameters(manifest):
            if parameter.env in self.parameters:
                try:
                    parameter.validate(self.parameters[parameter.env])
                except ValueError as error:
                    raise ValueError(f"{parameter.context or parameter.env}: {error}") from None
        threshold = self.claim_check_threshold_bytes
        if threshold is not None and threshold > MAX_CLAIM_CHECK_THRESHOLD_BYTES:
            raise ValueError(f"claim_check_threshold_bytes must be <= {MAX_CLAIM_CHECK_THRESHOLD_BYTES} "
                             f"(EventBridge's entry limit), got {threshold}")
        if threshold is not None and threshold < MIN_CLAIM_CHECK_THRESHOLD_BYTES:
            # Below, most events would cross the bus as references: an S3 put and get each, and rules and
            # subscribers that see only the routing fields.
            raise ValueError(f"claim_check_threshold_bytes must be >= {MIN_CLAIM_CHECK_THRESHOLD_BYTES} (the data a "
                             f"workflow record keeps inline), got {threshold}")
        if self.powertools_layer_arn is not None and not LAYER_VERSION_ARN.match(self.powertools_layer_arn):
            raise ValueError(f"powertools_layer_arn {self.powertools_layer_arn!r}: not a Lambda layer version ARN "
                             "(arn:<partition>:lambda:<region>:<account>:layer:<name>:<version>)")
        # The template is environment-agnostic, but the CDK CLI says where it deploys (your credentials' region):
        # a layer of another region fails CreateFunction, after the tables, key and bus were made. Refused only
        # when that region was configured; else the CLI's us-east-1 fallback is a guess (layer_region_warning).
        target = os.environ.get("CDK_DEFAULT_REGION")
        if self.powertools_layer_arn is not None and target and self.powertools_layer_arn.split(":")[3] != target \
                and (configured := configured_region()) is not None and configured[0] == target:
            raise ValueError(f"powertools_layer_arn is a layer of {self.powertools_layer_arn.split(':')[3]}, but the "
                             f"stack deploys to {target} ({configured[1]}): Lambda takes a layer of the function's "
                             "own region only")
        for arn in self.approver_arns:
            if not _PRINCIPAL_ARN.match(arn):
                raise ValueError(f"approver_arns: {arn!r} is not an IAM role or user ARN (arn:<partition>:iam::"
                                 "<account>:role/<name> or :user/<name>; * wildcards allowed)")
        if self.alarm_email is not None and not _EMAIL.match(self.alarm_email):
            raise ValueError(f"alarm_email does not look like an e-mail address: {self.alarm_email!r}")
        longest = self.longest_person_wait_s(manifest)
        census_s = CENSUS_RATE_MINUTES * 60
        if self.approval_alarm_seconds is not None and longest and self.approval_alarm_seconds > longest - census_s:
            waits = (f"a workflow waits for a person at most {longest} s here (its deadline or the person's wait, "
                     + ("approval_wait_seconds" if self.approval_wait_seconds else "each external agent's wait_s")
                     + f"), and the census counts every {CENSUS_RATE_MINUTES} min")
            # Black-box pass 9B, F10: under the census' interval no threshold can fire ("give at most -180").
            raise ValueError(
                f"approval_alarm_seconds={self.approval_alarm_seconds} can never fire: {waits}; "
                + (f"give at most {longest - census_s}" if longest > census_s else
                   f"no threshold can fire while a person is waited for {census_s} s or less: leave "
                   "approval_alarm_seconds out, or wait longer (approval_wait_seconds, deadline_seconds)"))
        self.validate_reasoner(manifest)
        for workflow in manifest.workflows:
            workflow.trigger_model  # noqa: B018 - ValueError naming the workflow: an id_field its model lacks

    def longest_person_wait_s(self, manifest: Manifest = MANIFEST) -> int:
        """The longest a workflow may wait for a person (0: none has people): asked at once, it waits the later of
        its deadline and the person's wait (``effective_deadline``), with this deploy's overrides."""
        return max((max(self.deadline_seconds or w.deadline_s, *(self.approval_wait_seconds or e.wait_s
                                                                  for e in w.external))
                    for w in manifest.coordinated if w.external), default=0)

    def approval_alarm_s(self, manifest: Manifest = MANIFEST) -> int:
        """The WaitsForAPerson alarms' threshold: the context's, else 4 h, or less when a person is waited for less
        long (half the longest wait, and at most the longest wait less the census' interval: the rule ``validate``
        applies to a given value), so that the alarm can fire. When a person is waited for no longer than the
        census' interval, no threshold can fire: half the longest wait, an alarm that stays OK."""
        if self.approval_alarm_seconds is not None:
            return self.approval_alarm_seconds
        longest = self.longest_person_wait_s(manifest)
        if not longest:
            return DEFAULT_APPROVAL_ALARM_S
        census_s = CENSUS_RATE_MINUTES * 60
        reachable = longest - census_s
        return min(DEFAULT_APPROVAL_ALARM_S, longest // 2, reachable) if reachable > 0 else max(1, longest // 2)

    def layer_region_warning(self) -> str | None:
        """What to say when ``powertools_layer_arn`` is of another region than the CDK CLI's, which was not
        configured (no AWS_REGION, AWS_DEFAULT_REGION or profile region): the CLI then says us-east-1 whatever the
        deploy will use, so ``validate`` does not refuse (black-box pass 9B, F10)."""
        target = os.environ.get("CDK_DEFAULT_REGION")
        if self.powertools_layer_arn is None or not target:
            return None
        layer_region = self.powertools_layer_arn.split(":")[3]
        if layer_region == target:
            return None
        return (f"powertools_layer_arn is a layer of {layer_region}, and the CDK CLI says {target}, its default when "
                "no region is configured (AWS_REGION, AWS_DEFAULT_REGION, the profile's region): Lambda takes a "
                f"layer of the function's own region only, so deploy to {layer_region}")

    def validate_reasoner(self, manifest: Manifest) -> None:
        if self.reasoner is None:
            if self.model_id is not None:
                raise ValueError(f"model_id={self.model_id} turns nothing on without -c reasoner=bedrock")
            return
        if self.reasoner not in REASONERS:
            raise ValueError(f"reasoner={self.reasoner}: unknown; the one reasoner is {', '.join(REASONERS)} "
                             "(leave it out for rules only)")
        declaring = [agent for agent in manifest.agents if agent.reasoner is not None]
        if not declaring:
            raise ValueError(f"reasoner={self.reasoner}: no agent of the manifest declares a reasoner")
        needing = [agent.name for agent in declaring if agent.reasoner and not agent.reasoner.model_id]
        if needing and self.model_id is None:
            raise ValueError(f"reasoner={self.reasoner} needs -c model_id=<Bedrock inference profile or model id> "
                             "(e.g. us.anthropic.claude-3-5-haiku-20241022-v1:0, or the eu., apac. or global. "
                             "profile: Bedrock serves Claude 3.5 and later through a cross-Region inference profile, "
                             f"in most Regions not on demand by the bare model id) for {', '.join(needing)}")
        if self.model_id is not None:
            check_model_id(self.model_id)


def account_sources(manifest: Manifest) -> list[str]:
    """Sources any principal of the account may use, nobody else's: external agents' answers and cancels."""
    sources = {agent.source for w in manifest.coordinated for agent in w.external}
    sources |= {source for w in manifest.coordinated if w.cancellable for source in w.cancel_sources}
    return sorted(sources)


def manifest_parameters(manifest: Manifest) -> list[Parameter]:
    return [parameter for consumer in manifest.consumers for parameter in consumer.parameters]


def _positive_int(name: str, value: Any, maximum: int | None = None) -> int | None:
    """A whole number > 0 (and at most ``maximum``: a deadline or a wait beyond MAX_WAIT_S, 366 days, would
    overflow the coordinator's deadline arithmetic and dead-letter every trigger)."""
    if value is None:
        return None
    try:
        number = int(str(value))
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {value!r}") from None
    if number <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if maximum is not None and number > maximum:
        raise ValueError(f"{name} must be at most {maximum}" + (" (366 days)" if maximum == MAX_WAIT_S else "")
                         + f", got {value!r}")
    return number


class AgentbusStack(Stack):
    def __init__(self, scope: Construct, id: str = STACK_NAME, *, config: StackConfig | None = None,
                 manifest: Manifest = MANIFEST, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        config = config or StackConfig()
        self.config = config
        if (warning := config.layer_region_warning()) is not None:
            Annotations.of(self).add_warning_v2("agentbus:powertools-layer-region", warning)
        self.manifest = manifest

        self.key = encryption_key(self, "Key")
        # The group's name, not its Ref: the key need not wait for the group.
        allow_scheduler_dead_letters(self.key, config.qualified_bus_name)
        self.bus = Bus(self, "Bus", bus_name=config.qualified_bus_name, key=self.key)
        self.claim_checks = ClaimCheckBucket(self, "ClaimChecks", key=self.key, expiry_days=object_expiry_days(
            manifest.longest_open_s(config.deadline_seconds, config.approval_wait_seconds)))
        self.state = CoordinatorState(self, "Coordination", manifest=manifest, bus=self.bus.event_bus,
                                      key=self.key, schedule_group_name=config.qualified_bus_name)

        # Queues and rules of every consumer first: each function's environment names them.
        self.consumers: dict[str, QueueConsumer] = {
            consumer.name: QueueConsumer(
                self, construct_id(consumer.name),
                consumer=consumer,
                subscriptions=manifest.subscriptions(consumer),
                bus=self.bus.event_bus,
                key=self.key,
            )
            for consumer in manifest.consumers
        }
        self.resources = Resources(
            bus_name=self.bus.event_bus.event_bus_name,
            bus_arn=self.bus.event_bus.event_bus_arn,
            archive_name=self.bus.archive_name,
            schedule_group=self.state.schedule_group_name,
            scheduler_role_arn=self.state.scheduler_role.role_arn,
            tables={name: table.table_name for name, table in self.state.tables.items()},
            consumers={
                name: ConsumerResources(queue_url=c.queue.queue_url, queue_arn=c.queue.queue_arn,
                                        dlq_url=c.dlq.queue_url, dlq_arn=c.dlq.queue_arn)
                for name, c in self.consumers.items()
            },
            local=False,
            extra={},
            deadline_dlq_arn=self.state.deadline_dlq.queue_arn,
            claim_check_bucket=self.claim_checks.bucket.bucket_name,
        )

        code = functions_code()
        powertools = lambda_.LayerVersion.from_layer_version_arn(
            self, "Powertools", config.powertools_layer_arn or self.format_arn(
                service="lambda", account=self._powertools_account(), resource="layer",
                resource_name=f"{POWERTOOLS_LAYER_NAME}:{config.powertools_layer_version}",
                arn_format=ArnFormat.COLON_RESOURCE_NAME),
        )
        for consumer in manifest.consumers:
            built = self.consumers[consumer.name]
            environment = self.function_environment(consumer.name)
            # Over Lambda's 4 KB the deploy would fail (CreateFunction): the synth does, naming the largest variable.
            check_environment(self, consumer.name, environment, self.variable_sources(consumer.name))
            function = built.add_function(
                code=code,
                layers=[powertools],
                environment=environment,
                tables=self.state.tables,
            )
            self.resources.consumers[consumer.name].function_name = function.function_name
            self.claim_checks.grant(built.role, claim_check_prefix(consumer))
            if consumer.schedules:
                self.state.grant_scheduling(built.role)
            # The census (only with a census schedule) is the coordinator's; it scans the workflow table.
            if self.state.census_schedule is not None and manifest.coordinator is not None \
                    and consumer.name == manifest.coordinator.name:
                self.state.grant_census(built.role)
            # A model turned on for this function (its environment names it): that model, this role only.
            model_id = self.function_environment(consumer.name).get(MODEL_ID)
            if model_id:
                grant_model(built.role, model_id)

        # Reserved sources: only the owning role may publish under each.
        owners = {c.consumer.source: c.role for c in self.consumers.values()}
        owners[DEADLINE_SOURCE] = self.state.scheduler_role
        self.bus.reserve_sources(owners)
        self.bus.account_only_sources(account_sources(manifest), config.approver_arns)
        self.bus.check_policy_size()  # over 10 KB the deploy would fail: the synth does, naming the size

        coordinator = manifest.coordinator
        if coordinator is None:
            raise ValueError("the manifest coordinates no workflow; the stack's alarms and dashboard need one")
        self.observability = Observability(
            self, "Observability",
            consumers=list(self.consumers.values()),
            coordinator_service=coordinator.name,
            bus_name=config.qualified_bus_name,
            schedule_group_name=self.state.schedule_group_name,
            deadline_dlq=self.state.deadline_dlq,
            bus_dlq=self.bus.dead_letter_queue,
            key=self.key,
            alarm_email=config.alarm_email,
            waiting_workflows=[w.name for w in manifest.coordinated if w.external],
            approval_alarm_s=config.approval_alarm_s(manifest),
            namespace=config.metrics_namespace,
        )

        CfnOutput(
            self, RESOURCES_OUTPUT_KEY,
            description="Every agentbus resource name, as agentbus.resources.Resources JSON (read by the CLI)",
            value=self.to_json_string(asdict(self.resources)),
        )
        CfnOutput(self, "DashboardName", value=self.observability.dashboard.dashboard_name)
        CfnOutput(self, "AlarmTopicArn", value=self.observability.topic.topic_arn)
        CfnOutput(self, "BusDeadLetterQueueUrl", value=self.bus.dead_letter_queue.queue_url,
                  description="the bus's dead-letter queue: 'Encrypted Events' the bus could not encrypt or decrypt")

        # Over 500 resources CDK refuses the template with a jsii traceback: the synth fails here first, in one line.
        check_resource_count(self, "each agent adds 16 (a queue and its dead-letter queue, their policies, its rule, "
                                   "function, role, policy, log group, event source mapping and 6 alarms; 3 more with "
                                   "compensate_on), each coordinated workflow 6 more (10 if it waits for a person) "
                                   "and 1 per table; put fewer agents in one stack: deploy the others from another "
                                   "manifest as a second stage (app.py's manifest=, -c stage=...)")
        nag.acknowledge(self)

    def _powertools_account(self) -> str:
        """The account that publishes the Powertools layer where the stack is deployed: the template is
        environment-agnostic, so CloudFormation picks it from the partition (aws-cn) and the region (GovCloud),
        the commercial account elsewhere. A layer in another account of the same region and partition would not
        exist (CreateFunction fails)."""
        choice = POWERTOOLS_LAYER_ACCOUNT
        for region, account in sorted(POWERTOOLS_LAYER_GOVCLOUD_ACCOUNTS.items(), reverse=True):
            condition = CfnCondition(self, f"PowertoolsIn{construct_id(region)}",
                                     expression=Fn.condition_equals(Aws.REGION, region))
            choice = Fn.condition_if(condition.logical_id, account, choice).to_string()
        china = CfnCondition(self, "PowertoolsInChina", expression=Fn.condition_equals(Aws.PARTITION, "aws-cn"))
        # In China Powertools publishes the layer in one region: elsewhere there the deploy stops before it creates
        # anything, saying what to do, instead of rolling back at the first function (review rev20b, L2).
        CfnRule(self, "PowertoolsLayerInChina", rule_condition=Fn.condition_equals(Aws.PARTITION, "aws-cn"),
                assertions=[CfnRuleAssertion(
                    assert_=Fn.condition_equals(Aws.REGION, POWERTOOLS_LAYER_CHINA_REGION),
                    assert_description=f"the Powertools Lambda layer is published in {POWERTOOLS_LAYER_CHINA_REGION} "
                                       "only in China: deploy there, or give -c powertools_layer_arn=ARN (a layer "
                                       "version of this region)")])
        return Fn.condition_if(china.logical_id, POWERTOOLS_LAYER_CHINA_ACCOUNT, choice).to_string()

    def variable_sources(self, consumer_name: str) -> dict[str, str]:
        """Where the variables of ``consumer_name``'s environment that a user sets come from: a manifest parameter
        (``-c <context>`` when given, or its default), a table's generated name."""
        consumer = self.manifest.consumer(consumer_name)
        sources = {table_variable(table): f"table {table!r}'s name, generated by CloudFormation"
                   for table in consumer.tables}
        for parameter in consumer.parameters:
            given = parameter.env in self.config.parameters
            sources[parameter.env] = (f"-c {parameter.context}" if given and parameter.context
                                      else f"agent {consumer_name!r}'s parameter {parameter.env} in the manifest")
        return sources

    def function_environment(self, consumer_name: str) -> dict[str, str]:
        """The variables functions/common/settings.py writes and parses, the same the local runtime sets."""
        resources = self.resources
        return {
            **function_environment(
                self.manifest.consumer(consumer_name), self.manifest,
                bus_name=resources.bus_name, bus_arn=resources.bus_arn, tables=resources.tables,
                dead_letter_queue_url=resources.consumers[consumer_name].dlq_url,
                schedule_group=resources.schedule_group, scheduler_role_arn=resources.scheduler_role_arn,
                schedule_dead_letter_arn=resources.deadline_dlq_arn,
                parameters=self.config.parameters, deadline_seconds=self.config.deadline_seconds,
                external_wait_seconds=self.config.approval_wait_seconds,
                claim_check_bucket=resources.claim_check_bucket,
                claim_check_threshold=self.config.claim_check_threshold_bytes,
                reasoner=self.config.reasoner, model_id=self.config.model_id,
            ),
            METRICS_NAMESPACE: self.config.metrics_namespace,
        }
