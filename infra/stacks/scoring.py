"""``evpm-scoring``: the scorer, its Kinesis event source mapping, and the alert bus it feeds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources

from infra import constants as c
from infra.constructs.alert_bus import AlertBus
from infra.constructs.layers import EvpmLayers
from infra.constructs.python_function import PythonFunction
from infra.nag import suppress

if TYPE_CHECKING:
    from aws_cdk import aws_dynamodb as dynamodb
    from aws_cdk import aws_kinesis as kinesis
    from aws_cdk import aws_s3 as s3
    from aws_cdk import aws_sqs as sqs
    from constructs import Construct

    from infra.config import InfraSettings
    from infra.constructs.model_access import ModelAccess


class ScoringStack(Stack):
    """``evpm-scorer`` reads ``ev-telemetry`` and writes ``evpm-predictions``.

    Failure handling is the mapping's, not the handler's: the handler reports the records it
    could not score (``ReportBatchItemFailures``), the mapping retries from the first failed
    record up to ``SCORER_RETRY_ATTEMPTS`` times, then sends the batch's coordinates to the DLQ.
    Bisecting is off because the emulator ignores it and partial failures already narrow the
    retry to the bad record. Critical predictions become ``VehicleAlert`` events on the
    ``evpm-alerts`` bus, deduplicated through ``evpm-alert-dedup``. Stored predictions are
    captured (inputs and outputs, one object per batch) under ``capture/`` in the raw bucket,
    for the drift monitor.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: InfraSettings,
        stream: kinesis.IStream,
        dlq: sqs.IQueue,
        predictions_table: dynamodb.ITable,
        alert_dedup_table: dynamodb.ITable,
        model_access: ModelAccess,
        capture_bucket: s3.IBucket,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        layers = EvpmLayers(self, "Layers", settings=settings)
        alerts = AlertBus(self, "Alerts", removal_policy=settings.removal_policy)
        scorer = PythonFunction(
            self,
            "Scorer",
            function_name=c.SCORER_FUNCTION,
            code_dir=settings.function_dir("scorer"),
            layers=layers.all,
            environment={
                "PREDICTIONS_TABLE": predictions_table.table_name,
                "DLQ_URL": dlq.queue_url,
                "ALERT_BUS_NAME": alerts.bus.event_bus_name,
                "ALERT_DEDUP_TABLE": alert_dedup_table.table_name,
                "ALERT_WINDOW_SECONDS": str(c.ALERT_WINDOW_SECONDS),
                "CAPTURE_BUCKET": capture_bucket.bucket_name,
                "CAPTURE_PREFIX": c.CAPTURE_PREFIX,
                "CAPTURE_SAMPLING": str(settings.capture_sampling),
                "POWERTOOLS_SERVICE_NAME": c.SCORER_FUNCTION,
                "POWERTOOLS_METRICS_NAMESPACE": c.METRICS_NAMESPACE,
                "LOG_LEVEL": settings.log_level,
            },
            memory_mb=c.SCORER_MEMORY_MB,
            timeout_s=c.SCORER_TIMEOUT_S,
            removal_policy=settings.removal_policy,
        )
        self.function: lambda_.Function = scorer.function
        model_access.grant_serving(scorer)

        # The event source grants the stream read itself; the DLQ destination grants send.
        self.function.add_event_source(
            sources.KinesisEventSource(
                stream,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=c.SCORER_BATCH_SIZE,
                max_batching_window=Duration.seconds(c.SCORER_BATCHING_WINDOW_S),
                report_batch_item_failures=True,
                retry_attempts=c.SCORER_RETRY_ATTEMPTS,
                bisect_batch_on_error=False,
                on_failure=sources.SqsDlq(dlq),
            )
        )
        predictions_table.grant_write_data(self.function)
        # A vehicle's past is read back on a history miss (evpm.past_readings): Query only.
        predictions_table.grant(self.function, "dynamodb:Query")
        dlq.grant_send_messages(self.function)
        # Claims are put, confirmed and released by key; nothing reads or scans them.
        alert_dedup_table.grant(
            self.function, "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"
        )
        alerts.bus.grant_put_events_to(self.function)
        # Data capture for the drift monitor: PutObject under capture/ only, nothing read.
        scorer.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                resources=[capture_bucket.arn_for_objects(f"{c.CAPTURE_PREFIX}*")],
            )
        )
        suppress(
            scorer.role,
            "AwsSolutions-IAM5",
            "The scorer writes its data capture as new objects under the raw bucket's capture/ "
            "prefix only (PutObject); the wildcard is the object key inside that prefix.",
            applies_to=[{"regex": "/^Resource::.*RawTelemetry.*/capture/\\*$/g"}],
        )

        CfnOutput(self, c.OUT_SCORER_FUNCTION, value=self.function.function_name)
        CfnOutput(self, c.OUT_ALERT_BUS, value=alerts.bus.event_bus_name)
        CfnOutput(self, c.OUT_ALERTS_AUDIT_QUEUE_URL, value=alerts.audit_queue.queue_url)
