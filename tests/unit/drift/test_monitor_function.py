"""functions/monitor: the window's capture objects in S3 → history items, metrics, events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import boto3
import pytest
from moto import mock_aws

from tests.unit.conftest import load_function
from training_job.simulator import FleetConfig, simulate_fleet

from .conftest import capture_objects

BUCKET, BUS = "evpm-raw-test", "evpm-alerts"


class FakeProfiles:
    def __init__(self, profiles) -> None:
        self.profiles = profiles

    def load(self):
        return self.profiles, {}


@pytest.fixture
def monitor(aws_env, monkeypatch):
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        ddb = boto3.client("dynamodb")
        for name, keys in (
            ("evpm-labels", ("vehicle_id", "ts")),
            ("evpm-outcomes", ("vehicle_id", "at")),
            ("evpm-drift-history", ("model", "window_end")),
        ):
            ddb.create_table(
                TableName=name,
                KeySchema=[
                    {"AttributeName": keys[0], "KeyType": "HASH"},
                    {"AttributeName": keys[1], "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
                BillingMode="PAY_PER_REQUEST",
            )
        events = boto3.client("events")
        events.create_event_bus(Name=BUS)
        sqs = boto3.client("sqs")
        queue = sqs.create_queue(QueueName="seen")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(
            Name="all", EventBusName=BUS, EventPattern=json.dumps({"source": ["evpm.monitor"]})
        )
        events.put_targets(Rule="all", EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])
        for key, value in {
            "CAPTURE_BUCKET": BUCKET,
            "OUTCOMES_TABLE": "evpm-outcomes",
            "HISTORY_TABLE": "evpm-drift-history",
            "LABELS_TABLE": "evpm-labels",
            "ALERT_BUS_NAME": BUS,
        }.items():
            monkeypatch.setenv(key, value)
        yield load_function("monitor"), sqs, queue


def _upload(blobs: list[bytes]) -> None:
    s3 = boto3.client("s3")
    now = datetime.now(UTC)
    for i, blob in enumerate(blobs):
        s3.put_object(
            Bucket=BUCKET, Key=f"capture/dt={now:%Y-%m-%d}/hour={now:%H}/b{i}.json.gz", Body=blob
        )


def test_a_drifted_window_is_stored_published_and_measured(monitor, rul_profile, capsys) -> None:
    module, sqs, queue = monitor
    fleet = simulate_fleet(
        FleetConfig(vehicles=300, hours=2, seed=41, sensor_bias=(("Motor_Vibration", 0.5),))
    )
    _upload(capture_objects(fleet[fleet["timestamp"] == fleet["timestamp"].min()], {"ev-rul": "3"}))
    sources = {**module._sources(), "profiles": FakeProfiles({"ev-rul": (3, rul_profile)})}
    # WHEN the monitor runs on the last 10 minutes
    summary = module.run(module.MonitorRequest(window_minutes=10), sources=sources)
    # THEN it read the objects, judged 300 rows and published one DriftDetected
    assert summary["objects"] == 2 and summary["rows"] == 300
    assert summary["verdicts"][0]["drifted"][0] == "Motor_Vibration"
    (event_id,) = summary["events"].values()
    message = json.loads(sqs.receive_message(QueueUrl=queue)["Messages"][0]["Body"])
    assert message["id"] == event_id and message["detail-type"] == "DriftDetected"
    assert message["detail"]["signals"]["ev-rul"][0] == "Motor_Vibration"
    # AND the history has the window, naming the event
    (item,) = boto3.resource("dynamodb").Table("evpm-drift-history").scan()["Items"]
    assert (
        item["model"] == "ev-rul"
        and item["status"] == "drift"
        and item["events"] == summary["events"]
    )
    assert float(item["psi"]["Motor_Vibration"]) > 0.2
    # AND the metrics went out as EMF, per model and column
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = {m["Name"] for e in emf for m in e["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"DriftPsi", "DriftColumnsDrifted", "DriftWindowRows"} <= names
    psi = [e for e in emf if "DriftPsi" in e and e.get("column") == "Motor_Vibration"]
    assert psi and psi[0]["model"] == "ev-rul" and psi[0]["DriftPsi"][0] > 0.2


def test_an_empty_window_publishes_nothing(monitor, rul_profile) -> None:
    module, sqs, queue = monitor
    sources = {**module._sources(), "profiles": FakeProfiles({"ev-rul": (3, rul_profile)})}
    summary = module.run(
        module.MonitorRequest(end=datetime.now(UTC) - timedelta(days=3)), sources=sources
    )
    assert summary["rows"] == 0 and summary["events"] == {}
    assert summary["verdicts"][0]["status"] == "insufficient_data"
    assert "Messages" not in sqs.receive_message(QueueUrl=queue)


def test_feedback_reports_and_label_files_both_grade_the_window(monitor) -> None:
    """/feedback's reports (the labels table) and the files' outcomes are one maintenance log."""
    module, _, _ = monitor
    dynamodb = boto3.resource("dynamodb")
    dynamodb.Table("evpm-labels").put_item(
        Item={
            "vehicle_id": "EV-1",
            "ts": "2024-05-01T00:00:00.000000Z",
            "failure_mode": "brake_wear",
            "rul_hours": Decimal("36"),
        }
    )
    dynamodb.Table("evpm-labels").put_item(
        Item={"vehicle_id": "EV-2", "ts": "2024-05-01T00:00:00.000000Z", "rul_hours": Decimal("5")}
    )  # RUL without a mode: not an outcome (no failure mode to grade with)
    dynamodb.Table("evpm-outcomes").put_item(
        Item={"vehicle_id": "EV-3", "at": "2024-06-01T00:00:00.000000Z", "kind": "no_failure"}
    )
    outcomes = sorted(module._sources()["outcomes"].all(), key=lambda o: o.vehicle_id)
    assert [(o.vehicle_id, o.kind, o.failure_mode) for o in outcomes] == [
        ("EV-1", "failure", "brake_wear"),
        ("EV-3", "no_failure", None),
    ]
    assert outcomes[0].at == datetime(2024, 5, 2, 12, tzinfo=UTC)
