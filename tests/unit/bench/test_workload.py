"""Workload generation: each workflow's requests, and the soak's traffic."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from agentbus import bench
from agentbus.bench import (
    make_requests,
    soak_traffic,
)
from functions.access.models import AccessRequested
from functions.manifest import MANIFEST, PRODUCER_SOURCE
from functions.orders.models import OrderPlaced
from functions.orders.workload import seeded_skus


def test_benchmark_orders_come_from_the_workload_the_workflow_declares():
    orders = MANIFEST.workflow("order-fulfillment")
    assert orders.workload == "functions.orders.workload:bench_orders"
    entries = make_requests(orders, "bench-x-parallel-3", 3)
    details = [json.loads(e["Detail"]) for e in entries]
    assert [d["order_id"] for d in details] == ["bench-x-parallel-3-00000", "bench-x-parallel-3-00001",
                                                "bench-x-parallel-3-00002"]
    skus = seeded_skus()
    assert [d["items"] for d in details] == [[{"sku": skus[i], "quantity": 1, "unit_price": 20.0}] for i in range(3)]
    assert all(e["Source"] == PRODUCER_SOURCE and e["DetailType"] == "Order Placed" for e in entries)
    for detail in details:
        OrderPlaced.model_validate(detail)


def test_a_workflow_without_a_workload_is_benchmarked_on_copies_of_its_first_sample():
    access = MANIFEST.workflow("access-request")
    assert access.workload is None
    sample = json.loads(json.loads((bench.REPO_ROOT / access.samples[0]).read_text())[0]["Detail"])
    entries = make_requests(access, "bench-y", 2)
    details = [json.loads(e["Detail"]) for e in entries]
    assert [d["request_id"] for d in details] == ["bench-y-00000", "bench-y-00001"]
    assert all({**d, "request_id": sample["request_id"]} == sample for d in details)
    assert all(e["Source"] == "agentbus.access" and e["DetailType"] == "Access Requested" for e in entries)
    for detail in details:
        AccessRequested.model_validate(detail)


ONE_REQUEST = "tests.unit.bench.test_workload:_one_request"


def test_a_workload_must_make_the_requests_asked():
    import dataclasses

    orders = MANIFEST.workflow("order-fulfillment")
    short = dataclasses.replace(orders, workload=ONE_REQUEST)
    with pytest.raises(ValueError, match="made 1 distinct requests, 3 asked"):
        make_requests(short, "p", 3)
    wrong = dataclasses.replace(MANIFEST.workflow("access-request"), workload=ONE_REQUEST)
    with pytest.raises(ValueError, match="not its trigger"):
        make_requests(wrong, "p", 1)


def _one_request(workflow, prefix, count):
    return make_requests(MANIFEST.workflow("order-fulfillment"), prefix, 1)


def test_soak_traffic_mixes_every_workflow_with_conflicts_and_unstorable_values():
    requests = soak_traffic(120, "r1")
    kinds = Counter((r.workflow, r.kind) for r in requests)
    assert kinds[("order-fulfillment", "conflict")] == 2 and kinds[("order-fulfillment", "unstorable")] == 2
    assert kinds[("access-request", "conflict")] == 2 and kinds[("access-request", "unstorable")] == 2
    assert kinds[("new-user-audit", "sample")] == 40 and not {k for w, k in kinds if w == "new-user-audit"} - {"sample"}
    # The same ids in every workflow: one workflow's request must not disturb another's.
    ids = {w: {r.workflow_id for r in requests if r.workflow == w} for w in ("order-fulfillment", "access-request",
                                                                             "new-user-audit")}
    assert ids["order-fulfillment"] == ids["access-request"] == ids["new-user-audit"]
    for request in requests:
        workflow = MANIFEST.workflow(request.workflow)
        details = [json.loads(e["Detail"]) for e in request.entries]
        assert {d[workflow.id_field] for d in details} == {request.workflow_id}
        if request.kind == "conflict":  # two versions: one id, different contents
            assert len(details) == 2 and details[0] != details[1]
        else:
            assert len(details) == 1
    # The first order conflict is issue 10's: a cheap order and one over the fraud limit, under one id.
    first = next(r for r in requests if r.workflow == "order-fulfillment" and r.kind == "conflict")
    totals = sorted(sum(line["quantity"] * line["unit_price"] for line in json.loads(e["Detail"])["items"])
                    for e in first.entries)
    assert totals[0] < 10_000 < totals[1]
    # Every put batch keeps a conflicting pair together, in one PutEvents call of at most 10 entries.
    batches = bench.put_batches(requests)
    entries = [[e for r in b for e in r.entries] for b in batches]
    assert all(len(b) <= 10 for b in entries) and sum(map(len, entries)) == sum(len(r.entries) for r in requests)
    assert [r for b in batches for r in b] == requests  # in order, each once
    for request in requests:
        if request.kind == "conflict":
            assert any(all(e in b for e in request.entries) for b in entries)


def test_soak_unstorable_values_are_the_ones_issue_10_names():
    requests = [r for r in soak_traffic(400, "r2") if r.kind == "unstorable"]
    seen = set()
    for request in requests:
        detail = json.loads(request.entries[0]["Detail"])
        if request.field == "loyalty_points":
            value = detail["loyalty_points"]
            seen.add("1e308" if value == 1e308 else f"{len(str(value))} digits")
        else:
            assert request.workflow == "order-fulfillment" and request.field == "unit_price"
            assert detail["items"][0]["unit_price"] == "NaN"
            seen.add("NaN")
    assert seen == {"1e308", "40 digits", "NaN"}
    # The raw text as the bus carries it: numbers no DynamoDB attribute can hold.
    texts = [r.entries[0]["Detail"] for r in requests]
    assert any('"loyalty_points": 1e+308' in t for t in texts)
    assert any('"loyalty_points": 1' + "0" * 39 in t for t in texts)
