"""``evpm-lifecycle``: the model-lifecycle state machine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn

from infra import constants as c
from infra.nag import suppress

if TYPE_CHECKING:
    from aws_cdk import aws_s3 as s3
    from constructs import Construct

    from infra.config import InfraSettings


class LifecycleStack(Stack):
    """``evpm-model-lifecycle``, defined in ``state_machines/model-lifecycle.asl.json``.

    The definition stays a file (readable, diffable, testable with moto's ASL runner) and CDK
    only fills its ``${Placeholders}`` with resource names.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: InfraSettings,
        artifacts_bucket: s3.IBucket,
        mlflow_bucket: s3.IBucket,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        definition = settings.state_machines_dir / c.LIFECYCLE_DEFINITION_FILE
        log_group = logs.LogGroup(
            self,
            "Logs",
            # The vended-logs prefix keeps the log group's resource policy from growing per
            # state machine, which is what AWS recommends for Step Functions.
            log_group_name=f"/aws/vendedlogs/states/{c.LIFECYCLE_STATE_MACHINE}",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=settings.removal_policy,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "ModelLifecycle",
            state_machine_name=c.LIFECYCLE_STATE_MACHINE,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_file(str(definition)),
            definition_substitutions={
                "ArtifactsBucket": artifacts_bucket.bucket_name,
                "MlflowBucket": mlflow_bucket.bucket_name,
            },
            logs=sfn.LogOptions(
                destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            tracing_enabled=True,
            timeout=Duration.minutes(c.LIFECYCLE_TIMEOUT_MIN),
            removal_policy=settings.removal_policy,
        )
        suppress(
            self.state_machine.role,
            "AwsSolutions-IAM5",
            "Step Functions log delivery (logs:CreateLogDelivery, GetLogDelivery, "
            "PutResourcePolicy, ...) and X-Ray (xray:PutTraceSegments, ...) do not support "
            "resource-level permissions; AWS documents '*' as the resource for both.",
            applies_to=["Resource::*"],
        )
        CfnOutput(self, c.OUT_STATE_MACHINE_ARN, value=self.state_machine.state_machine_arn)
