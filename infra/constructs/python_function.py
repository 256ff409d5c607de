"""A Python Lambda function with its own log group and a role that starts empty."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import constants as c
from infra.constructs.layers import ASSET_EXCLUDES
from infra.nag import suppress

if TYPE_CHECKING:
    from pathlib import Path


class PythonFunction(Construct):
    """``python3.12`` function zipped from a local folder, with explicit, least-privilege IAM.

    The role gets no managed policy: it may write only to this function's log group, and every
    other permission is a ``grant_*`` by the stack that wires the function. Tracing is active so
    a request can be followed from API Gateway or Kinesis into DynamoDB.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function_name: str,
        code_dir: Path,
        layers: Sequence[lambda_.ILayerVersion],
        environment: Mapping[str, str],
        memory_mb: int,
        timeout_s: int,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/lambda/{function_name}",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=removal_policy,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"execution role of {function_name}",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.X86_64,
            handler=c.LAMBDA_HANDLER,
            code=lambda_.Code.from_asset(str(code_dir), exclude=ASSET_EXCLUDES),
            layers=list(layers),
            environment=dict(environment),
            memory_size=memory_mb,
            timeout=Duration.seconds(timeout_s),
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
        )
        suppress(
            self.function,
            "AwsSolutions-L1",
            "python3.12 is pinned on purpose: the dependency layer is built for CPython 3.12 "
            "wheels, the project venv and the emulator's host executor run 3.12; moving the "
            "runtime means rebuilding all three together.",
        )
        suppress(
            self.role,
            "AwsSolutions-IAM5",
            "Active tracing adds xray:PutTraceSegments/PutTelemetryRecords, which do not "
            "support resource-level permissions, so their resource must be '*'.",
            applies_to=["Resource::*"],
        )
