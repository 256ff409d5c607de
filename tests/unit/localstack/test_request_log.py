"""The emulator's request log summary: the pure parts (no LocalStack needed)."""

from __future__ import annotations

import json
import logging
import threading

from evpm_localstack.request_log import RequestCounts, _summarize, is_failure, summary


def test_counts_are_taken_and_reset_at_once_across_threads() -> None:
    counts = RequestCounts()

    def answer() -> None:
        for _ in range(1000):
            counts.add("external", "kinesis.PutRecords", 200)
            counts.add("internal", "kinesis.GetRecords", 200)

    threads = [threading.Thread(target=answer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = counts.take()
    assert taken[("external", "kinesis.PutRecords", 200)] == 4000
    assert taken[("internal", "kinesis.GetRecords", 200)] == 4000
    assert not counts.take()  # reset: a request is counted in one summary only


def test_the_summary_says_what_was_answered_internal_calls_apart() -> None:
    counts = RequestCounts()
    for status in (200, 200, 201):
        counts.add("external", "dynamodb.BatchWriteItem", status)
    counts.add("internal", "lambda.Invoke", 200)
    line = summary(counts.take(), 60.0)
    assert line["total"] == 4
    assert line["requests"] == {"dynamodb.BatchWriteItem 200": 2, "dynamodb.BatchWriteItem 201": 1}
    assert line["internal_requests"] == {"lambda.Invoke 200": 1}


def test_failed_requests_keep_their_own_line() -> None:
    assert not is_failure(200, None)
    assert not is_failure(204, None)
    assert is_failure(400, None)
    assert is_failure(503, None)
    assert is_failure(200, object())  # a service exception answered with 200 (rare)


def test_a_summary_line_per_period_with_something_to_say(caplog) -> None:
    counts = RequestCounts()
    counts.add("external", "sqs.SendMessageBatch", 200)
    stop = threading.Event()
    caplog.set_level(logging.INFO, logger="evpm.requests")
    worker = threading.Thread(target=_summarize, args=(counts, 0.05, stop))
    worker.start()
    try:
        for _ in range(100):
            if caplog.records:
                break
            stop.wait(0.02)
    finally:
        stop.set()
        worker.join()
    assert len(caplog.records) == 1  # later periods had nothing to say: no empty lines
    # logfmt.JsonFormatter merges these fields into the line (it needs LocalStack to import)
    entry = json.loads(json.dumps(caplog.records[0].fields))
    assert entry["event"] == "requests_answered"
    assert entry["requests"] == {"sqs.SendMessageBatch 200": 1}
