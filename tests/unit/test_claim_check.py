"""Claim check (functions/common/claim_check.py): the publisher offloads big details to S3 (moto), consumers
resolve them, and a reference that can never be resolved is a poison message naming it."""

from __future__ import annotations

import hashlib
import json

import boto3
import pytest
from moto import mock_aws

from functions.common.claim_check import (
    DEFAULT_THRESHOLD_BYTES,
    OBJECT_EXPIRY_DAYS,
    QUEUE_RETENTION_DAYS,
    ClaimCheckError,
    ClaimCheckStore,
    Reference,
    object_key,
    resolve_event,
)
from functions.common.consumer import consume
from functions.common.dead_letters import REASON_ATTRIBUTE, DeadLetterSink, PoisonMessage
from functions.common.models import BusEvent
from functions.common.publisher import MAX_ENTRY_BYTES, Event, EventPublisher, entry_size
from functions.common.settings import (
    CLAIM_CHECK_BUCKET,
    CLAIM_CHECK_THRESHOLD_BYTES,
    EVENT_BUS_NAME,
    FUNCTION,
    Settings,
    SettingsError,
)

BUCKET = "agentbus-claim-checks"
SOURCE = "agentbus.agent.fraud"


class FakeEvents:
    def __init__(self) -> None:
        self.entries: list[dict] = []

    def put_events(self, Entries):  # noqa: N803
        self.entries += Entries
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(i)} for i, _ in enumerate(Entries)]}


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def store(s3, threshold: int = DEFAULT_THRESHOLD_BYTES, prefix: str = "fraud") -> ClaimCheckStore:
    return ClaimCheckStore(s3, BUCKET, prefix, threshold, ("workflow", "workflow_id", "agent", "outcome",
                                                            "trigger_digest", "idempotency_key", "order_id"))


def result_detail(pad_bytes: int, workflow_id: str = "ord-1") -> dict:
    return {"workflow": "order-fulfillment", "workflow_id": workflow_id, "agent": "fraud", "outcome": "success",
            "reason": None, "data": {"pad": "x" * pad_bytes}, "started_at": "2026-12-01T00:00:00.000Z",
            "finished_at": "2026-12-01T00:00:00.010Z", "duration_ms": 10.0,
            "idempotency_key": f"{workflow_id}:fraud", "trigger_digest": "d" * 32}


def publish(s3, detail: dict, threshold: int = DEFAULT_THRESHOLD_BYTES) -> dict:
    events = FakeEvents()
    EventPublisher(events, "agentbus", claim_checks=store(s3, threshold)).publish(
        [Event("Order Verified", detail, SOURCE)])
    [entry] = events.entries
    return entry


def as_bus_event(entry: dict) -> BusEvent:
    return BusEvent.model_validate({"id": "e-1", "source": entry["Source"], "detail-type": entry["DetailType"],
                                    "detail": json.loads(entry["Detail"])})


# --- threshold and reference shape ---------------------------------------------------------------------

def test_an_event_under_the_threshold_is_published_as_it_is_and_nothing_is_stored(s3):
    detail = result_detail(1000)
    entry = publish(s3, detail)
    assert json.loads(entry["Detail"]) == detail
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


def test_the_threshold_is_the_entry_size_as_eventbridge_counts_it(s3):
    small = result_detail(0)
    base = entry_size(Event("Order Verified", small, SOURCE))
    at = result_detail(0) | {"data": {"pad": ""}}
    threshold = base + 100
    at["data"]["pad"] = "x" * (threshold - base)  # exactly the threshold: kept on the bus
    assert entry_size(Event("Order Verified", at, SOURCE)) == threshold
    assert "claim_check" not in json.loads(publish(s3, at, threshold)["Detail"])
    over = at | {"data": {"pad": at["data"]["pad"] + "x"}}
    assert "claim_check" in json.loads(publish(s3, over, threshold)["Detail"])


def test_a_1_mb_result_becomes_a_small_reference_with_its_routing_fields(s3):
    detail = result_detail(1024 * 1024)
    entry = publish(s3, detail)
    assert entry_size(entry) < 2048
    small = json.loads(entry["Detail"])
    body = json.dumps(detail, separators=(",", ":"), ensure_ascii=False).encode()
    digest = hashlib.sha256(body).hexdigest()
    assert small == {
        "claim_check": {"bucket": BUCKET, "bytes": len(body), "sha256": digest,
                        "key": f"fraud/agentbus.agent.fraud/Order_Verified/ord-1_fraud/{digest}.json"},
        "workflow": "order-fulfillment", "workflow_id": "ord-1", "agent": "fraud", "outcome": "success",
        "trigger_digest": "d" * 32, "idempotency_key": "ord-1:fraud",
    }
    stored = s3.get_object(Bucket=BUCKET, Key=small["claim_check"]["key"])["Body"].read()
    assert stored == body and json.loads(stored) == detail


def test_the_workflows_id_field_is_kept_and_long_or_nested_values_are_not(s3):
    detail = {"order_id": "ord-9", "workflow_id": "w" * 2000, "status": "COMPLETED", "agent": {"nested": 1},
              "results": {"fraud": {"data": "x" * 300_000}}}
    small = json.loads(publish(s3, detail)["Detail"])
    assert set(small) == {"claim_check", "order_id"}


def test_the_key_is_derived_from_prefix_source_detail_type_idempotency_and_content(s3):
    detail = result_detail(300_000)
    first, again = publish(s3, detail), publish(s3, detail)
    assert first["Detail"] == again["Detail"]  # same bytes, same key: the put is idempotent
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 1
    other = json.loads(publish(s3, detail | {"duration_ms": 11.0})["Detail"])
    assert other["claim_check"]["key"] != json.loads(first["Detail"])["claim_check"]["key"]
    key = object_key("coord inator", "a b", "Order/Completed", {"idempotency_key": "ord:1/#x"}, "f" * 64)
    assert key == f"coord_inator/a_b/Order_Completed/ord_1_x/{'f' * 64}.json"
    assert object_key("p", "s", "t", {}, "0" * 64) == f"p/s/t/-/{'0' * 64}.json"


def test_without_a_store_an_event_over_256_kb_is_still_refused_and_with_one_it_is_accepted(s3):
    from functions.common.publisher import EventTooLargeError

    big = Event("Order Verified", result_detail(MAX_ENTRY_BYTES), SOURCE)
    with pytest.raises(EventTooLargeError):
        EventPublisher(FakeEvents(), "agentbus").check(big)
    EventPublisher(FakeEvents(), "agentbus", claim_checks=store(s3)).check(big)  # nothing raised, nothing stored
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


# --- resolving -----------------------------------------------------------------------------------------

def test_a_reference_resolves_to_the_original_detail_and_remembers_its_reference(s3):
    detail = result_detail(1024 * 1024)
    event = as_bus_event(publish(s3, detail))
    resolved = resolve_event(event, store(s3, prefix="coordinator"))
    assert resolved.detail == detail
    assert resolved.claim_check == event.detail["claim_check"]
    plain = as_bus_event({"Source": SOURCE, "DetailType": "Order Verified", "Detail": json.dumps({"a": 1})})
    assert resolve_event(plain, store(s3)) is plain and plain.claim_check is None


def test_a_claim_check_field_on_the_bus_envelope_is_not_taken_as_a_resolved_reference():
    event = BusEvent.model_validate({"id": "1", "source": "s", "detail-type": "t", "detail": {},
                                     "claim_check": {"bucket": "x"}})
    assert event.claim_check is None


def test_a_missing_object_is_a_poison_message_naming_the_key(s3):
    event = as_bus_event(publish(s3, result_detail(300_000)))
    key = event.detail["claim_check"]["key"]
    s3.delete_object(Bucket=BUCKET, Key=key)
    with pytest.raises(PoisonMessage) as caught:
        resolve_event(event, store(s3))
    assert isinstance(caught.value, ClaimCheckError)
    assert f"s3://{BUCKET}/{key}" in str(caught.value) and "no such object" in str(caught.value)


def test_an_object_whose_sha256_differs_from_the_reference_is_refused(s3):
    event = as_bus_event(publish(s3, result_detail(300_000)))
    reference = event.detail["claim_check"]
    tampered = json.dumps(result_detail(300_000) | {"outcome": "failure"}, separators=(",", ":")).encode()
    s3.put_object(Bucket=BUCKET, Key=reference["key"], Body=tampered)
    with pytest.raises(ClaimCheckError, match="does not match its reference") as caught:
        resolve_event(event, store(s3))
    assert reference["key"] in str(caught.value) and reference["sha256"] in str(caught.value)


def test_a_reference_to_another_bucket_is_refused_without_fetching(s3):
    event = as_bus_event(publish(s3, result_detail(300_000)))
    event.detail["claim_check"]["bucket"] = "someone-elses-bucket"
    with pytest.raises(ClaimCheckError, match="is not this stack's claim-check bucket 'agentbus-claim-checks'"):
        resolve_event(event, store(s3))


def test_routing_fields_that_disagree_with_the_stored_detail_are_refused(s3):
    event = as_bus_event(publish(s3, result_detail(300_000)))
    event.detail["workflow_id"] = "ord-other"
    with pytest.raises(ClaimCheckError, match="workflow_id disagree"):
        resolve_event(event, store(s3))


@pytest.mark.parametrize("reference, bad", [
    ({"bucket": BUCKET, "key": "k", "bytes": 1}, "sha256"),
    ({"bucket": "", "key": "k", "bytes": -1, "sha256": "0" * 64}, "bucket, bytes"),
    ("s3://x/y", "must be an object"),
])
def test_a_malformed_reference_is_refused_naming_what_is_wrong(s3, reference, bad):
    with pytest.raises(ClaimCheckError, match=bad):
        Reference.of({"claim_check": reference})


def test_a_reference_reaching_a_function_without_a_bucket_is_poison_naming_it(s3):
    event = as_bus_event(publish(s3, result_detail(300_000)))
    with pytest.raises(ClaimCheckError, match="no claim-check bucket .CLAIM_CHECK_BUCKET."):
        resolve_event(event, None)


def test_the_consumer_dead_letters_an_unresolvable_reference_with_its_reason_at_once(s3):
    from agentbus.local.lambda_events import eventbridge_envelope, sqs_event, sqs_record

    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    entry = publish(s3, result_detail(300_000))
    s3.delete_object(Bucket=BUCKET, Key=json.loads(entry["Detail"])["claim_check"]["key"])
    handled = []
    envelope = eventbridge_envelope(entry["DetailType"], entry["Source"], json.loads(entry["Detail"]))
    record = sqs_record(envelope, "arn:aws:sqs:us-east-1:123456789012:coordinator")
    response = consume(sqs_event([record]), None, handled.append, DeadLetterSink(sqs, dlq, "coordinator"),
                       max_receive_count=3, claim_checks=store(s3, prefix="coordinator"))
    assert response == {"batchItemFailures": []} and handled == []
    [letter] = sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"])["Messages"]
    reason = letter["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
    assert "claim check s3://agentbus-claim-checks/fraud/" in reason and "no such object" in reason


# --- settings and lifecycle ------------------------------------------------------------------------------

def test_settings_read_the_bucket_and_the_threshold_and_refuse_bad_values():
    base = {FUNCTION: "fraud", EVENT_BUS_NAME: "agentbus", "FRAUD_LIMIT": "10000.00"}
    settings = Settings.from_env(base | {CLAIM_CHECK_BUCKET: BUCKET, CLAIM_CHECK_THRESHOLD_BYTES: "1024"})
    assert (settings.claim_check_bucket, settings.claim_check_threshold) == (BUCKET, 1024)
    default = Settings.from_env(base | {CLAIM_CHECK_BUCKET: BUCKET})
    assert default.claim_check_threshold == DEFAULT_THRESHOLD_BYTES == 200 * 1024
    with pytest.raises(SettingsError, match="CLAIM_CHECK_THRESHOLD_BYTES must be <= 262144"):
        Settings.from_env(base | {CLAIM_CHECK_THRESHOLD_BYTES: "300000"})
    with pytest.raises(SettingsError, match="CLAIM_CHECK_THRESHOLD_BYTES must be a whole number"):
        Settings.from_env(base | {CLAIM_CHECK_THRESHOLD_BYTES: "200KB"})
    with pytest.raises(SettingsError, match="CLAIM_CHECK_BUCKET must be a bucket name"):
        Settings.from_env(base | {CLAIM_CHECK_BUCKET: "arn:aws:s3:::bucket"})


def test_objects_outlive_a_message_kept_in_its_queue_then_in_its_dlq():
    assert OBJECT_EXPIRY_DAYS > 2 * QUEUE_RETENTION_DAYS


def test_objects_outlive_the_longest_a_workflow_may_stay_open():
    from functions.common.claim_check import object_expiry_days
    from tests.pinned import MANIFEST as PINNED

    # The shipped workflows: the access request's 120 s deadline plus the manager's 24 h, 2 whole days.
    assert PINNED.longest_open_s() == 120 + 24 * 3600
    assert object_expiry_days(PINNED.longest_open_s()) == OBJECT_EXPIRY_DAYS + 2
    assert PINNED.longest_open_s(deadline_s=600, external_wait_s=3600) == 600 + 3600
    assert object_expiry_days(0) == OBJECT_EXPIRY_DAYS and object_expiry_days(86400) == OBJECT_EXPIRY_DAYS + 1


def test_status_notes_say_where_a_results_data_is_stored_or_why_it_could_not_be_read():
    from agentbus.cli import status_notes

    reference = {"bucket": BUCKET, "key": "fraud/k.json", "bytes": 1048713, "sha256": "0" * 64}
    view = {"status": "COMPLETED", "trigger": {"order_id": "o"}, "published": True, "results": {
        "fraud": {"data": {"evidence": "..."}, "claim_check": reference},
        "shipping": {"data": {"claim_check": reference}, "claim_check": reference,
                     "claim_check_error": "claim check s3://b/k: no such object (NoSuchKey)"}}}
    assert status_notes(view) == [
        f"fraud: its data (1048713 bytes of result) is stored at s3://{BUCKET}/fraud/k.json",
        "shipping: its data could not be read from its claim check: claim check s3://b/k: no such object (NoSuchKey)",
    ]


def test_the_local_runtime_gives_functions_the_bucket_and_its_threshold_option():
    from agentbus.local.runtime import LocalRuntime, RuntimeOptions
    from agentbus.resources import ConsumerResources, Resources
    from functions.manifest import MANIFEST

    resources = Resources(bus_name="agentbus", bus_arn="arn:bus", archive_name="a", schedule_group="g",
                          scheduler_role_arn="arn:role", tables={t.logical_name: t.logical_name
                                                                 for t in MANIFEST.all_tables},
                          consumers={"fraud": ConsumerResources("q", "qa", "d", "da")}, local=True,
                          claim_check_bucket=BUCKET)
    runtime = LocalRuntime("http://127.0.0.1:9", resources,
                           options=RuntimeOptions(claim_check_threshold_bytes=4096))
    settings = runtime.settings_for(MANIFEST.consumer("fraud"))
    assert (settings.claim_check_bucket, settings.claim_check_threshold) == (BUCKET, 4096)
    default = LocalRuntime("http://127.0.0.1:9", resources).settings_for(MANIFEST.consumer("fraud"))
    assert default.claim_check_threshold == DEFAULT_THRESHOLD_BYTES


def test_the_coordinators_slot_keeps_the_reference_of_big_data_and_a_note_without_one():
    from functions.coordinator.record import MAX_RESULT_DATA_BYTES, bounded_result

    reference = {"bucket": BUCKET, "key": "fraud/k.json", "bytes": 2_000_000, "sha256": "0" * 64}
    big = result_detail(MAX_RESULT_DATA_BYTES + 1)
    assert bounded_result(big, reference) == big | {"data": {"claim_check": reference}}
    assert "omitted" in bounded_result(big)["data"]
    small = result_detail(100)
    assert bounded_result(small, reference) == small  # small data stays, reference or not


def test_status_resolves_a_records_reference_only_from_the_agents_own_function(s3):
    """`agentbus status` checks a record's reference as a consumer checks one: an agent's data that has the shape
    of a reference to an object another function wrote (same request, same agent named inside) is not shown as
    that agent's data."""
    from types import SimpleNamespace

    from agentbus.operations import claim_checked
    from functions.manifest import MANIFEST

    detail = result_detail(100)
    body = json.dumps(detail, separators=(",", ":"))
    own = store(s3, prefix="fraud").offload(SOURCE, "Order Verified", detail, body)["claim_check"]
    other = store(s3, prefix="shipping").offload(SOURCE, "Order Verified", detail, body)["claim_check"]
    deployment = SimpleNamespace(resources=SimpleNamespace(claim_check_bucket=BUCKET), client=lambda _service: s3)

    def shown(reference: dict) -> dict:
        view = {"workflow": "order-fulfillment", "workflow_id": "ord-1", "results": {
            "fraud": {"detail_type": "Order Verified", "data": {"claim_check": reference}}}}
        return claim_checked(deployment, view, MANIFEST)["results"]["fraud"]  # type: ignore[arg-type]

    assert shown(own)["data"] == detail["data"] and "claim_check_error" not in shown(own)
    refused = shown(other)
    assert refused["data"] == {"claim_check": other}
    assert "written under 'shipping', not by the function that publishes source 'agentbus.agent.fraud'" in \
        refused["claim_check_error"]
