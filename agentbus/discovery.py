"""Finding a deployment: the local endpoint (`--endpoint-url` / AWS_ENDPOINT_URL) or the stack on AWS."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from agentbus.resources import DEFAULT_STACK_NAME, LOCAL_RESOURCES_PARAMETER, RESOURCES_OUTPUT_KEY, Resources

_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=3, read_timeout=30)


class DeploymentNotFound(RuntimeError):
    """One line for the user: what was looked for, where, and what to do."""


@dataclass
class Deployment:
    session: boto3.session.Session
    endpoint_url: str | None
    resources: Resources

    def client(self, service: str) -> Any:
        return _client(self.session, self.endpoint_url, service)


def _client(session: boto3.session.Session, endpoint_url: str | None, service: str) -> Any:
    kwargs: dict[str, Any] = {"config": _CONFIG}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    return session.client(service, **kwargs)  # type: ignore[call-overload]


def resolve_endpoint(endpoint_url: str | None) -> str | None:
    return endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None


def make_session(endpoint_url: str | None) -> boto3.session.Session:
    if endpoint_url:
        # The local endpoint takes any credentials; don't make users configure a profile for it.
        creds = boto3.session.Session().get_credentials()
        return boto3.session.Session(
            aws_access_key_id=creds.access_key if creds else "agentbus-local",
            aws_secret_access_key=creds.secret_key if creds else "agentbus-local",
            region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        )
    return boto3.session.Session()


def find_deployment(endpoint_url: str | None = None, stack_name: str | None = None) -> Deployment:
    """The deployment behind an endpoint (``--endpoint-url`` / ``AWS_ENDPOINT_URL``) or on AWS.

    Wherever it is asked, a deployed stack answers first, through its CloudFormation output (AWS, or an
    emulator that deploys the real template: MiniStack, LocalStack); then the local stack that
    `agentbus up` provisions, through the SSM parameter it writes.
    """
    endpoint_url = resolve_endpoint(endpoint_url)
    session = make_session(endpoint_url)
    stack_name = stack_name or os.environ.get("AGENTBUS_STACK") or DEFAULT_STACK_NAME
    where = endpoint_url or f"AWS ({session.region_name or 'no region configured'})"
    try:
        resources = _stack_resources(_client(session, endpoint_url, "cloudformation"), stack_name)
        if resources is None:
            resources = _local_resources(_client(session, endpoint_url, "ssm"))
    except EndpointConnectionError:
        if endpoint_url:
            raise DeploymentNotFound(
                f"cannot reach {endpoint_url}: is `agentbus up` (or the emulator) running there?") from None
        raise DeploymentNotFound(f"cannot reach AWS in {where}") from None
    except NoCredentialsError:
        raise DeploymentNotFound(
            "no AWS credentials found: configure them (aws configure / AWS_PROFILE), "
            "or pass --endpoint-url for the local stack") from None
    except ClientError as error:
        raise DeploymentNotFound(f"{where}: {error.response['Error'].get('Message') or error}") from None
    except BotoCoreError as error:
        raise DeploymentNotFound(f"{where}: {error}") from None
    if resources is None:
        if endpoint_url:
            raise DeploymentNotFound(
                f"{endpoint_url} answers but holds no agentbus deployment: neither stack {stack_name} "
                "(deploy it, or name it with --stack) nor the local stack (start it with `agentbus up`)")
        raise DeploymentNotFound(
            f"stack {stack_name} is not deployed in {where}: run `make deploy`, "
            "or pass --endpoint-url for the local stack")
    return Deployment(session, endpoint_url, resources)


def _stack_resources(cloudformation: Any, stack_name: str) -> Resources | None:
    """The stack's ``AgentbusResources`` output; None if the stack does not exist here."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if _absent(error):
            return None
        raise
    if not stacks:
        return None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs") or []}
    if RESOURCES_OUTPUT_KEY not in outputs:
        raise DeploymentNotFound(f"stack {stack_name} has no {RESOURCES_OUTPUT_KEY} output: is it an agentbus stack?")
    return Resources.from_json(outputs[RESOURCES_OUTPUT_KEY])


def _local_resources(ssm: Any) -> Resources | None:
    """What `agentbus up` wrote; None if it holds no such parameter."""
    try:
        value = ssm.get_parameter(Name=LOCAL_RESOURCES_PARAMETER)["Parameter"]["Value"]
    except ClientError as error:
        if _absent(error):
            return None
        raise
    return Resources.from_json(value)


def _absent(error: ClientError) -> bool:
    """Not there: a missing stack or parameter, or an endpoint that does not serve that API at all."""
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return (code == "ParameterNotFound" or (code == "ValidationError" and "does not exist" in message)
            or status in (404, 501))
