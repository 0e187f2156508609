"""Finding a deployment on any endpoint: the stack's CloudFormation output first, then `agentbus up`'s SSM
parameter (issue 12). botocore's Stubber plays the endpoint."""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from agentbus import discovery
from agentbus.resources import LOCAL_RESOURCES_PARAMETER, RESOURCES_OUTPUT_KEY, ConsumerResources, Resources

ENDPOINT = "http://127.0.0.1:4599"


def resources(bus: str) -> Resources:
    return Resources(bus_name=bus, bus_arn=f"arn:aws:events:us-east-1:1:event-bus/{bus}", archive_name="a",
                     schedule_group=bus, scheduler_role_arn="arn:role", tables={"workflows": "w"},
                     consumers={"fraud": ConsumerResources("q", "qa", "d", "da", "fn")})


def stack(outputs: dict[str, str], name: str = "AgentbusStack") -> dict[str, Any]:
    return {"Stacks": [{"StackName": name, "CreationTime": "2026-12-01T00:00:00Z", "StackStatus": "CREATE_COMPLETE",
                        "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()]}]}


class Endpoint:
    """A stubbed CloudFormation and SSM, handed to find_deployment in place of real clients."""

    def __init__(self) -> None:
        session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
        self.clients = {name: session.client(name, endpoint_url=ENDPOINT) for name in ("cloudformation", "ssm")}
        self.stubs = {name: Stubber(client) for name, client in self.clients.items()}
        self.asked: list[str] = []
        self.regions: list[str] = []

    def client(self, session: Any, endpoint_url: str | None, service: str) -> Any:
        self.asked.append(f"{service}@{endpoint_url}")
        self.regions.append(session.region_name)
        return self.clients[service]

    def stack(self, name: str, response: dict[str, Any] | None = None,
              error: tuple[str, str, int] | None = None) -> None:
        if error:
            code, message, status = error
            self.stubs["cloudformation"].add_client_error("describe_stacks", code, message, status,
                                                          expected_params={"StackName": name})
        else:
            self.stubs["cloudformation"].add_response("describe_stacks", response or {},
                                                      expected_params={"StackName": name})

    def parameter(self, value: str | None) -> None:
        if value is None:
            self.stubs["ssm"].add_client_error("get_parameter", "ParameterNotFound", "", 400,
                                               expected_params={"Name": LOCAL_RESOURCES_PARAMETER})
        else:
            self.stubs["ssm"].add_response("get_parameter", {"Parameter": {"Name": LOCAL_RESOURCES_PARAMETER,
                                                                           "Value": value}},
                                           expected_params={"Name": LOCAL_RESOURCES_PARAMETER})


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AGENTBUS_STACK", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    fake = Endpoint()
    monkeypatch.setattr(discovery, "_probe_client", fake.client)
    for stub in fake.stubs.values():
        stub.activate()
    yield fake
    for stub in fake.stubs.values():
        stub.assert_no_pending_responses()


def test_a_deployed_stack_behind_an_endpoint_is_found_through_its_output(endpoint: Endpoint) -> None:
    deployed = resources("deployed")
    endpoint.stack("AgentbusStack", stack({RESOURCES_OUTPUT_KEY: json.dumps(asdict(deployed))}))
    found = discovery.find_deployment(ENDPOINT)
    assert found.resources == deployed and found.endpoint_url == ENDPOINT
    assert endpoint.asked == [f"cloudformation@{ENDPOINT}"], "the SSM parameter is not needed"


def test_the_local_stack_is_found_through_its_parameter_when_no_stack_is_deployed(endpoint: Endpoint) -> None:
    local = resources("local")
    endpoint.stack("AgentbusStack", error=("ValidationError", "Stack with id AgentbusStack does not exist", 400))
    endpoint.parameter(local.to_json())
    assert discovery.find_deployment(ENDPOINT).resources == local


def test_an_endpoint_without_cloudformation_falls_back_to_the_parameter(endpoint: Endpoint) -> None:
    endpoint.stack("AgentbusStack", error=("UnknownOperationException", "not implemented", 501))
    endpoint.parameter(resources("local").to_json())
    assert discovery.find_deployment(ENDPOINT).resources.bus_name == "local"


def test_the_stack_name_comes_from_the_argument_then_the_environment(
        endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint.stack("dev-AgentbusStack", stack({RESOURCES_OUTPUT_KEY: resources("dev-agentbus").to_json()}))
    assert discovery.find_deployment(ENDPOINT, "dev-AgentbusStack").resources.bus_name == "dev-agentbus"
    monkeypatch.setenv("AGENTBUS_STACK", "blue-AgentbusStack")
    endpoint.stack("blue-AgentbusStack", stack({RESOURCES_OUTPUT_KEY: resources("blue-agentbus").to_json()}))
    assert discovery.find_deployment(ENDPOINT).resources.bus_name == "blue-agentbus"


def test_an_endpoint_with_neither_says_what_was_looked_for(endpoint: Endpoint) -> None:
    endpoint.stack("AgentbusStack", error=("ValidationError", "Stack with id AgentbusStack does not exist", 400))
    endpoint.parameter(None)
    with pytest.raises(discovery.DeploymentNotFound, match="neither stack AgentbusStack .* `agentbus up`"):
        discovery.find_deployment(ENDPOINT)


def test_aws_without_the_stack_says_to_deploy(endpoint: Endpoint) -> None:
    endpoint.stack("AgentbusStack", error=("ValidationError", "Stack with id AgentbusStack does not exist", 400))
    endpoint.parameter(None)
    with pytest.raises(discovery.DeploymentNotFound, match=r"not deployed in AWS \(us-east-1\): run `make deploy`"):
        discovery.find_deployment()
    assert endpoint.asked == ["cloudformation@None", "ssm@None"]


def test_a_stack_without_the_output_is_not_taken_for_an_agentbus_stack(endpoint: Endpoint) -> None:
    endpoint.stack("AgentbusStack", stack({"Other": "x"}))
    with pytest.raises(discovery.DeploymentNotFound, match=f"no {RESOURCES_OUTPUT_KEY} output"):
        discovery.find_deployment(ENDPOINT)


def test_an_unreachable_endpoint_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(*_args: Any) -> Any:
        class Client:
            def describe_stacks(self, **_kwargs: Any) -> Any:
                raise EndpointConnectionError(endpoint_url=ENDPOINT)
        return Client()

    monkeypatch.setattr(discovery, "_probe_client", unreachable)
    with pytest.raises(discovery.DeploymentNotFound, match=f"cannot reach {ENDPOINT}"):
        discovery.find_deployment(ENDPOINT)


def test_other_errors_are_one_line_naming_the_endpoint(endpoint: Endpoint) -> None:
    endpoint.stack("AgentbusStack", error=("AccessDenied", "not allowed to DescribeStacks", 403))
    with pytest.raises(discovery.DeploymentNotFound, match=f"{ENDPOINT}: not allowed to DescribeStacks"):
        discovery.find_deployment(ENDPOINT)


def test_a_hung_endpoint_is_named_after_the_short_probe_not_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A socket that takes the connection and never answers (a hung process, a debugger stop): finding the
    deployment gives up after PROBE_ATTEMPTS short reads, naming the endpoint, instead of the operations' 3 x 30 s."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setattr(discovery, "PROBE_READ_TIMEOUT_S", 0.3)
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)  # the kernel completes the handshakes; nobody ever reads or answers
        url = f"http://127.0.0.1:{hung.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(discovery.DeploymentNotFound, match=rf"{url} did not answer within 0.3 s \(2 tries\)"):
            discovery.find_deployment(url)
    assert time.monotonic() - started < 10


def test_an_https_url_on_a_server_that_never_answers_it_suggests_http(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local stack speaks plain http: a TLS hello sent to it gets no answer, so say which scheme to try."""
    monkeypatch.setattr(discovery, "PROBE_READ_TIMEOUT_S", 0.3)
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        port = hung.getsockname()[1]
        with pytest.raises(discovery.DeploymentNotFound,
                           match=rf"\(the local stack speaks plain http: try http://127.0.0.1:{port}\)"):
            discovery.find_deployment(f"https://127.0.0.1:{port}")


def test_an_empty_endpoint_url_is_refused_not_taken_for_aws() -> None:
    for empty in ("", "  "):
        with pytest.raises(discovery.DeploymentNotFound, match="--endpoint-url is empty"):
            discovery.find_deployment(empty)


def test_an_endpoint_without_a_deployment_names_the_region_it_looked_in(
        endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    endpoint.stack("AgentbusStack", error=("ValidationError", "Stack with id AgentbusStack does not exist", 400))
    endpoint.parameter(None)
    endpoint.parameter(None)  # nor `agentbus up`'s, in its own region
    with pytest.raises(discovery.DeploymentNotFound, match="holds no agentbus deployment in region eu-west-1: .*"
                                                           "the local stack .* it is always in us-east-1"):
        discovery.find_deployment(ENDPOINT)
    assert endpoint.regions == ["eu-west-1", "eu-west-1", "us-east-1"]


def test_the_local_stack_is_found_in_its_region_whatever_the_shells(
        endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    # black-box pass 12C, F1: a shell with AWS_DEFAULT_REGION=eu-west-3 could not use `agentbus up`'s stack, and
    # the message sent the user to the region they had started it in.
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    endpoint.stack("AgentbusStack", error=("ValidationError", "Stack with id AgentbusStack does not exist", 400))
    endpoint.parameter(None)
    endpoint.parameter(resources("local").to_json())
    found = discovery.find_deployment(ENDPOINT)
    assert found.resources.bus_name == "local" and found.session.region_name == "us-east-1"
    assert endpoint.regions == ["eu-west-3", "eu-west-3", "us-east-1"]


def test_an_endpoints_session_reads_no_profile(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    # black-box pass 12C, F2: an SSO profile's credential process, an MFA prompt or a profile that does not exist
    # stopped `make demo` and every verb against the local stack, which takes any keys.
    called = tmp_path / "called"
    config = tmp_path / "config"
    config.write_text(f"[profile sso]\ncredential_process = sh -c 'touch {called}; exit 1'\nregion = eu-west-3\n"
                      "[profile mfa]\nrole_arn = arn:aws:iam::111122223333:role/r\n"
                      "mfa_serial = arn:aws:iam::111122223333:mfa/u\nsource_profile = sso\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
                 "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    for profile in ("sso", "mfa", "nosuchprofile"):
        monkeypatch.setenv("AWS_PROFILE", profile)
        session = discovery.make_session(ENDPOINT)
        session.client("sqs", endpoint_url=ENDPOINT)
        credentials = session.get_credentials()
        assert (credentials.access_key, credentials.secret_key, credentials.token) == (
            "agentbus-local", "agentbus-local", None)
        assert session.region_name == "us-east-1"
    assert not called.exists()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token")
    credentials = discovery.make_session(ENDPOINT).get_credentials()
    assert (credentials.access_key, credentials.secret_key, credentials.token) == ("AKIDEXAMPLE", "secret", "token")


@pytest.mark.parametrize("region, path, hint", [
    # An unknown region leads (black-box pass 8B, F2): the endpoint is the local stack, not another server.
    ("mars-1", "", "^the region 'mars-1' \\(AWS_REGION / AWS_DEFAULT_REGION\\) is not one botocore knows: "),
    ("us-east-1", "/foo", re.escape("the URL has the path '/foo': an endpoint is just scheme://host:port")),
])
def test_what_makes_an_endpoint_answer_like_another_server_is_named(
        monkeypatch: pytest.MonkeyPatch, region: str, path: str, hint: str) -> None:
    monkeypatch.setenv("AWS_REGION", region)

    def not_aws(*_args: Any) -> Any:
        class Client:
            def describe_stacks(self, **_kwargs: Any) -> Any:
                raise discovery.NotAnAwsEndpoint(500)
        return Client()

    monkeypatch.setattr(discovery, "_probe_client", not_aws)
    with pytest.raises(discovery.DeploymentNotFound, match=hint):
        discovery.find_deployment(ENDPOINT + path)


def test_aws_region_chooses_the_region_on_aws_as_the_aws_cli_v2_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert discovery.make_session(None).region_name == "eu-west-3"
    monkeypatch.delenv("AWS_REGION")
    assert discovery.make_session(None).region_name == "us-east-1"


def test_a_profiles_written_down_keys_are_kept_for_an_endpoint_and_nothing_else_is_resolved(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    # Code review bb12e, F4: an emulator that takes the account from the key (LocalStack, MiniStack) no longer
    # found a stack deployed with a profile's keys; the profile's SSO, process or role is still never run.
    called = tmp_path / "called"
    (tmp_path / "credentials").write_text("[emu]\naws_access_key_id = 111111111111\naws_secret_access_key = s\n")
    (tmp_path / "config").write_text(f"[profile sso]\ncredential_process = sh -c 'touch {called}; exit 1'\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_PROFILE", "emu")
    with discovery.without_aws_config():
        credentials = discovery.make_session(ENDPOINT).get_credentials()
        assert (credentials.access_key, credentials.secret_key) == ("111111111111", "s")
    assert "AWS_ACCESS_KEY_ID" not in os.environ and os.environ["AWS_PROFILE"] == "emu"
    for profile in ("sso", "nosuchprofile"):
        monkeypatch.setenv("AWS_PROFILE", profile)
        with discovery.without_aws_config():
            assert discovery.make_session(ENDPOINT).get_credentials().access_key == "agentbus-local"
    assert not called.exists()


def use_profile(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, profile: str, credential_process: str) -> None:
    """AWS_PROFILE ``profile`` of a config of its own whose credentials come from ``credential_process``."""
    config = tmp_path / "config"
    config.write_text(f"[profile {profile}]\ncredential_process = {credential_process}\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_PROFILE", profile)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                 "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("prints", ["not-json", "42", "[]", "\\377\\376"], ids=["text", "number", "list", "not-utf8"])
def test_a_credential_process_that_prints_no_json_object_is_one_line_naming_the_profile(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any, prints: str) -> None:
    # botocore let json's and Python's errors through from client creation: every verb on AWS ended in a traceback.
    use_profile(monkeypatch, tmp_path, "broken", f"printf '{prints}'")
    with pytest.raises(discovery.DeploymentNotFound) as error:
        discovery.find_deployment(None, "AgentbusStack")
    message = str(error.value)
    assert message.startswith("the AWS credentials of profile 'broken' could not be loaded: ")
    assert "credential_process printed something that is not a JSON object" in message and "\n" not in message


def test_credentials_that_fail_only_when_refreshed_are_one_line_too(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Any, capsys: Any) -> None:
    # Its first answer expires within botocore's refresh window, so the first call loads the credentials again
    # and gets text that is not JSON: raised from the call, not from making the client.
    from datetime import UTC, datetime, timedelta

    from agentbus import cli

    expiring = json.dumps({"Version": 1, "AccessKeyId": "k", "SecretAccessKey": "s", "SessionToken": "t",
                           "Expiration": (datetime.now(UTC) + timedelta(minutes=5)).isoformat()})
    answered = tmp_path / "answered"
    script = tmp_path / "credentials.sh"
    script.write_text(f"if [ -e {answered} ]; then echo not-json; else touch {answered}; echo '{expiring}'; fi\n")
    use_profile(monkeypatch, tmp_path, "expiring", f"sh {script}")
    assert cli.main(["status", "ord-1"]) == 2
    err = capsys.readouterr().err
    assert answered.exists() and "Traceback" not in err
    assert err.startswith("agentbus status: the AWS credentials of profile 'expiring' could not be loaded: ")
    assert "credential_process printed something that is not a JSON object" in err
