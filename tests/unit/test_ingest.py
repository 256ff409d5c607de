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


def _validated_in_steps(data: bytes) -> object:
    """What a record becomes through json.loads then validation (the reference path)."""
    from pydantic import ValidationError

    from evpm.telemetry import TelemetryRecord

    try:
        return TelemetryRecord.model_validate(json.loads(data.decode("utf-8")))
    except (UnicodeDecodeError, ValueError, ValidationError):
        return "refused"


def test_one_step_validation_accepts_and_reads_exactly_what_the_steps_do(make_payload):
    import re

    import numpy as np

    from evpm.ingest import _validate
    from evpm.telemetry import FEATURES, read_json, to_matrix

    base = json.dumps(make_payload())
    rng = np.random.default_rng(0)
    texts = [
        base,
        base.replace('"SoC": ', '"SoC": 12.5, "SoC": '),  # a repeated key: the last wins
        *(
            re.sub(r'"SoH": [^,]+', f'"SoH": {value}', base)
            for value in ("NaN", "Infinity", "1e400", "76", "7.65e1", "-0.0", '"76.5"', "true")
        ),
        base.replace('"EV-', '"EV-\\u0030'),
        # on, just inside and just outside a range; ints, exponents, a huge integer
        *(
            re.sub(rf'"{name}": [^,]+', f'"{name}": {value}', base)
            for name in ("SoH", "Motor_RPM", "Route_Roughness")
            for value in (
                *(repr(float(v)) for v in _edges(name)),
                "100",
                "101",
                "-0",
                "0",
                "50",
                "1E1",
                "1e308",
                "1" + "0" * 400,
                "-1e-320",
            )
        ),
        re.sub(r'"vehicle_id": "[^"]+"', '"vehicle_id": ""', base),
        re.sub(r'"vehicle_id": "[^"]+"', '"vehicle_id": "EV 1"', base),
        base.replace('"SoC": ', '"Extra": 1, "SoC": '),
        base.replace('"timestamp": "2024', '"timestamp": "2200'),
        base.replace('"timestamp": "2024', '"timestamp": "1969'),
        *(
            json.dumps(make_payload(timestamp=t))
            for t in (1714564800, "2024-05-01T14:00:00+02:00", "2024-05-01 12:00:00", "2024-05-01")
        ),
        " " + base + "\n",
        base + "x",
        "[]",
        "",
    ]
    # Floats as the stream sends them: shortest repr, and rounded decimal text
    for values in (rng.uniform(0, 100, (50, 24)), rng.uniform(0, 1, (50, 24)) * 1e-7):
        for row in values:
            payload = make_payload(**dict(zip(FEATURES, row.tolist(), strict=True)))
            texts.append(json.dumps(payload))
            texts.append(
                json.dumps({k: round(v, 5) if k in FEATURES else v for k, v in payload.items()})
            )
    for text in texts:
        data = text.encode()
        reference = _validated_in_steps(data)
        got = _validate(RawRecord("1", "EV", "shardId-0", data))
        fast = read_json(data)  # what process_batch reads of nearly every record
        if reference == "refused":
            assert isinstance(got, ParkedRecord), text
            assert fast is None, text
            continue
        assert got == reference, text
        assert to_matrix([got]).tobytes() == to_matrix([reference]).tobytes(), text
        assert fast is not None, text
        assert fast[:2] == (reference.vehicle_id, reference.timestamp), text
        assert fast[1].tzinfo is reference.timestamp.tzinfo, text
        assert np.array(fast[2]).tobytes() == to_matrix([reference]).tobytes(), text


def _edges(name: str) -> list[float]:
    """A sensor's range bounds and the floats either side of them."""
    import numpy as np

    from evpm.telemetry import SENSOR_RANGES

    bounds = SENSOR_RANGES[name]
    edges = [float(bounds.low), float(bounds.high)]
    return edges + [float(np.nextafter(v, d)) for v in edges for d in (-np.inf, np.inf)]
