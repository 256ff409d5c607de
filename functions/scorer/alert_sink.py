"""Publishing ``VehicleAlert`` events to EventBridge, at most once per vehicle+mode per window.

How one alert goes out (why in this order):

1. **claim** the window with a conditional put on the dedup table (``alert_key`` =
   vehicle#mode). The put succeeds only if no claim exists, the last one expired, or the last one
   is still ``pending`` (its event was never confirmed as published). A failed condition means
   a repeat inside the window: the alert is suppressed.
2. **publish** with ``PutEvents`` (10 entries per call).
3. **confirm** the claim (``state = sent``). Only a confirmed claim suppresses repeats, so a
   claim whose event was not put never hides the alert from the retry.

Repeats are the common case on a stream (a worn vehicle reports every few seconds), so the sink
remembers, per execution environment, the windows it has seen *confirmed*: its own confirms, and
the claims whose conditional put failed (``ReturnValuesOnConditionCheckFailure=ALL_OLD`` shows
the ``sent`` claim and its ``expires_at``). A repeat inside such a window is suppressed without
a call: the conditional put would fail anyway, since a sent claim is only ever replaced after it
expires. The table stays the single source of truth; the memory only saves round trips.

If publishing fails the claim is released (best effort; a leftover ``pending`` claim can be
re-claimed anyway) and the record is reported as a batch item failure, so Kinesis redelivers
it and the alert is tried again. A confirm that fails after a successful put is only logged:
the event is out, and the worst case is one duplicate alert, never a lost one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from evpm.alerts import ALERT_DETAIL_TYPE, ALERT_SOURCE, PendingAlert, window_end

__all__ = ["AlertReport", "AlertSink", "DedupedEventBridgeAlertSink"]

logger = Logger(child=True)

_EVENTS_BATCH = 10  # put_events limit
_PENDING, _SENT = "pending", "sent"
_KNOWN_WINDOWS_MAX = 100_000  # remembered sent windows per environment (a few MB at most)


@dataclass
class AlertReport:
    """What happened to a batch's alerts; ``failed`` holds sequence numbers to retry."""

    sent: int = 0
    suppressed: int = 0
    failed: list[str] = field(default_factory=list)


class AlertSink(Protocol):
    """Publishes alerts, dropping repeats inside the window; reports what must be retried."""

    def publish(self, alerts: Sequence[PendingAlert]) -> AlertReport: ...


class DedupedEventBridgeAlertSink:
    """Claim in DynamoDB → ``PutEvents`` on the alert bus → confirm (see the module docstring)."""

    def __init__(
        self,
        *,
        bus_name: str,
        dedup_table: str,
        window_seconds: int,
        dynamodb: Any | None = None,
        events: Any | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if window_seconds <= 0:
            raise ValueError(f"window_seconds must be > 0, got {window_seconds}")
        self.bus_name = bus_name
        self.dedup_table = dedup_table
        self.window_seconds = window_seconds
        self._dynamodb = dynamodb
        self._events = events
        self._now = now
        self._sent_until: dict[str, int] = {}  # alert key -> expires_at of a confirmed window

    @property
    def dynamodb(self) -> Any:
        if self._dynamodb is None:
            self._dynamodb = boto3.client("dynamodb")
        return self._dynamodb

    @property
    def events(self) -> Any:
        if self._events is None:
            self._events = boto3.client("events")
        return self._events

    def publish(self, alerts: Sequence[PendingAlert]) -> AlertReport:
        report = AlertReport()
        now = self._now()
        claimed: list[tuple[PendingAlert, str]] = []
        epoch = int(now.timestamp())
        for pending in alerts:
            if self._sent_until.get(pending.alert.key, 0) > epoch:
                report.suppressed += 1  # a confirmed window we know of: no call needed
                continue
            claim_id = uuid.uuid4().hex
            try:
                won = self._claim(pending, claim_id, now)
            except (ClientError, BotoCoreError):
                logger.exception("alert claim failed", extra={"alert_key": pending.alert.key})
                report.failed.append(pending.sequence_number)
                continue
            if won:
                claimed.append((pending, claim_id))
            else:
                report.suppressed += 1
        expires_at = window_end(now, self.window_seconds)
        for start in range(0, len(claimed), _EVENTS_BATCH):
            self._put_chunk(claimed[start : start + _EVENTS_BATCH], report, expires_at)
        return report

    def _claim(self, pending: PendingAlert, claim_id: str, now: datetime) -> bool:
        alert = pending.alert
        try:
            self.dynamodb.put_item(
                TableName=self.dedup_table,
                Item={
                    "alert_key": {"S": alert.key},
                    "expires_at": {"N": str(window_end(now, self.window_seconds))},
                    "state": {"S": _PENDING},
                    "claim_id": {"S": claim_id},
                    "vehicle_id": {"S": alert.vehicle_id},
                    "failure_mode": {"S": alert.failure_mode},
                    "ts": {"S": alert.ts},
                },
                ConditionExpression=(
                    "attribute_not_exists(alert_key) OR expires_at <= :now OR #state = :pending"
                ),
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":now": {"N": str(int(now.timestamp()))},
                    ":pending": {"S": _PENDING},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                old = exc.response.get("Item") or {}
                if old.get("state", {}).get("S") == _SENT and "N" in old.get("expires_at", {}):
                    self._remember(alert.key, int(old["expires_at"]["N"]))
                return False
            raise
        return True

    def _remember(self, key: str, expires_at: int) -> None:
        if len(self._sent_until) >= _KNOWN_WINDOWS_MAX:
            epoch = int(self._now().timestamp())
            self._sent_until = {k: v for k, v in self._sent_until.items() if v > epoch}
            if len(self._sent_until) >= _KNOWN_WINDOWS_MAX:
                self._sent_until.clear()
        self._sent_until[key] = expires_at

    def _put_chunk(
        self, chunk: list[tuple[PendingAlert, str]], report: AlertReport, expires_at: int
    ) -> None:
        entries = [
            {
                "Source": ALERT_SOURCE,
                "DetailType": ALERT_DETAIL_TYPE,
                "Detail": pending.alert.model_dump_json(),
                "EventBusName": self.bus_name,
            }
            for pending, _ in chunk
        ]
        try:
            results = self.events.put_events(Entries=entries).get("Entries", [])
        except (ClientError, BotoCoreError):
            logger.exception("put_events failed", extra={"alerts": len(entries)})
            results = []
        for i, (pending, claim_id) in enumerate(chunk):
            result = results[i] if i < len(results) else {}
            if result.get("EventId") and not result.get("ErrorCode"):
                report.sent += 1
                if self._confirm(pending, claim_id):
                    self._remember(pending.alert.key, expires_at)
            else:
                report.failed.append(pending.sequence_number)
                self._release(pending, claim_id)

    def _confirm(self, pending: PendingAlert, claim_id: str) -> bool:
        try:
            self.dynamodb.update_item(
                TableName=self.dedup_table,
                Key={"alert_key": {"S": pending.alert.key}},
                UpdateExpression="SET #state = :sent",
                ConditionExpression="claim_id = :claim",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":sent": {"S": _SENT}, ":claim": {"S": claim_id}},
            )
        except (ClientError, BotoCoreError):
            logger.exception("alert sent but claim not confirmed; a repeat may be sent again")
            return False
        return True

    def _release(self, pending: PendingAlert, claim_id: str) -> None:
        try:
            self.dynamodb.delete_item(
                TableName=self.dedup_table,
                Key={"alert_key": {"S": pending.alert.key}},
                ConditionExpression="claim_id = :claim",
                ExpressionAttributeValues={":claim": {"S": claim_id}},
            )
        except (ClientError, BotoCoreError):
            logger.warning("claim not released; it stays re-claimable as pending")
