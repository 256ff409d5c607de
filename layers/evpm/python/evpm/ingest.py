"""Pure batch processing for the telemetry stream: decode, validate, park the poison, score.

A Kinesis shard delivers records in order and retries a failed batch from the failed record
onwards, so one bad record that raised would block its shard until the data expired. Here a
record that cannot become a :class:`~evpm.telemetry.TelemetryRecord` (bytes that are not UTF-8,
text that is not JSON, JSON that breaks the schema) is *parked* with the reason and the original
data, and the rest of the batch is scored in one vectorised call. Nothing in this module raises
for bad input, and nothing here knows about AWS: the handler maps event records in and sends
the outcome to DynamoDB and the dead-letter queue.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from evpm.past_readings import pack_reading
from evpm.predictions import Prediction
from evpm.scoring import RULES_SCORER, Readings, Scorer, score_readings
from evpm.serving import History, ServedModels
from evpm.telemetry import FEATURES, TelemetryRecord, read_json

__all__ = [
    "AcceptedRecord",
    "BatchOutcome",
    "FieldError",
    "ParkReason",
    "ParkedRecord",
    "RawRecord",
    "process_batch",
]

ParkReason = Literal["undecodable", "invalid_json", "schema_violation"]


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One stream record as delivered, before anything is trusted."""

    sequence_number: str
    partition_key: str
    shard_id: str
    data: bytes


class FieldError(BaseModel):
    """Which field was wrong and why (``field`` is a dotted path, empty for the whole record)."""

    model_config = ConfigDict(frozen=True)

    field: str
    reason: str


class ParkedRecord(BaseModel):
    """A record set aside for a human: why, the original data, and where it came from."""

    model_config = ConfigDict(frozen=True)

    reason: ParkReason
    errors: list[FieldError]
    record: str
    sequence_number: str
    partition_key: str
    shard_id: str


@dataclass(frozen=True, slots=True)
class AcceptedRecord:
    """A prediction with the sequence number of the stream record it came from.

    The handler needs the pairing to report exactly which records to retry when a write fails.
    """

    sequence_number: str
    prediction: Prediction
    reading: bytes | None = None
    """The scored signals (:func:`evpm.past_readings.pack_reading`), stored beside the
    prediction so that a scorer without this vehicle's history can read its past back."""


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """Everything a batch turned into: accepted predictions (in input order) and parked records."""

    accepted: list[AcceptedRecord] = field(default_factory=list)
    parked: list[ParkedRecord] = field(default_factory=list)

    @property
    def predictions(self) -> list[Prediction]:
        return [a.prediction for a in self.accepted]


def _park(raw: RawRecord, reason: ParkReason, errors: list[FieldError]) -> ParkedRecord:
    return ParkedRecord(
        reason=reason,
        errors=errors,
        record=raw.data.decode("utf-8", errors="backslashreplace"),
        sequence_number=raw.sequence_number,
        partition_key=raw.partition_key,
        shard_id=raw.shard_id,
    )


def _field_errors(error: ValidationError) -> list[FieldError]:
    return [
        FieldError(field=".".join(str(part) for part in e["loc"]), reason=e["msg"])
        for e in error.errors(include_url=False)
    ]


def _validate(raw: RawRecord) -> TelemetryRecord | ParkedRecord:
    # A well-formed record (nearly all of them) is parsed and validated in one pydantic call,
    # at about half the cost of json.loads then validation; any record it refuses takes the
    # steps below, which say why as before (a test holds both to the same records and values).
    try:
        return TelemetryRecord.model_validate_json(raw.data)
    except ValidationError:
        pass
    try:
        text = raw.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _park(raw, "undecodable", [FieldError(field="", reason=f"not UTF-8: {exc}")])
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        return _park(raw, "invalid_json", [FieldError(field="", reason=f"not JSON: {exc}")])
    if not isinstance(payload, dict):
        reason = f"expected a JSON object, got {type(payload).__name__}"
        return _park(raw, "schema_violation", [FieldError(field="", reason=reason)])
    try:
        return TelemetryRecord.model_validate(payload)
    except ValidationError as exc:
        return _park(raw, "schema_violation", _field_errors(exc))


def process_batch(
    records: Sequence[RawRecord],
    *,
    scorer: Scorer = RULES_SCORER,
    models: ServedModels | None = None,
    history: History | None = None,
    now: datetime | None = None,
) -> BatchOutcome:
    """Validate every record, park the ones that cannot be read, score the rest at once.

    Example::

        outcome = process_batch([RawRecord("1", "EV-1", "shardId-0", b"not json")])
        outcome.parked[0].reason   # "invalid_json"
    """
    # Nearly every record is valid: read straight into its values (read_json, the records
    # and values the model accepts and gives); one it refuses takes _validate's steps, which
    # say why, or (should the two ever differ) accept it after all.
    ids: list[str] = []
    times: list[datetime] = []
    rows: list[tuple[float, ...]] = []
    sequence_numbers: list[str] = []
    parked: list[ParkedRecord] = []
    for raw in records:
        reading = read_json(raw.data)
        if reading is None:
            result = _validate(raw)
            if isinstance(result, ParkedRecord):
                parked.append(result)
                continue
            reading = (result.vehicle_id, result.timestamp, _SENSORS(result))
        ids.append(reading[0])
        times.append(reading[1])
        rows.append(reading[2])
        sequence_numbers.append(raw.sequence_number)
    # One pass over the values (np.array of a list of tuples inspects each tuple first).
    values = itertools.chain.from_iterable(rows)
    flat = np.fromiter(values, np.float64, count=len(rows) * len(FEATURES))
    matrix = flat.reshape(len(rows), len(FEATURES))
    predictions = score_readings(
        Readings(ids, times, matrix), scorer=scorer, models=models, history=history, now=now
    )
    accepted = [
        AcceptedRecord(sequence_number=seq, prediction=prediction, reading=reading)
        for seq, prediction, reading in zip(
            sequence_numbers, predictions, _packed(matrix), strict=True
        )
    ]
    return BatchOutcome(accepted=accepted, parked=parked)


_SENSORS = attrgetter(*FEATURES)


def _packed(matrix: np.ndarray) -> list[bytes]:
    """Each row of the batch's matrix as stored bytes, cut from one conversion."""
    blob = pack_reading(matrix)
    width = len(blob) // len(matrix) if len(matrix) else 0
    return [blob[i : i + width] for i in range(0, len(blob), width)] if width else []
