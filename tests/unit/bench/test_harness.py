"""The harness's topologies (no stack started here: see tests/integration/test_bench_harness.py)."""

from __future__ import annotations

import json

from agentbus.bench import ChainedOrchestrator, bench_manifest
from agentbus.bench.synthetic import ANSWERED, REQUESTED, SOURCE, synthetic_manifest
from agentbus.observe import ObservedEvent
from functions.manifest import MANIFEST


def test_chained_manifest_leaves_every_coordinated_trigger_to_the_coordinator_only():
    chained = bench_manifest(MANIFEST, chained=True)
    assert bench_manifest(MANIFEST, chained=False) is MANIFEST
    # Every coordinated workflow of the manifest (the shipped samples and any a user adds), none other.
    assert [w.name for w in chained.coordinated] == [w.name for w in MANIFEST.coordinated]
    triggers = {d for w in MANIFEST.coordinated for d in w.trigger.subscription.detail_types}
    assert {"Order Placed", "Access Requested"} <= triggers  # the shipped samples
    for workflow in chained.coordinated:
        assert set(workflow.trigger.subscription.detail_types) <= triggers, workflow.name  # kept as declared
        for agent in workflow.agents:
            assert agent.subscriptions == ()  # () is "none"; None would mean "derived: the trigger"
            subscribed = {d for s in chained.subscriptions(agent) for d in s.detail_types}
            assert not subscribed & triggers, agent.name
    inventory = chained.consumer("inventory")
    assert {s.name for s in chained.subscriptions(inventory)} == {"compensation"}  # compensation is kept
    coordinator_types = {d for s in chained.subscriptions(chained.coordinator) for d in s.detail_types}
    assert triggers <= coordinator_types
    # A standalone subscriber has no one to chain it: it keeps its subscription.
    audit = chained.consumer("security-audit")
    assert {d for s in chained.subscriptions(audit) for d in s.detail_types} == {"User Created"}
    assert [a.name for a in chained.agents] == [a.name for a in MANIFEST.agents]


class RecordingSqs:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []

    def send_message(self, QueueUrl, MessageBody):  # noqa: N803
        self.sent.append((QueueUrl, json.loads(MessageBody)))


def test_the_chained_orchestrator_feeds_each_agent_after_the_previous_ones_success():
    workflow = synthetic_manifest(3).workflows[0]
    names = [a.name for a in workflow.agents]
    sqs = RecordingSqs()
    chain = ChainedOrchestrator(sqs, {name: f"q-{name}" for name in names}, [workflow])
    trigger = ObservedEvent(REQUESTED, SOURCE, {"sweep_id": "r1", "payload_bytes": 1}, 0.0, workflow.name, "r1")

    def result(agent, outcome):
        return ObservedEvent(ANSWERED, workflow.agent(agent).source, {"outcome": outcome}, 0.0, workflow.name, "r1")

    try:
        chain.on_event(trigger)
        chain.on_event(trigger)  # delivered twice: fed once
        chain.on_event(result(names[0], "success"))
        chain.on_event(result(names[1], "failure"))  # a failure ends the chain
        chain.on_event(result(names[2], "success"))  # the last agent's result feeds no one
        chain.on_event(ObservedEvent(REQUESTED, SOURCE, {}, 0.0, "another-workflow", "r1"))  # not chained here
    finally:
        chain.close()
    assert [queue for queue, _ in sqs.sent] == [f"q-{names[0]}", f"q-{names[1]}"]
    envelope = sqs.sent[0][1]
    assert envelope["detail-type"] == REQUESTED and envelope["source"] == SOURCE
    assert envelope["detail"] == {"sweep_id": "r1", "payload_bytes": 1}
    assert sqs.sent[1][1] == envelope  # every agent gets the same trigger envelope


def test_a_synthetic_manifest_chains_like_any_other():
    manifest = synthetic_manifest(3)
    chained = bench_manifest(manifest, chained=True)
    assert all(a.subscriptions == () for a in chained.agents)
    assert chained.import_path == manifest.import_path
