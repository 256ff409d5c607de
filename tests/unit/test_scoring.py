"""score_records: one vectorised call through the Scorer protocol, predictions in input order."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from evpm.scoring import RULES_SCORER, Scorer, score_records
from evpm.telemetry import TelemetryRecord
from tests.unit.fakes import CountingScorer

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def _records(make_payload, n: int) -> list[TelemetryRecord]:
    return [
        TelemetryRecord.model_validate(
            make_payload(vehicle_id=f"EV-{i}", SoH=65.0 if i % 2 else 95.0)
        )
        for i in range(n)
    ]


def test_rules_scorer_satisfies_the_protocol():
    assert isinstance(RULES_SCORER, Scorer)
    assert (RULES_SCORER.name, RULES_SCORER.version) == ("health", "rules-v1")


def test_predictions_follow_input_order_and_name_their_model(make_payload):
    predictions = score_records(_records(make_payload, 4), now=NOW)
    assert [p.vehicle_id for p in predictions] == ["EV-0", "EV-1", "EV-2", "EV-3"]
    assert [p.status for p in predictions] == ["ok", "critical", "ok", "critical"]
    assert {p.failure_mode for p in predictions} == {"none", "battery_degradation"}
    assert all(p.model_versions == {"health": "rules-v1"} for p in predictions)
    assert all(p.scored_at == NOW for p in predictions)


def test_one_call_for_the_whole_batch(make_payload):
    scorer = CountingScorer()
    predictions = score_records(_records(make_payload, 7), scorer=scorer, now=NOW)
    assert scorer.shapes == [(7, 24)]
    assert predictions[0].model_versions == {"counting": "c-1"}


def test_no_records_no_call():
    scorer = CountingScorer()
    assert score_records([], scorer=scorer) == []
    assert scorer.shapes == []


def test_a_scorer_that_loses_rows_is_an_error(make_payload):
    class Lossy(CountingScorer):
        def assess(self, matrix):
            return super().assess(matrix)[:-1]

    with pytest.raises(ValueError, match="returned 2 assessments for 3 records"):
        score_records(_records(make_payload, 3), scorer=Lossy())


def test_predictions_equal_validated_ones(make_payload):
    """Predictions are built without validating each again: they must equal what validation
    makes of the same values (types, set fields, JSON), and share no mutable state."""
    from datetime import timedelta, timezone

    from evpm.predictions import Prediction
    from evpm.serving import History, ServedModels
    from tests.unit.serving_models import bundles

    served = ServedModels(versions={name: 3 for name in bundles()}, bundles=bundles())
    history = History(served.depth)
    records = [
        TelemetryRecord.model_validate(
            make_payload(
                vehicle_id=f"EV-{i % 3}",
                timestamp=f"2024-05-01T{i // 3:02d}:00:00Z",
                SoH=65.0 if i % 4 == 0 else 95.0 - i / 10,
                Battery_Temperature=30.0 + i,
            )
        )
        for i in range(24)
    ]
    for now in (NOW, datetime(2024, 5, 1, 14, tzinfo=timezone(timedelta(hours=2)))):
        for batch in (records, records[:1], [*records[::-1]]):
            rules_only = score_records(batch, now=now)
            with_models = score_records(batch, models=served, history=history, now=now)
            for got in rules_only + with_models:
                again = Prediction.model_validate(got.model_dump(exclude_unset=True))
                assert got == again
                assert got.model_fields_set == again.model_fields_set
                assert got.model_dump_json() == again.model_dump_json()
                assert all(type(getattr(got, f)) is type(getattr(again, f)) for f in got.__dict__)
            assert with_models[0].rul_hours is not None
            assert with_models[0].failure_probabilities is not None
            dicts = [p.model_versions for p in with_models] + [p.findings for p in with_models]
            assert len({id(d) for d in dicts}) == len(dicts)


def test_a_stream_batch_scores_as_its_records_do(make_payload):
    """process_batch reads records straight into columns (no record objects); its
    predictions must be those of score_records on the validated records, field for field."""
    import json

    from evpm.ingest import RawRecord, process_batch
    from evpm.serving import History, ServedModels
    from tests.unit.serving_models import bundles

    served = ServedModels(versions={name: 2 for name in bundles()}, bundles=bundles())
    payloads = [
        make_payload(
            vehicle_id=f"EV-{i % 7}",
            timestamp=f"2024-05-0{1 + i // 24}T{i % 24:02d}:{i % 60:02d}:00.{i:06d}+02:00",
            SoH=65.0 if i % 5 == 0 else 95.0 - i / 10,
            Battery_Temperature=30.0 + i / 3,
        )
        for i in range(60)
    ]
    records = [TelemetryRecord.model_validate(p) for p in payloads]
    raw = [
        RawRecord(str(i), "k", "shardId-0", json.dumps(p).encode()) for i, p in enumerate(payloads)
    ]
    streamed, direct = History(served.depth), History(served.depth)
    for lo, hi in ((0, 7), (7, 8), (8, 60)):  # one per vehicle, a single one, then any
        got = process_batch(raw[lo:hi], models=served, history=streamed, now=NOW).predictions
        expected = score_records(records[lo:hi], models=served, history=direct, now=NOW)
        assert got == expected
        assert [p.model_dump_json() for p in got] == [p.model_dump_json() for p in expected]


def test_batch_stamps_are_those_of_each_record():
    from datetime import timedelta

    import numpy as np

    from evpm.scoring import _stamps
    from evpm.telemetry import format_timestamp

    rng = np.random.default_rng(3)
    start = datetime(1970, 1, 1, tzinfo=UTC)
    micros = rng.integers(0, 4_102_444_800_000_000, 50_000)  # 1970 .. 2100, to the microsecond
    times = [start + timedelta(microseconds=int(us)) for us in micros]
    times += [start, datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)]
    times += [datetime(2099, 12, 31, 23, 59, 59, us, tzinfo=UTC) for us in range(0, 10**6, 41)]
    seconds = np.array([t.timestamp() for t in times])
    assert _stamps(seconds, times) == [format_timestamp(t) for t in times]
