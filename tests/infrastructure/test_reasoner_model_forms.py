"""The two forms of ``-c model_id=`` and the IAM each needs (review bb4b D3).

Bedrock serves Anthropic's Claude 3.5 and later, in most Regions, only through a cross-Region inference profile:
Converse with the bare model id fails with "on-demand throughput isn't supported", and every record of the agent
then fails and is dead-lettered. So the README's example and the synth's error name a profile id. Calling through a
profile needs bedrock:InvokeModel on the profile's ARN (the stack's Region and account) and on the profile's model
in the Regions it routes to, only through that profile (user guide, "Geographic cross-Region inference", "IAM
policy requirements"; a global profile's model also has a Region-less ARN); a bare model id needs its ARN in the
stack's Region and nothing else. Both are checked here on the whole stack, with cdk-nag's packs on.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import aws_cdk as cdk
import pytest

from functions.common.spec import inference_profile_model
from functions.manifest import MANIFEST
from tests.infrastructure.template import CONTEXT, Synth, as_list, join, synthesize
from tests.infrastructure.test_reasoner_synth import policy_statements

BARE = "anthropic.claude-3-5-haiku-20241022-v1:0"
PROFILE = f"us.{BARE}"
README = Path(__file__).resolve().parents[2] / "README.md"

PROFILE_ARN = f"arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:inference-profile/{PROFILE}"


@pytest.fixture(scope="module", params=[BARE, PROFILE])
def with_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Synth]:
    from app import create_app

    outdir = tmp_path_factory.mktemp("cdk.out.model")
    app, stack = create_app(context={**CONTEXT, "reasoner": "bedrock", "model_id": request.param},
                            outdir=str(outdir))
    return request.param, synthesize(app, stack, outdir)


def bedrock_statements(synth: Synth) -> dict[str, list[dict]]:
    """Each consumer's identity-policy statements that name Bedrock."""
    return {name: [json.loads(s) for s in found if "bedrock" in s]
            for name, found in policy_statements(synth).items()}


def test_each_form_grants_risk_what_a_call_with_it_needs_and_nothing_more(with_model: tuple[str, Synth]) -> None:
    model_id, synth = with_model
    assert synth.error is None, f"cdk-nag findings or synth error: {synth.error}"
    granted = bedrock_statements(synth)
    assert {name for name, found in granted.items() if found} == {"risk"}
    by_sid = {s["Sid"]: s for s in granted["risk"]}
    assert all(s["Effect"] == "Allow" and s["Action"] == "bedrock:InvokeModel" for s in by_sid.values())
    if model_id == BARE:
        assert set(by_sid) == {"InvokeModel"}
        assert "Condition" not in by_sid["InvokeModel"]
        assert join(by_sid["InvokeModel"]["Resource"]) == (
            f"arn:<AWS::Partition>:bedrock:<AWS::Region>::foundation-model/{BARE}")
        return
    assert set(by_sid) == {"InvokeModelProfile", "InvokeModelThroughProfile"}
    profile, through = by_sid["InvokeModelProfile"], by_sid["InvokeModelThroughProfile"]
    assert "Condition" not in profile and join(profile["Resource"]) == PROFILE_ARN
    # The model in every Region the profile may route to (Bedrock's to choose), only through this profile.
    models = [join(r) for r in as_list(through["Resource"])]
    assert models == [f"arn:<AWS::Partition>:bedrock:*::foundation-model/{BARE}"]
    assert {k: {c: join(v) for c, v in cond.items()} for k, cond in through["Condition"].items()} == {
        "StringEquals": {"bedrock:InferenceProfileArn": PROFILE_ARN}}


def test_the_function_is_told_the_id_as_given(with_model: tuple[str, Synth]) -> None:
    model_id, synth = with_model
    [risk] = [spec for spec in MANIFEST.consumers if spec.name == "risk"]
    assert synth.consumer(risk).function["Properties"]["Environment"]["Variables"]["MODEL_ID"] == model_id


def test_the_synth_error_suggests_an_inference_profile_id() -> None:
    from infrastructure.stack import StackConfig

    with pytest.raises(ValueError, match="reasoner=bedrock needs -c model_id=") as refused:
        StackConfig.from_context(cdk.App(context={"reasoner": "bedrock"}).node)
    examples = re.findall(r"e\.g\. ([a-z0-9.:-]+)", str(refused.value))
    assert examples and all(inference_profile_model(example.rstrip(",")) for example in examples), examples


def test_a_malformed_model_id_is_refused_with_an_inference_profile_id_as_the_example() -> None:
    from functions.common.spec import check_model_id

    with pytest.raises(ValueError, match="is not a Bedrock model id") as refused:
        check_model_id("claude sonnet")
    examples = re.findall(r"e\.g\. ([a-z0-9.:-]+)", str(refused.value))
    assert examples and all(inference_profile_model(example) for example in examples), examples


def test_the_readme_deploys_with_an_inference_profile_id() -> None:
    deploys = re.findall(r'make deploy ARGS="[^"]*-c model_id=([^ "]+)', README.read_text())
    assert deploys, "the README's `make deploy ARGS=\"-c reasoner=bedrock -c model_id=...\"` example"
    assert all(inference_profile_model(model_id) for model_id in deploys), deploys
