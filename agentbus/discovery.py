"""Finding a deployment: the local endpoint (`--endpoint-url` / AWS_ENDPOINT_URL) or the stack on AWS."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

from agentbus.resources import (
    DEFAULT_STACK_NAME,
    LOCAL_REGION,
    LOCAL_RESOURCES_PARAMETER,
    RESOURCES_OUTPUT_KEY,
    Resources,
)

_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=3, read_timeout=30)
# Finding the deployment is two small reads that AWS (or `agentbus up`, even busy) answers in well under a second:
# an endpoint that accepts the connection and then says nothing is named after PROBE_ATTEMPTS of this, not after
# the operations' 3 x 30 s.
PROBE_READ_TIMEOUT_S = 10.0
PROBE_ATTEMPTS = 2


class DeploymentNotFound(RuntimeError):
    """One line for the user: what was looked for, where, and what to do."""


@dataclass
class Deployment:
    session: boto3.session.Session
    endpoint_url: str | None
    resources: Resources
    config: Config = _CONFIG

    def client(self, service: str) -> Any:
        return _client(self.session, self.endpoint_url, service, self.config)

    def with_config(self, config: Config) -> Deployment:
        """The same deployment, its clients made with ``config`` merged over the operations' own."""
        return replace(self, config=self.config.merge(config))


def _client(session: boto3.session.Session, endpoint_url: str | None, service: str,
            config: Config = _CONFIG) -> Any:
    kwargs: dict[str, Any] = {"config": config}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    try:
        return session.client(service, **kwargs)  # type: ignore[call-overload]
    except (ValueError, TypeError, AttributeError) as error:
        unloadable = unloadable_credentials(error, session.profile_name)
        if unloadable is None:
            raise
        raise unloadable from None


def unloadable_credentials(error: BaseException, profile: str | None) -> DeploymentNotFound | None:
    """The one line for ``error`` when botocore raised it loading credentials, else None. botocore lets a
    ``ValueError``, ``TypeError`` or ``AttributeError`` through when a credential_process prints something that is
    not a JSON object of credentials (not JSON, not UTF-8, a number), when a client is made or, for credentials
    that expire, when they are refreshed before a call: the AWS CLI prints only "Expecting value: line 1 column 1
    (char 0)". Recognised by a traceback through ``botocore.credentials``, so that other errors of these types
    are not misnamed."""
    if not isinstance(error, ValueError | TypeError | AttributeError) or not _raised_by_credentials(error):
        return None
    return DeploymentNotFound(
        f"the AWS credentials of profile {profile!r} could not be loaded: its credential_process printed "
        f"something that is not a JSON object of credentials ({type(error).__name__}: {error}); run it yourself "
        "to see what it prints")


def _raised_by_credentials(error: BaseException) -> bool:
    """Whether ``error`` was raised while botocore loaded credentials (``botocore.credentials``)."""
    frame = error.__traceback__
    while frame is not None:
        if frame.tb_frame.f_globals.get("__name__") == "botocore.credentials":
            return True
        frame = frame.tb_next
    return False


def _probe_client(session: boto3.session.Session, endpoint_url: str | None, service: str) -> Any:
    """A client for finding the deployment: a short read timeout and one retry (``PROBE_READ_TIMEOUT_S``)."""
    return _client(session, endpoint_url, service, Config(
        retries={"total_max_attempts": PROBE_ATTEMPTS, "mode": "standard"}, connect_timeout=3,
        read_timeout=PROBE_READ_TIMEOUT_S))


def resolve_endpoint(endpoint_url: str | None) -> str | None:
    return endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None


_KEY_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_AWS_CONFIG_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
                         "AWS_REGION", "AWS_DEFAULT_REGION", *_KEY_VARIABLES)


def _endpoint_keys() -> dict[str, str]:
    """The keys an endpoint's session signs with, by their variables' names: the environment's when it gives
    AWS_ACCESS_KEY_ID, else those the profile writes down in the config or credentials file (read from the files,
    never resolved: no SSO login, credential process or role to assume), else none."""
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        return {name: os.environ[name] for name in _KEY_VARIABLES if os.environ.get(name)}
    profile = os.environ.get("AWS_PROFILE") or os.environ.get("AWS_DEFAULT_PROFILE") or "default"
    try:
        settings = botocore.session.Session().full_config.get("profiles", {}).get(profile, {})
    except Exception:  # noqa: BLE001 - an unreadable file: as if there were no keys
        return {}
    written = {name: settings.get(name.lower()) for name in _KEY_VARIABLES}  # aws_access_key_id, ...
    if not (written["AWS_ACCESS_KEY_ID"] and written["AWS_SECRET_ACCESS_KEY"]):
        return {}
    return {name: str(value) for name, value in written.items() if value}


def endpoint_session(region: str) -> boto3.session.Session:
    """A session for an endpoint URL (the local stack, an emulator) with ``_endpoint_keys`` (dummy ones without),
    and no profile. The user's profile is never resolved: an emulator takes any keys (LocalStack takes the account
    from the key), and a profile's SSO login, credential process or MFA prompt would stop a local run on
    credentials it does not need (or reach the real account); nor does an AWS_PROFILE naming no profile fail it."""
    no_profile = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    keys = _endpoint_keys()
    return boto3.session.Session(
        botocore_session=no_profile,
        aws_access_key_id=keys.get("AWS_ACCESS_KEY_ID") or "agentbus-local",
        aws_secret_access_key=keys.get("AWS_SECRET_ACCESS_KEY") or "agentbus-local",
        aws_session_token=keys.get("AWS_SESSION_TOKEN"),
        region_name=region,
    )


@contextlib.contextmanager
def without_aws_config(region: str | None = None) -> Iterator[None]:
    """For a process that talks only to an endpoint URL (a verb given one) or runs the local stack itself
    (`agentbus up`, `demo`, `bench`, `soak`, with ``region`` LOCAL_REGION): within it, boto3's default session,
    the X-Ray SDK that the functions' code imports and the functions themselves read no profile and no config or
    credentials file (``endpoint_session``), and sign with ``_endpoint_keys``, put in the environment before the
    files are hidden. A profile's SSO login,
    credential process or MFA prompt, or an AWS_PROFILE naming no profile, would otherwise stop a run that needs
    no AWS account, and a profile's region would misroute it. The variables are given back on leaving (a process
    that goes on: tests calling ``cli.main``)."""
    before = {name: os.environ.get(name) for name in _AWS_CONFIG_VARIABLES}
    os.environ.update(_endpoint_keys())
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(name, None)
    os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    if region is not None:
        os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = region
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def make_session(endpoint_url: str | None) -> boto3.session.Session:
    if endpoint_url:
        return endpoint_session(os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or LOCAL_REGION)
    # AWS_REGION first, as the AWS CLI v2 and the other SDKs read it (boto3 reads only AWS_DEFAULT_REGION and the
    # profile, which it still does when AWS_REGION is not set).
    return boto3.session.Session(region_name=os.environ.get("AWS_REGION") or None)


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
    """The deployment behind an endpoint (``--endpoint-url`` / ``AWS_ENDPOINT_URL``) or on AWS.

    Wherever it is asked, a deployed stack answers first, through its CloudFormation output (AWS, or an
    emulator that deploys the real template: MiniStack, LocalStack); then the local stack that
    `agentbus up` provisions, through the SSM parameter it writes.
    """
    if endpoint_url is not None and not endpoint_url.strip():
        # An unset variable in a script (--endpoint-url "$URL"): never fall through to AWS on it.
        raise DeploymentNotFound("--endpoint-url is empty: give a URL like http://127.0.0.1:4566, or leave the "
                                 "option out to use AWS")
    endpoint_url = resolve_endpoint(endpoint_url)
    if endpoint_url:
        check_endpoint_url(endpoint_url)
    session = make_session(endpoint_url)
    stack_name = stack_name or os.environ.get("AGENTBUS_STACK") or DEFAULT_STACK_NAME
    where = endpoint_url or f"AWS ({session.region_name or 'no region configured'})"
    region = session.region_name
    try:
        resources = _stack_resources(_probe_client(session, endpoint_url, "cloudformation"), stack_name)
        if resources is None:
            resources = _local_resources(_probe_client(session, endpoint_url, "ssm"))
        if resources is None and endpoint_url and region != LOCAL_REGION:
            # `agentbus up` is in LOCAL_REGION whatever the shell's region (an emulator's stack is in its own).
            local = endpoint_session(LOCAL_REGION)
            resources = _local_resources(_probe_client(local, endpoint_url, "ssm"))
            if resources is not None:
                session = local
    except (ReadTimeoutError, ConnectTimeoutError):
        raise DeploymentNotFound(
            f"{where} did not answer within {PROBE_READ_TIMEOUT_S:g} s ({PROBE_ATTEMPTS} tries): is the endpoint "
            f"hung, or not `agentbus up`?{_https_hint(endpoint_url)}" if endpoint_url else
            f"{where} did not answer within {PROBE_READ_TIMEOUT_S:g} s ({PROBE_ATTEMPTS} tries)") from None
    except EndpointConnectionError:
        if endpoint_url:
            raise DeploymentNotFound(
                f"cannot reach {endpoint_url}: is `agentbus up` (or the emulator) running there?") from None
        raise DeploymentNotFound(f"cannot reach {where}") from None
    except NoCredentialsError:
        raise DeploymentNotFound(
            "no AWS credentials found: configure them (aws configure / AWS_PROFILE), "
            "or pass --endpoint-url for the local stack") from None
    except NotAnAwsEndpoint as error:
        if region and not _known_region(session, region):  # an emulator answers a region it does not serve so
            raise DeploymentNotFound(
                f"the region {region!r} (AWS_REGION / AWS_DEFAULT_REGION) is not one botocore knows: {where} "
                f"answers HTTP {error.status} for it; set a region such as us-east-1") from None
        raise DeploymentNotFound(
            f"{where} answers HTTP {error.status} but is not an AWS endpoint: is another server on that "
            f"port? (start the local stack with `agentbus up`){_endpoint_hints(endpoint_url or '')}"
        ) from None
    except ClientError as error:
        message = error.response["Error"].get("Message") or str(error)
        raise DeploymentNotFound(f"{where}: {_one_line(message)}") from None
    except BotoCoreError as error:  # the connection broke, timed out, or the answer was not HTTP
        raise DeploymentNotFound(f"cannot talk to {where}: {_one_line(str(error))}") from None
    if resources is None:
        if endpoint_url:
            raise DeploymentNotFound(
                f"{endpoint_url} answers but holds no agentbus deployment in region {region}: neither stack "
                f"{stack_name} (deploy it, or name it with --stack) nor the local stack (start it with `agentbus up`"
                f"; it is always in {LOCAL_REGION})")
        raise DeploymentNotFound(
            f"stack {stack_name} is not deployed in {where}: run `make deploy`, "
            "or pass --endpoint-url for the local stack")
    return Deployment(session, endpoint_url, resources)


def _stack_resources(cloudformation: Any, stack_name: str) -> Resources | None:
    """The stack's ``AgentbusResources`` output; None if the stack does not exist here."""
    seen: dict[str, Any] = {}

    def remember_status(response_dict: dict[str, Any], **_: Any) -> None:
        seen["status"] = response_dict.get("status_code")

    if hasattr(cloudformation, "meta"):  # a real botocore client (tests may hand in a stand-in)
        cloudformation.meta.events.register("before-parse.cloudformation.DescribeStacks", remember_status)
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if _absent(error):
            return None
        raise
    except (ResponseParserError, KeyError):  # an answer that is no CloudFormation XML: another server
        raise NotAnAwsEndpoint(seen.get("status", "?")) from None
    if not stacks:
        return None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs") or []}
    if RESOURCES_OUTPUT_KEY not in outputs:
        raise DeploymentNotFound(f"stack {stack_name} has no {RESOURCES_OUTPUT_KEY} output: is it an agentbus stack?")
    return Resources.from_json(outputs[RESOURCES_OUTPUT_KEY])


def _local_resources(ssm: Any) -> Resources | None:
    """What `agentbus up` wrote; None if it holds no such parameter."""
    try:
        response = ssm.get_parameter(Name=LOCAL_RESOURCES_PARAMETER)
    except ClientError as error:
        if _absent(error):
            return None
        raise
    value = (response.get("Parameter") or {}).get("Value")
    if not isinstance(value, str):  # an HTTP 200 that is no SSM answer
        raise NotAnAwsEndpoint(response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?"))
    try:
        return Resources.from_json(value)
    except (ValueError, TypeError, KeyError) as error:
        raise DeploymentNotFound(f"{LOCAL_RESOURCES_PARAMETER} is not an agentbus resources record ({error})") from None


def _https_hint(endpoint_url: str) -> str:
    """A TLS hello sent to a plain-HTTP server (the local stack) gets no answer at all: say so."""
    return (" (the local stack speaks plain http: try " + "http" + endpoint_url[len("https"):] + ")"
            if endpoint_url.lower().startswith("https:") else "")


def _endpoint_hints(endpoint_url: str) -> str:
    """What may make an AWS-compatible endpoint answer like another server: a path in the URL (each API is served
    at the root)."""
    path = urlsplit(endpoint_url).path
    return f"; the URL has the path {path!r}: an endpoint is just scheme://host:port" if path not in ("", "/") else ""


def _known_region(session: boto3.session.Session, region: str) -> bool:
    """Whether botocore knows ``region`` (moto answers HTTP 500 for one that does not exist)."""
    return region in session.get_available_regions("cloudformation", partition_name=_partition(region))


def _partition(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"


class NotAnAwsEndpoint(Exception):
    def __init__(self, status: Any) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def _absent(error: ClientError) -> bool:
    """Not there: a missing stack or parameter, or an AWS endpoint that does not serve that API at all.
    An answer with no AWS error code at all (an HTML page, plain text) is another server: NotAnAwsEndpoint."""
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code == "ParameterNotFound" or (code == "ValidationError" and "does not exist" in message):
        return True
    if not code or code.isdigit():
        raise NotAnAwsEndpoint(status or code or "?")
    return status in (404, 501)


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit] + "…"
