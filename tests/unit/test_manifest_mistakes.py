"""Manifest mistakes a user makes adding a workflow, refused by ``Manifest.check`` naming what clashes
(review bb4c): each passed every check before and broke requests at run time."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.pinned import MANIFEST as PINNED
from tests.workflows.expenses.workflow import EXPENSE_CLAIM
from tests.workflows.expenses.workflow import TABLES as EXPENSE_TABLES


def with_expenses(expenses=EXPENSE_CLAIM, manifest=PINNED):
    return replace(manifest, workflows=(*manifest.workflows, expenses), tables=(*manifest.tables, *EXPENSE_TABLES))


def test_the_expense_workflow_added_as_it_is_passes():
    assert with_expenses().workflow("expense-claim") == EXPENSE_CLAIM


# -- F8: two workflows publishing the same outcome detail-type -------------------------------------------

def test_two_workflows_sharing_an_outcome_detail_type_are_refused_naming_both():
    # invoice-approval's "Order Rejected" ran order-fulfillment's compensation (a completed order lost its
    # reservation), and a follow-on workflow triggered by that outcome would start for both.
    shared = replace(EXPENSE_CLAIM, outcomes=replace(EXPENSE_CLAIM.outcomes, rejected="Order Rejected"))
    with pytest.raises(ValueError, match=r"^invalid manifest: ") as refused:
        with_expenses(shared)
    assert ("workflows 'order-fulfillment' and 'expense-claim' both publish the outcome 'Order Rejected'"
            in str(refused.value))
