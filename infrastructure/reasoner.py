"""IAM for an agent's model (``-c reasoner=bedrock -c model_id=...``): ``bedrock:InvokeModel`` (what Converse needs)
on exactly that model, for that agent's role only.

- a cross-Region inference profile id (``us.anthropic.claude-3-5-haiku-20241022-v1:0``; ``eu.``, ``apac.``,
  ``global.`` ...), the form Bedrock serves Claude 3.5 and later by in most Regions: the profile's ARN, and the
  profile's model in the Regions it routes to, only when called through that profile
  (``bedrock:InferenceProfileArn``). Those Regions are Bedrock's to choose and change, hence ``*`` for the Region
  of the model's ARN (the policy of Bedrock's user guide, "Geographic cross-Region inference", with ``*`` for its
  list of destination Regions; "Prerequisites for inference profiles" uses ``*`` too); a ``global.`` profile's
  model also has a Region-less ARN;
- a foundation model id, for a model the stack's Region serves on demand: its ARN in that Region.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam

from functions.common.spec import inference_profile_model

from .nag import Ack, acknowledge_on

ACTIONS = ["bedrock:InvokeModel"]


def model_statements(stack: Stack, model_id: str) -> list[iam.PolicyStatement]:
    model = inference_profile_model(model_id)
    if model is None:
        arn = stack.format_arn(service="bedrock", account="", resource="foundation-model", resource_name=model_id)
        return [iam.PolicyStatement(sid="InvokeModel", actions=ACTIONS, resources=[arn])]
    profile = stack.format_arn(service="bedrock", resource="inference-profile", resource_name=model_id)
    models = [stack.format_arn(service="bedrock", region="*", account="", resource="foundation-model",
                               resource_name=model)]
    if model_id.startswith("global."):
        models.append(stack.format_arn(service="bedrock", region="", account="", resource="foundation-model",
                                       resource_name=model))
    return [
        iam.PolicyStatement(sid="InvokeModelProfile", actions=ACTIONS, resources=[profile]),
        iam.PolicyStatement(sid="InvokeModelThroughProfile", actions=ACTIONS, resources=models,
                            conditions={"StringEquals": {"bedrock:InferenceProfileArn": profile}}),
    ]


def grant_model(role: iam.Role, model_id: str) -> None:
    """Let ``role`` call ``model_id`` (and nothing else of Bedrock)."""
    stack = Stack.of(role)
    for statement in model_statements(stack, model_id):
        role.add_to_policy(statement)
    model = inference_profile_model(model_id)
    if model is not None:
        acknowledge_on(role, (Ack(
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/{model}]",
            f"The inference profile {model_id} routes to {model} in Regions Bedrock chooses (and may add to), so "
            "the model's ARN names every Region; the statement only allows calls made through that profile "
            "(condition bedrock:InferenceProfileArn), and only on that one model."),))
