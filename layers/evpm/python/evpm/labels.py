"""Ground truth from the field: what a workshop actually found on a vehicle, for a reading.

Why store it: live accuracy and label drift (the monitor) and the next training run all need
to know what really happened after a prediction. A label is keyed exactly like the prediction
it answers (``vehicle_id`` + the reading's normalised ``ts``), so the two join on the key, and
a correction for the same reading overwrites the earlier label instead of adding a second one.

Items use the document form of the boto3 resource API (``Decimal`` numbers); nothing here
imports an AWS SDK.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evpm.health import FailureMode
from evpm.predictions import PARTITION_KEY, SORT_KEY
from evpm.telemetry import _EARLIEST, _LATEST, VEHICLE_ID_PATTERN, format_timestamp

__all__ = ["Feedback", "Label", "to_item"]

_EXAMPLE = {
    "vehicle_id": "EV-0042",
    "ts": "2024-05-01T12:00:00.000000Z",
    "failure_mode": "brake_wear",
    "rul_hours": 36.0,
    "notes": "front pads at 2 mm, replaced",
}


class Feedback(BaseModel):
    """What a fleet service reports: the reading it is about and what was observed.

    At least one of ``failure_mode`` and ``rul_hours`` is required: a label that says nothing
    cannot be scored against.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [_EXAMPLE]}
    )

    vehicle_id: str = Field(
        min_length=1, max_length=64, pattern=VEHICLE_ID_PATTERN, examples=["EV-0042"]
    )
    ts: datetime = Field(
        description="time of the reading the label is about; normalised to UTC like telemetry",
        examples=["2024-05-01T12:00:00.000000Z"],
    )
    failure_mode: FailureMode | None = Field(
        default=None, description="failure mode actually observed ('none' if the vehicle was fine)"
    )
    rul_hours: float | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        allow_inf_nan=False,
        description="observed remaining useful life in hours (time until the failure happened)",
    )
    notes: str | None = Field(default=None, max_length=2000)

    @field_validator("ts")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if not _EARLIEST <= value < _LATEST:
            raise ValueError("must be between 1970-01-01 and 2100-01-01 UTC")
        return value

    @model_validator(mode="after")
    def _observes_something(self) -> Feedback:
        if self.failure_mode is None and self.rul_hours is None:
            raise ValueError("give failure_mode, rul_hours or both")
        return self


class Label(BaseModel):
    """A stored label: the feedback, its normalised key, when and from which key it came."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    **_EXAMPLE,
                    "received_at": "2024-05-03T09:30:00.000000Z",
                    "reported_by": "a1b2c3d4e5",
                }
            ]
        },
    )

    vehicle_id: str
    ts: str = Field(description="normalised UTC time of the reading (sort key)")
    failure_mode: FailureMode | None
    rul_hours: float | None
    notes: str | None
    received_at: str
    reported_by: str = Field(description="id of the API key that reported it (audit)")

    @classmethod
    def of(cls, feedback: Feedback, *, received_at: datetime, reported_by: str) -> Label:
        """Example: ``Label.of(fb, received_at=now, reported_by="key-id").ts`` is fixed-width."""
        return cls(
            vehicle_id=feedback.vehicle_id,
            ts=format_timestamp(feedback.ts),
            failure_mode=feedback.failure_mode,
            rul_hours=feedback.rul_hours,
            notes=feedback.notes,
            received_at=format_timestamp(received_at),
            reported_by=reported_by,
        )


def to_item(label: Label) -> dict[str, Any]:
    """The DynamoDB item (document form); absent observations are left out, not stored as null.

    Example: ``to_item(label)["rul_hours"] == Decimal("36.0")``.
    """
    item: dict[str, Any] = {
        PARTITION_KEY: label.vehicle_id,
        SORT_KEY: label.ts,
        "received_at": label.received_at,
        "reported_by": label.reported_by,
    }
    if label.failure_mode is not None:
        item["failure_mode"] = label.failure_mode
    if label.rul_hours is not None:
        item["rul_hours"] = Decimal(str(label.rul_hours))
    if label.notes:
        item["notes"] = label.notes
    return item
