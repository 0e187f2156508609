"""The bench package: what it exports for the CLI and the tests, and that it names no workflow."""

from __future__ import annotations

import re
from pathlib import Path

import agentbus.bench as bench
from functions.manifest import MANIFEST

PACKAGE = Path(bench.__file__).parent


def test_the_package_exports_what_the_cli_and_the_harness_tests_use():
    for name in ("run_bench", "run_soak", "Harness", "parse_time", "LevelRun", "CallSnapshot", "build_results"):
        assert name in bench.__all__ and getattr(bench, name)
    assert sorted(bench.__all__) == sorted(set(bench.__all__))
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == {"accounting", "chart", "costs", "harness", "people", "reporting", "run", "soak", "sweep",
                       "synthetic", "workload"}
    for module in modules:  # each module has its own tests
        assert (Path(__file__).parent / f"test_{module}.py").exists(), module


def test_no_module_of_the_package_names_a_shipped_workflow_agent_or_table():
    names = ({w.name for w in MANIFEST.workflows} | {a.name for a in MANIFEST.agents}
             | {t.logical_name for t in MANIFEST.tables})
    pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, sorted(names))) + r")(?![\w-])", re.IGNORECASE)
    found = [f"{path.name}:{number}: {line.strip()}" for path in sorted(PACKAGE.glob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert found == []
