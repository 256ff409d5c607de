"""``evpm-storage``: everything that holds data — buckets and tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_cdk import Aws, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ssm as ssm

from infra import constants as c
from infra.constructs.secure_bucket import SecureBucket

if TYPE_CHECKING:
    from constructs import Construct

    from infra.config import InfraSettings


class StorageStack(Stack):
    """Raw telemetry, model and MLflow artifacts, predictions, labels, alert claims and ops alerts.

    Stateful resources live alone so the compute stacks can be destroyed and redeployed freely.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: InfraSettings, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        removal = settings.removal_policy

        # Target of the other buckets' server access logs (cdk-nag S1 accepts a log target
        # that does not log itself; logging into itself would log its own deliveries).
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            bucket_name=f"{c.ACCESS_LOGS_BUCKET_PREFIX}-{Aws.ACCOUNT_ID}-{Aws.REGION}",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs", expiration=Duration.days(c.ACCESS_LOG_EXPIRY_DAYS)
                )
            ],
            removal_policy=removal,
        )

        def bucket(cid: str, prefix: str, *, versioned: bool) -> s3.Bucket:
            return SecureBucket(
                self,
                cid,
                name_prefix=prefix,
                access_logs=self.access_logs,
                removal_policy=removal,
                versioned=versioned,
                noncurrent_expiry_days=c.NONCURRENT_VERSION_EXPIRY_DAYS,
            ).bucket

        self.raw_bucket = bucket("RawTelemetry", c.RAW_BUCKET_PREFIX, versioned=False)
        self.artifacts_bucket = bucket("ModelArtifacts", c.ARTIFACTS_BUCKET_PREFIX, versioned=True)
        self.mlflow_bucket = bucket("MlflowArtifacts", c.MLFLOW_BUCKET_PREFIX, versioned=True)

        self.predictions_table = self._table(
            "Predictions", c.PREDICTIONS_TABLE, removal, ttl=c.TTL_ATTRIBUTE
        )
        self.labels_table = self._table("Labels", c.LABELS_TABLE, removal, ttl=None)
        # One small item per vehicle + failure mode: the alert window the scorer claimed.
        # Expired claims are ignored by the scorer's condition; TTL only tidies them away.
        self.alert_dedup_table = dynamodb.Table(
            self,
            "AlertDedup",
            table_name=c.ALERT_DEDUP_TABLE,
            partition_key=dynamodb.Attribute(
                name=c.ALERT_DEDUP_KEY, type=dynamodb.AttributeType.STRING
            ),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute=c.TTL_ATTRIBUTE,
            removal_policy=removal,
        )

        # Ops alerts from Alertmanager: one item per occurrence of an alert (its fingerprint and
        # when it started), updated by each notification; the status index lists what fires
        # now and what resolved lately. TTL tidies old occurrences away.
        self.ops_alerts_table = dynamodb.Table(
            self,
            "OpsAlerts",
            table_name=c.OPS_ALERTS_TABLE,
            partition_key=dynamodb.Attribute(
                name=c.OPS_ALERTS_KEY, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(
                name=c.OPS_ALERTS_SORT_KEY, type=dynamodb.AttributeType.STRING
            ),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute=c.TTL_ATTRIBUTE,
            removal_policy=removal,
        )
        self.ops_alerts_table.add_global_secondary_index(
            index_name=c.OPS_ALERTS_STATUS_INDEX,
            partition_key=dynamodb.Attribute(name="status", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(
                name=c.OPS_ALERTS_STATUS_INDEX_SORT_KEY, type=dynamodb.AttributeType.STRING
            ),
            projection_type=dynamodb.ProjectionType.ALL,
        )

        # What serves (pins) and where the registry is. Created here, with neutral values, so
        # every stack can grant reads; the lifecycle and `evpm up` write the real values, and a
        # redeploy leaves them alone (CloudFormation rewrites a parameter only when its
        # template value changes).
        self.pins_parameter = ssm.StringParameter(
            self,
            "ServingPins",
            parameter_name=c.PINS_PARAMETER,
            string_value="{}",
            description="evpm serving pins: model name -> registered version (JSON)",
        )
        self.mlflow_uri_parameter = ssm.StringParameter(
            self,
            "MlflowUri",
            parameter_name=c.MLFLOW_URI_PARAMETER,
            string_value=settings.mlflow_uri,
            description="MLflow tracking server the functions read the registry from",
        )

        for key, value in (
            (c.OUT_RAW_BUCKET, self.raw_bucket.bucket_name),
            (c.OUT_ARTIFACTS_BUCKET, self.artifacts_bucket.bucket_name),
            (c.OUT_MLFLOW_BUCKET, self.mlflow_bucket.bucket_name),
            (c.OUT_PREDICTIONS_TABLE, self.predictions_table.table_name),
            (c.OUT_LABELS_TABLE, self.labels_table.table_name),
            (c.OUT_ALERT_DEDUP_TABLE, self.alert_dedup_table.table_name),
            (c.OUT_OPS_ALERTS_TABLE, self.ops_alerts_table.table_name),
        ):
            CfnOutput(self, key, value=value)

    def _table(
        self, cid: str, name: str, removal: RemovalPolicy, *, ttl: str | None
    ) -> dynamodb.Table:
        """A ``vehicle_id`` / ``ts`` table: one vehicle's rows, in time order, in one query."""
        return dynamodb.Table(
            self,
            cid,
            table_name=name,
            partition_key=dynamodb.Attribute(
                name=c.PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(name=c.SORT_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute=ttl,
            removal_policy=removal,
        )
