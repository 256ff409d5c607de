"""What a function needs to serve the pinned models: read the pins, the registry address, and
the model files in the MLflow bucket; nothing else (no writes, no other prefixes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws_cdk import aws_iam as iam

from infra import constants as c
from infra.nag import suppress

if TYPE_CHECKING:
    from aws_cdk import aws_s3 as s3
    from aws_cdk import aws_ssm as ssm

    from infra.constructs.python_function import PythonFunction

MLFLOW_PREFIX = "mlflow"  # = the tracking server's --default-artifact-root key prefix


@dataclass(frozen=True)
class ModelAccess:
    """The pins and registry parameters and the MLflow bucket, granted per function."""

    pins: ssm.IStringParameter
    mlflow_uri: ssm.IStringParameter
    mlflow_bucket: s3.IBucket

    def grant_serving(self, fn: PythonFunction) -> None:
        """Read-only access plus the environment :mod:`evpm.settings` expects."""
        fn.function.add_environment("MODELS_TTL_SECONDS", str(c.MODELS_TTL_SECONDS))
        self.grant_read(fn)

    def grant_read(self, fn: PythonFunction) -> None:
        """Read the pins, the registry address and the model files (the drift monitor reads
        the pinned versions' profiles that way); the two parameter names in the environment."""
        fn.function.add_environment("PINS_PARAMETER", self.pins.parameter_name)
        fn.function.add_environment("MLFLOW_URI_PARAMETER", self.mlflow_uri.parameter_name)
        self.pins.grant_read(fn.function)
        self.mlflow_uri.grant_read(fn.function)
        # GetObject only (no List): the registry names the exact folder of each version.
        fn.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[self.mlflow_bucket.arn_for_objects(f"{MLFLOW_PREFIX}/*")],
            )
        )
        suppress(
            fn.role,
            "AwsSolutions-IAM5",
            "Model files are read by key from the MLflow bucket's mlflow/ prefix; the "
            "registry decides the key (experiment/model id), so the resource is that prefix.",
            applies_to=[{"regex": "/^Resource::.*MlflowArtifacts.*/mlflow/\\*$/g"}],
        )
