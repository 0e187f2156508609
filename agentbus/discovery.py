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
        kwargs: dict[str, Any] = {"config": _CONFIG}
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        return self.session.client(service, **kwargs)


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
    endpoint_url = resolve_endpoint(endpoint_url)
    session = make_session(endpoint_url)
    if endpoint_url:
        return Deployment(session, endpoint_url, _local_resources(session, endpoint_url))
    return Deployment(session, None, _stack_resources(session, stack_name or os.environ.get("AGENTBUS_STACK")
                                                      or DEFAULT_STACK_NAME))


def _local_resources(session: boto3.session.Session, endpoint_url: str) -> Resources:
    ssm = session.client("ssm", endpoint_url=endpoint_url, config=_CONFIG)
    try:
        value = ssm.get_parameter(Name=LOCAL_RESOURCES_PARAMETER)["Parameter"]["Value"]
    except EndpointConnectionError:
        raise DeploymentNotFound(
            f"cannot reach {endpoint_url}: is `agentbus up` running there?") from None
    except ClientError as error:
        if error.response["Error"]["Code"] == "ParameterNotFound":
            raise DeploymentNotFound(
                f"{endpoint_url} answers but holds no agentbus deployment (start it with `agentbus up`)") from None
        raise DeploymentNotFound(f"{endpoint_url}: {error.response['Error']['Message']}") from None
    return Resources.from_json(value)


def _stack_resources(session: boto3.session.Session, stack_name: str) -> Resources:
    region = session.region_name or "(no region configured)"
    try:
        stacks = session.client("cloudformation", config=_CONFIG).describe_stacks(StackName=stack_name)["Stacks"]
    except NoCredentialsError:
        raise DeploymentNotFound(
            "no AWS credentials found: configure them (aws configure / AWS_PROFILE), "
            "or pass --endpoint-url for the local stack") from None
    except EndpointConnectionError as error:
        raise DeploymentNotFound(f"cannot reach CloudFormation in {region}: {error}") from None
    except ClientError as error:
        message = error.response["Error"]["Message"]
        if "does not exist" in message:
            raise DeploymentNotFound(
                f"stack {stack_name} is not deployed in {region}: run `make deploy`, "
                "or pass --endpoint-url for the local stack") from None
        raise DeploymentNotFound(f"CloudFormation: {message}") from None
    except BotoCoreError as error:
        raise DeploymentNotFound(str(error)) from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    if RESOURCES_OUTPUT_KEY not in outputs:
        raise DeploymentNotFound(f"stack {stack_name} has no {RESOURCES_OUTPUT_KEY} output: is it an agentbus stack?")
    return Resources.from_json(outputs[RESOURCES_OUTPUT_KEY])
