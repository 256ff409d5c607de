"""Function settings: the environment-variable contract with infra."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from evpm.settings import ApiSettings, ScorerSettings


def test_scorer_settings_names_and_defaults(monkeypatch):
    monkeypatch.setenv("PREDICTIONS_TABLE", "predictions")
    monkeypatch.setenv("DLQ_URL", "https://sqs.us-east-1.amazonaws.com/1/dlq")
    monkeypatch.setenv("ALERT_BUS_NAME", "evpm-alerts")
    monkeypatch.setenv("ALERT_DEDUP_TABLE", "evpm-alert-dedup")
    settings = ScorerSettings()
    assert set(ScorerSettings.model_fields) == {
        "PREDICTIONS_TABLE",
        "DLQ_URL",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "LOG_LEVEL",
        "PREDICTION_TTL_DAYS",
        "ALERT_BUS_NAME",
        "ALERT_DEDUP_TABLE",
        "ALERT_WINDOW_SECONDS",
        "PINS_PARAMETER",
        "MLFLOW_URI_PARAMETER",
        "MODELS_TTL_SECONDS",
        "HISTORY_MAX_VEHICLES",
        "CAPTURE_BUCKET",
        "CAPTURE_PREFIX",
        "CAPTURE_SAMPLING",
    }
    assert settings.CAPTURE_BUCKET == "" and settings.CAPTURE_SAMPLING == 1.0  # capture off
    assert settings.PINS_PARAMETER == "/evpm/serving/pins"
    assert settings.PREDICTION_TTL_DAYS == 90
    assert settings.ALERT_WINDOW_SECONDS == 3600


def test_api_settings_names_and_defaults(monkeypatch):
    monkeypatch.setenv("PREDICTIONS_TABLE", "predictions")
    monkeypatch.setenv("LABELS_TABLE", "labels")
    settings = ApiSettings()
    assert set(ApiSettings.model_fields) == {
        "PREDICTIONS_TABLE",
        "LABELS_TABLE",
        "ROLE_CACHE_SECONDS",
        "POWERTOOLS_SERVICE_NAME",
        "LOG_LEVEL",
        "MAX_BATCH",
        "PINS_PARAMETER",
        "MLFLOW_URI_PARAMETER",
        "MODELS_TTL_SECONDS",
        "POWERTOOLS_METRICS_NAMESPACE",
        "OPS_ALERTS_TABLE",
        "ALERT_BUS_NAME",
        "OPS_ALERTS_TOPIC_ARN",
        "WEBHOOK_TOKEN_PARAMETER",
        "OPS_ALERTS_TTL_DAYS",
    }
    assert settings.MAX_BATCH == 500
    assert settings.ROLE_CACHE_SECONDS == 60
    # Ops alerts: the stacks' names by default; the topic's ARN names an account, so none.
    from evpm import ops_alerts

    assert settings.OPS_ALERTS_TABLE == "evpm-alerts"
    assert settings.WEBHOOK_TOKEN_PARAMETER == ops_alerts.WEBHOOK_TOKEN_PARAMETER
    assert settings.OPS_ALERTS_TOPIC_ARN is None
    assert settings.OPS_ALERTS_TTL_DAYS == ops_alerts.DEFAULT_TTL_DAYS


def test_missing_required_variable_fails_loudly(monkeypatch):
    monkeypatch.delenv("PREDICTIONS_TABLE", raising=False)
    monkeypatch.delenv("DLQ_URL", raising=False)
    with pytest.raises(ValidationError, match="PREDICTIONS_TABLE"):
        ScorerSettings()


def test_bad_log_level_names_the_allowed_values(monkeypatch):
    monkeypatch.setenv("PREDICTIONS_TABLE", "predictions")
    monkeypatch.setenv("LABELS_TABLE", "labels")
    monkeypatch.setenv("LOG_LEVEL", "LOUD")
    with pytest.raises(ValidationError, match="'DEBUG'"):
        ApiSettings()
