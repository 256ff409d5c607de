"""Ground truth from the field: what a workshop actually found on a vehicle, for a reading.

Why store it: live accuracy and label drift (the monitor) and the next training run all need
to know what really happened after a prediction. A label is keyed exactly like the prediction
it answers (``vehicle_id`` + the reading's normalised ``ts``), so the two join on the key.

Every report is kept: workshops disagree and correct each other, and who said what when is the
audit trail, so a second report on the same reading is appended to the item's ``reports`` list
(oldest first) instead of replacing the first. The item's top-level fields are those of the
latest report, for readers that only want the current truth; an observation the latest report
leaves out is removed there (it stays in the report that made it).

A report normally answers a stored prediction (the API refuses one that does not); a
*free-standing* one records an outcome no prediction was made for (a breakdown between
readings, a reading whose prediction has expired) and says so in ``free_standing``.

Items and updates use the document form of the boto3 resource API (``Decimal`` numbers);
nothing here imports an AWS SDK: :func:`to_update` builds the update, the store sends it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evpm.health import FailureMode
from evpm.predictions import PARTITION_KEY, SORT_KEY
from evpm.telemetry import _EARLIEST, _LATEST, VEHICLE_ID_PATTERN, format_timestamp

__all__ = [
    "LABEL_EXAMPLE",
    "REPORTS_ATTRIBUTE",
    "Feedback",
    "Label",
    "LabelUpdate",
    "report_of",
    "to_update",
]

REPORTS_ATTRIBUTE = "reports"
"""The item's list of every report on the reading, oldest first (see :func:`to_update`)."""

_OBSERVATIONS = ("failure_mode", "rul_hours", "notes", "free_standing")
"""The optional fields of a report: absent ones are left out of it, not stored as null."""

_EXAMPLE: dict[str, Any] = {
    "vehicle_id": "EV-0042",
    "ts": "2024-05-01T12:00:00.000000Z",
    "failure_mode": "brake_wear",
    "rul_hours": 36.0,
    "notes": "front pads at 2 mm, replaced",
}
LABEL_EXAMPLE: dict[str, Any] = {
    **_EXAMPLE,
    "free_standing": False,
    "received_at": "2024-05-03T09:30:00.000000Z",
    "reported_by": "a1b2c3d4e5",
}
"""A stored report as /docs shows it (the API's response adds to it)."""


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
    free_standing: bool = Field(
        default=False,
        description="true: record an outcome that answers no prediction (a breakdown between "
        "readings, a reading whose prediction has expired); false (the default): the reading "
        "must have been scored, or the report is refused with 404",
    )

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
    """One stored report: the feedback, its normalised key, when and from which key it came."""

    model_config = ConfigDict(frozen=True, json_schema_extra={"examples": [LABEL_EXAMPLE]})

    vehicle_id: str
    ts: str = Field(description="normalised UTC time of the reading (sort key)")
    failure_mode: FailureMode | None
    rul_hours: float | None
    notes: str | None
    free_standing: bool = Field(default=False, description="answers no stored prediction")
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
            free_standing=feedback.free_standing,
            received_at=format_timestamp(received_at),
            reported_by=reported_by,
        )


def report_of(label: Label) -> dict[str, Any]:
    """One report in document form: who, when, and what was observed (absent ones left out).

    Example: ``report_of(label)["rul_hours"] == Decimal("36.0")``.
    """
    report: dict[str, Any] = {"received_at": label.received_at, "reported_by": label.reported_by}
    if label.failure_mode is not None:
        report["failure_mode"] = label.failure_mode
    if label.rul_hours is not None:
        report["rul_hours"] = Decimal(str(label.rul_hours))
    if label.notes:
        report["notes"] = label.notes
    if label.free_standing:
        report["free_standing"] = True
    return report


@dataclass(frozen=True, slots=True)
class LabelUpdate:
    """A DynamoDB ``UpdateItem`` in document form (the store serialises the values)."""

    key: dict[str, str]
    expression: str
    names: dict[str, str]
    values: dict[str, Any]


def to_update(label: Label) -> LabelUpdate:
    """Add ``label`` as the reading's latest report, in one atomic update.

    The report is appended to :data:`REPORTS_ATTRIBUTE` (created on the first report), and the
    top level becomes the report: its fields are set, the observations it leaves out removed.
    One ``UpdateItem`` rather than read-modify-write, so two reports arriving together are both
    kept. Placeholders stand for every attribute name, so none can clash with a reserved word.

    Example: ``to_update(label).expression`` starts with ``"SET #a0 = :v0"``.
    """
    report = report_of(label)
    names = {f"#a{i}": name for i, name in enumerate(report)}
    values: dict[str, Any] = {f":v{i}": value for i, value in enumerate(report.values())}
    sets = [f"#a{i} = :v{i}" for i in range(len(report))]
    names["#r"] = REPORTS_ATTRIBUTE
    values |= {":empty": [], ":new": [report]}
    sets.append("#r = list_append(if_not_exists(#r, :empty), :new)")
    absent = [name for name in _OBSERVATIONS if name not in report]
    names |= {f"#x{i}": name for i, name in enumerate(absent)}
    expression = "SET " + ", ".join(sets)
    if absent:
        expression += " REMOVE " + ", ".join(f"#x{i}" for i in range(len(absent)))
    return LabelUpdate(
        key={PARTITION_KEY: label.vehicle_id, SORT_KEY: label.ts},
        expression=expression,
        names=names,
        values=values,
    )
