"""Taking an agent offline and back.

On AWS an agent is paused by disabling its Lambda event source mapping: its queue keeps every event
(14 days) until the mapping is enabled again. Disabling is asynchronous (the mapping goes through
``Disabling``, and may still hand out a batch meanwhile): ``set_paused`` returns only once every mapping
reports ``Disabled`` (resp. ``Enabled``), or fails with a clear message after ``settle_timeout_s``.

Locally moto must never hold an enabled mapping (it would try to run the function itself and swallow the
message), so the local poller reads the agent's state from a tag on its queue, which the same CLI verb
sets. The tag holds at once: the poller asks for it after every receive and gives back what came while
paused (``agentbus/local/runtime.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agentbus.resources import ConsumerResources, Resources

PAUSED_TAG = "agentbus:paused"


class ControlError(RuntimeError):
    pass


def unknown_agent(name: str, known: list[str]) -> str:
    """Why ``name`` has no queue here: an external agent (a person) of a workflow, or a name no agent has."""
    from functions.manifest import MANIFEST

    for workflow in MANIFEST.workflows:
        for external in workflow.external:
            if external.name == name:
                return (f"{name!r} is an external agent of {workflow.name} ({external.kind}): it has no function or "
                        "queue to pause, list or redrive; answer for it with `agentbus approve` or `agentbus "
                        "decline`")
    return f"unknown agent {name!r}; known: {', '.join(known)}"


@dataclass
class AgentControl:
    resources: Resources
    sqs: Any
    lambda_client: Any = None
    # How long to wait for a mapping to settle in its new state, and how often to look.
    settle_timeout_s: float = 60.0
    settle_poll_s: float = 1.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def _consumer(self, name: str) -> ConsumerResources:
        try:
            return self.resources.consumers[name]
        except KeyError:
            raise ControlError(unknown_agent(name, sorted(self.resources.consumers))) from None

    def _mappings(self, name: str) -> list[dict[str, Any]]:
        consumer = self._consumer(name)
        mappings: list[dict[str, Any]] = self.lambda_client.list_event_source_mappings(
            FunctionName=consumer.function_name, EventSourceArn=consumer.queue_arn
        )["EventSourceMappings"]
        if not mappings:
            raise ControlError(f"agent {name!r} has no event source mapping on {consumer.queue_arn}")
        return mappings

    def set_paused(self, name: str, paused: bool) -> None:
        consumer = self._consumer(name)
        if self.resources.local:
            if paused:
                self.sqs.tag_queue(QueueUrl=consumer.queue_url, Tags={PAUSED_TAG: "true"})
            else:
                self.sqs.untag_queue(QueueUrl=consumer.queue_url, TagKeys=[PAUSED_TAG])
            return
        mappings = self._mappings(name)
        for mapping in mappings:
            self.lambda_client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=not paused)
        self._wait_until(name, [m["UUID"] for m in mappings], "Disabled" if paused else "Enabled")

    def _wait_until(self, name: str, uuids: list[str], wanted: str) -> None:
        deadline = self.clock() + self.settle_timeout_s
        pending = dict.fromkeys(uuids, "?")
        while True:
            for uuid in list(pending):
                state = self.lambda_client.get_event_source_mapping(UUID=uuid)["State"]
                if state == wanted:
                    del pending[uuid]
                else:
                    pending[uuid] = state
            if not pending:
                return
            if self.clock() >= deadline:
                states = ", ".join(f"{uuid} is {state}" for uuid, state in pending.items())
                doing = "may still process its events" if wanted == "Disabled" else "is not processing its events yet"
                raise ControlError(f"agent {name!r}: its event source mapping did not become {wanted} within "
                                   f"{self.settle_timeout_s:g} s ({states}); it {doing}: "
                                   "check `agentbus agent list` and run the command again")
            self.sleep(self.settle_poll_s)

    def is_paused(self, name: str) -> bool:
        consumer = self._consumer(name)
        if self.resources.local:
            tags: dict[str, str] = self.sqs.list_queue_tags(QueueUrl=consumer.queue_url).get("Tags", {})
            return tags.get(PAUSED_TAG) == "true"
        return all(m["State"] in ("Disabled", "Disabling") for m in self._mappings(name))

    def queue_depth(self, name: str) -> dict[str, int]:
        consumer = self._consumer(name)
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        queue = self.sqs.get_queue_attributes(QueueUrl=consumer.queue_url, AttributeNames=names)["Attributes"]
        dlq = self.sqs.get_queue_attributes(QueueUrl=consumer.dlq_url, AttributeNames=names[:1])["Attributes"]
        return {
            "waiting": int(queue.get("ApproximateNumberOfMessages", 0)),
            "in_flight": int(queue.get("ApproximateNumberOfMessagesNotVisible", 0)),
            "dead_letters": int(dlq.get("ApproximateNumberOfMessages", 0)),
        }
