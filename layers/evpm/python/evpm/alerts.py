"""Which predictions raise a fleet alert, and how repeats are recognised.

Why deduplicate: a vehicle with worn brakes reports a ``brake_wear`` reading every few seconds,
and Kinesis may deliver each record more than once. The on-call people want one alert per
vehicle and failure mode per window (default one hour), not thousands. The key of that window
is :func:`dedup_key`; the scorer claims it with a conditional write before it publishes, and a
claim only counts once the event was published (see ``functions/scorer/alert_sink.py``).

Pure: no AWS here; the handler maps stream records in and sends the result to EventBridge.

Example::

    [a.alert.failure_mode for a in select_alerts(accepted)]   # ["brake_wear"]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from evpm.health import FailureMode, Status
from evpm.ingest import AcceptedRecord
from evpm.predictions import Prediction

__all__ = [
    "ALERT_DETAIL_TYPE",
    "ALERT_SOURCE",
    "DEFAULT_WINDOW_SECONDS",
    "Alert",
    "PendingAlert",
    "dedup_key",
    "is_alerting",
    "select_alerts",
    "window_end",
]

ALERT_SOURCE = "evpm.scorer"
ALERT_DETAIL_TYPE = "VehicleAlert"
DEFAULT_WINDOW_SECONDS = 3600


class Alert(BaseModel):
    """The ``detail`` of a ``VehicleAlert`` event: what was seen, on which reading, by whom."""

    model_config = ConfigDict(frozen=True)

    vehicle_id: str
    ts: str = Field(description="UTC time of the reading that raised the alert")
    failure_mode: FailureMode
    status: Status
    health_score: float
    model_versions: dict[str, str]

    @classmethod
    def of(cls, prediction: Prediction) -> Alert:
        """The alert for one prediction (call only when :func:`is_alerting` holds)."""
        return cls(
            vehicle_id=prediction.vehicle_id,
            ts=prediction.ts,
            failure_mode=prediction.failure_mode,
            status=prediction.status,
            health_score=prediction.health_score,
            model_versions=dict(prediction.model_versions),
        )

    @property
    def key(self) -> str:
        return dedup_key(self.vehicle_id, self.failure_mode)


@dataclass(frozen=True, slots=True)
class PendingAlert:
    """An alert and the stream record it came from (what to retry if publishing fails)."""

    alert: Alert
    sequence_number: str


def is_alerting(prediction: Prediction) -> bool:
    """A critical status, or any named failure mode, is worth telling a human about.

    Example: a ``watch`` with ``brake_wear`` alerts; an ``ok`` with ``none`` does not.
    """
    return prediction.status == "critical" or prediction.failure_mode != "none"


def dedup_key(vehicle_id: str, failure_mode: str) -> str:
    """One alert per vehicle and failure mode per window share this key.

    Example: ``dedup_key("EV-0042", "brake_wear") == "EV-0042#brake_wear"`` (``#`` cannot occur
    in a vehicle id, so keys never collide).
    """
    return f"{vehicle_id}#{failure_mode}"


def window_end(now: datetime, window_seconds: int) -> int:
    """Epoch second at which a claim made at ``now`` stops suppressing repeats.

    Example: ``window_end(datetime(2024, 5, 1, tzinfo=UTC), 3600) == 1714525200``.
    """
    if window_seconds <= 0:
        raise ValueError(f"window_seconds must be > 0, got {window_seconds}")
    return int(now.timestamp()) + window_seconds


def select_alerts(accepted: Sequence[AcceptedRecord]) -> list[PendingAlert]:
    """The alerts one batch raises, at most one per dedup key (the latest reading wins).

    Collapsing inside the batch saves a conditional write per repeat; repeats across batches
    are the dedup table's job.
    """
    latest: dict[str, PendingAlert] = {}
    for record in accepted:
        prediction = record.prediction
        if not is_alerting(prediction):
            continue
        pending = PendingAlert(Alert.of(prediction), record.sequence_number)
        current = latest.get(pending.alert.key)
        if current is None or pending.alert.ts >= current.alert.ts:
            latest[pending.alert.key] = pending
    return list(latest.values())
