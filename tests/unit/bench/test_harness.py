"""The harness's topologies (no stack started here: see tests/integration/test_bench_harness.py)."""

from __future__ import annotations

from agentbus.bench import (
    bench_manifest,
)
from functions.manifest import MANIFEST


def test_chained_manifest_leaves_every_coordinated_trigger_to_the_coordinator_only():
    chained = bench_manifest(MANIFEST, chained=True)
    assert bench_manifest(MANIFEST, chained=False) is MANIFEST
    triggers = {d for w in MANIFEST.coordinated for d in w.trigger.subscription.detail_types}
    assert triggers == {"Order Placed", "Access Requested"}
    for workflow in chained.coordinated:
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
