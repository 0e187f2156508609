from __future__ import annotations

import pytest

from agentbus.control import AgentControl
from agentbus.local.runtime import RuntimeOptions
from agentbus.local.stack import LocalStack
from agentbus.observe import BusObserver


@pytest.fixture
def local_stack(request):
    """The whole topology on a local endpoint (moto's server on a free port) with the runtime running.

    Parametrize indirectly with RuntimeOptions to change the deadline, simulated work or chaos.
    """
    options = getattr(request, "param", None) or RuntimeOptions(deadline_seconds=60)
    with LocalStack(options=options) as stack:
        observer = BusObserver(stack.client("events"), stack.client("sqs"), stack.resources.bus_name).start()
        stack.observer_ = observer
        stack.control = AgentControl(stack.resources, stack.client("sqs"))
        try:
            yield stack
        finally:
            observer.stop()
