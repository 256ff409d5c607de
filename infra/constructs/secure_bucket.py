"""An S3 bucket with the settings every evpm bucket needs."""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct


class SecureBucket(Construct):
    """Encrypted, private, TLS-only bucket that logs access to a shared log bucket.

    Names are ``<prefix>-<account>-<region>`` so they are unique per account and region without
    a lookup at synth time.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        access_logs: s3.IBucket,
        removal_policy: RemovalPolicy,
        versioned: bool = False,
        noncurrent_expiry_days: int = 90,
    ) -> None:
        super().__init__(scope, construct_id)
        lifecycle = (
            [
                s3.LifecycleRule(
                    id="expire-noncurrent",
                    noncurrent_version_expiration=Duration.days(noncurrent_expiry_days),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ]
            if versioned
            else [
                s3.LifecycleRule(
                    id="abort-multipart", abort_incomplete_multipart_upload_after=Duration.days(7)
                )
            ]
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=f"{name_prefix}-{Aws.ACCOUNT_ID}-{Aws.REGION}",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=versioned,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=f"{name_prefix}/",
            lifecycle_rules=lifecycle,
            removal_policy=removal_policy,
        )
