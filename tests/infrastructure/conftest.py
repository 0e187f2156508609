"""Synthesizes the CDK app once per session (in-process, no Docker, no AWS); the index is in template.py."""

from __future__ import annotations

import pytest

from functions.manifest import MANIFEST
from tests.infrastructure.template import CONTEXT, ConsumerView, Synth, synthesize


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    from app import create_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    app, stack = create_app(context=CONTEXT, outdir=str(outdir))
    return synthesize(app, stack, outdir)

@pytest.fixture(scope="session")
def consumers(synth: Synth) -> dict[str, ConsumerView]:
    return {spec.name: synth.consumer(spec) for spec in MANIFEST.consumers}
