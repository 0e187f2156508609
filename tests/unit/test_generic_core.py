"""Issue 11, point 3: the generic core names no workflow.

``functions/common``, ``functions/coordinator`` and ``agentbus`` (the CLI, the local runtime, the benchmark)
import nothing from any workflow's
package and contain none of the shipped workflows' names, agent names, sources, detail-types, id and trigger
fields, table names or parameters - code, comments and docstrings alike. The forbidden words are derived from
the shipped manifest, so a workflow added to it is covered without editing this test.

A few of those words are also ordinary vocabulary (a redrive *policy*, a package *directory*): those are
forbidden only as quoted names (``"policy"``, ``'directory'``, double-backquoted in a docstring).

Field names (the trigger model's fields, nested ones included, its id field, a table's partition key, a
parameter's variable and context name) are forbidden only when they are specific identifiers: compound names
such as ``order_id``, ``unit_price``, ``FRAUD_LIMIT`` or ``unitPrice``. A field named with one plain word
(``amount``, ``status``, ``name``, ``data``, ``items``, ``email``) names no workflow: a user adding a
workflow by the README may call a field that, and the core has its own ``status``, ``name``, ``data`` and
``add(self, key, amount)``; forbidding it would fail the user's tests on the core, not on their workflow.

The same holds for a name that is one plain word the core's own code already uses (an identifier or a string
constant): an agent or table a user calls ``status``, ``data`` or ``result`` names the core's vocabulary, not a
workflow, so it is not checked; ``fraud`` or ``inventory``, which the core never uses, still are.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from functions.common.spec import COORDINATOR_SOURCE, DEADLINE_SOURCE, OPERATOR_SOURCE, Manifest
from tests.pinned import MANIFEST  # the shipped workflows: a user's own words are theirs

REPO_ROOT = Path(__file__).resolve().parents[2]
CORE = ("functions/common", "functions/coordinator", "agentbus")
# Python, AWS or English vocabulary that happens to name a table, agent, package or compound field of a
# shipped workflow.
ORDINARY_WORDS = {"policy", "directory", "identity", "access", "created_at"}
# The composition of the shipped workflows: the local runtime's default manifest, never imported by the
# Lambda core (functions find their manifest by import path, AGENTBUS_MANIFEST).
SHIPPED_MANIFEST_MODULE = "functions.manifest"


def workflow_modules(manifest: Manifest) -> dict[str, tuple[list[str], list[str]]]:
    """Per workflow: (its own modules: trigger model, handlers, projection, invariants; modules it may borrow
    from another folder: seeders of its tables, parameter checks)."""
    found = {}
    for workflow in manifest.workflows:
        own = [workflow.trigger.model, *(a.handler.rpartition(".")[0] for a in workflow.agents)]
        own += [path for path in (workflow.projection and workflow.projection.function, workflow.invariants) if path]
        tables = {t for a in workflow.agents for t in a.tables} | ({workflow.projection.table} if workflow.projection
                                                                   else set())
        borrowed = [manifest.table(t).seeder for t in sorted(tables) if manifest.table(t).seeder]
        borrowed += [p.check for a in workflow.agents for p in a.parameters if p.check]
        found[workflow.name] = ([m.partition(":")[0] for m in own], [m.partition(":")[0] for m in borrowed])
    return found


def workflow_packages(manifest: Manifest) -> set[str]:
    """Each workflow's folder as a package: the longest common package of the modules it owns."""
    packages = set()
    for own, _ in workflow_modules(manifest).values():
        common: list[str] = []
        for column in zip(*(m.split(".") for m in own), strict=False):
            if len(set(column)) != 1:
                break
            common.append(column[0])
        packages.add(".".join(common))
    return packages


def is_specific(field: str) -> bool:
    """A field name that identifies a workflow's data rather than saying something ordinary: a compound
    identifier (``order_id``, ``FRAUD_LIMIT``, ``unitPrice``, ``line2``). One plain word is not."""
    return bool(re.search(r"[_\-\d]|[a-z][A-Z]", field))


def model_field_names(model: type[BaseModel]) -> set[str]:
    """The model's fields and those of the models nested in it (``items[].unit_price``), by name and alias."""
    schema = model.model_json_schema()
    return set(model.model_fields) | {name for part in (schema, *schema.get("$defs", {}).values())
                                      for name in part.get("properties", {})}


def forbidden_words(manifest: Manifest) -> set[str]:
    words: set[str] = set()
    fields: set[str] = set()
    for workflow in manifest.workflows:
        words |= {workflow.name, *workflow.trigger.subscription.sources,
                  *workflow.trigger.subscription.detail_types, *workflow.terminal_detail_types.values()}
        fields |= {workflow.id_field} | model_field_names(workflow.trigger.model_class)
        for agent in workflow.agents:
            words |= {agent.name, agent.source, *(r.detail_type for r in agent.results)}
            fields |= {p.env for p in agent.parameters} | {p.context for p in agent.parameters if p.context}
    for table in manifest.tables:
        words.add(table.logical_name)
        fields.add(table.partition_key)
    words |= {package.rpartition(".")[2] for package in workflow_packages(manifest)}
    # agentbus's own sources are the core's to name, even as a workflow's trigger (one started by an outcome).
    return (words | {field for field in fields if is_specific(field)}) - {COORDINATOR_SOURCE, DEADLINE_SOURCE,
                                                                          OPERATOR_SOURCE}


def core_vocabulary(files: list[Path]) -> set[str]:
    """The one-word names the core's code uses itself, lower-cased: identifiers, attributes, functions,
    arguments and keywords, and string constants that are one word."""
    vocabulary: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Name):
                vocabulary.add(node.id)
            elif isinstance(node, ast.Attribute):
                vocabulary.add(node.attr)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                vocabulary.add(node.name)
            elif isinstance(node, ast.arg) or isinstance(node, ast.keyword) and node.arg:
                vocabulary.add(node.arg)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                vocabulary.add(node.value)
    return {word.lower() for word in vocabulary if word.isalpha()}


def checked_words(words: set[str], vocabulary: set[str]) -> set[str]:
    """The derived words less the plain ones the core uses as its own vocabulary (see the module's doc)."""
    return {word for word in words if not (word.isalpha() and word.lower() in vocabulary) or word in ORDINARY_WORDS}


PACKAGES = workflow_packages(MANIFEST)
FILES = sorted(p for folder in CORE for p in (REPO_ROOT / folder).rglob("*.py"))
CORE_VOCABULARY = core_vocabulary(FILES)
WORDS = checked_words(forbidden_words(MANIFEST), CORE_VOCABULARY)


def test_the_derivation_finds_every_shipped_workflow_package_and_its_vocabulary() -> None:
    # A check that the test checks something: the shipped workflows' folders and a few of their words.
    assert {"functions.orders", "functions.access", "functions.directory"} <= PACKAGES
    assert {"order_id", "Order Placed", "fraud", "access-requests", "request_id", "Access Denied", "user_id",
            "security-audit", "FRAUD_LIMIT", "agentbus.orders", "employee_id", "unit_price", "postal_code",
            "shipping_address", "fraud_limit", "inventory", "orders"} <= WORDS
    # One plain word naming a field is no workflow's name; a compound one is, whatever the manifest.
    assert not {"items", "currency", "email", "groups", "pk", "quantity"} & WORDS
    assert [f for f in ("order_id", "unit_price", "FRAUD_LIMIT", "unitPrice", "line2", "invoice-no")
            if not is_specific(f)] == []
    assert [f for f in ("amount", "status", "name", "data", "items", "note", "email", "pk", "Currency")
            if is_specific(f)] == []
    assert FILES and all(f.suffix == ".py" for f in FILES)
    assert ORDINARY_WORDS <= WORDS, f"no longer derived, drop them: {sorted(ORDINARY_WORDS - WORDS)}"
    # The shipped workflows' names are no word of the core's own: none is let off as its vocabulary.
    assert forbidden_words(MANIFEST) == WORDS
    # Each workflow has a folder of its own, and whatever it borrows lives in some workflow's folder.
    assert all(package.count(".") >= 1 for package in PACKAGES), PACKAGES
    borrowed = {m for _, modules in workflow_modules(MANIFEST).values() for m in modules}
    assert all(any(m.startswith(p + ".") for p in PACKAGES) for m in borrowed), borrowed


def imported_modules(tree: ast.AST) -> set[str]:
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            modules |= {f"{node.module}.{alias.name}" for alias in node.names}
    return modules


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_core_imports_no_workflow_package(path: Path) -> None:
    modules = imported_modules(ast.parse(path.read_text()))
    offenders = sorted(m for m in modules for package in PACKAGES if m == package or m.startswith(package + "."))
    assert offenders == [], f"{path.relative_to(REPO_ROOT)} imports a workflow's code: {offenders}"
    if not str(path.relative_to(REPO_ROOT)).startswith("agentbus/"):  # the CLI's default is the shipped manifest
        shipped = sorted(m for m in modules
                         if m == SHIPPED_MANIFEST_MODULE or m.startswith(SHIPPED_MANIFEST_MODULE + "."))
        assert shipped == [], f"{path.name}: the Lambda core loads its manifest by import path, never {shipped}"


def _pattern(word: str) -> re.Pattern[str]:
    if word in ORDINARY_WORDS:
        return re.compile(r"""(?:["'`])""" + re.escape(word) + r"""(?:["'`])""")
    return re.compile(r"(?<![\w-])" + re.escape(word) + r"(?!\w)", re.IGNORECASE)


PATTERNS = {word: _pattern(word) for word in sorted(WORDS)}


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_core_names_no_workflow(path: Path) -> None:
    found = [f"line {number}: {word!r} in {line.strip()[:100]!r}"
             for number, line in enumerate(path.read_text().splitlines(), start=1)
             for word, pattern in PATTERNS.items() if pattern.search(line)]
    assert found == [], f"{path.relative_to(REPO_ROOT)} names a workflow:\n" + "\n".join(found)


def test_the_word_check_catches_a_workflow_name_in_prose_and_ordinary_words_only_when_quoted() -> None:
    def hits(line: str) -> set[str]:
        return {word for word, pattern in PATTERNS.items() if pattern.search(line)}

    assert hits("# e.g. the ORDER_ID of an Order Placed event") == {"order_id", "Order Placed"}
    assert hits('price = line["unit_price"]  # order-fulfillment') == {"unit_price", "order-fulfillment"}
    assert hits('source = "agentbus.agent.fraud"') >= {"agentbus.agent.fraud"}
    assert hits("def add(self, key: str, amount: int = 1) -> None:  # items, status, data") == set()
    assert hits('agent = "policy"') == {"policy"}
    assert hits("# the queue's redrive policy; dict.items(); a package directory") == set()
    assert hits("functions.orders.fraud.handler") >= {"fraud"}


def test_a_workflow_named_with_a_word_of_the_cores_own_vocabulary_is_not_held_against_the_core() -> None:
    # A user's agent called "status" or "result", or a table called "data": the core says those words itself.
    assert {"status", "result", "data"} <= CORE_VOCABULARY
    derived = {"status", "Result", "data", "fraud", "order_id", "Order Placed", "policy"}
    assert checked_words(derived, CORE_VOCABULARY) == {"fraud", "order_id", "Order Placed", "policy"}
