"""process_batch: poison is parked with a reason, never raised; the rest is scored at once."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from evpm.ingest import ParkedRecord, RawRecord, process_batch
from tests.unit.fakes import CountingScorer

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def _raw(seq: int, data: bytes) -> RawRecord:
    return RawRecord(
        sequence_number=str(seq), partition_key="EV-0042", shard_id="shardId-000", data=data
    )


def test_three_kinds_of_poison_are_parked_and_the_rest_scored(make_payload):
    # GIVEN a batch with good records and one of each kind of poison
    good = json.dumps(make_payload()).encode()
    batch = [
        _raw(1, good),
        _raw(2, b"\xff\xfe\x00 binary"),
        _raw(3, b'{"vehicle_id": "EV-1", "SoC": 5'),
        _raw(4, json.dumps(make_payload(SoC=130.0, Failure_Probability=1)).encode()),
        _raw(5, json.dumps(make_payload(vehicle_id="EV-0043")).encode()),
    ]
    # WHEN processed
    outcome = process_batch(batch, now=NOW)
    # THEN the good ones are predicted, with their sequence numbers
    assert [a.sequence_number for a in outcome.accepted] == ["1", "5"]
    assert [p.vehicle_id for p in outcome.predictions] == ["EV-0042", "EV-0043"]
    # AND each poison is parked with its reason, errors, original data and stream position
    by_seq = {p.sequence_number: p for p in outcome.parked}
    assert {seq: p.reason for seq, p in by_seq.items()} == {
        "2": "undecodable",
        "3": "invalid_json",
        "4": "schema_violation",
    }
    assert "UTF-8" in by_seq["2"].errors[0].reason
    assert by_seq["3"].record == '{"vehicle_id": "EV-1", "SoC": 5'
    assert {(e.field, e.reason.split(" (")[0]) for e in by_seq["4"].errors} == {
        ("SoC", "must be between 0 and 100 %"),
        ("Failure_Probability", "Extra inputs are not permitted"),
    }
    assert by_seq["4"].shard_id == "shardId-000" and by_seq["4"].partition_key == "EV-0042"


def test_json_that_is_not_an_object_is_a_schema_violation():
    outcome = process_batch([_raw(1, b"[1, 2]"), _raw(2, b"null")])
    assert [p.reason for p in outcome.parked] == ["schema_violation", "schema_violation"]
    assert outcome.accepted == []


def test_undecodable_record_keeps_its_bytes_readable():
    [parked] = process_batch([_raw(1, b"ok\xff")]).parked
    assert parked.record == "ok\\xff"
    ParkedRecord.model_validate_json(parked.model_dump_json())  # serialisable for the DLQ


def test_valid_records_are_scored_in_one_call(make_payload):
    scorer = CountingScorer()
    batch = [_raw(i, json.dumps(make_payload(vehicle_id=f"EV-{i}")).encode()) for i in range(50)]
    batch.insert(10, _raw(999, b"garbage"))
    outcome = process_batch(batch, scorer=scorer)
    assert scorer.shapes == [(50, 24)]
    assert len(outcome.predictions) == 50 and len(outcome.parked) == 1


def test_empty_batch():
    outcome = process_batch([])
    assert outcome.accepted == [] and outcome.parked == []


def test_redelivered_record_gives_the_same_key(make_payload):
    data = json.dumps(make_payload()).encode()
    first = process_batch([_raw(1, data)]).predictions[0]
    again = process_batch([_raw(7, data)]).predictions[0]
    assert (first.vehicle_id, first.ts, first.record_id) == (
        again.vehicle_id,
        again.ts,
        again.record_id,
    )
