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
from agentbus.bench.workload import EDGE_EVERY
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


def _soaked():
    """The workflows the soak mixes, derived from the manifest (the shipped ones and any a user adds): each
    with a sample trigger, with its samples."""
    reserved = MANIFEST.reserved_sources  # a follow-on's samples (another workflow's outcome): nobody else puts them
    soaked = [(w, [e for e in bench.sample_triggers(w) if e["Source"] not in reserved]) for w in MANIFEST.workflows]
    return [(w, samples) for w, samples in soaked if samples]


def test_soak_traffic_mixes_every_workflow_with_conflicts_and_unstorable_values():
    soaked = _soaked()
    assert {"order-fulfillment", "access-request", "new-user-audit"} <= {w.name for w, _ in soaked}
    share = 2 * EDGE_EVERY  # each workflow's share: two turns of edge cases
    requests = soak_traffic(share * len(soaked), "r1")
    kinds = Counter((r.workflow, r.kind) for r in requests)
    for workflow, samples in soaked:
        # A coordinated workflow: 2 unstorable values and, with two samples to make two versions, 2 conflicts;
        # a standalone one has no outcome to check them by: its samples only.
        conflicts = 2 if workflow.coordinated and len(samples) > 1 else 0
        unstorable = 2 if workflow.coordinated else 0
        assert {k: n for (w, k), n in kinds.items() if w == workflow.name} == {
            k: n for k, n in {"conflict": conflicts, "unstorable": unstorable,
                              "sample": share - conflicts - unstorable}.items() if n}, workflow.name
    assert kinds[("order-fulfillment", "conflict")] == 2 and kinds[("order-fulfillment", "unstorable")] == 2
    assert kinds[("access-request", "conflict")] == 2 and kinds[("access-request", "unstorable")] == 2
    assert kinds[("new-user-audit", "sample")] == share
    assert {w for w, _ in kinds} == {w.name for w, _ in soaked}
    # The same ids in every workflow: one workflow's request must not disturb another's (but one sharing an earlier
    # workflow's trigger has its own: test_a_workflow_sharing_anothers_trigger_gets_ids_of_its_own).
    from agentbus.bench.workload import sharing_a_trigger

    own = sharing_a_trigger([w for w, _ in soaked])
    ids = {w.name: {r.workflow_id for r in requests if r.workflow == w.name} for w, _ in soaked if w.name not in own}
    assert len({frozenset(v) for v in ids.values()}) == 1 and len(ids["order-fulfillment"]) == share
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


def _float_fields(value, key=None):
    """The names of the fields holding a non-integer number in a JSON value, at any depth."""
    if isinstance(value, float):
        return {str(key)}
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    return {name for k, item in items for name in _float_fields(item, k if isinstance(value, dict) else key)}


def _nan_fields(value, key=None):
    if value == "NaN":
        return {str(key)}
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    return {name for k, item in items for name in _nan_fields(item, k if isinstance(value, dict) else key)}


def test_soak_unstorable_values_are_the_ones_issue_10_names():
    soaked = _soaked()
    coordinated = {w.name for w, _ in soaked if w.coordinated}
    samples_of = {w.name: samples for w, samples in soaked}
    requests = [r for r in soak_traffic(7 * EDGE_EVERY * len(soaked), "r2") if r.kind == "unstorable"]
    assert {r.workflow for r in requests} == coordinated  # every coordinated workflow, no standalone one
    seen: dict[str, set[str]] = {name: set() for name in coordinated}
    for request in requests:
        detail = json.loads(request.entries[0]["Detail"])
        if request.field == "loyalty_points":
            value = detail["loyalty_points"]
            assert value == 1e308 or len(str(value)) == 40, value
            seen[request.workflow].add("1e308" if value == 1e308 else f"{len(str(value))} digits")
        else:
            # The first decimal number of one of the workflow's samples, made the string "NaN".
            decimals = {f for sample in samples_of[request.workflow]
                        for f in _float_fields(json.loads(sample["Detail"]))}
            assert _nan_fields(detail) == {request.field} and request.field in decimals, request
            seen[request.workflow].add("NaN")
    for name, labels in seen.items():  # both extras in turn, and "NaN" only where a sample has a decimal
        assert {"1e308", "40 digits"} <= labels <= {"1e308", "40 digits", "NaN"}, name
    # The shipped samples: an order's unit price is its decimal; an access request has none.
    assert seen["order-fulfillment"] == {"1e308", "40 digits", "NaN"}
    assert seen["access-request"] == {"1e308", "40 digits"}
    assert {r.field for r in requests if r.workflow == "order-fulfillment"} == {"loyalty_points", "unit_price"}
    assert all(json.loads(r.entries[0]["Detail"])["items"][0]["unit_price"] == "NaN"
               for r in requests if r.field == "unit_price")
    # The raw text as the bus carries it: numbers no DynamoDB attribute can hold.
    texts = [r.entries[0]["Detail"] for r in requests]
    assert any('"loyalty_points": 1e+308' in t for t in texts)
    assert any('"loyalty_points": 1' + "0" * 39 in t for t in texts)


def test_a_workflow_sharing_anothers_trigger_gets_ids_of_its_own():
    """Black-box pass 7A, F3: a standalone workflow on the same trigger as a coordinated one had its copies put
    under the coordinated workflow's ids with other contents: one put reaches both, so each was a second version
    of the coordinated request (16 of 19 dead letters, and outcomes decided by a race)."""
    from dataclasses import replace

    from agentbus.bench.workload import sharing_a_trigger
    from functions.common.spec import Manifest

    orders, audit = MANIFEST.workflow("order-fulfillment"), MANIFEST.workflow("new-user-audit")
    agent = replace(audit.agents[0], name="order-audit", source="agentbus.agent.order-audit")
    shared = replace(audit, name="order-audit", trigger=orders.trigger, samples=orders.samples, agents=(agent,))
    manifest = Manifest(workflows=(orders, shared), tables=MANIFEST.tables)
    assert sharing_a_trigger(manifest.workflows) == {"order-audit"}
    requests = soak_traffic(40, "r2", manifest)
    ids = {name: {r.workflow_id for r in requests if r.workflow == name}
           for name in ("order-fulfillment", "order-audit")}
    assert ids["order-fulfillment"] and ids["order-audit"]
    assert not ids["order-fulfillment"] & ids["order-audit"]
    assert all(i.startswith("soak-r2-order-audit-") for i in ids["order-audit"])
    from tests.pinned import MANIFEST as PINNED

    assert sharing_a_trigger(PINNED.workflows) == set()  # the shipped workflows keep one id space


def test_a_workflow_whose_samples_only_its_upstream_may_put_is_named_not_put(tmp_path):
    """Black-box pass 7A, F7: a follow-on workflow's sample that is an outcome event (a reserved source) failed the
    soak's PutEvents with a traceback."""
    from dataclasses import replace

    from agentbus.bench.workload import unsoaked
    from tests.workflows.followups.manifest import MANIFEST as FOLLOW_UPS

    filed = FOLLOW_UPS.workflow("report-filed")
    outcome = tmp_path / "report-completed.json"
    outcome.write_text(json.dumps([{"Source": "agentbus.coordinator", "DetailType": filed.trigger.subscription
                                    .detail_types[0], "Detail": json.dumps({"report_id": "rep-1"})}]))
    requested = "tests/workflows/followups/events/report-requested.json"
    manifest = replace(FOLLOW_UPS, workflows=tuple(
        replace(w, samples=(str(outcome),) if w.name == filed.name else (requested,)) for w in FOLLOW_UPS.workflows))
    requests = soak_traffic(10, "r3", manifest)
    assert requests and {r.workflow for r in requests} == {"report"}
    [line] = unsoaked(manifest)
    assert line.startswith("report-filed (its samples come from agentbus.coordinator, which only its function may put")
