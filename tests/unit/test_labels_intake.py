"""functions/labels: a label file becomes outcomes; bad rows are parked with their reason;
sending it again changes nothing."""

from __future__ import annotations

import csv
import io

import boto3
import pytest
from moto import mock_aws

from tests.unit.conftest import load_function

BUCKET = "evpm-raw-test"
GOOD = (
    "vehicle_id,failure_mode,event_time,reading_ts,rul_hours\n"
    "EV-1,tire_leak,2024-05-02T00:00:00Z,,\n"
    "EV-2,brake_wear,,2024-05-01T00:00:00Z,12\n"
    "EV-1,tire_leak,2024-05-02T00:00:00Z,,\n"
    "EV-2,none,2024-06-01T00:00:00Z,,\n"
)
BAD = (
    "EV-404,tire_leak,2024-05-02T00:00:00Z,,\n"
    "EV-1,tire_leak,2099-05-02T00:00:00Z,,\n"
    "EV-1,tire_leak,,2024-05-01T00:00:00Z,-5\n"
    "EV-1,gremlins,2024-05-02T00:00:00Z,,\n"
)


@pytest.fixture
def intake(aws_env, monkeypatch):
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        ddb = boto3.client("dynamodb")
        for name, keys in (
            ("evpm-outcomes", ("vehicle_id", "at")),
            ("evpm-predictions", ("vehicle_id", "ts")),
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
        predictions = boto3.resource("dynamodb").Table("evpm-predictions")
        for vid in ("EV-1", "EV-2"):
            predictions.put_item(Item={"vehicle_id": vid, "ts": "2024-05-01T00:00:00.000000Z"})
        monkeypatch.setenv("OUTCOMES_TABLE", "evpm-outcomes")
        monkeypatch.setenv("PREDICTIONS_TABLE", "evpm-predictions")
        yield load_function("labels")


def _drop(key: str, body: str) -> dict:
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body.encode())
    return {"Records": [{"s3": {"bucket": {"name": BUCKET}, "object": {"key": key}}}]}


def _outcomes() -> list[dict]:
    return boto3.resource("dynamodb").Table("evpm-outcomes").scan()["Items"]


def test_a_file_is_stored_rejects_parked_and_counts_add_up(intake, lambda_context) -> None:
    result = intake.handler(_drop("labels/2024-05/workshop.csv", GOOD + BAD), lambda_context)
    (counts,) = result["files"]
    assert (counts["rows"], counts["stored"], counts["repeats"], counts["rejected"]) == (8, 3, 1, 4)
    assert counts["rows"] == counts["stored"] + counts["repeats"] + counts["rejected"]
    stored = {(o["vehicle_id"], o["at"], o["kind"]) for o in _outcomes()}
    assert stored == {
        ("EV-1", "2024-05-02T00:00:00.000000Z", "failure"),
        ("EV-2", "2024-05-01T12:00:00.000000Z", "failure"),
        ("EV-2", "2024-06-01T00:00:00.000000Z", "no_failure"),
    }
    body = (
        boto3.client("s3").get_object(Bucket=BUCKET, Key=counts["rejects"])["Body"].read().decode()
    )
    rows = list(csv.DictReader(io.StringIO(body)))
    assert counts["rejects"] == "labels-rejects/2024-05/workshop.csv.rejects.csv"
    assert [r["line"] for r in rows] == ["6", "7", "8", "9"]
    reasons = [r["reason"] for r in rows]
    assert "unknown vehicle 'EV-404'" in reasons[0] and "in the future" in reasons[1]
    assert "negative RUL" in reasons[2] and "unknown failure mode 'gremlins'" in reasons[3]


def test_sending_the_same_file_again_changes_nothing(intake, lambda_context) -> None:
    intake.handler(_drop("labels/a.csv", GOOD), lambda_context)
    first = sorted(_outcomes(), key=lambda o: (o["vehicle_id"], o["at"]))
    intake.handler(_drop("labels/a.csv", GOOD), lambda_context)
    assert sorted(_outcomes(), key=lambda o: (o["vehicle_id"], o["at"])) == first


def test_a_file_that_is_not_a_label_csv_is_refused_with_the_reason(intake, lambda_context) -> None:
    (counts,) = intake.handler(_drop("labels/notes.csv", "hello,world\n1,2\n"), lambda_context)[
        "files"
    ]
    assert "header lacks vehicle_id, failure_mode" in counts["refused"]
    body = (
        boto3.client("s3").get_object(Bucket=BUCKET, Key=counts["rejects"])["Body"].read().decode()
    )
    assert "file refused: header lacks" in body and _outcomes() == []
    # objects outside labels/ are not label files
    assert intake.handler(_drop("other/x.csv", GOOD), lambda_context) == {"files": []}
