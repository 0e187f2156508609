"""Synthesizes the CDK app once per session (in-process, no Docker, no AWS); the index is in template.py."""

from __future__ import annotations

import json

import pytest

from functions.manifest import MANIFEST
from tests.infrastructure.template import CONTEXT, ConsumerView, Synth


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    from app import create_app
    from infrastructure.stack import STACK_NAME

    outdir = tmp_path_factory.mktemp("cdk.out")
    app, stack = create_app(context=CONTEXT, outdir=str(outdir))
    error: Exception | None = None
    try:
        app.synth()
    except Exception as exc:  # cdk-nag findings fail the synth after the template is written
        error = exc
    template_path = outdir / f"{STACK_NAME}.template.json"
    assert template_path.exists(), f"synth wrote no template: {error}"
    return Synth(app=app, stack=stack, outdir=outdir, template=json.loads(template_path.read_text()),
                 error=error)


@pytest.fixture(scope="session")
def consumers(synth: Synth) -> dict[str, ConsumerView]:
    return {spec.name: synth.consumer(spec) for spec in MANIFEST.consumers}
