"""The README's local-stack section, command by command: `agentbus up` + the real `aws` CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import agents_of, order_entry
from tests.e2e.conftest import REPO_ROOT, start_up, stop_up

pytestmark = pytest.mark.e2e


def test_the_sample_order_completes(up):
    response = up.aws("events", "put-events", "--entries", "file://events/order-placed.json")
    assert response["FailedEntryCount"] == 0
    view = up.wait_outcome("ord-1001")
    assert view["status"] == "COMPLETED"
    assert set(view["results"]) == set(agents_of())  # the order workflow's agents, any a user added too
    assert view["missing"] == []

    trace = up.agentbus("trace", "ord-1001")
    assert trace.returncode == 0, trace.stderr
    assert "inventory" in trace.stdout and "COMPLETED" in trace.stdout


def test_a_client_added_rule_receives_the_terminal_event(up):
    queue_url = up.aws("sqs", "create-queue", "--queue-name", "my-outcomes")["QueueUrl"]
    queue_arn = up.aws("sqs", "get-queue-attributes", "--queue-url", queue_url, "--attribute-names",
                       "QueueArn")["Attributes"]["QueueArn"]
    up.aws("events", "put-rule", "--name", "my-outcomes", "--event-bus-name", "agentbus", "--event-pattern",
           json.dumps({"source": ["agentbus.coordinator"], "detail-type": ["Order Completed"]}))
    up.aws("events", "put-targets", "--rule", "my-outcomes", "--event-bus-name", "agentbus", "--targets",
           json.dumps([{"Id": "mine", "Arn": queue_arn}]))
    order_id = f"ord-{uuid.uuid4().hex[:8]}"
    up.boto3("events").put_events(Entries=[order_entry(order_id)])

    deadline = time.monotonic() + 60
    bodies = []
    while time.monotonic() < deadline and not bodies:
        received = up.aws("sqs", "receive-message", "--queue-url", queue_url, "--wait-time-seconds", "2",
                          "--max-number-of-messages", "10")
        bodies = [json.loads(m["Body"]) for m in received.get("Messages", [])
                  if json.loads(m["Body"])["detail"]["order_id"] == order_id]
    assert bodies, "the terminal event never reached the client's queue"
    assert bodies[0]["detail-type"] == "Order Completed"
    assert bodies[0]["detail"]["status"] == "COMPLETED"


def test_pause_keeps_the_order_running_and_resume_completes_it(up):
    paused = up.agentbus("agent", "pause", "shipping")
    assert paused.returncode == 0, paused.stderr
    # No grace period: the pause holds from the moment the command returns.
    order_id = f"ord-{uuid.uuid4().hex[:8]}"
    up.boto3("events").put_events(Entries=[order_entry(order_id)])
    listing = up.agentbus("agent", "list")
    assert "paused" in listing.stdout

    others = set(agents_of()) - {"shipping"}
    view = up.wait_status(order_id, lambda v: others <= set(v["results"]))
    assert view["status"] == "RUNNING"
    assert view["missing"] == ["shipping"]

    resumed = up.agentbus("agent", "resume", "shipping")
    assert resumed.returncode == 0, resumed.stderr
    assert up.wait_outcome(order_id)["status"] == "COMPLETED"


def test_a_poison_message_shows_in_dead_letters_and_can_be_redriven(up):
    up.aws("events", "put-events", "--entries", "file://events/order-placed-invalid.json")
    deadline = time.monotonic() + 30
    letters = []
    while time.monotonic() < deadline and len(letters) < len(agents_of()):
        result = up.agentbus("dead-letters", "--json")
        assert result.returncode == 0, result.stderr
        letters = [x for x in json.loads(result.stdout) if x["event"]["detail"].get("order_id") == "ord-1003"]
        time.sleep(1)  # each look is a CLI process
    assert sorted(x["agent"] for x in letters) == sorted(agents_of())  # every agent refuses the invalid order
    assert all("quantity" in x["reason"] for x in letters)
    human = up.agentbus("dead-letters")
    assert "reason:" in human.stdout

    redriven = up.agentbus("redrive", "fraud")
    assert redriven.returncode == 0, redriven.stderr
    assert "redrove 1 message" in redriven.stdout
    assert up.wait_outcome("ord-1003")["status"] == "REJECTED"


def test_a_hundred_orders_in_batches_of_ten_all_reach_an_outcome(up):
    events = up.boto3("events")
    order_ids = [f"ord-load-{uuid.uuid4().hex[:8]}" for _ in range(100)]
    for start in range(0, 100, 10):
        response = events.put_events(Entries=[order_entry(o) for o in order_ids[start:start + 10]])
        assert response["FailedEntryCount"] == 0
    from agentbus import operations
    from agentbus.discovery import find_deployment

    deployment = find_deployment(up.url)
    deadline = time.monotonic() + 240
    pending = set(order_ids)
    while pending and time.monotonic() < deadline:
        for order_id in list(pending):
            try:
                if operations.workflow_status(deployment, order_id)["status"] != "RUNNING":
                    pending.discard(order_id)
            except operations.OperationError:
                pass
        time.sleep(1)
    assert not pending, f"{len(pending)} orders without an outcome"


def test_a_forged_agent_result_is_refused_as_aws_refuses_it(up):
    """Anyone may place an order; only the fraud function may publish under the fraud agent's source."""
    response = up.aws("events", "put-events", "--entries", "file://events/order-verified.json")
    assert response["FailedEntryCount"] == 1
    assert response["Entries"][0]["ErrorCode"] == "NotAuthorizedForSourceException"
    deadline = up.aws("events", "put-events", "--entries", "file://events/workflow-deadline-reached.json")
    assert deadline["Entries"][0]["ErrorCode"] == "NotAuthorizedForSourceException"


def test_put_is_the_same_as_aws_events_put_events(up):
    result = up.agentbus("put", "events/order-placed-over-limit.json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["FailedEntryCount"] == 0
    view = up.wait_outcome("ord-1002")
    assert view["status"] == "REJECTED"


@pytest.mark.parametrize("args, message", [
    (("status", "no-such-order"), "unknown workflow id"),
    (("agent", "pause", "nobody"), "unknown agent"),
    (("redrive", "nobody"), "unknown agent"),
])
def test_user_errors_are_one_clear_line(up, args, message):
    result = up.agentbus(*args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_unreachable_endpoint_is_one_clear_line(up):
    result = up.agentbus("status", "ord-1001", "--endpoint-url", "http://127.0.0.1:9", endpoint=False)
    assert result.returncode != 0
    assert "cannot reach http://127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr


def test_up_stops_cleanly_on_sigterm():
    local = start_up()
    assert stop_up(local) == 0
    assert "stopped" in "".join(local.output)


def test_the_try_line_works_as_printed_from_a_shell_with_another_region_and_no_usable_profile(tmp_path):
    # black-box pass 12C, F1-F3: a shell with AWS_DEFAULT_REGION=eu-west-3 sent the printed command's event to a
    # bus in eu-west-3 (dropped, with an EventId), a fresh machine had no credentials for it, and an AWS_PROFILE
    # naming no profile (or an SSO one whose login expired) stopped `agentbus up` and every verb.
    config = tmp_path / "config"
    config.write_text("[profile expired]\ncredential_process = sh -c 'exit 1'\n[default]\nregion = eu-west-3\n")
    hostile = {name: value for name, value in os.environ.items()
               if not name.startswith("AWS_") or name in ("AWS_CA_BUNDLE",)}
    hostile.update({"AWS_DEFAULT_REGION": "eu-west-3", "AWS_CONFIG_FILE": str(config),
                    "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"), "AWS_PAGER": "",
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"})
    local = start_up(env={**hostile, "AWS_PROFILE": "nosuchprofile"})
    try:
        [banner] = [line for line in local.output if "ready at" in line]
        assert f"ready at {local.url} in us-east-1 " in banner
        deadline = time.monotonic() + 30  # printed after the ready line, which start_up waits for
        while not any(line.strip().startswith("try: ") for line in local.output) and time.monotonic() < deadline:
            time.sleep(0.1)
        [line] = [line for line in local.output if line.strip().startswith("try: ")]
        command = line.strip().removeprefix("try: ")
        put = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=REPO_ROOT,
                             env={**hostile, "AWS_PROFILE": "nosuchprofile"}, timeout=60)
        assert put.returncode == 0 and json.loads(put.stdout)["FailedEntryCount"] == 0, put.stderr
        for profile in ("nosuchprofile", "expired"):
            view = local.wait_outcome("ord-1001", env={**hostile, "AWS_PROFILE": profile})
            assert view["status"] == "COMPLETED"
    finally:
        assert stop_up(local) == 0, "".join(local.output)


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
        if parent == pid:
            found.append((int(entry.name), command))
    return found


def test_up_stops_with_an_error_when_its_endpoint_process_dies():
    local = start_up()
    endpoints = [pid for pid, command in _children(local.process.pid) if "agentbus.local.server" in command]
    assert len(endpoints) == 1, _children(local.process.pid)
    os.kill(endpoints[0], signal.SIGKILL)
    assert local.process.wait(timeout=30) == 2  # an error, not a refusal (1)
    local.reader.join(timeout=5)
    assert "the local endpoint process exited unexpectedly (exit code -9)" in "".join(local.output)
