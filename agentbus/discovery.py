"""Finding a deployment: the local endpoint (`--endpoint-url` / AWS_ENDPOINT_URL) or the stack on AWS."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

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


def check_endpoint_url(endpoint_url: str) -> str:
    """``endpoint_url`` if it is an http(s) URL with a host and a valid port; else DeploymentNotFound."""
    try:
        parts = urlsplit(endpoint_url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError when the port is not a number in 0-65535
    except ValueError:
        valid = False
    if not valid:
        raise DeploymentNotFound(f"endpoint URL {endpoint_url!r} is not a URL like http://127.0.0.1:4566 "
                                 "(from --endpoint-url or AWS_ENDPOINT_URL)")
    return endpoint_url


def find_deployment(endpoint_url: str | None = None, stack_name: str | None = None) -> Deployment:
    endpoint_url = resolve_endpoint(endpoint_url)
    if endpoint_url:
        check_endpoint_url(endpoint_url)
    session = make_session(endpoint_url)
    if endpoint_url:
        return Deployment(session, endpoint_url, _local_resources(session, endpoint_url))
    return Deployment(session, None, _stack_resources(session, stack_name or os.environ.get("AGENTBUS_STACK")
                                                      or DEFAULT_STACK_NAME))


def _local_resources(session: boto3.session.Session, endpoint_url: str) -> Resources:
    ssm = session.client("ssm", endpoint_url=endpoint_url, config=_CONFIG)
    try:
        response = ssm.get_parameter(Name=LOCAL_RESOURCES_PARAMETER)
    except EndpointConnectionError:
        raise DeploymentNotFound(
            f"cannot reach {endpoint_url}: is `agentbus up` running there?") from None
    except ClientError as error:
        code = error.response["Error"].get("Code", "")
        if code == "ParameterNotFound":
            raise DeploymentNotFound(
                f"{endpoint_url} answers but holds no agentbus deployment (start it with `agentbus up`)") from None
        if not code or code.isdigit():  # botocore could not read an AWS error from the answer (HTML, plain text)
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", code or "?")
            raise DeploymentNotFound(
                f"{endpoint_url} answers HTTP {status} but is not an AWS endpoint: is another server on that port? "
                "(start the local stack with `agentbus up`)") from None
        raise DeploymentNotFound(f"{endpoint_url}: {_one_line(error.response['Error'].get('Message', code))}") from None
    except BotoCoreError as error:  # the connection broke, timed out, or the answer was not HTTP
        raise DeploymentNotFound(f"cannot talk to {endpoint_url}: {_one_line(str(error))}") from None
    value = (response.get("Parameter") or {}).get("Value")
    if not isinstance(value, str):
        raise DeploymentNotFound(f"{endpoint_url} answers HTTP {response['ResponseMetadata']['HTTPStatusCode']} "
                                 "but is not an AWS endpoint: is another server on that port? "
                                 "(start the local stack with `agentbus up`)")
    try:
        return Resources.from_json(value)
    except (ValueError, TypeError, KeyError) as error:
        raise DeploymentNotFound(
            f"{endpoint_url}: {LOCAL_RESOURCES_PARAMETER} is not an agentbus resources record ({error})") from None


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit] + "…"


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
