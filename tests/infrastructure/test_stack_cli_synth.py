"""`make synth`'s command, run through the pinned CDK CLI and cdk.json: no Docker, default context."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from functions.manifest import MANIFEST
from infrastructure.stack import STACK_NAME

REPO_ROOT = Path(__file__).resolve().parents[2]
CDK = REPO_ROOT / "node_modules" / ".bin" / "cdk"


def test_cdk_json_runs_the_app_with_the_venv_python() -> None:
    config = json.loads((REPO_ROOT / "cdk.json").read_text())
    assert config["app"] == ".venv/bin/python app.py"


@pytest.mark.skipif(not CDK.exists(), reason="CDK CLI not installed (make setup installs it)")
def test_cli_synth_writes_the_template_with_default_context_and_no_nag_error(tmp_path: Path) -> None:
    env = {**os.environ, "CDK_DISABLE_VERSION_CHECK": "1", "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
           "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "CDK_DISABLE_CLI_TELEMETRY": "true"}
    env.pop("DOCKER_HOST", None)
    result = subprocess.run(
        [str(CDK), "synth", "--quiet", "--no-notices", "-o", str(tmp_path)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # "end-of-life": jsii's banner about the Node.js it runs on (silenced above, as the Makefile does).
    for marker in ("AwsSolutions-", "Serverless-", "Validation failed", "docker", "end-of-life"):
        assert marker not in output, f"{marker!r} in synth output:\n{output}"

    template = json.loads((tmp_path / f"{STACK_NAME}.template.json").read_text())
    resources = template["Resources"].values()
    (bus,) = [r for r in resources if r["Type"] == "AWS::Events::EventBus"]
    assert bus["Properties"]["Name"] == MANIFEST.bus_name
    functions = [r["Properties"] for r in resources if r["Type"] == "AWS::Lambda::Function"]
    # A manifest parameter goes to the functions that declare it, with its default when no context sets it.
    variables = [f["Environment"]["Variables"] for f in functions]
    limits = [v["FRAUD_LIMIT"] for v in variables if "FRAUD_LIMIT" in v]
    assert limits == ["10000.00"]
    assert not any("DEADLINE_SECONDS" in f["Environment"]["Variables"] for f in functions)
    assert not [r for r in resources if r["Type"] == "AWS::SNS::Subscription"], "no alarm_email, no subscription"
