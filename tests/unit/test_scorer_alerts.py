"""Scorer alerts: claim → PutEvents → confirm, one per vehicle+mode per window, none lost.

DynamoDB, EventBridge (with a rule to an SQS audit queue, as deployed) and SQS are moto's;
failing EventBridge calls come from a scripted client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from evpm.alerts import select_alerts
from tests.unit.conftest import load_event, load_function
from tests.unit.fakes import FakeAlertSink, FakeParkedSink, FakePredictionSink
from tests.unit.test_scorer_handler import BUS, DEDUP_TABLE, _seqs, kinesis_event

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)


@pytest.fixture
def audit(aws) -> Iterator[str]:
    """The deployed wiring in moto: a rule on the alert bus sending VehicleAlert to a queue."""
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="evpm-alerts-audit")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = boto3.client("events")
    events.put_rule(
        Name="to-audit",
        EventBusName=BUS,
        EventPattern=json.dumps({"source": ["evpm.scorer"], "detail-type": ["VehicleAlert"]}),
    )
    events.put_targets(Rule="to-audit", EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])
    yield url


@pytest.fixture
def aws(aws_env, monkeypatch) -> Iterator[None]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName=DEDUP_TABLE,
            KeySchema=[{"AttributeName": "alert_key", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "alert_key", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        boto3.client("events").create_event_bus(Name=BUS)
        yield


def _sinks() -> ModuleType:
    return load_function("scorer", "alert_sink")


def _sink(clock: list[datetime], **kwargs: Any) -> Any:
    return _sinks().DedupedEventBridgeAlertSink(
        bus_name=BUS, dedup_table=DEDUP_TABLE, window_seconds=3600, now=lambda: clock[0], **kwargs
    )


def _audit_messages(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    out = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        out += [json.loads(m["Body"]) for m in batch]
        for m in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return out


def _pending(make_payload, **changes: Any):
    from evpm.ingest import RawRecord, process_batch

    raw = RawRecord("100", "EV-1", "shardId-0", json.dumps(make_payload(**changes)).encode())
    return select_alerts(process_batch([raw]).accepted)


def test_one_alert_per_vehicle_and_mode_per_window(aws, audit, make_payload):
    # GIVEN worn brakes on EV-1
    clock = [T0]
    sink = _sink(clock)
    alerts = _pending(make_payload, vehicle_id="EV-1", Brake_Pad_Wear=90.0)
    # WHEN the same alert is published three times within the hour
    first = sink.publish(alerts)
    clock[0] = T0 + timedelta(minutes=59)
    second = sink.publish(alerts)
    # THEN one event goes out, with the agreed envelope and detail
    assert (first.sent, first.suppressed, first.failed) == (1, 0, [])
    assert (second.sent, second.suppressed) == (0, 1)
    [event] = _audit_messages(audit)
    assert event["source"] == "evpm.scorer" and event["detail-type"] == "VehicleAlert"
    assert event["detail"]["vehicle_id"] == "EV-1"
    assert event["detail"]["failure_mode"] == "brake_wear"
    assert event["detail"]["status"] == "critical"
    assert event["detail"]["model_versions"] == {"health": "rules-v1"}
    # AND after the window it alerts again
    clock[0] = T0 + timedelta(hours=1, seconds=1)
    assert sink.publish(alerts).sent == 1
    assert len(_audit_messages(audit)) == 1


def test_other_modes_and_vehicles_are_not_suppressed(aws, audit, make_payload):
    sink = _sink([T0])
    sink.publish(_pending(make_payload, vehicle_id="EV-1", Brake_Pad_Wear=90.0))
    report = sink.publish(
        _pending(make_payload, vehicle_id="EV-1", Motor_Temperature=150.0)
        + _pending(make_payload, vehicle_id="EV-2", Brake_Pad_Wear=90.0)
    )
    assert report.sent == 2
    assert len(_audit_messages(audit)) == 3


class _FailingEvents:
    """put_events that raises, or answers with a failed entry, the first ``times`` calls."""

    def __init__(self, mode: str, times: int = 1) -> None:
        self.mode, self.times = mode, times
        self.real = boto3.client("events")

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        if self.times:
            self.times -= 1
            if self.mode == "raise":
                raise ClientError({"Error": {"Code": "InternalException", "Message": "x"}}, "Put")
            return {
                "FailedEntryCount": len(Entries),
                "Entries": [{"ErrorCode": "InternalFailure"} for _ in Entries],
            }
        return self.real.put_events(Entries=Entries)


@pytest.mark.parametrize("mode", ["raise", "entry_failed"])
def test_failed_put_is_reported_and_does_not_burn_the_window(aws, audit, make_payload, mode):
    # GIVEN EventBridge fails once
    clock = [T0]
    sink = _sink(clock, events=_FailingEvents(mode))
    alerts = _pending(make_payload, vehicle_id="EV-1", Brake_Pad_Wear=90.0)
    # WHEN the alert is published
    report = sink.publish(alerts)
    # THEN its record is reported for retry, nothing went out, and the claim is gone
    assert report.failed == ["100"] and report.sent == 0
    assert _audit_messages(audit) == []
    table = boto3.client("dynamodb")
    assert "Item" not in table.get_item(
        TableName=DEDUP_TABLE, Key={"alert_key": {"S": "EV-1#brake_wear"}}
    )
    # AND the retry (Kinesis redelivery) sends it exactly once
    assert sink.publish(alerts).sent == 1
    assert sink.publish(alerts).suppressed == 1
    assert len(_audit_messages(audit)) == 1


def test_a_pending_claim_left_behind_is_reclaimed(aws, audit, make_payload):
    # GIVEN a claim whose event was never confirmed (put failed and the release failed too)
    boto3.client("dynamodb").put_item(
        TableName=DEDUP_TABLE,
        Item={
            "alert_key": {"S": "EV-1#brake_wear"},
            "expires_at": {"N": str(int(T0.timestamp()) + 3600)},
            "state": {"S": "pending"},
            "claim_id": {"S": "old"},
        },
    )
    # WHEN the alert is retried, THEN it goes out and the claim is confirmed as sent
    alerts = _pending(make_payload, vehicle_id="EV-1", Brake_Pad_Wear=90.0)
    assert _sink([T0]).publish(alerts).sent == 1
    item = boto3.client("dynamodb").get_item(
        TableName=DEDUP_TABLE, Key={"alert_key": {"S": "EV-1#brake_wear"}}
    )["Item"]
    assert item["state"] == {"S": "sent"}
    assert item["expires_at"] == {"N": str(int(T0.timestamp()) + 3600)}


@pytest.fixture
def scorer(monkeypatch) -> ModuleType:
    """The scorer module with a valid environment; its handle() gets fake sinks (no AWS)."""
    for key in ("PREDICTIONS_TABLE", "DLQ_URL", "ALERT_BUS_NAME", "ALERT_DEDUP_TABLE"):
        monkeypatch.setenv(key, key.lower())
    return load_function("scorer")


def test_handler_reports_records_whose_alert_failed(scorer, make_payload):
    # GIVEN 3 readings; the 2nd is critical for EV-B and its alert cannot be published
    event = kinesis_event(
        [
            make_payload(vehicle_id="EV-A"),
            make_payload(vehicle_id="EV-B", Brake_Pad_Wear=90.0),
            make_payload(vehicle_id="EV-C"),
        ]
    )
    seqs = _seqs(event)
    alerts = FakeAlertSink(fail_keys={"EV-B#brake_wear"})
    result = scorer.handle(
        event, predictions=FakePredictionSink(), parked=FakeParkedSink(), alerts=alerts
    )
    # THEN Kinesis retries from that record on
    assert result == {"batchItemFailures": [{"itemIdentifier": s} for s in seqs[1:]]}


def test_handler_does_not_alert_on_unstored_predictions(scorer, make_payload):
    event = kinesis_event([make_payload(vehicle_id="EV-B", Brake_Pad_Wear=90.0)])
    alerts = FakeAlertSink()
    scorer.handle(
        event,
        predictions=FakePredictionSink(fail=set(_seqs(event))),
        parked=FakeParkedSink(),
        alerts=alerts,
    )
    assert alerts.published == []


def test_stream_batch_twice_gives_one_audit_message(aws, audit, monkeypatch, lambda_context):
    # GIVEN the deployed shape: the scorer's own sinks, a predictions table, the DLQ
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName="evpm-predictions",
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
    dlq = boto3.client("sqs").create_queue(QueueName="dlq")["QueueUrl"]
    for key, value in {
        "PREDICTIONS_TABLE": "evpm-predictions",
        "DLQ_URL": dlq,
        "ALERT_BUS_NAME": BUS,
        "ALERT_DEDUP_TABLE": DEDUP_TABLE,
        "POWERTOOLS_METRICS_NAMESPACE": "evpm-test",
    }.items():
        monkeypatch.setenv(key, value)
    scorer = load_function("scorer")
    # WHEN the sample batch (EV-0043 critical thermal_risk) is delivered twice
    assert scorer.handler(load_event("kinesis_telemetry.json"), lambda_context) == {
        "batchItemFailures": []
    }
    scorer.handler(load_event("kinesis_telemetry.json"), lambda_context)
    # THEN exactly one alert reached the audit queue
    messages = _audit_messages(audit)
    assert [(m["detail"]["vehicle_id"], m["detail"]["failure_mode"]) for m in messages] == [
        ("EV-0043", "thermal_risk")
    ]


class CountingDynamo:
    """Passes calls to a real (moto) client and counts them by operation."""

    def __init__(self) -> None:
        self.client = boto3.client("dynamodb")
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        def call(**kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return method(**kwargs)

        return call


def test_repeats_of_a_confirmed_window_cost_no_call(aws, audit, make_payload):
    # GIVEN a sink that sent and confirmed EV-1's brake alert
    clock = [T0]
    dynamo = CountingDynamo()
    sink = _sink(clock, dynamodb=dynamo)
    alerts = _pending(make_payload, vehicle_id="EV-1", Brake_Pad_Wear=90.0)
    assert sink.publish(alerts).sent == 1
    calls = dict(dynamo.calls)
    # WHEN repeats arrive inside the window
    clock[0] = T0 + timedelta(minutes=30)
    reports = [sink.publish(alerts) for _ in range(3)]
    # THEN they are suppressed without asking DynamoDB
    assert [(r.sent, r.suppressed) for r in reports] == [(0, 1)] * 3
    assert dynamo.calls == calls
    # AND after the window the table is asked again and the alert goes out again
    clock[0] = T0 + timedelta(hours=1, seconds=1)
    assert sink.publish(alerts).sent == 1
    assert dynamo.calls["put_item"] == calls["put_item"] + 1
    assert len(_audit_messages(audit)) == 2


def test_another_environment_learns_the_window_from_the_failed_claim(aws, audit, make_payload):
    # GIVEN one environment sent EV-1's alert
    clock = [T0]
    alerts = _pending(make_payload, vehicle_id="EV-1", Brake_Pad_Wear=90.0)
    assert _sink(clock).publish(alerts).sent == 1
    # WHEN a second environment sees repeats
    dynamo = CountingDynamo()
    other = _sink(clock, dynamodb=dynamo)
    first, second = other.publish(alerts), other.publish(alerts)
    # THEN its first claim fails (suppressed) and tells it the window: the repeat costs nothing
    assert (first.sent, first.suppressed, second.sent, second.suppressed) == (0, 1, 0, 1)
    assert dynamo.calls == {"put_item": 1}
    assert len(_audit_messages(audit)) == 1


def test_an_unconfirmed_claim_is_not_remembered(aws, audit, make_payload):
    # GIVEN a claim left pending in the table (its sender died before confirming)
    clock = [T0]
    alerts = _pending(make_payload, vehicle_id="EV-1", Brake_Pad_Wear=90.0)
    boto3.client("dynamodb").put_item(TableName=DEDUP_TABLE, Item={
        "alert_key": {"S": alerts[0].alert.key}, "state": {"S": "pending"},
        "claim_id": {"S": "dead"}, "expires_at": {"N": str(int(T0.timestamp()) + 3600)}})
    # WHEN a sink publishes the alert
    report = _sink(clock).publish(alerts)
    # THEN it re-claims the pending window and the alert goes out (never lost)
    assert (report.sent, report.suppressed) == (1, 0)
    assert len(_audit_messages(audit)) == 1
