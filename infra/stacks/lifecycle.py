"""``evpm-lifecycle``: the model-lifecycle state machine, its steps function and training queue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn

from infra import constants as c
from infra.constructs.layers import EvpmLayers
from infra.constructs.python_function import PythonFunction
from infra.nag import suppress

if TYPE_CHECKING:
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_s3 as s3
    from constructs import Construct

    from infra.config import InfraSettings
    from infra.constructs.model_access import ModelAccess


class LifecycleStack(Stack):
    """``evpm-model-lifecycle``, defined in ``state_machines/model-lifecycle.asl.json``.

    The definition stays a file (readable, diffable, testable with moto's ASL runner) and CDK
    only fills its ``${Placeholders}``: the training queue (the Train step hands its task
    token to the training worker through it) and the ``evpm-lifecycle`` function that runs
    Validate, Register, Promote, SmokeTest and Rollback.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: InfraSettings,
        artifacts_bucket: s3.IBucket,
        mlflow_bucket: s3.IBucket,
        model_access: ModelAccess,
        api_function: lambda_.IFunction,
        scorer_function: lambda_.IFunction,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.training_dlq = sqs.Queue(
            self,
            "TrainingDlq",
            queue_name=f"{c.TRAINING_QUEUE}-dlq",
            enforce_ssl=True,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            retention_period=Duration.days(14),
        )
        self.training_queue = sqs.Queue(
            self,
            "TrainingQueue",
            queue_name=c.TRAINING_QUEUE,
            enforce_ssl=True,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            visibility_timeout=Duration.seconds(c.TRAINING_QUEUE_VISIBILITY_S),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=3, queue=self.training_dlq),
        )
        suppress(
            self.training_dlq,
            "AwsSolutions-SQS3",
            "This is the training queue's dead-letter queue; it has none of its own.",
        )

        layers = EvpmLayers(self, "Layers", settings=settings)
        steps = PythonFunction(
            self,
            "Steps",
            function_name=c.LIFECYCLE_FUNCTION,
            code_dir=settings.function_dir("lifecycle"),
            layers=layers.all,
            environment={
                "ARTIFACTS_BUCKET": artifacts_bucket.bucket_name,
                "PINS_PARAMETER": model_access.pins.parameter_name,
                "MLFLOW_URI_PARAMETER": model_access.mlflow_uri.parameter_name,
                "API_FUNCTION": api_function.function_name,
                "SCORER_FUNCTION": scorer_function.function_name,
                "SMOKE_TIMEOUT_SECONDS": str(c.SMOKE_TIMEOUT_S),
                "POWERTOOLS_SERVICE_NAME": c.LIFECYCLE_FUNCTION,
                "LOG_LEVEL": settings.log_level,
            },
            memory_mb=c.LIFECYCLE_MEMORY_MB,
            timeout_s=c.LIFECYCLE_TIMEOUT_S,
            removal_policy=settings.removal_policy,
        )
        self.function = steps.function
        # Least privilege: write only gate reports, read/write only the pins, read the URI,
        # invoke only the two serving functions (the canaries).
        artifacts_bucket.grant_put(steps.function, "lifecycle/*")
        model_access.pins.grant_read(steps.function)
        model_access.pins.grant_write(steps.function)
        model_access.mlflow_uri.grant_read(steps.function)
        steps.role.add_to_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[api_function.function_arn, scorer_function.function_arn],
            )
        )

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
                "TrainingQueueUrl": self.training_queue.queue_url,
                "LifecycleFunctionArn": steps.function.function_arn,
            },
            logs=sfn.LogOptions(
                destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            tracing_enabled=True,
            timeout=Duration.minutes(c.LIFECYCLE_TIMEOUT_MIN),
            removal_policy=settings.removal_policy,
        )
        self.training_queue.grant_send_messages(self.state_machine)
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"], resources=[steps.function.function_arn]
            )
        )
        suppress(
            self.state_machine.role,
            "AwsSolutions-IAM5",
            "Step Functions log delivery (logs:CreateLogDelivery, GetLogDelivery, "
            "PutResourcePolicy, ...) and X-Ray (xray:PutTraceSegments, ...) do not support "
            "resource-level permissions; AWS documents '*' as the resource for both.",
            applies_to=["Resource::*"],
        )
        suppress(
            steps.role,
            "AwsSolutions-IAM5",
            "Gate reports are written under the artifacts bucket's lifecycle/ prefix only; "
            "the wildcard is the object key inside that prefix.",
            applies_to=[
                "Action::s3:Abort*",
                {"regex": "/^Resource::.*ModelArtifacts.*/lifecycle/\\*$/g"},
            ],
        )
        CfnOutput(self, c.OUT_STATE_MACHINE_ARN, value=self.state_machine.state_machine_arn)
        CfnOutput(self, c.OUT_TRAINING_QUEUE_URL, value=self.training_queue.queue_url)
        CfnOutput(self, c.OUT_LIFECYCLE_FUNCTION, value=steps.function.function_name)
