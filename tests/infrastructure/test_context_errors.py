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


def _manifest_with_probe_agent(tmp_path, monkeypatch, probe: str):
    """The shipped manifest with fraud's handler replaced by ``functions.probe.handler.handler`` (source ``probe``),
    importable here (as its author's venv imports it) and in a copy of the asset the Lambda check reads."""
    import shutil
    from dataclasses import replace

    import functions
    from functions.manifest import MANIFEST
    from infrastructure import lambda_imports

    extra = tmp_path / "extra"
    (extra / "probe").mkdir(parents=True)
    (extra / "probe" / "__init__.py").write_text("")
    (extra / "probe" / "handler.py").write_text(probe)
    monkeypatch.setattr(functions, "__path__", [*functions.__path__, str(extra)])
    asset = tmp_path / "asset" / "functions"
    shutil.copytree(lambda_imports.FUNCTIONS_DIR, asset, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(extra / "probe", asset / "probe")
    monkeypatch.setattr(lambda_imports, "FUNCTIONS_DIR", asset)
    orders = MANIFEST.workflow("order-fulfillment")
    fraud = replace(orders.agents[0], handler="functions.probe.handler.handler")
    return fraud, replace(MANIFEST, workflows=tuple(
        replace(w, agents=(fraud, *w.agents[1:])) if w.name == orders.name else w for w in MANIFEST.workflows))


def test_an_agent_importing_a_package_only_the_venv_has_fails_the_synth_naming_it(tmp_path, monkeypatch) -> None:
    """Black-box pass 9B, F11: the import check ran in the developer's venv, where `requests` is (moto needs it), so
    an agent importing it passed the synth and would fail every cold start on Lambda, which has only functions/,
    the standard library, boto3 and the Powertools layer."""
    from app import ManifestError, create_app
    from functions.manifest import MANIFEST
    from infrastructure import lambda_imports

    probe = ("import requests  # in the venv (a moto dependency), not on Lambda\n\n\n"
             "def handler(event, context):\n    return requests.__name__\n")
    fraud, manifest = _manifest_with_probe_agent(tmp_path, monkeypatch, probe)
    assert manifest.import_problems() == [], "the venv has requests: the old check passed"
    with pytest.raises(ManifestError) as raised:
        create_app(context={}, manifest=manifest)
    message = str(raised.value)
    assert f"function {fraud.name}: its handler 'functions.probe.handler.handler' cannot be imported on Lambda " \
           "(ModuleNotFoundError: No module named 'requests')" in message
    assert len(message.split("; ")) == 1, "only that agent"
    # The shipped manifest loads with only what Lambda has.
    assert lambda_imports.lambda_import_problems(MANIFEST, functions_dir=tmp_path / "asset" / "functions") == []


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="this Python has no cgi either: nothing to tell apart")
def test_an_agent_importing_a_module_lambdas_python_removed_fails_the_synth(tmp_path, monkeypatch) -> None:
    """The check runs on the developer's 3.11, Lambda on 3.13, which removed cgi (PEP 594): an agent importing it
    passed the synth and would fail every cold start. A lazy import behind ``except ImportError`` still loads."""
    from infrastructure import lambda_imports

    probe = ("try:\n    import imp\nexcept ImportError:\n    imp = None\n"
             "from cgi import parse_header\n\n\ndef handler(event, context):\n    return parse_header('a')\n")
    fraud, manifest = _manifest_with_probe_agent(tmp_path, monkeypatch, probe)
    assert manifest.import_problems() == [], "this Python has cgi: the venv's check passed"
    problems = lambda_imports.lambda_import_problems(manifest)
    assert problems == [f"function {fraud.name}: its handler 'functions.probe.handler.handler' cannot be imported on "
                        "Lambda (ModuleNotFoundError: No module named 'cgi' (not in Python 3.13's standard library)), "
                        f"which has only {lambda_imports.WHAT_LAMBDA_HAS}"]


def test_the_import_check_knows_the_python_the_functions_run_on(synth) -> None:
    """The removed modules are those of the runtime the stack deploys, not of a constant that drifted from it."""
    from infrastructure import lambda_imports

    runtimes = {r["Properties"]["Runtime"] for r in synth.of_type("AWS::Lambda::Function").values()
                if "Runtime" in r["Properties"]}
    assert runtimes == {"python{}.{}".format(*lambda_imports.LAMBDA_PYTHON)}
    assert "cgi" not in lambda_imports.removed_on_lambda((3, 13))
    assert {"cgi", "imp", "distutils"} <= set(lambda_imports.removed_on_lambda((3, 11)))
