"""Issue 10, as a hostile but ordinary user meets it: requests put with the real PutEvents API against the local
runtime, checked through what an operator sees (``agentbus status``'s view, ``agentbus dead-letters``, the
orders table, the reservations). Each case failed on the main of ef5a6b1 (see docs/guarantees.md):

- case 1: the same order id with other contents, in one put-events call, both orders of arrival, and again
  later: one version everywhere (outcome, orders row, reservation), the other refused and named;
- cases 2, 3: values DynamoDB cannot store, and prices that are not numbers: REJECTED at once, published,
  the orders row written, nothing HELD;
- case 4: ids longer than 128 characters refused at once by every agent and the coordinator, naming the
  rule; 128 characters work end to end;
- case 5: a result whose trigger never comes: TIMED_OUT, "the trigger never arrived";
- case 6: 99 lines of long non-ASCII SKUs (~105 KB of UTF-8): rejected at once with a clear reason, no
  dead letter, nothing HELD;
- case 7: a record that keeps failing is dead-lettered with the last error's type and message;
- case 14: the deadline is counted from the trigger event's ``time``, not from when the coordinator saw it.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from agentbus import operations
from agentbus.discovery import Deployment
from agentbus.local.runtime import RuntimeOptions
from tests.conftest import agents_of, load_detail, load_entries, observed_stack, order_entry

TIMEOUT_S = 45
GENERIC_REASON = "see the function's logs"
AGENTS = agents_of()  # the order workflow's, any a user added too: each checks the ids itself


# --- the stacks: one with the default-like deadline, one with a short deadline ------------------------

def _stack(deadline_s: int):
    with observed_stack(options=RuntimeOptions(deadline_seconds=deadline_s)) as stack:
        yield stack


@pytest.fixture(scope="module")
def stack():
    yield from _stack(60)


@pytest.fixture(scope="module")
def quick_stack():
    yield from _stack(20)


# --- helpers ------------------------------------------------------------------------------------------

def version_of(detail: dict) -> str:
    """A trigger's version as the agents and the coordinator compute it (functions/common/digest.py): the
    canonical JSON of the detail as parsed (keys sorted, compact, UTF-8, 25.0 written as 25), SHA-256, 32 hex
    characters."""
    def values(value):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, dict):
            return {key: values(item) for key, item in value.items()}
        return [values(item) for item in value] if isinstance(value, list) else value

    canonical = json.dumps(values(detail), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def deployment(stack) -> Deployment:
    return Deployment(stack.session, stack.url, stack.resources)


def put(stack, entries: list[dict]) -> None:
    response = stack.client("events").put_events(Entries=entries)
    assert response["FailedEntryCount"] == 0, response


def raw_entry(order_id: str, extra: str) -> dict:
    """The sample order under ``order_id`` with a member written as raw JSON text (``1e400`` as a producer
    writes it: ``json.loads`` reads it as infinity)."""
    entry = order_entry(order_id)
    entry["Detail"] = entry["Detail"][:-1] + ", " + extra + "}"
    return entry


def status(stack, order_id: str) -> dict | None:
    try:
        return operations.workflow_status(deployment(stack), order_id)
    except operations.OperationError:
        return None


def wait_outcomes(stack, order_ids: list[str], timeout_s: float = TIMEOUT_S) -> dict[str, dict]:
    """The one outcome of each order (its detail), once every order has one; a second one fails."""
    missing = stack.observer_.wait_for_outcomes(order_ids, timeout_s)
    views = {order_id: status(stack, order_id) for order_id in missing}
    assert not missing, f"no outcome within {timeout_s}s: " + "; ".join(
        f"{o}: {(v or {}).get('status')} {(v or {}).get('reason')}" for o, v in views.items())
    time.sleep(1)  # a duplicate outcome would arrive now
    outcomes = {}
    for order_id in order_ids:
        found = stack.observer_.outcomes(order_id)
        assert len(found) == 1, f"{order_id}: {len(found)} outcomes {[e.detail['status'] for e in found]}"
        outcomes[order_id] = found[0].detail
    return outcomes


def orders_row(stack, order_id: str) -> dict | None:
    item = stack.client("dynamodb").get_item(TableName=stack.resources.tables["orders"],
                                             Key={"order_id": {"S": order_id}}, ConsistentRead=True).get("Item")
    return item


def reservation(stack, order_id: str) -> dict | None:
    return stack.client("dynamodb").get_item(TableName=stack.resources.tables["inventory"],
                                             Key={"pk": {"S": f"reservation#{order_id}"}},
                                             ConsistentRead=True).get("Item")


def held(stack, order_id: str) -> bool:
    item = reservation(stack, order_id)
    return item is not None and item["status"]["S"] == "HELD"


def assert_released_in_time(stack, order_ids: list[str], timeout_s: float = 20) -> None:
    """Compensation is eventual: nothing stays HELD for these (not completed) orders."""
    deadline = time.monotonic() + timeout_s
    while (still := [o for o in order_ids if held(stack, o)]) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert still == [], f"still HELD without a COMPLETED outcome: {still}"


def letters_for(stack, order_id: str, timeout_s: float = 0, at_least: int = 0) -> list[operations.DeadLetter]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = [letter for letter in operations.dead_letters(deployment(stack)) if _names(letter.event, order_id)]
        if len(found) >= at_least or time.monotonic() >= deadline:
            return found
        time.sleep(0.3)


def _names(event, order_id: str) -> bool:
    detail = event.get("detail") if isinstance(event, dict) else None
    return isinstance(detail, dict) and order_id in (detail.get("order_id"), detail.get("workflow_id"))


def running_records(stack, order_ids: list[str]) -> list[str]:
    items = stack.client("dynamodb").scan(TableName=stack.resources.tables["workflows"])["Items"]
    return [item["workflow_id"]["S"] for item in items
            if item["workflow_id"]["S"] in order_ids and item.get("status", {}).get("S") == "RUNNING"]


def lines(items: list[dict]) -> list[tuple[str, int]]:
    return sorted((str(line["sku"]), int(line["quantity"])) for line in items)


# --- case 1: one version of a request ----------------------------------------------------------------

def test_same_order_id_with_other_contents_ends_with_one_version_and_the_other_refused(stack):
    """Ten ids, each put as a 25 EUR order and a 14,997 EUR one in ONE put-events call (cheap first for
    half of them, the racks first for the others): the outcome, the orders row, the counted results and the
    reservation agree on one version; the other is refused, named in the status view and as a dead letter;
    the over-limit version never completes. A third version put later is refused the same way."""
    ids = [f"ord-conflict-{i}" for i in range(10)]
    cheap = {o: order_entry(o) for o in ids}
    racks = {o: order_entry(o, base="order-placed-over-limit.json") for o in ids}
    entries = [entry for i, o in enumerate(ids) for entry in ((cheap[o], racks[o]) if i % 2 else (racks[o], cheap[o]))]
    put(stack, entries[:10])
    put(stack, entries[10:])
    outcomes = wait_outcomes(stack, ids)

    for order_id in ids:
        versions = {version_of(json.loads(e["Detail"])): json.loads(e["Detail"])
                    for e in (cheap[order_id], racks[order_id])}
        outcome = outcomes[order_id]
        row = orders_row(stack, order_id)
        assert row is not None and row["status"]["S"] == outcome["status"], (order_id, row)
        shown = [v for v, detail in versions.items()
                 if lines([{"sku": i["M"]["sku"]["S"], "quantity": i["M"]["quantity"]["N"]} for i in row["items"]["L"]])
                 == lines(detail["items"])]
        assert len(shown) == 1, f"{order_id}: the orders row shows no single version"
        [stored] = shown
        if outcome["status"] == "COMPLETED":
            assert versions[stored]["items"] == json.loads(cheap[order_id]["Detail"])["items"], \
                f"{order_id}: the over-limit version COMPLETED (fraud bypassed)"
            item = reservation(stack, order_id)
            assert item["status"]["S"] == "HELD"
            assert lines([{"sku": i["M"]["sku"]["S"], "quantity": i["M"]["quantity"]["N"]}
                          for i in item["lines"]["L"]]) == lines(versions[stored]["items"]), \
                f"{order_id}: COMPLETED as one version, reserved for the other"
        counted = {agent: result.get("trigger_digest") for agent, result in outcome["results"].items()}
        assert set(counted.values()) <= {stored}, f"{order_id}: results of another version counted: {counted}"
        [other] = set(versions) - {stored}
        view = status(stack, order_id)
        assert view.get("trigger_digest") == stored, f"{order_id}: status does not name its version"
        assert other in {r["trigger_digest"] for r in view.get("refused") or []}, \
            f"{order_id}: the other version is not named as refused in the status view"
        letters = [letter for letter in letters_for(stack, order_id, timeout_s=5, at_least=1)
                   if letter.agent == "coordinator"]
        assert letters and all(stored in letter.reason and other in letter.reason for letter in letters), \
            f"{order_id}: no dead letter naming both versions: {[letter.reason for letter in letters]}"
    assert_released_in_time(stack, [o for o in ids if outcomes[o]["status"] != "COMPLETED"])

    # Later, a third version of a finished order: refused and named, no second outcome, nothing reserved for it.
    late_id = ids[0]
    late = order_entry(late_id, items=[{"sku": "SKU-MOUSE", "quantity": 7, "unit_price": 25.0}])
    before = reservation(stack, late_id)
    put(stack, [late])
    late_version = version_of(json.loads(late["Detail"]))
    letters = [letter for letter in letters_for(stack, late_id, timeout_s=15, at_least=2)
               if letter.agent == "coordinator" and late_version in letter.reason]
    assert letters, "a version put later was dropped without a word"
    assert late_version in {r["trigger_digest"] for r in status(stack, late_id)["refused"]}
    time.sleep(1)
    assert len(stack.observer_.outcomes(late_id)) == 1
    assert reservation(stack, late_id) == before, "the late version changed the reservation"


# --- cases 2 and 3: values a table cannot store, prices that are not numbers ----------------------------

@pytest.mark.parametrize(("extra", "field"), [
    ('"loyalty_points": 1e308', "loyalty_points"),
    ('"loyalty_points": 1234567890123456789012345678901234567890', "loyalty_points"),
    ('"loyalty_points": 1e400', "loyalty_points"),
], ids=["1e308", "40-digits", "1e400"])
def test_values_dynamodb_cannot_store_reject_the_order_at_once_published_and_nothing_held(stack, extra, field):
    order_id = f"ord-unstorable-{extra.split(': ')[1][:8].replace('.', '_')}"
    put(stack, [raw_entry(order_id, extra)])
    outcome = wait_outcomes(stack, [order_id], timeout_s=30)[order_id]
    assert outcome["status"] == "REJECTED"
    assert field in outcome["reason"], outcome["reason"]
    view = status(stack, order_id)
    assert view["published"] is True
    assert orders_row(stack, order_id)["status"]["S"] == "REJECTED"
    assert_released_in_time(stack, [order_id])
    assert running_records(stack, [order_id]) == []


@pytest.mark.parametrize("price", ["NaN", "Infinity", "1e200"])
def test_prices_that_are_not_amounts_reject_the_order_published_with_its_row(stack, price):
    order_id = f"ord-price-{price.lower()}"
    entry = order_entry(order_id)
    detail = json.loads(entry["Detail"])
    detail["items"][0]["unit_price"] = price
    entry["Detail"] = json.dumps(detail)
    put(stack, [entry])
    assert_rejected_at_once(stack, order_id, "unit_price")


def assert_rejected_at_once(stack, order_id: str, field: str) -> None:
    """One REJECTED outcome naming ``field``, published, the orders row written, nothing held."""
    outcome = wait_outcomes(stack, [order_id], timeout_s=30)[order_id]
    assert outcome["status"] == "REJECTED" and field in outcome["reason"], outcome["reason"]
    assert status(stack, order_id)["published"] is True
    row = orders_row(stack, order_id)
    assert row is not None and row["status"]["S"] == "REJECTED"
    assert not held(stack, order_id)


@pytest.mark.parametrize("quantity", ["1e400", "-1e400", "1000000000000000000000000000000"],
                         ids=["1e400", "-1e400", "10^30"])
def test_quantities_beyond_any_count_reject_the_order_published_with_its_row(stack, quantity):
    # 1e400 once crashed the orders table's row (an infinite quantity in the total): the order stayed REJECTED
    # but unpublished, dead-lettered, and a redrive crashed again; 10^30 passed validation and failed the agents.
    order_id = f"ord-quantity-{quantity[:6].replace('-', 'minus')}"
    entry = order_entry(order_id)
    entry["Detail"] = entry["Detail"].replace('"quantity": 1', f'"quantity": {quantity}', 1)
    assert quantity in entry["Detail"]
    put(stack, [entry])
    assert_rejected_at_once(stack, order_id, "quantity")


# --- case 4: id rules -----------------------------------------------------------------------------------

def test_ids_over_128_characters_are_refused_by_every_consumer_naming_the_rule_and_128_work(stack):
    bad = {length: f"ord-{length}-" + "x" * (length - len(f"ord-{length}-")) for length in (129, 247, 256, 1024)}
    good = "ord-128-" + "y" * 120
    assert len(good) == 128 and all(len(value) == length for length, value in bad.items())
    put(stack, [order_entry(value) for value in bad.values()])
    put(stack, [order_entry(good)])
    assert wait_outcomes(stack, [good])[good]["status"] == "COMPLETED"
    for length, order_id in bad.items():
        letters = letters_for(stack, order_id, timeout_s=15, at_least=len(AGENTS) + 1)
        assert sorted(letter.agent for letter in letters) == sorted([*AGENTS, "coordinator"]), \
            (length, [(letter.agent, letter.reason) for letter in letters])
        for letter in letters:
            assert "order_id" in letter.reason and "128" in letter.reason, (length, letter.agent, letter.reason)
        assert stack.observer_.outcomes(order_id) == []
    assert running_records(stack, list(bad.values())) == []


# --- case 6: sizes counted as AWS counts them ------------------------------------------------------------

def test_a_99_line_order_of_long_non_ascii_skus_ends_at_once_with_a_clear_reason_and_nothing_held(stack):
    order_id = "ord-utf8-99"
    # 255 characters each (SKUs are at most 256), most of them 4 bytes in UTF-8 (U+2070E).
    items = [{"sku": f"SKU-{i:02d}-" + "\U0002070e" * 248, "quantity": 1, "unit_price": 1.0} for i in range(99)]
    entry = order_entry(order_id, items=items)
    entry["Detail"] = json.dumps(json.loads(entry["Detail"]), ensure_ascii=False)  # as UTF-8, not \u escapes
    assert 100_000 < len(entry["Detail"].encode("utf-8")) < 110_000
    put(stack, [entry])
    outcome = wait_outcomes(stack, [order_id], timeout_s=30)[order_id]
    assert outcome["status"] in ("COMPLETED", "REJECTED")
    if outcome["status"] == "REJECTED":
        assert outcome["reason"] and GENERIC_REASON not in outcome["reason"]
        assert_released_in_time(stack, [order_id])
    letters = letters_for(stack, order_id, timeout_s=3)
    assert letters == [], f"dead-lettered: {[(letter.agent, letter.reason[:200]) for letter in letters]}"


# --- case 7: dead-letter reasons say why ----------------------------------------------------------------

def test_a_record_that_keeps_failing_is_dead_lettered_with_the_last_errors_type_and_message(stack):
    order_id = "ord-broken-stock"
    sku = "SKU-BROKEN-STOCK"
    # A stock item whose `reserved` is not a number: every reservation transaction fails the same way.
    stack.client("dynamodb").put_item(TableName=stack.resources.tables["inventory"], Item={
        "pk": {"S": f"sku#{sku}"}, "sku": {"S": sku}, "on_hand": {"N": "100"}, "reserved": {"S": "n/a"}})
    put(stack, [order_entry(order_id, items=[{"sku": sku, "quantity": 1, "unit_price": 5.0}])])
    letters = [letter for letter in letters_for(stack, order_id, timeout_s=40, at_least=1)
               if letter.agent == "inventory"]
    assert letters, "the failing record was not dead-lettered"
    [letter] = letters
    assert GENERIC_REASON not in letter.reason, letter.reason
    # The last error's type and message, and how many times it was tried.
    assert "ValidationException" in letter.reason and "operand type" in letter.reason, letter.reason
    assert "failed on receive" in letter.reason, letter.reason


# --- case 5: a result whose trigger never comes -----------------------------------------------------------

def _as_agent(stack, agent: str):
    """An events client that may publish under the agent's source (locally: the agent's own key)."""
    principals = getattr(stack, "principals", None)
    if principals is None:
        return stack.client("events")
    return principals.session(stack.session, principals.function_key(agent)).client("events", endpoint_url=stack.url)


def test_a_result_whose_trigger_never_comes_times_out_saying_so(quick_stack):
    order_id = "ord-never-triggered"
    entry = dict(load_entries("order-verified.json")[0])
    detail = json.loads(entry["Detail"]) | {"workflow_id": order_id, "order_id": order_id,
                                             "idempotency_key": f"{order_id}:fraud",
                                             "trigger_digest": version_of(load_detail("order-placed.json"))}
    entry["Detail"] = json.dumps(detail)
    response = _as_agent(quick_stack, "fraud").put_events(Entries=[entry])
    assert response["FailedEntryCount"] == 0, response
    outcome = wait_outcomes(quick_stack, [order_id], timeout_s=40)[order_id]
    assert outcome["status"] == "TIMED_OUT"
    assert "the trigger never arrived" in outcome["reason"]
    assert running_records(quick_stack, [order_id]) == []


# --- case 14: the deadline counts from when the order was placed --------------------------------------------

def test_deadline_is_counted_from_the_events_time_not_from_when_the_coordinator_sees_it(quick_stack):
    """A 20 s deadline, an order placed 20 s ago (its event ``time``), shipping paused: it times out at
    once, not 20 s after the coordinator dequeued it."""
    control = quick_stack.control
    control.set_paused("shipping", True)
    try:
        time.sleep(1.0)
        order_id = "ord-placed-20s-ago"
        entry = order_entry(order_id) | {"Time": datetime.now(UTC) - timedelta(seconds=20)}
        put(quick_stack, [entry])
        started = time.monotonic()
        outcome = wait_outcomes(quick_stack, [order_id], timeout_s=12)[order_id]
        assert outcome["status"] == "TIMED_OUT"
        assert time.monotonic() - started < 12
    finally:
        control.set_paused("shipping", False)
    assert_released_in_time(quick_stack, [order_id])
