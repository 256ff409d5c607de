"""evpm-storage: buckets are private, encrypted and TLS-only; tables have the agreed keys."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

from infra import constants as c
from tests.infra.helpers import logical_id, resources

STACK = c.STORAGE_STACK


def test_every_bucket_is_encrypted_private_and_tls_only(template) -> None:
    # GIVEN the storage template
    tpl = template(STACK)
    buckets = resources(tpl, "AWS::S3::Bucket")
    # THEN there are the three data buckets and the access-log bucket
    assert len(buckets) == 4
    for lid, bucket in buckets.items():
        props = bucket["Properties"]
        sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert sse[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256", lid
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, lid
        # AND a bucket policy denies any request without TLS
        tpl.has_resource_properties(
            "AWS::S3::BucketPolicy",
            {
                "Bucket": {"Ref": lid},
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Action": "s3:*",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                },
            },
        )


@pytest.mark.parametrize(
    ("prefix", "versioned"),
    [
        (c.RAW_BUCKET_PREFIX, False),
        (c.ARTIFACTS_BUCKET_PREFIX, True),
        (c.MLFLOW_BUCKET_PREFIX, True),
    ],
)
def test_data_buckets_log_access_and_version_artifacts(template, prefix, versioned) -> None:
    tpl = template(STACK)
    log_bucket = next(
        lid
        for lid, b in resources(tpl, "AWS::S3::Bucket").items()
        if "LoggingConfiguration" not in b["Properties"]
    )
    [bucket] = [
        b["Properties"]
        for b in resources(tpl, "AWS::S3::Bucket").values()
        if b["Properties"].get("LoggingConfiguration", {}).get("LogFilePrefix") == f"{prefix}/"
    ]
    assert bucket["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": log_bucket}
    assert ("VersioningConfiguration" in bucket) is versioned
    if versioned:
        assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}


@pytest.mark.parametrize("name", [c.PREDICTIONS_TABLE, c.LABELS_TABLE])
def test_tables_key_on_vehicle_and_time_and_recover(template, name) -> None:
    tpl = template(STACK)
    tpl.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TableName": name,
            "KeySchema": [
                {"AttributeName": "vehicle_id", "KeyType": "HASH"},
                {"AttributeName": "ts", "KeyType": "RANGE"},
            ],
            "AttributeDefinitions": Match.array_equals(
                [
                    {"AttributeName": "vehicle_id", "AttributeType": "S"},
                    {"AttributeName": "ts", "AttributeType": "S"},
                ]
            ),
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True},
        },
    )


def test_predictions_expire_and_labels_do_not(template) -> None:
    tpl = template(STACK)
    predictions = logical_id(tpl, "AWS::DynamoDB::Table", TableName=c.PREDICTIONS_TABLE)
    labels = logical_id(tpl, "AWS::DynamoDB::Table", TableName=c.LABELS_TABLE)
    tables = resources(tpl, "AWS::DynamoDB::Table")
    assert tables[predictions]["Properties"]["TimeToLiveSpecification"] == {
        "AttributeName": "expires_at",
        "Enabled": True,
    }
    assert "TimeToLiveSpecification" not in tables[labels]["Properties"]


def test_ops_alerts_table_keys_on_fingerprint_and_start_and_lists_by_status(template) -> None:
    # GIVEN the ops alerts table (Alertmanager's webhook writes it, GET /alerts reads it)
    tpl = template(STACK)
    lid = logical_id(tpl, "AWS::DynamoDB::Table", TableName=c.OPS_ALERTS_TABLE)
    props = resources(tpl, "AWS::DynamoDB::Table")[lid]["Properties"]
    # THEN one item per occurrence of an alert: its fingerprint and when it started
    assert props["KeySchema"] == [
        {"AttributeName": "fingerprint", "KeyType": "HASH"},
        {"AttributeName": "starts_at", "KeyType": "RANGE"},
    ]
    # AND a status index, newest update first, holding whole items
    [index] = props["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "by-status"
    assert index["KeySchema"] == [
        {"AttributeName": "status", "KeyType": "HASH"},
        {"AttributeName": "updated_at", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "ALL"}
    # AND old occurrences expire, the table recovers and is encrypted
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"


def test_ops_alert_names_match_the_domain() -> None:
    from evpm import ops_alerts

    assert c.OPS_ALERTS_KEY == ops_alerts.PARTITION_KEY
    assert c.OPS_ALERTS_SORT_KEY == ops_alerts.SORT_KEY
    assert c.OPS_ALERTS_STATUS_INDEX == ops_alerts.STATUS_INDEX
    assert c.OPS_ALERTS_STATUS_INDEX_SORT_KEY == ops_alerts.STATUS_INDEX_SORT_KEY
    assert c.OPS_ALERT_SOURCE == ops_alerts.OPS_ALERT_SOURCE
    assert c.OPS_ALERT_DETAIL_TYPE == ops_alerts.OPS_ALERT_DETAIL_TYPE
    assert c.WEBHOOK_TOKEN_PARAMETER == ops_alerts.WEBHOOK_TOKEN_PARAMETER
    assert c.TTL_ATTRIBUTE in ops_alerts.OpsAlert.model_fields
