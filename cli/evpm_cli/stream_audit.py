"""Audit a stream run from the scorer's own counters: duplicates, redeliveries, put→ack latency.

Why: a prediction is keyed by vehicle + reading time, so a record stored twice overwrites its
own item and no count of items can show it. The scorer counts what it does instead, per
invocation, in its EMF metrics (``RecordsReceived``, ``PredictionsWritten``, ...), and names the
batch in their metadata: the shard, the first and last sequence number, and ``stored_at`` (UTC,
once the prediction writes were acknowledged). Read back from its CloudWatch log group and set
beside what a run put and what is stored, they show what the item count hides:

* **duplicates** = Σ ``PredictionsWritten`` - distinct items stored: a prediction written
  more than once (a record put twice, or a batch re-sent after some of its writes had landed);
* **redeliveries** = Σ ``RecordsReceived`` - records put: records handed to the scorer again;
* **put → acknowledged write**, per record: from the ``put_records`` answer that accepted it
  to ``stored_at`` of the *last* completed invocation whose sequence range on its shard holds
  it. The counts do not say which records of a batch failed to write, so an earlier covering
  invocation may not have stored it; by the last one it certainly was. The figure is thus an
  upper bound on the first durable write, never below it (and equal to it when nothing is
  redelivered, the usual case);
* **the DLQ per sequence number**: each malformed record's sequence number exactly once; a
  second message for the same number is a duplicate, one missing is a loss.

What it cannot see: an invocation that never flushes its metrics (its worker SIGKILLed, a
timeout, a crash) counts nothing. What it wrote before it died is not counted, and the batch
the event source mapping then sends again is counted once, as a first delivery: the figures
are those of the invocations that completed (the batch sent again rewrites the same items
under the same keys, so no duplicate hides there that the table would not also hide). The runtime's exit lines in the same log group are counted apart
(``crashed_invocations``) so a reader sees such invocations happened.

Attribution: an invocation is the run's when its range on a shard holds one of the run's
records. A batch is a contiguous run of one shard's records (Lambda, and LocalStack's poller,
retry from the lowest failed sequence number onwards), so its ``RecordsReceived`` must equal
the run's records in that range; if not, another producer's records were in the batch, its
counts are not the run's alone, and the audit says it is incomplete (``gaps``).

The arithmetic (:func:`parse_emf`, :func:`audit`) is pure; the I/O (:func:`put_records_timed`,
:func:`read_scorer_log`, :func:`count_items`, :func:`collect`) takes boto3 clients.
"""

from __future__ import annotations

import json
import math
import time
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, computed_field

__all__ = [
    "Coverage",
    "Invocation",
    "Latency",
    "LogScan",
    "PutRecord",
    "StreamAudit",
    "audit",
    "collect",
    "count_items",
    "cover",
    "is_crash",
    "latency",
    "log_group_of",
    "parse_emf",
    "put_records_timed",
    "read_scorer_log",
]

CRASH_MARKERS = ("Runtime exited with error", "Task timed out after")
"""Lines the Lambda runtime (and the emulator's executor) writes for an invocation that ended
without an answer: its metrics were never flushed."""


def log_group_of(function_name: str) -> str:
    """The function's CloudWatch log group (``/aws/lambda/<name>``, as the stacks create it)."""
    return f"/aws/lambda/{function_name}"


class PutRecord(BaseModel):
    """One record of the run as Kinesis accepted it."""

    model_config = ConfigDict(frozen=True)

    shard_id: str
    sequence_number: str
    put_at: float
    """Epoch seconds when the ``put_records`` answer that accepted it came back."""
    valid: bool = True
    """False for a record meant to be parked (malformed): it is audited on the DLQ."""


class Invocation(BaseModel):
    """One completed scorer invocation, read from its EMF blob."""

    model_config = ConfigDict(frozen=True)

    shard_id: str
    first_sequence_number: str
    last_sequence_number: str
    stored_at: float
    """Epoch seconds after its prediction writes were acknowledged."""
    records_received: int
    predictions_written: int
    records_parked: int = 0
    write_failures: int = 0


class Latency(BaseModel):
    """Seconds, nearest-rank percentiles over ``n`` records."""

    model_config = ConfigDict(frozen=True)

    n: int
    p50: float
    p95: float
    p99: float
    max: float


class StreamAudit(BaseModel):
    """What the run's completed invocations say about its records.

    ``complete`` is False (and ``gaps`` says why) when the figures cannot be trusted as the
    run's: a record in no completed invocation, a batch shared with other records, stored
    items no counted write made. ``duplicates`` and ``redeliveries`` are net differences;
    read them only when complete.
    """

    model_config = ConfigDict(frozen=True)

    records_put: int
    valid_put: int
    malformed_put: int
    invocations: int
    mixed_invocations: int
    crashed_invocations: int
    uncovered_records: int
    records_received: int
    redeliveries: int
    predictions_written: int
    items_stored: int
    duplicates: int
    uncounted_items: int
    records_parked: int
    write_failures: int
    dlq_messages: int
    dlq_distinct: int
    dlq_duplicates: int
    dlq_missing: int
    dlq_unexpected: int
    latency_s: Latency | None
    first_put_at: float | None
    last_ack_at: float | None
    gaps: list[str]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def complete(self) -> bool:
        """Whether the figures are the run's, all of them (``gaps`` is empty)."""
        return not self.gaps


# -- the pure part ------------------------------------------------------------------------------
def _count(value: Any) -> int:
    """An EMF metric value: a number, or the list of values added in one invocation."""
    if isinstance(value, list):
        return round(sum(value))
    return round(value)


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def parse_emf(message: str) -> Invocation | None:
    """The invocation an EMF log line describes, or None for any other line (or an EMF blob
    without the batch metadata, e.g. from a scorer older than the audit).

    Example::

        parse_emf('{"_aws": {...}, "shard_id": "shardId-000000000000", '
                  '"first_sequence_number": "1", "last_sequence_number": "9", '
                  '"stored_at": "2026-01-01T00:00:00.000000+00:00", '
                  '"RecordsReceived": [9.0], "PredictionsWritten": [8.0]}').records_received  # 9
    """
    text = message.strip()
    if not text.startswith("{") or '"_aws"' not in text:
        return None
    try:
        blob = json.loads(text)
        return Invocation(
            shard_id=blob["shard_id"],
            first_sequence_number=blob["first_sequence_number"],
            last_sequence_number=blob["last_sequence_number"],
            stored_at=_epoch(blob["stored_at"]),
            records_received=_count(blob["RecordsReceived"]),
            predictions_written=_count(blob["PredictionsWritten"]),
            records_parked=_count(blob.get("RecordsParked", 0)),
            write_failures=_count(blob.get("WriteFailures", 0)),
        )
    except (ValueError, KeyError, TypeError):
        return None


def is_crash(message: str) -> bool:
    """Whether a log line reports an invocation that ended without an answer."""
    return any(marker in message for marker in CRASH_MARKERS)


def _nearest_rank(ordered: Sequence[float], q: float) -> float:
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def latency(seconds: Iterable[float]) -> Latency | None:
    """Percentiles of ``seconds`` (None when there are none)."""
    ordered = sorted(seconds)
    if not ordered:
        return None
    return Latency(
        n=len(ordered),
        p50=round(_nearest_rank(ordered, 0.50), 4),
        p95=round(_nearest_rank(ordered, 0.95), 4),
        p99=round(_nearest_rank(ordered, 0.99), 4),
        max=round(ordered[-1], 4),
    )


@dataclass
class _Shard:
    """One shard's records of the run, in sequence order, with their ack times."""

    sequence: list[int] = field(default_factory=list)
    records: list[PutRecord] = field(default_factory=list)
    acked: list[float | None] = field(default_factory=list)


@dataclass
class Coverage:
    """The run's records with their ack times (None: in no completed invocation yet), and
    the completed invocations that held them."""

    acked: list[tuple[PutRecord, float | None]]
    invocations: list[Invocation]
    mixed: int
    """Of ``invocations``, those whose batch also held records that are not the run's."""


def cover(puts: Iterable[PutRecord], invocations: Iterable[Invocation]) -> Coverage:
    """Each record's ack time: ``stored_at`` of the last completed invocation whose sequence
    range on the record's shard holds it (see the module for why the last). Invocations that
    hold none of ``puts`` (another run's) are left out."""
    shards: dict[str, _Shard] = {}
    for record in sorted(puts, key=lambda r: (r.shard_id, int(r.sequence_number))):
        shard = shards.setdefault(record.shard_id, _Shard())
        shard.sequence.append(int(record.sequence_number))
        shard.records.append(record)
        shard.acked.append(None)
    ours: list[Invocation] = []
    mixed = 0
    for inv in invocations:
        shard = shards.get(inv.shard_id)
        if shard is None:
            continue
        lo = bisect_left(shard.sequence, int(inv.first_sequence_number))
        hi = bisect_right(shard.sequence, int(inv.last_sequence_number))
        if lo == hi:
            continue  # another run's batch
        ours.append(inv)
        if hi - lo != inv.records_received:
            mixed += 1
        for i in range(lo, hi):
            previous = shard.acked[i]
            shard.acked[i] = inv.stored_at if previous is None else max(previous, inv.stored_at)
    acked = [
        (record, ack)
        for shard in shards.values()
        for record, ack in zip(shard.records, shard.acked, strict=True)
    ]
    return Coverage(acked=acked, invocations=ours, mixed=mixed)


def audit(
    puts: Sequence[PutRecord],
    invocations: Iterable[Invocation],
    *,
    items_stored: int,
    dlq_sequence_numbers: Sequence[str] = (),
    crashed_invocations: int = 0,
) -> StreamAudit:
    """Set a run's records beside the scorer's invocations, the stored items and the DLQ.

    ``invocations`` may include other runs' (they are left out by sequence range);
    ``items_stored`` is the number of distinct prediction items the run's valid records
    should have made and did; ``dlq_sequence_numbers`` has one entry per DLQ message of the
    run (repeats included: they are what is audited).

    Example::

        audit([PutRecord(shard_id="s", sequence_number="1", put_at=0.0)],
              [Invocation(shard_id="s", first_sequence_number="1", last_sequence_number="1",
                          stored_at=0.5, records_received=1, predictions_written=2)],
              items_stored=1).duplicates   # 1
    """
    coverage = cover(puts, invocations)
    ours, mixed = coverage.invocations, coverage.mixed
    records = [record for record, _ in coverage.acked]
    acked = [(record, ack) for record, ack in coverage.acked if ack is not None]
    uncovered = len(records) - len(acked)
    received = sum(i.records_received for i in ours)
    written = sum(i.predictions_written for i in ours)

    malformed = {r.sequence_number for r in records if not r.valid}
    per_seq = Counter(dlq_sequence_numbers)
    gaps: list[str] = []
    if not ours:
        gaps.append("no completed scorer invocation holds any record of the run")
    if uncovered:
        gaps.append(
            f"{uncovered} records are in no completed invocation's batch (their metrics are "
            "not in the log yet, or they were never scored)"
        )
    if mixed:
        gaps.append(f"{mixed} invocations also held records of another run: their counts mix")
    if items_stored > written:
        gaps.append(f"{items_stored - written} stored items were written by no counted invocation")
    return StreamAudit(
        records_put=len(records),
        valid_put=len(records) - len(malformed),
        malformed_put=len(malformed),
        invocations=len(ours),
        mixed_invocations=mixed,
        crashed_invocations=crashed_invocations,
        uncovered_records=uncovered,
        records_received=received,
        redeliveries=received - len(records),
        predictions_written=written,
        items_stored=items_stored,
        duplicates=max(0, written - items_stored),
        uncounted_items=max(0, items_stored - written),
        records_parked=sum(i.records_parked for i in ours),
        write_failures=sum(i.write_failures for i in ours),
        dlq_messages=sum(per_seq.values()),
        dlq_distinct=len(per_seq.keys() & malformed),
        dlq_duplicates=sum(n - 1 for seq, n in per_seq.items() if seq in malformed),
        dlq_missing=len(malformed - per_seq.keys()),
        dlq_unexpected=sum(n for seq, n in per_seq.items() if seq not in malformed),
        latency_s=latency(ack - record.put_at for record, ack in acked if record.valid),
        first_put_at=min((r.put_at for r in records), default=None),
        last_ack_at=max((ack for _, ack in acked), default=None),
        gaps=gaps,
    )


# -- the I/O part -------------------------------------------------------------------------------
def put_records_timed(
    kinesis: Any,
    stream: str,
    records: Sequence[tuple[str, bytes, bool]],
    *,
    max_attempts: int = 8,
) -> list[PutRecord]:
    """Put ``(partition key, data, valid)`` records (at most 500 per call), retrying the
    throttled ones, and return each accepted record's shard, sequence number and put time.

    Example::

        puts = put_records_timed(kinesis, "ev-telemetry", [("EV-1", b"{...}", True)])
    """
    out: list[PutRecord] = []
    for start in range(0, len(records), 500):
        pending = list(records[start : start + 500])
        for attempt in range(max_attempts):
            response = kinesis.put_records(
                StreamName=stream, Records=[{"PartitionKey": k, "Data": d} for k, d, _ in pending]
            )
            answered = time.time()
            failed = []
            for record, result in zip(pending, response["Records"], strict=True):
                if "ErrorCode" in result:
                    failed.append(record)
                    continue
                out.append(
                    PutRecord(
                        shard_id=result["ShardId"],
                        sequence_number=result["SequenceNumber"],
                        put_at=answered,
                        valid=record[2],
                    )
                )
            if not failed:
                break
            pending = failed
            time.sleep(min(2.0, 0.05 * 2**attempt))
        else:
            raise RuntimeError(f"{len(pending)} records still refused after {max_attempts} puts")
    return out


@dataclass
class LogScan:
    """What the scorer's log group holds for a time window."""

    invocations: list[Invocation] = field(default_factory=list)
    crashed: int = 0
    emf_without_batch: int = 0


def read_scorer_log(
    logs: Any, log_group: str, *, start: float, end: float | None = None
) -> LogScan:
    """Every EMF blob and crash line of ``log_group`` between ``start`` and ``end`` (epoch
    seconds; CloudWatch stamps an event when it is stored, just after its invocation ends),
    through ``filter_log_events`` page by page. A group not created yet holds nothing."""
    scan = LogScan()
    kwargs: dict[str, Any] = {"logGroupName": log_group, "startTime": int(start * 1000)}
    if end is not None:
        kwargs["endTime"] = int(end * 1000)
    try:
        for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
            for event in page.get("events", []):
                message = event.get("message", "")
                invocation = parse_emf(message)
                if invocation is not None:
                    scan.invocations.append(invocation)
                elif '"_aws"' in message:
                    scan.emf_without_batch += 1
                elif is_crash(message):
                    scan.crashed += 1
    except logs.exceptions.ResourceNotFoundException:
        return LogScan()
    return scan


def count_items(dynamodb: Any, table: str, vehicle_ids: Iterable[str]) -> int:
    """Items stored for these vehicles (``Query`` with ``Select=COUNT``, page by page)."""
    total = 0
    for vehicle in vehicle_ids:
        kwargs: dict[str, Any] = {
            "TableName": table,
            "Select": "COUNT",
            "KeyConditionExpression": "vehicle_id = :v",
            "ExpressionAttributeValues": {":v": {"S": vehicle}},
        }
        while True:
            page = dynamodb.query(**kwargs)
            total += page["Count"]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return total


def collect(
    logs: Any,
    log_group: str,
    puts: Sequence[PutRecord],
    *,
    start: float,
    items_stored: Callable[[], int],
    dlq_sequence_numbers: Callable[[], Sequence[str]] = lambda: (),
    timeout: float = 60.0,
    settle: float = 3.0,
    poll: float = 1.0,
) -> StreamAudit:
    """:func:`audit` of the run once every record is in a completed invocation's batch, read
    again ``settle`` seconds later (a redelivered batch's metrics may still be on their way);
    after ``timeout`` the last audit, incomplete, with its ``gaps``.

    ``items_stored`` and ``dlq_sequence_numbers`` are asked on every read, after the log.
    """
    deadline = time.monotonic() + timeout
    while True:
        scan = read_scorer_log(logs, log_group, start=start)
        result = audit(
            puts,
            scan.invocations,
            items_stored=items_stored(),
            dlq_sequence_numbers=dlq_sequence_numbers(),
            crashed_invocations=scan.crashed,
        )
        if result.uncovered_records == 0 or time.monotonic() >= deadline:
            break
        time.sleep(poll)
    if result.uncovered_records:
        return result
    time.sleep(settle)
    scan = read_scorer_log(logs, log_group, start=start)
    return audit(
        puts,
        scan.invocations,
        items_stored=items_stored(),
        dlq_sequence_numbers=dlq_sequence_numbers(),
        crashed_invocations=scan.crashed,
    )
