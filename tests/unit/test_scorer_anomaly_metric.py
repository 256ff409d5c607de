"""functions/scorer: AnomaliesFlagged counts the stored predictions the anomaly model flagged
(over PredictionsWritten, the anomaly rate the evpm-anomaly-rate alarm watches)."""

from __future__ import annotations

import dataclasses
import json
from types import ModuleType
from typing import Any

import pytest

from evpm.ingest import BatchOutcome, process_batch
from tests.unit.conftest import NOMINAL, load_function
from tests.unit.fakes import FakeAlertSink, FakeParkedSink, FakePredictionSink
from tests.unit.test_scorer_handler import kinesis_event


@pytest.fixture
def scorer(aws_env, monkeypatch) -> ModuleType:
    for key, value in {
        "PREDICTIONS_TABLE": "evpm-predictions",
        "DLQ_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
        "ALERT_BUS_NAME": "evpm-alerts",
        "ALERT_DEDUP_TABLE": "evpm-alert-dedup",
    }.items():
        monkeypatch.setenv(key, value)
    module = load_function("scorer")
    module.metrics.clear_metrics()
    return module


def _flagging(flags: list[bool | None]) -> Any:
    """A process_batch whose predictions carry these is_anomaly values, in order."""

    def run(raw: Any, **kwargs: Any) -> BatchOutcome:
        outcome = process_batch(raw, **kwargs)
        accepted = [
            dataclasses.replace(a, prediction=a.prediction.model_copy(update={"is_anomaly": f}))
            for a, f in zip(outcome.accepted, flags, strict=True)
        ]
        return BatchOutcome(accepted=accepted, parked=outcome.parked)

    return run


def test_anomalies_flagged_counts_stored_flagged_predictions(scorer, monkeypatch, capsys) -> None:
    # GIVEN four readings: two flagged, one not, one scored without an anomaly model
    event = kinesis_event([{**NOMINAL, "vehicle_id": f"EV-{i}"} for i in range(4)])
    monkeypatch.setattr(scorer, "process_batch", _flagging([True, False, None, True]))
    # AND the write of the last flagged one fails (it will be redelivered and counted then)
    last = event["Records"][3]["kinesis"]["sequenceNumber"]
    sink = FakePredictionSink(fail={last})
    # WHEN the batch is handled and the metrics flushed
    scorer.handle(event, predictions=sink, parked=FakeParkedSink(), alerts=FakeAlertSink())
    scorer.metrics.flush_metrics()
    [doc] = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"_aws"' in x]
    # THEN only the stored flagged prediction counts, beside what was written
    assert doc["AnomaliesFlagged"] == [1.0]
    assert doc["PredictionsWritten"] == [3.0]
    names = {m["Name"]: m["Unit"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert names["AnomaliesFlagged"] == "Count"


def test_no_anomaly_model_counts_zero_not_missing(scorer, capsys) -> None:
    # Rules only (nothing pinned): is_anomaly is None; the alarm must read 0, not no data.
    event = kinesis_event([NOMINAL])
    scorer.handle(
        event, predictions=FakePredictionSink(), parked=FakeParkedSink(), alerts=FakeAlertSink()
    )
    scorer.metrics.flush_metrics()
    [doc] = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"_aws"' in x]
    assert doc["AnomaliesFlagged"] == [0.0]
