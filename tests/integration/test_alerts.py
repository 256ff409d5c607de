"""Critical telemetry on the stream → one VehicleAlert per vehicle+mode in the audit queue.

The scorer claims each (vehicle, failure mode) for an hour before it publishes on the
``evpm-alerts`` bus; a rule copies every alert to ``evpm-alerts-audit``. Sending the same
critical readings twice (and new critical readings for the same vehicles) must not add alerts.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.integration.conftest import System
from tests.integration.test_api_gateway import RECORD

VEHICLES = 3


def _records(prefix: str, start: datetime) -> list[dict[str, Any]]:
    """Per vehicle: two brake-wear readings and one motor-overheating reading."""
    out = []
    for v in range(VEHICLES):
        vid = f"{prefix}-{v:03d}"
        for i, changes in enumerate(
            [{"Brake_Pad_Wear": 90.0}, {"Brake_Pad_Wear": 92.0}, {"Motor_Temperature": 150.0}]
        ):
            ts = (start + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            out.append({**RECORD, **changes, "vehicle_id": vid, "timestamp": ts})
    return out


def _put(system: System, records: list[dict[str, Any]]) -> None:
    response = system.client("kinesis").put_records(
        StreamName=system.stream,
        Records=[{"Data": json.dumps(r).encode(), "PartitionKey": r["vehicle_id"]} for r in records],
    )
    assert response.get("FailedRecordCount", 0) == 0


def _drain(system: System, url: str, prefix: str, seen: list[dict[str, Any]]) -> None:
    sqs = system.client("sqs")
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=0).get("Messages", []):
        for message in batch:
            event = json.loads(message["Body"])
            if event.get("detail", {}).get("vehicle_id", "").startswith(prefix):
                seen.append(event)
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])


def _predictions(system: System, prefix: str) -> int:
    table = system.client("dynamodb")
    return sum(
        table.query(TableName=system.table, Select="COUNT", KeyConditionExpression="vehicle_id = :v",
                    ExpressionAttributeValues={":v": {"S": f"{prefix}-{v:03d}"}})["Count"]
        for v in range(VEHICLES)
    )


def test_critical_telemetry_alerts_once_per_vehicle_and_mode(system: System) -> None:
    url = system.info["stacks"]["AlertsAuditQueueUrl"]
    prefix = f"EVA{uuid.uuid4().hex[:6]}"
    start = datetime(2026, 3, 1, 12, tzinfo=UTC)
    first, later = _records(prefix, start), _records(prefix, start + timedelta(minutes=5))
    seen: list[dict[str, Any]] = []

    # WHEN the critical readings are sent twice, then newer critical readings for the same cars
    _put(system, first)
    _put(system, first)
    _put(system, later)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _predictions(system, prefix) < 2 * len(first):
        _drain(system, url, prefix, seen)
        time.sleep(1)
    assert _predictions(system, prefix) == 2 * len(first), "the stream was not scored in time"
    time.sleep(3)  # let the last batch's events pass the rule
    _drain(system, url, prefix, seen)

    # THEN exactly one alert per vehicle and failure mode reached the audit queue
    keys = sorted((e["detail"]["vehicle_id"], e["detail"]["failure_mode"]) for e in seen)
    expected = sorted(
        (f"{prefix}-{v:03d}", mode)
        for v in range(VEHICLES)
        for mode in ("brake_wear", "motor_overheating")
    )
    assert keys == expected
    for event in seen:
        assert event["source"] == "evpm.scorer" and event["detail-type"] == "VehicleAlert"
        assert event["detail"]["status"] == "critical"
        assert event["detail"]["model_versions"]["health"] == "rules-v1"
        assert set(event["detail"]["model_versions"]) == {"health", "ev-anomaly", "ev-classifier",
                                                          "ev-rul"}
        assert set(event["detail"]) == {"vehicle_id", "ts", "failure_mode", "status",
                                        "health_score", "model_versions"}
