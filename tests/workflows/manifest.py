"""A manifest that is never shipped: the shipped workflows plus ``expense-claim`` (``tests/workflows/expenses``)
and ``change-review`` (``tests/workflows/reviews``: a k-of-n quorum).

Functions built from it find it again through ``AGENTBUS_MANIFEST`` (``import_path`` below).
"""

from __future__ import annotations

from functions.common.spec import Manifest
from tests.pinned import MANIFEST as SHIPPED  # the shipped workflows as the tests know them, none a user added
from tests.workflows.expenses.workflow import EXPENSE_CLAIM
from tests.workflows.expenses.workflow import TABLES as EXPENSE_TABLES
from tests.workflows.reviews.workflow import CHANGE_REVIEW

IMPORT_PATH = "tests.workflows.manifest:MANIFEST"

MANIFEST = Manifest(
    workflows=(*SHIPPED.workflows, EXPENSE_CLAIM, CHANGE_REVIEW),
    tables=(*SHIPPED.tables, *EXPENSE_TABLES),
    import_path=IMPORT_PATH,
)
