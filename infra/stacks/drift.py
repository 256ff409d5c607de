"""``evpm-drift``: the drift monitor on a schedule, its history, the outcomes, and retraining
that starts itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_cdk import Aws, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs

from infra import constants as c
from infra.constructs.layers import EvpmLayers
from infra.constructs.python_function import PythonFunction
from infra.nag import suppress

if TYPE_CHECKING:
    from aws_cdk import aws_stepfunctions as sfn
    from constructs import Construct

    from infra.config import InfraSettings
    from infra.constructs.model_access import ModelAccess


def _table(
    scope: Construct, cid: str, name: str, key: str, sort: str | None, removal: RemovalPolicy
) -> dynamodb.Table:
    return dynamodb.Table(
        scope,
        cid,
        table_name=name,
        partition_key=dynamodb.Attribute(name=key, type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name=sort, type=dynamodb.AttributeType.STRING)
        if sort
        else None,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        removal_policy=removal,
    )


class DriftStack(Stack):
    """``evpm-drift-monitor`` judges the last hour of captured data against the pinned versions'
    profiles every ``monitor_schedule_minutes`` (and on demand), writes ``evpm-drift-history``,
    and puts ``DriftDetected`` / ``QualityDegraded`` on the alert bus; a rule there invokes
    ``evpm-retrain``, which starts the lifecycle at most once at a time and once per cool-down.
    ``evpm-outcomes`` holds ground truth's outcomes (vehicle, time), which the monitor joins;
    ``evpm-labels`` files them: a CSV dropped under ``labels/`` in the labels bucket.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: InfraSettings,
        raw_bucket: s3.IBucket,
        predictions_table: dynamodb.ITable,
        labels_table: dynamodb.ITable,
        model_access: ModelAccess,
        state_machine: sfn.IStateMachine,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        removal = settings.removal_policy
        self.history = _table(
            self, "History", c.DRIFT_HISTORY_TABLE, "model", "window_end", removal
        )
        self.outcomes = _table(self, "Outcomes", c.OUTCOMES_TABLE, "vehicle_id", "at", removal)
        self.triggers = _table(self, "Triggers", c.RETRAIN_TRIGGERS_TABLE, "id", None, removal)
        bus = events.EventBus.from_event_bus_name(self, "AlertBus", c.ALERT_BUS)
        layers = EvpmLayers(self, "Layers", settings=settings)

        monitor = PythonFunction(
            self,
            "Monitor",
            function_name=c.MONITOR_FUNCTION,
            code_dir=settings.function_dir("monitor"),
            layers=layers.all,
            environment={
                "CAPTURE_BUCKET": raw_bucket.bucket_name,
                "CAPTURE_PREFIX": c.CAPTURE_PREFIX,
                "OUTCOMES_TABLE": self.outcomes.table_name,
                "LABELS_TABLE": labels_table.table_name,
                "HISTORY_TABLE": self.history.table_name,
                "ALERT_BUS_NAME": c.ALERT_BUS,
                "WINDOW_MINUTES": str(c.MONITOR_WINDOW_MINUTES),
                "POWERTOOLS_SERVICE_NAME": c.MONITOR_FUNCTION,
                "POWERTOOLS_METRICS_NAMESPACE": c.METRICS_NAMESPACE,
                "LOG_LEVEL": settings.log_level,
            },
            memory_mb=c.MONITOR_MEMORY_MB,
            timeout_s=c.MONITOR_TIMEOUT_S,
            removal_policy=removal,
        )
        self.monitor = monitor.function
        model_access.grant_read(monitor)  # the pinned versions and their profiles
        # The capture: list its prefix, read its objects; nothing else of the raw bucket.
        monitor.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[raw_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{c.CAPTURE_PREFIX}*"]}},
            )
        )
        monitor.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[raw_bucket.arn_for_objects(f"{c.CAPTURE_PREFIX}*")],
            )
        )
        self.outcomes.grant(self.monitor, "dynamodb:Scan")
        labels_table.grant(self.monitor, "dynamodb:Scan")  # /feedback reports, read as outcomes
        self.history.grant(self.monitor, "dynamodb:PutItem")
        bus.grant_put_events_to(self.monitor)
        suppress(
            monitor.role,
            "AwsSolutions-IAM5",
            "The monitor reads the data capture under the raw bucket's capture/ prefix only; "
            "the wildcard is the object key inside that prefix.",
            applies_to=[{"regex": "/^Resource::.*RawTelemetry.*/capture/\\*$/g"}],
        )
        events.Rule(
            self,
            "Schedule",
            description="run the drift monitor on the last window of captured data",
            schedule=events.Schedule.rate(
                Duration.minutes(max(settings.monitor_schedule_minutes, 1))
            ),
            enabled=settings.monitor_schedule_minutes > 0,
            targets=[targets.LambdaFunction(self.monitor, retry_attempts=0)],
        )

        retrain = PythonFunction(
            self,
            "Retrain",
            function_name=c.RETRAIN_FUNCTION,
            code_dir=settings.function_dir("retrain"),
            layers=layers.all,
            environment={
                "STATE_MACHINE_ARN": state_machine.state_machine_arn,
                "TRIGGERS_TABLE": self.triggers.table_name,
                "COOLDOWN_SECONDS": str(settings.retrain_cooldown_seconds),
                "POWERTOOLS_SERVICE_NAME": c.RETRAIN_FUNCTION,
                "POWERTOOLS_METRICS_NAMESPACE": c.METRICS_NAMESPACE,
                "LOG_LEVEL": settings.log_level,
            },
            memory_mb=256,
            timeout_s=30,
            removal_policy=removal,
        )
        self.retrain = retrain.function
        self.triggers.grant(
            self.retrain, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"
        )
        state_machine.grant_start_execution(self.retrain)
        retrain.role.add_to_policy(
            iam.PolicyStatement(
                actions=["states:ListExecutions"], resources=[state_machine.state_machine_arn]
            )
        )
        undelivered = sqs.Queue(
            self,
            "UndeliveredTriggers",
            queue_name=c.RETRAIN_DLQ,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(c.DLQ_RETENTION_DAYS),
            removal_policy=removal,
        )
        suppress(
            undelivered,
            "AwsSolutions-SQS3",
            "This is the retraining rule's dead-letter queue; it has none of its own.",
        )
        events.Rule(
            self,
            "OnDrift",
            event_bus=bus,
            description="DriftDetected / QualityDegraded from the monitor start retraining",
            event_pattern=events.EventPattern(
                source=[c.MONITOR_EVENT_SOURCE], detail_type=["DriftDetected", "QualityDegraded"]
            ),
            targets=[
                targets.LambdaFunction(
                    self.retrain,
                    dead_letter_queue=undelivered,
                    retry_attempts=4,
                    max_event_age=Duration.hours(2),
                )
            ],
        )

        self._labels_intake(settings, predictions_table, removal)

        CfnOutput(self, c.OUT_MONITOR_FUNCTION, value=self.monitor.function_name)
        CfnOutput(self, c.OUT_RETRAIN_FUNCTION, value=self.retrain.function_name)
        CfnOutput(self, c.OUT_DRIFT_HISTORY_TABLE, value=self.history.table_name)
        CfnOutput(self, c.OUT_OUTCOMES_TABLE, value=self.outcomes.table_name)
        CfnOutput(self, c.OUT_RETRAIN_TRIGGERS_TABLE, value=self.triggers.table_name)

    def _labels_intake(
        self, settings: InfraSettings, predictions: dynamodb.ITable, removal: RemovalPolicy
    ) -> None:
        """The labels bucket and the function its ``labels/`` uploads invoke.

        The notification is the bucket's own ``NotificationConfiguration`` (CloudFormation's),
        not CDK's ``add_event_notification``: that one is a custom resource backed by a Lambda
        on the newest Python runtime, which the emulator need not have. The bucket's name is
        fixed before deploy so the invoke permission can name it without a cycle.
        """
        layers = EvpmLayers(self, "LabelsLayers", settings=settings)
        intake = PythonFunction(
            self,
            "Labels",
            function_name=c.LABELS_FUNCTION,
            code_dir=settings.function_dir("labels"),
            layers=layers.all,
            environment={
                "OUTCOMES_TABLE": self.outcomes.table_name,
                "PREDICTIONS_TABLE": predictions.table_name,
                "LABELS_PREFIX": c.LABELS_PREFIX,
                "POWERTOOLS_SERVICE_NAME": c.LABELS_FUNCTION,
                "POWERTOOLS_METRICS_NAMESPACE": c.METRICS_NAMESPACE,
                "LOG_LEVEL": settings.log_level,
            },
            memory_mb=512,
            timeout_s=300,
            removal_policy=removal,
        )
        name = f"{c.LABELS_BUCKET_PREFIX}-{Aws.ACCOUNT_ID}-{Aws.REGION}"
        permission = lambda_.CfnPermission(
            self,
            "LabelsInvoke",
            action="lambda:InvokeFunction",
            function_name=intake.function.function_arn,
            principal="s3.amazonaws.com",
            source_account=Aws.ACCOUNT_ID,
            source_arn=f"arn:{Aws.PARTITION}:s3:::{name}",  # by name, as below
        )
        bucket = s3.Bucket(
            self,
            "LabelsBucket",
            bucket_name=name,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=removal,
        )
        cfn = bucket.node.default_child
        cfn.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            lambda_configurations=[
                s3.CfnBucket.LambdaConfigurationProperty(
                    event="s3:ObjectCreated:*",
                    function=intake.function.function_arn,
                    filter=s3.CfnBucket.NotificationFilterProperty(
                        s3_key=s3.CfnBucket.S3KeyFilterProperty(
                            rules=[
                                s3.CfnBucket.FilterRuleProperty(
                                    name="prefix", value=c.LABELS_PREFIX
                                )
                            ]
                        )
                    ),
                )
            ]
        )
        cfn.add_dependency(permission)
        suppress(
            bucket,
            "AwsSolutions-S1",
            "Label files are their own audit trail: every stored outcome names the file it came "
            "from, and rejected rows are written beside it with their reasons. Server access "
            "logs would go to the storage stack's log bucket, whose policy would then have to "
            "name this bucket (a cycle between the two stacks).",
        )
        # Read the files, write the rejects beside them; nothing else of the bucket. (By name:
        # the bucket's ARN would make the function's policy wait for the bucket, which waits
        # for the invoke permission, which waits for the function.)
        arn = f"arn:{Aws.PARTITION}:s3:::{name}"
        intake.role.add_to_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[f"{arn}/{c.LABELS_PREFIX}*"])
        )
        intake.role.add_to_policy(
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[f"{arn}/labels-rejects/*"])
        )
        suppress(
            intake.role,
            "AwsSolutions-IAM5",
            "The intake reads label files under labels/ and writes their rejects under "
            "labels-rejects/; the wildcards are the object keys inside those prefixes.",
            applies_to=[{"regex": "/^Resource::.*evpm-labels-.*/labels(-rejects)?/\\*$/g"}],
        )
        self.outcomes.grant(intake.function, "dynamodb:PutItem", "dynamodb:BatchWriteItem")
        predictions.grant(intake.function, "dynamodb:Query")  # is the vehicle known?
        self.labels_bucket = bucket
        CfnOutput(self, c.OUT_LABELS_BUCKET, value=bucket.bucket_name)
