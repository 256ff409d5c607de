"""Prediction ↔ DynamoDB item, and the key that makes redelivery idempotent."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from evpm.predictions import TTL_ATTRIBUTE, from_item, record_id, to_item
from evpm.scoring import score_records
from evpm.telemetry import TelemetryRecord

NOW = datetime(2024, 5, 1, 12, 0, 1, 250000, tzinfo=UTC)


def _prediction(make_payload, **changes):
    record = TelemetryRecord.model_validate(make_payload(**changes))
    return score_records([record], now=NOW)[0]


def test_record_id_is_deterministic_and_distinguishes_keys():
    ts = "2024-05-01T12:00:00.000000Z"
    assert record_id("EV-1", ts) == record_id("EV-1", ts)
    assert len(record_id("EV-1", ts)) == 32
    assert record_id("EV-1", ts) != record_id("EV-2", ts)
    assert record_id("EV-1", ts) != record_id("EV-1", "2024-05-01T12:00:00.000001Z")


def test_two_spellings_of_one_reading_give_one_key(make_payload):
    # GIVEN the same reading delivered twice, once with an offset
    a = _prediction(make_payload, timestamp="2024-05-01T12:00:00Z")
    b = _prediction(make_payload, timestamp="2024-05-01T14:00:00+02:00")
    # THEN both map to the same table key and record id (the second write overwrites the first)
    item_a, item_b = to_item(a), to_item(b)
    assert (item_a["vehicle_id"], item_a["ts"]) == (item_b["vehicle_id"], item_b["ts"])
    assert a.record_id == b.record_id


def test_item_round_trip_with_decimals(make_payload):
    prediction = _prediction(make_payload, Brake_Pad_Wear=75.0)
    item = to_item(prediction)
    assert item["health_score"] == Decimal("90.0")
    assert not any(isinstance(v, float) for v in item.values())
    assert item["model_versions"] == {"health": "rules-v1"}
    assert item["findings"][0]["rule_id"] == "BRK-PAD"
    assert item["scored_at"] == "2024-05-01T12:00:01.250000Z"
    assert from_item(item) == prediction


def test_ttl_is_set_from_scored_at(make_payload):
    item = to_item(_prediction(make_payload), ttl_days=90)
    assert item[TTL_ATTRIBUTE] == int(
        datetime(2024, 7, 30, 12, 0, 1, 250000, tzinfo=UTC).timestamp()
    )
    assert TTL_ATTRIBUTE not in to_item(_prediction(make_payload), ttl_days=0)


def test_from_item_ignores_extra_attributes(make_payload):
    prediction = _prediction(make_payload)
    assert from_item(to_item(prediction, ttl_days=90)) == prediction
