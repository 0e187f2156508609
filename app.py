#!/usr/bin/env python3
"""The CDK app: `make synth` runs it through cdk.json (`node_modules/.bin/cdk synth`).

Context (``-c name=value``): ``stage`` (optional: prefixes the stack, bus and schedule group names, so two
copies deploy in one account), ``bus_name`` (default ``agentbus``), ``fraud_limit`` (default ``10000.00``),
``alarm_email`` (optional: alarms are e-mailed there), ``approver_arns`` (optional: the only principals that
may put answers and cancels), ``deadline_seconds`` (optional: overrides every workflow's deadline),
``approval_wait_seconds`` and ``approval_alarm_seconds`` (optional: how long a person is waited for, and when
that alarms), ``powertools_layer_version`` (optional: the Powertools public layer version),
``powertools_layer_arn`` (optional: the whole layer version ARN, where Powertools publishes none),
``claim_check_threshold_bytes`` (optional: the entry size above which a detail is stored in the claim-check
bucket; default 204800, at most 262144), ``reasoner`` (optional, ``bedrock``: the agents that declare a
reasoner consult a model) with ``model_id`` (the Bedrock model or inference profile id, required with it).
cdk-nag's AwsSolutions and Serverless packs always run; an unacknowledged finding fails the synth.
A context value the stack refuses fails the synth with one line naming the key (exit 1), not a traceback; so does
a manifest ``Manifest.check`` refuses (naming the workflow, agent or table, and the AWS limit it would pass).
"""

from __future__ import annotations

import sys
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from functions.common.spec import Manifest, ManifestRefused

try:  # the shipped manifest is checked where it is built (Manifest.check), on this import
    from functions.manifest import MANIFEST
except ManifestRefused as refused:
    if __name__ != "__main__":
        raise
    # One line naming every problem (a name, a size and its AWS limit...), not a traceback.
    print(f"agentbus synth: {refused}", file=sys.stderr)
    sys.exit(1)
from infrastructure.lambda_imports import lambda_import_problems  # noqa: E402 - after the manifest's check
from infrastructure.limits import DeployLimit  # noqa: E402
from infrastructure.stack import AgentbusStack, StackConfig  # noqa: E402


class ContextError(ValueError):
    """A ``-c`` context value the stack refuses (StackConfig.from_context's ValueError, naming the key)."""


class ManifestError(ValueError):
    """Code the manifest names that Lambda could not load (a handler, a trigger model, a projection...)."""


def create_app(context: dict[str, Any] | None = None, outdir: str | None = None,
               manifest: Manifest = MANIFEST) -> tuple[cdk.App, AgentbusStack]:
    # The manifest's code first: a typo there is no context value's fault, and would fail every cold start on AWS.
    problems = manifest.import_problems()
    # Then with only what Lambda has (not the venv's moto, requests...), in one subprocess (9B, F11).
    problems = problems or lambda_import_problems(manifest)
    if problems:
        raise ManifestError("; ".join(problems))
    app = cdk.App(context=context, outdir=outdir)
    try:
        config = StackConfig.from_context(app.node, manifest)
    except ValueError as error:
        raise ContextError(str(error)) from error
    stack = AgentbusStack(
        app, config.stack_name,
        config=config,
        manifest=manifest,
        description="agentbus: event-driven agent orchestration (EventBridge, SQS, Lambda, DynamoDB)",
    )
    cdk.Tags.of(app).add("project", "agentbus")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    return app, stack


def main() -> int:
    try:
        app, _ = create_app()
    except ManifestError as error:  # each function or import path the manifest names that does not load
        print(f"agentbus synth: the manifest names code that cannot be loaded: {error}", file=sys.stderr)
        return 1
    except ContextError as error:  # the message names the key and what is wrong: that line, not a traceback
        print(f"agentbus synth: bad -c context value: {error}", file=sys.stderr)
        return 1
    except DeployLimit as error:  # what CloudFormation would refuse (the bus policy, an environment): one line
        print(f"agentbus synth: {error}", file=sys.stderr)
        return 1
    try:
        app.synth()  # CDK's and cdk-nag's own errors stay as they are, but one:
    except RuntimeError as error:  # a jsii error: CDK's own count of the template's resources (a stack limit)
        message = str(error).splitlines()[0] if str(error) else ""
        if not message.startswith("TooManyResourcesInStack"):
            raise
        print(f"agentbus synth: {message} (CloudFormation's limit: 500 resources per stack; put fewer agents in "
              "one stack)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
