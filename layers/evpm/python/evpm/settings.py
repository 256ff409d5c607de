"""Environment configuration of the Lambda functions: the one contract between infra and code.

Each function reads its environment through one of these models at cold start, so a missing
or malformed variable fails the first invocation loudly instead of the hundredth quietly. The
field names ARE the environment variable names (upper case on purpose): the infra test that
checks the synthesised template compares the functions' ``Environment`` against
``model_fields`` directly, with no name mapping to drift.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from evpm.pins import MLFLOW_URI_PARAMETER, PINS_PARAMETER

__all__ = [
    "ApiSettings",
    "LabelsSettings",
    "LifecycleSettings",
    "LogLevel",
    "MonitorSettings",
    "RetrainSettings",
    "ScorerSettings",
]

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class _FunctionSettings(BaseModel):
    """Each field is read from the environment variable of the same name (case-sensitive);
    keyword arguments win over the environment.

    A plain pydantic model, not pydantic-settings' ``BaseSettings``: a function needs nothing
    but "the variable of this name, validated", and importing pydantic-settings (asyncio,
    dotenv and argparse behind it) cost some 60 ms of every cold start.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    def __init__(self, **values: Any) -> None:
        env = {name: os.environ[name] for name in type(self).model_fields if name in os.environ}
        super().__init__(**{**env, **values})


class _ServingSettings(_FunctionSettings):
    """What a function that serves the pinned models reads (the scorer and the API)."""

    PINS_PARAMETER: str = Field(
        default=PINS_PARAMETER, min_length=1, description="SSM parameter of the serving pins"
    )
    MLFLOW_URI_PARAMETER: str = Field(
        default=MLFLOW_URI_PARAMETER, min_length=1, description="SSM parameter: MLflow URI"
    )
    MODELS_TTL_SECONDS: float = Field(
        default=10, ge=0, le=3600, description="how often a warm container re-reads the pins"
    )


class ScorerSettings(_ServingSettings):
    """Environment of the stream scorer (``functions/scorer``)."""

    PREDICTIONS_TABLE: str = Field(min_length=1, description="DynamoDB table for predictions")
    DLQ_URL: str = Field(min_length=1, description="SQS queue URL for parked (poison) records")
    POWERTOOLS_SERVICE_NAME: str = "evpm-scorer"
    POWERTOOLS_METRICS_NAMESPACE: str = "evpm"
    LOG_LEVEL: LogLevel = "INFO"
    PREDICTION_TTL_DAYS: int = Field(
        default=90, ge=0, description="days a prediction is kept; 0 keeps it forever"
    )
    ALERT_BUS_NAME: str = Field(min_length=1, description="EventBridge bus for VehicleAlert")
    ALERT_DEDUP_TABLE: str = Field(
        min_length=1, description="DynamoDB table of alert claims (one per vehicle+mode+window)"
    )
    ALERT_WINDOW_SECONDS: int = Field(
        default=3600, ge=1, le=7 * 86400, description="repeats of an alert are dropped this long"
    )
    HISTORY_MAX_VEHICLES: int = Field(
        default=20_000, ge=1, description="vehicles whose recent readings a container keeps"
    )
    CAPTURE_BUCKET: str = Field(
        default="", description="S3 bucket of the data capture (empty: no capture)"
    )
    CAPTURE_PREFIX: str = Field(default="capture/", description="key prefix of the capture")
    CAPTURE_SAMPLING: float = Field(
        default=1.0, ge=0, le=1, description="share of stored predictions captured"
    )


class ApiSettings(_ServingSettings):
    """Environment of the HTTP API (``functions/api``)."""

    PREDICTIONS_TABLE: str = Field(min_length=1, description="DynamoDB table for predictions")
    LABELS_TABLE: str = Field(min_length=1, description="DynamoDB table for ground-truth labels")
    POWERTOOLS_SERVICE_NAME: str = "evpm-api"
    POWERTOOLS_METRICS_NAMESPACE: str = "evpm"
    LOG_LEVEL: LogLevel = "INFO"
    MAX_BATCH: int = Field(default=500, ge=1, le=10_000, description="records per /predict/batch")
    ROLE_CACHE_SECONDS: float = Field(
        default=60, ge=0, le=3600, description="how long a warm container trusts a key's role"
    )
    # Ops alerts from Alertmanager (POST /alerts/webhook, GET /alerts). Defaults are the names
    # the stacks give them (and evpm.ops_alerts', which this module does not import: the
    # scorer would pay for it at cold start; a test checks), so a unit test needs none; the
    # topic has no default because its ARN names an account: the webhook answers 503 naming it
    # while it is unset.
    OPS_ALERTS_TABLE: str = Field(
        default="evpm-alerts", min_length=1, description="DynamoDB table of ops alerts"
    )
    ALERT_BUS_NAME: str = Field(
        default="evpm-alerts", min_length=1, description="EventBridge bus for OpsAlert events"
    )
    OPS_ALERTS_TOPIC_ARN: str | None = Field(
        default=None, min_length=1, description="SNS topic people subscribe to for ops alerts"
    )
    WEBHOOK_TOKEN_PARAMETER: str = Field(
        default="/evpm/alerts/webhook-token",
        min_length=1,
        description="SSM SecureString: the bearer token Alertmanager sends",
    )
    OPS_ALERTS_TTL_DAYS: int = Field(
        default=30, ge=1, le=3650, description="days a stored ops alert is kept"
    )


class LifecycleSettings(_FunctionSettings):
    """Environment of the lifecycle steps (``functions/lifecycle``)."""

    ARTIFACTS_BUCKET: str = Field(min_length=1, description="bucket for gate reports")
    PINS_PARAMETER: str = Field(min_length=1, description="SSM parameter of the serving pins")
    MLFLOW_URI_PARAMETER: str = Field(min_length=1, description="SSM parameter: MLflow URI")
    API_FUNCTION: str = Field(min_length=1, description="API function the smoke test calls")
    SCORER_FUNCTION: str = Field(min_length=1, description="scorer the smoke test calls")
    POWERTOOLS_SERVICE_NAME: str = "evpm-lifecycle"
    POWERTOOLS_METRICS_NAMESPACE: str = "evpm"
    LOG_LEVEL: LogLevel = "INFO"
    SMOKE_TIMEOUT_SECONDS: int = Field(
        default=60, ge=5, le=600, description="how long serving may take to pick up new pins"
    )


class MonitorSettings(_FunctionSettings):
    """Environment of the drift monitor (``functions/monitor``)."""

    CAPTURE_BUCKET: str = Field(min_length=1, description="S3 bucket of the data capture")
    CAPTURE_PREFIX: str = Field(default="capture/", description="key prefix of the capture")
    OUTCOMES_TABLE: str = Field(min_length=1, description="DynamoDB table of outcomes")
    LABELS_TABLE: str = Field(default="", description="/feedback reports (empty: not read)")
    HISTORY_TABLE: str = Field(min_length=1, description="DynamoDB table of judged windows")
    ALERT_BUS_NAME: str = Field(min_length=1, description="bus for DriftDetected events")
    PINS_PARAMETER: str = Field(default=PINS_PARAMETER, min_length=1)
    MLFLOW_URI_PARAMETER: str = Field(default=MLFLOW_URI_PARAMETER, min_length=1)
    WINDOW_MINUTES: int = Field(default=60, ge=1, le=7 * 24 * 60, description="window length")
    MIN_ROWS: int = Field(default=200, ge=1, description="rows a window needs for a verdict")
    MIN_LABELLED: int = Field(default=100, ge=1, description="graded rows for label checks")
    POWERTOOLS_SERVICE_NAME: str = "evpm-drift-monitor"
    POWERTOOLS_METRICS_NAMESPACE: str = "evpm"
    LOG_LEVEL: LogLevel = "INFO"


class RetrainSettings(_FunctionSettings):
    """Environment of the retraining trigger (``functions/retrain``)."""

    STATE_MACHINE_ARN: str = Field(min_length=1, description="the model-lifecycle machine")
    TRIGGERS_TABLE: str = Field(min_length=1, description="decisions and the cool-down claim")
    COOLDOWN_SECONDS: float = Field(
        default=6 * 3600, ge=0, description="no second drift-started run within this time"
    )
    POWERTOOLS_SERVICE_NAME: str = "evpm-retrain"
    POWERTOOLS_METRICS_NAMESPACE: str = "evpm"
    LOG_LEVEL: LogLevel = "INFO"


class LabelsSettings(_FunctionSettings):
    """Environment of the label-file intake (``functions/labels``)."""

    OUTCOMES_TABLE: str = Field(min_length=1, description="DynamoDB table of outcomes")
    PREDICTIONS_TABLE: str = Field(min_length=1, description="to tell a known vehicle")
    LABELS_PREFIX: str = Field(default="labels/", description="key prefix of label files")
    POWERTOOLS_SERVICE_NAME: str = "evpm-labels"
    POWERTOOLS_METRICS_NAMESPACE: str = "evpm"
    LOG_LEVEL: LogLevel = "INFO"
