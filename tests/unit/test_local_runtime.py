"""The local runtime's emulation of EventBridge Scheduler, on stubbed clients (no endpoint)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from agentbus.local.runtime import LocalRuntime


def _runtime_with_stubbed_scheduler() -> tuple[LocalRuntime, Stubber]:
    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    runtime = LocalRuntime.__new__(LocalRuntime)  # only the scheduler client is needed here
    runtime.scheduler = session.client("scheduler", endpoint_url="http://127.0.0.1:9")
    return runtime, Stubber(runtime.scheduler)


def _page(*names: str, token: str | None = None) -> dict:
    page = {"Schedules": [{"Name": name} for name in names]}
    return {**page, "NextToken": token} if token else page


def test_schedule_listing_reads_every_page():
    runtime, stub = _runtime_with_stubbed_scheduler()
    stub.add_response("list_schedules", _page("a", "b", token="t"), {"GroupName": "g"})
    stub.add_response("list_schedules", _page("c"), {"GroupName": "g", "NextToken": "t"})
    with stub:
        assert runtime._schedule_names("g") == ["a", "b", "c"]


def test_a_stale_page_token_restarts_the_listing_instead_of_failing():
    """moto's token names the last schedule listed; the coordinator may delete it between two pages."""
    runtime, stub = _runtime_with_stubbed_scheduler()
    stub.add_response("list_schedules", _page("a", token="a"), {"GroupName": "g"})
    stub.add_client_error("list_schedules", service_error_code="InvalidToken",
                          service_message="Invalid Token: Resource not found!")
    with stub:
        assert runtime._schedule_names("g") is None


def test_other_listing_errors_are_not_swallowed():
    runtime, stub = _runtime_with_stubbed_scheduler()
    stub.add_client_error("list_schedules", service_error_code="AccessDeniedException")
    with stub, pytest.raises(runtime.scheduler.exceptions.ClientError, match="AccessDenied"):
        runtime._schedule_names("g")
