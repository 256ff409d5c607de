"""``evpm-ingestion``: the telemetry stream and the queue for records scoring gave up on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_sqs as sqs

from infra import constants as c
from infra.nag import suppress

if TYPE_CHECKING:
    from constructs import Construct

    from infra.config import InfraSettings


class IngestionStack(Stack):
    """Kinesis ``ev-telemetry`` and SQS ``evpm-scoring-dlq``.

    The DLQ lives here, beside the stream it drains, rather than with the scorer: it outlives
    redeploys of the function and keeps the failed records' stream coordinates.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: InfraSettings, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.stream = kinesis.Stream(
            self,
            "Telemetry",
            stream_name=c.TELEMETRY_STREAM,
            shard_count=c.TELEMETRY_SHARDS,
            stream_mode=kinesis.StreamMode.PROVISIONED,
            encryption=kinesis.StreamEncryption.MANAGED,
            retention_period=Duration.hours(24),
            removal_policy=settings.removal_policy,
        )
        self.dlq = sqs.Queue(
            self,
            "ScoringDlq",
            queue_name=c.SCORING_DLQ,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(c.DLQ_RETENTION_DAYS),
            removal_policy=settings.removal_policy,
        )
        suppress(
            self.dlq,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter destination: the scorer's Kinesis event "
            "source mapping sends failed batches' coordinates here (OnFailure), so it has no "
            "DLQ of its own and is not the redrive target of another queue.",
        )

        CfnOutput(self, c.OUT_STREAM_NAME, value=self.stream.stream_name)
        CfnOutput(self, c.OUT_STREAM_ARN, value=self.stream.stream_arn)
        CfnOutput(self, c.OUT_DLQ_URL, value=self.dlq.queue_url)
