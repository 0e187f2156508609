"""Manifests at AWS's limits (black-box pass 9B): the shipped workflows with the test-only ``expense-claim`` grown
past what one rule pattern, one environment or one stack holds. Shared by the unit and infrastructure tests."""

from __future__ import annotations

from dataclasses import replace

from functions.common.spec import AGENT_SOURCE_PREFIX, Manifest, Outcome, ResultType, Table, Workflow
from tests.pinned import MANIFEST as PINNED
from tests.workflows.expenses.workflow import EXPENSE_CLAIM
from tests.workflows.expenses.workflow import TABLES as EXPENSE_TABLES


def with_expenses(expenses: Workflow = EXPENSE_CLAIM, tables: tuple[Table, ...] = EXPENSE_TABLES) -> Manifest:
    return replace(PINNED, workflows=(*PINNED.workflows, expenses), tables=(*PINNED.tables, *tables))


def expenses_agent(name: str, **changes: object) -> Workflow:
    """``expense-claim`` with its agent ``name`` changed."""
    return replace(EXPENSE_CLAIM, agents=tuple(replace(a, **changes) if a.name == name else a
                                               for a in EXPENSE_CLAIM.agents))


def many_agents(count: int, name_length: int = 20, results: int = 3, detail_type_length: int = 30) -> Workflow:
    """The reviewer's workload: ``expense-claim`` with ``count`` agents of ``name_length`` characters, each with
    ``results`` result types of ``detail_type_length`` characters (``compliance-screening`` / ``Compliance
    Screening Escalated``)."""
    [template] = [a for a in EXPENSE_CLAIM.agents if a.name == "receipts"]
    agents = []
    for number in range(count):
        name = f"a{number:02d}-".ljust(name_length, "x")
        agents.append(replace(template, name=name, source=f"{AGENT_SOURCE_PREFIX}{name}", results=tuple(
            ResultType(f"R{number:02d}{kind} ".ljust(detail_type_length, "y"),
                       Outcome.SUCCESS if kind == 0 else Outcome.FAILURE)
            for kind in range(results))))
    return replace(EXPENSE_CLAIM, agents=tuple(agents))
