"""The rehearsal: the real CDK app deployed on MiniStack (`cdk bootstrap` + `cdk deploy`), driven by the
`aws` and `agentbus` CLIs, destroyed at the end. Every test here is marked ``rehearse``.

Needs MiniStack in ``.tools/ministack`` (``make rehearse`` installs it). One MiniStack and one stack per
session; the tests share them, each with orders of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.rehearse import harness

BIN = Path(sys.executable).parent
# Short, so the deadline test waits little; long enough for an order on warm functions on a busy CI box.
DEADLINE_SECONDS = 60
# Orders put at once before the tests, to start the functions' workers (see Rehearsal.warm_up).
WARM_UP_ORDERS = 3
REHEARSAL_TIMEOUT_S = 900


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.rehearse)
            # The first test also pays for the session's setup: bootstrap and deploy take minutes.
            item.add_marker(pytest.mark.timeout(REHEARSAL_TIMEOUT_S))


@dataclass
class Rehearsal:
    endpoint: str
    stack_name: str
    resources: dict[str, Any]
    started: float

    def env(self) -> dict[str, str]:
        return harness.aws_env(self.endpoint)

    def aws(self, *args: str) -> dict[str, Any]:
        """The real AWS CLI against the deployed stack; its JSON output."""
        # --endpoint-url as well as AWS_ENDPOINT_URL: the AWS CLI v1 ignores the variable for some services (sqs).
        out = harness.run([str(BIN / "aws"), "--endpoint-url", self.endpoint, "--output", "json", *args], self.env(),
                          f"aws {' '.join(args)}", timeout_s=120)
        return json.loads(out) if out.strip() else {}

    def agentbus(self, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "agentbus"), *args, "--endpoint-url", self.endpoint], capture_output=True,
                              text=True, env=self.env(), cwd=harness.REPO_ROOT, timeout=timeout_s)

    def status(self, workflow_id: str) -> dict[str, Any] | None:
        result = self.agentbus("status", workflow_id, "--json")
        return json.loads(result.stdout) if result.returncode == 0 else None

    def wait_outcome(self, workflow_id: str, timeout_s: float = 120) -> dict[str, Any]:
        """The workflow's view once it has its outcome: one `agentbus status --wait`, as a user's script waits."""
        result = self.agentbus("status", workflow_id, "--json", "--wait", str(timeout_s), timeout_s=timeout_s + 60)
        assert result.returncode == 0, (f"{workflow_id}: no outcome in {timeout_s:.0f}s ({result.stderr.strip()}); "
                                        f"last {result.stdout.strip()}")
        return dict(json.loads(result.stdout))

    def wait_status(self, workflow_id: str, predicate: Callable[[dict[str, Any]], bool],
                    timeout_s: float = 120) -> dict[str, Any]:
        """The first view that ``predicate`` accepts (for a state before the outcome; ``wait_outcome`` for that)."""
        deadline = time.monotonic() + timeout_s
        view = None
        while time.monotonic() < deadline:
            view = self.status(workflow_id)
            if view and predicate(view):
                return view
            time.sleep(2)  # each look is a CLI process of its own: about a second of a core
        raise AssertionError(f"{workflow_id}: not reached in {timeout_s:.0f}s; last status {view}")

    def warm_up(self, tmp: Path, orders: int = WARM_UP_ORDERS) -> None:
        """Put ``orders`` orders back to back, then wait until each has its outcome, whichever it is.

        MiniStack starts a function's worker process on its first invocation, and one more for each invocation
        that comes while the others are busy; each start imports the function's code (Powertools, boto3,
        pydantic) first. On a CI box whose two cores run ``make test`` beside the rehearsal, a start took 20 s
        and more (CI of stop 31), so the first orders of a cold stack passed their deadline before their results
        were in. Lambda itself starts in about a second. The tests assert outcomes on warm workers;
        ``LAMBDA_WARM_TTL_SECONDS`` (harness.MiniStack) keeps them for the session."""
        started = time.monotonic()
        ids = [self.put_order_file("events/order-placed.json", new_order_id(f"warm{n}"), tmp) for n in range(orders)]
        outcomes = [self.wait_outcome(order_id, timeout_s=DEADLINE_SECONDS + 120)["status"] for order_id in ids]
        print(f"\nwarm-up: {orders} orders ({', '.join(outcomes)}) in {time.monotonic() - started:.0f}s",
              file=sys.stderr)

    def put_order_file(self, path: str, order_id: str | None = None, tmp: Path | None = None) -> str:
        """Put an events/ file with the `aws` CLI, under a fresh order id if asked; returns the order id."""
        entries = json.loads((harness.REPO_ROOT / path).read_text())
        detail = json.loads(entries[0]["Detail"])
        if order_id:
            detail["order_id"] = order_id
            entries[0]["Detail"] = json.dumps(detail)
        entries[0]["EventBusName"] = self.resources["bus_name"]
        assert tmp is not None
        file = tmp / f"{detail['order_id']}.json"
        file.write_text(json.dumps(entries))
        answer = self.aws("events", "put-events", "--entries", f"file://{file}")
        assert answer["FailedEntryCount"] == 0, answer
        return str(detail["order_id"])


def new_order_id(prefix: str) -> str:
    return f"ord-{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rehearsal]:
    started = time.monotonic()
    workdir = tmp_path_factory.mktemp("rehearse")
    # REHEARSE_AUTH=true: MiniStack evaluates IAM policies (AUTH=true); see the README for what that gives.
    auth = os.environ.get("REHEARSE_AUTH", "").lower() == "true"
    ministack = harness.MiniStack(port=harness.free_port(), log_path=workdir / "ministack.log", auth=auth).start()
    try:
        harness.publish_powertools_layer(ministack.url)
        context = {"deadline_seconds": str(DEADLINE_SECONDS), "powertools_layer_version": str(harness.LAYER_VERSION)}
        with harness.deployed_stack(ministack.url, workdir / "cdk.out", context) as stack_name:
            stack = harness.client("cloudformation", ministack.url).describe_stacks(StackName=stack_name)["Stacks"][0]
            outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
            rehearsal = Rehearsal(ministack.url, stack_name, json.loads(outputs["AgentbusResources"]), started)
            seeded = rehearsal.agentbus("seed")
            assert seeded.returncode == 0, f"agentbus seed failed: {seeded.stderr}"
            rehearsal.warm_up(workdir)
            yield rehearsal
        gone = harness.client("cloudformation", ministack.url).list_stacks(
            StackStatusFilter=["CREATE_COMPLETE", "UPDATE_COMPLETE"])["StackSummaries"]
        assert stack_name not in [s["StackName"] for s in gone], "cdk destroy left the stack in place"
    finally:
        ministack.stop()
        print(f"\nrehearsal wall time: {time.monotonic() - started:.0f}s (MiniStack log: {ministack.log_path})",
              file=sys.stderr)
