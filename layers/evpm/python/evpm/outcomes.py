"""Maintenance outcomes, and which predictions each one grades: the join rules, written once.

An *outcome* is what a workshop log says happened to a vehicle: it **failed** at a time with a
failure mode, or it was seen **without failure** up to a time. Outcomes arrive late, in files
(``labels/*.csv`` in S3) or one at a time (``/feedback``); they are stored by vehicle and time,
so the same outcome sent twice is one outcome.

The rules (what :func:`grade` implements, for a reading of vehicle *v* at time *t*):

1. **Its failure** is *v*'s first recorded failure at or after *t*. A reading between two
   failures of one vehicle is graded by the second; readings after the last failure are graded
   by none (yet). A failure before any reading of its vehicle grades nothing.
2. **True RUL** = that failure's time - *t*, in hours, capped at ``rul_cap_hours`` (the models'
   own cap). With no failure after *t*: if *v* was seen without failure up to at least
   *t* + cap, the true RUL is the cap; otherwise it is unknown (NaN): the reading is not graded.
3. **True failure mode** = that failure's mode if it came within ``horizon_hours`` of *t*;
   ``none`` if it came later, or if *v* was seen without failure up to at least *t* + horizon;
   otherwise unknown (``None``).
4. "Seen up to T" is the latest time of any outcome of *v* (a failure or a no-failure report):
   a maintenance log is taken to be complete up to its latest entry.

Each reading is graded by at most one failure and each failure is found by binary search over
its vehicle's sorted outcomes, so a million readings join in about a second.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evpm.health import FAILURE_MODES
from evpm.telemetry import VEHICLE_ID_PATTERN, format_timestamp

__all__ = [
    "OUTCOME_COLUMNS",
    "Graded",
    "Outcome",
    "OutcomeRow",
    "Reject",
    "grade",
    "outcome_of_feedback",
    "parse_outcome_file",
    "validate_rows",
]

OUTCOME_COLUMNS = ("vehicle_id", "failure_mode", "event_time", "reading_ts", "rul_hours")
"""A label file's columns. Each row gives ``vehicle_id``, ``failure_mode`` (a mode, or ``none``
for "no failure by then") and either ``event_time`` (when it failed / was seen fine) or
``reading_ts`` + ``rul_hours`` (the reading at that time had that many hours left)."""
_CLOCK_SKEW = timedelta(minutes=5)
_MAX_ROWS = 1_000_000


class Outcome(BaseModel):
    """One entry of a vehicle's maintenance log."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vehicle_id: str
    at: datetime = Field(description="when it failed, or up to when it was seen without failure")
    kind: Literal["failure", "no_failure"]
    failure_mode: str | None = Field(default=None, description="the mode, for a failure")

    @property
    def key(self) -> tuple[str, str]:
        """Its storage key: the same outcome sent twice is stored once."""
        return self.vehicle_id, format_timestamp(self.at)


class OutcomeRow(BaseModel):
    """One row of a label file, checked field by field (the reason names the field)."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    vehicle_id: str = Field(min_length=1, max_length=64, pattern=VEHICLE_ID_PATTERN)
    failure_mode: str
    event_time: datetime | None = None
    reading_ts: datetime | None = None
    rul_hours: float | None = Field(default=None, allow_inf_nan=False)

    @field_validator("failure_mode")
    @classmethod
    def _known_mode(cls, value: str) -> str:
        if value not in FAILURE_MODES:
            raise ValueError(f"unknown failure mode {value!r}; one of {', '.join(FAILURE_MODES)}")
        return value

    @field_validator("rul_hours")
    @classmethod
    def _not_negative(cls, value: float | None) -> float | None:
        if value is not None and value < 0:
            raise ValueError(f"negative RUL {value}: a failure cannot come before the reading")
        return value

    @field_validator("event_time", "reading_ts")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _one_time(self) -> OutcomeRow:
        has_event = self.event_time is not None
        has_reading = self.reading_ts is not None and self.rul_hours is not None
        if has_event == has_reading:
            raise ValueError("give event_time, or reading_ts with rul_hours (not both)")
        if has_reading and self.failure_mode == "none":
            raise ValueError("rul_hours names a failure: failure_mode 'none' cannot have one")
        return self

    def outcome(self) -> Outcome:
        at = self.event_time
        if at is None:
            assert self.reading_ts is not None and self.rul_hours is not None
            at = self.reading_ts + timedelta(hours=self.rul_hours)
        failed = self.failure_mode != "none"
        return Outcome(
            vehicle_id=self.vehicle_id,
            at=at,
            kind="failure" if failed else "no_failure",
            failure_mode=self.failure_mode if failed else None,
        )


@dataclass(frozen=True, slots=True)
class Reject:
    """A row that was not stored, with its 1-based line in the file and the reason."""

    line: int
    row: dict[str, str]
    reason: str


def _blank(value: str | None) -> str | None:
    return None if value is None or value.strip() == "" else value


def validate_rows(
    rows: Iterable[Mapping[str, str]],
    *,
    now: datetime,
    known_vehicle: Callable[[str], bool],
    first_line: int = 2,
) -> tuple[list[Outcome], list[Reject]]:
    """Check each row; return the outcomes to store and the rejects with their reasons.

    A row is rejected for a malformed field (named), an unknown vehicle (``known_vehicle``
    says no: evpm never scored it), or a time in the future (past ``now`` plus a five-minute
    clock skew). Duplicates within the file collapse to one outcome (the last), not rejects:
    re-sending is allowed and changes nothing.
    """
    kept: dict[tuple[str, str], Outcome] = {}
    rejects: list[Reject] = []
    for offset, raw in enumerate(rows):
        line = first_line + offset
        row = {k: v for k, v in raw.items() if k is not None}
        try:
            parsed = OutcomeRow.model_validate({k: _blank(v) for k, v in row.items()})
        except ValidationError as exc:
            rejects.append(Reject(line, row, _reason(exc)))
            continue
        outcome = parsed.outcome()
        if outcome.at > now + _CLOCK_SKEW:
            rejects.append(
                Reject(line, row, f"time {format_timestamp(outcome.at)} is in the future")
            )
            continue
        if not known_vehicle(outcome.vehicle_id):
            rejects.append(Reject(line, row, f"unknown vehicle {outcome.vehicle_id!r}"))
            continue
        kept[outcome.key] = outcome
    return list(kept.values()), rejects


def _reason(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or "row"
        parts.append(f"{field}: {error['msg']}")
    return "; ".join(parts)


def parse_outcome_file(body: bytes) -> list[dict[str, str]]:
    """A label file's rows (CSV with a header naming :data:`OUTCOME_COLUMNS`).

    Raises ``ValueError`` for a file that is not such a CSV: no header, a missing required
    column, or more than a million rows.
    """
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in ("vehicle_id", "failure_mode") if c not in header]
    if missing:
        raise ValueError(
            f"header lacks {', '.join(missing)} (columns: {', '.join(OUTCOME_COLUMNS)})"
        )
    rows = []
    for row in reader:
        rows.append(row)
        if len(rows) > _MAX_ROWS:
            raise ValueError(f"more than {_MAX_ROWS:,} rows: split the file")
    return rows


@dataclass(frozen=True, slots=True)
class Graded:
    """The truth of each reading under the join rules (NaN / ``None`` = not known yet)."""

    true_rul_hours: np.ndarray
    true_failure_mode: np.ndarray
    failure_index: np.ndarray
    """Index into the sorted failures (``failures``) of the failure grading each reading, -1
    for none: the audit trail of the join (a test counts matches with it)."""
    failures: list[Outcome]


def grade(
    vehicle_ids: Sequence[str] | np.ndarray,
    seconds: np.ndarray,
    outcomes: Iterable[Outcome],
    *,
    horizon_hours: float = 336.0,
    rul_cap_hours: float = 720.0,
) -> Graded:
    """Apply the join rules to readings (``vehicle_ids[i]`` at ``seconds[i]``, epoch seconds).

    How: vehicles become integer codes and times dense ranks (equal times, equal ranks), so
    ``code * width + rank`` is one exact, sortable key; each reading's failure is a binary
    search for its own key among the failures' keys.

    Example::

        fail = Outcome(vehicle_id="EV-1", at=t0 + timedelta(hours=10), kind="failure",
                       failure_mode="brake_wear")
        g = grade(["EV-1"], np.array([t0.timestamp()]), [fail])
        g.true_rul_hours[0], g.true_failure_mode[0]   # 10.0, "brake_wear"
    """
    ids = np.asarray(vehicle_ids, dtype=object).astype(str)
    t = np.asarray(seconds, dtype=np.float64)
    if ids.shape != t.shape:
        raise ValueError(f"{ids.size} vehicle ids for {t.size} times")
    items = list(outcomes)
    n = ids.size
    every_id = np.concatenate([ids, np.array([o.vehicle_id for o in items], dtype=str)])
    names, codes = np.unique(every_id, return_inverse=True)
    at = np.array([o.at.timestamp() for o in items], dtype=np.float64)
    _, ranks = np.unique(np.concatenate([t, at]), return_inverse=True)
    width = np.int64(n + len(items) + 1)
    reading_key = codes[:n].astype(np.int64) * width + ranks[:n]
    # Seen up to: the latest outcome of each vehicle (rule 4).
    seen = np.full(len(names), -np.inf)
    np.maximum.at(seen, codes[n:], at)
    seen_until = seen[codes[:n]]
    # Failures sorted by key; each reading finds the first at or after it (rule 1).
    failed = np.flatnonzero([o.kind == "failure" for o in items])
    failure_key = codes[n:][failed].astype(np.int64) * width + ranks[n:][failed]
    order = np.argsort(failure_key, kind="stable")
    failure_key, failed = failure_key[order], failed[order]
    failures = [items[i] for i in failed]
    pos = np.searchsorted(failure_key, reading_key, side="left")
    found = np.zeros(n, dtype=bool)
    if failures:  # the first key at or after the reading's must be of the same vehicle
        last = np.minimum(pos, len(failures) - 1)
        found = (pos < len(failures)) & (failure_key[last] // width == reading_key // width)
    index = np.where(found, pos, -1)
    hours_to = np.full(n, np.inf)
    hours_to[found] = (at[failed[index[found]]] - t[found]) / 3600.0
    # Rule 2: RUL, or the cap when the vehicle was seen fine for longer than the cap.
    rul = np.where(found, np.minimum(hours_to, rul_cap_hours), np.nan)
    rul[~found & (seen_until >= t + rul_cap_hours * 3600.0)] = rul_cap_hours
    # Rule 3: the failure's mode within the horizon; "none" when it is known not to come.
    mode = np.full(n, None, dtype=object)
    within = found & (hours_to <= horizon_hours)
    mode[within] = [failures[i].failure_mode for i in index[within]]
    later = found & (hours_to > horizon_hours)
    later |= ~found & (seen_until >= t + horizon_hours * 3600.0)
    mode[later] = "none"
    return Graded(
        true_rul_hours=rul, true_failure_mode=mode, failure_index=index, failures=failures
    )


def outcome_of_feedback(
    vehicle_id: str, ts: datetime, failure_mode: str | None, rul_hours: float | None
) -> Outcome | None:
    """What a ``/feedback`` report says as an outcome: a reading with ``rul_hours`` left and a
    mode failed at ``ts + rul_hours``; a mode without RUL failed at the reading; ``none``
    means the vehicle was fine at the reading. ``None`` when it says nothing usable."""
    if failure_mode == "none":
        return Outcome(vehicle_id=vehicle_id, at=ts, kind="no_failure")
    if failure_mode is None or (rul_hours is not None and not math.isfinite(rul_hours)):
        return None
    at = ts + timedelta(hours=rul_hours or 0.0)
    return Outcome(vehicle_id=vehicle_id, at=at, kind="failure", failure_mode=failure_mode)
