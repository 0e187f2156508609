"""The Lambda code asset: the ``functions/`` package, bundled locally (no Docker needed to synth).

Every function shares one asset whose root holds ``functions/``, so the manifest's handler paths
(``functions.orders.fraud.handler.handler``) resolve as they do in the repository. Third-party code comes from
the Powertools public layer (it includes pydantic v2 and the X-Ray SDK) and the runtime's boto3.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

REPO_ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = REPO_ROOT / "functions"
PACKAGE_NAME = "functions"
# Never shipped: byte code and tool caches differ per machine and would change the asset hash.
EXCLUDED = ("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", ".ruff_cache")
# Only used if local bundling were ever unavailable; local bundling always succeeds, so Docker is never run.
FALLBACK_IMAGE = "public.ecr.aws/sam/build-python3.13"


@jsii.implements(ILocalBundling)
class CopyPackage:
    """Copies a source tree, minus caches, into ``<outputDir>/<package>/``."""

    def __init__(self, source: Path, package: str) -> None:
        self.source = Path(source)
        self.package = package

    def try_bundle(self, output_dir: str, *_options: Any, **_kwargs: Any) -> bool:
        # jsii passes the BundlingOptions along; the copy does not need them.
        if not self.source.is_dir():
            raise FileNotFoundError(f"Lambda code directory {self.source} does not exist")
        shutil.copytree(self.source, Path(output_dir) / self.package,
                        ignore=shutil.ignore_patterns(*EXCLUDED), dirs_exist_ok=True)
        return True


def functions_code(source: Path = FUNCTIONS_DIR) -> lambda_.Code:
    """One asset for every function: create it once per stack and share it."""
    return lambda_.Code.from_asset(
        str(source),
        exclude=[f"**/{pattern}" for pattern in EXCLUDED],
        bundling=BundlingOptions(
            image=DockerImage.from_registry(FALLBACK_IMAGE),
            local=CopyPackage(source, PACKAGE_NAME),
        ),
    )
