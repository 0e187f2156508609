"""The benchmark harness on a tiny workload against the local stack: counts and order of work, not timings."""

from __future__ import annotations

from agentbus.bench import Harness, parse_time
from tests.pinned import MANIFEST  # the shipped workflows with the agents these counts are of (not any a user adds)


def test_parallel_harness_counts_each_call_where_it_belongs():
    with Harness(chained=False, work_profile={}, manifest=MANIFEST) as harness:
        run = harness.run_level(2, "itest", timeout_s=60)  # the manifest's first coordinated workflow: orders
        rounds = harness.run_level(1, "itest", timeout_s=60, rounds=3)
    assert run.workflow == "order-fulfillment"
    assert run.missing == [] and run.completed == 2
    assert run.statuses == {"COMPLETED": 2}
    calls = run.calls
    # The harness put the 2 orders in one PutEvents call; the functions put 3 results and 1 outcome per order.
    assert calls.by_role["harness"]["events:PutEvents"] == 1 and calls.put_entries["harness"] == 2
    assert calls.put_entries["function"] == 2 * 4
    # Every PutEvents on the wire is either the harness's or a function's (nothing else puts on the happy path).
    assert calls.wire["events:PutEvents"] == (calls.by_role["harness"]["events:PutEvents"]
                                              + calls.by_role["function"]["events:PutEvents"])
    assert calls.wire["dynamodb:UpdateItem"] == calls.by_role["function"]["dynamodb:UpdateItem"] > 0
    # EventBridge delivered each trigger to 4 queues and each of the 3 results to the coordinator's.
    assert sum(u["records"] for u in run.lambda_usage.values()) == 2 * 7
    assert run.lambda_usage["coordinator"]["records"] == 2 * 4

    # Three rounds of one request, one after the other: one run counting all three.
    assert rounds.requests == 3 and rounds.completed == 3 and rounds.missing == []
    assert len(set(rounds.ids)) == 3 and not set(rounds.ids) & set(run.ids)
    assert rounds.calls.by_role["harness"]["events:PutEvents"] == 3 and rounds.calls.put_entries["function"] == 3 * 4
    assert rounds.lambda_usage["coordinator"]["records"] == 3 * 4
    assert 0 < rounds.last_outcome - rounds.first_put <= max(rounds.end_to_end_ms) * 3 / 1000



def test_harness_runs_the_access_request_workflow_in_both_modes():
    """Any coordinated workflow: its requests from its sample, its agents chained in manifest order."""
    access = MANIFEST.workflow("access-request")
    profile = {agent.name: 20 for agent in access.agents}
    with Harness(chained=False, work_profile=profile, manifest=MANIFEST) as harness:
        parallel = harness.run_level(2, "itest", timeout_s=60, workflow="access-request")
        sizes = harness.item_sizes(access)
        row = harness.dynamodb.get_item(TableName=harness.stack.resources.tables["access-requests"],
                                        Key={"request_id": {"S": "bench-itest-parallel-2-00000"}})
    assert parallel.workflow == "access-request" and parallel.missing == []
    assert parallel.statuses == {"COMPLETED": 2}
    assert row["Item"]["status"]["S"] == "COMPLETED"
    assert {"workflows", "access-requests", "directory"} <= set(sizes)
    assert "inventory" not in sizes and "orders" not in sizes  # only the tables this workflow uses
    # Only this workflow's functions worked: its 3 agents once per request, the coordinator per trigger + result.
    worked = {name for name, usage in parallel.lambda_usage.items() if usage["records"]}
    assert worked == {"identity", "policy", "risk", "coordinator"}
    assert parallel.lambda_usage["coordinator"]["records"] == 2 * 4
    assert parallel.calls.put_entries["function"] == 2 * 4

    with Harness(chained=True, work_profile=profile, manifest=MANIFEST) as harness:
        chained = harness.run_level(1, "itest", timeout_s=60, workflow="access-request")
        outcome = harness.observer.outcomes("bench-itest-chained-1-00000", "access-request")[0]
    assert chained.missing == [] and chained.statuses == {"COMPLETED": 1}
    results = outcome.detail["results"]
    assert parse_time(results["identity"]["finished_at"]) <= parse_time(results["policy"]["started_at"])
    assert parse_time(results["policy"]["finished_at"]) <= parse_time(results["risk"]["started_at"])
    assert all(chained.lambda_usage[agent]["records"] == 1 for agent in ("identity", "policy", "risk"))


def test_chained_harness_runs_the_agents_one_after_the_other():
    with Harness(chained=True, work_profile={"fraud": 30, "inventory": 30, "shipping": 30},
                 manifest=MANIFEST) as harness:
        run = harness.run_level(1, "itest", timeout_s=60, workflow="order-fulfillment")
        outcome = harness.observer.outcomes("bench-itest-chained-1-00000", "order-fulfillment")[0]
    assert run.missing == [] and run.statuses == {"COMPLETED": 1}
    results = outcome.detail["results"]
    assert parse_time(results["fraud"]["finished_at"]) <= parse_time(results["inventory"]["started_at"])
    assert parse_time(results["inventory"]["finished_at"]) <= parse_time(results["shipping"]["started_at"])
    # Each agent got the order once, from the harness (no rule feeds them in the chained topology).
    assert all(run.lambda_usage[agent]["records"] == 1 for agent in ("fraud", "inventory", "shipping"))
