"""Every third-party module the package imports comes from a distribution its own dependencies install.

``agentbus bench`` imported numpy, which only matplotlib (a development dependency) brought: an agentbus installed
with its declared dependencies failed with a traceback. The walk is over the installed distributions' requirements
(``importlib.metadata``), so a module installed only by the development or CDK groups is caught.
"""

from __future__ import annotations

import ast
import importlib.metadata
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[2]
PACKAGES = ("agentbus", "functions")
# Imported only where it is asked for, behind a check that names it (agentbus bench --chart *.png).
OPTIONAL = {"matplotlib"}


def _requirement_names(distribution: str) -> set[str]:
    """The distribution's name and those of everything it installs here (its requirements, with the extras asked
    for, whose markers hold on this machine), canonical."""
    seen: set[str] = set()
    pending = [(distribution, frozenset[str]())]
    while pending:
        name, extras = pending.pop()
        key = canonicalize_name(name)
        if key in seen:
            continue
        seen.add(key)
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker and not any(requirement.marker.evaluate({"extra": extra})
                                              for extra in (extras or {""})):
                continue
            try:
                importlib.metadata.distribution(requirement.name)
            except importlib.metadata.PackageNotFoundError:
                continue  # not installed here (another platform's, or an extra nobody asked for)
            pending.append((requirement.name, frozenset(requirement.extras)))
    return seen


def _imported_top_level_modules() -> dict[str, str]:
    """Each absolute import's top-level module in the packages' code, with one file importing it."""
    found: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_installed_by_the_declared_dependencies():
    declared = _requirement_names("agentbus")
    providers = importlib.metadata.packages_distributions()
    ours = set(PACKAGES) | {"infrastructure", "tests"}
    undeclared = []
    for module, where in sorted(_imported_top_level_modules().items()):
        if module in ours or module in sys.stdlib_module_names or module in OPTIONAL:
            continue
        distributions = {canonicalize_name(d) for d in providers.get(module, [])}
        assert distributions, f"{where} imports {module}, which no installed distribution provides"
        if not distributions & declared:
            undeclared.append(f"{module} ({', '.join(sorted(distributions))}), imported by {where}")
    assert not undeclared, "imported but not installed by agentbus's dependencies: " + "; ".join(undeclared)


def test_the_walk_sees_what_only_the_development_groups_install():
    declared = _requirement_names("agentbus")
    assert {"boto3", "botocore", "pydantic", "rich", "numpy"} <= declared
    assert not {"matplotlib", "mypy", "aws-cdk-lib", "pytest"} & declared
