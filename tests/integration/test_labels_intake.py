"""Ground truth in bulk on the emulator: a CSV dropped under labels/ in the labels bucket is
validated by the evpm-labels function (S3 notification), its good rows stored as outcomes, its
bad rows parked beside it with their reasons; sending it again changes nothing."""

from __future__ import annotations

import csv
import io
import time

from tests.integration.conftest import System


def _known_vehicle(system: System) -> str:
    items = system.client("dynamodb").scan(TableName=system.table, Limit=1)["Items"]
    assert items, "no prediction stored yet"
    return items[0]["vehicle_id"]["S"]


def _outcomes(system: System, vehicle: str) -> list[dict]:
    return system.client("dynamodb").query(
        TableName=system.info["stacks"]["OutcomesTable"],
        KeyConditionExpression="vehicle_id = :v",
        ExpressionAttributeValues={":v": {"S": vehicle}},
    )["Items"]


def _rejects(system: System, bucket: str, key: str, seconds: float = 60) -> list[dict]:
    s3 = system.client("s3")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
            return list(csv.DictReader(io.StringIO(body)))
        except s3.exceptions.NoSuchKey:
            time.sleep(1)
    raise AssertionError(f"no rejects object {key} within {seconds} s")


def test_a_label_file_is_stored_checked_and_idempotent(system: System) -> None:
    bucket = system.info["stacks"]["LabelsBucketName"]
    vehicle = _known_vehicle(system)
    body = (
        "vehicle_id,failure_mode,event_time,reading_ts,rul_hours\n"
        f"{vehicle},brake_wear,2024-03-01T10:00:00Z,,\n"
        f"{vehicle},none,2024-04-01T00:00:00Z,,\n"
        "NEVER-SCORED-1,brake_wear,2024-03-01T10:00:00Z,,\n"
        f"{vehicle},brake_wear,,2024-03-01T00:00:00Z,-4\n"
        f"{vehicle},gremlins,2024-03-01T10:00:00Z,,\n"
    )
    s3 = system.client("s3")
    s3.put_object(Bucket=bucket, Key="labels/it/workshop.csv", Body=body.encode())
    rows = _rejects(system, bucket, "labels-rejects/it/workshop.csv.rejects.csv")
    assert [r["line"] for r in rows] == ["4", "5", "6"]
    assert "unknown vehicle 'NEVER-SCORED-1'" in rows[0]["reason"]
    assert "negative RUL" in rows[1]["reason"] and "gremlins" in rows[2]["reason"]
    stored = {(o["at"]["S"], o["kind"]["S"]) for o in _outcomes(system, vehicle)}
    assert ("2024-03-01T10:00:00.000000Z", "failure") in stored
    assert ("2024-04-01T00:00:00.000000Z", "no_failure") in stored
    # WHEN sent again THEN nothing changes
    before = sorted(map(str, _outcomes(system, vehicle)))
    s3.delete_object(Bucket=bucket, Key="labels-rejects/it/workshop.csv.rejects.csv")
    s3.put_object(Bucket=bucket, Key="labels/it/workshop.csv", Body=body.encode())
    _rejects(system, bucket, "labels-rejects/it/workshop.csv.rejects.csv")
    after = [str(o) for o in _outcomes(system, vehicle)]
    assert len(after) == len(before)
