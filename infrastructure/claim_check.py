"""The claim-check bucket: event details too big for the bus (functions/common/claim_check.py).

Encrypted with the stack's key (SSE-KMS, with an S3 bucket key so each object does not cost a KMS call), TLS
only, every public access blocked, ACLs off, no versioning (an object is written once under a key derived from
its content and never changed), and every object expires ``OBJECT_EXPIRY_DAYS`` after the longest a workflow
may stay open (``claim_check.object_expiry_days``): longer than a record or an event refers to it. Each
function may put objects only under its own prefix (its name) and read every object: a function resolves
references from any publisher, but cannot write where another's results live. Each may also list the bucket,
so that S3 tells it a missing object is missing (404) rather than denied (403).
"""

from __future__ import annotations

from typing import cast

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct


class ClaimCheckBucket(Construct):
    def __init__(self, scope: Construct, id: str, *, key: kms.IKey, expiry_days: int) -> None:
        super().__init__(scope, id)
        self.bucket = s3.Bucket(
            self, "Bucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=False,
            lifecycle_rules=[s3.LifecycleRule(
                id="expire-claim-checks",
                expiration=Duration.days(expiry_days),
                abort_incomplete_multipart_upload_after=Duration.days(1),
            )],
            # Emptied by its lifecycle; CloudFormation cannot delete a bucket that still holds objects. Deleted,
            # still empty, when the operation that created it rolls back (RetainExceptOnCreate: a failed first
            # deploy leaves no bucket behind).
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        # Retained with the bucket: without it, the bucket kept after `make destroy` would take plain-HTTP requests.
        assert self.bucket.policy is not None  # enforce_ssl makes it
        self.bucket.policy.apply_removal_policy(RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE)

    @property
    def cfn_bucket(self) -> s3.CfnBucket:
        """The L1 bucket (cdk-nag names findings after its logical id)."""
        return cast(s3.CfnBucket, self.bucket.node.default_child)

    def objects_arn(self, prefix: str | None = None) -> str:
        """Every object of the bucket, or those under ``prefix/``."""
        return self.bucket.arn_for_objects(f"{prefix}/*" if prefix else "*")

    def grant(self, role: iam.IRole, prefix: str) -> None:
        """``role`` may put objects under ``prefix/`` only, read every object and tell a missing one (KMS: the
        role's key grant)."""
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="ClaimCheckPutOwnPrefix",
            actions=["s3:PutObject"],
            resources=[self.objects_arn(prefix)],
        ))
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="ClaimCheckReadAll",
            actions=["s3:GetObject"],
            resources=[self.objects_arn()],
        ))
        # Without s3:ListBucket, S3 answers a GetObject of a missing key with 403 AccessDenied, not 404 NoSuchKey
        # (GetObject API reference, "Permissions"): an expired or deleted claim check would look like a denied
        # read, be retried as transient and dead-lettered, instead of being refused at once as one that can
        # never be resolved (functions/common/claim_check.py). The bucket itself, no prefix: S3 decides 404 vs
        # 403 on the bucket-level permission.
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="ClaimCheckTellMissingObjects",
            actions=["s3:ListBucket"],
            resources=[self.bucket.bucket_arn],
        ))
