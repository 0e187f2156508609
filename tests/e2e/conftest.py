"""`agentbus up` as a subprocess on a free port, driven by the real `aws` CLI and boto3."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest

from agentbus.local.server import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


class LocalUp:
    def __init__(self, port: int, process: subprocess.Popen, output: list[str]):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process = process
        self.output = output

    def env(self) -> dict[str, str]:
        return {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_PAGER": ""}

    def aws(self, *args: str, check: bool = True) -> dict:
        """The real AWS CLI against the local endpoint; returns its JSON output."""
        result = subprocess.run([str(BIN / "aws"), "--endpoint-url", self.url, "--output", "json", *args],
                                capture_output=True, text=True, env=self.env(), cwd=REPO_ROOT, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed: {result.stderr}")
        return json.loads(result.stdout) if result.stdout.strip() else {}

    def agentbus(self, *args: str, endpoint: bool = True, env: dict[str, str] | None = None,
                 timeout_s: float = 60) -> subprocess.CompletedProcess:
        """The agentbus CLI against the local endpoint, in ``env`` (default: ``self.env()``)."""
        extra = ["--endpoint-url", self.url] if endpoint else []
        return subprocess.run([str(BIN / "agentbus"), *args, *extra], capture_output=True, text=True,
                              env=self.env() if env is None else env, cwd=REPO_ROOT, timeout=timeout_s)

    def status(self, workflow_id: str, env: dict[str, str] | None = None) -> dict | None:
        result = self.agentbus("status", workflow_id, "--json", env=env)
        assert "Traceback" not in result.stderr, result.stderr
        return json.loads(result.stdout) if result.returncode == 0 else None

    def wait_outcome(self, workflow_id: str, timeout_s: float = 60, env: dict[str, str] | None = None) -> dict:
        """The workflow's view once it has its outcome: one `agentbus status --wait`, as a user's script waits."""
        result = self.agentbus("status", workflow_id, "--json", "--wait", str(timeout_s), env=env,
                               timeout_s=timeout_s + 60)
        assert "Traceback" not in result.stderr, result.stderr
        assert result.returncode == 0, f"{workflow_id}: no outcome in {timeout_s}s ({result.stderr.strip()}); " \
                                       f"last {result.stdout.strip()}"
        return json.loads(result.stdout)

    def wait_status(self, workflow_id: str, predicate, timeout_s: float = 60,
                    env: dict[str, str] | None = None) -> dict:
        """The first view that ``predicate`` accepts (for a state before the outcome; ``wait_outcome`` for that)."""
        deadline = time.monotonic() + timeout_s
        view = None
        while time.monotonic() < deadline:
            view = self.status(workflow_id, env)
            if view and predicate(view):
                return view
            time.sleep(1)  # each look is a CLI process of its own: about a second of a core
        raise AssertionError(f"{workflow_id}: not reached in {timeout_s}s; last {view}")

    def boto3(self, service: str):
        return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                     region_name="us-east-1").client(service, endpoint_url=self.url)


def start_up(*args: str, timeout_s: float = 60, env: dict[str, str] | None = None) -> LocalUp:
    port = free_port()
    process = subprocess.Popen([str(BIN / "agentbus"), "up", "--port", str(port), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT,
                               env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"})
    output: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        if "ready" in line:
            break
    if not output or "ready" not in output[-1]:
        process.kill()
        raise AssertionError("agentbus up did not become ready:\n" + "".join(output))
    # Keep reading its output: a full pipe would block the process on its next log line.
    reader = threading.Thread(target=lambda: output.extend(iter(process.stdout.readline, "")), daemon=True)
    reader.start()
    local = LocalUp(port, process, output)
    local.reader = reader
    return local


def stop_up(up: LocalUp) -> int:
    up.process.send_signal(signal.SIGTERM)
    try:
        up.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        up.process.kill()
        up.process.wait()
        up.reader.join(timeout=5)
        # `agentbus up` dumps every thread's stack when a stop hangs: show it.
        tail = "".join(up.output)[-20000:]
        raise AssertionError(f"agentbus up did not stop within 60 s of SIGTERM:\n{tail}") from None
    up.reader.join(timeout=5)
    return up.process.returncode


@pytest.fixture(scope="module")
def up():
    local = start_up("--deadline", "60")
    yield local
    assert stop_up(local) == 0, "".join(local.output)
