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


LOGIC_MODULES = sorted(p for p in FUNCTIONS.glob("*/*/logic.py"))


@pytest.mark.parametrize("path", LOGIC_MODULES, ids=lambda p: str(p.relative_to(FUNCTIONS)))
def test_an_agents_logic_loads_no_aws_client_and_no_batch_consumer(path):
    """An agent's logic.py is plain Python (README, "Add an agent"): its vocabulary comes from
    functions/common/decisions.py, not from the runner, which imports boto3 and Powertools' batch consumer (code
    review 10D, finding 4)."""
    import subprocess
    import sys

    module = ".".join(path.relative_to(FUNCTIONS.parent).with_suffix("").parts)
    probe = (f"import sys, {module}; "
             "print(sorted(m for m in ('boto3', 'botocore', 'aws_lambda_powertools.utilities.batch') "
             "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          cwd=FUNCTIONS.parent, check=True)
    assert done.stdout.strip() == "[]", f"{module} loads {done.stdout.strip()}"
