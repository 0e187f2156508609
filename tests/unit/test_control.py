"""Pausing an agent on AWS waits until its event source mapping has settled (botocore Stubber, no AWS)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from agentbus.control import AgentControl, ControlError
from agentbus.resources import ConsumerResources, Resources

UUID = "6d8f1a52-0c2b-4b7e-9a51-3f0e4d2c1b7a"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:agentbus-shipping"


class FakeClock:
    def __init__(self) -> None:
        self.now, self.sleeps = 0.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _control(timeout_s: float = 60.0) -> tuple[AgentControl, Stubber, FakeClock]:
    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    lambda_client = session.client("lambda")
    consumer = ConsumerResources(queue_url="https://sqs/q", queue_arn=QUEUE_ARN, dlq_url="https://sqs/dlq",
                                 dlq_arn=QUEUE_ARN + "-dlq", function_name="agentbus-shipping")
    resources = Resources(bus_name="agentbus", bus_arn="arn:bus", archive_name="a", schedule_group="g",
                          scheduler_role_arn="arn:role", tables={}, consumers={"shipping": consumer}, local=False)
    clock = FakeClock()
    control = AgentControl(resources, sqs=None, lambda_client=lambda_client, settle_timeout_s=timeout_s,
                           settle_poll_s=1.0, clock=clock, sleep=clock.sleep)
    stub = Stubber(lambda_client)
    stub.add_response("list_event_source_mappings", {"EventSourceMappings": [{"UUID": UUID, "State": "Enabled"}]},
                      {"FunctionName": "agentbus-shipping", "EventSourceArn": QUEUE_ARN})
    return control, stub, clock


def test_pause_returns_only_once_the_mapping_is_disabled():
    control, stub, clock = _control()
    stub.add_response("update_event_source_mapping", {"UUID": UUID, "State": "Disabling"},
                      {"UUID": UUID, "Enabled": False})
    for state in ("Disabling", "Disabling", "Disabled"):
        stub.add_response("get_event_source_mapping", {"UUID": UUID, "State": state}, {"UUID": UUID})
    with stub:
        control.set_paused("shipping", True)
        stub.assert_no_pending_responses()
    assert clock.sleeps == [1.0, 1.0]


def test_resume_waits_for_enabled():
    control, stub, clock = _control()
    stub.add_response("update_event_source_mapping", {"UUID": UUID, "State": "Enabling"},
                      {"UUID": UUID, "Enabled": True})
    stub.add_response("get_event_source_mapping", {"UUID": UUID, "State": "Enabling"}, {"UUID": UUID})
    stub.add_response("get_event_source_mapping", {"UUID": UUID, "State": "Enabled"}, {"UUID": UUID})
    with stub:
        control.set_paused("shipping", False)
        stub.assert_no_pending_responses()


def test_a_mapping_that_never_settles_is_a_clear_error_after_the_timeout():
    control, stub, clock = _control(timeout_s=3.0)
    stub.add_response("update_event_source_mapping", {"UUID": UUID, "State": "Disabling"},
                      {"UUID": UUID, "Enabled": False})
    for _ in range(4):  # at 0, 1, 2 and 3 s
        stub.add_response("get_event_source_mapping", {"UUID": UUID, "State": "Disabling"}, {"UUID": UUID})
    message = r"did not become Disabled within 3 s \(6d8f1a52-[0-9a-f-]+ is Disabling\); it may still process"
    with stub, pytest.raises(ControlError, match=message):
        control.set_paused("shipping", True)
    assert clock.now == 3.0
