"""The local runtime's pollers long-poll as Lambda's do (20 s), and stopping does not wait their polls out."""

from __future__ import annotations

import time

from agentbus.local.runtime import RuntimeOptions
from agentbus.local.stack import LocalStack
from functions.manifest import MANIFEST

IDLE_S = 2


def test_idle_pollers_wait_on_one_receive_each_and_stop_ends_their_polls_at_once():
    stack = LocalStack(manifest=MANIFEST, options=RuntimeOptions(deadline_seconds=60)).start()
    try:
        assert stack.started_runtime.options.poll_wait_s == 20
        pollers = len(MANIFEST.consumers)
        deadline = time.monotonic() + 30
        while stack.endpoint.wire_calls()["sqs:ReceiveMessage"] < pollers:  # every poller is in its first receive
            assert time.monotonic() < deadline, "the pollers did not start"
            time.sleep(0.1)
        before = stack.endpoint.wire_calls()
        time.sleep(IDLE_S)
        receives = (stack.endpoint.wire_calls() - before)["sqs:ReceiveMessage"]
        # With 1 s polls every queue would have been asked about IDLE_S times; a 20 s poll is still waiting.
        assert receives == 0, f"{receives} receives of empty queues in {IDLE_S} s"
        started = time.monotonic()
        stack.started_runtime.stop()
        stopped_in = time.monotonic() - started
        assert stopped_in < 10, f"stop waited {stopped_in:.1f} s: the pollers' 20 s receives were not ended"
        assert not [t.name for t in stack.started_runtime._threads if t.is_alive()]
    finally:
        stack.stop()
