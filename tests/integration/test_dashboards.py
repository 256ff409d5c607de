"""Every dashboard panel's PromQL, run against the live Prometheus after some traffic.

Each expression of ``monitoring/dashboards/*.json`` must parse (Prometheus' own
``/api/v1/query``, not a look-alike parser) and, once telemetry went through the stream and
requests through API Gateway, return series: a misspelt metric or label, or a metric the
exporter does not produce, shows up as an empty panel here rather than in front of a user.

Series take a few minutes to arrive (EMF -> CloudWatch, the exporter reads complete minutes
60 s late, Prometheus scrapes it every 60 s, ``rate()`` needs two samples), so the test polls.
One kind of metric may rightly have no series at all, and only then excuse an empty answer:
the lifecycle's counts, when no lifecycle execution ran while the exporter watched.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import System
from tests.integration.prometheus import prometheus_url, query
from tests.integration.test_api_gateway import RECORD

pytestmark = pytest.mark.integration

DASHBOARDS = Path(__file__).resolve().parents[2] / "monitoring" / "dashboards"
DEADLINE_S = 600
POLL_S = 15
TRAFFIC_EVERY_S = 120  # gauges show the latest complete minutes only: keep them fed

MAY_BE_ABSENT = {
    "evpm_lifecycle_executions_total": "only after a lifecycle execution the exporter saw",
    "evpm_gate_checks_total": "only after a lifecycle execution the exporter saw",
}
"""Metrics whose complete absence excuses an empty answer (with why). If any series of them
exists, the expressions that read them must return series like every other."""


def _expressions() -> list[tuple[str, str, str]]:
    return [
        (path.stem, panel["title"], target["expr"])
        for path in sorted(DASHBOARDS.glob("*.json"))
        for panel in json.loads(path.read_text())["panels"]
        for target in panel["targets"]
    ]


def _has_series(prometheus: str, metric: str) -> bool:
    response = httpx.get(f"{prometheus}/api/v1/series", params={"match[]": metric}, timeout=30)
    return bool(response.json().get("data"))


def _traffic(system: System, prefix: str) -> None:
    """Readings of new vehicles on the stream, and requests of several kinds through the API."""
    start = datetime.now(UTC) - timedelta(minutes=5)
    records = [
        {
            **RECORD,
            "vehicle_id": f"{prefix}-{v:03d}",
            "timestamp": (start + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        for v in range(5)
        for i in range(4)
    ]
    put = system.client("kinesis").put_records(
        StreamName=system.stream,
        Records=[
            {"Data": json.dumps(r).encode(), "PartitionKey": r["vehicle_id"]} for r in records
        ],
    )
    assert put.get("FailedRecordCount", 0) == 0
    fleet = {"x-api-key": system.keys["fleet-service"]}
    viewer = {"x-api-key": system.keys["viewer"]}
    with httpx.Client(base_url=system.api_url, timeout=30) as api:
        assert api.get("/health").status_code == 200
        assert api.post("/predict", json=records[-1], headers=fleet).status_code == 200
        assert api.post("/predict", json={"vehicle_id": prefix}, headers=fleet).status_code == 422
        assert api.get(f"/vehicles/{prefix}-000/predictions", headers=viewer).status_code == 200
        assert api.get("/alerts", headers=viewer).status_code == 200
    # SQS metrics are sampled once a minute; this samples (and flushes the metric sink) now.
    httpx.post(f"{system.endpoint}/_evpm/metrics/sample", timeout=30)


def test_every_panel_expression_parses_and_returns_series(system: System) -> None:
    prometheus = prometheus_url(system)
    assert httpx.get(f"{prometheus}/-/ready", timeout=10).status_code == 200
    expressions = _expressions()
    assert expressions
    # GIVEN each expression: Prometheus parses it (a parse error is a 400 "bad_data")
    for board, title, expr in expressions:
        answer = query(prometheus, expr)
        assert answer.get("status") == "success", f"{board} / {title}: {expr}\n{answer}"
    # WHEN traffic goes through the stream and the API
    prefix = f"DASH-{uuid.uuid4().hex[:6]}"
    _traffic(system, prefix)
    fed = time.monotonic()
    pending = {(board, title, expr) for board, title, expr in expressions}
    deadline = time.monotonic() + DEADLINE_S
    # THEN every expression returns series within the deadline
    while pending and time.monotonic() < deadline:
        for item in sorted(pending):
            answer = query(prometheus, item[2])
            if answer.get("status") == "success" and answer["data"]["result"]:
                pending.discard(item)
        if pending:
            time.sleep(POLL_S)
            if time.monotonic() - fed > TRAFFIC_EVERY_S:
                _traffic(system, prefix)
                fed = time.monotonic()
    excused = {
        item
        for item in pending
        if any(
            metric in item[2] and not _has_series(prometheus, metric) for metric in MAY_BE_ABSENT
        )
    }
    failed = sorted(pending - excused)
    assert failed == [], "\n".join(f"{b} / {t}: no series for {e}" for b, t, e in failed)
