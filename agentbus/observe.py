"""Watching the bus like any client would: a rule of our own, a queue, and a thread draining it."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from functions.common.dead_letters import UnreadableJson, read_json
from functions.common.spec import COORDINATOR_SOURCE, Manifest
from functions.manifest import MANIFEST


@dataclass
class ObservedEvent:
    detail_type: str
    source: str
    detail: dict[str, Any]
    received_at: float  # time.time() when the observer received it
    # The workflow it belongs to: named in results, outcomes and deadlines; the manifest's for a trigger.
    workflow: str | None = None
    workflow_id: str | None = None


def locate_event(manifest: Manifest, detail_type: str, source: str, detail: dict[str, Any]
                 ) -> tuple[str | None, str | None]:
    """(workflow name, workflow id) of an event on the bus, or (None, None) when it names none."""
    if isinstance(detail.get("workflow"), str) and detail.get("workflow_id") is not None:
        return detail["workflow"], str(detail["workflow_id"])
    triggers = [w for w in manifest.workflows if w.trigger.matches(source, detail_type)] or [
        w for w in manifest.workflows if detail_type in w.trigger.subscription.detail_types]  # no source given
    for workflow in triggers:
        value = detail.get(workflow.id_field)
        return workflow.name, (str(value) if value is not None else None)
    # An event that names its id but not (or not as text) its workflow: a cancel or an answer put without
    # ``workflow`` is dead-lettered for it, and its listing still names the id (black-box pass 9A, 5).
    named = detail.get("workflow_id")
    if named is not None and not isinstance(named, (dict, list)):
        name = detail.get("workflow")
        return (name if isinstance(name, str) else None), str(named)
    return None, None


def requests_of(manifest: Manifest, detail_type: str, source: str, detail: dict[str, Any]
                ) -> list[tuple[str, str]]:
    """Every (workflow name, workflow id) a trigger starts: one per workflow whose trigger it is (a standalone
    workflow may listen to a coordinated one's trigger); empty for an event that is no trigger, or names no id."""
    return [(w.name, str(detail[w.id_field])) for w in manifest.workflows
            if w.trigger.matches(source, detail_type) and detail.get(w.id_field) is not None]


@dataclass
class BusObserver:
    """Subscribes a queue to every agentbus event on the bus and keeps what arrives, per workflow."""

    events_client: Any
    sqs_client: Any
    bus_name: str
    manifest: Manifest = MANIFEST
    name: str = field(default_factory=lambda: f"observer-{uuid.uuid4().hex[:8]}")
    on_event: Callable[[ObservedEvent], None] | None = None

    def __post_init__(self) -> None:
        self.by_workflow: dict[str, list[ObservedEvent]] = defaultdict(list)
        # Every (workflow, id) an observed event started, with when it was seen: a trigger put by anyone, or an
        # outcome that is another workflow's trigger (requests nobody put directly).
        self.started: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._changed = threading.Condition(self._lock)

    @property
    def terminal_types(self) -> set[str]:
        return {t for w in self.manifest.workflows for t in w.terminal_detail_types.values()}

    def start(self) -> BusObserver:
        # Every source the manifest names: rules', consumers', and what people and operators send (external
        # agents' answers, cancels), which reach the coordinator through rules that name no source.
        sources = sorted({s for _, sub in self.manifest.rules() for s in sub.sources}
                         | {c.source for c in self.manifest.consumers} | {COORDINATOR_SOURCE}
                         | {a.source for w in self.manifest.coordinated for a in w.external}
                         | {s for w in self.manifest.coordinated if w.cancellable for s in w.cancel_sources})
        self.queue_url = self.sqs_client.create_queue(QueueName=self.name)["QueueUrl"]
        queue_arn = self.sqs_client.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.events_client.put_rule(Name=self.name, EventBusName=self.bus_name,
                                    EventPattern=json.dumps({"source": sources}))
        self.events_client.put_targets(Rule=self.name, EventBusName=self.bus_name,
                                       Targets=[{"Id": "observer", "Arn": queue_arn}])
        self._thread = threading.Thread(target=self._drain, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        try:
            self.events_client.remove_targets(Rule=self.name, EventBusName=self.bus_name, Ids=["observer"])
            self.events_client.delete_rule(Name=self.name, EventBusName=self.bus_name)
            self.sqs_client.delete_queue(QueueUrl=self.queue_url)
        except Exception:  # the endpoint may already be gone
            pass

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                messages = self.sqs_client.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
            except Exception:
                if self._stop.is_set():
                    return
                time.sleep(0.2)
                continue
            now = time.time()
            if not messages:
                continue
            observed: list[tuple[ObservedEvent, list[tuple[str, str]]]] = []
            for message in messages:
                try:
                    body = read_json(message["Body"])
                    detail = body.get("detail") if isinstance(body.get("detail"), dict) else {}
                    workflow, workflow_id = locate_event(self.manifest, body["detail-type"], body["source"], detail)
                    event = ObservedEvent(body["detail-type"], body["source"], detail, now, workflow, workflow_id)
                    observed.append((event, requests_of(self.manifest, event.detail_type, event.source, detail)))
                except (RecursionError, UnreadableJson):  # a hostile event Python does not read: nothing to show of it
                    continue
            self.sqs_client.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
            with self._changed:
                for event, started in observed:
                    for key in started:
                        self.started.setdefault(key, event.received_at)
                    if event.workflow_id:
                        self.by_workflow[event.workflow_id].append(event)
                        if event.workflow:
                            self.by_workflow[f"{event.workflow}/{event.workflow_id}"].append(event)
                self._changed.notify_all()
            if self.on_event:
                for event, _ in observed:
                    self.on_event(event)

    def started_requests(self) -> dict[tuple[str, str], float]:
        """Every (workflow, id) started by an event seen so far, with when it was seen."""
        with self._lock:
            return dict(self.started)

    def outcomes(self, workflow_id: str, workflow: str | None = None) -> list[ObservedEvent]:
        """Terminal events of one workflow id (of ``workflow`` only, when given: ids may repeat across them)."""
        key = f"{workflow}/{workflow_id}" if workflow else workflow_id
        with self._lock:
            return [e for e in self.by_workflow.get(key, []) if e.detail_type in self.terminal_types]

    def events(self, workflow_id: str, workflow: str | None = None) -> list[ObservedEvent]:
        key = f"{workflow}/{workflow_id}" if workflow else workflow_id
        with self._lock:
            return list(self.by_workflow.get(key, []))

    def wait_for_outcomes(self, workflow_ids: list[str], timeout_s: float) -> set[str]:
        """Wait until every workflow has a terminal event; returns the ids still without one. An id may be
        ``workflow/id`` to wait for that workflow's outcome only."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                pending = {w for w in workflow_ids
                           if not any(e.detail_type in self.terminal_types for e in self.by_workflow.get(w, []))}
                remaining = deadline - time.monotonic()
                if not pending or remaining <= 0:
                    return pending
                self._changed.wait(min(remaining, 0.5))
