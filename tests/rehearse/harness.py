"""The rehearsal's moving parts: MiniStack on a free port, the Powertools layer, `cdk bootstrap` / `deploy`.

Used by ``tests/rehearse/conftest.py``; each part is plain Python so a failure names the step that failed.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as metadata
import io
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from infrastructure.lambda_imports import LAYER_ROOTS, layer_distributions
from infrastructure.powertools import POWERTOOLS_LAYER_ACCOUNT, POWERTOOLS_LAYER_NAME

REPO_ROOT = Path(__file__).resolve().parents[2]
MINISTACK_PYTHON = REPO_ROOT / ".tools" / "ministack" / "bin" / "python"
LAUNCHER = Path(__file__).with_name("launcher.py")
CDK = REPO_ROOT / "node_modules" / ".bin" / "cdk"
ACCOUNT = "000000000000"  # MiniStack's account for any non-numeric access key
# MiniStack's root key: every key works without AUTH; with AUTH=true (IAM evaluation) the root may do anything
# and the deployed functions act with their execution roles' credentials.
ACCESS_KEY = "test"
REGION = "us-east-1"
# Published as version 1 under AWS's own account; the stack is deployed with -c powertools_layer_version=1.
LAYER_VERSION = 1
# What the public Powertools layer carries (Powertools with its tracer and parser extras: pydantic, the
# X-Ray SDK), plus boto3, which the Lambda runtime ships and MiniStack's worker lacks: the roots the synth's
# Lambda import check allows (infrastructure/lambda_imports.py).
STACK_NAME = "AgentbusStack"


# The CA file every client trusts when MiniStack serves TLS (set by MiniStack.start); None for plain HTTP.
CA_BUNDLE: str | None = None


class RehearsalError(RuntimeError):
    """One step of the rehearsal failed; the message names it."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MiniStack:
    port: int
    log_path: Path
    auth: bool = False
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        # Under AUTH, TLS: the CDK bootstrap bucket's policy denies requests without aws:SecureTransport.
        return f"{'https' if self.auth else 'http'}://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60) -> MiniStack:
        if not MINISTACK_PYTHON.exists():
            raise RehearsalError(f"{MINISTACK_PYTHON} is missing: run `make rehearse` (it installs MiniStack)")
        env = {**os.environ, "GATEWAY_PORT": str(self.port), "BIND_HOST": "127.0.0.1",
               "AUTH": "true" if self.auth else "false", "MINISTACK_REGION": REGION,
               "TMPDIR": str(self.log_path.parent), "USE_SSL": "1" if self.auth else "0",
               # Workers beyond a function's first stay warm for the session, not 300 s (Rehearsal.warm_up).
               "LAMBDA_WARM_TTL_SECONDS": "3600"}
        env.pop("AWS_ENDPOINT_URL", None)  # its Lambda workers get this server's own URL
        if self.auth:  # its Lambda workers inherit this: the functions' boto3 trusts the server's certificate
            env["AWS_CA_BUNDLE"] = str(self.log_path.parent / "ministack-tls" / "server.crt")
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen([str(MINISTACK_PYTHON), str(LAUNCHER)], env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RehearsalError(f"MiniStack exited with {self.process.returncode}: see {self.log_path}")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{self.url}/_ministack/health", timeout=2,
                                       context=ssl._create_unverified_context()).read()
                if self.auth:  # MiniStack made its certificate under TMPDIR
                    global CA_BUNDLE
                    CA_BUNDLE = str(self.log_path.parent / "ministack-tls" / "server.crt")
                return self
            time.sleep(0.3)
        self.stop()
        raise RehearsalError(f"MiniStack did not answer on {self.url} within {timeout_s:.0f}s: see {self.log_path}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if getattr(self, "_log", None):
            self._log.close()


def layer_zip(roots: tuple[tuple[str, frozenset[str]], ...] = LAYER_ROOTS) -> bytes:
    """The layer's bytes: the project's own installed (pinned by uv.lock) distributions under ``python/``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name in layer_distributions(roots):
            distribution = metadata.distribution(name)
            for file in distribution.files or []:
                path = Path(file.locate())
                if file.parts[0] == ".." or "__pycache__" in file.parts or not path.is_file():
                    continue  # console scripts live outside site-packages; byte code is rebuilt
                archive.write(path, f"python/{file.as_posix()}")
    return buffer.getvalue()


def client(service: str, endpoint: str, account_key: str = ACCESS_KEY) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id=account_key,
                        aws_secret_access_key=ACCESS_KEY, verify=CA_BUNDLE if CA_BUNDLE else True)


def publish_powertools_layer(endpoint: str) -> str:
    """Publish the layer as AWS does: under its account, readable by every account."""
    lam = client("lambda", endpoint, account_key=POWERTOOLS_LAYER_ACCOUNT)
    content = layer_zip()
    version = None
    while version is None or version < LAYER_VERSION:
        version = lam.publish_layer_version(LayerName=POWERTOOLS_LAYER_NAME, Content={"ZipFile": content},
                                            CompatibleRuntimes=["python3.13"])["Version"]
    lam.add_layer_version_permission(LayerName=POWERTOOLS_LAYER_NAME, VersionNumber=LAYER_VERSION,
                                     StatementId="public", Action="lambda:GetLayerVersion", Principal="*")
    return f"arn:aws:lambda:{REGION}:{POWERTOOLS_LAYER_ACCOUNT}:layer:{POWERTOOLS_LAYER_NAME}:{LAYER_VERSION}"


def aws_env(endpoint: str) -> dict[str, str]:
    """The environment every CLI (cdk, aws, agentbus) gets: this endpoint, throwaway credentials."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "CDK_"))}
    env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": ACCESS_KEY, "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION, "CDK_DISABLE_VERSION_CHECK": "1",
                "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
                "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "AWS_PAGER": ""})
    if CA_BUNDLE:
        env.update({"AWS_CA_BUNDLE": CA_BUNDLE, "NODE_EXTRA_CA_CERTS": CA_BUNDLE})
    return env


def run(args: list[str], env: dict[str, str], step: str, timeout_s: float = 600) -> str:
    done = subprocess.run(args, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
        raise RehearsalError(f"{step} failed ({done.returncode}):\n{tail}")
    return done.stdout


def cdk(endpoint: str, *args: str, outdir: Path, step: str) -> str:
    return run([str(CDK), *args, "--output", str(outdir), "--no-notices"], aws_env(endpoint), step)


@contextlib.contextmanager
def deployed_stack(endpoint: str, outdir: Path, context: dict[str, str]) -> Iterator[str]:
    """Bootstrap, deploy the real app, yield the stack name; destroy it afterwards whatever happened."""
    cdk(endpoint, "bootstrap", f"aws://{ACCOUNT}/{REGION}", outdir=outdir, step="cdk bootstrap")
    flags = [arg for name, value in context.items() for arg in ("-c", f"{name}={value}")]
    try:
        cdk(endpoint, "deploy", STACK_NAME, "--require-approval", "never", *flags, outdir=outdir,
            step="cdk deploy")
        yield STACK_NAME
    finally:
        cdk(endpoint, "destroy", STACK_NAME, "--force", *flags, outdir=outdir, step="cdk destroy")


if __name__ == "__main__":  # `python -m tests.rehearse.harness`: print the layer's size and contents
    data = layer_zip()
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    layer = ", ".join(layer_distributions(LAYER_ROOTS))
    print(f"{len(data) / 1e6:.1f} MB, {len(names)} files, {layer}", file=sys.stderr)
