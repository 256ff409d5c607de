"""What `evpm send` did, counted exactly in Prometheus within 90 s.

The path: the scorer's EMF lines -> the emulator's CloudWatch -> the exporter (a minute counts
once it ended ``exporter_delay`` seconds ago, 10 s here) -> Prometheus (scrapes the exporter
every 15 s). The records go in after every minute before the test began is counted, so the
increase of each counter is this test's records alone; nothing else writes to the stream while
it runs.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.integration.conftest import System, evpm
from tests.integration.prometheus import prometheus_url, single_value

pytestmark = pytest.mark.integration

COUNT, MALFORMED = 1000, 10
DEADLINE_S = 90
EXPORTER_DELAY_S = 10  # evpm_cli.config.CliSettings.exporter_delay
SCRAPE_S = 15  # monitoring/prometheus.yml, job evpm-cloudwatch
SCORER, API, DLQ = "evpm-scorer", "evpm-api", "evpm-scoring-dlq"


def _counters(prometheus: str) -> dict[str, float]:
    exprs = {
        "received": f'evpm_records_received_total{{service="{SCORER}"}}',
        "scored": f'evpm_predictions_written_total{{service="{SCORER}"}}',
        "parked": f'evpm_records_parked_total{{service="{SCORER}"}}',
        "scorer_invocations": f'aws_lambda_invocations_total{{function_name="{SCORER}"}}',
        "scorer_errors": f'aws_lambda_errors_total{{function_name="{SCORER}"}}',
        "api_errors": f'aws_lambda_errors_total{{function_name="{API}"}}',
    }
    return {name: single_value(prometheus, expr) or 0.0 for name, expr in exprs.items()}


def _wait_until_everything_before_is_counted(started: float) -> None:
    """Until the minute holding ``started`` is complete, counted and scraped."""
    counted_at = math.ceil(started / 60) * 60 + EXPORTER_DELAY_S + SCRAPE_S + 3
    time.sleep(max(0.0, counted_at - time.time()))


def test_evpm_send_is_counted_exactly_in_prometheus_within_90_s(system: System) -> None:
    prometheus = prometheus_url(system)
    sqs = system.client("sqs")
    sqs.purge_queue(QueueUrl=system.dlq_url)  # the depth below is this test's records alone
    _wait_until_everything_before_is_counted(time.time())
    before = _counters(prometheus)

    # WHEN 1,000 records go in, 10 of them malformed (and one request through the API)
    prefix = f"MC{uuid.uuid4().hex[:6]}"
    evpm("send", "--source", "load", "--count", str(COUNT), "--malformed", str(MALFORMED),
         "--prefix", prefix, timeout=120)  # fmt: skip
    httpx.get(f"{system.api_url}/health", timeout=30).raise_for_status()
    sent = time.monotonic()

    # THEN within 90 s Prometheus has the counters up by exactly what was sent
    want = {"received": COUNT, "scored": COUNT - MALFORMED, "parked": MALFORMED}
    seen: dict[str, Any] = {}
    while time.monotonic() - sent < DEADLINE_S:
        httpx.post(f"{system.endpoint}/_evpm/metrics/sample", timeout=30)  # queue depths now
        now = _counters(prometheus)
        seen = {k: now[k] - before[k] for k in want}
        depth = single_value(prometheus, f'aws_sqs_approximate_number_of_messages_visible_maximum'
                                   f'{{queue_name="{DLQ}"}}')  # fmt: skip
        if all(seen[k] >= want[k] for k in want) and depth == MALFORMED:
            break
        time.sleep(5)
    took = time.monotonic() - sent
    assert seen == want, f"after {took:.0f} s: {seen} (want {want})"
    assert depth == MALFORMED, f"DLQ depth {depth} after {took:.0f} s"
    assert took < DEADLINE_S

    # AND the Lambda metrics of the scorer and the API, and the mapping's iterator age
    after = _counters(prometheus)
    assert after["scorer_invocations"] > before["scorer_invocations"]
    # errors: series present, none added by these records (earlier tests kill workers)
    assert (after["scorer_errors"], after["api_errors"]) == (
        before["scorer_errors"], before["api_errors"])
    for function in (SCORER, API):
        by_function = f'{{function_name="{function}"}}'
        assert single_value(prometheus, f"aws_lambda_errors_total{by_function}") is not None
        assert single_value(prometheus, f"aws_lambda_invocations_total{by_function}")
        duration = single_value(prometheus, f"aws_lambda_duration_maximum_seconds{by_function}")
        assert duration is not None and 0 < duration < 60, (function, duration)
    age = single_value(
        prometheus, f'aws_lambda_iterator_age_maximum_seconds{{function_name="{SCORER}"}}'
    )
    assert age is not None and 0 <= age < 600, age
