"""The synth's check that the manifest's code loads on Lambda, not only in the developer's venv.

``Manifest.import_problems`` imports in the CDK app's own interpreter, whose venv holds moto, requests, rich...:
an agent importing one of them passed the synth and failed every cold start on AWS (black-box pass 9B, F11).
Lambda has only the standard library, the asset (``functions/``, ``bundling.functions_code``), the Powertools
layer and the runtime's boto3. So every handler, trigger model and projection is imported again in ONE
subprocess (``python -I -S``: no site-packages, no PYTHONPATH, no current directory) whose ``sys.path`` is a
temporary directory of symlinks to exactly those: ``functions/`` and the installed distributions of
``LAYER_ROOTS`` with their dependencies.

The check runs on the developer's Python (3.11 here), Lambda on ``LAMBDA_PYTHON``: the standard-library modules
removed between the two (``REMOVED_FROM_STDLIB``) are refused in the subprocess as Lambda's runtime would refuse
them, so an agent importing ``cgi`` or ``imp`` fails the synth too.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from functions.common.spec import Manifest

from .bundling import FUNCTIONS_DIR, PACKAGE_NAME

# What the public Powertools layer carries (Powertools with its tracer and parser extras: pydantic, the X-Ray SDK),
# plus boto3, which the Lambda Python runtime ships. The rehearsal's stand-in layer is built from the same roots.
LAYER_ROOTS: tuple[tuple[str, frozenset[str]], ...] = (
    ("aws-lambda-powertools", frozenset({"tracer", "parser"})),
    ("boto3", frozenset()),
)
LAMBDA_PYTHON = (3, 13)  # infrastructure/consumer.py: lambda_.Runtime.PYTHON_3_13
# The standard library's modules removed by Python 3.12 (PEP 632, PEP 594's first ones) and 3.13 (PEP 594, lib2to3),
# by the version that removed them: importable on an older developer Python, not on Lambda's.
REMOVED_FROM_STDLIB: dict[tuple[int, int], frozenset[str]] = {
    (3, 12): frozenset({"asynchat", "asyncore", "distutils", "imp", "smtpd"}),
    (3, 13): frozenset({"aifc", "audioop", "cgi", "cgitb", "chunk", "crypt", "imghdr", "lib2to3", "mailcap",
                        "msilib", "nis", "nntplib", "ossaudiodev", "pipes", "sndhdr", "spwd", "sunau", "telnetlib",
                        "uu", "xdrlib"}),
}
WHAT_LAMBDA_HAS = "the standard library, functions/, boto3 and the Powertools layer (with pydantic, the X-Ray SDK)"
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[([^\]]*)\])?")
_EXTRA = re.compile(r"""extra\s*==\s*['"]([^'"]+)['"]""")


def _wanted(line: str, extras: frozenset[str]) -> tuple[str, frozenset[str]] | None:
    """A requirement line of a distribution's metadata -> (name, its extras) when installed for ``extras``."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # without packaging: an extra marker decides, any other marker is taken as true
        match = _NAME.match(line)
        if not match:
            return None
        marker = line.partition(";")[2]
        named = set(_EXTRA.findall(marker))
        if named and not named & extras:
            return None
        return match.group(1), frozenset(e.strip() for e in (match.group(3) or "").split(",") if e.strip())
    requirement = Requirement(line)
    if requirement.marker and not any(requirement.marker.evaluate({"extra": extra}) for extra in (extras or {""})):
        return None
    return requirement.name, frozenset(requirement.extras)


def layer_distributions(roots: Iterable[tuple[str, frozenset[str]]] = LAYER_ROOTS) -> list[str]:
    """Every installed distribution the roots need (with their extras), markers evaluated here."""
    seen: dict[str, None] = {}
    todo = list(roots)
    while todo:
        name, extras = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen and not extras:
            continue
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # an optional dependency not installed here: not importable in the check either
        seen[key] = None
        for line in requires:
            wanted = _wanted(line, extras)
            if wanted:
                todo.append(wanted)
    return sorted(seen)


def _top_levels(name: str) -> set[Path]:
    """The distribution's importable top-level entries (packages, modules, extension files) in site-packages."""
    distribution = metadata.distribution(name)
    entries: set[Path] = set()
    for file in distribution.files or []:
        first = file.parts[0]
        if first in ("..", "__pycache__") or first.endswith((".dist-info", ".egg-info", ".pth", ".data")):
            continue
        entries.add(Path(str(distribution.locate_file(first))))
    return entries


def removed_on_lambda(here: tuple[int, int] | None = None) -> list[str]:
    """The standard-library modules this Python (``here``: ``sys.version_info``) has and Lambda's does not."""
    here = here or (sys.version_info.major, sys.version_info.minor)
    return sorted(name for removed_in, names in REMOVED_FROM_STDLIB.items()
                  if here < removed_in <= LAMBDA_PYTHON for name in names)


# Run with -I -S: refuses the modules Lambda's Python lacks, imports each (label, kind, path), prints {label: problem}.
_SCRIPT = r"""
import importlib, json, sys
root, checks, removed, runtime = sys.argv[1], json.loads(sys.argv[2]), frozenset(json.loads(sys.argv[3])), sys.argv[4]


class RemovedOnLambda:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in removed:
            raise ModuleNotFoundError(f"No module named {name!r} (not in Python {runtime}'s standard library)",
                                      name=name)
        return None


sys.meta_path.insert(0, RemovedOnLambda)
sys.path.insert(0, root)
problems = {}
for label, kind, path in checks:
    if kind == "handler":
        module_name, _, attribute = path.rpartition(".")
    else:
        module_name, _, attribute = path.partition(":")
    try:
        value = importlib.import_module(module_name)
    except Exception as error:
        problems[label] = f"{path!r} cannot be imported on Lambda ({type(error).__name__}: {error})"
        continue
    try:
        for part in attribute.split("."):
            value = getattr(value, part)
    except AttributeError:
        problems[label] = f"{path!r}: {module_name} has no attribute {attribute!r} on Lambda"
print(json.dumps(problems))
"""


def lambda_import_problems(manifest: Manifest, functions_dir: Path | None = None) -> list[str]:
    """What of the code Lambda loads (each function's handler, every trigger model and projection) does not import
    with only what Lambda has: one line each, naming the function or workflow and the module. ``functions_dir``:
    the asset's source, ``FUNCTIONS_DIR`` by default."""
    functions_dir = functions_dir or FUNCTIONS_DIR
    checks = [(f"function {c.name}: its handler", "handler", c.handler) for c in manifest.consumers]
    checks += [(f"workflow {w.name}: trigger model", "path", w.trigger.model) for w in manifest.workflows]
    checks += [(f"workflow {w.name}: projection", "path", w.projection.function)
               for w in manifest.workflows if w.projection]
    with tempfile.TemporaryDirectory(prefix="agentbus-lambda-path-") as root:
        os.symlink(functions_dir, Path(root) / PACKAGE_NAME, target_is_directory=True)
        for name in layer_distributions():
            for entry in _top_levels(name):
                link = Path(root) / entry.name
                if entry.exists() and not link.exists():
                    os.symlink(entry, link, target_is_directory=entry.is_dir())
        runtime = ".".join(map(str, LAMBDA_PYTHON))
        done = subprocess.run([sys.executable, "-I", "-S", "-c", _SCRIPT, root, json.dumps(checks),
                               json.dumps(removed_on_lambda()), runtime],
                              capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        return [f"the Lambda import check itself failed (exit {done.returncode}): {done.stderr.strip()[-500:]}"]
    problems: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return [f"{label} {problem}, which has only {WHAT_LAMBDA_HAS}" for label, problem in problems.items()]
