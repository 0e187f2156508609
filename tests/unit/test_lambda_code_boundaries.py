"""The Lambda asset is `functions/` alone, with Powertools (and pydantic, boto3) from the runtime and layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
# What Lambda has: the standard library, the Python runtime's boto3/botocore, the Powertools layer
# (which bundles pydantic and the X-Ray SDK), and the asset itself.
AVAILABLE_ON_LAMBDA = {"functions", "boto3", "botocore", "aws_lambda_powertools", "pydantic", "pydantic_core"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", sorted(FUNCTIONS.rglob("*.py")), ids=lambda p: str(p.relative_to(FUNCTIONS)))
def test_lambda_code_imports_only_what_lambda_has(path):
    import sys

    foreign = {root for root in imported_roots(path)
               if root not in AVAILABLE_ON_LAMBDA and root not in sys.stdlib_module_names and root != "__future__"}
    assert foreign == set(), f"{path.name} imports {sorted(foreign)}, which is not in the Lambda asset or layer"
