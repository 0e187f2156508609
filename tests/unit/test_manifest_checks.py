"""The manifest's own checks (``Manifest.check``, run when a manifest is built): one error naming every problem."""

from __future__ import annotations

from dataclasses import replace

import pytest

from functions.manifest import MANIFEST
from tests.pinned import MANIFEST as PINNED  # the shipped workflows with the agents named below


def test_names_used_twice_are_named_in_one_error():
    orders = PINNED.workflow("order-fulfillment")
    with pytest.raises(ValueError, match=r"^invalid manifest: ") as refused:
        replace(PINNED, workflows=(*PINNED.workflows, replace(orders, name="orders-again")))
    assert "agent names must be unique: fraud, inventory, shipping each appear more than once" in str(refused.value)
    with pytest.raises(ValueError) as refused:
        replace(PINNED, workflows=(*PINNED.workflows, replace(orders, agents=orders.agents[:1])))
    message = str(refused.value)
    assert "workflow names must be unique: order-fulfillment appears more than once" in message
    assert "agent names must be unique: fraud appears more than once" in message


def test_the_shipped_manifest_passes_its_checks():
    assert replace(MANIFEST) == MANIFEST


def test_a_projection_table_is_retained_unless_the_manifest_says_otherwise():
    # Black-box pass 9B, F8: a workflow's main table (its projection's) was deleted by `make destroy`, and replaced
    # empty on a rename, unless its author knew of `retain=True`.
    from tests.workflows.manifest import MANIFEST as ADDED

    claims, budgets = ADDED.table("expense-claims"), ADDED.table("expense-budgets")
    assert claims.retain is None and ADDED.retains(claims), "the expense workflow's projection table"
    assert budgets.retain is None and not ADDED.retains(budgets), "not a projection table"
    assert not ADDED.retains(ADDED.table("workflows")), "the coordinator's own table"
    assert not ADDED.retains(replace(claims, retain=False))
    assert ADDED.retains(replace(budgets, retain=True))
    # The shipped workflows' (a user's own may say retain=False, as the README offers).
    assert all(PINNED.retains(PINNED.table(w.projection.table)) for w in PINNED.workflows if w.projection)
