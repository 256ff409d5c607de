"""functions/scorer: Kinesis event in → DynamoDB items, DLQ messages, batchItemFailures out.

DynamoDB and SQS are moto's in-process fakes (``mock_aws``); failures are injected with plain
fake sinks and scripted clients from ``tests/unit/fakes.py``.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from evpm.ingest import process_batch
from tests.unit.conftest import load_event, load_function
from tests.unit.fakes import (
    FakeAlertSink,
    FakeParkedSink,
    FakePredictionSink,
    ScriptedDynamoClient,
    ScriptedSqsClient,
)

TABLE = "evpm-predictions"
DEDUP_TABLE = "evpm-alert-dedup"
BUS = "evpm-alerts"
EVENT = "kinesis_telemetry.json"


def _seqs(event: dict[str, Any]) -> list[str]:
    return [r["kinesis"]["sequenceNumber"] for r in event["Records"]]


def kinesis_event(payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """A Kinesis event with one record per payload, built from the sample event's shape."""
    template = load_event(EVENT)["Records"][0]
    records = []
    for i, payload in enumerate(payloads):
        record = copy.deepcopy(template)
        seq = f"{49590330439255740465847791082829142860800123456789 + i:056d}"
        record["kinesis"]["sequenceNumber"] = seq
        record["kinesis"]["partitionKey"] = payload["vehicle_id"]
        record["kinesis"]["data"] = base64.b64encode(json.dumps(payload).encode()).decode()
        record["eventID"] = f"shardId-000000000000:{seq}"
        records.append(record)
    return {"Records": records}


@pytest.fixture
def aws(aws_env, monkeypatch) -> Iterator[dict[str, Any]]:
    """moto DynamoDB table + SQS DLQ, and the scorer's environment pointing at them."""
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "vehicle_id", "KeyType": "HASH"},
                {"AttributeName": "ts", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "vehicle_id", "AttributeType": "S"},
                {"AttributeName": "ts", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.create_table(
            TableName=DEDUP_TABLE,
            KeySchema=[{"AttributeName": "alert_key", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "alert_key", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        boto3.client("events").create_event_bus(Name=BUS)
        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="evpm-scorer-dlq")["QueueUrl"]
        monkeypatch.setenv("PREDICTIONS_TABLE", TABLE)
        monkeypatch.setenv("DLQ_URL", queue_url)
        monkeypatch.setenv("ALERT_BUS_NAME", BUS)
        monkeypatch.setenv("ALERT_DEDUP_TABLE", DEDUP_TABLE)
        monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "evpm-test")
        yield {"dynamodb": dynamodb, "sqs": sqs, "queue_url": queue_url}


@pytest.fixture
def scorer(aws) -> ModuleType:
    return load_function("scorer")


def _items(aws) -> list[dict[str, Any]]:
    table = boto3.resource("dynamodb").Table(TABLE)
    return sorted(table.scan()["Items"], key=lambda i: i["vehicle_id"])


def _dlq(aws) -> list[dict[str, Any]]:
    messages = []
    while True:
        batch = (
            aws["sqs"]
            .receive_message(
                QueueUrl=aws["queue_url"], MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            )
            .get("Messages", [])
        )
        if not batch:
            return messages
        messages += batch
        for m in batch:
            aws["sqs"].delete_message(QueueUrl=aws["queue_url"], ReceiptHandle=m["ReceiptHandle"])


def test_sample_event_is_scored_stored_and_parked(aws, scorer, lambda_context, capsys):
    # GIVEN the sample event: 2 valid readings and 3 kinds of poison
    event = load_event(EVENT)
    # WHEN the handler runs
    result = scorer.handler(event, lambda_context)
    # THEN nothing is reported for retry (poison is not retryable)
    assert result == {"batchItemFailures": []}
    # AND the valid readings are stored under vehicle + reading time, naming the model
    items = _items(aws)
    assert [(i["vehicle_id"], i["ts"]) for i in items] == [
        ("EV-0042", "2024-05-01T12:00:00.000000Z"),
        ("EV-0043", "2024-05-01T12:00:00.000000Z"),
    ]
    assert items[0]["status"] == "ok" and items[0]["model_versions"] == {"health": "rules-v1"}
    assert items[1]["status"] == "critical" and items[1]["failure_mode"] == "thermal_risk"
    assert items[1]["expires_at"] > time.time() + 80 * 86400
    # AND each poison record is on the DLQ with its reason, errors, data and position
    messages = _dlq(aws)
    bodies = {json.loads(m["Body"])["kinesis"]["sequence_number"]: m for m in messages}
    seqs = _seqs(event)
    assert {s: json.loads(m["Body"])["reason"] for s, m in bodies.items()} == {
        seqs[2]: "undecodable",
        seqs[3]: "invalid_json",
        seqs[4]: "schema_violation",
    }
    schema = json.loads(bodies[seqs[4]]["Body"])
    assert schema["errors"][0]["field"] == "SoC"
    assert "between 0 and 100 %" in schema["errors"][0]["reason"]
    assert json.loads(schema["record"])["SoC"] == 130.0
    assert schema["kinesis"]["shard_id"] == "shardId-000000000000"
    assert bodies[seqs[3]]["MessageAttributes"]["reason"]["StringValue"] == "invalid_json"
    # AND the EMF metrics were emitted
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    counts = {k: emf[-1][k] for k in ("RecordsReceived", "PredictionsWritten", "RecordsParked")}
    assert counts == {"RecordsReceived": [5.0], "PredictionsWritten": [2.0], "RecordsParked": [3.0]}
    assert emf[-1]["WriteFailures"] == [0.0]
    assert emf[-1]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "evpm-test"


def test_redelivered_batch_overwrites_and_never_duplicates(aws, scorer, lambda_context):
    event = load_event(EVENT)
    scorer.handler(event, lambda_context)
    scorer.handler(load_event(EVENT), lambda_context)
    assert len(_items(aws)) == 2


def test_duplicate_readings_in_one_batch_are_one_item(aws, scorer, lambda_context, make_payload):
    event = kinesis_event([make_payload(), make_payload(), make_payload(vehicle_id="EV-9")])
    assert scorer.handler(event, lambda_context) == {"batchItemFailures": []}
    assert len(_items(aws)) == 2


def test_failed_write_reports_every_record_from_the_lowest_failure(scorer, make_payload):
    # GIVEN 5 valid readings, and a store that fails the 2nd and 4th
    event = kinesis_event([make_payload(vehicle_id=f"EV-{i}") for i in range(5)])
    seqs = _seqs(event)
    sink = FakePredictionSink(fail={seqs[3], seqs[1]})
    # WHEN handled
    result = scorer.handle(event, predictions=sink, parked=FakeParkedSink(), alerts=FakeAlertSink())
    # THEN Kinesis is asked to retry from the lowest failed sequence number onwards
    assert result == {"batchItemFailures": [{"itemIdentifier": s} for s in seqs[1:]]}
    assert len(sink.written) == 3


def test_invalid_records_are_not_reported_but_dlq_outage_is(scorer):
    event = load_event(EVENT)
    seqs = _seqs(event)
    ok = scorer.handle(
        event, predictions=FakePredictionSink(), parked=FakeParkedSink(), alerts=FakeAlertSink()
    )
    assert ok == {"batchItemFailures": []}
    # GIVEN the DLQ refuses messages: parked records would be lost, so they are retried
    down = scorer.handle(
        event,
        predictions=FakePredictionSink(),
        parked=FakeParkedSink(fail_all=True),
        alerts=FakeAlertSink(),
    )
    assert down == {"batchItemFailures": [{"itemIdentifier": s} for s in seqs[2:]]}


def test_unprocessed_items_are_retried_within_bounds(make_payload):
    sinks = load_sinks()
    accepted = _accepted(make_payload, 30)
    # (a script is consumed in call order: one chunk at a time; parallel chunks are tested in
    # test_scorer_sinks.py)
    # GIVEN DynamoDB leaves an item unprocessed once, then accepts it
    client = ScriptedDynamoClient("unprocessed", "ok", "ok")
    sink = sinks.DynamoPredictionSink(TABLE, client=client, sleep=lambda _s: None, concurrency=1)
    assert sink.write(accepted) == []
    assert [len(c) for c in client.calls] == [25, 1, 5]
    # GIVEN it never accepts one item: after max_attempts that record is reported
    client = ScriptedDynamoClient(*["unprocessed"] * 4)
    sink = sinks.DynamoPredictionSink(TABLE, client=client, max_attempts=4,
                                      sleep=lambda _s: None, concurrency=1)
    assert sink.write(accepted) == [accepted[0].sequence_number]
    # GIVEN the whole request keeps erroring: the whole chunk is reported
    client = ScriptedDynamoClient(*["error"] * 3)
    sink = sinks.DynamoPredictionSink(TABLE, client=client, max_attempts=3,
                                      sleep=lambda _s: None, concurrency=1)
    assert sink.write(accepted) == [a.sequence_number for a in accepted[:25]]


def test_sqs_partial_failure_is_reported_per_record():
    sinks = load_sinks()
    parked = process_batch(_raws([b"bad"] * 12)).parked
    client = ScriptedSqsClient(fail_ids={"3"})
    failed = sinks.SqsParkedSink("https://queue", client=client).send(parked)
    assert [len(b) for b in client.batches] == [10, 2]
    assert failed == [parked[3].sequence_number]  # Id "3" of the first batch; none in the 2nd
    assert client.batches[0][0]["MessageAttributes"]["reason"]["StringValue"] == "invalid_json"


def test_event_of_500_records_throughput(aws, scorer, lambda_context, make_payload, capsys):
    event = kinesis_event(
        [
            make_payload(
                vehicle_id=f"EV-{i % 50:03d}",
                timestamp=f"2024-05-01T12:{i // 60 % 60:02d}:{i % 60:02d}Z",
                SoH=70.0 + i % 30,
            )
            for i in range(500)
        ]
    )
    start = time.perf_counter()
    result = scorer.handler(event, lambda_context)
    elapsed = time.perf_counter() - start
    assert result == {"batchItemFailures": []}
    assert len(_items(aws)) == 500
    with capsys.disabled():
        print(
            f"\n[measure] scorer handler, 500-record event (moto): {elapsed * 1000:.0f} ms, "
            f"{500 / elapsed:.0f} records/s"
        )
    start = time.perf_counter()
    scorer.handle(
        event, predictions=FakePredictionSink(), parked=FakeParkedSink(), alerts=FakeAlertSink()
    )
    elapsed = time.perf_counter() - start
    with capsys.disabled():
        print(
            f"[measure] scorer handle, 500 records, in-memory sinks: {elapsed * 1000:.1f} ms, "
            f"{500 / elapsed:.0f} records/s"
        )


def load_sinks() -> ModuleType:
    return load_function("scorer", "sinks")


def _raws(datas: list[bytes]):
    from evpm.ingest import RawRecord

    return [RawRecord(str(100 + i), "EV-1", "shardId-0", d) for i, d in enumerate(datas)]


def _accepted(make_payload, n: int):
    data = [json.dumps(make_payload(vehicle_id=f"EV-{i}")).encode() for i in range(n)]
    return process_batch(_raws(data)).accepted
