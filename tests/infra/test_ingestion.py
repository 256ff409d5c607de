"""evpm-ingestion: the telemetry stream and the scoring DLQ."""

from __future__ import annotations

from aws_cdk.assertions import Match

from infra import constants as c
from tests.infra.helpers import only

STACK = c.INGESTION_STACK


def test_stream_has_two_encrypted_shards(template) -> None:
    template(STACK).has_resource_properties(
        "AWS::Kinesis::Stream",
        {
            "Name": "ev-telemetry",
            "ShardCount": 2,
            "StreamEncryption": {"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"},
        },
    )


def test_dlq_is_encrypted_keeps_14_days_and_requires_tls(template) -> None:
    tpl = template(STACK)
    lid, queue = only(tpl, "AWS::SQS::Queue")
    assert queue["Properties"]["QueueName"] == "evpm-scoring-dlq"
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    tpl.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [{"Ref": lid}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            },
        },
    )
