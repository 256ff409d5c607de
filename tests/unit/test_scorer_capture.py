"""functions/scorer: stored predictions are captured to S3, one object per batch; capture
never fails a batch."""

from __future__ import annotations

import gzip
import json

import boto3
import pytest

from evpm.drift import read_captures
from tests.unit.conftest import load_function
from tests.unit.fakes import FakeAlertSink, FakeParkedSink, FakePredictionSink
from tests.unit.test_scorer_handler import aws, kinesis_event  # noqa: F401  (fixture)

BUCKET = "evpm-raw-test"


@pytest.fixture
def scorer_with_capture(aws, monkeypatch):  # noqa: F811
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("CAPTURE_BUCKET", BUCKET)
    return load_function("scorer")


@pytest.fixture(autouse=True)
def _no_metrics_left_behind():
    """handle() called directly adds metrics that only the handler's decorator flushes;
    powertools keeps them per namespace across instances, so clear them for the next test."""
    yield
    from aws_lambda_powertools import Metrics

    Metrics(namespace="evpm-test").clear_metrics()


def _objects() -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="capture/")
    return [o["Key"] for o in listed.get("Contents", [])]


def test_a_batch_is_captured_once_and_reads_back(scorer_with_capture, lambda_context, make_payload):
    # GIVEN a batch of 3 valid readings and one poison record
    payloads = [make_payload(vehicle_id=f"EV-{i}") for i in range(3)]
    event = kinesis_event(payloads)
    event["Records"].append(kinesis_event([{"vehicle_id": "EV-X", "SoC": "nan?"}])["Records"][0])
    # WHEN scored, twice (a redelivery)
    assert scorer_with_capture.handler(event, lambda_context) == {"batchItemFailures": []}
    scorer_with_capture.handler(event, lambda_context)
    # THEN one object (the redelivery overwrote it), partitioned by hour, with the 3 stored rows
    keys = _objects()
    assert len(keys) == 1 and "/dt=" in keys[0] and "/hour=" in keys[0]
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=keys[0])["Body"].read()
    captured = read_captures([body])
    assert captured.rows == 3
    assert sorted(captured.columns["vehicle_id"]) == ["EV-0", "EV-1", "EV-2"]
    assert captured.columns["SoC"].tolist() == [payloads[0]["SoC"]] * 3
    assert captured.versions(0) == {"health": "rules-v1"}
    assert json.loads(gzip.decompress(body))["schema"] == "evpm-capture/1"


def test_unstored_rows_are_not_captured_and_a_failed_upload_fails_nothing(
    scorer_with_capture, make_payload, monkeypatch
):
    # GIVEN a sink that fails one write, and an S3 that refuses every upload
    event = kinesis_event([make_payload(vehicle_id=f"EV-{i}") for i in range(2)])
    failing = FakePredictionSink(fail={event["Records"][1]["kinesis"]["sequenceNumber"]})
    sink = scorer_with_capture.S3CaptureSink(BUCKET)
    result = scorer_with_capture.handle(
        event, predictions=failing, parked=FakeParkedSink(), alerts=FakeAlertSink(), capture=sink
    )
    # THEN only the stored row is captured
    assert len(result["batchItemFailures"]) == 1
    assert (
        read_captures(
            [boto3.client("s3").get_object(Bucket=BUCKET, Key=_objects()[0])["Body"].read()]
        ).rows
        == 1
    )
    # AND an upload that fails is counted, and the batch still succeeds
    broken = scorer_with_capture.S3CaptureSink("no-such-bucket")
    ok = scorer_with_capture.handle(
        event,
        predictions=FakePredictionSink(),
        parked=FakeParkedSink(),
        alerts=FakeAlertSink(),
        capture=broken,
    )
    assert ok == {"batchItemFailures": []}


def test_sampling_keeps_a_deterministic_share(aws, make_payload):  # noqa: F811
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    sinks = load_function("scorer", "capture_sink")
    scorer = load_function("scorer")
    event = kinesis_event([make_payload(vehicle_id=f"EV-{i}") for i in range(200)])
    sink = sinks.S3CaptureSink(BUCKET, rate=0.25)
    scorer.handle(
        event,
        predictions=FakePredictionSink(),
        parked=FakeParkedSink(),
        alerts=FakeAlertSink(),
        capture=sink,
    )
    rows = read_captures(
        [boto3.client("s3").get_object(Bucket=BUCKET, Key=_objects()[0])["Body"].read()]
    ).rows
    assert 25 <= rows <= 75
    with pytest.raises(ValueError, match="rate"):
        sinks.S3CaptureSink(BUCKET, rate=2)
