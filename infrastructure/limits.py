"""AWS limits CloudFormation would enforce only at deploy time, checked at synth: past one, ``cdk deploy`` fails and
rolls back (on a first deploy after the tables, key and bus were made), so the synth fails instead, with one line
naming what is too large, its size at its longest and the limit (``app.py`` prints it).

Values resolved only at deploy (a queue's URL, a table's generated name) are bounded by the longest text they can
resolve to in any account and region, as ``Bus.policy_bytes`` does for the bus policy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_cdk import CfnResource, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs

# Lambda quotas: "Environment variables - 4 KB, for all environment variables associated with the function, in
# aggregate". Lambda measures the variables as a JSON object (its refusal quotes the "String measured").
ENVIRONMENT_MAX_BYTES = 4 * 1024

# CloudFormation quotas: "Resources - Maximum number of resources that you can declare in your CloudFormation
# template - 500". CDK refuses a template over it at synth (TooManyResourcesInStack), as a jsii traceback.
STACK_RESOURCES_MAX = 500
# The context key CDK reads to add its AWS::CDK::Metadata resource (the CDK CLI sets it; it counts as one more).
VERSION_REPORTING = "aws:cdk:version-reporting"

# What CloudFormation substitutes at deploy time, at its longest, so that a bound holds in any account and region.
PSEUDO_MAX = {"AWS::Partition": "aws-us-gov", "AWS::Region": "ap-southeast-7", "AWS::AccountId": "0" * 12,
              "AWS::URLSuffix": "amazonaws.com.cn"}
# A name CloudFormation generates is <stack name>-<logical id>-<random suffix of 12 or 13 characters>, shortened to
# the service's longest name: the bound is the shorter of the two.
GENERATED_SUFFIX = 13
NAME_MAX = {"AWS::SQS::Queue": 80, "AWS::DynamoDB::Table": 255, "AWS::S3::Bucket": 63, "AWS::IAM::Role": 64,
            "AWS::Scheduler::ScheduleGroup": 64, "AWS::Events::EventBus": 256}


class DeployLimit(ValueError):
    """A template CloudFormation would refuse at deploy: one line naming what, its size at its longest and the
    AWS limit."""


class EnvironmentTooLarge(DeployLimit):
    """A function's environment over Lambda's 4 KB."""


class TooManyResources(DeployLimit):
    """A stack over CloudFormation's 500 resources."""


def check_resource_count(stack: Stack, advice: str) -> int:
    """The number of resources in ``stack``'s template (CDK's metadata resource included when it adds one), or
    TooManyResources naming the count, the limit, the largest kinds and ``advice``."""
    kinds: dict[str, int] = {}
    for child in stack.node.find_all():
        if isinstance(child, CfnResource):
            kinds[child.cfn_resource_type] = kinds.get(child.cfn_resource_type, 0) + 1
    count = sum(kinds.values()) + (1 if stack.node.try_get_context(VERSION_REPORTING) else 0)
    if count > STACK_RESOURCES_MAX:
        largest = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:3])
        raise TooManyResources(f"the stack would have {count} resources, over CloudFormation's limit of "
                               f"{STACK_RESOURCES_MAX} per stack (most: {largest}): {advice}")
    return count


def _explicit_name(resource: CfnResource) -> str | None:
    """The name the template gives ``resource`` (None: CloudFormation generates one)."""
    name: Any = None
    if isinstance(resource, sqs.CfnQueue):
        name = resource.queue_name
    elif isinstance(resource, dynamodb.CfnTable):
        name = resource.table_name
    elif isinstance(resource, s3.CfnBucket):
        name = resource.bucket_name
    elif isinstance(resource, iam.CfnRole):
        name = resource.role_name
    elif isinstance(resource, (scheduler.CfnScheduleGroup, events.CfnEventBus)):
        name = resource.name
    if name is None:
        return None
    resolved = Stack.of(resource).resolve(name)
    if resolved is None:
        return None
    if not isinstance(resolved, str):
        raise ValueError(f"the name of {resource.node.path} cannot be bounded: {resolved}")
    return resolved


def longest_name(resource: CfnResource) -> str:
    """``resource``'s physical name at its longest: its own, or the longest CloudFormation may generate."""
    explicit = _explicit_name(resource)
    if explicit is not None:
        return explicit
    stack = Stack.of(resource)
    limit = NAME_MAX.get(resource.cfn_resource_type)
    if limit is None:
        raise ValueError(f"no bound for the generated name of a {resource.cfn_resource_type} ({resource.node.path})")
    generated = f"{stack.stack_name}-{stack.get_logical_id(resource)}-" + "X" * GENERATED_SUFFIX
    return generated[:limit]


def _arn(service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
    return (f"arn:{PSEUDO_MAX['AWS::Partition']}:{service}:{PSEUDO_MAX['AWS::Region'] if region else ''}:"
            f"{PSEUDO_MAX['AWS::AccountId'] if account else ''}:{resource}")


def _ref(resource: CfnResource) -> str:
    """What ``Ref`` returns for ``resource``, at its longest."""
    name = longest_name(resource)
    if isinstance(resource, sqs.CfnQueue):  # the queue's URL
        return (f"https://sqs.{PSEUDO_MAX['AWS::Region']}.{PSEUDO_MAX['AWS::URLSuffix']}/"
                f"{PSEUDO_MAX['AWS::AccountId']}/{name}")
    if isinstance(resource, (dynamodb.CfnTable, s3.CfnBucket, scheduler.CfnScheduleGroup, events.CfnEventBus,
                             iam.CfnRole)):
        return name
    raise ValueError(f"no bound for the Ref of a {resource.cfn_resource_type} ({resource.node.path})")


def _arn_of(resource: CfnResource) -> str:
    """What ``Fn::GetAtt [.., Arn]`` returns for ``resource``, at its longest."""
    name = longest_name(resource)
    if isinstance(resource, sqs.CfnQueue):
        return _arn("sqs", name)
    if isinstance(resource, iam.CfnRole):
        return _arn("iam", f"role/{name}", region=False)
    if isinstance(resource, events.CfnEventBus):
        return _arn("events", f"event-bus/{name}")
    if isinstance(resource, dynamodb.CfnTable):
        return _arn("dynamodb", f"table/{name}")
    if isinstance(resource, scheduler.CfnScheduleGroup):
        return _arn("scheduler", f"schedule-group/{name}")
    if isinstance(resource, s3.CfnBucket):
        return f"arn:{PSEUDO_MAX['AWS::Partition']}:s3:::{name}"
    raise ValueError(f"no bound for the ARN of a {resource.cfn_resource_type} ({resource.node.path})")


def longest(stack: Stack, value: Any, resources: Mapping[str, CfnResource] | None = None) -> Any:
    """``value`` (resolved: strings, lists, dicts and intrinsics) with every intrinsic replaced by the longest text it
    can resolve to; ValueError for an intrinsic it cannot bound. ``resources``: the stack's by logical id, when the
    caller has them already (``resources_by_id``)."""
    if isinstance(value, list):
        resources = resources if resources is not None else resources_by_id(stack)
        return [longest(stack, v, resources) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"} and value["Ref"] in PSEUDO_MAX:
        return PSEUDO_MAX[value["Ref"]]
    resources = resources if resources is not None else resources_by_id(stack)
    if set(value) == {"Ref"}:
        return _ref(_resource(stack, resources, value["Ref"]))
    if set(value) == {"Fn::GetAtt"} and value["Fn::GetAtt"][1] == "Arn":
        return _arn_of(_resource(stack, resources, value["Fn::GetAtt"][0]))
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(str(longest(stack, part, resources)) for part in parts)
    if any(key.startswith("Fn::") or key == "Ref" for key in value):
        raise ValueError(f"cannot be bounded: {value}")
    return {key: longest(stack, v, resources) for key, v in value.items()}


def resources_by_id(stack: Stack) -> dict[str, CfnResource]:
    """The stack's resources as they are now, by logical id: read once per bound, not once per reference."""
    return {stack.get_logical_id(child): child for child in stack.node.find_all() if isinstance(child, CfnResource)}


def _resource(stack: Stack, resources: Mapping[str, CfnResource], logical_id: str) -> CfnResource:
    try:
        return resources[logical_id]
    except KeyError:
        raise ValueError(f"no resource {logical_id} in {stack.stack_name}") from None


def environment_bytes(stack: Stack, environment: Mapping[str, str]) -> dict[str, int]:
    """Each variable's share of the environment's size at its longest (its key and value in the JSON object Lambda
    measures, with its comma), keyed by name; their sum plus 1 (the braces, less the last comma) is the whole."""
    shares: dict[str, int] = {}
    resources = resources_by_id(stack)
    for key, value in environment.items():
        text = longest(stack, stack.resolve(value), resources)
        shares[key] = len(json.dumps({key: str(text)}, separators=(",", ":"), ensure_ascii=False).encode()) - 1
    return shares


def check_environment(stack: Stack, function: str, environment: Mapping[str, str],
                      sources: Mapping[str, str] | None = None) -> int:
    """The environment's size at its longest (bytes), or EnvironmentTooLarge naming ``function``, its largest
    variable (``sources`` says where a variable comes from, e.g. ``-c company_domains``) and Lambda's limit."""
    shares = environment_bytes(stack, environment)
    size = sum(shares.values()) + 1
    if size > ENVIRONMENT_MAX_BYTES:
        largest = max(shares, key=lambda key: shares[key])
        source = (sources or {}).get(largest)
        raise EnvironmentTooLarge(
            f"function {function}'s environment would be up to {size} bytes, over Lambda's limit of "
            f"{ENVIRONMENT_MAX_BYTES} bytes (4 KB, all its variables together): its largest variable is {largest} "
            f"({shares[largest]} bytes" + (f", from {source}" if source else "") + "); make it shorter")
    return size
