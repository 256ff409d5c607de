"""A scored reading, and how it is stored in the DynamoDB ``predictions`` table.

Key scheme: partition key ``vehicle_id``, sort key ``ts`` (the fixed-width UTC timestamp of the
reading). The key is a function of the reading alone, so a record that Kinesis delivers twice is
written twice onto the same item: retries overwrite, they never duplicate. ``record_id`` is a
hash of the same two values, for callers that want one opaque identifier.

Items use the document form of the boto3 resource API (``Decimal`` for numbers); the sink that
talks to DynamoDB turns them into wire format. Nothing here imports an AWS SDK.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from evpm.health import FailureMode, Finding, Status
from evpm.past_readings import READING_ATTRIBUTE
from evpm.telemetry import TIMESTAMP_FORMAT, format_timestamp

__all__ = [
    "MODEL_FIELDS",
    "PARTITION_KEY",
    "SORT_KEY",
    "TTL_ATTRIBUTE",
    "Prediction",
    "from_item",
    "record_id",
    "to_item",
]

PARTITION_KEY = "vehicle_id"
SORT_KEY = "ts"
TTL_ATTRIBUTE = "expires_at"
"""Epoch seconds after which DynamoDB TTL may delete the item (enable TTL on this attribute)."""


def record_id(vehicle_id: str, ts: str) -> str:
    """Deterministic id of one reading: the same vehicle and instant always give the same id.

    Example: ``record_id("EV-0042", "2024-05-01T12:00:00.000000Z")`` is 32 hex characters.
    """
    return hashlib.sha256(f"{vehicle_id}\x1f{ts}".encode()).hexdigest()[:32]


class Prediction(BaseModel):
    """What evpm concluded about one reading, and which models concluded it."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "vehicle_id": "EV-0042",
                    "ts": "2024-05-01T12:00:00.000000Z",
                    "record_id": "3f0c5a8e2b1d4c6f9a7e8d0b1c2a3f4e",
                    "status": "watch",
                    "health_score": 90.0,
                    "failure_mode": "brake_wear",
                    "findings": [
                        {
                            "rule_id": "BRK-PAD",
                            "component": "brakes",
                            "severity": "watch",
                            "message": "Brake_Pad_Wear 74 % is above the watch limit 70 %",
                        }
                    ],
                    "model_versions": {"health": "rules-v1"},
                    "scored_at": "2024-05-01T12:00:01.250000Z",
                }
            ]
        },
    )

    vehicle_id: str
    ts: str = Field(description="UTC time of the reading, fixed-width ISO 8601 (sort key)")
    record_id: str
    status: Status
    health_score: float = Field(ge=0, le=100)
    failure_mode: FailureMode
    findings: list[Finding]
    model_versions: dict[str, str] = Field(
        description="model name → version that produced this prediction"
    )
    scored_at: datetime
    anomaly_score: float | None = Field(
        default=None, description="ev-anomaly: how unusual the reading is (higher = more)"
    )
    is_anomaly: bool | None = Field(
        default=None, description="ev-anomaly: score above the model's threshold"
    )
    predicted_failure: str | None = Field(
        default=None, description="ev-classifier: the likeliest failure mode ('none' = healthy)"
    )
    failure_probabilities: dict[str, float] | None = Field(
        default=None, description="ev-classifier: probability of each failure mode"
    )
    rul_hours: float | None = Field(
        default=None, ge=0, description="ev-rul: hours until the next failure threshold"
    )
    rul_low_hours: float | None = Field(
        default=None,
        ge=0,
        description="ev-rul: lower bound of the calibrated interval (90 % of held-out outcomes)",
    )
    rul_high_hours: float | None = Field(
        default=None, ge=0, description="ev-rul: upper bound of the calibrated interval"
    )

    @field_validator("scored_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @field_serializer("scored_at", when_used="json")
    def _serialise_scored_at(self, value: datetime) -> str:
        return format_timestamp(value)


MODEL_FIELDS = (
    # The fields the pinned models fill (None when no model of that name is served), in
    # Prediction's order: the scorer builds them by name; the store writes those present.
    "anomaly_score",
    "is_anomaly",
    "predicted_failure",
    "failure_probabilities",
    "rul_hours",
    "rul_low_hours",
    "rul_high_hours",
)


def _model_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: float(v) for k, v in value.items()}
    if isinstance(value, Decimal):
        return float(value)
    return value


def to_item(
    prediction: Prediction, *, ttl_days: int | None = None, reading: bytes | None = None
) -> dict[str, Any]:
    """The DynamoDB item (document form) for a prediction; floats become ``Decimal``.

    ``ttl_days`` sets :data:`TTL_ATTRIBUTE` that many days after ``scored_at``; ``None`` or 0
    keeps the item forever. ``reading`` (the scored signals, packed) is kept as a binary
    attribute so the vehicle's history can be read back (:mod:`evpm.past_readings`).

    Example: ``to_item(p)["health_score"] == Decimal("90.0")``.
    """
    item: dict[str, Any] = {
        PARTITION_KEY: prediction.vehicle_id,
        SORT_KEY: prediction.ts,
        "record_id": prediction.record_id,
        "status": prediction.status,
        "health_score": Decimal(str(prediction.health_score)),
        "failure_mode": prediction.failure_mode,
        "findings": [finding.model_dump() for finding in prediction.findings],
        "model_versions": dict(prediction.model_versions),
        "scored_at": format_timestamp(prediction.scored_at),
    }
    for key in MODEL_FIELDS:
        value = getattr(prediction, key)
        if value is None:
            continue
        if isinstance(value, dict):
            item[key] = {k: Decimal(repr(float(v))) for k, v in value.items()}
        elif isinstance(value, bool | str):
            item[key] = value
        else:
            item[key] = Decimal(repr(float(value)))
    if reading is not None:
        item[READING_ATTRIBUTE] = reading
    if ttl_days:
        expires = prediction.scored_at + timedelta(days=ttl_days)
        item[TTL_ATTRIBUTE] = int(expires.timestamp())
    return item


def from_item(item: Mapping[str, Any]) -> Prediction:
    """Rebuild a prediction from a stored item (``Decimal`` numbers, extra attributes ignored).

    Example: ``from_item(to_item(p)) == p``.
    """
    return Prediction(
        vehicle_id=item[PARTITION_KEY],
        ts=item[SORT_KEY],
        record_id=item["record_id"],
        status=item["status"],
        health_score=float(item["health_score"]),
        failure_mode=item["failure_mode"],
        findings=[Finding.model_validate(f) for f in item.get("findings", [])],
        model_versions=dict(item["model_versions"]),
        scored_at=datetime.strptime(item["scored_at"], TIMESTAMP_FORMAT).replace(tzinfo=UTC),
        **{k: _model_value(item[k]) for k in MODEL_FIELDS if item.get(k) is not None},
    )
