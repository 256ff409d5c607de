"""Kinesis → scorer → DynamoDB/DLQ through the deployed event source mapping: nothing lost."""

from __future__ import annotations

import json
import time
import uuid

from evpm.past_readings import unpack_readings
from evpm.telemetry import FEATURES, TelemetryRecord
from evpm_cli import loadgen, stream
from tests.integration.conftest import System, drain_dlq

TOTAL, MALFORMED, VEHICLES = 1000, 10, 20


def _count_predictions(system: System, prefix: str) -> int:
    table = system.client("dynamodb")
    total = 0
    for v in range(VEHICLES):
        pages = table.get_paginator("query").paginate(
            TableName=system.table, Select="COUNT",
            KeyConditionExpression="vehicle_id = :v",
            ExpressionAttributeValues={":v": {"S": f"{prefix}-{v:05d}"}})
        total += sum(page["Count"] for page in pages)
    return total


def test_every_record_is_scored_or_parked_once(system: System) -> None:
    prefix = f"EVT{uuid.uuid4().hex[:6]}"
    records = list(loadgen.generate(TOTAL, vehicles=VEHICLES, malformed=MALFORMED,
                                          prefix=prefix))
    assert sum(1 for *_, valid in records if not valid) == MALFORMED
    kinesis = system.client("kinesis")

    started = time.monotonic()
    stream.put_all(kinesis, system.stream, records)
    parked: dict[str, dict] = {}
    predictions = 0
    while time.monotonic() - started < 60:
        predictions = _count_predictions(system, prefix)
        drain_dlq(system, prefix, parked)
        if predictions >= TOTAL - MALFORMED and len(parked) >= MALFORMED:
            break
        time.sleep(1)
    elapsed = time.monotonic() - started
    assert predictions == TOTAL - MALFORMED, f"{predictions} predictions after {elapsed:.0f} s"
    assert len(parked) == MALFORMED, f"{len(parked)} DLQ messages after {elapsed:.0f} s"
    assert elapsed < 60
    for body in parked.values():
        assert body["reason"], body
        assert body["record"], body

    # The same records again: redelivery must not create a second prediction.
    stream.put_all(kinesis, system.stream, records)
    again: dict[str, dict] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(again) < MALFORMED:
        drain_dlq(system, prefix, again)
        time.sleep(1)
    assert len(again) == MALFORMED, "the replay was not fully processed"
    assert _count_predictions(system, prefix) == TOTAL - MALFORMED


def test_prediction_items_name_what_produced_them(system: System) -> None:
    prefix = f"EVN{uuid.uuid4().hex[:6]}"
    records = list(loadgen.generate(5, vehicles=1, prefix=prefix))
    stream.put_all(system.client("kinesis"), system.stream, records)
    table = system.client("dynamodb")
    items: list = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(items) < 5:
        items = table.query(TableName=system.table, KeyConditionExpression="vehicle_id = :v",
                            ExpressionAttributeValues={":v": {"S": f"{prefix}-00000"}})["Items"]
        time.sleep(0.5)
    assert len(items) == 5
    assert all(item["model_versions"]["M"]["health"]["S"] == "rules-v1" for item in items)
    # AND each item keeps the reading it scored, bit for bit (a fresh worker's history)
    sent = {json.loads(data)["timestamp"]: json.loads(data) for _, data, _ in records}
    for item in items:
        reading = unpack_readings([item["reading"]["B"]])[0]
        record = TelemetryRecord.model_validate(sent[_wire_ts(item["ts"]["S"], sent)])
        assert reading.tolist() == [float(getattr(record, f)) for f in FEATURES]


def _wire_ts(stored: str, sent: dict) -> str:
    """The sent timestamp text of a stored (normalised, fixed-width) reading time."""
    from evpm.telemetry import format_timestamp

    by_stamp = {format_timestamp(TelemetryRecord.model_validate(r).timestamp): ts
                for ts, r in sent.items()}
    return by_stamp[stored]
