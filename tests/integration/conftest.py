from __future__ import annotations

import pytest

from tests.conftest import observed_stack


@pytest.fixture
def local_stack(request):
    """The whole topology on a local endpoint (moto's server on a free port) with the runtime running.

    Parametrize indirectly with RuntimeOptions to change the deadline, simulated work or chaos.
    """
    with observed_stack(options=getattr(request, "param", None)) as stack:
        yield stack
