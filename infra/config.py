"""Settings of the CDK app, read from the environment in one place.

Synthesis must work offline, with no emulator and no credentials, so nothing here calls AWS.
Account and region come from ``CDK_DEFAULT_ACCOUNT`` / ``CDK_DEFAULT_REGION`` (which the CDK CLI
sets when it can resolve them); when they are absent the stacks stay environment-agnostic and
the same template deploys to the emulator or to any real account. Paths default to the repo
layout and can be overridden (``EVPM_*``), which is how the infra tests point the app at a
placeholder dependency layer instead of faking the real build.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from aws_cdk import RemovalPolicy
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class MissingBuildError(RuntimeError):
    """A local build output the app packages as an asset does not exist yet."""


class InfraSettings(BaseSettings):
    """Everything the stacks need from outside the code (env prefix ``EVPM_``)."""

    model_config = SettingsConfigDict(env_prefix="EVPM_", frozen=True, extra="ignore")

    account: str | None = Field(
        default=None, validation_alias=AliasChoices("CDK_DEFAULT_ACCOUNT", "EVPM_ACCOUNT")
    )
    region: str | None = Field(
        default=None, validation_alias=AliasChoices("CDK_DEFAULT_REGION", "EVPM_REGION")
    )
    env_name: str = Field(default="dev", pattern=r"^[a-z][a-z0-9-]{1,15}$")
    log_level: LogLevel = "INFO"
    # Dev data is disposable; a real deployment sets EVPM_RETAIN_DATA=true.
    retain_data: bool = False
    # The MLflow tracking server's address as the functions see it (an SSM parameter holds
    # it, so a moved server needs no redeploy; `evpm up` writes the local one).
    mlflow_uri: str = "http://127.0.0.1:5000"
    # Share of stored predictions the scorer captures for the drift monitor (EVPM_CAPTURE_SAMPLING).
    capture_sampling: float = Field(default=1.0, ge=0, le=1)
    # How often the drift monitor runs (EVPM_MONITOR_SCHEDULE_MINUTES; 0: only on demand, as
    # the test suite deploys it, so no scheduled run starts a retraining under other tests).
    monitor_schedule_minutes: int = Field(default=5, ge=0, le=1440)
    # No second drift-started lifecycle run within this time (EVPM_RETRAIN_COOLDOWN_SECONDS).
    retrain_cooldown_seconds: float = Field(default=6 * 3600, ge=0)

    deps_layer_dir: Path = REPO_ROOT / ".build" / "layers" / "deps"
    core_layer_dir: Path = REPO_ROOT / "layers" / "evpm"
    functions_dir: Path = REPO_ROOT / "functions"
    state_machines_dir: Path = REPO_ROOT / "state_machines"

    @property
    def removal_policy(self) -> RemovalPolicy:
        """What happens to stateful resources when their stack is deleted."""
        return RemovalPolicy.RETAIN if self.retain_data else RemovalPolicy.DESTROY

    def function_dir(self, name: str) -> Path:
        """Source folder of one function, checked so a typo fails at synth, not at deploy."""
        path = self.functions_dir / name
        if not (path / "app.py").is_file():
            raise MissingBuildError(f"function code not found: {path}/app.py")
        return path

    def require_layer_dirs(self) -> None:
        """Fail with the fix in the message when a layer folder is missing.

        The dependency layer is built locally (no Docker bundling here), so a fresh clone has
        to run the build once before it can synthesise.
        """
        deps = self.deps_layer_dir / "python"
        if not deps.is_dir():
            raise MissingBuildError(
                f"dependency layer not built: {deps} does not exist.\n"
                "Build it first:  .venv/bin/python layers/build.py"
            )
        core = self.core_layer_dir / "python" / "evpm"
        if not core.is_dir():
            raise MissingBuildError(f"core layer not found: {core} does not exist")
