"""A test-only manifest holding only the ``report`` workflow (tests/integration/test_claim_check.py)."""

from __future__ import annotations

from functions.common.spec import Manifest
from tests.workflows.reports.workflow import REPORT

IMPORT_PATH = "tests.workflows.reports.manifest:MANIFEST"

MANIFEST = Manifest(workflows=(REPORT,), import_path=IMPORT_PATH)
