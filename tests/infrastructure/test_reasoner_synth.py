"""The model switch in the template (``-c reasoner=bedrock -c model_id=...``): with it on, the only new permission is
``bedrock:InvokeModel`` on that model for the risk function, whose environment names the model; with it off (the
session's synth) nothing of Bedrock anywhere; cdk-nag stays clean both ways; a wrong switch fails the synth with a
clear message. Inference profiles are checked on a small stack with the same grant and cdk-nag's packs."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from functions.manifest import MANIFEST
from infrastructure.reasoner import grant_model
from infrastructure.stack import STACK_NAME
from tests.infrastructure.template import CONTEXT, Synth, join, statements, synthesize

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
WITH_MODEL = {**CONTEXT, "reasoner": "bedrock", "model_id": MODEL}


@pytest.fixture(scope="module")
def with_model(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    from app import create_app

    outdir = tmp_path_factory.mktemp("cdk.out.reasoner")
    app, stack = create_app(context=WITH_MODEL, outdir=str(outdir))
    return synthesize(app, stack, outdir)


def policy_statements(synth: Synth) -> dict[str, list[str]]:
    """Every consumer's identity-policy statements, as canonical JSON (logical ids differ in nothing here)."""
    return {spec.name: sorted(json.dumps(s, sort_keys=True) for document in synth.consumer(spec).policies
                              for s in statements(document))
            for spec in MANIFEST.consumers}


def test_cdk_nag_is_clean_with_the_model_on(with_model: Synth) -> None:
    assert with_model.error is None, f"cdk-nag findings or synth error: {with_model.error}"


def test_cfn_lint_passes_with_the_model_on(with_model: Synth) -> None:
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(with_model.outdir / f"{STACK_NAME}.template.json",
                        # W3005: redundant DependsOn from aws-cdk-lib (see test_stack_compliance.py)
                        config=ManualArgs(regions=["us-east-1", "eu-west-1"], ignore_checks=["W3005"]))
    assert [str(match) for match in matches] == []


def test_the_only_new_permission_is_invoke_model_on_that_model_for_risk(synth: Synth, with_model: Synth) -> None:
    before, after = policy_statements(synth), policy_statements(with_model)
    added = {name: sorted(set(after[name]) - set(before[name])) for name in after}
    removed = {name: sorted(set(before[name]) - set(after[name])) for name in before}
    assert removed == {name: [] for name in before}
    assert {name: len(new) for name, new in added.items() if new} == {"risk": 1}
    [statement] = [json.loads(s) for s in added["risk"]]
    assert statement["Action"] == "bedrock:InvokeModel" and statement["Effect"] == "Allow"
    assert "Condition" not in statement
    assert join(statement["Resource"]) == f"arn:<AWS::Partition>:bedrock:<AWS::Region>::foundation-model/{MODEL}"


def test_bedrock_appears_nowhere_with_the_model_off(synth: Synth) -> None:
    assert "bedrock" not in json.dumps(synth.template)
    for spec in MANIFEST.consumers:
        variables = synth.consumer(spec).function["Properties"]["Environment"]["Variables"]
        assert "REASONER" not in variables and "MODEL_ID" not in variables


def test_only_the_risk_function_is_told_the_model(with_model: Synth) -> None:
    for spec in MANIFEST.consumers:
        variables = with_model.consumer(spec).function["Properties"]["Environment"]["Variables"]
        told = {k: variables[k] for k in ("REASONER", "MODEL_ID") if k in variables}
        assert told == ({"REASONER": "bedrock", "MODEL_ID": MODEL} if spec.name == "risk" else {})


@pytest.mark.parametrize(("context", "message"), [
    ({"reasoner": "bedrock"}, "reasoner=bedrock needs -c model_id="),
    ({"model_id": MODEL}, "turns nothing on without -c reasoner=bedrock"),
    ({"reasoner": "openai", "model_id": MODEL}, "reasoner=openai: unknown"),
    ({"reasoner": "bedrock", "model_id": "claude sonnet"}, "is not a Bedrock model id"),
])
def test_a_wrong_switch_fails_the_synth_with_a_clear_message(context: dict[str, str], message: str) -> None:
    from infrastructure.stack import StackConfig

    app = cdk.App(context=context)
    with pytest.raises(ValueError, match=message):
        StackConfig.from_context(app.node)


def profile_stack(model_id: str) -> tuple[dict, list[str]]:
    """A stack with one role granted ``model_id`` as the agentbus stack grants it, under cdk-nag's packs: the
    role's policy statements and the findings cdk-nag reports."""
    app = cdk.App()
    stack = cdk.Stack(app, "Profile")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    grant_model(role, model_id)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    findings: list[str] = []
    try:
        assembly = app.synth()
    except Exception as error:  # noqa: BLE001 - cdk-nag reports its findings by failing the synth
        findings.append(str(error))
        return {}, findings
    template = assembly.get_stack_by_name("Profile").template
    [policy] = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy"]
    return policy["Properties"]["PolicyDocument"], findings


@pytest.mark.parametrize("prefix", ["us", "eu", "global"])
def test_an_inference_profile_grants_the_profile_and_its_model_through_it_only(prefix: str) -> None:
    profile_id = f"{prefix}.{MODEL}"
    document, findings = profile_stack(profile_id)
    assert findings == []
    profile_statement, model_statement = statements(document)
    profile_arn = f"arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:inference-profile/{profile_id}"
    assert profile_statement["Action"] == model_statement["Action"] == "bedrock:InvokeModel"
    assert join(profile_statement["Resource"]) == profile_arn
    resources = [join(r) for r in (model_statement["Resource"] if isinstance(model_statement["Resource"], list)
                                   else [model_statement["Resource"]])]
    expected = [f"arn:<AWS::Partition>:bedrock:*::foundation-model/{MODEL}"]
    if prefix == "global":
        expected.append(f"arn:<AWS::Partition>:bedrock:::foundation-model/{MODEL}")
    assert resources == expected
    condition = model_statement["Condition"]["StringEquals"]["bedrock:InferenceProfileArn"]
    assert join(condition) == profile_arn
