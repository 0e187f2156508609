"""A bad ``-c`` context value fails the synth with one line naming the key, not a Python traceback (black-box
pass 3, G6). The app runs as the CDK CLI runs it (``.venv/bin/python app.py``, the context in CDK_CONTEXT_JSON),
without the CLI itself: the app exits before anything is synthesized."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _run_app(context: dict[str, str], outdir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(outdir),
           "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    return subprocess.run([sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=240)


@pytest.mark.parametrize(("context", "says"), [
    ({"bus_name": "default"}, "bus_name 'default': every account already has an event bus and a schedule group "
                              "named 'default'; choose another name"),
    ({"deadline_seconds": "abc"}, "deadline_seconds must be a whole number, got 'abc'"),
    ({"reasoner": "bedrock"}, "reasoner=bedrock needs -c model_id="),
])
def test_a_bad_context_value_is_one_line_naming_the_key(tmp_path: Path, context: dict[str, str], says: str) -> None:
    result = _run_app(context, tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("agentbus synth: bad -c context value: ") and says in line, line
    assert result.stdout == ""
    assert not list(tmp_path.iterdir()), "nothing is synthesized"


def test_create_app_still_raises_a_value_error_for_callers() -> None:
    from app import ContextError, create_app

    with pytest.raises(ValueError, match="^stage '1dev'") as raised:
        create_app(context={"stage": "1dev"})
    assert isinstance(raised.value, ContextError)


def test_code_the_manifest_names_that_cannot_load_fails_the_synth_as_a_manifest_error() -> None:
    """Black-box pass 7A, F5/F6: a handler typo synthesized cleanly (every cold start on AWS would fail), and a
    trigger-model typo was reported as a bad -c context value though no -c was given."""
    from dataclasses import replace

    from app import ContextError, ManifestError, create_app
    from functions.manifest import MANIFEST

    orders = MANIFEST.workflow("order-fulfillment")
    fraud = replace(orders.agents[0], handler="functions.orders.fraudd.handler.handler")
    trigger = replace(orders.trigger, model="functions.orders.models:OrderPlacedd")
    broken = replace(MANIFEST, workflows=tuple(
        replace(w, agents=(fraud, *w.agents[1:]), trigger=trigger) if w.name == orders.name else w
        for w in MANIFEST.workflows))
    with pytest.raises(ManifestError) as raised:
        create_app(context={}, manifest=broken)
    assert not isinstance(raised.value, ContextError)
    message = str(raised.value)
    assert f"function {fraud.name}: its handler 'functions.orders.fraudd.handler.handler' (manifest) cannot be " \
           "imported (ModuleNotFoundError" in message
    assert "workflow order-fulfillment: trigger model: 'functions.orders.models' has no attribute 'OrderPlacedd'" \
        in message
    assert MANIFEST.import_problems() == []
