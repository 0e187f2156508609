"""AWS limits a template could pass at synth and fail at ``cdk deploy`` on CloudFormation (black-box pass 9B): each
is made to fit or fails the synth with one line naming the culprit, the size and the limit.

Stacks are built in-process without cdk-nag (fast), as in test_deploy_review.py; the app itself runs as the CDK CLI
runs it where its one-line error is what is checked.
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

from functions.common.spec import EVENT_PATTERN_MAX_CHARS, Manifest
from functions.manifest import MANIFEST
from infrastructure.stack import AgentbusStack, StackConfig
from tests.infrastructure.template import ref_id
from tests.limits import many_agents, with_expenses

REPO_ROOT = Path(__file__).resolve().parents[2]


def build(manifest: Manifest | None = None, **config: Any) -> dict[str, Any]:
    """The template of a stack of ``manifest`` (None: the shipped one) with this configuration."""
    kwargs: dict[str, Any] = {"manifest": manifest} if manifest is not None else {}
    stack = AgentbusStack(cdk.App(), config=StackConfig(**config), **kwargs)
    return dict(Template.from_stack(stack).to_json())


@cache
def template() -> dict[str, Any]:
    """The shipped stack's template (once per process)."""
    return build()


def of_type(resources: dict[str, Any], cfn_type: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in resources["Resources"].items() if r["Type"] == cfn_type}


def run_app(code: str, outdir: Path, context: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    """``app.py`` as the CDK CLI runs it, after ``code`` (a patch of a limit, to reach it with a small manifest)."""
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context or {}), "CDK_OUTDIR": str(outdir),
           "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    script = f"import runpy, sys\n{code}\nsys.argv = ['app.py']\nrunpy.run_path('app.py', run_name='__main__')\n"
    return subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=240)


def one_line(result: subprocess.CompletedProcess[str], outdir: Path) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("agentbus synth")]
    assert not list(outdir.glob("*.template.json")), "no template is written"
    return line


# -- F1: EventBridge's 2,048-character event pattern ------------------------------------------------------------

def test_every_rule_pattern_of_the_shipped_stack_fits() -> None:
    rules = of_type(template(), "AWS::Events::Rule")
    for rule_id, rule in rules.items():
        size = len(json.dumps(rule["Properties"]["EventPattern"], ensure_ascii=False))
        assert size <= EVENT_PATTERN_MAX_CHARS, rule_id


def test_a_workflow_of_15_agents_gets_its_results_in_two_rules_into_the_coordinators_queue() -> None:
    """The review's 1 x 15 workflow: one results rule of 2,083 characters deployed nowhere (PutRule refuses it)."""
    workflow = many_agents(15)
    assert workflow.result_subscription.pattern_chars() > EVENT_PATTERN_MAX_CHARS
    resources = build(with_expenses(workflow))
    rules = of_type(resources, "AWS::Events::Rule")
    for rule_id, rule in rules.items():
        size = len(json.dumps(rule["Properties"]["EventPattern"], ensure_ascii=False))
        assert size <= EVENT_PATTERN_MAX_CHARS, (rule_id, size)
    results = {r["Properties"]["Name"]: r for r in rules.values()
               if r["Properties"]["Name"].startswith("coordinator-expense-claim-results")}
    assert sorted(results) == ["coordinator-expense-claim-results", "coordinator-expense-claim-results-2"]
    [queue] = {ref_id(t["Arn"]) for r in results.values() for t in r["Properties"]["Targets"]}
    sources = [s for r in results.values() for s in r["Properties"]["EventPattern"]["source"]]
    assert sorted(sources) == sorted(agent.source for agent in workflow.agents)
    # The coordinator's queue takes both rules' deliveries (its policy names each rule), and each rule is alarmed.
    rule_ids = {k for k, r in rules.items() if r["Properties"]["Name"] in results}
    [policy] = [p["Properties"]["PolicyDocument"] for p in of_type(resources, "AWS::SQS::QueuePolicy").values()
                if queue in [ref_id(q) for q in p["Properties"]["Queues"]]]
    [statement] = [s for s in policy["Statement"] if s.get("Sid") == "OnlyThisConsumersRules"]
    assert rule_ids <= {ref_id(arn) for arn in statement["Condition"]["ArnEquals"]["aws:SourceArn"]}
    alarmed = {d["Value"] for a in of_type(resources, "AWS::CloudWatch::Alarm").values()
               for d in a["Properties"].get("Dimensions", []) if d["Name"] == "RuleName"}
    assert set(results) <= alarmed


def test_a_rule_pattern_the_manifest_cannot_split_fails_the_synth_as_one_line(tmp_path: Path) -> None:
    # The inventory agent's compensation rule is 156 characters (a space after each separator, as pattern_chars
    # measures): under a limit of 100 it is refused, naming it.
    result = run_app("import functions.common.spec as spec\nspec.EVENT_PATTERN_MAX_CHARS = 100", tmp_path)
    line = one_line(result, tmp_path)
    assert line.startswith("agentbus synth: invalid manifest: "), line
    assert ("agent 'inventory' (workflow 'order-fulfillment'): rule inventory-compensation's event pattern would be "
            "156 characters, over EventBridge's limit of 100") in line


# -- F3: Lambda's 4 KB environment --------------------------------------------------------------------------------

def test_an_environment_is_bounded_with_every_deploy_time_value_at_its_longest() -> None:
    from aws_cdk import aws_dynamodb as dynamodb
    from aws_cdk import aws_sqs as sqs

    from infrastructure.limits import ENVIRONMENT_MAX_BYTES, EnvironmentTooLarge, check_environment, environment_bytes

    stack = cdk.Stack(cdk.App(), "Limits")
    queue = sqs.Queue(stack, "Queue")
    table = dynamodb.Table(stack, "Table", partition_key=dynamodb.Attribute(name="id",
                                                                            type=dynamodb.AttributeType.STRING))
    environment = {"QUEUE": queue.queue_url, "TABLE": table.table_name, "ARN": queue.queue_arn, "PLAIN": "x" * 10}
    shares = environment_bytes(stack, environment)
    assert shares["PLAIN"] == len('"PLAIN":"xxxxxxxxxx",')
    # A queue's URL in the longest region and URL suffix, with the longest name CloudFormation may generate.
    assert shares["QUEUE"] >= len('"QUEUE":"https://sqs.ap-southeast-7.amazonaws.com.cn/000000000000/Limits-Queue",')
    assert shares["TABLE"] >= len('"TABLE":"Limits-Table-XXXXXXXXXXXXX",')
    size = check_environment(stack, "f", environment)
    assert size == sum(shares.values()) + 1  # the braces, less the last pair's comma
    big = {**environment, "DOMAINS": "d" * (ENVIRONMENT_MAX_BYTES - size)}
    domains_share = ENVIRONMENT_MAX_BYTES - size + len('"DOMAINS":"",')
    with pytest.raises(EnvironmentTooLarge) as raised:
        check_environment(stack, "audit", big, {"DOMAINS": "-c domains"})
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"function audit's environment would be up to {size + domains_share} bytes, over "
                              f"Lambda's limit of {ENVIRONMENT_MAX_BYTES} bytes"), message
    assert f"its largest variable is DOMAINS ({domains_share} bytes, from -c domains)" in message


def test_long_company_domains_fail_the_synth_naming_the_function_the_key_and_the_limit(tmp_path: Path) -> None:
    """The review's 200 subsidiaries (5,199 characters): synth, cdk-nag and cfn-lint passed, CreateFunction failed."""
    domains = ",".join(f"subsidiary{i:03d}.example.com" for i in range(200))
    line = one_line(run_app("", tmp_path, {"company_domains": domains}), tmp_path)
    assert line.startswith("agentbus synth: function security-audit's environment would be up to "), line
    assert "over Lambda's limit of 4096 bytes (4 KB, all its variables together): its largest variable is " \
           "COMPANY_DOMAINS (5220 bytes, from -c company_domains)" in line, line


def test_the_shipped_functions_environments_leave_room() -> None:
    from infrastructure.limits import ENVIRONMENT_MAX_BYTES

    variables = [f["Properties"]["Environment"]["Variables"]
                 for f in of_type(template(), "AWS::Lambda::Function").values()]
    assert len(variables) == len(MANIFEST.consumers)  # every agent's and the coordinator's
    for environment in variables:  # literal values only: the deploy-time ones are bounded by the stack itself
        literal = {k: v for k, v in environment.items() if isinstance(v, str)}
        assert len(json.dumps(literal, separators=(",", ":"))) < ENVIRONMENT_MAX_BYTES // 2


# -- F2: CloudFormation's 500 resources per stack --------------------------------------------------------------

def test_the_resource_count_is_the_templates(tmp_path: Path) -> None:
    from aws_cdk import CfnResource

    from infrastructure.limits import check_resource_count

    stack = AgentbusStack(cdk.App(context={"aws:cdk:version-reporting": True}, outdir=str(tmp_path)))
    assert check_resource_count(stack, "") == 1 + sum(isinstance(c, CfnResource) for c in stack.node.find_all())
    assert len(template()["Resources"]) == check_resource_count(stack, "") - 1  # Template.from_stack: no metadata


def test_a_stack_over_the_resource_limit_fails_the_synth_as_one_line_before_cdk(tmp_path: Path) -> None:
    # The review's 15 one-agent workflows (508 resources) failed in CDK with a 40-line jsii traceback. The shipped
    # stack (177 resources here: no CDK metadata outside the CLI) under a limit of 150 reaches the same check.
    result = run_app("import infrastructure.limits as limits\nlimits.STACK_RESOURCES_MAX = 150", tmp_path)
    line = one_line(result, tmp_path)
    resources, alarms = len(template()["Resources"]), len(of_type(template(), "AWS::CloudWatch::Alarm"))
    assert resources >= 177  # the shipped stack's, and more with a user's agents
    assert line.startswith(f"agentbus synth: the stack would have {resources} resources, over CloudFormation's "
                           f"limit of 150 per stack (most: {alarms} AWS::CloudWatch::Alarm, "), line
    assert "each agent adds 16 (" in line and "put fewer agents in one stack" in line


def test_cdks_own_resource_limit_is_one_line_too(tmp_path: Path) -> None:
    result = run_app("", tmp_path, {"@aws-cdk/core:stackResourceLimit": 100})
    line = one_line(result, tmp_path)
    assert line.startswith("agentbus synth: TooManyResourcesInStack: Number of resources in stack 'AgentbusStack': "
                           f"{len(template()['Resources'])} is greater than allowed maximum of 100"), line


# -- F6: the bus policy's overflow names -c approver_arns when they fill it ---------------------------------------

def small_bus(consumers: int, approvers: int) -> Any:
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_kms as kms

    from infrastructure.bus import Bus

    stack = cdk.Stack(cdk.App(), "Bus")
    bus = Bus(stack, "Bus", bus_name="agentbus", key=kms.Key(stack, "Key"))
    bus.reserve_sources({f"agentbus.agent.a{i}": iam.Role(stack, f"Role{i}",
                                                           assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
                         for i in range(consumers)})
    bus.account_only_sources(["agentbus.person"], [APPROVER.format(i) for i in range(approvers)])
    return bus


APPROVER = "arn:aws:iam::123456789012:role/approvers/approver-{:03d}"


def test_a_bus_policy_filled_by_the_approvers_names_the_context_key() -> None:
    from infrastructure.bus import PolicyTooLarge

    bus = small_bus(9, 150)
    with pytest.raises(PolicyTooLarge) as raised:
        bus.check_policy_size()
    message = str(raised.value)
    assert "\n" not in message
    assert f"would be up to {bus.policy_bytes()} bytes, over EventBridge's limit of 10240 bytes (10 KB): " \
           f"-c approver_arns takes {bus.approvers_bytes()} of them (150 ARNs, in one statement); name fewer " \
           "principals, several roles in one with a * wildcard" in message
    assert "put fewer consumers" not in message
    assert bus.approvers_bytes() > 150 * len(APPROVER.format(0))
    assert small_bus(9, 0).approvers_bytes() == 0


def test_a_bus_policy_filled_by_the_consumers_still_blames_them_and_gives_the_approvers_share() -> None:
    from infrastructure.bus import PolicyTooLarge

    bus = small_bus(30, 2)
    with pytest.raises(PolicyTooLarge) as raised:
        bus.check_policy_size()
    message = str(raised.value)
    assert "each of the 30 reserved sources (one per consumer) adds a statement, and -c approver_arns takes " \
           f"{bus.approvers_bytes()} of them (2 ARNs, in one statement); put fewer consumers on one bus" in message


def test_the_review_s_150_approvers_fail_the_synth_naming_the_key(tmp_path: Path) -> None:
    arns = ",".join(APPROVER.format(i) for i in range(150))
    line = one_line(run_app("", tmp_path, {"approver_arns": arns}), tmp_path)
    assert line.startswith("agentbus synth: the event bus policy would be up to "), line
    assert "-c approver_arns takes " in line and "(150 ARNs, in one statement)" in line, line
