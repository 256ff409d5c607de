"""evpm_cli.stream_audit: the arithmetic over the scorer's EMF blobs, and its reading of them.

A duplicate delivery overwrites its own item, so only the scorer's counters can show it: these
tests hold the audit to that (a re-put record is one duplicate, a retried batch is counted as
redelivered records, a DLQ message twice for one sequence number is one DLQ duplicate) and to
its latency mapping (a record's ack is the last completed invocation holding it). The last
tests check the contract with the scorer: its real EMF output parses into the audit's input.
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from moto import mock_aws

from evpm_cli import stream_audit
from evpm_cli.stream_audit import Invocation, PutRecord, audit, parse_emf
from tests.unit.conftest import NOMINAL, load_event, load_function
from tests.unit.fakes import FakeAlertSink, FakeParkedSink, FakePredictionSink

SHARD = "shardId-000000000000"
OTHER_SHARD = "shardId-000000000001"


def kinesis_event(payloads: list[bytes]) -> dict[str, Any]:
    """A Kinesis event of these record bodies, in the sample event's shape."""
    template = load_event("kinesis_telemetry.json")["Records"][0]
    records = []
    for i, data in enumerate(payloads):
        record = copy.deepcopy(template)
        seq = f"{49590330439255740465847791082829142860800123456789 + i:056d}"
        record["kinesis"]["sequenceNumber"] = seq
        record["kinesis"]["data"] = base64.b64encode(data).decode()
        record["eventID"] = f"{SHARD}:{seq}"
        records.append(record)
    return {"Records": records}


def puts(
    *seqs: int, shard: str = SHARD, put_at: float = 100.0, malformed: tuple[int, ...] = ()
) -> list[PutRecord]:
    return [
        PutRecord(shard_id=shard, sequence_number=str(s), put_at=put_at, valid=s not in malformed)
        for s in seqs
    ]


def invocation(
    first: int,
    last: int,
    *,
    stored_at: float,
    received: int | None = None,
    written: int | None = None,
    shard: str = SHARD,
    parked: int = 0,
) -> Invocation:
    received = last - first + 1 if received is None else received
    return Invocation(
        shard_id=shard,
        first_sequence_number=str(first),
        last_sequence_number=str(last),
        stored_at=stored_at,
        records_received=received,
        predictions_written=received - parked if written is None else written,
        records_parked=parked,
    )


def test_a_clean_run_has_no_duplicate_no_redelivery_and_a_complete_dlq() -> None:
    # GIVEN 4 records, the 3rd malformed, scored in one invocation, 3 items stored, 1 parked
    run = puts(1, 2, 3, 4, malformed=(3,))
    # WHEN audited
    result = audit(
        run,
        [invocation(1, 4, stored_at=101.0, parked=1)],
        items_stored=3,
        dlq_sequence_numbers=["3"],
    )
    # THEN every figure says "once"
    assert result.complete, result.gaps
    assert (result.duplicates, result.redeliveries, result.dlq_duplicates) == (0, 0, 0)
    assert (result.dlq_missing, result.dlq_unexpected, result.dlq_distinct) == (0, 0, 1)
    assert (result.valid_put, result.malformed_put, result.records_parked) == (3, 1, 1)
    assert result.latency_s is not None and result.latency_s.n == 3  # valid records only
    assert result.latency_s.p50 == pytest.approx(1.0)


def test_a_record_put_twice_is_one_duplicate() -> None:
    # GIVEN 3 records stored, then the first one put again (a new sequence number, same item)
    run = puts(1, 2, 3) + puts(9, put_at=200.0)
    invocations = [invocation(1, 3, stored_at=101.0), invocation(9, 9, stored_at=201.0)]
    # WHEN audited against the 3 distinct items the table holds
    result = audit(run, invocations, items_stored=3)
    # THEN the second write of the same item shows, and it was no redelivery: it was put twice
    assert result.complete, result.gaps
    assert result.duplicates == 1
    assert result.redeliveries == 0
    assert (result.records_put, result.predictions_written) == (4, 4)


def test_a_batch_retried_after_a_failed_write_is_counted_as_redelivered() -> None:
    # GIVEN records 1..4: the first invocation stores 1 and 2, the write of 3 fails, so the
    # scorer asks for 3 and 4 again (it reports every record from the first failure onwards)
    run = puts(1, 2, 3, 4)
    first = invocation(1, 4, stored_at=101.0, written=2)
    retry = invocation(3, 4, stored_at=105.0)
    # WHEN audited
    result = audit(run, [first, retry], items_stored=4)
    # THEN two records were handed over again, and no item was written twice
    assert result.complete, result.gaps
    assert result.redeliveries == 2
    assert result.duplicates == 0
    # AND the retried records are acknowledged by the retry, the others by the first one
    assert result.latency_s is not None
    assert sorted([result.latency_s.p50, result.latency_s.max]) == [1.0, 5.0]


def test_a_retry_of_a_write_that_had_landed_is_a_duplicate() -> None:
    # GIVEN the first invocation stored 1..3 and failed only on 4; the retry sends 3 and 4
    result = audit(
        puts(1, 2, 3, 4),
        [invocation(1, 4, stored_at=101.0, written=3), invocation(3, 4, stored_at=102.0)],
        items_stored=4,
    )
    # THEN record 3's prediction was written twice
    assert result.duplicates == 1 and result.redeliveries == 2


def test_a_dlq_message_twice_for_one_sequence_number_is_a_dlq_duplicate() -> None:
    # GIVEN records 2 and 3 malformed; the DLQ holds 2 twice, 3 never, and a stranger once
    run = puts(1, 2, 3, malformed=(2, 3))
    result = audit(
        run,
        [invocation(1, 3, stored_at=101.0, parked=2)],
        items_stored=1,
        dlq_sequence_numbers=["2", "2", "77"],
    )
    # THEN per sequence number: one duplicate, one missing, one that was never malformed
    assert (result.dlq_messages, result.dlq_distinct) == (3, 1)
    assert (result.dlq_duplicates, result.dlq_missing, result.dlq_unexpected) == (1, 1, 1)


def test_latency_maps_each_sequence_number_to_its_shards_covering_invocation() -> None:
    # GIVEN two shards whose sequence numbers overlap as numbers, put at different times
    run = (
        puts(10, 11, 12, put_at=100.0)
        + puts(13, 14, put_at=101.0)
        + puts(10, 11, shard=OTHER_SHARD, put_at=100.5)
    )
    invocations = [
        invocation(10, 12, stored_at=100.2),
        invocation(13, 14, stored_at=101.4),
        invocation(10, 11, stored_at=103.5, shard=OTHER_SHARD),
        invocation(1, 9, stored_at=99.0),  # another run's batch, before ours: left out
        invocation(10, 11, stored_at=500.0, shard="shardId-000000000009"),  # no record of ours
    ]
    # WHEN audited
    result = audit(run, invocations, items_stored=7)
    # THEN each record's latency is its own shard's invocation's stored_at minus its put time
    assert result.complete, result.gaps
    assert result.invocations == 3
    assert result.latency_s is not None
    assert result.latency_s.n == 7
    # 0.2 s x3, 0.4 s x2, 3.0 s x2 (nearest rank: p50 is the 4th of 7)
    assert result.latency_s.p50 == pytest.approx(0.4)
    assert result.latency_s.p95 == pytest.approx(3.0)
    assert result.latency_s.max == pytest.approx(3.0)
    assert result.first_put_at == 100.0 and result.last_ack_at == 103.5


def test_an_incomplete_log_or_a_mixed_batch_makes_the_audit_incomplete() -> None:
    run = puts(1, 2, 3, 4)
    # GIVEN the metrics of the batch holding 3 and 4 are not in the log (yet)
    waiting = audit(run, [invocation(1, 2, stored_at=101.0)], items_stored=4)
    assert not waiting.complete
    assert waiting.uncovered_records == 2
    assert any("in no completed invocation" in g for g in waiting.gaps)
    assert any("written by no counted invocation" in g for g in waiting.gaps)
    # GIVEN a batch that also held another producer's record between 2 and 3
    mixed = audit(run, [invocation(1, 4, stored_at=101.0, received=5)], items_stored=4)
    assert not mixed.complete and mixed.mixed_invocations == 1
    # GIVEN nothing at all
    assert not audit(run, [], items_stored=0).complete


def test_parse_emf_reads_only_blobs_that_name_their_batch() -> None:
    blob = {
        "_aws": {"Timestamp": 0, "CloudWatchMetrics": []},
        "service": "evpm-scorer",
        "shard_id": SHARD,
        "first_sequence_number": "5",
        "last_sequence_number": "9",
        "stored_at": "2026-01-01T00:00:01.500000+00:00",
        "RecordsReceived": [5.0],
        "PredictionsWritten": [4.0],
        "RecordsParked": [1.0],
        "WriteFailures": [0.0],
    }
    parsed = parse_emf(json.dumps(blob) + "\n")
    assert parsed == Invocation(
        shard_id=SHARD,
        first_sequence_number="5",
        last_sequence_number="9",
        stored_at=datetime(2026, 1, 1, 0, 0, 1, 500000, tzinfo=UTC).timestamp(),
        records_received=5,
        predictions_written=4,
        records_parked=1,
    )
    assert parse_emf(json.dumps({k: v for k, v in blob.items() if k != "stored_at"})) is None
    assert parse_emf("START RequestId: 1 Version: $LATEST") is None
    assert parse_emf('{"_aws": not json') is None
    assert stream_audit.is_crash("RequestId: 1 Error: Runtime exited with error: signal: 9")
    assert not stream_audit.is_crash(json.dumps(blob))


def test_the_scorers_emf_blob_is_what_the_audit_reads(aws_env, monkeypatch, capsys) -> None:
    # GIVEN the scorer, and a Kinesis event of 3 readings, one of which cannot be read
    for name, value in {
        "PREDICTIONS_TABLE": "t",
        "DLQ_URL": "http://127.0.0.1:1/q",
        "ALERT_BUS_NAME": "b",
        "ALERT_DEDUP_TABLE": "d",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        scorer = load_function("scorer")
        event = kinesis_event(
            [
                json.dumps({**NOMINAL, "vehicle_id": "EV-0"}).encode(),
                b"not json",
                json.dumps({**NOMINAL, "vehicle_id": "EV-2"}).encode(),
            ]
        )
        seqs = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
        before = datetime.now(UTC).timestamp()
        # (powertools' Metrics share one metric set per process: drop what other tests left)
        scorer.metrics.clear_metrics()
        # WHEN it handles the event and flushes its metrics (as @log_metrics does)
        scorer.handle(
            event, predictions=FakePredictionSink(), parked=FakeParkedSink(), alerts=FakeAlertSink()
        )
        scorer.metrics.flush_metrics()
    lines = capsys.readouterr().out.splitlines()
    # THEN the audit reads the batch and its counts from the blob
    parsed = [p for p in map(parse_emf, lines) if p is not None]
    assert len(parsed) == 1
    blob = parsed[0]
    assert (blob.shard_id, blob.first_sequence_number, blob.last_sequence_number) == (
        SHARD,
        seqs[0],
        seqs[-1],
    )
    assert (blob.records_received, blob.predictions_written, blob.records_parked) == (3, 2, 1)
    assert before <= blob.stored_at <= datetime.now(UTC).timestamp()


class _Pages:
    def __init__(self, pages: list[list[str]], calls: list[dict]) -> None:
        self.pages, self.calls = pages, calls

    def paginate(self, **kwargs: Any) -> list[dict]:
        self.calls.append(kwargs)
        return [{"events": [{"message": m} for m in page]} for page in self.pages]


class FakeLogs:
    """``filter_log_events`` through its paginator, page by page."""

    class exceptions:  # the shape of a boto3 client's attribute
        class ResourceNotFoundException(Exception):
            pass

    def __init__(self, pages: list[list[str]]) -> None:
        self.pages = pages
        self.calls: list[dict] = []

    def get_paginator(self, name: str) -> _Pages:
        assert name == "filter_log_events"
        return _Pages(self.pages, self.calls)


def _emf(first: int, last: int, stored_at: str = "2026-01-01T00:00:02+00:00") -> str:
    return json.dumps(
        {
            "_aws": {},
            "shard_id": SHARD,
            "first_sequence_number": str(first),
            "last_sequence_number": str(last),
            "stored_at": stored_at,
            "RecordsReceived": [last - first + 1],
            "PredictionsWritten": [last - first + 1],
        }
    )


def test_read_scorer_log_reads_every_page_and_counts_crashes() -> None:
    logs = FakeLogs(
        [
            ["START RequestId: a", _emf(1, 2), "END RequestId: a"],
            [
                "RequestId: b Error: Runtime exited with error: signal: 9",
                _emf(3, 4),
                json.dumps({"_aws": {}, "RecordsReceived": [1]}),
            ],
        ]
    )
    scan = stream_audit.read_scorer_log(logs, "/aws/lambda/evpm-scorer", start=10.0, end=20.5)
    assert [(i.first_sequence_number, i.last_sequence_number) for i in scan.invocations] == [
        ("1", "2"),
        ("3", "4"),
    ]
    assert (scan.crashed, scan.emf_without_batch) == (1, 1)
    assert logs.calls == [
        {"logGroupName": "/aws/lambda/evpm-scorer", "startTime": 10_000, "endTime": 20_500}
    ]


def test_collect_waits_until_every_record_is_in_a_completed_invocation() -> None:
    # GIVEN a log that holds the second batch only from the third read on
    reads: list[int] = []

    class GrowingLogs(FakeLogs):
        def get_paginator(self, name: str) -> _Pages:
            reads.append(1)
            pages = [[_emf(1, 2)]] + ([[_emf(3, 3)]] if len(reads) >= 3 else [])
            return _Pages(pages, self.calls)

    run = puts(1, 2, 3)
    result = stream_audit.collect(
        GrowingLogs([]), "g", run, start=0.0, items_stored=lambda: 3, timeout=10, settle=0, poll=0
    )
    # THEN it read until complete, then once more after settling
    assert result.complete, result.gaps
    assert len(reads) == 4
    assert result.duplicates == 0 and result.redeliveries == 0


def test_put_records_timed_retries_refused_records_and_keeps_their_shard_and_number() -> None:
    class FakeKinesis:
        def __init__(self) -> None:
            self.calls = 0

        def put_records(self, StreamName: str, Records: list[dict]) -> dict:
            self.calls += 1
            out = []
            for i in range(len(Records)):
                if self.calls == 1 and i == 1:  # the second record throttled once
                    out.append({"ErrorCode": "ProvisionedThroughputExceededException"})
                else:
                    out.append({"ShardId": SHARD, "SequenceNumber": f"{self.calls}{i}"})
            return {"Records": out}

    kinesis = FakeKinesis()
    done = stream_audit.put_records_timed(
        kinesis, "s", [("EV-1", b"{}", True), ("EV-2", b"x", False)]
    )
    assert kinesis.calls == 2
    assert [(p.sequence_number, p.valid) for p in done] == [("10", True), ("20", False)]


def test_read_scorer_log_and_count_items_against_moto(aws_env) -> None:
    # GIVEN the scorer's log group with two streams (two containers), and a predictions table
    with mock_aws():
        import boto3

        logs = boto3.client("logs")
        group = stream_audit.log_group_of("evpm-scorer")
        # WHEN the group does not exist yet (no invocation so far) THEN it holds nothing
        assert stream_audit.read_scorer_log(logs, group, start=0).invocations == []
        logs.create_log_group(logGroupName=group)
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        for n, stream in enumerate(("2026/01/01/[$LATEST]a", "2026/01/01/[$LATEST]b")):
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
            logs.put_log_events(
                logGroupName=group,
                logStreamName=stream,
                logEvents=[
                    {"timestamp": now_ms, "message": "START RequestId: x\n"},
                    {"timestamp": now_ms, "message": _emf(10 * n + 1, 10 * n + 5) + "\n"},
                ],
            )
        scan = stream_audit.read_scorer_log(logs, group, start=now_ms / 1000 - 1)
        assert sorted(i.first_sequence_number for i in scan.invocations) == ["1", "11"]
        assert stream_audit.read_scorer_log(logs, group, start=now_ms / 1000 + 60).invocations == []

        ddb = boto3.client("dynamodb")
        ddb.create_table(
            TableName="p",
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
        for vehicle, ts in (("EV-1", "a"), ("EV-1", "b"), ("EV-2", "a"), ("EV-3", "a")):
            ddb.put_item(TableName="p", Item={"vehicle_id": {"S": vehicle}, "ts": {"S": ts}})
        assert stream_audit.count_items(ddb, "p", ["EV-1", "EV-2", "EV-9"]) == 3
