"""Names and sizes of every evpm resource, in one place.

Physical names are the contract with the CLI, the functions and the runbooks; sizes are the
knobs an operator turns. Keeping both here means a rename or a resize is a one-line diff that
the infra tests then check against the synthesised templates.
"""

from __future__ import annotations

from typing import Final

PROJECT: Final = "evpm"

# Stack names (the CLI reads outputs from these by name).
STORAGE_STACK: Final = "evpm-storage"
INGESTION_STACK: Final = "evpm-ingestion"
SCORING_STACK: Final = "evpm-scoring"
SERVING_STACK: Final = "evpm-serving"
LIFECYCLE_STACK: Final = "evpm-lifecycle"
MONITORING_STACK: Final = "evpm-monitoring"
DRIFT_STACK: Final = "evpm-drift"
ALL_STACKS: Final = (
    STORAGE_STACK,
    INGESTION_STACK,
    SCORING_STACK,
    SERVING_STACK,
    LIFECYCLE_STACK,
    MONITORING_STACK,
    DRIFT_STACK,
)

# Storage.
RAW_BUCKET_PREFIX: Final = "evpm-raw-telemetry"
ARTIFACTS_BUCKET_PREFIX: Final = "evpm-model-artifacts"
MLFLOW_BUCKET_PREFIX: Final = "evpm-mlflow-artifacts"
ACCESS_LOGS_BUCKET_PREFIX: Final = "evpm-access-logs"
PREDICTIONS_TABLE: Final = "evpm-predictions"
LABELS_TABLE: Final = "evpm-labels"
ALERT_DEDUP_TABLE: Final = "evpm-alert-dedup"
ALERT_DEDUP_KEY: Final = "alert_key"  # vehicle_id#failure_mode; TTL on TTL_ATTRIBUTE
PARTITION_KEY: Final = "vehicle_id"
SORT_KEY: Final = "ts"  # ISO-8601 UTC timestamp string, so it sorts chronologically
TTL_ATTRIBUTE: Final = "expires_at"
ACCESS_LOG_EXPIRY_DAYS: Final = 90
NONCURRENT_VERSION_EXPIRY_DAYS: Final = 90

# Ingestion.
TELEMETRY_STREAM: Final = "ev-telemetry"
TELEMETRY_SHARDS: Final = 2
SCORING_DLQ: Final = "evpm-scoring-dlq"
DLQ_RETENTION_DAYS: Final = 14

# Functions (shared).
LAMBDA_HANDLER: Final = "app.handler"
METRICS_NAMESPACE: Final = "evpm"
LOG_RETENTION_DAYS: Final = 30

# Scoring.
SCORER_FUNCTION: Final = "evpm-scorer"
SCORER_MEMORY_MB: Final = 1024
SCORER_TIMEOUT_S: Final = 60
SCORER_BATCH_SIZE: Final = 500
SCORER_BATCHING_WINDOW_S: Final = 1
SCORER_RETRY_ATTEMPTS: Final = 3

# Alerts (the scorer publishes; the audit queue lets people and tests see what went out).
ALERT_BUS: Final = "evpm-alerts"
ALERT_SOURCE: Final = "evpm.scorer"  # = evpm.alerts.ALERT_SOURCE (a test checks)
ALERT_DETAIL_TYPE: Final = "VehicleAlert"  # = evpm.alerts.ALERT_DETAIL_TYPE
ALERT_WINDOW_SECONDS: Final = 3600  # one alert per vehicle and failure mode per hour
CAPTURE_PREFIX: Final = "capture/"  # data capture in the raw bucket (evpm.drift.capture)
ALERTS_AUDIT_QUEUE: Final = "evpm-alerts-audit"
ALERTS_AUDIT_RETENTION_DAYS: Final = 4
# Alerts the bus could not deliver to the audit queue, with why (EventBridge's target DLQ).
ALERTS_DLQ: Final = "evpm-alerts-dlq"
ALERTS_DELIVERY_RETRIES: Final = 8  # then the DLQ (a missing queue goes there at once)
ALERTS_DELIVERY_MAX_AGE_HOURS: Final = 2

# Ops alerts: Alertmanager's webhook stores them, puts them on the alert bus and publishes them
# to the people's topic; the CloudWatch alarms (real AWS) publish to the same topic.
# Key and index names = evpm.ops_alerts (a test checks).
OPS_ALERTS_TABLE: Final = "evpm-alerts"
OPS_ALERTS_KEY: Final = "fingerprint"  # Alertmanager's hash of the alert's labels
OPS_ALERTS_SORT_KEY: Final = "starts_at"  # one item per occurrence of an alert
OPS_ALERTS_STATUS_INDEX: Final = "by-status"  # status / updated_at: firing now, resolved lately
OPS_ALERTS_STATUS_INDEX_SORT_KEY: Final = "updated_at"
OPS_ALERTS_TTL_DAYS: Final = 30
OPS_ALERTS_TOPIC: Final = "evpm-ops-alerts"
OPS_ALERTS_KEY_ALIAS: Final = "alias/evpm-ops-alerts"
OPS_ALERT_SOURCE: Final = "evpm.ops"  # = evpm.ops_alerts.OPS_ALERT_SOURCE
OPS_ALERT_DETAIL_TYPE: Final = "OpsAlert"
WEBHOOK_TOKEN_PARAMETER: Final = "/evpm/alerts/webhook-token"  # SecureString, made by `evpm up`
ALERTS_PATH: Final = "alerts"  # GET /alerts (keyed)
WEBHOOK_PATH: Final = "webhook"  # POST /alerts/webhook (no key: bearer token in the function)

# Serving.
API_FUNCTION: Final = "evpm-api"
API_MEMORY_MB: Final = 1024
API_TIMEOUT_S: Final = 29  # API Gateway's integration timeout
REST_API: Final = "evpm-api"
API_STAGE: Final = "v1"
HEALTH_PATH: Final = "health"
# The API's description is not a secret: its docs pages, their assets and the schema are open
# (GET only); every operation they describe still needs a key.
DOCS_PATHS: Final = ("docs", "redoc", "openapi.json")
DOCS_ASSETS_PATH: Final = "docs-assets"
USAGE_PLAN: Final = "evpm-dev"
API_KEY_PREFIX: Final = "evpm-dev"
API_ROLES: Final = ("viewer", "fleet-service", "ml-admin")
API_ROLE_TAG: Final = "evpm:role"
API_THROTTLE_RATE: Final = 50  # requests per second, steady state
API_THROTTLE_BURST: Final = 100
API_QUOTA_PER_DAY: Final = 100_000

# Lifecycle.
LIFECYCLE_STATE_MACHINE: Final = "evpm-model-lifecycle"
LIFECYCLE_DEFINITION_FILE: Final = "model-lifecycle.asl.json"
LIFECYCLE_TIMEOUT_MIN: Final = 60
LIFECYCLE_FUNCTION: Final = "evpm-lifecycle"
LIFECYCLE_MEMORY_MB: Final = 512
LIFECYCLE_TIMEOUT_S: Final = 120  # the smoke test waits up to SMOKE_TIMEOUT_S for new pins
SMOKE_TIMEOUT_S: Final = 60
TRAINING_QUEUE: Final = "evpm-training-requests"
TRAINING_QUEUE_VISIBILITY_S: Final = 3600

MODEL_NAMES: Final = ("ev-anomaly", "ev-classifier", "ev-rul")  # = evpm.pins.MODEL_NAMES

# Drift (evpm-drift): the monitor, ground truth's outcomes, the retraining trigger.
MONITOR_FUNCTION: Final = "evpm-drift-monitor"
MONITOR_MEMORY_MB: Final = 2048  # a million captured rows judged in under 1 GB (bench/drift.py)
MONITOR_TIMEOUT_S: Final = 300
MONITOR_WINDOW_MINUTES: Final = 60
RETRAIN_FUNCTION: Final = "evpm-retrain"
RETRAIN_DLQ: Final = "evpm-retrain-dlq"  # drift events the trigger could not take
DRIFT_HISTORY_TABLE: Final = "evpm-drift-history"
OUTCOMES_TABLE: Final = "evpm-outcomes"
RETRAIN_TRIGGERS_TABLE: Final = "evpm-retrain-triggers"
MONITOR_EVENT_SOURCE: Final = "evpm.monitor"
LABELS_FUNCTION: Final = "evpm-labels"
LABELS_BUCKET_PREFIX: Final = "evpm-labels"
LABELS_PREFIX: Final = "labels/"  # CSV files of outcomes; rejects go to labels-rejects/
OUT_LABELS_BUCKET: Final = "LabelsBucketName"
OUT_MONITOR_FUNCTION: Final = "MonitorFunctionName"
OUT_RETRAIN_FUNCTION: Final = "RetrainFunctionName"
OUT_DRIFT_HISTORY_TABLE: Final = "DriftHistoryTable"
OUT_OUTCOMES_TABLE: Final = "OutcomesTable"
OUT_RETRAIN_TRIGGERS_TABLE: Final = "RetrainTriggersTable"

# Alarms (evpm-monitoring): one per Prometheus alert rule in monitoring/rules/, which names
# its twin in the label `cloudwatch_alarm` (a test checks both ways).
ALARM_API_LATENCY_P95: Final = "evpm-api-latency-p95"
ALARM_API_5XX_RATE: Final = "evpm-api-5xx-rate"
ALARM_SCORER_ERRORS: Final = "evpm-scorer-errors"
ALARM_SCORER_WRITE_FAILURES: Final = "evpm-scorer-write-failures"
ALARM_DLQ_GROWING: Final = "evpm-dlq-growing"
ALARM_STREAM_LAG: Final = "evpm-stream-lag"
ALARM_NO_TRAFFIC: Final = "evpm-no-traffic"
ALARM_ANOMALY_RATE: Final = "evpm-anomaly-rate"
ALARM_MODEL_LOAD_FAILURES: Final = "evpm-model-load-failures"
ALARM_LIFECYCLE_FAILED: Final = "evpm-lifecycle-failed"
ALARM_DRIFT_DETECTED: Final = "evpm-drift-detected"
ALARM_QUALITY_DEGRADED: Final = "evpm-quality-degraded"
ALARMS: Final = (
    ALARM_API_LATENCY_P95,
    ALARM_API_5XX_RATE,
    ALARM_SCORER_ERRORS,
    ALARM_SCORER_WRITE_FAILURES,
    ALARM_DLQ_GROWING,
    ALARM_STREAM_LAG,
    ALARM_NO_TRAFFIC,
    ALARM_ANOMALY_RATE,
    ALARM_MODEL_LOAD_FAILURES,
    ALARM_LIFECYCLE_FAILED,
    ALARM_DRIFT_DETECTED,
    ALARM_QUALITY_DEGRADED,
)
API_LATENCY_P95_BUDGET_MS: Final = 1000  # p95 of ApiLatency, two 5-min periods in a row
API_5XX_RATE_MAX: Final = 0.05  # share of requests answered 5xx over 5 min
DLQ_GROWTH_MINUTES: Final = 15  # messages visible grew from one such period to the next
STREAM_LAG_MAX_MS: Final = 60_000  # IteratorAge (oldest record's age when read), over 5 min
NO_TRAFFIC_MINUTES: Final = 15  # RecordsReceived Sum < 1 this long (missing data = breaching)
ANOMALY_RATE_MAX: Final = 0.20  # AnomaliesFlagged / PredictionsWritten over 15 min

# Model serving: the pins (SSM, = evpm.pins.PINS_PARAMETER) and the registry's address.
PINS_PARAMETER: Final = "/evpm/serving/pins"
MLFLOW_URI_PARAMETER: Final = "/evpm/mlflow/tracking-uri"
MODELS_TTL_SECONDS: Final = 10  # how often a warm container re-reads the pins

# Stack output keys (read by the CLI through describe_stacks).
OUT_API_ID: Final = "ApiId"
OUT_API_STAGE: Final = "ApiStage"
OUT_API_URL: Final = "ApiUrl"
OUT_STREAM_NAME: Final = "StreamName"
OUT_STREAM_ARN: Final = "StreamArn"
OUT_DLQ_URL: Final = "DlqUrl"
OUT_PREDICTIONS_TABLE: Final = "PredictionsTable"
OUT_LABELS_TABLE: Final = "LabelsTable"
OUT_ALERT_DEDUP_TABLE: Final = "AlertDedupTable"
OUT_ALERT_BUS: Final = "AlertBusName"
OUT_ALERTS_AUDIT_QUEUE_URL: Final = "AlertsAuditQueueUrl"
OUT_STATE_MACHINE_ARN: Final = "StateMachineArn"
OUT_RAW_BUCKET: Final = "RawBucketName"
OUT_ARTIFACTS_BUCKET: Final = "ArtifactsBucketName"
OUT_MLFLOW_BUCKET: Final = "MlflowBucketName"
OUT_API_KEY_IDS: Final = "ApiKeyIds"
OUT_SCORER_FUNCTION: Final = "ScorerFunctionName"
OUT_API_FUNCTION: Final = "ApiFunctionName"
OUT_TRAINING_QUEUE_URL: Final = "TrainingQueueUrl"
OUT_LIFECYCLE_FUNCTION: Final = "LifecycleFunctionName"
OUT_OPS_ALERTS_TABLE: Final = "OpsAlertsTable"
OUT_OPS_ALERTS_TOPIC_ARN: Final = "OpsAlertsTopicArn"
