"""Findings of the review of the synthesized AWS deployment (reviewer bb4b), each held by the template.

The stacks here are built in-process without cdk-nag's plugins (fast); cdk-nag and cfn-lint run on the
session's synth (test_stack_compliance.py), which has every resource these tests add.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from infrastructure.stack import AgentbusStack, StackConfig
from tests.infrastructure.template import join

REPO_ROOT = Path(__file__).resolve().parents[2]


@cache
def template(**config: Any) -> dict[str, Any]:
    """The template of a stack with this configuration (cached: each config is synthesized once per process)."""
    stack = AgentbusStack(cdk.App(), config=StackConfig(**config))
    return dict(Template.from_stack(stack).to_json())


def of_type(resources: dict[str, Any], cfn_type: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in resources["Resources"].items() if r["Type"] == cfn_type}


def own_metric_namespaces(resources: dict[str, Any]) -> set[str]:
    """The namespaces of every alarm on a metric of agentbus's own (not AWS/...)."""
    found = set()
    for alarm in of_type(resources, "AWS::CloudWatch::Alarm").values():
        namespace = alarm["Properties"].get("Namespace")
        assert namespace is not None, f"an alarm on metric math: {alarm['Properties']}"
        if not namespace.startswith("AWS/"):
            found.add(namespace)
    return found


def dashboard_body(resources: dict[str, Any]) -> str:
    (dashboard,) = of_type(resources, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    return body if isinstance(body, str) else "".join(p if isinstance(p, str) else "<token>"
                                                      for p in body["Fn::Join"][1])


def search_of(namespace: str, dimensions: str) -> str:
    """The dashboard's search expression for ``namespace`` and ``dimensions``, as the body (JSON) holds it."""
    return json.dumps(f"SEARCH('{{\"{namespace}\",{dimensions}}}', 'Sum', 300)")[1:-1]


def function_namespaces(resources: dict[str, Any]) -> set[str]:
    return {f["Properties"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
            for f in of_type(resources, "AWS::Lambda::Function").values()}


# D2: metrics and alarms per stage.

def test_a_stage_has_its_own_metric_namespace_in_functions_alarms_and_dashboard() -> None:
    """Two stages in one account and region: a dev workflow timing out must not fire prod's alarm."""
    staged = template(stage="dev")
    assert function_namespaces(staged) == {"agentbus/dev"}
    assert own_metric_namespaces(staged) == {"agentbus/dev"}
    body = dashboard_body(staged)
    assert search_of("agentbus/dev", "service") in body
    assert search_of("agentbus", "service") not in body


def test_the_default_stage_keeps_the_namespace_agentbus() -> None:
    default = template()
    assert function_namespaces(default) == {"agentbus"}
    assert own_metric_namespaces(default) == {"agentbus"}
    assert search_of("agentbus", "service") in dashboard_body(default)


def test_the_functions_and_the_census_emit_in_the_namespace_the_stack_sets() -> None:
    """The functions read POWERTOOLS_METRICS_NAMESPACE at cold start: the shared metrics, each agent's metrics and
    the census all emit in the stage's namespace (a fresh interpreter, as a Lambda cold start)."""
    code = ("from functions.common.observability import NAMESPACE, metrics\n"
            "from functions.common.agent import AgentMetrics\n"
            "from functions.coordinator.census import PowertoolsCensusMetrics\n"
            "print(NAMESPACE, metrics.namespace, AgentMetrics('fraud').namespace, PowertoolsCensusMetrics().namespace)")
    env = {**os.environ, "POWERTOOLS_METRICS_NAMESPACE": "agentbus/dev"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()
    assert out == ["agentbus/dev"] * 4



# D9: the dashboard searches every dimension set the functions emit with.

def test_the_dashboard_searches_the_agent_and_census_metrics_too() -> None:
    """A search schema matches exactly its dimension set: {service} alone never shows AgentDuration / AgentErrors
    ({service, agent}) or the census' WorkflowsWaitingForPerson / OldestWaitSeconds ({service, workflow})."""
    for config, namespace in (({}, "agentbus"), ({"stage": "dev"}, "agentbus/dev")):
        body = dashboard_body(template(**config))
        for dimensions in ("service", "service,agent", "service,workflow"):
            assert search_of(namespace, dimensions) in body, (namespace, dimensions)


# D5: EventBridge Scheduler may use the key for the deadline DLQ, for this account's deadline schedules only.

def key_statements(resources: dict[str, Any]) -> list[dict[str, Any]]:
    (key,) = of_type(resources, "AWS::KMS::Key").values()
    return list(key["Properties"]["KeyPolicy"]["Statement"])


def test_the_key_policy_lets_scheduler_use_the_key_for_its_group_only() -> None:
    for config, group in (({}, "agentbus"), ({"stage": "dev"}, "dev-agentbus")):
        found = [s for s in key_statements(template(**config))
                 if s.get("Principal") == {"Service": "scheduler.amazonaws.com"}]
        assert len(found) == 1, found
        (statement,) = found
        assert statement["Effect"] == "Allow"
        assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
        conditions = statement["Condition"]
        assert conditions["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
        assert join(conditions["ArnLike"]["aws:SourceArn"]) == (
            f"arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/{group}/*")


# D4: the encrypted bus has a dead-letter queue of its own, EventBridge may send to it from this bus only, and it is
# alarmed on like every other DLQ.

def ref(value: Any) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def test_the_encrypted_bus_dead_letters_to_a_queue_only_it_may_send_to() -> None:
    for config, bus_name in (({}, "agentbus"), ({"stage": "dev"}, "dev-agentbus")):
        resources = template(**config)
        (bus,) = of_type(resources, "AWS::Events::EventBus").values()
        assert "KmsKeyIdentifier" in bus["Properties"]
        queue_id = ref(bus["Properties"]["DeadLetterConfig"]["Arn"])
        assert queue_id is not None
        queue = resources["Resources"][queue_id]
        assert queue["Type"] == "AWS::SQS::Queue"
        # Not the stack's key: the queue must take the events the bus could not encrypt with that key.
        assert queue["Properties"].get("SqsManagedSseEnabled") is True
        assert "KmsMasterKeyId" not in queue["Properties"]
        (policy,) = [p for p in of_type(resources, "AWS::SQS::QueuePolicy").values()
                     if queue_id in [ref(q) for q in p["Properties"]["Queues"]]]
        allows = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
        assert len(allows) == 1, allows
        (allow,) = allows
        assert allow["Principal"] == {"Service": "events.amazonaws.com"}
        assert allow["Action"] == "sqs:SendMessage"
        assert ref(allow["Resource"]) == queue_id
        assert join(allow["Condition"]["ArnEquals"]["aws:SourceArn"]) == (
            f"arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:event-bus/{bus_name}")


def test_the_bus_dead_letter_queue_is_alarmed_on_and_named_in_the_outputs() -> None:
    resources = template()
    (bus,) = of_type(resources, "AWS::Events::EventBus").values()
    queue_id = ref(bus["Properties"]["DeadLetterConfig"]["Arn"])
    alarms = [a["Properties"] for a in of_type(resources, "AWS::CloudWatch::Alarm").values()
              if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
              and [ref(d["Value"]) for d in a["Properties"]["Dimensions"]] == [queue_id]]
    assert len(alarms) == 1, alarms
    (alarm,) = alarms
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert alarm["AlarmActions"] and alarm["OKActions"]
    assert ref(resources["Outputs"]["BusDeadLetterQueueUrl"]["Value"]) == queue_id


# D7: the Powertools layer's publisher account depends on the partition and region; -c powertools_layer_arn overrides.

LAYER = "layer:AWSLambdaPowertoolsPythonV3-python313-arm64:27"


def evaluate(value: Any, conditions: dict[str, Any], env: dict[str, str]) -> Any:
    """A template value as CloudFormation would resolve it in ``env`` (pseudo parameters): Ref, Join, If, Equals."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return [evaluate(v, conditions, env) for v in value]
    if "Ref" in value:
        return env[value["Ref"]]
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(evaluate(part, conditions, env) for part in parts)
    if "Fn::If" in value:
        name, then, otherwise = value["Fn::If"]
        return evaluate(then if evaluate(conditions[name], conditions, env) else otherwise, conditions, env)
    if "Fn::Equals" in value:
        left, right = value["Fn::Equals"]
        return evaluate(left, conditions, env) == evaluate(right, conditions, env)
    raise AssertionError(f"unexpected intrinsic {value}")


def layer_arns(resources: dict[str, Any], partition: str, region: str) -> set[str]:
    env = {"AWS::Partition": partition, "AWS::Region": region, "AWS::AccountId": "111122223333"}
    conditions = resources.get("Conditions", {})
    return {evaluate(layer, conditions, env) for f in of_type(resources, "AWS::Lambda::Function").values()
            for layer in f["Properties"]["Layers"]}


def test_the_powertools_layer_comes_from_the_publisher_account_of_the_partition_and_region() -> None:
    resources = template()
    for partition, region, account in (("aws", "eu-west-1", "017000801446"), ("aws", "us-east-1", "017000801446"),
                                       ("aws-cn", "cn-north-1", "498634801083"),
                                       ("aws-us-gov", "us-gov-east-1", "165087284144"),
                                       ("aws-us-gov", "us-gov-west-1", "165093116878")):
        assert layer_arns(resources, partition, region) == {f"arn:{partition}:lambda:{region}:{account}:{LAYER}"}


def test_a_china_region_without_the_layer_stops_the_deploy_before_anything_is_created() -> None:
    """Review rev20b, L2: cn-northwest-1 got the China account's layer ARN, which does not exist there: the deploy
    rolled back at the first function. A template rule (checked before any resource) says what to do."""
    resources = template()
    rule = resources["Rules"]["PowertoolsLayerInChina"]
    conditions = resources.get("Conditions", {})
    for partition, region, holds in (("aws-cn", "cn-north-1", True), ("aws-cn", "cn-northwest-1", False),
                                     ("aws", "eu-west-1", True)):
        env = {"AWS::Partition": partition, "AWS::Region": region}
        applies = evaluate(rule["RuleCondition"], conditions, env)
        [assertion] = rule["Assertions"]
        assert (not applies or evaluate(assertion["Assert"], conditions, env)) is holds, region
    assert "-c powertools_layer_arn=ARN" in assertion["AssertDescription"]
    own_layer = template(powertools_layer_arn="arn:aws-cn:lambda:cn-northwest-1:123456789012:layer:P:1")
    assert "PowertoolsLayerInChina" not in own_layer.get("Rules", {})


def test_powertools_layer_arn_overrides_the_layer_of_every_function() -> None:
    arn = "arn:aws-iso:lambda:us-iso-east-1:123456789012:layer:MyPowertools:3"
    resources = template(powertools_layer_arn=arn)
    assert layer_arns(resources, "aws-iso", "us-iso-east-1") == {arn}
    assert not [c for c in resources.get("Conditions", {}) if c.startswith("Powertools")]


class Node:
    def __init__(self, **context: str) -> None:
        self.context = context

    def try_get_context(self, name: str) -> str | None:
        return self.context.get(name)


def test_a_bad_powertools_layer_arn_fails_the_synth_naming_the_key() -> None:
    arn = "arn:aws:lambda:eu-west-1:123456789012:layer:Mine:4"
    assert StackConfig.from_context(Node(powertools_layer_arn=arn)).powertools_layer_arn == arn
    with pytest.raises(ValueError, match="^powertools_layer_arn 'Mine:4': not a Lambda layer version ARN"):
        StackConfig.from_context(Node(powertools_layer_arn="Mine:4"))
    with pytest.raises(ValueError, match="^powertools_layer_arn names its own version"):
        StackConfig.from_context(Node(powertools_layer_arn=arn, powertools_layer_version="5"))


# D8: a bus policy over EventBridge's 10 KB fails the synth with one line (the deploy would fail and roll back).

def bus_with_reserved_sources(count: int) -> Any:
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_kms as kms

    from infrastructure.bus import Bus

    stack = cdk.Stack(cdk.App(), "Bus")
    bus = Bus(stack, "Bus", bus_name="agentbus", key=kms.Key(stack, "Key"))
    bus.reserve_sources({f"agentbus.agent.a{i}": iam.Role(stack, f"Role{i}",
                                                           assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
                         for i in range(count)})
    bus.account_only_sources(["agentbus.person"])
    return bus


def test_the_bus_policy_size_is_bounded_with_the_longest_names() -> None:
    from infrastructure.bus import POLICY_MAX_BYTES

    sizes = [bus_with_reserved_sources(n).policy_bytes() for n in (1, 2, 3)]
    per_source = sizes[1] - sizes[0]
    assert sizes[2] - sizes[1] == per_source
    # Each statement names a role ARN (a generated role name has up to 64 characters) and the bus's ARN.
    assert 330 <= per_source <= 420, per_source
    shipped = AgentbusStack(cdk.App()).bus
    assert shipped.policy_bytes() < POLICY_MAX_BYTES


def test_a_bus_policy_over_10_kb_fails_the_synth_naming_the_size_and_the_limit() -> None:
    from infrastructure.bus import POLICY_MAX_BYTES, PolicyTooLarge

    bus_with_reserved_sources(20).check_policy_size()
    too_many = bus_with_reserved_sources(30)
    with pytest.raises(PolicyTooLarge) as raised:
        too_many.check_policy_size()
    message = str(raised.value)
    assert "\n" not in message
    assert f"would be up to {too_many.policy_bytes()} bytes, over EventBridge's limit of {POLICY_MAX_BYTES}" in message
    assert "30 reserved sources" in message


def test_the_app_prints_the_policy_size_error_as_one_line(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    import app
    import infrastructure.bus

    monkeypatch.setattr(infrastructure.bus, "POLICY_MAX_BYTES", 1024)
    monkeypatch.delenv("CDK_CONTEXT_JSON", raising=False)
    assert app.main() == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith("agentbus synth")]  # not CDK's bundling notes
    assert line.startswith("agentbus synth: the event bus policy would be up to ") and "limit of 1024 bytes" in line
