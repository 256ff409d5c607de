"""Where everything lives and how to reach it: read from the environment in one place.

Defaults work on a developer machine (the emulator on 127.0.0.1:4566, state under ``.state``);
every value can be overridden, which is how the test suite runs its own emulator beside a
developer's.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
STACKS = (
    "evpm-storage",
    "evpm-ingestion",
    "evpm-scoring",
    "evpm-serving",
    "evpm-lifecycle",
    "evpm-monitoring",
    "evpm-drift",
)


class CliSettings(BaseSettings):
    """Environment of the ``evpm`` command (prefix ``EVPM_``)."""

    model_config = SettingsConfigDict(env_prefix="EVPM_", frozen=True)

    state_dir: Path = Field(default=REPO_ROOT / ".state", description="all local state")
    emulator_port: int = Field(default=4566, ge=1024, le=65535)
    mlflow_port: int = Field(default=5000, ge=1024, le=65535)
    prometheus_port: int = Field(default=9090, ge=1024, le=65535)
    alertmanager_port: int = Field(default=9093, ge=1024, le=65535)
    exporter_port: int = Field(default=9106, ge=1024, le=65535)
    console_port: int = Field(default=8088, ge=1024, le=65535, description="the ops console")
    exporter_delay: int = Field(
        default=10,
        ge=0,
        le=3600,
        description="seconds after a minute ends before the exporter counts it complete: the "
        "emulator stores a metric when it is logged (CloudWatch itself needs 60 or more)",
    )
    region: str = "us-east-1"
    account: str = "000000000000"
    emulator_venv: Path = REPO_ROOT / ".venv-localstack"

    @cached_property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.alertmanager_port}"

    @property
    def exporter_url(self) -> str:
        return f"http://127.0.0.1:{self.exporter_port}"

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.console_port}"

    def mlflow_env(self) -> dict[str, str]:
        """What every MLflow client (and the server) needs to reach tracking and S3 artifacts."""
        return {"MLFLOW_TRACKING_URI": self.mlflow_url, "MLFLOW_S3_ENDPOINT_URL": self.endpoint}

    @property
    def deploy_stamp(self) -> Path:
        return self.state_dir / "deploy.json"

    def aws_env(self) -> dict[str, str]:
        """Environment for SDKs and cdklocal talking to the emulator (dummy credentials)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "CDK_DEFAULT_ACCOUNT": self.account,
            "CDK_DEFAULT_REGION": self.region,
            "CDK_DISABLE_VERSION_CHECK": "1",
            "CDK_DISABLE_CLI_TELEMETRY": "true",
            "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
            "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
            "EDGE_PORT": str(self.emulator_port),
            "LOCALSTACK_HOSTNAME": "127.0.0.1",
            "EVPM_STATE_DIR": str(self.state_dir),
        }


def settings() -> CliSettings:
    return CliSettings()
