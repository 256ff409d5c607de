"""A vehicle's stored past readings, brought back where a scorer does not hold them.

Why: the models' rolling features (windows of up to a week of readings) come from a vehicle's
recent readings. A warm scorer worker holds them in its :class:`~evpm.serving.History`, but a
fresh worker (a cold start, a recycled or killed container, a scale-out), an LRU eviction and
the API's ``/predict`` do not; without them the same reading would get the features of a
vehicle's *first* reading, and a different prediction, depending on where it landed. Every
stored prediction keeps the reading it scored (:data:`READING_ATTRIBUTE`, the 24 signals as
little-endian float64, bit for bit), so on a miss the last readings before the new one are
read back (one query per vehicle, only on a miss) and the reading is scored on the same past
as on a warm worker.

Nothing here knows about AWS: a :class:`PastReadings` source (DynamoDB in
:mod:`evpm_aws.past_readings`, in-memory in tests) answers "the last ``limit`` readings of
this vehicle strictly before this time".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

import numpy as np

from evpm.telemetry import FEATURES, format_timestamp

if TYPE_CHECKING:
    from evpm.serving import History

__all__ = [
    "READING_ATTRIBUTE",
    "Past",
    "PastReadings",
    "PastUsed",
    "first_times",
    "pack_reading",
    "rehydrate",
    "stamp_seconds",
    "unpack_readings",
]

READING_ATTRIBUTE = "reading"
"""Item attribute holding the scored reading (``len(FEATURES)`` little-endian float64)."""
_DTYPE = np.dtype("<f8")
_WIDTH = len(FEATURES) * _DTYPE.itemsize


def pack_reading(values: np.ndarray) -> bytes:
    """One reading's signals (:data:`~evpm.telemetry.FEATURES` order) as stored bytes.

    Example: ``len(pack_reading(np.zeros(24))) == 192``.
    """
    return np.ascontiguousarray(values, dtype=_DTYPE).tobytes()


def unpack_readings(blobs: Sequence[bytes]) -> np.ndarray:
    """``(n, 24)`` float64 readings from stored bytes (exactly the values packed)."""
    if not blobs:
        return np.empty((0, len(FEATURES)), dtype=np.float64)
    bad = [len(b) for b in blobs if len(b) != _WIDTH]
    if bad:
        raise ValueError(f"a stored reading has {bad[0]} bytes, expected {_WIDTH}")
    return np.frombuffer(b"".join(blobs), dtype=_DTYPE).reshape(len(blobs), len(FEATURES))


def stamp_seconds(stamps: Sequence[str]) -> np.ndarray:
    """Epoch seconds of fixed-width UTC stamps (``…T12:00:00.000000Z``), equal bit for bit
    to ``datetime.timestamp()`` of the same instant (both are the correctly rounded quotient
    of the same whole microseconds by 10**6), which is what scoring uses."""
    if not stamps:
        return np.empty(0, dtype=np.float64)
    micros = np.array([s.rstrip("Z") for s in stamps], dtype="datetime64[us]").astype(np.int64)
    return micros / 1e6


@dataclass(frozen=True, slots=True)
class Past:
    """A vehicle's stored readings before some time, oldest first."""

    stamps: list[str]
    values: np.ndarray
    """``(len(stamps), 24)``."""


@dataclass(frozen=True, slots=True)
class PastUsed:
    """Which stored history a reading was scored on (what ``/predict`` reports)."""

    readings: int
    first_ts: str | None
    last_ts: str | None


class PastReadings(Protocol):
    """Answers, per vehicle, its last ``limit`` stored readings strictly before a time."""

    def before(self, wanted: Mapping[str, str], *, limit: int) -> dict[str, Past]:
        """``wanted``: vehicle id → fixed-width UTC stamp; the answer leaves out vehicles
        with nothing stored before it."""
        ...


def first_times(vehicle_ids: Sequence[str], times: np.ndarray) -> dict[str, float]:
    """Each vehicle's earliest time among a batch's readings."""
    first: dict[str, float] = {}
    for vid, t in zip(vehicle_ids, times.tolist(), strict=True):
        if vid not in first or t < first[vid]:
            first[vid] = t
    return first


def rehydrate(
    history: History,
    source: PastReadings,
    vehicle_ids: Sequence[str],
    times: np.ndarray,
    *,
    limit: int,
) -> dict[str, PastUsed]:
    """Load into ``history`` the stored past of every vehicle of the batch it does not hold.

    Only vehicles the history has no slot for are asked about (a warm vehicle costs nothing);
    each gets its last ``limit`` stored readings strictly before its earliest reading in the
    batch, so readings the stream already stored at or after it (a redelivered batch) are not
    mistaken for its past. Returns what was used per vehicle asked about (0 readings: nothing
    stored, a vehicle's first reading).
    """
    if limit < 1:
        return {}
    unheld = [i for i, vid in enumerate(vehicle_ids) if not history.holds(vid)]
    if not unheld:  # the warm stream's usual batch
        return {}
    missing = first_times([vehicle_ids[i] for i in unheld], times[unheld])
    wanted = {vid: format_timestamp(datetime.fromtimestamp(t, UTC)) for vid, t in missing.items()}
    found = source.before(wanted, limit=limit)
    used = {vid: PastUsed(readings=0, first_ts=None, last_ts=None) for vid in missing}
    ids: list[str] = []
    stamps: list[str] = []
    rows: list[np.ndarray] = []
    for vid, past in found.items():
        if vid not in missing or not past.stamps:
            continue
        ids.extend([vid] * len(past.stamps))
        stamps.extend(past.stamps)
        rows.append(past.values)
        used[vid] = PastUsed(len(past.stamps), past.stamps[0], past.stamps[-1])
    if ids:
        history.remember(ids, stamp_seconds(stamps), np.concatenate(rows))
    return used
