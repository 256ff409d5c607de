"""Killing the scorer's Lambda worker mid-stream loses nothing, duplicates nothing, and
changes no prediction.

Records go on the stream in batches while the mapping delivers them; after the first
predictions are stored, the scorer's worker process (of *this* run's emulator) gets SIGKILL.
The invocation in flight fails, the mapping retries the batch, a fresh worker takes over.
Afterwards every record is accounted for exactly once: a prediction per valid record (the
table is keyed by vehicle + reading time, so a redelivered record overwrites itself: the
count of items equals the count of distinct readings) and one DLQ entry per malformed record
(per Kinesis sequence number), and the mapping gave up on no batch.

The fresh worker holds no vehicle's history; it reads each vehicle's stored past back on a
miss (:mod:`evpm.past_readings`). So the same records streamed again under other vehicle ids,
with no kill, give the same model outputs to 1e-9, reading for reading; and ``/predict`` of a
vehicle's last reading, whose earlier readings are stored, gives the stream's prediction.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
import uuid

import httpx

from evpm_cli import loadgen, stream, stream_audit
from evpm_cli.workers import lambda_workers
from tests.integration.conftest import System, read_status

TOTAL, MALFORMED, VEHICLES = 6000, 12, 30
SCORER = "evpm-scorer"


def scorer_workers(emulator_pid: int) -> list[int]:
    """This emulator's worker processes that run the scorer."""
    return lambda_workers(emulator_pid, SCORER)


def _items(system: System, prefix: str) -> list[tuple[str, str]]:
    table, keys = system.client("dynamodb"), []
    for v in range(VEHICLES):
        for page in table.get_paginator("query").paginate(
                TableName=system.table, KeyConditionExpression="vehicle_id = :v",
                ExpressionAttributeValues={":v": {"S": f"{prefix}-{v:05d}"}},
                ProjectionExpression="vehicle_id, ts"):
            keys += [(i["vehicle_id"]["S"], i["ts"]["S"]) for i in page["Items"]]
    return keys


def _drain(system: System, prefix: str, parked: dict[str, int], gave_up: list) -> None:
    sqs = system.client("sqs")
    while batch := sqs.receive_message(QueueUrl=system.dlq_url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=0).get("Messages", []):
        for message in batch:
            body = message["Body"]
            if prefix in body:
                seq = json.loads(body)["kinesis"]["sequence_number"]
                parked[seq] = parked.get(seq, 0) + 1
            elif "KinesisBatchInfo" in body:
                gave_up.append(body)
        sqs.delete_message_batch(QueueUrl=system.dlq_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])


MODEL_OUTPUTS = ("anomaly_score", "rul_hours", "rul_low_hours", "rul_high_hours")


def _outputs(system: System, prefix: str) -> dict[tuple[int, str], dict]:
    """Each stored prediction's model outputs, keyed by (vehicle number, reading time)."""
    table, out = system.client("dynamodb"), {}
    for v in range(VEHICLES):
        for page in table.get_paginator("query").paginate(
                TableName=system.table, KeyConditionExpression="vehicle_id = :v",
                ExpressionAttributeValues={":v": {"S": f"{prefix}-{v:05d}"}}):
            for item in page["Items"]:
                out[(v, item["ts"]["S"])] = {
                    **{f: float(item[f]["N"]) for f in MODEL_OUTPUTS},
                    **{f"p_{mode}": float(p["N"])
                       for mode, p in item["failure_probabilities"]["M"].items()},
                    "versions": json.dumps({k: x["S"] for k, x in
                                            item["model_versions"]["M"].items()}, sort_keys=True),
                }
    return out


def _stream_until_stored(system: System, records: list, expected: int, prefix: str) -> None:
    stream.put_all(system.client("kinesis"), system.stream, records)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and len(_items(system, prefix)) < expected:
        time.sleep(2)


def _differences(got: dict, want: dict) -> list[str]:
    """Readings whose outputs differ by more than 1e-9 (or whose versions differ)."""
    bad = []
    for key, value in want.items():
        mine = got.get(key)
        if mine is None or mine["versions"] != value["versions"] or set(mine) != set(value):
            bad.append(f"{key}: {mine} != {value}")
            continue
        for field, x in value.items():
            if field != "versions" and not math.isclose(mine[field], x, rel_tol=0, abs_tol=1e-9):
                bad.append(f"{key} {field}: {mine[field]!r} != {x!r}")
    return bad


def _logged(message: str) -> dict:
    """A function's JSON log line as a dict ({} for the runtime's own plain lines, which the
    emulator's filter pattern may also return)."""
    try:
        line = json.loads(message)
    except ValueError:
        return {}
    return line if isinstance(line, dict) and line.get("message") == "history read back" else {}


def test_killed_scorer_worker_loses_and_duplicates_nothing(system: System) -> None:
    prefix = f"EVK{uuid.uuid4().hex[:6]}"
    records = list(loadgen.generate(TOTAL, vehicles=VEHICLES, malformed=MALFORMED,
                                          prefix=prefix))
    expected = {(key, json.loads(data)["timestamp"]) for key, data, ok in records if ok}
    # The emulator's pid now (an earlier test restarts the system, so not the session's).
    emulator_pid = read_status()["emulator"]["pid"]
    kinesis = system.client("kinesis")
    since = time.time() - 5

    # GIVEN the stream is flowing: the first third is put and its first predictions stored
    puts = stream_audit.put_records_timed(kinesis, system.stream, records[: TOTAL // 3])
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not _items(system, prefix):
        time.sleep(0.5)
    assert _items(system, prefix), "no prediction stored: the stream does not flow"
    # WHEN the scorer's worker is killed while the rest is put
    workers = scorer_workers(emulator_pid)
    assert workers, "no scorer worker process found under this emulator"
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    killed_at = time.time()
    puts += stream_audit.put_records_timed(kinesis, system.stream, records[TOTAL // 3:])

    # THEN every record ends up stored or parked, exactly once
    parked: dict[str, int] = {}
    gave_up: list[str] = []
    keys: list[tuple[str, str]] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        _drain(system, prefix, parked, gave_up)
        keys = _items(system, prefix)
        if len(keys) >= len(expected) and len(parked) >= MALFORMED:
            break
        time.sleep(2)
    _drain(system, prefix, parked, gave_up)
    assert not gave_up, f"the mapping gave up on batches: {gave_up[:1]}"
    assert set(keys) == expected, (
        f"{len(expected - set(keys))} records lost, {len(set(keys) - expected)} unexpected")
    assert len(parked) == MALFORMED, f"{len(parked)} of {MALFORMED} malformed records parked"
    # AND the scorer's own counters (not the item count, which a rewrite cannot change) show
    # no prediction written twice by the invocations that completed, and each malformed
    # record's sequence number on the DLQ exactly once
    logs = system.client("logs")
    audit = stream_audit.collect(
        logs, stream_audit.log_group_of(SCORER), puts, start=since,
        items_stored=lambda: len(_items(system, prefix)),
        dlq_sequence_numbers=lambda: [s for s, n in parked.items() for _ in range(n)],
        timeout=60, settle=3)
    assert audit.complete, audit.gaps
    assert audit.items_stored == len(expected) and audit.duplicates == 0, audit
    assert (audit.dlq_distinct, audit.dlq_duplicates, audit.dlq_missing) == (MALFORMED, 0, 0)
    # AND the fresh worker read the vehicles' stored past back (it held none of them)
    read_back = logs.filter_log_events(
        logGroupName=stream_audit.log_group_of(SCORER), startTime=int(killed_at * 1000),
        filterPattern='"history read back"')["events"]
    assert any(_logged(e["message"]).get("with_past", 0) > 0 for e in read_back), (
        "no scorer invocation after the kill read a vehicle's past back")
    # AND a fresh worker serves the function (the killed ones are gone)
    assert not set(workers) & set(scorer_workers(emulator_pid))

    # AND the same records under other vehicle ids, streamed with no kill, give the same
    # model outputs reading for reading (the killed run's fresh worker read the past back)
    again = f"EVU{uuid.uuid4().hex[:6]}"
    uninterrupted = list(loadgen.generate(TOTAL, vehicles=VEHICLES, malformed=MALFORMED,
                                                prefix=again))
    _stream_until_stored(system, uninterrupted, len(expected), again)
    killed, reference = _outputs(system, prefix), _outputs(system, again)
    assert len(reference) == len(expected) == len(killed)
    assert all("versions" in v for v in reference.values())
    bad = _differences(killed, reference)
    assert not bad, f"{len(bad)} of {len(reference)} predictions differ: {bad[:3]}"

    # AND /predict of a vehicle's last reading, its earlier readings stored, is the stream's
    last = max((k for k in reference if k[0] == 7), key=lambda k: k[1])
    body = next(json.loads(data) for key, data, ok in uninterrupted
                if ok and key == f"{again}-00007" and json.loads(data)["timestamp"] == last[1])
    answer = httpx.post(f"{system.api_url}/predict", json=body, timeout=60,
                        headers={"x-api-key": system.keys["fleet-service"]})
    assert answer.status_code == 200, answer.text
    got = answer.json()
    earlier = sum(1 for k in reference if k[0] == 7 and k[1] < last[1])
    # the models' longest window is 168 readings (train_fleet.yaml): 167 before this one
    assert got["history"]["readings"] == min(earlier, 167), got["history"]
    predicted = {**{f: got[f] for f in MODEL_OUTPUTS},
                 **{f"p_{m}": p for m, p in got["failure_probabilities"].items()},
                 "versions": json.dumps({k: v for k, v in got["model_versions"].items()},
                                        sort_keys=True)}
    assert not _differences({last: predicted}, {last: reference[last]})
