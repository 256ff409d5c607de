"""Data capture: what the scorer scored, kept in S3 for the drift monitor and for retraining.

Like SageMaker Model Monitor's data capture, but columnar: one object per scored batch, a
gzip'd JSON object of columns (``{"SoC": [...], "rul_hours": [...], ...}``). Why columns:
the monitor reads a million rows as a few thousand arrays, which ``orjson`` parses and numpy
takes at C speed; a JSON line per row would cost a Python object per value. Why JSON and not
Parquet: the functions' layer carries no pyarrow (tens of megabytes for one writer).

Sampling is decided per reading from its ``record_id`` (a hash of vehicle and time), not at
random: a batch redelivered after a failure captures the same readings again, and the reader
drops repeats by ``record_id`` (:func:`read_captures`), so a retry never counts twice.

Keys are partitioned by the hour the batch was scored (``…/dt=2024-05-01/hour=12/…``): a
window of the last hour lists one or two prefixes, never the whole capture.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

from evpm.predictions import Prediction
from evpm.telemetry import FEATURES

__all__ = [
    "CAPTURE_SCHEMA",
    "NUMERIC_OUTPUTS",
    "Captured",
    "capture_key",
    "encode_capture",
    "hour_prefixes",
    "read_captures",
    "sampled",
]

CAPTURE_SCHEMA = "evpm-capture/1"
NUMERIC_OUTPUTS = ("anomaly_score", "rul_hours", "rul_low_hours", "rul_high_hours", "health_score")
"""The models' numeric outputs captured per reading (``None`` → NaN where a model is absent)."""
CATEGORICAL_OUTPUTS = ("predicted_failure", "status")


def sampled(record_ids: Sequence[str], rate: float) -> np.ndarray:
    """Which readings a capture at ``rate`` keeps: the first 8 hex digits of each record id,
    read as a fraction of 2**32, below ``rate``. Deterministic, so retries agree.

    Example: ``sampled(["00000000aa", "ffffffffaa"], 0.5).tolist() == [True, False]``.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    if rate >= 1.0:
        return np.ones(len(record_ids), dtype=bool)
    head = np.array([int(r[:8], 16) for r in record_ids], dtype=np.float64)
    return head / 2.0**32 < rate


def capture_key(prefix: str, captured_at: datetime, batch_id: str) -> str:
    """``{prefix}dt=YYYY-MM-DD/hour=HH/{batch_id}.json.gz`` for a batch scored at
    ``captured_at``; ``batch_id`` names the batch (the scorer uses shard + first sequence
    number, so a redelivered batch overwrites its own object)."""
    at = captured_at.astimezone(UTC)
    return f"{prefix}dt={at:%Y-%m-%d}/hour={at:%H}/{batch_id}.json.gz"


def hour_prefixes(prefix: str, start: datetime, end: datetime) -> list[str]:
    """The hourly partitions a window ``[start, end)`` touches, oldest first."""
    at = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    stop = end.astimezone(UTC)
    out = []
    while at < stop:
        out.append(f"{prefix}dt={at:%Y-%m-%d}/hour={at:%H}/")
        at = datetime.fromtimestamp(at.timestamp() + 3600, UTC)
    return out


def _nan(values: Iterable[Any]) -> list[float | None]:
    return [None if v is None else float(v) for v in values]


def encode_capture(
    predictions: Sequence[Prediction], readings: np.ndarray, *, captured_at: datetime
) -> bytes:
    """One batch's captured rows (``readings`` = the ``(n, 24)`` signals scored) as gzip'd JSON.

    Model versions are stored once per distinct set, with an index per row: a batch is almost
    always scored by one set of pinned versions, so this costs a byte a row, not a dict.
    """
    if readings.shape != (len(predictions), len(FEATURES)):
        raise ValueError(f"readings shape {readings.shape} != ({len(predictions)}, 24)")
    version_sets: list[dict[str, str]] = []
    version_index: list[int] = []
    for p in predictions:
        if p.model_versions not in version_sets:
            version_sets.append(dict(p.model_versions))
        version_index.append(version_sets.index(p.model_versions))
    columns: dict[str, Any] = {
        "record_id": [p.record_id for p in predictions],
        "vehicle_id": [p.vehicle_id for p in predictions],
        "ts": [p.ts for p in predictions],
        "versions": version_index,
    }
    for j, name in enumerate(FEATURES):
        columns[name] = np.ascontiguousarray(readings[:, j], dtype=np.float64)
    for name in NUMERIC_OUTPUTS:
        columns[name] = _nan(getattr(p, name) for p in predictions)
    for name in CATEGORICAL_OUTPUTS:
        columns[name] = [getattr(p, name) for p in predictions]
    body = {
        "schema": CAPTURE_SCHEMA,
        "captured_at": captured_at.astimezone(UTC).isoformat(),
        "rows": len(predictions),
        "version_sets": version_sets,
        "columns": columns,
    }
    return gzip.compress(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), compresslevel=5)


@dataclass(frozen=True, slots=True)
class Captured:
    """Captured rows read back, as compact arrays (a million rows in a few hundred MB).

    ``columns`` holds the signals and numeric outputs (float64, NaN where absent) and the
    categorical ones (``vehicle_id``, ``predicted_failure``, ``status``; interned strings);
    ``seconds`` each reading's time (epoch seconds); ``version_sets[version_index[i]]`` the
    model versions that scored row ``i``.
    """

    columns: dict[str, np.ndarray]
    seconds: np.ndarray
    version_sets: list[dict[str, str]]
    version_index: np.ndarray
    rows: int
    objects: int
    duplicates: int
    """rows dropped because their ``record_id`` was already read (redelivered batches)."""

    def versions(self, row: int) -> dict[str, str]:
        return self.version_sets[int(self.version_index[row])]


_CATEGORICAL = ("vehicle_id", *CATEGORICAL_OUTPUTS)


def _decode(
    body: dict[str, Any], sets: list[dict[str, str]], names: dict[str, str]
) -> dict[str, np.ndarray]:
    """One object's columns as arrays; its version sets mapped into the shared list ``sets``."""
    raw = body["columns"]
    out: dict[str, np.ndarray] = {}
    for name in (*FEATURES, *NUMERIC_OUTPUTS):
        out[name] = np.array(raw[name], dtype=np.float64)  # None (no such model) → NaN
    for name in _CATEGORICAL:
        out[name] = np.array(
            [None if v is None else names.setdefault(v, v) for v in raw[name]], dtype=object
        )
    out["ts"] = np.array([t.rstrip("Z") for t in raw["ts"]], dtype="datetime64[s]").astype(np.int64)
    # 16 hex digits of the record id (a hash of vehicle and time): enough to spot repeats.
    out["key"] = np.array([int(r[:16], 16) for r in raw["record_id"]], dtype=np.uint64)
    local = []
    for version_set in body["version_sets"]:
        if version_set not in sets:
            sets.append(version_set)
        local.append(sets.index(version_set))
    out["versions"] = np.asarray(local, dtype=np.int32)[np.asarray(raw["versions"], dtype=np.int64)]
    return out


def read_captures(blobs: Iterable[bytes]) -> Captured:
    """Decode capture objects and concatenate them, dropping repeated ``record_id``s.

    Each object becomes arrays as soon as it is parsed, so memory holds one object's Python
    values at a time. Raises ``ValueError`` naming the schema for an object that is not a
    capture.
    """
    parts: list[dict[str, np.ndarray]] = []
    sets: list[dict[str, str]] = []
    names: dict[str, str] = {}
    for blob in blobs:
        body = orjson.loads(gzip.decompress(blob))
        if body.get("schema") != CAPTURE_SCHEMA:
            raise ValueError(f"not an {CAPTURE_SCHEMA} object (schema {body.get('schema')!r})")
        parts.append(_decode(body, sets, names))
    if not parts:
        empty = np.empty(0)
        return Captured({}, empty.astype(np.int64), [], empty.astype(np.int32), 0, 0, 0)
    objects = len(parts)
    merged = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    parts.clear()
    _, first = np.unique(merged.pop("key"), return_index=True)
    keep = np.sort(first)
    total = int(merged["ts"].size)
    seconds = merged.pop("ts")[keep]
    version_index = merged.pop("versions")[keep]
    return Captured(
        columns={name: values[keep] for name, values in merged.items()},
        seconds=seconds,
        version_sets=sets,
        version_index=version_index,
        rows=int(keep.size),
        objects=objects,
        duplicates=total - int(keep.size),
    )
