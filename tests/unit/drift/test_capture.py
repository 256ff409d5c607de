"""Captured batches round-trip, sample deterministically, and drop redelivered rows."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from evpm.drift.capture import capture_key, encode_capture, hour_prefixes, read_captures, sampled
from evpm.predictions import Prediction, record_id
from evpm.telemetry import FEATURES

AT = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)


def _prediction(i: int, **models) -> Prediction:
    ts = f"2024-05-01T{i % 24:02d}:00:00.000000Z"
    vid = f"EV-{i:04d}"
    return Prediction(
        vehicle_id=vid,
        ts=ts,
        record_id=record_id(vid, ts),
        status="ok",
        health_score=100.0,
        failure_mode="none",
        findings=[],
        model_versions={"health": "rules-v1", **models.pop("versions", {})},
        scored_at=AT,
        **models,
    )


def test_round_trip_keeps_values_versions_and_missing_outputs() -> None:
    preds = [
        _prediction(
            0,
            rul_hours=12.5,
            anomaly_score=0.2,
            predicted_failure="brake_wear",
            versions={"ev-rul": "3"},
        ),
        _prediction(1),
    ]
    readings = np.arange(48, dtype=np.float64).reshape(2, 24)
    captured = read_captures([encode_capture(preds, readings, captured_at=AT)])
    assert captured.rows == 2 and captured.objects == 1 and captured.duplicates == 0
    assert captured.columns["SoC"].tolist() == [0.0, 24.0]
    assert captured.columns[FEATURES[-1]].tolist() == [23.0, 47.0]
    assert captured.columns["rul_hours"][0] == 12.5 and np.isnan(captured.columns["rul_hours"][1])
    assert captured.columns["predicted_failure"].tolist() == ["brake_wear", None]
    assert [captured.versions(i) for i in range(2)] == [
        {"health": "rules-v1", "ev-rul": "3"},
        {"health": "rules-v1"},
    ]
    assert captured.columns["vehicle_id"].tolist() == ["EV-0000", "EV-0001"]
    assert captured.seconds.tolist() == [
        int(datetime(2024, 5, 1, h, tzinfo=UTC).timestamp()) for h in (0, 1)
    ]


def test_a_redelivered_batch_counts_once() -> None:
    preds = [_prediction(i) for i in range(5)]
    blob = encode_capture(preds, np.zeros((5, 24)), captured_at=AT)
    again = encode_capture(preds[2:], np.zeros((3, 24)), captured_at=AT)
    captured = read_captures([blob, again])
    assert captured.rows == 5 and captured.duplicates == 3 and captured.objects == 2
    assert captured.columns["vehicle_id"].tolist() == [f"EV-{i:04d}" for i in range(5)]
    assert read_captures([]).rows == 0


def test_sampling_is_deterministic_and_near_its_rate() -> None:
    ids = [record_id(f"EV-{i}", "2024-05-01T00:00:00.000000Z") for i in range(20_000)]
    keep = sampled(ids, 0.1)
    assert keep.tolist() == sampled(ids, 0.1).tolist()
    assert 0.09 < keep.mean() < 0.11
    assert sampled(ids, 1.0).all() and not sampled(ids, 0.0).any()
    with pytest.raises(ValueError, match="rate"):
        sampled(ids, 1.5)


def test_keys_are_partitioned_by_hour() -> None:
    assert (
        capture_key("capture/", AT, "shard-1-42")
        == "capture/dt=2024-05-01/hour=12/shard-1-42.json.gz"
    )
    start = datetime(2024, 5, 1, 23, 10, tzinfo=UTC)
    end = datetime(2024, 5, 2, 1, 0, tzinfo=UTC)
    assert hour_prefixes("capture/", start, end) == [
        "capture/dt=2024-05-01/hour=23/",
        "capture/dt=2024-05-02/hour=00/",
    ]


def test_a_foreign_object_is_refused_by_name() -> None:
    import gzip

    with pytest.raises(ValueError, match="evpm-capture/1"):
        read_captures([gzip.compress(b'{"schema": "other"}')])
    with pytest.raises(ValueError, match="readings shape"):
        encode_capture([_prediction(0)], np.zeros((2, 24)), captured_at=AT)
