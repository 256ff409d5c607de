"""The console's settings: where it listens and where each data source answers.

One frozen pydantic model, checked when the process starts, so a wrong port or URL fails at
start-up with the field's name rather than on the first page view. ``evpm up`` passes every
value on the command line (:mod:`console.__main__`); the defaults suit a developer's system.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

__all__ = ["REPO_ROOT", "ConsoleConfig"]

REPO_ROOT = Path(__file__).resolve().parents[1]


class ConsoleConfig(BaseModel):
    """Everything the console needs to know about the system it shows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(default="127.0.0.1", description="bind address (local only)")
    port: int = Field(default=8088, ge=1024, le=65535)
    state_dir: Path = Field(default=REPO_ROOT / ".state", description="where the secret lives")
    emulator_url: HttpUrl = Field(default=HttpUrl("http://127.0.0.1:4566"))
    region: str = "us-east-1"
    api_url: str | None = Field(
        default=None, description="the evpm API's stage URL (None: the serving stack is absent)"
    )
    mlflow_url: HttpUrl = Field(default=HttpUrl("http://127.0.0.1:5000"))
    prometheus_url: HttpUrl = Field(default=HttpUrl("http://127.0.0.1:9090"))
    alertmanager_url: HttpUrl = Field(default=HttpUrl("http://127.0.0.1:9093"))
    state_machine: str = Field(
        default="evpm-model-lifecycle", description="name of the lifecycle state machine"
    )
    predictions_table: str = "evpm-predictions"
    alert_table: str = Field(
        default="evpm-alert-dedup",
        description="the scorer's alert windows: one item per vehicle and failure mode",
    )
    node_modules: Path = Field(
        default=REPO_ROOT / "node_modules", description="front-end packages from npm"
    )
    session_hours: float = Field(default=12.0, gt=0, le=24 * 7)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def base(self, url: HttpUrl | str) -> str:
        """A URL without its trailing slash (pydantic adds one to a bare host)."""
        return str(url).rstrip("/")
