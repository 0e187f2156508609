"""A test-only manifest: ``report`` and ``report-filed``, which ``report``'s outcome starts."""

from __future__ import annotations

from functions.common.spec import Manifest
from tests.workflows.followups.workflow import REPORT_FILED
from tests.workflows.reports.workflow import REPORT

IMPORT_PATH = "tests.workflows.followups.manifest:MANIFEST"

MANIFEST = Manifest(workflows=(REPORT, REPORT_FILED), import_path=IMPORT_PATH)
