"""The stream audit sees a duplicate delivery that the predictions table cannot show.

A prediction is keyed by vehicle + reading time, so a record put twice overwrites its own
item: the table holds as many items either way. The scorer's own counters (its EMF metrics in
CloudWatch Logs, read by :mod:`evpm_cli.stream_audit`) count the second write: a run of a few
records audits to 0 duplicates, and the same run with one record put again to exactly 1.
"""

from __future__ import annotations

import time
import uuid

from evpm_cli import loadgen, stream_audit
from evpm_cli.stream_audit import PutRecord, StreamAudit
from tests.integration.conftest import System

RECORDS, VEHICLES = 12, 3


def _audit(
    system: System, puts: list[PutRecord], vehicles: list[str], since: float, stored: int
) -> StreamAudit:
    """The run's audit, once its ``stored`` items are in and its invocations in the log."""
    ddb, logs = system.client("dynamodb"), system.client("logs")
    scorer = system.info.get("stacks", {}).get("ScorerFunctionName", "evpm-scorer")
    deadline = time.monotonic() + 15
    while stream_audit.count_items(ddb, system.table, vehicles) < stored:
        assert time.monotonic() < deadline, "the records were not stored in 15 s"
        time.sleep(0.5)
    return stream_audit.collect(
        logs,
        stream_audit.log_group_of(scorer),
        puts,
        start=since,
        items_stored=lambda: stream_audit.count_items(ddb, system.table, vehicles),
        timeout=12,
        settle=2,
    )


def test_a_re_put_record_is_audited_as_exactly_one_duplicate(system: System) -> None:
    prefix = f"EVD{uuid.uuid4().hex[:6]}"
    records = list(loadgen.generate(RECORDS, vehicles=VEHICLES, prefix=prefix))
    vehicles = [f"{prefix}-{v:05d}" for v in range(VEHICLES)]
    kinesis = system.client("kinesis")
    since = time.time() - 5  # CloudWatch stamps a log event when it is stored

    # GIVEN a few records put once and stored
    puts = stream_audit.put_records_timed(kinesis, system.stream, records)
    once = _audit(system, puts, vehicles, since, stored=RECORDS)
    # THEN the audit is complete and finds no duplicate, no redelivery
    assert once.complete, once.gaps
    assert (once.records_put, once.items_stored, once.predictions_written) == (12, 12, 12)
    assert once.duplicates == 0 and once.redeliveries == 0
    assert once.latency_s is not None and once.latency_s.n == RECORDS

    # WHEN one of them is put again: same partition key, same data
    puts += stream_audit.put_records_timed(kinesis, system.stream, records[:1])
    twice = _audit(system, puts, vehicles, since, stored=RECORDS)
    # THEN the table still holds one item per reading, and the audit counts the second write
    assert twice.complete, twice.gaps
    assert twice.items_stored == RECORDS and twice.records_put == RECORDS + 1
    assert twice.duplicates == 1
    assert twice.redeliveries == 0  # it was put twice, not delivered twice
