"""Issue 15, claim check: the bucket big event details go to (functions/common/claim_check.py) is encrypted with
the stack's key, TLS only, private, unversioned, expires its objects after a message's longest life in a queue
and its DLQ; each function writes only under its own prefix and reads every object."""

from __future__ import annotations

import pytest

from functions.common.claim_check import OBJECT_EXPIRY_DAYS, QUEUE_RETENTION_DAYS, object_expiry_days
from functions.common.settings import CLAIM_CHECK_BUCKET
from functions.manifest import MANIFEST
from infrastructure.consumer import RETENTION
from tests.infrastructure.template import ConsumerView, Synth, as_list, ref_id, statements

CONSUMERS = [consumer.name for consumer in MANIFEST.consumers]


def bucket(synth: Synth) -> tuple[str, dict]:
    return synth.one("AWS::S3::Bucket")


def test_the_bucket_is_encrypted_with_the_stacks_key(synth: Synth) -> None:
    _, resource = bucket(synth)
    [rule] = resource["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    key_id, _ = synth.one("AWS::KMS::Key")
    assert ref_id(rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]) == key_id
    assert rule["BucketKeyEnabled"] is True


def test_the_bucket_refuses_requests_without_tls(synth: Synth) -> None:
    bucket_id, _ = bucket(synth)
    [policy] = [p["Properties"]["PolicyDocument"] for p in synth.of_type("AWS::S3::BucketPolicy").values()
                if ref_id(p["Properties"]["Bucket"]) == bucket_id]
    denies = [s for s in statements(policy) if s["Effect"] == "Deny"
              and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}]
    assert denies and denies[0]["Principal"] == {"AWS": "*"} and "s3:*" in as_list(denies[0]["Action"])
    resources = [ref_id(r) or ref_id(r["Fn::Join"][1][0]) for r in as_list(denies[0]["Resource"])]
    assert set(resources) == {bucket_id}  # the bucket and its objects


def test_the_bucket_is_private_unversioned_and_retained(synth: Synth) -> None:
    _, resource = bucket(synth)
    properties = resource["Properties"]
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert properties.get("VersioningConfiguration", {}).get("Status") != "Enabled"
    # Retained, except when a failed first deploy rolls back the stack that created it (9B, F12).
    assert resource["DeletionPolicy"] == "RetainExceptOnCreate"
    assert resource["UpdateReplacePolicy"] == "Retain"
    # Its TLS-only policy stays with it (black-box pass 7C, F7: it was deleted by `make destroy`).
    [policy] = [r for r in synth.of_type("AWS::S3::BucketPolicy").values()
                if ref_id(r["Properties"]["Bucket"]) == bucket(synth)[0]]
    assert policy["DeletionPolicy"] == "RetainExceptOnCreate"


def test_objects_expire_after_a_message_can_wait_in_its_queue_and_then_in_its_dlq(synth: Synth) -> None:
    _, resource = bucket(synth)
    [rule] = resource["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled" and "Prefix" not in rule and "TagFilters" not in rule  # every object
    assert rule["ExpirationInDays"] == object_expiry_days(MANIFEST.longest_open_s()) > OBJECT_EXPIRY_DAYS
    assert RETENTION.to_days() == QUEUE_RETENTION_DAYS  # queues and DLQs alike (infrastructure/consumer.py)
    assert 2 * RETENTION.to_days() < OBJECT_EXPIRY_DAYS


def test_objects_outlive_the_longest_a_workflow_may_stay_open_with_the_deploys_overrides(tmp_path) -> None:
    """Black-box pass 7C, F3: -c deadline_seconds up to 366 days was accepted, but objects expired after 30: a
    workflow open for 35 days found the data of its first results gone, and so did its outcome's subscribers."""
    from app import create_app

    app, stack = create_app(context={"deadline_seconds": "3000000", "approval_wait_seconds": "31622400"},
                            outdir=str(tmp_path))
    template = app.synth().get_stack_by_name(stack.stack_name).template
    [resource] = [r for r in template["Resources"].values() if r["Type"] == "AWS::S3::Bucket"]
    [rule] = resource["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == OBJECT_EXPIRY_DAYS + -(-(3000000 + 31622400) // 86400)


def _s3_statements(view: ConsumerView) -> list[dict]:
    return [s for document in view.policies for s in statements(document)
            if any(str(a).startswith("s3:") for a in as_list(s["Action"]))]


def _object_arn(resource: object) -> tuple[str | None, str]:
    """(bucket logical id, path after the bucket ARN) of ``{"Fn::Join": ["", [GetAtt Arn, "/path"]]}``."""
    assert isinstance(resource, dict) and "Fn::Join" in resource, resource
    parts = resource["Fn::Join"][1]
    return ref_id(parts[0]), "".join(parts[1:])


@pytest.mark.parametrize("name", CONSUMERS)
def test_each_function_puts_only_under_its_own_prefix_and_reads_every_object(
        synth: Synth, consumers: dict[str, ConsumerView], name: str) -> None:
    bucket_id, _ = bucket(synth)
    grants = {}
    for statement in _s3_statements(consumers[name]):
        assert statement["Effect"] == "Allow" and "Condition" not in statement
        for action in as_list(statement["Action"]):
            if action != "s3:ListBucket":
                grants.setdefault(action, []).extend(_object_arn(r) for r in as_list(statement["Resource"]))
    assert grants == {"s3:PutObject": [(bucket_id, f"/{name}/*")], "s3:GetObject": [(bucket_id, "/*")]}


@pytest.mark.parametrize("name", CONSUMERS)
def test_each_function_may_list_the_bucket_so_a_missing_object_is_a_404_not_a_403(
        synth: Synth, consumers: dict[str, ConsumerView], name: str) -> None:
    """S3 answers GetObject of a missing key with 404 NoSuchKey only to a caller allowed s3:ListBucket on the
    bucket, with 403 AccessDenied to anyone else (GetObject API reference, Permissions). The functions refuse a
    claim check whose object is gone on NoSuchKey (functions/common/claim_check.py); a 403 would be retried as
    transient and dead-lettered instead."""
    bucket_id, _ = bucket(synth)
    listed = [resource for statement in _s3_statements(consumers[name])
              if "s3:ListBucket" in as_list(statement["Action"]) for resource in as_list(statement["Resource"])]
    assert listed == [{"Fn::GetAtt": [bucket_id, "Arn"]}]


@pytest.mark.parametrize("name", CONSUMERS)
def test_every_function_is_told_the_bucket(synth: Synth, consumers: dict[str, ConsumerView], name: str) -> None:
    bucket_id, _ = bucket(synth)
    variables = consumers[name].function["Properties"]["Environment"]["Variables"]
    assert ref_id(variables[CLAIM_CHECK_BUCKET]) == bucket_id


def test_the_access_log_acknowledgement_is_on_the_bucket_with_its_reason(synth: Synth) -> None:
    from aws_cdk import Validations

    key = Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    bucket_path = synth.stack.claim_checks.bucket.node.path
    acknowledged = {}
    for construct in synth.app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == key:
                for rule, reason in entry.data.items():
                    acknowledged.setdefault(rule.removeprefix("Annotation::"), []).append(
                        (construct.node.path, reason))
    [(path, reason)] = acknowledged["AwsSolutions-S1"]
    assert path == bucket_path and "CloudTrail" in reason
